//! The `fd:` server endpoint: adopt an inherited listening socket by number (`fd:3`) or by
//! name (`fd:name=web`), whatever its family (TCP over IPv4 or IPv6, or unix), as daphne's
//! `fd:`, Caddy's `fd/N` and HAProxy's `fd@N`.
//!
//! Only descriptors passed by the `LISTEN_FDS` protocol are adopted (systemd,
//! `systemd-socket-activate`, systemfd, a handover): taking any other number would make a
//! second owner of a descriptor this process may already use.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{
    Description, ErrorKind, Listener, Operation, ParseError, ServerEndpoint, async_trait, io_error,
};
use endpoints_util::handover;
use socket2::{Domain, SockRef, Type};

use crate::activation::{LISTEN_FDS_START, lock};

/// Parameters of the `fd:` server.
pub static FD_PARAMS: &[Param] = &[
    Param::optional("fd", ParamKind::UInt)
        .at(0)
        .help("descriptor number (3 is the first passed); give fd or name"),
    Param::optional("name", ParamKind::Text)
        .help("name from LISTEN_FDNAMES (FileDescriptorName=); give fd or name"),
];

/// An inherited listening socket, adopted on `listen()`.
#[derive(Debug)]
pub struct FdServerEndpoint {
    /// Its position among the descriptors systemd passed; `None` when a previous process
    /// handed it over under this description's key.
    position: Option<usize>,
    fd: i32,
    canonical: Description,
}

impl FdServerEndpoint {
    /// The descriptor this endpoint adopts.
    pub fn fd(&self) -> i32 {
        self.fd
    }
}

fn build(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, FD_PARAMS)?;
    let end = d.input().map_or(0, |s| s.len());
    let state = lock();
    let activation = match &*state {
        Ok(a) => a,
        Err(e) => {
            return Err(d.error(
                ErrorKind::InvalidValue,
                0..end,
                format!("the socket-activation variables are inconsistent: {e}"),
            ));
        }
    };
    let passed = || match activation.absent_reason() {
        Some(why) => format!("no descriptors were passed to this process ({why})"),
        None => {
            let n = activation.descriptors().len();
            format!(
                "descriptors {LISTEN_FDS_START} to {} were passed (LISTEN_FDS={n})",
                LISTEN_FDS_START as usize + n - 1
            )
        }
    };
    // A successor is handed this listener under its description's key, whatever names and
    // count it was given: that comes first.
    let handed_over = |canonical: &Description| -> Option<Box<dyn ServerEndpoint>> {
        let fd = handover::inherited_for(canonical)?;
        Some(Box::new(FdServerEndpoint {
            position: None,
            fd,
            canonical: canonical.clone(),
        }))
    };
    let (position, canonical) = match (args.get("fd"), args.get("name")) {
        (Some(v), None) => {
            let n = v.u32()?;
            let canonical = Description::new("fd").with("fd", n.to_string());
            if let Some(e) = handed_over(&canonical) {
                return Ok(e);
            }
            let Some(p) = activation
                .descriptors()
                .iter()
                .position(|&fd| u32::try_from(fd).ok() == Some(n))
            else {
                return Err(v.invalid(format_args!(
                    "descriptor {n} was not passed by the LISTEN_FDS protocol: {}; only passed \
                     descriptors are adopted",
                    passed()
                )));
            };
            (p, canonical)
        }
        (None, Some(v)) => {
            let canonical = Description::new("fd").with("name", v.as_str());
            if let Some(e) = handed_over(&canonical) {
                return Ok(e);
            }
            let Some(p) = activation.position_of_name(v.as_str()) else {
                if activation.descriptors().is_empty() {
                    return Err(v.invalid(passed()));
                }
                return Err(v.invalid(format_args!(
                    "no descriptor is named `{}` (LISTEN_FDNAMES: {})",
                    v.as_str(),
                    activation.names().join(", ")
                )));
            };
            (p, canonical)
        }
        (Some(v), Some(_)) => {
            return Err(v
                .invalid("give exactly one of `fd=` and `name=`")
                .with_parameter("fd"));
        }
        (None, None) => {
            return Err(d
                .error(
                    ErrorKind::MissingParameter,
                    end..end,
                    "`fd` needs a descriptor number (`fd:3`) or `name=` (`fd:name=web`)",
                )
                .with_parameter("fd"));
        }
    };
    let fd = activation.descriptors()[position];
    Ok(Box::new(FdServerEndpoint {
        position: Some(position),
        fd,
        canonical,
    }))
}

