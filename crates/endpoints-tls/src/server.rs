//! [`TlsServerEndpoint`]: TLS over any server endpoint, handshakes off the accept loop.

use std::fmt;
use std::io;
use std::time::Duration;

use endpoints_core::{
    Connection, Description, Listener, Operation, ServerEndpoint, async_trait, io_error,
};
use endpoints_util::metrics::{Layer, Reason};
use endpoints_util::upgrade::{UpgradeListener, UpgradeSettings};
use tokio_rustls::TlsAcceptor;

use crate::info::TlsInfo;
use crate::reload::{Store, Watched};

/// Default deadline for a client to complete its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS server endpoint (`ssl:` and `tls:`).
pub struct TlsServerEndpoint {
    inner: Box<dyn ServerEndpoint>,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    canonical: Description,
    /// Whether `port=` in the canonical form is the inner TCP listener's (so port 0 is
    /// replaced by the real port once listening).
    port_is_inner: bool,
    max_pending_per_source: usize,
    /// The certificates to watch while a listener is open.
    store: Option<std::sync::Arc<Store>>,
}

impl fmt::Debug for TlsServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerEndpoint")
            .field("inner", &self.inner.to_string())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsServerEndpoint {
    /// TLS with `config` over `inner`. `port_is_inner`: the canonical `port=` names the inner
    /// TCP listener's port.
    pub fn new(
        inner: Box<dyn ServerEndpoint>,
        config: std::sync::Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
        canonical: Description,
        port_is_inner: bool,
    ) -> Self {
        Self {
            inner,
            acceptor: TlsAcceptor::from(config),
            handshake_timeout,
            canonical,
            port_is_inner,
            store: None,
            max_pending_per_source: endpoints_util::upgrade::DEFAULT_MAX_PENDING_PER_SOURCE,
        }
    }

    /// Reload the certificates of `store` (the config's resolver) while listening.
    pub(crate) fn watching(mut self, store: std::sync::Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Handshakes in progress at once from one source address once half the pool is in
    /// progress (`maxPendingPerSource`); more wait (as many, within the handshake deadline),
    /// then are closed.
    pub fn max_pending_per_source(mut self, n: usize) -> Self {
        self.max_pending_per_source = n;
        self
    }
}

/// How a TLS server connection sits over its transport: callers reach the socket beneath
/// with [`Connection::beneath`]; the bytes are transformed.
static LAYER: endpoints_core::Layer<tokio_rustls::server::TlsStream<Connection>> =
    endpoints_core::Layer::<tokio_rustls::server::TlsStream<Connection>>::new(
        |t| t.get_ref().0,
        |t| t.get_mut().0,
    );

async fn handshake(acceptor: TlsAcceptor, mut plain: Connection) -> io::Result<Connection> {
    let carried = std::mem::take(plain.extensions_mut());
    let (local, peer) = (plain.local_addr().clone(), plain.peer_addr().clone());
    let tls = acceptor
        .accept(plain)
        .await
        .map_err(|e| reason(&e).tag(e))?;
    let server = tls.get_ref().1;
    let info = TlsInfo::from_common(server, server.server_name().map(str::to_owned));
    let mut conn = Connection::new(tls, local, peer).with_layer(&LAYER);
    conn.extensions_mut().extend(carried);
    conn.extensions_mut().insert(info);
    Ok(conn)
}

/// The [`Reason`] a handshake failed for: a certificate refused by either side
/// (`certificate`), another TLS error (`protocol`), or the connection beneath (`io`).
fn reason(e: &io::Error) -> Reason {
    use rustls::AlertDescription as A;
    match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::CertificateRequired,
            ),
        ) => Reason::Certificate,
        Some(_) => Reason::Protocol,
        None => Reason::of(e),
    }
}

impl fmt::Display for TlsServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ServerEndpoint for TlsServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let inner = self
            .inner
            .listen()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        let mut canonical = self.canonical.clone();
        if self.port_is_inner
            && let Some(a) = inner.local_addr().ok().and_then(|a| a.ip())
        {
            canonical.set("port", a.port().to_string());
        }
        let acceptor = self.acceptor.clone();
        let settings = UpgradeSettings::new(self.handshake_timeout)
            .max_pending_per_source(self.max_pending_per_source);
        let listener: Box<dyn Listener> = Box::new(
            UpgradeListener::spawn(inner, canonical, settings, move |conn| {
                handshake(acceptor.clone(), conn)
            })
            .layer(Layer::Tls),
        );
        Ok(match &self.store {
            Some(store) => Box::new(Watched::new(listener, store.clone())),
            None => listener,
        })
    }
}
