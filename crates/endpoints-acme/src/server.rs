//! [`AcmeServerEndpoint`]: TLS over any server endpoint, with an ACME-managed certificate.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::{
    Address, Connection, Description, Listener, Operation, ServerEndpoint, async_trait, io_error,
};
use endpoints_tls::TlsInfo;
use endpoints_util::upgrade::{UpgradeListener, UpgradeSettings};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::LazyConfigAcceptor;

use crate::manager::{ACME_TLS_ALPN, AcmeStatus, Certs, Lease, Manager, Settings};

/// The `acme:` server: TLS with a certificate obtained and renewed by ACME, over any server
/// endpoint. Build it from a description with [`build`](crate::build) (or the registry).
pub struct AcmeServerEndpoint {
    pub(crate) inner: Box<dyn ServerEndpoint>,
    pub(crate) settings: Arc<Settings>,
    /// The ordinary handshakes' configuration (its resolver serves `manager.certs.current`).
    pub(crate) config: Arc<ServerConfig>,
    /// Shared with every endpoint of the same cache, directory and names in the process.
    pub(crate) manager: Arc<Manager>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_pending_per_source: usize,
    /// The options as written (`acme:domains=...`), without the inner description.
    pub(crate) options: Description,
}

impl fmt::Debug for AcmeServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeServerEndpoint")
            .field("inner", &self.inner.to_string())
            .field("domains", &self.settings.domains)
            .field("directory", &self.settings.directory)
            .finish()
    }
}

impl AcmeServerEndpoint {
    /// Where the certificate stands: updated by the listener's background task (loaded from
    /// the cache, ordered, renewed, failed).
    pub fn status(&self) -> watch::Receiver<AcmeStatus> {
        self.manager.status.subscribe()
    }

    /// The ACME directory URL in use.
    pub fn directory(&self) -> &str {
        &self.settings.directory
    }

    /// The directory under `cache=` for this ACME directory URL, which holds `account.json`
    /// and the certificate, `<first name>-<hash>.pem` (a hash of the sorted names; a file
    /// of an older version, `<names joined with ,>.pem`, is read and moved to that name).
    pub fn cache_dir(&self) -> std::path::PathBuf {
        crate::cache::Cache::new(&self.settings.cache, &self.settings.directory)
            .dir()
            .to_path_buf()
    }
}

fn shown(options: &Description, inner: &Description) -> Description {
    let mut d = options.clone();
    for f in inner.fields() {
        d.push(f.clone());
    }
    d
}

impl fmt::Display for AcmeServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.to_string().parse::<Description>() {
            Ok(inner) => shown(&self.options, &inner).fmt(f),
            Err(_) => write!(f, "{}:{}", self.options, self.inner),
        }
    }
}

/// Serves the current certificate to ordinary handshakes.
#[derive(Debug)]
pub(crate) struct Current(pub(crate) Arc<Certs>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

/// Read the ClientHello; answer a TLS-ALPN-01 validation with its challenge certificate (and
/// close: that connection is not the application's), or complete an ordinary handshake.
async fn handshake(
    config: Arc<ServerConfig>,
    certs: Arc<Certs>,
    mut plain: Connection,
) -> io::Result<Connection> {
    let carried = std::mem::take(plain.extensions_mut());
    let (local, peer) = (plain.local_addr().clone(), plain.peer_addr().clone());
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), plain).await?;
    let hello = start.client_hello();
    let validation = hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
    if validation {
        let name = hello.server_name().unwrap_or("").to_owned();
        let Some(cfg) = certs.challenge(&name) else {
            return Err(io::Error::other(format!(
                "a TLS-ALPN-01 validation for `{name}` arrived with no challenge pending"
            )));
        };
        let mut tls = start.into_stream(cfg).await?;
        tracing::debug!(%peer, name, "acme: answered a TLS-ALPN-01 validation");
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        return Err(io::Error::other(
            "TLS-ALPN-01 validation answered (not an application connection)",
        ));
    }
    if certs.current().is_none() {
        return Err(io::Error::other(
            "no certificate yet: the ACME order has not completed (see the log)",
        ));
    }
    let tls = start.into_stream(config).await?;
    let server = tls.get_ref().1;
    let info = TlsInfo::from_common(server, server.server_name().map(str::to_owned));
    let mut conn = Connection::new(tls, local, peer);
    conn.extensions_mut().extend(carried);
    conn.extensions_mut().insert(info);
    Ok(conn)
}

/// Finished application connections waiting for `accept()`. Past it the accept loop waits
/// for room (the kernel's queue holds the next ones, as with any listener), except while a
/// validation is pending.
pub(crate) const QUEUE: usize = 32;

