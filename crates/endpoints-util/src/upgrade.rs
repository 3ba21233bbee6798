//! [`UpgradeListener`]: run a per-connection step (a TLS handshake, reading a PROXY header)
//! off the accept loop, for wrapper endpoints.
//!
//! Each accepted connection's upgrade runs in its own task with a deadline, so a client that
//! connects and sends nothing delays nobody: it is dropped at the deadline, and a failed
//! upgrade is logged at debug level and never ends the listener. [`Listener::accept`] returns
//! whichever upgrade finishes first. At most `max_pending` upgrades run at once; past that,
//! accepting pauses (the kernel's accept queue holds the rest).
//!
//! One source must not hold every slot: at most
//! [`max_pending_per_source`](UpgradeSettings::max_pending_per_source) upgrades (default
//! [`DEFAULT_MAX_PENDING_PER_SOURCE`]) run at once per peer IP address (an IPv4-mapped IPv6
//! address counts as its IPv4 address). A connection from a source already at its cap is
//! closed at once, before any upgrade step, and logged at debug level: it neither waits nor
//! takes a slot, so 1,100 silent connections from one host leave the other hosts' upgrades
//! untouched. Peers without an IP address (unix sockets) and peers the wrapper exempts (see
//! [`UpgradeListener::exempt`]: `haproxy:` exempts the proxies named in `trusted=`, which
//! carry many clients) are only bound by the total. A connection whose peer address was
//! announced by the peer itself carries [`CountAs`], and is counted against the real one.
//!
//! With [`UpgradeSettings::inline_first_poll`], upgrades are polled by `accept` itself, with
//! its own waker, up to 16 at a time: one that finishes at once (a PROXY header already in the
//! socket buffer) or soon (a header a moment behind its connection) costs no task and no wake
//! of another thread. Past 16 in progress, an upgrade is polled once and then spawned as
//! above, so silent clients cannot hold the accept loop. The upgrades polled by `accept` move
//! only while it is being awaited; their deadline is checked then too (a header that arrived
//! in time is taken even if the check comes late).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinSet;

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{Address, Connection, Description, Listener, ParseError};

/// Default number of upgrades in progress at once.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// Default number of upgrades in progress at once from one source IP address (1/16 of
/// [`DEFAULT_MAX_PENDING`]).
pub const DEFAULT_MAX_PENDING_PER_SOURCE: usize = 64;

/// The `maxPendingPerSource` parameter, shared by the wrappers that upgrade connections
/// (`haproxy:`, `ssl:`, `tls:`); read it with [`max_pending_per_source`].
/// It has no declared default, so canonical descriptions show it only when given.
pub const MAX_PENDING_PER_SOURCE_PARAM: Param =
    Param::optional("maxPendingPerSource", ParamKind::UInt)
        .help("upgrades (header read, handshake) in progress at once from one IP address, 1-1024 (default 64); more are closed at once");

/// The value of [`MAX_PENDING_PER_SOURCE_PARAM`] in `args` (declared in the plugin's
/// parameters), checked (1 to [`DEFAULT_MAX_PENDING`]); [`DEFAULT_MAX_PENDING_PER_SOURCE`]
/// when not given.
pub fn max_pending_per_source(args: &Args<'_>) -> Result<usize, ParseError> {
    let Some(v) = args.get(MAX_PENDING_PER_SOURCE_PARAM.name) else {
        return Ok(DEFAULT_MAX_PENDING_PER_SOURCE);
    };
    let n = v.u32()? as usize;
    if !(1..=DEFAULT_MAX_PENDING).contains(&n) {
        return Err(v.invalid(format_args!(
            "expected 1 to {DEFAULT_MAX_PENDING} (upgrades in progress at once from one address)"
        )));
    }
    Ok(n)
}

/// How an upgrade listener runs.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct UpgradeSettings {
    /// Deadline for each connection's upgrade.
    pub deadline: Duration,
    /// Upgrades in progress at once.
    pub max_pending: usize,
    /// Upgrades in progress at once from one source IP address; past it, new connections
    /// from that address are closed at once.
    pub max_pending_per_source: usize,
    /// Poll upgrades in `accept` itself (up to 16 at a time, then once each before spawning
    /// it). Good for cheap steps that often finish at once or soon (reading a PROXY header);
    /// leave it off for CPU-heavy ones (a TLS handshake), which then run in parallel on the
    /// runtime's workers.
    pub inline_first_poll: bool,
}

