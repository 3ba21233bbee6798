//! [`TcpServerEndpoint`]: bind and listen with explicit socket options.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use endpoints_core::{Description, Listener, Operation, ServerEndpoint, async_trait, io_error};
use endpoints_util::handover;
use socket2::{Domain, Protocol, Socket, Type};

use crate::listener::TcpListener;

/// The default accept queue length. Twisted uses 50, which drops SYNs under a burst of
/// connections (measured: the accept rate fell from about 15 k/s to 0.1-4.7 k/s); the
/// kernel caps the value at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// Socket settings of a TCP listener.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpServerConfig {
    /// Address to bind (port 0: the system picks one).
    pub addr: SocketAddr,
    /// Accept queue length.
    pub backlog: u32,
    /// `SO_REUSEPORT`: let several listeners share the port.
    pub reuseport: bool,
    /// `IPV6_V6ONLY` for an IPv6 address: `false` also accepts IPv4 (dual stack).
    pub v6only: bool,
    /// `TCP_NODELAY` on accepted connections.
    pub nodelay: bool,
    /// TCP keepalive idle time on accepted connections.
    pub keepalive: Option<Duration>,
    /// `SO_RCVBUF` (inherited by accepted connections).
    pub recvbuf: Option<u32>,
    /// `SO_SNDBUF` (inherited by accepted connections).
    pub sendbuf: Option<u32>,
}

impl TcpServerConfig {
    /// Defaults for `addr`: backlog [`DEFAULT_BACKLOG`], dual stack, no other options.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            backlog: DEFAULT_BACKLOG,
            reuseport: false,
            v6only: false,
            nodelay: false,
            keepalive: None,
            recvbuf: None,
            sendbuf: None,
        }
    }
}

/// A TCP server endpoint (`tcp:` and `tcp6:`).
#[derive(Clone, Debug)]
pub struct TcpServerEndpoint {
    config: TcpServerConfig,
    canonical: Description,
}

impl TcpServerEndpoint {
    /// An endpoint for `config`; `canonical` is what `Display` shows (the parsers pass the
    /// canonical description; use [`from_config`](Self::from_config) otherwise).
    pub fn new(config: TcpServerConfig, canonical: Description) -> Self {
        Self { config, canonical }
    }

    /// An endpoint for `config`, described as `tcp:port=P:interface=A:backlog=B`.
    pub fn from_config(config: TcpServerConfig) -> Self {
        let canonical = Description::new("tcp")
            .with("port", config.addr.port().to_string())
            .with("interface", config.addr.ip().to_string())
            .with("backlog", config.backlog.to_string());
        Self { config, canonical }
    }

    /// The settings.
    pub fn config(&self) -> &TcpServerConfig {
        &self.config
    }

    fn bind(&self) -> io::Result<Socket> {
        let c = &self.config;
        let socket = Socket::new(
            Domain::for_address(c.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        // As every server does (and tokio's `TcpListener::bind`): rebinding a port whose old
        // connections are in TIME_WAIT must work.
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        #[cfg(all(
            unix,
            not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
        ))]
        if c.reuseport {
            socket.set_reuse_port(true)?;
        }
        if c.addr.is_ipv6() {
            // Always explicit: never depend on net.ipv6.bindv6only.
            socket.set_only_v6(c.v6only)?;
        }
        if let Some(n) = c.recvbuf {
            socket.set_recv_buffer_size(n as usize)?;
        }
        if let Some(n) = c.sendbuf {
            socket.set_send_buffer_size(n as usize)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&c.addr.into())?;
        socket.listen(i32::try_from(c.backlog).unwrap_or(i32::MAX))?;
        Ok(socket)
    }
}

impl fmt::Display for TcpServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

/// Check that an inherited socket is a listening TCP socket on this endpoint's address (the
/// port may differ only for port 0), and make it non-blocking.
fn adopt_inherited(fd: OwnedFd, config: &TcpServerConfig) -> io::Result<std::net::TcpListener> {
    let socket = Socket::from(fd);
    let wrong = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the inherited socket for this description {why}; start the new process with the same descriptions"
            ),
        )
    };
    if socket.r#type()? != Type::STREAM {
        return Err(wrong("is not a stream socket".into()));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !socket.is_listener()? {
        return Err(wrong("is not listening".into()));
    }
    let local = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| wrong("is not an IP socket".into()))?;
    let want = config.addr;
    if local.ip() != want.ip() || (want.port() != 0 && local.port() != want.port()) {
        return Err(wrong(format!("is bound to {local}, not {want}")));
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    Ok(socket.into())
}

#[async_trait]
impl ServerEndpoint for TcpServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let claim = handover::claim(&self.canonical);
        let adopted = claim.inherited.is_some();
        let std_listener: std::net::TcpListener = match claim.inherited {
            Some(fd) => adopt_inherited(fd, &self.config),
            None => self.bind().map(Into::into),
        }
        .map_err(|e| io_error(Operation::Listen, self, e))?;
        let inner = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        let local = inner.local_addr()?;
        let mut canonical = self.canonical.clone();
        canonical.set("port", local.port().to_string());
        if adopted {
            tracing::debug!(endpoint = %canonical, name = %claim.name, "listening on an inherited socket");
        } else {
            tracing::debug!(endpoint = %canonical, "listening");
        }
        // Without a registration this listener is simply not handed over (a duplicate failed:
        // out of descriptors); it serves all the same.
        let registration = match handover::register(&claim.name, inner.as_fd(), &[]) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(endpoint = %canonical, error = %e, "this listener cannot be handed over to a successor");
                None
            }
        };
        let mut listener = TcpListener::new(inner, canonical, &self.config);
        listener.handover = registration;
        Ok(Box::new(listener))
    }
}
