//! [`UpgradeListener`]: run a per-connection step (a TLS handshake, reading a PROXY header)
//! off the accept loop, for wrapper endpoints.
//!
//! Each accepted connection's upgrade runs in its own task with a deadline, so a client that
//! connects and sends nothing delays nobody: it is dropped at the deadline, and a failed
//! upgrade is logged at debug level and never ends the listener. [`Listener::accept`] returns
//! whichever upgrade finishes first. At most `max_pending` upgrades run at once; past that,
//! accepting pauses (the kernel's accept queue holds the rest).
//!
//! One source must not hold every slot, and one address may be many clients (SNAT,
//! docker-proxy, an L4 balancer). So the per-source share applies only under pressure: while
//! fewer than half of `max_pending` upgrades are in progress, any connection starts its
//! upgrade at once. Past that, at most
//! [`max_pending_per_source`](UpgradeSettings::max_pending_per_source) upgrades (default
//! [`DEFAULT_MAX_PENDING_PER_SOURCE`]) run at once per peer IP address (an IPv4-mapped IPv6
//! address counts as its IPv4 address); a connection from a source at its share waits, in
//! arrival order, for one of that source's upgrades to end or for the pressure to fall. The
//! wait is bounded: it counts against the connection's deadline, at most
//! `max_pending_per_source` connections wait per source and at most `max_pending` in all, and
//! a connection past those bounds is closed at once (logged at debug level). So 1,100 silent
//! connections from one host hold at most half the pool and a bounded waiting room, and the
//! other hosts' upgrades start at once. Peers without an IP address (unix sockets) and peers
//! the wrapper exempts (see [`UpgradeListener::exempt`]: `haproxy:` exempts the proxies named
//! in `trusted=`, which carry many clients) are only bound by the total. A connection whose
//! peer address was announced by the peer itself carries [`CountAs`], and is counted against
//! the real one.
//!
//! With [`UpgradeSettings::inline_first_poll`], upgrades are polled by `accept` itself, with
//! its own waker, up to 16 at a time: one that finishes at once (a PROXY header already in the
//! socket buffer) or soon (a header a moment behind its connection) costs no task and no wake
//! of another thread. Past 16 in progress, an upgrade is polled once and then spawned as
//! above, so silent clients cannot hold the accept loop. The upgrades polled by `accept` move
//! only while it is being awaited; their deadline is checked then too (a header that arrived
//! in time is taken even if the check comes late).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use tokio::task::JoinSet;

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{Address, Connection, Description, Listener, ParseError};

use crate::metrics::{HandshakeFailures, Layer, Reason, Refused};

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
        .help("upgrades (header read, handshake) in progress at once from one IP address once the pool is half full, 1-1024 (default 64); more wait (as many, within the deadline), then are closed");

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
    /// Upgrades in progress at once from one source IP address while the pool is at least
    /// half full; past it, new connections from that address wait (as many, within their
    /// deadline), and past that are closed at once.
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

/// A connection accepted while its source was at its share, waiting to start its upgrade.
struct Waiting {
    conn: Connection,
    ip: IpAddr,
    /// Its upgrade deadline, counted from its accept: the wait is part of it.
    until: Instant,
}

/// Connections waiting for their source's share (see the [module docs](self)), oldest first.
#[derive(Default)]
struct WaitingRoom {
    queue: VecDeque<Waiting>,
    per_source: HashMap<IpAddr, usize>,
}

impl WaitingRoom {
    fn of(&self, ip: IpAddr) -> usize {
        self.per_source.get(&ip).copied().unwrap_or(0)
    }

    fn push(&mut self, w: Waiting) {
        *self.per_source.entry(w.ip).or_insert(0) += 1;
        self.queue.push_back(w);
    }

    fn remove(&mut self, i: usize) -> Option<Waiting> {
        let w = self.queue.remove(i)?;
        if let Some(n) = self.per_source.get_mut(&w.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&w.ip);
            }
        }
        Some(w)
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
    waiting: WaitingRoom,
    exempt: Option<Arc<Exempt>>,
    /// The tunnel this listener was created in ([`crate::metrics::scope`]).
    tunnel: Option<Arc<str>>,
    /// Failed upgrades, once the wrapper named its [`Layer`].
    failures: Option<HandshakeFailures>,
    refused: Refused,
}

/// What to do with a newly accepted connection.
enum Admit {
    /// Start its upgrade, holding this slot (if counted per source).
    Start(Option<Slot>),
    /// Its source is at its share under pressure: wait.
    Wait(IpAddr),
    /// Past every bound: close it. `true`: its source's own bound (policy), `false`: the
    /// waiting room's total (limit).
    Close(bool),
}