/// The accept loop, in a task of its own, so that validations are answered whether or not
/// the application calls `accept()` (`endpoints relay` stops at `--max-connections`).
///
/// Handshakes run in the upgrade pool as before; finished application connections go to
/// `queue`. While the queue is full the loop waits, unless a challenge is pending: then it
/// goes on accepting (the CA's connections must be answered within its timeout), and an
/// application connection that finds the queue still full is closed. Ends at `stop`, when
/// the listener is gone, or at an error of the listener beneath (passed on to `accept()`).
async fn accept_loop(
    mut listener: UpgradeListener,
    queue: mpsc::Sender<io::Result<Connection>>,
    mut stop: oneshot::Receiver<()>,
    certs: Arc<Certs>,
    name: Arc<str>,
) -> io::Result<()> {
    // `certs` holds the sender: `wait_for` never fails while the loop runs.
    let mut pending = certs.pending.subscribe();
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut stop => break,
            p = queue.reserve() => match p {
                Ok(p) => Some(p),
                Err(_) => break,
            },
            _ = pending.wait_for(|n| *n > 0) => None,
        };
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => break,
            r = listener.accept() => r,
            // The validation is over and the queue still full: wait for room again.
            _ = pending.wait_for(|n| *n == 0), if permit.is_none() => continue,
        };
        match (permit, accepted) {
            (Some(p), r) => {
                let end = r.is_err();
                p.send(r);
                if end {
                    break;
                }
            }
            (None, Ok(conn)) => match queue.try_send(Ok(conn)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Ok(conn))) => {
                    tracing::debug!(
                        listener = %name,
                        peer = %conn.peer_addr(),
                        "acme: connection closed: the application is not accepting ({QUEUE} connections wait) and a validation is pending"
                    );
                }
                Err(_) => break,
            },
            (None, Err(e)) => {
                if let Err(mpsc::error::TrySendError::Full(Err(e))) = queue.try_send(Err(e)) {
                    // The queue is full: `accept()` returns the connections waiting, then
                    // says the listener stopped; the cause is here.
                    tracing::warn!(listener = %name, error = %e, "acme: the listener beneath failed; no more connections");
                }
                break;
            }
        }
    }
    Box::new(listener).close().await
}

/// The listener: TLS connections from the accept loop's queue; the ACME task runs while it
/// is open.
#[derive(Debug)]
struct AcmeListener {
    queue: mpsc::Receiver<io::Result<Connection>>,
    name: Arc<str>,
    local: Result<Address, (io::ErrorKind, String)>,
    stop: Option<oneshot::Sender<()>>,
    accepting: Option<tokio::task::JoinHandle<io::Result<()>>>,
    /// The renewal task runs while a listener of these names holds a lease.
    _lease: Lease,
}

impl Drop for AcmeListener {
    fn drop(&mut self) {
        if let Some(t) = self.accepting.take() {
            t.abort();
        }
    }
}

impl fmt::Display for AcmeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[async_trait]
impl Listener for AcmeListener {
    /// Cancel-safe: connections wait in the queue.
    async fn accept(&mut self) -> io::Result<Connection> {
        match self.queue.recv().await {
            Some(r) => r,
            None => Err(io::Error::other(format!(
                "`{}` stopped accepting (the listener beneath failed: see the previous error or the log); listen again",
                self.name
            ))),
        }
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.local
            .clone()
            .map_err(|(kind, msg)| io::Error::new(kind, msg))
    }

    async fn close(mut self: Box<Self>) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.accepting.take() {
            Some(t) => match t.await {
                Ok(r) => r,
                Err(e) => Err(io::Error::other(format!(
                    "`{}`: the accept loop ended abnormally: {e}",
                    self.name
                ))),
            },
            None => Ok(()),
        }
    }
}

#[async_trait]
impl ServerEndpoint for AcmeServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let inner = self
            .inner
            .listen()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        let canonical = match inner.to_string().parse::<Description>() {
            Ok(d) => shown(&self.options, &d),
            Err(_) => self.options.clone(),
        };
        // The cached certificate first (unless another listener of these names already
        // runs), so the first handshake can use it.
        let lease = self.manager.open().await;
        let (config, certs) = (self.config.clone(), self.manager.certs.clone());
        let settings = UpgradeSettings::new(self.handshake_timeout)
            .max_pending_per_source(self.max_pending_per_source);
        let name: Arc<str> = canonical.to_string().into();
        let listener = UpgradeListener::spawn(inner, canonical, settings, move |conn| {
            handshake(config.clone(), certs.clone(), conn)
        })
        .layer(endpoints_util::metrics::Layer::Tls);
        let local = listener.local_addr().map_err(|e| (e.kind(), e.to_string()));
        let (tx, queue) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let accepting = tokio::spawn(accept_loop(
            listener,
            tx,
            stopped,
            self.manager.certs.clone(),
            name.clone(),
        ));
        Ok(Box::new(AcmeListener {
            queue,
            name,
            local,
            stop: Some(stop),
            accepting: Some(accepting),
            _lease: lease,
        }))
    }
}
