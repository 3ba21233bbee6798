//! [`UpgradeListener`]: run a per-connection step (a TLS handshake, reading a PROXY header)
//! off the accept loop, for wrapper endpoints.
//!
//! A background task accepts from the inner listener and starts each connection's upgrade in
//! its own task with a deadline. Finished connections wait in a queue for
//! [`Listener::accept`]. So a client that connects and sends nothing delays nobody: it is
//! dropped at the deadline, and a failed upgrade is logged at debug level and never ends the
//! listener. At most `max_pending` upgrades run at once; past that, accepting pauses (the
//! kernel's accept queue holds the rest).

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::address::Address;
use crate::connection::Connection;
use crate::description::Description;
use crate::endpoint::Listener;

/// Default number of upgrades in progress at once.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// How an upgrade listener runs.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct UpgradeSettings {
    /// Deadline for each connection's upgrade.
    pub deadline: Duration,
    /// Upgrades in progress at once.
    pub max_pending: usize,
}

impl UpgradeSettings {
    /// `deadline` per upgrade, [`DEFAULT_MAX_PENDING`] at once.
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

type Upgrade = dyn Fn(Connection) -> std::pin::Pin<Box<dyn Future<Output = io::Result<Connection>> + Send>>
    + Send
    + Sync;

/// A listener whose connections went through an upgrade step. See the [module docs](self).
pub struct UpgradeListener {
    ready: mpsc::Receiver<io::Result<Connection>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
    canonical: Description,
    local: io::Result<Address>,
}

impl fmt::Debug for UpgradeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeListener")
            .field("canonical", &self.canonical.to_string())
            .finish()
    }
}

impl UpgradeListener {
    /// Start accepting from `inner`, upgrading each connection with `upgrade`. `canonical` is
    /// what `Display` shows. Must be called within a tokio runtime.
    pub fn spawn<F, Fut>(
        inner: Box<dyn Listener>,
        canonical: Description,
        settings: UpgradeSettings,
        upgrade: F,
    ) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Connection>> + Send + 'static,
    {
        let upgrade: Arc<Upgrade> = Arc::new(move |c| Box::pin(upgrade(c)));
        let local = inner.local_addr();
        let (tx, ready) = mpsc::channel(settings.max_pending.clamp(1, 4096));
        let (stop_tx, stop_rx) = oneshot::channel();
        let name = canonical.to_string();
        let task = tokio::spawn(run(inner, tx, stop_rx, settings, upgrade, name));
        Self {
            ready,
            stop: Some(stop_tx),
            task: Some(task),
            canonical,
            local,
        }
    }
}

async fn run(
    mut inner: Box<dyn Listener>,
    ready: mpsc::Sender<io::Result<Connection>>,
    mut stop: oneshot::Receiver<()>,
    settings: UpgradeSettings,
    upgrade: Arc<Upgrade>,
    name: String,
) -> io::Result<()> {
    let mut pending: JoinSet<Option<Connection>> = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = inner.accept(), if pending.len() < settings.max_pending => match accepted {
                Ok(conn) => {
                    let (upgrade, deadline, name) = (upgrade.clone(), settings.deadline, name.clone());
                    pending.spawn(async move {
                        let peer = conn.peer_addr().clone();
                        match tokio::time::timeout(deadline, upgrade(conn)).await {
                            Ok(Ok(c)) => Some(c),
                            Ok(Err(e)) => {
                                tracing::debug!(listener = %name, %peer, error = %e, "connection dropped: upgrade failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(listener = %name, %peer, ?deadline, "connection dropped: upgrade deadline passed");
                                None
                            }
                        }
                    });
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    break;
                }
            },
            Some(done) = pending.join_next(), if !pending.is_empty() => {
                if let Ok(Some(conn)) = done {
                    tokio::select! {
                        sent = ready.send(Ok(conn)) => if sent.is_err() { break },
                        _ = &mut stop => break,
                    }
                }
            }
        }
    }
    pending.shutdown().await;
    inner.close().await
}

impl fmt::Display for UpgradeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl Listener for UpgradeListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        match self.ready.recv().await {
            Some(r) => r,
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("`{}` is closed", self.canonical),
            )),
        }
    }

    fn local_addr(&self) -> io::Result<Address> {
        match &self.local {
            Ok(a) => Ok(a.clone()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    async fn close(mut self: Box<Self>) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for UpgradeListener {
    fn drop(&mut self) {
        // Dropped without close(): stop the accept task (it closes the inner listener).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