impl fmt::Debug for UpgradeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeListener")
            .field("canonical", &self.name)
            .field("pending", &self.pending.len())
            .field("waiting", &self.waiting.queue.len())
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
        let tunnel = crate::metrics::current();
        Self {
            refused: Refused::new(tunnel.as_ref()),
            tunnel,
            failures: None,
            inner,
            pending: JoinSet::new(),
            inline: Vec::new(),
            upgrade,
            settings,
            canonical,
            name,
            sources: Arc::default(),
            waiting: WaitingRoom::default(),
            exempt: None,
        }
    }

    /// Exempt the peers for which `exempt` is true from the per-source cap (a proxy that
    /// carries many clients); they are still bound by the total.
    pub fn exempt(mut self, exempt: impl Fn(&Address) -> bool + Send + Sync + 'static) -> Self {
        self.exempt = Some(Arc::new(exempt));
        self
    }

    /// Count failed upgrades as handshake failures of `layer`
    /// ([`HANDSHAKE_FAILURES`](crate::metrics::HANDSHAKE_FAILURES)), by their
    /// [`Reason::of`] (a timeout is `timeout`).
    pub fn layer(mut self, layer: Layer) -> Self {
        self.failures = Some(HandshakeFailures::new(layer, self.tunnel.as_ref()));
        self
    }

    fn in_progress(&self) -> usize {
        self.pending.len() + self.inline.len()
    }

    /// Under pressure: at least half the pool in progress, so the per-source share applies.
    fn under_pressure(&self) -> bool {
        self.in_progress() >= self.settings.max_pending.div_ceil(2)
    }

    /// A slot for `ip` if it may start now: any time without pressure, else within its share.
    fn slot_now(&self, ip: IpAddr) -> Option<Slot> {
        let cap = if self.under_pressure() {
            self.settings.max_pending_per_source
        } else {
            usize::MAX
        };
        self.sources.take(ip, cap)
    }

    /// What to do with `conn`, just accepted (see the [module docs](self)).
    fn admit(&self, conn: &Connection) -> Admit {
        let Some(ip) = source_of(conn) else {
            return Admit::Start(None);
        };
        if self.exempt.as_ref().is_some_and(|f| f(conn.peer_addr())) {
            return Admit::Start(None);
        }
        // Behind its source's waiting connections, in arrival order.
        if self.waiting.of(ip) == 0
            && let Some(slot) = self.slot_now(ip)
        {
            return Admit::Start(Some(slot));
        }
        if self.waiting.of(ip) >= self.settings.max_pending_per_source {
            Admit::Close(true)
        } else if self.waiting.queue.len() >= self.settings.max_pending {
            Admit::Close(false)
        } else {
            Admit::Wait(ip)
        }
    }

    /// Start the waiting connections that may start now, oldest first, and close those past
    /// their deadline; the first upgrade that finishes at once, if any.
    fn start_waiting(&mut self) -> Option<Connection> {
        // Past their deadline first, whether or not the pool has room (else the deadline
        // timer in `accept` would fire again at once): oldest first, so at the front.
        let now = Instant::now();
        while self.waiting.queue.front().is_some_and(|w| w.until <= now) {
            if let Some(w) = self.waiting.remove(0) {
                if let Some(f) = &self.failures {
                    f.failed(Reason::Timeout);
                }
                tracing::debug!(listener = %self.name, peer = %w.conn.peer_addr(), deadline = ?self.settings.deadline, "connection dropped: upgrade deadline passed while waiting for its address's share");
            }
        }
        let mut i = 0;
        while i < self.waiting.queue.len() && self.in_progress() < self.settings.max_pending {
            let Some(slot) = self.slot_now(self.waiting.queue[i].ip) else {
                i += 1;
                continue;
            };
            if let Some(w) = self.waiting.remove(i)
                && let Some(conn) = self.launch(w.conn, Some(slot), w.until)
            {
                return Some(conn);
            }
        }
        None
    }

    /// Run `conn`'s upgrade (inline or in a task); the connection if it finished at once.
    fn launch(
        &mut self,
        conn: Connection,
        slot: Option<Slot>,
        until: Instant,
    ) -> Option<Connection> {
        let mut upgrading = self.start(conn, slot, until);
        if self.settings.inline_first_poll {
            if self.inline.len() < INLINE_MAX {
                // Polled at the top of the accept loop, with its task's waker.
                self.inline.push(upgrading);
                return None;
            }
            // One poll, never blocking: done at once, or handed to a task (which polls again
            // with its own waker).
            match upgrading
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(done) => return done,
                Poll::Pending => {}
            }
        }
        self.pending.spawn(upgrading);
        None
    }

    fn start(&self, conn: Connection, slot: Option<Slot>, until: Instant) -> Pending {
        let (upgrade, deadline, name, failures) = (
            self.upgrade.clone(),
            self.settings.deadline,
            self.name.clone(),
            self.failures.clone(),
        );
        Box::pin(async move {
            // Held until the upgrade ends, however it ends.
            let _slot = slot;
            let peer = conn.peer_addr().clone();
            match tokio::time::timeout_at(until, upgrade(conn)).await {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    if let Some(f) = &failures {
                        f.failed(Reason::of(&e));
                    }
                    tracing::debug!(listener = %name, %peer, error = %e, "connection dropped: upgrade failed: {e}");
                    None
                }
                Err(_) => {
                    if let Some(f) = &failures {
                        f.failed(Reason::Timeout);
                    }
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
            if !self.waiting.queue.is_empty()
                && let Some(conn) = self.start_waiting()
            {
                return Ok(conn);
            }
            let in_progress = self.in_progress();
            let oldest_waiting = self.waiting.queue.front().map(|w| w.until);
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
                // The oldest waiting connection's deadline: closed at the top of the loop.
                () = tokio::time::sleep_until(oldest_waiting.unwrap_or_else(Instant::now)), if oldest_waiting.is_some() => {}
                accepted = self.inner.accept(), if in_progress < self.settings.max_pending => {
                    let conn = accepted?;
                    let until = Instant::now() + self.settings.deadline;
                    match self.admit(&conn) {
                        Admit::Start(slot) => {
                            if let Some(conn) = self.launch(conn, slot, until) {
                                return Ok(conn);
                            }
                        }
                        Admit::Wait(ip) => self.waiting.push(Waiting { conn, ip, until }),
                        Admit::Close(own) => {
                            if own {
                                self.refused.policy.increment(1);
                            } else {
                                self.refused.limit.increment(1);
                            }
                            tracing::debug!(
                                listener = %self.name,
                                peer = %conn.peer_addr(),
                                share = self.settings.max_pending_per_source,
                                "connection closed: the pool is half full and its address already has its share of upgrades in progress and waiting, or the waiting room is full"
                            );
                        }
                    }
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

#[cfg(test)]
mod tests {
    //! The per-source share under pressure (issue 24 item 10), on in-memory connections: a
    //! pool of 8 (pressure from 4 in progress) and a share of 2.
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    /// A listener whose connections are fed by the test.
    #[derive(Debug)]
    struct Feed(mpsc::UnboundedReceiver<Connection>);

    impl fmt::Display for Feed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("feed:")
        }
    }

    #[async_trait]
    impl Listener for Feed {
        async fn accept(&mut self) -> io::Result<Connection> {
            match self.0.recv().await {
                Some(c) => Ok(c),
                None => std::future::pending().await,
            }
        }
        fn local_addr(&self) -> io::Result<Address> {
            Ok(Address::Ip("127.0.0.1:1".parse().expect("addr")))
        }
        async fn close(self: Box<Self>) -> io::Result<()> {
            Ok(())
        }
    }

    /// A pool of 8 with a share of 2, whose upgrade is reading one byte.
    fn pool(deadline: Duration) -> (UpgradeListener, mpsc::UnboundedSender<Connection>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut settings = UpgradeSettings::new(deadline).max_pending_per_source(2);
        settings.max_pending = 8;
        let l = UpgradeListener::spawn(
            Box::new(Feed(rx)),
            "feed:".parse().expect("description"),
            settings,
            |mut conn: Connection| async move {
                let mut b = [0u8; 1];
                conn.read_exact(&mut b).await?;
                Ok(conn)
            },
        );
        (l, tx)
    }

    /// A connection from `ip`:`port`, fed to the pool; the client's end.
    fn connect(tx: &mpsc::UnboundedSender<Connection>, ip: &str, port: u16) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64);
        let peer = Address::Ip(SocketAddr::new(ip.parse().expect("ip"), port));
        let local = Address::Ip("127.0.0.1:1".parse().expect("addr"));
        tx.send(Connection::new(server, local, peer)).expect("feed");
        client
    }

    /// Let the pool accept everything fed so far (nothing finishes: `accept` times out).
    async fn settle(l: &mut UpgradeListener) {
        assert!(
            tokio::time::timeout(Duration::from_millis(100), l.accept())
                .await
                .is_err(),
            "no upgrade can finish yet"
        );
    }

    /// Whether the pool closed its end of `client` (EOF or reset).
    async fn closed(client: &mut DuplexStream) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(10), client.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    use std::net::SocketAddr;

    #[tokio::test(start_paused = true)]
    async fn without_pressure_one_source_may_exceed_its_share() {
        let (mut l, tx) = pool(Duration::from_secs(60));
        let mut c: Vec<_> = (0..4).map(|i| connect(&tx, "10.0.0.1", 1000 + i)).collect();
        settle(&mut l).await;
        assert_eq!(
            l.in_progress(),
            4,
            "all four started: the pool was under half full"
        );
        assert!(l.waiting.queue.is_empty());
        // The fifth finds the pool half full and its source past its share: it waits.
        let mut fifth = connect(&tx, "10.0.0.1", 1004);
        settle(&mut l).await;
        assert_eq!((l.in_progress(), l.waiting.queue.len()), (4, 1));
        assert!(!closed(&mut fifth).await, "waiting, not closed");
        for s in &mut c {
            assert!(!closed(s).await);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn under_pressure_a_source_at_its_share_waits_then_is_served() {
        let (mut l, tx) = pool(Duration::from_secs(60));
        // Another host fills half the pool: pressure.
        let _b: Vec<_> = (0..4).map(|i| connect(&tx, "10.0.0.2", 1000 + i)).collect();
        let mut a1 = connect(&tx, "10.0.0.1", 1);
        let _a2 = connect(&tx, "10.0.0.1", 2);
        let mut a3 = connect(&tx, "10.0.0.1", 3);
        settle(&mut l).await;
        assert_eq!(
            (l.in_progress(), l.waiting.queue.len()),
            (6, 1),
            "10.0.0.1 has its share of 2 in progress; its third waits"
        );
        assert!(
            !closed(&mut a3).await,
            "the third waits rather than being reset"
        );
        // One of 10.0.0.1's upgrades ends: its waiting connection starts.
        a1.write_all(b"x").await.expect("write");
        let done = l.accept().await.expect("accept");
        assert_eq!(done.peer_addr().ip().map(|a| a.port()), Some(1));
        a3.write_all(b"x")
            .await
            .expect("the waiting one was kept open");
        let done = l.accept().await.expect("accept");
        assert_eq!(done.peer_addr().ip().map(|a| a.port()), Some(3));
        assert!(l.waiting.queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded_per_source_and_by_the_deadline() {
        let (mut l, tx) = pool(Duration::from_secs(10));
        let mut b: Vec<_> = (0..4).map(|i| connect(&tx, "10.0.0.2", 1000 + i)).collect();
        // 10.0.0.1: 2 in progress, 2 waiting (its share again), the fifth closed at once.
        let mut a: Vec<_> = (0..5).map(|i| connect(&tx, "10.0.0.1", i)).collect();
        settle(&mut l).await;
        assert_eq!((l.in_progress(), l.waiting.queue.len()), (6, 2));
        let mut open = Vec::new();
        for s in &mut a {
            open.push(!closed(s).await);
        }
        assert_eq!(open, [true, true, true, true, false]);
        // The wait counts against the deadline: at 10 s everything from 10.0.0.1 is closed,
        // in progress or waiting (paused clock: no real waiting).
        let later = Instant::now() + Duration::from_secs(11);
        assert!(
            tokio::time::timeout_at(later, l.accept()).await.is_err(),
            "nothing can finish"
        );
        assert_eq!((l.in_progress(), l.waiting.queue.len()), (0, 0));
        for s in a.iter_mut().chain(&mut b) {
            assert!(closed(s).await, "closed at the deadline");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_and_deadlines_are_counted_under_the_tunnel() {
        use crate::metrics::{CONNECTIONS_REFUSED, HANDSHAKE_FAILURES, Layer, scope};
        let rec = endpoints_test_support::metrics::Recorded::new();
        let guard = rec.local();
        let (l, tx) = scope("web".into(), async { pool(Duration::from_secs(10)) }).await;
        let mut l = l.layer(Layer::Tls);
        drop(guard);
        let _b: Vec<_> = (0..4).map(|i| connect(&tx, "10.0.0.2", 1000 + i)).collect();
        // 10.0.0.1: 2 in progress, 2 waiting, the fifth closed at once: refused by policy.
        let _a: Vec<_> = (0..5).map(|i| connect(&tx, "10.0.0.1", i)).collect();
        settle(&mut l).await;
        let refused = |reason| {
            rec.counter(
                CONNECTIONS_REFUSED,
                &[("tunnel", "web"), ("reason", reason)],
            )
        };
        assert_eq!((refused("policy"), refused("limit")), (1, 0));
        // At the deadline the 6 in progress and the 2 waiting time out.
        let later = Instant::now() + Duration::from_secs(11);
        assert!(tokio::time::timeout_at(later, l.accept()).await.is_err());
        let timeouts = rec.counter(
            HANDSHAKE_FAILURES,
            &[("tunnel", "web"), ("layer", "tls"), ("reason", "timeout")],
        );
        assert_eq!(timeouts, 8);
        rec.assert_plain_labels(&["web"]);
    }
}
