//! [`TcpListener`]: a tokio listener behind the shared never-deaf accept policy.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use endpoints_core::{Address, Connection, Description, Listener, async_trait};
use endpoints_util::accept::AcceptBackoff;
use socket2::{SockRef, TcpKeepalive};

use crate::server::TcpServerConfig;

/// A listening TCP socket. Made by [`TcpServerEndpoint`](crate::TcpServerEndpoint).
#[derive(Debug)]
pub struct TcpListener {
    inner: tokio::net::TcpListener,
    canonical: Description,
    backoff: AcceptBackoff,
    nodelay: bool,
    keepalive: Option<Duration>,
    /// The bound address when it names one IP: then it is every connection's local address
    /// and no `getsockname` is needed per connection.
    fixed_local: Option<SocketAddr>,
    /// Passed on by a handover while this listener lives.
    pub(crate) handover: Option<endpoints_util::handover::Registration>,
}

impl TcpListener {
    pub(crate) fn new(
        inner: tokio::net::TcpListener,
        canonical: Description,
        config: &TcpServerConfig,
    ) -> Self {
        let fixed_local = inner.local_addr().ok().filter(|a| !a.ip().is_unspecified());
        Self {
            fixed_local,
            inner,
            canonical,
            backoff: AcceptBackoff::new(),
            nodelay: config.nodelay,
            keepalive: config.keepalive,
            handover: None,
        }
    }

    /// Wrap a listening socket this process did not bind (for example one inherited from
    /// systemd), with the shared accept policy and no per-connection options.
    pub fn adopt(inner: tokio::net::TcpListener, canonical: Description) -> Self {
        let mut config = TcpServerConfig::new(std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        config.nodelay = false;
        Self::new(inner, canonical, &config)
    }

    /// Keep a handover registration for as long as this listener lives (an adopted socket
    /// that the next process should get too: `systemd:`, `fd:`).
    pub fn keep_registration(
        &mut self,
        registration: Option<endpoints_util::handover::Registration>,
    ) {
        self.handover = registration;
    }

    /// The tokio listener underneath.
    pub fn get_ref(&self) -> &tokio::net::TcpListener {
        &self.inner
    }

    fn configure(&self, stream: &tokio::net::TcpStream) -> io::Result<()> {
        if self.nodelay {
            stream.set_nodelay(true)?;
        }
        if let Some(idle) = self.keepalive {
            SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(())
    }
}

impl fmt::Display for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl Listener for TcpListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    self.backoff.success();
                    if let Err(e) = self.configure(&stream) {
                        // The connection died between accept and setsockopt: skip it.
                        tracing::debug!(listener = %self.canonical, %peer, error = %e, "dropped a connection that failed setup");
                        continue;
                    }
                    let local = match self.fixed_local.map_or_else(|| stream.local_addr(), Ok) {
                        Ok(a) => Address::Ip(a),
                        Err(e) => {
                            tracing::debug!(listener = %self.canonical, %peer, error = %e, "dropped a connection with no local address");
                            continue;
                        }
                    };
                    return Ok(Connection::new(stream, local, Address::Ip(peer)));
                }
                Err(e) => {
                    let canonical = &self.canonical;
                    self.backoff.handle(e, canonical).await.map_err(|e| {
                        endpoints_core::io_error(endpoints_core::Operation::Accept, canonical, e)
                    })?;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.inner.local_addr().map(Address::Ip)
    }

    async fn close(self: Box<Self>) -> io::Result<()> {
        // Dropping the tokio listener deregisters and closes the descriptor synchronously: a
        // listening socket has no TIME_WAIT, so the port is free once this returns.
        drop(self.inner);
        Ok(())
    }
}
