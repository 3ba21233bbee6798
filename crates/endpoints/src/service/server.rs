//! [`ServerService`]: listen on one or more descriptions, run a handler per connection, shut
//! down gracefully (Twisted's `strports.service`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints_util::metrics as names;
use metrics::{Counter, Gauge};

use endpoints_core::{Connection, Listener, ParseError, ServerEndpoint};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::shutdown::Shutdown;
use crate::{Error, ServerDescription};

/// One server endpoint for [`ServerService::start`]: a description as text (parsed and
/// built here), a checked [`ServerDescription`] (built once, when it was parsed: its key
/// files are not read again), or an endpoint object.
pub trait IntoServerEndpoint {
    /// The endpoint, built if it is still text.
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError>;
}

impl IntoServerEndpoint for &str {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        crate::server(self).map(Arc::from)
    }
}

impl IntoServerEndpoint for &&str {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        (*self).into_server_endpoint()
    }
}

impl IntoServerEndpoint for String {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        self.as_str().into_server_endpoint()
    }
}

impl IntoServerEndpoint for &String {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        self.as_str().into_server_endpoint()
    }
}

impl IntoServerEndpoint for ServerDescription {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        Ok(self.endpoint())
    }
}

impl IntoServerEndpoint for &ServerDescription {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        Ok(self.endpoint())
    }
}

/// A typed builder (`TcpServer::new(8080)`): built here.
impl<B: crate::builders::ServerBuilder> IntoServerEndpoint for B {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        self.build().map(Arc::from)
    }
}

impl IntoServerEndpoint for Box<dyn ServerEndpoint> {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        Ok(Arc::from(self))
    }
}

impl IntoServerEndpoint for Arc<dyn ServerEndpoint> {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        Ok(self)
    }
}

impl IntoServerEndpoint for &Arc<dyn ServerEndpoint> {
    fn into_server_endpoint(self) -> Result<Arc<dyn ServerEndpoint>, ParseError> {
        Ok(self.clone())
    }
}

/// What [`ServerService::start`] listens on: one [`IntoServerEndpoint`] (a `&str`, a
/// [`ServerDescription`], a `Box<dyn ServerEndpoint>`), or an array, slice or `Vec` of them
/// (`&["tcp:8080", "unix:/run/app.sock"]`, `args.listen` from clap).
pub trait IntoServerEndpoints {
    /// The endpoints, in order; the first description that does not build is the error.
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError>;
}

macro_rules! one {
    ($($t:ty),*) => {$(
        impl IntoServerEndpoints for $t {
            fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
                Ok(vec![self.into_server_endpoint()?])
            }
        }
    )*};
}
one!(
    &str,
    String,
    ServerDescription,
    &ServerDescription,
    Box<dyn ServerEndpoint>,
    Arc<dyn ServerEndpoint>
);

impl<B: crate::builders::ServerBuilder> IntoServerEndpoints for B {
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
        Ok(vec![self.into_server_endpoint()?])
    }
}

impl<T: IntoServerEndpoint> IntoServerEndpoints for Vec<T> {
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
        self.into_iter()
            .map(IntoServerEndpoint::into_server_endpoint)
            .collect()
    }
}

impl<T: IntoServerEndpoint, const N: usize> IntoServerEndpoints for [T; N] {
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
        self.into_iter()
            .map(IntoServerEndpoint::into_server_endpoint)
            .collect()
    }
}

impl<'a, T> IntoServerEndpoints for &'a [T]
where
    &'a T: IntoServerEndpoint,
{
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
        self.iter()
            .map(IntoServerEndpoint::into_server_endpoint)
            .collect()
    }
}

impl<'a, T, const N: usize> IntoServerEndpoints for &'a [T; N]
where
    &'a T: IntoServerEndpoint,
{
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
        self.as_slice().into_server_endpoints()
    }
}

impl<'a, T> IntoServerEndpoints for &'a Vec<T>
where
    &'a T: IntoServerEndpoint,
{
    fn into_server_endpoints(self) -> Result<Vec<Arc<dyn ServerEndpoint>>, ParseError> {
        self.as_slice().into_server_endpoints()
    }
}

/// What a graceful shutdown did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections open when shutdown began that finished before the deadline.
    pub drained: usize,
    /// Connections still open at the deadline, closed.
    pub aborted: usize,
}

