//! [`ClientService`]: keep one logical connection to a client endpoint, reconnecting with a
//! retry policy (Twisted's `ClientService`, Rust-shaped).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints_core::{Address, ClientEndpoint, Connection};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::backoff::{Backoff, RetryPolicy};
use super::shutdown::Shutdown;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Protocol<H> = dyn Fn(Connection, Shutdown) -> (H, BoxFuture<Option<io::Error>>) + Send + Sync;
type Prepare = dyn Fn(Connection) -> BoxFuture<io::Result<Connection>> + Send + Sync;
type OnFailure = dyn Fn(&FailedAttempt<'_>) + Send + Sync;
type OnConnected<H> = dyn Fn(&Connected<'_, H>) + Send + Sync;
type OnLost = dyn Fn(&Lost<'_>) + Send + Sync;

/// What a protocol's future may return: `()` (the connection simply ended), or a `Result`
/// whose error is the reason the connection was lost ([`LostReason::Failed`], given to
/// [`ClientService::on_lost`]).
pub trait ProtocolEnd: Send + 'static {
    /// The error that ended the connection, if any.
    fn into_error(self) -> Option<io::Error>;
}

impl ProtocolEnd for () {
    fn into_error(self) -> Option<io::Error> {
        None
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static> ProtocolEnd
    for Result<(), E>
{
    fn into_error(self) -> Option<io::Error> {
        let e: Box<dyn std::error::Error + Send + Sync> = self.err()?.into();
        Some(match e.downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::other(other),
        })
    }
}

/// A connection made, as given to [`ClientService::on_connected`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Connected<'a, H> {
    /// The protocol's handle for this connection (what `when_connected` hands out).
    pub handle: &'a H,
    /// Which attempt of the current series succeeded (1 when the first one did).
    pub attempt: u32,
    /// The peer, as the endpoint reported it.
    pub peer: &'a Address,
}

/// Why a connection ended, as given to [`ClientService::on_lost`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LostReason {
    /// The protocol's future returned: the peer closed the connection, or the protocol was
    /// done with it.
    Ended,
    /// The protocol's future returned this error (a reset, a timeout, a protocol error).
    Failed(Arc<io::Error>),
    /// [`ClientService::stop`] closed it (no reconnection follows).
    Stopped,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ended => f.write_str("the connection ended"),
            Self::Failed(e) => write!(f, "the connection failed: {e}"),
            Self::Stopped => f.write_str("the client service was stopped"),
        }
    }
}

/// A connection lost, as given to [`ClientService::on_lost`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Lost<'a> {
    /// Why.
    pub reason: &'a LostReason,
    /// How long the connection was up.
    pub connected_for: Duration,
    /// How long the service waits before reconnecting (`None` after a stop).
    pub next_delay: Option<Duration>,
}

/// A failed attempt, as given to [`ClientService::on_failure`].
#[derive(Debug)]
#[non_exhaustive]
pub struct FailedAttempt<'a> {
    /// Which attempt of the current series failed, as the retry policy's count: from 1, and
    /// from 1 again after a connection is lost (unless [`ClientService::reset_after`] found
    /// it too short-lived: then the series goes on).
    pub attempt: u32,
    /// Why it failed.
    pub error: &'a io::Error,
    /// How long the service waits before the next attempt.
    pub next_delay: Duration,
}

/// How long [`ClientService::stop`] waits by default for a protocol that watches its
/// [`Shutdown`] to close.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the service is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not started.
    Idle,
    /// An attempt (connect and prepare) is in progress.
    Connecting,
    /// Connected; `when_connected` answers at once.
    Connected,
    /// Waiting out the retry delay.
    Waiting,
    /// Stopped.
    Stopped,
}

#[derive(Clone)]
struct State<H> {
    /// Which run the state belongs to: each `start()` and each completed `stop()` begins a
    /// new one, and a run's task writes only while it is the current run (so an old task
    /// ending cannot overwrite a newer start).
    run: u64,
    phase: Phase,
    handle: Option<H>,
    /// Failed attempts since the service was created.
    failures: u64,
    last_error: Option<Arc<io::Error>>,
    /// Connections made since the service was created, and the handle of the latest one:
    /// a waiter that missed a short-lived connection (made and lost between two of its
    /// polls) still sees that one was made.
    connections: u64,
    latest: Option<H>,
}

/// Why [`ClientService::when_connected`] gave up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WhenConnectedError {
    /// The service was stopped (or stopped before it connected).
    Cancelled,
    /// This many attempts failed in a row; the last error.
    Failed(Arc<io::Error>),
}

