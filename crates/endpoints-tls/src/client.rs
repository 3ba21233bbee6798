//! [`TlsClientEndpoint`]: TLS over any client endpoint; `connect()` resolves after the
//! handshake, with the certificate verified.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::{ClientEndpoint, Connection, Description, Operation, async_trait, io_error};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::errors;
use crate::info::TlsInfo;
use crate::sniff::Sniff;
use crate::verify::{Recording, Verifier};

/// How a TLS client connection sits over its transport: callers reach the socket beneath
/// with [`Connection::beneath`]; the bytes are transformed.
static LAYER: endpoints_core::Layer<tokio_rustls::client::TlsStream<Sniff<Connection>>> =
    endpoints_core::Layer::<tokio_rustls::client::TlsStream<Sniff<Connection>>>::new(
        |t| t.get_ref().0.get_ref(),
        |t| t.get_mut().0.get_mut(),
    );

/// A TLS client endpoint (`tls:` and `ssl:`).
pub struct TlsClientEndpoint {
    inner: Box<dyn ClientEndpoint>,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    timeout: Option<Duration>,
    canonical: Description,
    inner_named: bool,
    /// Our verifier, to word a refused certificate: each connection gets its own recording
    /// copy of the configuration.
    verifier: Option<Arc<Verifier>>,
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
            config,
            timeout,
            canonical,
            inner_named: true,
            verifier: None,
        }
    }

    /// `config` verifies with `verifier`: connections record the words of a refusal.
    pub(crate) fn worded_by(mut self, verifier: Arc<Verifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The connector for one connection, and where its verifier leaves a refusal's words.
    fn connector(&self) -> (TlsConnector, Option<Arc<Recording>>) {
        match &self.verifier {
            Some(v) => {
                let recording = Arc::new(Recording::new(v.clone()));
                let mut config = (*self.config).clone();
                config
                    .dangerous()
                    .set_certificate_verifier(recording.clone());
                (TlsConnector::from(Arc::new(config)), Some(recording))
            }
            None => (TlsConnector::from(self.config.clone()), None),
        }
    }

    /// The inner transport is one the user named (`endpoint=`): its errors are quoted after
    /// this description. Otherwise (happy eyeballs) a failure names only this description.
    pub(crate) fn inner_named_by_user(mut self, named: bool) -> Self {
        self.inner_named = named;
        self
    }

    async fn open(&self) -> io::Result<Connection> {
        let mut plain = self.inner.connect().await.map_err(|e| {
            if self.inner_named {
                // Named inside this one: "cannot connect to `tls:...`: cannot connect to
                // `unix:...`: ...".
                io::Error::new(
                    e.kind(),
                    Worded {
                        words: e.to_string(),
                        cause: e,
                    },
                )
            } else {
                unwrap_endpoint_error(e)
            }
        })?;
        let carried = std::mem::take(plain.extensions_mut());
        let (local, peer) = (plain.local_addr().clone(), plain.peer_addr().clone());
        let (connector, recording) = self.connector();
        let handshake = connector
            .connect(self.server_name.clone(), Sniff::new(plain))
            .into_fallible()
            .await;
        let mut tls = match handshake {
            Ok(tls) => tls,
            Err((e, sniff)) => {
                let words = recording
                    .and_then(|r| r.words())
                    .or_else(|| errors::describe(&e, &sniff.first));
                return Err(match words {
                    Some(words) => io::Error::new(e.kind(), Worded { words, cause: e }),
                    None => e,
                });
            }
        };
        tls.get_mut().0.stop();
        let info = TlsInfo::from_common(tls.get_ref().1, sni_of(&self.server_name));
        let mut conn = Connection::new(tls, local, peer).with_layer(&LAYER);
        conn.extensions_mut().extend(carried);
        conn.extensions_mut().insert(info);
        Ok(conn)
    }
}

/// A handshake failure in words, keeping the original error as its source.
#[derive(Debug)]
struct Worded {
    words: String,
    cause: io::Error,
}

impl fmt::Display for Worded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words)
    }
}

impl std::error::Error for Worded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// The cause of an error that names an endpoint (the implicit `hostname:` transport), so
/// that the `tls:` description the user wrote is the one named. The OS error code is kept.
fn unwrap_endpoint_error(e: io::Error) -> io::Error {
    let Some(named) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<endpoints_core::EndpointIoError>())
    else {
        return e;
    };
    let cause = named.cause();
    match cause.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(cause.kind(), cause.to_string()),
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
