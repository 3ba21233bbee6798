//! The `ssh:` server endpoint: listen through an SSH server (`ssh -R`). The SSH server
//! listens (`tcpip-forward`, or `streamlocal-forward@openssh.com` for a unix path) and each
//! channel it opens for a connection there is an accepted connection, with the originator's
//! address as its peer. `close()` cancels the forward and ends the session.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use endpoints_core::params::Args;
use endpoints_core::{
    Address, Connection, Description, Listener, Operation, ParseError, ServerEndpoint, async_trait,
    io_error,
};
use tokio::sync::mpsc;

use crate::client::session_config;
use crate::params::SERVER_PARAMS;
use crate::session::{Forwarded, Live, SessionConfig, open, words};
use crate::stream::SshStream;

/// Where the SSH server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bind {
    /// A TCP address and port (0: the server picks one).
    Tcp(String, u16),
    /// A unix socket path on the server.
    Unix(String),
}

/// The `ssh:` server endpoint.
pub struct SshServerEndpoint {
    config: SessionConfig,
    bind: Bind,
    canonical: Description,
}

impl fmt::Debug for SshServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshServerEndpoint")
            .field("description", &self.canonical.to_string())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SshServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

/// A forward the SSH server listens for.
pub struct SshListener {
    live: Arc<Live>,
    bind: Bind,
    rx: mpsc::Receiver<Forwarded>,
    canonical: String,
}

impl fmt::Debug for SshListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshListener")
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SshListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

#[async_trait]
impl ServerEndpoint for SshServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        self.start()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))
    }
}

impl SshServerEndpoint {
    async fn start(&self) -> io::Result<Box<dyn Listener>> {
        // A bounded queue of channels the application has not accepted yet.
        let (tx, rx) = mpsc::channel(64);
        let handle = open(&self.config, Some(tx)).await?;
        let bind = match &self.bind {
            Bind::Tcp(addr, port) => {
                let got = handle
                    .tcpip_forward(addr.as_str(), u32::from(*port))
                    .await
                    .map_err(|e| {
                        words(
                            e,
                            &format!(
                                "the SSH server would not listen on {addr}:{port} (tcpip-forward; check its AllowTcpForwarding, GatewayPorts and that the port is free)"
                            ),
                        )
                    })?;
                let port = if *port == 0 {
                    u16::try_from(got).unwrap_or(0)
                } else {
                    *port
                };
                Bind::Tcp(addr.clone(), port)
            }
            Bind::Unix(path) => {
                handle.streamlocal_forward(path.as_str()).await.map_err(|e| {
                    words(
                        e,
                        &format!(
                            "the SSH server would not listen on the unix socket `{path}` (streamlocal-forward; check its AllowStreamLocalForwarding)"
                        ),
                    )
                })?;
                Bind::Unix(path.clone())
            }
        };
        let mut canonical = self.canonical.clone();
        if let Bind::Tcp(a, p) = &bind {
            canonical.set("listen", format!("{a}:{p}"));
        }
        Ok(Box::new(SshListener {
            live: Live::new(handle),
            bind,
            rx,
            canonical: canonical.to_string(),
        }))
    }
}

#[async_trait]
impl Listener for SshListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        match self.rx.recv().await {
            Some((channel, peer)) => {
                let stream = SshStream::new(channel, None, self.live.in_use());
                let delivery = stream.delivery();
                let local = self.local_addr()?;
                let mut conn = Connection::new(stream, local, peer);
                conn.extensions_mut().insert(delivery);
                Ok(conn)
            }
            None => Err(io_error(
                Operation::Accept,
                self,
                io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the SSH session ended (the server went away or stopped answering keepalives); listen again",
                ),
            )),
        }
    }

    fn local_addr(&self) -> io::Result<Address> {
        Ok(match &self.bind {
            Bind::Tcp(a, p) => a
                .parse::<IpAddr>()
                .map_or(Address::Unnamed, |ip| Address::Ip(SocketAddr::new(ip, *p))),
            Bind::Unix(p) => Address::Unix(PathBuf::from(p)),
        })
    }

    async fn close(self: Box<Self>) -> io::Result<()> {
        let handle = &self.live.handle;
        let cancelled = match &self.bind {
            Bind::Tcp(a, p) => handle.cancel_tcpip_forward(a.as_str(), u32::from(*p)).await,
            Bind::Unix(p) => handle.cancel_streamlocal_forward(p.as_str()).await,
        };
        // Connections accepted before go on (`endpoints listen` closes the listener once it
        // has its one connection): the session ends with the last of them.
        if self.live.users() == 0 {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "closed", "en")
                .await;
        }
        cancelled.map_err(|e| {
            io_error(
                Operation::Close,
                &*self,
                words(e, "the SSH server did not cancel the forward"),
            )
        })
    }
}

fn bind(args: &Args<'_>) -> Result<Bind, ParseError> {
    let v = args.required("listen")?;
    let text = v.as_str();
    if text.starts_with('/') {
        return Ok(Bind::Unix(text.to_owned()));
    }
    let (addr, port) = match text.rsplit_once(':') {
        Some((a, p)) => (
            a.strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(a),
            p,
        ),
        None => ("127.0.0.1", text),
    };
    let port: u16 = port.parse().map_err(|_| {
        v.invalid(format_args!(
            "`{port}` is not a port: write `[ADDRESS\\:]PORT` (as `ssh -R`) or an absolute unix socket path"
        ))
    })?;
    if addr.is_empty() || addr.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(v.invalid("the address before the port is empty or has a space"));
    }
    Ok(Bind::Tcp(addr.to_owned(), port))
}

/// Build an `ssh:` server from its description.
pub(crate) fn build(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, SERVER_PARAMS)?;
    let host_v = args.required("host")?;
    let host = host_v
        .as_str()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(host_v.invalid("the host is empty"));
    }
    let port = args.required("port")?.port()?;
    let bind = bind(&args)?;
    let (config, canonical) = session_config(d, &args, host, port, std::time::Duration::ZERO)?;
    Ok(Box::new(SshServerEndpoint {
        config,
        bind,
        canonical,
    }))
}

endpoints_core::register_server! {
    prefix: "ssh",
    summary: "listen through an SSH server (ssh -R: tcpip-forward or a unix socket), each forwarded channel a connection",
    params: SERVER_PARAMS,
    build: build,
}