impl fmt::Display for WhenConnectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cancelled => f.write_str("the client service was stopped"),
            Self::Failed(e) => write!(f, "connection attempts failed: {e}"),
        }
    }
}

impl std::error::Error for WhenConnectedError {}

struct Shared<H> {
    endpoint: Arc<dyn ClientEndpoint>,
    protocol: Arc<Protocol<H>>,
    prepare: Option<Arc<Prepare>>,
    policy: Arc<dyn RetryPolicy>,
    reset_after: Option<Duration>,
    on_failure: Option<Arc<OnFailure>>,
    on_connected: Option<Arc<OnConnected<H>>>,
    on_lost: Option<Arc<OnLost>>,
    /// Whether the protocol watches its [`Shutdown`] (made by `with_shutdown`), and how long
    /// `stop` waits for it.
    graceful: bool,
    stop_timeout: Duration,
    state: watch::Sender<State<H>>,
    metrics: ClientMetrics,
}

/// What a [`ClientService`] records (docs/metrics.md).
#[derive(Debug)]
struct ClientMetrics {
    failures: metrics::Counter,
    seconds: metrics::Histogram,
}

impl ClientMetrics {
    fn new(tunnel: Option<&Arc<str>>) -> Self {
        use endpoints_util::metrics as names;
        Self {
            failures: metrics::counter!(names::CONNECT_FAILURES, names::labels(tunnel, &[])),
            seconds: metrics::histogram!(names::CONNECT_SECONDS, names::labels(tunnel, &[])),
        }
    }
}

impl<H: Clone + Send + Sync + 'static> Shared<H> {
    /// Apply `f` if `run` is still the current run (a stale task writes nothing).
    fn update(&self, run: u64, f: impl FnOnce(&mut State<H>)) {
        self.state.send_if_modified(|s| {
            if s.run != run {
                return false;
            }
            f(s);
            true
        });
    }

    fn set(&self, run: u64, phase: Phase, handle: Option<H>) {
        self.update(run, |s| {
            s.phase = phase;
            s.handle = handle;
        });
    }
}

/// Keeps one connection to an endpoint: connects on [`start`](Self::start), reconnects after
/// a failure or a lost connection according to a [`RetryPolicy`] (default: Twisted's
/// [`Backoff`]), and stops on request.
///
/// Each connection is given to the `protocol`, which returns a cloneable handle (what
/// [`when_connected`](Self::when_connected) hands out) and a future that runs the connection;
/// when that future ends, the connection is considered lost (if it returns an `Err`, that
/// error is the [`LostReason`]). [`on_connected`](Self::on_connected) and
/// [`on_lost`](Self::on_lost) are told of each.
///
/// Attempt numbers (given to the [`RetryPolicy`] and to [`on_failure`](Self::on_failure))
/// count the failures of the current series from 1; a lost connection starts a new series
/// (the first reconnection waits the policy's first delay, and its failure is attempt 1).
///
/// Failures are visible: the first failed attempt of a series is logged at WARN (with the
/// endpoint, the error and the next delay; later ones at DEBUG with a count), the latest
/// error is [`last_error`](Self::last_error), and [`on_failure`](Self::on_failure) is called
/// for each. To see the logs, install a subscriber (`tracing_subscriber::fmt::init()`, or
/// `RUST_LOG=endpoints=debug` with an `EnvFilter`).
///
/// [`stop`](Self::stop) drops a connection made with [`new`](Self::new) at once. To close
/// cleanly (a TLS `close_notify`, a protocol goodbye), build the service with
/// [`with_shutdown`](Self::with_shutdown): the protocol gets a [`Shutdown`] signal and
/// `stop` waits for it to finish, up to [`stop_timeout`](Self::stop_timeout).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use endpoints::service::ClientService;
/// use tokio::io::AsyncReadExt;
///
/// let service = ClientService::new(endpoints::client("tcp:db.internal:5432")?, |mut conn| {
///     let peer = conn.peer_addr().to_string();
///     (peer, async move {
///         let mut buf = [0u8; 1024];
///         while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
///     })
/// });
/// service.start();
/// let peer = service.when_connected(Some(5)).await?;
/// println!("connected to {peer}");
/// service.stop().await;
/// # Ok(()) }
/// ```
pub struct ClientService<H: Clone + Send + Sync + 'static> {
    shared: Arc<Shared<H>>,
    running: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl<H: Clone + Send + Sync + 'static> fmt::Debug for ClientService<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientService")
            .field("endpoint", &self.shared.endpoint.to_string())
            .field("phase", &self.phase())
            .finish()
    }
}

