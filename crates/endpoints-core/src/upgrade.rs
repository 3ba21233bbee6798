//! [`UpgradeListener`]: run a per-connection step (a TLS handshake, reading a PROXY header)
//! off the accept loop, for wrapper endpoints.
//!
//! Each accepted connection's upgrade runs in its own task with a deadline, so a client that
//! connects and sends nothing delays nobody: it is dropped at the deadline, and a failed
//! upgrade is logged at debug level and never ends the listener. [`Listener::accept`] returns
//! whichever upgrade finishes first. At most `max_pending` upgrades run at once; past that,
//! accepting pauses (the kernel's accept queue holds the rest).
//!
//! With [`UpgradeSettings::inline_first_poll`], an upgrade is first polled once in `accept`
//! itself: when it can finish at once (a PROXY header already in the socket buffer), no task
//! is spawned. A poll never blocks, so a silent client still costs nothing but a spawn.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
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
    /// Poll each upgrade once in `accept` before spawning it. Good for cheap steps that often
    /// finish at once (reading a PROXY header); leave it off for CPU-heavy ones (a TLS
    /// handshake), which then run in parallel on the runtime's workers.
    pub inline_first_poll: bool,
}

impl UpgradeSettings {
    /// `deadline` per upgrade, [`DEFAULT_MAX_PENDING`] at once, no inline poll.
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            max_pending: DEFAULT_MAX_PENDING,
            inline_first_poll: false,
        }
    }

    /// Set [`inline_first_poll`](Self::inline_first_poll).
    pub fn inline_first_poll(mut self, yes: bool) -> Self {
        self.inline_first_poll = yes;
        self
    }
}

type Upgrade = dyn Fn(Connection) -> Pin<Box<dyn Future<Output = io::Result<Connection>> + Send>>
    + Send
    + Sync;
type Pending = Pin<Box<dyn Future<Output = Option<Connection>> + Send>>;

/// A listener whose connections went through an upgrade step. See the [module docs](self).
pub struct UpgradeListener {
    inner: Box<dyn Listener>,
    pending: JoinSet<Option<Connection>>,
    upgrade: Arc<Upgrade>,
    settings: UpgradeSettings,
    canonical: Description,
    name: Arc<str>,
}

impl fmt::Debug for UpgradeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeListener")
            .field("canonical", &self.name)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl UpgradeListener {
    /// Upgrade every connection of `inner` with `upgrade`. `canonical` is what `Display`
    /// shows. Upgrades are spawned on the current tokio runtime.
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
        let name: Arc<str> = canonical.to_string().into();
        Self {
            inner,
            pending: JoinSet::new(),
            upgrade,
            settings,
            canonical,
            name,
        }
    }

    fn start(&self, conn: Connection) -> Pending {
        let (upgrade, deadline, name) = (
            self.upgrade.clone(),
            self.settings.deadline,
            self.name.clone(),
        );
        Box::pin(async move {
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
        })
    }
}

impl fmt::Display for UpgradeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl Listener for UpgradeListener {
    /// Cancel-safe: upgrades in progress keep running in their tasks.
    async fn accept(&mut self) -> io::Result<Connection> {
        loop {
            tokio::select! {
                biased;
                Some(done) = self.pending.join_next(), if !self.pending.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return Ok(conn);
                    }
                }
                accepted = self.inner.accept(), if self.pending.len() < self.settings.max_pending => {
                    let mut upgrading = self.start(accepted?);
                    if self.settings.inline_first_poll {
                        // One poll, never blocking: done at once, or handed to a task (which
                        // polls again with its own waker).
                        match upgrading.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                            Poll::Ready(Some(conn)) => return Ok(conn),
                            Poll::Ready(None) => continue,
                            Poll::Pending => {}
                        }
                    }
                    self.pending.spawn(upgrading);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.inner.local_addr()
    }

    async fn close(mut self: Box<Self>) -> io::Result<()> {
        self.pending.shutdown().await;
        self.inner.close().await
    }
}
