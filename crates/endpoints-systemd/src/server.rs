//! The `systemd:` server endpoint: adopt an inherited listening socket.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{
    Description, ErrorKind, Listener, Operation, ParseError, ServerEndpoint, async_trait, io_error,
};
use socket2::{Domain, SockRef, Type};

use crate::activation::lock;

/// Parameters of the `systemd:` server.
pub static SERVER_PARAMS: &[Param] = &[
    Param::required("domain", ParamKind::Choice(&["INET", "INET6", "UNIX"]))
        .at(0)
        .help("address family the inherited socket must have"),
    Param::optional("index", ParamKind::UInt)
        .at(1)
        .help("position among the passed descriptors (0 is fd 3); give index or name"),
    Param::optional("name", ParamKind::Text)
        .at(2)
        .help("name from LISTEN_FDNAMES (FileDescriptorName=); give index or name"),
];

/// The address family a `systemd:` description names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketDomain {
    /// `AF_INET`.
    Inet,
    /// `AF_INET6`.
    Inet6,
    /// `AF_UNIX`.
    Unix,
}

impl SocketDomain {
    fn socket2(self) -> Domain {
        match self {
            Self::Inet => Domain::IPV4,
            Self::Inet6 => Domain::IPV6,
            Self::Unix => Domain::UNIX,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Inet => "AF_INET",
            Self::Inet6 => "AF_INET6",
            Self::Unix => "AF_UNIX",
        }
    }
}

/// A socket passed by systemd (or `systemd-socket-activate`), adopted on `listen()`.
#[derive(Debug)]
pub struct SystemdServerEndpoint {
    domain: SocketDomain,
    /// Its position among the descriptors systemd passed; `None` when a previous process
    /// handed it over under this description's key.
    position: Option<usize>,
    fd: RawFd,
    canonical: Description,
}

impl SystemdServerEndpoint {
    /// The inherited descriptor this endpoint adopts.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The address family it must have.
    pub fn domain(&self) -> SocketDomain {
        self.domain
    }
}

fn build(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, SERVER_PARAMS)?;
    let domain_v = args.required("domain")?;
    let domain = match domain_v.choice(&["INET", "INET6", "UNIX"])? {
        "INET" => SocketDomain::Inet,
        "INET6" => SocketDomain::Inet6,
        _ => SocketDomain::Unix,
    };
    let (index, name) = (args.get("index"), args.get("name"));
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
    let no_fds = |v: &endpoints_core::params::Value<'_>| match activation.absent_reason() {
        Some(why) => v.invalid(format_args!(
            "no descriptors were passed to this process ({why})"
        )),
        None => v.invalid(format_args!(
            "only {} descriptor(s) were passed",
            activation.descriptors().len()
        )),
    };
    let described = |what: &str, value: String| {
        Description::new("systemd")
            .with("domain", domain.name().trim_start_matches("AF_"))
            .with(what, value)
    };
    // A successor is handed this listener under its description's key, whatever names and
    // count it was given: that comes first.
    let handed_over = |canonical: &Description| -> Option<Box<dyn ServerEndpoint>> {
        let fd = endpoints_util::handover::inherited_for(canonical)?;
        Some(Box::new(SystemdServerEndpoint {
            domain,
            position: None,
            fd,
            canonical: canonical.clone(),
        }))
    };
    let (position, canonical) = match (index, name) {
        (Some(i), None) => {
            let n = i.u32()? as usize;
            let canonical = described("index", n.to_string());
            if let Some(e) = handed_over(&canonical) {
                return Ok(e);
            }
            if n >= activation.descriptors().len() {
                return Err(no_fds(&i));
            }
            (n, canonical)
        }
        (None, Some(nm)) => {
            let canonical = described("name", nm.as_str().to_owned());
            if let Some(e) = handed_over(&canonical) {
                return Ok(e);
            }
            let Some(p) = activation.position_of_name(nm.as_str()) else {
                if activation.descriptors().is_empty() {
                    return Err(no_fds(&nm));
                }
                return Err(nm.invalid(format_args!(
                    "no descriptor is named `{}` (LISTEN_FDNAMES: {})",
                    nm.as_str(),
                    activation.names().join(", ")
                )));
            };
            (p, canonical)
        }
        (Some(i), Some(_)) => {
            return Err(i
                .invalid("give exactly one of `index=` and `name=`")
                .with_parameter("index"));
        }
        (None, None) => {
            return Err(d
                .error(
                    ErrorKind::MissingParameter,
                    end..end,
                    "`systemd` needs `index=` or `name=` (exactly one)",
                )
                .with_parameter("index"));
        }
    };
    let fd = activation.descriptors()[position];
    Ok(Box::new(SystemdServerEndpoint {
        domain,
        position: Some(position),
        fd,
        canonical,
    }))
}