impl UpgradeSettings {
    /// `deadline` per upgrade, [`DEFAULT_MAX_PENDING`] at once, no inline poll.
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_per_source: DEFAULT_MAX_PENDING_PER_SOURCE,
            inline_first_poll: false,
        }
    }

    /// Set [`max_pending_per_source`](Self::max_pending_per_source) (at least 1).
    pub fn max_pending_per_source(mut self, n: usize) -> Self {
        self.max_pending_per_source = n.max(1);
        self
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
type Exempt = dyn Fn(&Address) -> bool + Send + Sync;

/// Upgrades in progress per source address.
#[derive(Default)]
struct Sources(Mutex<HashMap<IpAddr, usize>>);

/// One source's slot, given back when dropped (upgrade done, failed, timed out, cancelled).
struct Slot {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Sources {
    /// A slot for `ip`, or `None` when it already holds `cap`.
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            sources: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.sources.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The address a connection's upgrades are counted against for the per-source cap, when it
/// is not the connection's peer address. A wrapper that replaces the peer address with one
/// the peer chose (`haproxy:`, for senders it does not trust by name) sets it to the real
/// peer, so that a host cannot escape the cap of later upgrades (TLS after the header) by
/// announcing a new address on every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountAs(pub IpAddr);

/// The source key of a connection: its [`CountAs`], or its peer's IP address; IPv4-mapped
/// IPv6 as IPv4.
fn source_of(conn: &Connection) -> Option<IpAddr> {
    conn.extensions()
        .get::<CountAs>()
        .map(|c| c.0)
        .or_else(|| conn.peer_addr().ip().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// Upgrades polled by `accept` itself at most (see [`UpgradeSettings::inline_first_poll`]).
const INLINE_MAX: usize = 16;

/// The first of `set` to finish (removed from it), polled with the caller's waker.
fn poll_any(set: &mut Vec<Pending>) -> impl Future<Output = Option<Connection>> + '_ {
    std::future::poll_fn(move |cx| {
        for i in 0..set.len() {
            if let Poll::Ready(r) = set[i].as_mut().poll(cx) {
                drop(set.swap_remove(i));
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    })
}

/// A listener whose connections went through an upgrade step. See the [module docs](self).
pub struct UpgradeListener {
    inner: Box<dyn Listener>,
    pending: JoinSet<Option<Connection>>,
    /// Upgrades that did not finish on their first poll, polled by `accept` itself (with
    /// [`UpgradeSettings::inline_first_poll`], up to [`INLINE_MAX`]): no task each.
    inline: Vec<Pending>,
    upgrade: Arc<Upgrade>,
    settings: UpgradeSettings,
    canonical: Description,
    name: Arc<str>,
    sources: Arc<Sources>,
    exempt: Option<Arc<Exempt>>,
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
            inline: Vec::new(),
            upgrade,
            settings,
            canonical,
            name,
            sources: Arc::default(),
            exempt: None,
        }
    }

    /// Exempt the peers for which `exempt` is true from the per-source cap (a proxy that
    /// carries many clients); they are still bound by the total.
    pub fn exempt(mut self, exempt: impl Fn(&Address) -> bool + Send + Sync + 'static) -> Self {
        self.exempt = Some(Arc::new(exempt));
        self
    }

    /// A per-source slot for `conn`: `Ok(None)` when it is not capped (no IP, exempt),
    /// `Err(())` when its source is at the cap.
    fn slot_for(&self, conn: &Connection) -> Result<Option<Slot>, ()> {
        let Some(ip) = source_of(conn) else {
            return Ok(None);
        };
        if self.exempt.as_ref().is_some_and(|f| f(conn.peer_addr())) {
            return Ok(None);
        }
        self.sources
            .take(ip, self.settings.max_pending_per_source)
            .map(Some)
            .ok_or(())
    }

    fn start(&self, conn: Connection, slot: Option<Slot>) -> Pending {
        let (upgrade, deadline, name) = (
            self.upgrade.clone(),
            self.settings.deadline,
            self.name.clone(),
        );
        Box::pin(async move {
            // Held until the upgrade ends, however it ends.
            let _slot = slot;
            let peer = conn.peer_addr().clone();
            match tokio::time::timeout(deadline, upgrade(conn)).await {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    tracing::debug!(listener = %name, %peer, error = %e, "connection dropped: upgrade failed: {e}");
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
            let in_progress = self.pending.len() + self.inline.len();
            let inline = &mut self.inline;
            tokio::select! {
                biased;
                done = poll_any(inline), if !inline.is_empty() => {
                    if let Some(conn) = done {
                        return Ok(conn);
                    }
                }
                Some(done) = self.pending.join_next(), if !self.pending.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return Ok(conn);
                    }
                }
                accepted = self.inner.accept(), if in_progress < self.settings.max_pending => {
                    let conn = accepted?;
                    let Ok(slot) = self.slot_for(&conn) else {
                        tracing::debug!(
                            listener = %self.name,
                            peer = %conn.peer_addr(),
                            cap = self.settings.max_pending_per_source,
                            "connection closed: its address already has the most upgrades in progress"
                        );
                        continue;
                    };
                    let mut upgrading = self.start(conn, slot);
                    if self.settings.inline_first_poll {
                        if self.inline.len() < INLINE_MAX {
                            // Polled at the top of the loop, with this task's waker.
                            self.inline.push(upgrading);
                            continue;
                        }
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