impl<H: Clone + Send + Sync + 'static> ClientService<H> {
    /// A service for `endpoint`, running `protocol` on each connection.
    pub fn new<F, Fut>(endpoint: Box<dyn ClientEndpoint>, protocol: F) -> Self
    where
        F: Fn(Connection) -> (H, Fut) + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ProtocolEnd,
    {
        let protocol: Arc<Protocol<H>> = Arc::new(move |c, _| {
            let (h, fut) = protocol(c);
            (
                h,
                Box::pin(async move { fut.await.into_error() }) as BoxFuture<_>,
            )
        });
        Self::build(endpoint, protocol, false)
    }

    /// A service whose `protocol` also gets a [`Shutdown`] signal: on
    /// [`stop`](Self::stop) the signal fires and the protocol's future may close the
    /// connection cleanly (`conn.shutdown().await` sends a TLS `close_notify`); `stop`
    /// waits for that future up to [`stop_timeout`](Self::stop_timeout) (default 5 s), then
    /// drops it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use endpoints::service::ClientService;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let service = ClientService::with_shutdown(
    ///     endpoints::client("tls:db.internal:5432")?,
    ///     |mut conn, shutdown| ((), async move {
    ///         let mut buf = [0u8; 1024];
    ///         loop {
    ///             tokio::select! {
    ///                 r = conn.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { return },
    ///                 () = shutdown.signalled() => break,
    ///             }
    ///         }
    ///         let _ = conn.shutdown().await; // close_notify, then FIN
    ///     }),
    /// );
    /// service.start();
    /// service.stop().await;
    /// # Ok(()) }
    /// ```
    pub fn with_shutdown<F, Fut>(endpoint: Box<dyn ClientEndpoint>, protocol: F) -> Self
    where
        F: Fn(Connection, Shutdown) -> (H, Fut) + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ProtocolEnd,
    {
        let protocol: Arc<Protocol<H>> = Arc::new(move |c, s| {
            let (h, fut) = protocol(c, s);
            (
                h,
                Box::pin(async move { fut.await.into_error() }) as BoxFuture<_>,
            )
        });
        Self::build(endpoint, protocol, true)
    }

    fn build(
        endpoint: Box<dyn ClientEndpoint>,
        protocol: Arc<Protocol<H>>,
        graceful: bool,
    ) -> Self {
        let (state, _) = watch::channel(State {
            run: 0,
            phase: Phase::Idle,
            handle: None,
            failures: 0,
            last_error: None,
            connections: 0,
            latest: None,
        });
        Self {
            shared: Arc::new(Shared {
                endpoint: Arc::from(endpoint),
                protocol,
                prepare: None,
                policy: Arc::new(Backoff::new()),
                reset_after: None,
                on_failure: None,
                on_connected: None,
                on_lost: None,
                graceful,
                stop_timeout: DEFAULT_STOP_TIMEOUT,
                state,
                metrics: ClientMetrics::new(endpoints_util::metrics::current().as_ref()),
            }),
            running: Mutex::new(None),
        }
    }

    fn shared_mut(&mut self) -> &mut Shared<H> {
        Arc::get_mut(&mut self.shared).expect("configure the service before starting it")
    }

    /// Label what this service records (connect failures, connect time: docs/metrics.md)
    /// with `tunnel="NAME"`. Without it, the name of the
    /// [scope](endpoints_util::metrics::scope) the service was created in, if any.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.shared_mut().metrics = ClientMetrics::new(Some(&name.into()));
        self
    }

    /// Use `policy` for the delay before each retry (`attempt` counts from 1).
    pub fn retry(mut self, policy: impl RetryPolicy + 'static) -> Self {
        self.shared_mut().policy = Arc::new(policy);
        self
    }

    /// Run `prepare` (a handshake, a login) on each new connection before waiters are
    /// released. If it fails, the connection is closed and the attempt counts as a failure.
    pub fn prepare<F, Fut>(mut self, prepare: F) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Connection>> + Send + 'static,
    {
        self.shared_mut().prepare = Some(Arc::new(move |c| Box::pin(prepare(c))));
        self
    }

    /// Restart the retry count after a lost connection only if it had been up this long
    /// (default: always, as Twisted).
    pub fn reset_after(mut self, stable: Duration) -> Self {
        self.shared_mut().reset_after = Some(stable);
        self
    }

    /// Call `callback` after each failed attempt, with the attempt number, the error and the
    /// delay before the next attempt (to count failures, raise an alarm, or give up by
    /// calling [`stop`](Self::stop) from another task).
    pub fn on_failure(
        mut self,
        callback: impl Fn(&FailedAttempt<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.shared_mut().on_failure = Some(Arc::new(callback));
        self
    }

    /// Call `callback` when a connection is made (after [`prepare`](Self::prepare)), with
    /// its handle, the attempt that made it and the peer, before waiters are released.
    pub fn on_connected(
        mut self,
        callback: impl Fn(&Connected<'_, H>) + Send + Sync + 'static,
    ) -> Self {
        self.shared_mut().on_connected = Some(Arc::new(callback));
        self
    }

    /// Call `callback` when a connection ends, with the reason (the peer closed, the
    /// protocol's error, or a stop), how long it was up, and the delay before reconnecting.
    pub fn on_lost(mut self, callback: impl Fn(&Lost<'_>) + Send + Sync + 'static) -> Self {
        self.shared_mut().on_lost = Some(Arc::new(callback));
        self
    }

    /// How long [`stop`](Self::stop) waits for a protocol made with
    /// [`with_shutdown`](Self::with_shutdown) to close after the signal (default 5 s); then
    /// the connection is dropped.
    pub fn stop_timeout(mut self, bound: Duration) -> Self {
        self.shared_mut().stop_timeout = bound;
        self
    }

    /// The error of the latest failed attempt (kept after a later success), if any failed.
    pub fn last_error(&self) -> Option<Arc<io::Error>> {
        self.shared.state.borrow().last_error.clone()
    }

    /// Start connecting (a no-op if running). Needs a tokio runtime. A `start()` made while
    /// [`stop`](Self::stop) is still waiting for the old run to end starts a new run, which
    /// that `stop()` leaves running (as Twisted's restart after a stop).
    pub fn start(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running
            .as_ref()
            .is_some_and(|(_, task)| !task.is_finished())
        {
            tracing::debug!("client service already running");
            return;
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        // Waiters from now on wait for this run, not for the stop before it.
        let mut id = 0;
        self.shared.state.send_modify(|s| {
            s.run += 1;
            id = s.run;
            s.phase = Phase::Connecting;
            s.handle = None;
        });
        let task = tokio::spawn(run(self.shared.clone(), stop_rx, id));
        *running = Some((stop_tx, task));
    }

    /// Stop: a pending retry is cancelled at once, an attempt in progress is cancelled, an
    /// established connection is closed (with [`with_shutdown`](Self::with_shutdown), by the
    /// protocol once it sees the signal, within [`stop_timeout`](Self::stop_timeout)).
    /// Returns once the connection is gone. Waiters get
    /// [`WhenConnectedError::Cancelled`].
    pub async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, task)) = running {
            let _ = stop.send(());
            let _ = task.await;
        }
        // A start() while we waited began a new run: it stays. Checked under the lock that
        // start() takes, so the two cannot interleave here.
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_none() {
            self.shared.state.send_modify(|s| {
                s.run += 1;
                s.phase = Phase::Stopped;
                s.handle = None;
                s.latest = None;
            });
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.shared.state.borrow().phase.clone()
    }

    /// The current connection's handle, or the next one (even if that one is lost before
    /// this call sees it). With `Some(n)`, give up after `n` more attempts fail in a row,
    /// with the last attempt's error (`Some(0)` counts as `Some(1)`, as Twisted's countdown:
    /// the next failure gives up); after [`stop`](Self::stop), fail with `Cancelled`.
    pub async fn when_connected(
        &self,
        fail_after_failures: Option<u32>,
    ) -> Result<H, WhenConnectedError> {
        let mut rx = self.shared.state.subscribe();
        let (base_failures, base_connections) = {
            let s = rx.borrow();
            (s.failures, s.connections)
        };
        let give_up_after = fail_after_failures.map(|n| u64::from(n.max(1)));
        loop {
            {
                let s = rx.borrow_and_update();
                if let (Phase::Connected, Some(h)) = (&s.phase, &s.handle) {
                    return Ok(h.clone());
                }
                // A connection came and went between two of our polls.
                if s.connections > base_connections
                    && let Some(h) = &s.latest
                {
                    return Ok(h.clone());
                }
                if s.phase == Phase::Stopped {
                    return Err(WhenConnectedError::Cancelled);
                }
                if let Some(n) = give_up_after
                    && s.failures - base_failures >= n
                    && let Some(e) = &s.last_error
                {
                    return Err(WhenConnectedError::Failed(e.clone()));
                }
            }
            if rx.changed().await.is_err() {
                return Err(WhenConnectedError::Cancelled);
            }
        }
    }
}

impl<H: Clone + Send + Sync + 'static> Drop for ClientService<H> {
    fn drop(&mut self) {
        if let Some((stop, task)) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = stop.send(());
            task.abort();
        }
    }
}