/// What a descriptor is, in words, when it is not a listening stream socket; `Ok(())` when
/// it is one (then it is made non-blocking).
pub(crate) fn check_listening(fd: BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let number = fd.as_raw_fd();
    let wrong = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {number} is {what}, not a listening stream socket"),
        )
    };
    let file = std::fs::File::from(fd.try_clone_to_owned()?);
    let t = file.metadata()?.file_type();
    drop(file);
    use std::os::unix::fs::FileTypeExt;
    if !t.is_socket() {
        let what = if t.is_file() {
            "a regular file"
        } else if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a pipe"
        } else if t.is_char_device() {
            "a character device (a terminal or /dev/null?)"
        } else if t.is_block_device() {
            "a block device"
        } else {
            "not a socket"
        };
        return Err(wrong(what));
    }
    let sock = SockRef::from(&fd);
    // With its article.
    let family = match sock.local_addr().map(|a| a.domain()) {
        Ok(d) if d == Domain::IPV4 => "an IPv4",
        Ok(d) if d == Domain::IPV6 => "an IPv6",
        Ok(d) if d == Domain::UNIX => "a unix",
        _ => "an other-family",
    };
    match sock.r#type()? {
        t if t == Type::STREAM => {}
        t if t == Type::DGRAM => return Err(wrong(&format!("{family} datagram socket"))),
        _ => return Err(wrong(&format!("{family} socket of another type"))),
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let listening = sock.is_listener()?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let listening = crate::env::is_listener(number)?;
    if !listening {
        return Err(wrong(&format!(
            "{family} stream socket that is not listening (a connection?)"
        )));
    }
    sock.set_nonblocking(true)?;
    sock.set_cloexec(true)
}

/// Wrap a checked listening socket by its family.
pub(crate) fn wrap_any(
    owned: OwnedFd,
    canonical: &Description,
    registration: Option<handover::Registration>,
) -> io::Result<Box<dyn Listener>> {
    let domain = SockRef::from(&owned.as_fd()).local_addr()?.domain();
    if domain == Domain::UNIX {
        let l = tokio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(owned))?;
        // Never chmod-ed or removed: the socket belongs to whoever passed it.
        let mut l = endpoints_unix::UnixListener::adopt(l, canonical.clone())?;
        l.keep_registration(registration);
        Ok(Box::new(l))
    } else {
        let l = tokio::net::TcpListener::from_std(std::net::TcpListener::from(owned))?;
        let mut l = endpoints_tcp::TcpListener::adopt(l, canonical.clone());
        l.keep_registration(registration);
        Ok(Box::new(l))
    }
}

impl fmt::Display for FdServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ServerEndpoint for FdServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let claim = handover::claim(&self.canonical);
        let owned = match claim.inherited {
            // Handed over by a previous process that had adopted it.
            Some(fd) => check_listening(fd.as_fd()).map(|()| fd),
            None => {
                let mut state = lock();
                match (&mut *state, self.position) {
                    (Ok(a), Some(p)) if a.descriptors().get(p) == Some(&self.fd) => {
                        a.take_checked(p, check_listening)
                    }
                    (_, None) => Err(handed_over_gone()),
                    _ => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("descriptor {} is no longer available", self.fd),
                    )),
                }
            }
        }
        .map_err(|e| io_error(Operation::Listen, self, e))?;
        let registration = register(&claim.name, &owned, &self.canonical);
        wrap_any(owned, &self.canonical, registration)
            .map_err(|e| io_error(Operation::Listen, self, e))
    }
}

/// A description resolved against a handed-over socket whose socket another listener on the
/// same description took meanwhile.
pub(crate) fn handed_over_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        "the socket handed over for this description was adopted by another listener on the \
         same description; give each listener its own description",
    )
}

/// Register an adopted socket for the next handover (without it, it is not passed on).
pub(crate) fn register(
    name: &str,
    fd: &OwnedFd,
    canonical: &Description,
) -> Option<handover::Registration> {
    match handover::register(name, fd.as_fd(), &[]) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(endpoint = %canonical, error = %e, "this listener cannot be handed over to a successor");
            None
        }
    }
}

endpoints_core::register_server! {
    prefix: "fd",
    summary: "adopt an inherited listening socket (TCP or unix) by descriptor number or name",
    params: FD_PARAMS,
    build: build,
}