/// Check that `fd` is a listening stream socket of `domain` (nothing is changed when it is
/// not), and make it non-blocking.
fn check(fd: BorrowedFd<'_>, domain: SocketDomain) -> io::Result<()> {
    let number = fd.as_raw_fd();
    let sock = SockRef::from(&fd);
    let wrong = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {number} {why}"),
        )
    };
    match sock.r#type() {
        Ok(t) if t == Type::STREAM => {}
        Ok(_) => return Err(wrong("is not a stream socket".into())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
            return Err(wrong("is not a socket".into()));
        }
        Err(e) => return Err(e),
    }
    // socket2 offers `is_listener`/`domain` on Linux only; elsewhere SO_ACCEPTCONN and the
    // family of the local address say the same.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let (listening, actual) = (sock.is_listener()?, sock.domain()?);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let (listening, actual) = (
        crate::env::is_listener(number)?,
        sock.local_addr()?.domain(),
    );
    if !listening {
        return Err(wrong("is a socket that is not listening".into()));
    }
    if actual != domain.socket2() {
        let name = [SocketDomain::Inet, SocketDomain::Inet6, SocketDomain::Unix]
            .into_iter()
            .find(|d| d.socket2() == actual)
            .map_or("an other-family", |d| d.name());
        return Err(wrong(format!(
            "is an {name} socket, not {} as the description says",
            domain.name()
        )));
    }
    sock.set_nonblocking(true)
}

/// Wrap an adopted descriptor (checked by [`check`], so its family is the one the
/// description names); the same wrapping as `fd:`'s. On error it is closed, once: the
/// activation state has already given it up. Never chmod-ed or removed: the socket belongs
/// to the service manager (twisted#10261).
fn wrap(
    owned: OwnedFd,
    canonical: &Description,
    registration: Option<endpoints_util::handover::Registration>,
) -> io::Result<Box<dyn Listener>> {
    crate::fd::wrap_any(owned, canonical, registration)
}

impl fmt::Display for SystemdServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ServerEndpoint for SystemdServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let claim = endpoints_util::handover::claim(&self.canonical);
        let taken = match claim.inherited {
            // Handed over by a previous process that had adopted it from systemd.
            Some(fd) => check(fd.as_fd(), self.domain).map(|()| fd),
            None => {
                let mut state = lock();
                match (&mut *state, self.position) {
                    (Ok(a), Some(p)) if a.descriptors().get(p) == Some(&self.fd) => {
                        a.take_checked(p, |fd| check(fd, self.domain))
                    }
                    (_, None) => Err(crate::fd::handed_over_gone()),
                    _ => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("descriptor {} is no longer available", self.fd),
                    )),
                }
            }
        };
        taken
            .and_then(|owned| {
                let registration = crate::fd::register(&claim.name, &owned, &self.canonical);
                wrap(owned, &self.canonical, registration)
            })
            .map_err(|e| io_error(Operation::Listen, self, e))
    }
}

endpoints_core::register_server! {
    prefix: "systemd",
    summary: "adopt a listening socket passed by systemd socket activation",
    params: SERVER_PARAMS,
    build: build,
}
