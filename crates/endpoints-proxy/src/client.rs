//! The client side: connect through any client endpoint and send a PROXY header first.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Operation, async_trait, io_error,
};
use tokio::io::AsyncWriteExt;

tokio::task_local! {
    /// The addresses every `haproxy:` client connecting in this task announces, set by
    /// [`connect_announcing`].
    static ANNOUNCE: (Address, Address);
}

/// Connect with `client` (any client endpoint: `haproxy:tcp:...`, `haproxy:tls:...`, or one
/// holding a `haproxy:` client further down) and have every `haproxy:` client it goes through
/// announce `source` → `destination` instead of the connection's own addresses. A relay
/// passes its client's addresses on this way, whatever the description wraps around the
/// PROXY sender (TLS over it, for `haproxy:tls:`).
pub async fn connect_announcing(
    client: &dyn ClientEndpoint,
    source: Address,
    destination: Address,
) -> io::Result<Connection> {
    ANNOUNCE
        .scope((source, destination), client.connect())
        .await
}

/// A client endpoint that opens every connection with a PROXY header (`haproxy:` client).
pub struct ProxyClientEndpoint {
    inner: Box<dyn ClientEndpoint>,
    version: u8,
    options: Description,
}

impl fmt::Debug for ProxyClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyClientEndpoint")
            .field("inner", &self.inner.to_string())
            .field("version", &self.version)
            .finish()
    }
}

/// The header announcing `source` → `destination` (UNKNOWN/UNSPEC when either is not IP or
/// their families differ).
pub fn encode(version: u8, source: &Address, destination: &Address) -> Vec<u8> {
    let pair = match (source.ip(), destination.ip()) {
        (Some(s), Some(d)) if s.is_ipv4() == d.is_ipv4() => Some((s, d)),
        _ => None,
    };
    if version == 1 {
        return match pair {
            Some((s, d)) => {
                let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {proto} {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                )
                .into_bytes()
            }
            None => b"PROXY UNKNOWN\r\n".to_vec(),
        };
    }
    let mut h = crate::header::V2_SIGNATURE.to_vec();
    match pair {
        Some((SocketAddr::V4(s), SocketAddr::V4(d))) => {
            h.extend([0x21, 0x11, 0, 12]);
            h.extend(s.ip().octets());
            h.extend(d.ip().octets());
            h.extend(s.port().to_be_bytes());
            h.extend(d.port().to_be_bytes());
        }
        Some((s, d)) => {
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V6(a) => (a.ip().octets(), a.port()),
                SocketAddr::V4(a) => (a.ip().to_ipv6_mapped().octets(), a.port()),
            };
            let ((si, sp), (di, dp)) = (v6(s), v6(d));
            h.extend([0x21, 0x21, 0, 36]);
            h.extend(si);
            h.extend(di);
            h.extend(sp.to_be_bytes());
            h.extend(dp.to_be_bytes());
        }
        None => h.extend([0x21, 0x00, 0, 0]),
    }
    h
}

impl ProxyClientEndpoint {
    /// Send a v`version` header on every connection made by `inner`.
    pub fn new(inner: Box<dyn ClientEndpoint>, version: u8, options: Description) -> Self {
        Self {
            inner,
            version,
            options,
        }
    }
}

impl fmt::Display for ProxyClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::server::joined(&self.options, &self.inner).fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for ProxyClientEndpoint {
    /// Connect and announce this connection's own addresses (or those given to
    /// [`connect_announcing`], when called under it).
    async fn connect(&self) -> io::Result<Connection> {
        let mut conn = self
            .inner
            .connect()
            .await
            .map_err(|e| io_error(Operation::Connect, self, e))?;
        let header = ANNOUNCE
            .try_with(|(source, destination)| encode(self.version, source, destination))
            .unwrap_or_else(|_| encode(self.version, conn.local_addr(), conn.peer_addr()));
        conn.write_all(&header)
            .await
            .map_err(|e| io_error(Operation::Connect, self, e))?;
        Ok(conn)
    }
}

/// A client endpoint shown under another description (`haproxy:tls:...`, built as TLS over
/// `haproxy:hostname:...` but written, and shown, the way the user wrote it).
pub(crate) struct RenamedClient {
    pub(crate) inner: Box<dyn ClientEndpoint>,
    pub(crate) canonical: Description,
}

impl fmt::Debug for RenamedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenamedClient")
            .field("canonical", &self.canonical.to_string())
            .field("inner", &self.inner.to_string())
            .finish()
    }
}

impl fmt::Display for RenamedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for RenamedClient {
    async fn connect(&self) -> io::Result<Connection> {
        self.inner.connect().await
    }
}