/// Listening on every endpoint given to [`start`](Self::start), with a handler task per
/// connection (Twisted's `StreamServerEndpointService`).
///
/// ```no_run
/// # async fn demo(listen: Vec<endpoints::ServerDescription>) -> Result<(), endpoints::Error> {
/// use endpoints::service::ServerService;
/// use tokio::io::AsyncWriteExt;
/// # let ep = endpoints::server("tcp:8081")?;
/// // Text, clap's `ServerDescription`s, or endpoint objects: one way in.
/// let a = ServerService::start(&["tcp:8080", "unix:/run/app.sock"], |mut c| async move {
///     let _ = c.write_all(b"hello\n").await;
/// }).await?;
/// let b = ServerService::start(listen, |_c| async {}).await?;
/// let c = ServerService::start(ep, |_c| async {}).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServerService {
    stop: watch::Sender<bool>,
    acceptors: Vec<tokio::task::JoinHandle<()>>,
    connections: Arc<Mutex<JoinSet<()>>>,
    listening: Vec<String>,
    metrics: Arc<ServiceMetrics>,
}

/// What a [`ServerService`] records (docs/metrics.md), under the `tunnel` label of the
/// [scope](endpoints_util::metrics::scope) it was started in.
#[derive(Debug)]
struct ServiceMetrics {
    accepted: Counter,
    open: Gauge,
    clean: Counter,
    truncated: Counter,
    drain_cut: Counter,
    /// Set when shutdown aborts the handlers still running at its deadline.
    cutting: AtomicBool,
}

impl ServiceMetrics {
    fn new() -> Self {
        let tunnel = endpoints_util::metrics::current();
        let t = tunnel.as_ref();
        let ended = |end| {
            metrics::counter!(
                names::CONNECTIONS_ENDED,
                names::labels(t, &[(names::LABEL_END, end)])
            )
        };
        Self {
            accepted: metrics::counter!(names::CONNECTIONS_ACCEPTED, names::labels(t, &[])),
            open: metrics::gauge!(names::CONNECTIONS_OPEN, names::labels(t, &[])),
            clean: ended("clean"),
            truncated: ended("truncated"),
            drain_cut: ended("drain_cut"),
            cutting: AtomicBool::new(false),
        }
    }
}

/// One open connection's handler: counted open until dropped, then as ended: `clean` when
/// the handler returned, `drain_cut` when shutdown aborted it, `truncated` when it panicked.
struct Open {
    metrics: Arc<ServiceMetrics>,
    finished: bool,
}

impl Open {
    fn new(metrics: Arc<ServiceMetrics>) -> Self {
        metrics.accepted.increment(1);
        metrics.open.increment(1.0);
        Self {
            metrics,
            finished: false,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let m = &self.metrics;
        m.open.decrement(1.0);
        if self.finished {
            m.clean.increment(1);
        } else if m.cutting.load(Ordering::Relaxed) {
            m.drain_cut.increment(1);
        } else {
            m.truncated.increment(1);
        }
    }
}

impl ServerService {
    /// Listen on every endpoint (descriptions as text, [`ServerDescription`]s, endpoint
    /// objects: see [`IntoServerEndpoints`]; errors come back here, not only in a log: if one
    /// fails, those already listening are closed), then accept in the background and run
    /// `handler` on each connection. Needs a tokio runtime.
    ///
    /// Handlers of long-lived connections should use
    /// [`start_with_shutdown`](Self::start_with_shutdown), so that they can close when
    /// shutdown begins instead of being aborted at the deadline.
    pub async fn start<F, Fut>(
        endpoints: impl IntoServerEndpoints,
        handler: F,
    ) -> Result<Self, Error>
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_with_shutdown(endpoints, move |c, _| handler(c)).await
    }

    /// As [`start_with_shutdown`](Self::start_with_shutdown), with `name` as the `tunnel`
    /// label of what the service and its listeners record (docs/metrics.md): the same as
    /// starting it inside [`scope`](endpoints_util::metrics::scope)`(name, ...)`.
    pub async fn start_named<F, Fut>(
        name: impl Into<Arc<str>>,
        endpoints: impl IntoServerEndpoints,
        handler: F,
    ) -> Result<Self, Error>
    where
        F: Fn(Connection, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        endpoints_util::metrics::scope(name.into(), Self::start_with_shutdown(endpoints, handler))
            .await
    }

