//! [`ClientService`]: keep one logical connection to a client endpoint, reconnecting with a
//! retry policy (Twisted's `ClientService`, Rust-shaped).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints_core::{ClientEndpoint, Connection};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::backoff::{Backoff, RetryPolicy};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Protocol<H> = dyn Fn(Connection) -> (H, BoxFuture<()>) + Send + Sync;
type Prepare = dyn Fn(Connection) -> BoxFuture<io::Result<Connection>> + Send + Sync;

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
    phase: Phase,
    handle: Option<H>,
    /// Failed attempts since the service was created.
    failures: u64,
    last_error: Option<Arc<io::Error>>,
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
    state: watch::Sender<State<H>>,
}

impl<H: Clone + Send + Sync + 'static> Shared<H> {
    fn set(&self, phase: Phase, handle: Option<H>) {
        self.state.send_modify(|s| {
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
/// when that future ends, the connection is considered lost.
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
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol: Arc<Protocol<H>> = Arc::new(move |c| {
            let (h, fut) = protocol(c);
            (h, Box::pin(fut) as BoxFuture<()>)
        });
        let (state, _) = watch::channel(State {
            phase: Phase::Idle,
            handle: None,
            failures: 0,
            last_error: None,
        });
        Self {
            shared: Arc::new(Shared {
                endpoint: Arc::from(endpoint),
                protocol,
                prepare: None,
                policy: Arc::new(Backoff::new()),
                reset_after: None,
                state,
            }),
            running: Mutex::new(None),
        }
    }

    fn shared_mut(&mut self) -> &mut Shared<H> {
        Arc::get_mut(&mut self.shared).expect("configure the service before starting it")
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

    /// Start connecting (a no-op if running). Needs a tokio runtime.
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
        self.shared.set(Phase::Connecting, None);
        let task = tokio::spawn(run(self.shared.clone(), stop_rx));
        *running = Some((stop_tx, task));
    }

    /// Stop: a pending retry is cancelled at once, an attempt in progress is cancelled, an
    /// established connection is closed. Returns once the connection is gone. Waiters get
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
        self.shared.set(Phase::Stopped, None);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.shared.state.borrow().phase.clone()
    }

    /// The current connection's handle, or the next one. With `Some(n)`, give up after `n`
    /// more attempts fail in a row; after [`stop`](Self::stop), fail with `Cancelled`.
    pub async fn when_connected(
        &self,
        fail_after_failures: Option<u32>,
    ) -> Result<H, WhenConnectedError> {
        let mut rx = self.shared.state.subscribe();
        let base = rx.borrow().failures;
        loop {
            {
                let s = rx.borrow_and_update();
                match (&s.phase, &s.handle) {
                    (Phase::Connected, Some(h)) => return Ok(h.clone()),
                    (Phase::Stopped, _) => return Err(WhenConnectedError::Cancelled),
                    _ => {}
                }
                if let Some(n) = fail_after_failures
                    && s.failures - base >= u64::from(n)
                {
                    let e = s
                        .last_error
                        .clone()
                        .unwrap_or_else(|| Arc::new(io::Error::other("failed")));
                    return Err(WhenConnectedError::Failed(e));
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
) {
    let mut attempt: u32 = 0;
    loop {
        shared.set(Phase::Connecting, None);
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
        match outcome {
            Ok(conn) => {
                let (handle, driver) = (shared.protocol)(conn);
                let since = tokio::time::Instant::now();
                shared.set(Phase::Connected, Some(handle));
                tokio::select! {
                    () = driver => {}
                    // Dropping the driver closes the connection before `stop` returns.
                    _ = &mut stop => break,
                }
                tracing::info!(endpoint = %shared.endpoint, "connection lost");
                if shared.reset_after.is_none_or(|d| since.elapsed() >= d) {
                    attempt = 0;
                }
            }
            Err(e) => {
                tracing::debug!(endpoint = %shared.endpoint, error = %e, "connection attempt failed");
                shared.state.send_modify(|s| {
                    s.failures += 1;
                    s.last_error = Some(Arc::new(e));
                });
            }
        }
        attempt = attempt.saturating_add(1);
        let delay = shared.policy.delay(attempt);
        tracing::debug!(endpoint = %shared.endpoint, attempt, ?delay, "scheduling a retry");
        shared.set(Phase::Waiting, None);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = &mut stop => break,
        }
    }
    shared.set(Phase::Stopped, None);
}