async fn run<H: Clone + Send + Sync + 'static>(
    shared: Arc<Shared<H>>,
    mut stop: oneshot::Receiver<()>,
    id: u64,
) {
    // Failed attempts of the current series (the retry policy's count).
    let mut attempt: u32 = 0;
    // Failures since the run started or since the last connection: the first is a WARN.
    let mut streak: u64 = 0;
    loop {
        shared.set(id, Phase::Connecting, None);
        let began = tokio::time::Instant::now();
        let connecting = async {
            let conn = shared.endpoint.connect().await?;
            match &shared.prepare {
                // A failed prepare drops (closes) the connection it was given.
                Some(prepare) => prepare(conn).await,
                None => Ok(conn),
            }
        };
        let outcome = tokio::select! {
            r = connecting => r,
            _ = &mut stop => break,
        };
        let delay = match outcome {
            Ok(conn) => {
                shared.metrics.seconds.record(began.elapsed().as_secs_f64());
                if streak > 0 {
                    tracing::info!(endpoint = %shared.endpoint, failures = streak, "connected after failed attempts");
                }
                streak = 0;
                let peer = conn.peer_addr().clone();
                let (signal, shutdown) = Shutdown::channel();
                let (handle, mut driver) = (shared.protocol)(conn, shutdown);
                let since = tokio::time::Instant::now();
                if let Some(callback) = &shared.on_connected {
                    callback(&Connected {
                        handle: &handle,
                        attempt: attempt.saturating_add(1),
                        peer: &peer,
                    });
                }
                shared.update(id, |s| {
                    s.phase = Phase::Connected;
                    s.connections += 1;
                    s.latest = Some(handle.clone());
                    s.handle = Some(handle);
                });
                let reason = tokio::select! {
                    end = &mut driver => match end {
                        None => LostReason::Ended,
                        Some(e) => LostReason::Failed(Arc::new(e)),
                    },
                    _ = &mut stop => {
                        if shared.graceful {
                            // Let the protocol close cleanly, within the bound.
                            let _ = signal.send(true);
                            if tokio::time::timeout(shared.stop_timeout, driver).await.is_err() {
                                tracing::debug!(endpoint = %shared.endpoint, timeout = ?shared.stop_timeout, "the protocol did not close in time; dropping the connection");
                            }
                        } else {
                            // Dropping the driver closes the connection before `stop` returns.
                            drop(driver);
                        }
                        if let Some(callback) = &shared.on_lost {
                            callback(&Lost {
                                reason: &LostReason::Stopped,
                                connected_for: since.elapsed(),
                                next_delay: None,
                            });
                        }
                        break;
                    }
                };
                let connected_for = since.elapsed();
                // A new series begins, unless `reset_after` finds the connection too
                // short-lived: then the loss counts as a failure of the series it continues.
                let delay = if shared.reset_after.is_none_or(|d| connected_for >= d) {
                    attempt = 0;
                    shared.policy.delay(1)
                } else {
                    attempt = attempt.saturating_add(1);
                    shared.policy.delay(attempt)
                };
                tracing::info!(endpoint = %shared.endpoint, reason = %reason, ?connected_for, next_delay = ?delay, "connection lost");
                if let Some(callback) = &shared.on_lost {
                    callback(&Lost {
                        reason: &reason,
                        connected_for,
                        next_delay: Some(delay),
                    });
                }
                delay
            }
            Err(e) => {
                shared.metrics.failures.increment(1);
                streak += 1;
                attempt = attempt.saturating_add(1);
                let next = shared.policy.delay(attempt);
                if streak == 1 {
                    tracing::warn!(endpoint = %shared.endpoint, error = %e, next_delay = ?next, "cannot connect; retrying (further failures are logged at DEBUG)");
                } else {
                    tracing::debug!(endpoint = %shared.endpoint, error = %e, failures = streak, next_delay = ?next, "connection attempt failed again");
                }
                // Recorded first, so that the callback's `last_error()` is this error.
                let e = Arc::new(e);
                shared.update(id, |s| {
                    s.failures += 1;
                    s.last_error = Some(e.clone());
                });
                if let Some(callback) = &shared.on_failure {
                    callback(&FailedAttempt {
                        attempt,
                        error: &e,
                        next_delay: next,
                    });
                }
                next
            }
        };
        tracing::debug!(endpoint = %shared.endpoint, attempt, ?delay, "scheduling a retry");
        shared.set(id, Phase::Waiting, None);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = &mut stop => break,
        }
    }
    shared.set(id, Phase::Stopped, None);
}