    /// As [`start`](Self::start), and each handler also gets a [`Shutdown`] signal, fired
    /// when [`shutdown`](Self::shutdown) begins: a handler that watches it and returns is
    /// counted as drained; one still running at the deadline is aborted.
    pub async fn start_with_shutdown<F, Fut>(
        endpoints: impl IntoServerEndpoints,
        handler: F,
    ) -> Result<Self, Error>
    where
        F: Fn(Connection, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let endpoints = endpoints.into_server_endpoints()?;
        let mut listeners: Vec<Box<dyn Listener>> = Vec::new();
        for e in endpoints {
            match e.listen().await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    for l in listeners {
                        let _ = l.close().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(Self::serve_listeners(listeners, handler))
    }

    /// Accept on listeners already open, running `handler` on each connection (what
    /// [`start_with_shutdown`](Self::start_with_shutdown) does once it listens). Needs a
    /// tokio runtime.
    pub(crate) fn serve_listeners<F, Fut>(listeners: Vec<Box<dyn Listener>>, handler: F) -> Self
    where
        F: Fn(Connection, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listening = listeners.iter().map(ToString::to_string).collect();
        let (stop, _) = watch::channel(false);
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let handler = Arc::new(handler);
        let metrics = Arc::new(ServiceMetrics::new());
        let acceptors = listeners
            .into_iter()
            .map(|mut l| {
                let (mut stopped, connections, handler, metrics) = (stop.subscribe(), connections.clone(), handler.clone(), metrics.clone());
                tokio::spawn(async move {
                    let name = l.to_string();
                    loop {
                        tokio::select! {
                            accepted = l.accept() => match accepted {
                                Ok(conn) => {
                                    // One span per connection, with the endpoint and the peer.
                                    let span = tracing::debug_span!("connection", listener = %name, peer = %conn.peer_addr());
                                    let signal = Shutdown::from_receiver(stopped.clone());
                                    let handling = handler(conn, signal);
                                    let open = Open::new(metrics.clone());
                                    let work = tracing::Instrument::instrument(async move {
                                        // The whole guard moves in (not only its field).
                                        let mut open = open;
                                        handling.await;
                                        open.finished = true;
                                    }, span);
                                    let mut set = connections.lock().unwrap_or_else(|p| p.into_inner());
                                    while set.try_join_next().is_some() {}
                                    set.spawn(work);
                                }
                                Err(e) => {
                                    tracing::error!(listener = %l, error = %e, "listener failed; it stops accepting");
                                    break;
                                }
                            },
                            _ = stopped.changed() => break,
                        }
                    }
                    let name = l.to_string();
                    if let Err(e) = l.close().await {
                        tracing::warn!(listener = %name, error = %e, "close failed");
                    }
                })
            })
            .collect();
        Self {
            stop,
            acceptors,
            connections,
            listening,
            metrics,
        }
    }

    /// What is listening: each listener's description (with the real ports).
    pub fn listening(&self) -> &[String] {
        &self.listening
    }

    /// Hand the listeners to a successor (`docs/handover.md`): start it
    /// ([`HandoverOptions::same_binary`](endpoints_util::handover::HandoverOptions::same_binary):
    /// this binary with the same arguments), passing every listener of this process (the
    /// handover is process-wide: other services' listeners go too), and wait until it calls
    /// [`signal_ready`](endpoints_util::handover::signal_ready). Then stop accepting and drain
    /// for up to `deadline`, as [`shutdown`](Self::shutdown), and return the successor's pid.
    /// On failure (the successor could not start, exited, or was not ready in time: it was
    /// killed and reaped) the service is given back, still serving, with the reason.
    pub async fn hand_over(
        self,
        options: &endpoints_util::handover::HandoverOptions,
        deadline: Duration,
    ) -> Result<(u32, ShutdownReport), (Self, endpoints_util::handover::HandoverError)> {
        match endpoints_util::handover::hand_over(options).await {
            Ok(ready) => {
                let pid = ready.pid;
                drop(ready.child);
                Ok((pid, self.shutdown(deadline).await))
            }
            Err(e) => Err((self, e)),
        }
    }

    /// Stop accepting (every listener is closed before this goes on) and fire the handlers'
    /// [`Shutdown`] signal, let open connections finish for up to `deadline`, then close
    /// (abort) the rest.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        // Connections that ended before shutdown began are not counted.
        while self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_join_next()
            .is_some()
        {}
        // Stops the acceptors and signals the handlers: one that returns now is drained.
        let _ = self.stop.send(true);
        for a in self.acceptors {
            let _ = a.await;
        }
        let mut set =
            std::mem::take(&mut *self.connections.lock().unwrap_or_else(|p| p.into_inner()));
        let mut report = ShutdownReport::default();
        let drain = async {
            while set.join_next().await.is_some() {
                report.drained += 1;
            }
        };
        if tokio::time::timeout(deadline, drain).await.is_err() {
            report.aborted = set.len();
            self.metrics.cutting.store(true, Ordering::Relaxed);
            set.shutdown().await;
        }
        report
    }
}
