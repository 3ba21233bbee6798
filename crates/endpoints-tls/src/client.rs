//! [`TlsClientEndpoint`]: TLS over any client endpoint; `connect()` resolves after the
//! handshake, with the certificate verified.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::{ClientEndpoint, Connection, Description, Operation, async_trait, io_error};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::info::TlsInfo;

/// A TLS client endpoint (`tls:` and `ssl:`).
pub struct TlsClientEndpoint {
    inner: Box<dyn ClientEndpoint>,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    timeout: Option<Duration>,
    canonical: Description,
}

impl fmt::Debug for TlsClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientEndpoint")
            .field("inner", &self.inner.to_string())
            .field("server_name", &self.server_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TlsClientEndpoint {
    /// TLS to `server_name` (verified against it; SNI sent for DNS names only) over `inner`,
    /// with `config`; `timeout` bounds connect and handshake together.
    pub fn new(
        inner: Box<dyn ClientEndpoint>,
        server_name: ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
        timeout: Option<Duration>,
        canonical: Description,
    ) -> Self {
        Self {
            inner,
            server_name,
            connector: TlsConnector::from(config),
            timeout,
            canonical,
        }
    }

    async fn open(&self) -> io::Result<Connection> {
        let mut plain = self.inner.connect().await?;
        let carried = std::mem::take(plain.extensions_mut());
        let (local, peer) = (plain.local_addr().clone(), plain.peer_addr().clone());
        let tls = self
            .connector
            .connect(self.server_name.clone(), plain)
            .await?;
        let info = TlsInfo::from_common(tls.get_ref().1, sni_of(&self.server_name));
        let mut conn = Connection::new(tls, local, peer);
        conn.extensions_mut().extend(carried);
        conn.extensions_mut().insert(info);
        Ok(conn)
    }
}

fn sni_of(name: &ServerName<'_>) -> Option<String> {
    match name {
        ServerName::DnsName(d) => Some(d.as_ref().to_owned()),
        _ => None,
    }
}

impl fmt::Display for TlsClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for TlsClientEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, self.open())
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no TLS connection within {:.3}s", t.as_secs_f64()),
                    ))
                }),
            None => self.open().await,
        };
        result.map_err(|e| io_error(Operation::Connect, self, e))
    }
}
