//! Copying both ways between two streams, the way a relay must: half-close propagated by a
//! stated policy, a linger deadline once one side is done (and a loud cut when it passes), an
//! optional idle timeout, byte counts.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

// Tokio's clock, so that tests with a paused clock see the idle and quiet periods.
use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Buffer per direction (64 KiB: what socat needs `-b 65536` for).
pub(crate) const BUFFER: usize = 64 * 1024;

/// Under `--half-close auto`, how long a TLS peer must have been quiet before our
/// `close_notify` goes out: servers that follow TLS 1.2's rule close at once on it and drop
/// their pending writes, so the reply to what we sent must be in first.
pub(crate) const TLS_QUIET: Duration = Duration::from_secs(1);

/// Under `--half-close auto`, for `listen` and `connect` without `--linger`: how long a
/// WebSocket peer that is not ours (no half-close) must have been quiet before our Close goes
/// out, since it sends nothing after it. `relay` waits its `--linger` time (5 s by default).
pub(crate) const CLOSE_ONLY_QUIET: Duration = Duration::from_secs(1);

/// Bytes moved each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// From `a` to `b`, delivered.
    pub(crate) a_to_b: u64,
    /// From `b` to `a`, delivered.
    pub(crate) b_to_a: u64,
    /// Read from `a` but not delivered to `b` when the copy ended (non-zero only after a
    /// failure or a cut).
    pub(crate) a_to_b_held: u64,
    /// Read from `b` but not delivered to `a`.
    pub(crate) b_to_a_held: u64,
}

/// When one side's data ends, how that end is passed on (`--half-close`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HalfClose {
    /// Plain sockets, and WebSockets between our own ends (an in-band end of data): at once.
    /// TLS: once the peer has been quiet for [`TLS_QUIET`] (or has closed), so a server that
    /// closes at once on `close_notify` loses no reply. A WebSocket peer that is not ours
    /// (no half-close: the end is a Close, after which it sends nothing): once it has been
    /// quiet for the linger time, or has closed.
    Auto,
    /// At once, whatever the transport (TLS: `close_notify` as soon as our data ends).
    Always,
    /// Not until the other side has closed too: our end stays open for writing.
    Never,
}

impl std::str::FromStr for HalfClose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "expected `auto`, `always` or `never`, got `{}`",
                other.escape_debug()
            )),
        }
    }
}

/// What a direction's destination does with an end of data, for `--half-close auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A half-close that drops nothing: a TCP or unix socket, a pipe, a WebSocket between our
    /// own ends (the end of data in-band).
    HalfCloses,
    /// TLS: `close_notify`, on which many peers close at once.
    Tls,
    /// A WebSocket peer that is not ours: the end is a Close, after which the peer sends
    /// nothing more. Held until the peer has been quiet this long (the linger time).
    CloseOnly(Duration),
}

impl HalfClose {
    /// How a direction ends whose destination is `destination`.
    pub(crate) fn finish(self, destination: Destination) -> Finish {
        match (self, destination) {
            (Self::Always, _) | (Self::Auto, Destination::HalfCloses) => Finish::Now,
            (Self::Auto, Destination::Tls) => Finish::WhenQuiet(TLS_QUIET),
            (Self::Auto, Destination::CloseOnly(quiet)) => Finish::WhenQuiet(quiet),
            (Self::Never, _) => Finish::Never,
        }
    }
}

/// How one direction passes its end of data on to its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Shut the destination's write side down at once.
    Now,
    /// Once the other direction has been quiet this long, or has ended.
    WhenQuiet(Duration),
    /// Once the other direction has ended.
    Never,
}

/// What happens to the other direction once one has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Linger {
    /// It goes on until it ends by itself.
    Forever,
    /// It may go on this long; then it is cut (an error: see [`Cut`]).
    For(Duration),
    /// It stops at once, and that is not a loss (a terminal's stdin after the peer closed).
    Stop,
}

/// How a copy both ways ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// For the direction b → a, once a → b has ended.
    pub(crate) after_a: Linger,
    /// For the direction a → b, once b → a has ended.
    pub(crate) after_b: Linger,
    /// Close when no byte moved either way for this long.
    pub(crate) idle: Option<Duration>,
    /// How a → b passes its end on to `b`.
    pub(crate) finish_ab: Finish,
    /// How b → a passes its end on to `a`.
    pub(crate) finish_ba: Finish,
}

impl Limits {
    /// The same linger both ways, and half-close at once both ways.
    #[cfg(test)]
    pub(crate) fn symmetric(linger: Linger, idle: Option<Duration>) -> Self {
        Self {
            after_a: linger,
            after_b: linger,
            idle,
            finish_ab: Finish::Now,
            finish_ba: Finish::Now,
        }
    }
}

/// Which way bytes were going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    AToB,
    BToA,
}

/// The error of a copy whose other direction was given up on at the linger deadline: the
/// connection was truncated, and must not end as if it were complete.
#[derive(Debug)]
pub(crate) struct Cut {
    /// The direction that was still open.
    pub(crate) direction: Direction,
    /// How long it had been given.
    pub(crate) after: Duration,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cut: one direction was still open, with nothing moving for {:?}, after the other ended (the linger deadline)",
            self.after
        )
    }
}

impl std::error::Error for Cut {}

/// The error of a copy stopped from outside while bytes may still have been on their way:
/// the relay's `--drain-timeout` passed after SIGINT/SIGTERM. Like a [`Cut`], a truncation.
#[derive(Debug)]
pub(crate) struct Stopped {
    /// Why, in words (`the drain deadline (--drain-timeout 1s) passed`).
    pub(crate) why: String,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cut: {}", self.why)
    }
}

impl std::error::Error for Stopped {}

/// The [`Stopped`] inside `e`, if `e` is one.
pub(crate) fn stopped_of(e: &io::Error) -> Option<&Stopped> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Stopped>())
}

/// A signal that stops a copy from outside: it resolves with the reason. `None`: never.
pub(crate) type Stop = Option<tokio::sync::watch::Receiver<Option<String>>>;

/// Resolves when `stop` says to stop, with the reason; never for `None` (or a sender gone).
pub(crate) async fn stop_signal(stop: Stop) -> String {
    if let Some(mut rx) = stop
        && let Ok(why) = rx.wait_for(Option::is_some).await
    {
        return why.clone().unwrap_or_default();
    }
    std::future::pending().await
}

/// The error of a copy ended by the command's own `--idle-timeout`: a chosen end, the only
/// timeout that is. Every other timeout (a WebSocket's `pongTimeout=`, a kernel `ETIMEDOUT`)
/// is a truncation.
#[derive(Debug)]
pub(crate) struct IdleTimeout;

impl fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("idle timeout")
    }
}

impl std::error::Error for IdleTimeout {}

/// The `--idle-timeout` error, as an I/O error (kind `TimedOut`).
pub(crate) fn idle_timeout() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, IdleTimeout)
}

/// Whether `e` is the command's own idle timeout (not any other timeout).
pub(crate) fn is_idle_timeout(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<IdleTimeout>().is_some())
}

/// The [`Cut`] inside `e`, if `e` is one.
pub(crate) fn cut_of(e: &io::Error) -> Option<&Cut> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Cut>())
}

/// What both directions of one copy share.
pub(crate) struct Shared {
    started: Instant,
    /// Milliseconds after `started` when a byte last moved either way.
    activity: AtomicU64,
    /// Each direction's source has ended, and its end is being passed on: a → b, b → a.
    finishing: [AtomicBool; 2],
    /// Each direction's end: a → b, b → a.
    done: [AtomicBool; 2],
    ended: [Notify; 2],
    pub(crate) idle: Option<Duration>,
}

impl Shared {
    pub(crate) fn new(idle: Option<Duration>) -> Self {
        Self {
            started: Instant::now(),
            activity: AtomicU64::new(0),
            finishing: [AtomicBool::new(false), AtomicBool::new(false)],
            done: [AtomicBool::new(false), AtomicBool::new(false)],
            ended: [Notify::new(), Notify::new()],
            idle,
        }
    }

    /// A byte moved.
    pub(crate) fn touch(&self) {
        self.activity
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since a byte last moved either way.
    pub(crate) fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.activity.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// How long since a byte last moved either way, or since `since` if that is later.
    pub(crate) fn quiet_since(&self, since: Instant) -> Duration {
        let last = self.started + Duration::from_millis(self.activity.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last.max(since))
    }

    /// Whether the idle timeout has passed (`None` without one).
    pub(crate) fn idle_expired(&self) -> bool {
        self.idle.is_some_and(|limit| self.quiet_for() >= limit)
    }

    fn index(d: Direction) -> usize {
        match d {
            Direction::AToB => 0,
            Direction::BToA => 1,
        }
    }

    fn mark_done(&self, d: Direction) {
        self.done[Self::index(d)].store(true, Ordering::Relaxed);
        self.ended[Self::index(d)].notify_one();
    }

    fn is_done(&self, d: Direction) -> bool {
        self.done[Self::index(d)].load(Ordering::Relaxed)
    }

    async fn wait_done(&self, d: Direction) {
        while !self.is_done(d) {
            self.ended[Self::index(d)].notified().await;
        }
    }

    /// Wait until it is time to pass direction `d`'s end of data on, by `finish`. Returns
    /// whether the other direction has ended by then (a failed shutdown is no loss then).
    pub(crate) async fn until_finish(&self, d: Direction, finish: Finish) -> bool {
        self.finishing[Self::index(d)].store(true, Ordering::Relaxed);
        let other = match d {
            Direction::AToB => Direction::BToA,
            Direction::BToA => Direction::AToB,
        };
        match finish {
            Finish::Now => {}
            Finish::Never => self.wait_done(other).await,
            Finish::WhenQuiet(quiet) => loop {
                if self.is_done(other) {
                    break;
                }
                let quiet_for = self.quiet_for();
                if quiet_for >= quiet {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(quiet - quiet_for) => {}
                    () = self.wait_done(other) => {}
                }
            },
        }
        self.is_done(other)
    }
}

/// Copy `a` ⇄ `b` until both directions end, or the linger or idle deadline passes.
pub(crate) async fn pump<A, B>(a: A, b: B, limits: Limits) -> (Stats, io::Result<()>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    pump_until(a, b, limits, None).await
}

/// [`pump`], or until `stop` says to stop: then a [`Stopped`] error, with the byte counts.
pub(crate) async fn pump_until<A, B>(
    a: A,
    b: B,
    limits: Limits,
    stop: Stop,
) -> (Stats, io::Result<()>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let shared = Shared::new(limits.idle);
    let up = Counters::default();
    let down = Counters::default();
    let result = both_ways(
        copy(
            &mut ar,
            &mut bw,
            &up,
            &shared,
            Direction::AToB,
            limits.finish_ab,
        ),
        copy(
            &mut br,
            &mut aw,
            &down,
            &shared,
            Direction::BToA,
            limits.finish_ba,
        ),
        &shared,
        limits,
        stop,
    )
    .await;
    (Counters::stats(&up, &down), result)
}

/// Bytes of one direction: taken from the source, delivered to the destination.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) taken: AtomicU64,
    pub(crate) delivered: AtomicU64,
}

impl Counters {
    pub(crate) fn stats(up: &Self, down: &Self) -> Stats {
        let (ut, ud) = (
            up.taken.load(Ordering::Relaxed),
            up.delivered.load(Ordering::Relaxed),
        );
        let (dt, dd) = (
            down.taken.load(Ordering::Relaxed),
            down.delivered.load(Ordering::Relaxed),
        );
        Stats {
            a_to_b: ud,
            b_to_a: dd,
            a_to_b_held: ut.saturating_sub(ud),
            b_to_a_held: dt.saturating_sub(dd),
        }
    }
}

/// Run both directions; when one ends cleanly (its end of data passed on), the other goes on
/// as `limits` say for it; a linger that passes is a [`Cut`], a `stop` a [`Stopped`]. An error
/// in either ends both.
pub(crate) async fn both_ways(
    ab: impl std::future::Future<Output = io::Result<()>>,
    ba: impl std::future::Future<Output = io::Result<()>>,
    shared: &Shared,
    limits: Limits,
    stop: Stop,
) -> io::Result<()> {
    tokio::select! {
        r = both_ways_unstopped(ab, ba, shared, limits) => r,
        why = stop_signal(stop) => Err(io::Error::other(Stopped { why })),
    }
}

async fn both_ways_unstopped(
    ab: impl std::future::Future<Output = io::Result<()>>,
    ba: impl std::future::Future<Output = io::Result<()>>,
    shared: &Shared,
    limits: Limits,
) -> io::Result<()> {
    tokio::pin!(ab, ba);
    let first = tokio::select! {
        r = &mut ab => (r, Direction::AToB),
        r = &mut ba => (r, Direction::BToA),
    };
    let (linger, left) = match first {
        (Err(e), _) => return Err(e),
        (Ok(()), Direction::AToB) => {
            shared.mark_done(Direction::AToB);
            (limits.after_a, Direction::BToA)
        }
        (Ok(()), Direction::BToA) => {
            shared.mark_done(Direction::BToA);
            (limits.after_b, Direction::AToB)
        }
    };
    let rest = async {
        let r = match left {
            Direction::AToB => ab.await,
            Direction::BToA => ba.await,
        };
        shared.mark_done(left);
        r
    };
    match linger {
        Linger::Forever => rest.await,
        // Stop reading; but a direction whose source has already ended still passes its end
        // on (a TLS close_notify that waited for this one): it is quick, the other side is
        // done.
        Linger::Stop if shared.finishing[Shared::index(left)].load(Ordering::Relaxed) => rest.await,
        Linger::Stop => Ok(()),
        // The other direction may go on as long as bytes move: it is cut only once nothing
        // has moved for `after` since the first one ended (a long upload after the server's
        // early end is not cut; a half-open connection nobody uses is).
        Linger::For(after) => {
            let ended = Instant::now();
            tokio::pin!(rest);
            loop {
                let quiet = shared.quiet_since(ended);
                if quiet >= after {
                    return Err(io::Error::other(Cut {
                        direction: left,
                        after,
                    }));
                }
                tokio::select! {
                    r = &mut rest => return r,
                    () = tokio::time::sleep(after - quiet) => {}
                }
            }
        }
    }
}

/// One direction. Each read is followed by reads of whatever is already there (a TLS source
/// hands out one 16 KiB record per read, and rustls may hold several decrypted), up to
/// [`BUFFER`], so the destination gets one large write instead of several small ones. The
/// destination is flushed when the source has nothing more at once, before waiting for it
/// (and before passing its end on), not after every write: a flush on a TLS stream waits
/// until every record is in the socket, and between records the next read could already
/// have been decrypting.
async fn copy<R, W>(
    r: &mut R,
    w: &mut W,
    count: &Counters,
    shared: &Shared,
    me: Direction,
    finish: Finish,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match at_once(r.read(&mut buf)).await {
            Some(n) => n?,
            None => {
                // Nothing now: what was written goes out before waiting.
                w.flush().await?;
                match shared.idle {
                    None => r.read(&mut buf).await?,
                    Some(limit) => loop {
                        match tokio::time::timeout(limit, r.read(&mut buf)).await {
                            Ok(n) => break n?,
                            // Quiet this way; idle only if the other way was quiet too.
                            Err(_) if shared.idle_expired() => {
                                return Err(idle_timeout());
                            }
                            Err(_) => {}
                        }
                    },
                }
            }
        };
        if n == 0 {
            // Pass the end of data on, as the policy says; what was written goes out first.
            w.flush().await?;
            let other_done = shared.until_finish(me, finish).await;
            return match w.shutdown().await {
                Err(_) if other_done => Ok(()),
                r => r,
            };
        }
        // Gather what is already there. An end of data found here is found again by the
        // next read; an error is kept and returned once these bytes are delivered (a socket
        // reports a reset once, and reads 0 after it).
        let mut filled = n;
        let mut failed = None;
        while filled < buf.len() {
            match at_once(r.read(&mut buf[filled..])).await {
                Some(Ok(m)) if m > 0 => filled += m,
                Some(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                _ => break,
            }
        }
        count.taken.fetch_add(filled as u64, Ordering::Relaxed);
        let mut at = 0;
        while at < filled {
            let m = w.write(&buf[at..filled]).await?;
            if m == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += m;
            count.delivered.fetch_add(m as u64, Ordering::Relaxed);
            // Each partial write is activity (as in the splice path): a slow reader taking
            // a 64 KiB chunk in pieces is not idle.
            shared.touch();
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
}

/// `f`'s output if it is ready on its first poll (which registers this task's waker as any
/// poll does); `None` if it would wait.
async fn at_once<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn half_close_is_propagated_and_bytes_counted() {
        let (client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, mut server) = tokio::io::duplex(1024);
        let limits = Limits::symmetric(Linger::For(Duration::from_secs(5)), None);
        let relay = tokio::spawn(async move { pump(relay_a, relay_b, limits).await });
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(b"request").await.expect("write");
        cw.shutdown().await.expect("half-close");
        let mut got = Vec::new();
        server
            .read_to_end(&mut got)
            .await
            .expect("server sees EOF after the request");
        assert_eq!(got, b"request");
        server.write_all(b"response").await.expect("write");
        server.shutdown().await.expect("close");
        let mut back = Vec::new();
        cr.read_to_end(&mut back).await.expect("read");
        assert_eq!(back, b"response");
        let (stats, r) = relay.await.expect("relay");
        r.expect("clean");
        assert_eq!(
            stats,
            Stats {
                a_to_b: 7,
                b_to_a: 8,
                ..Stats::default()
            }
        );
    }

    /// A half-open connection is bounded by the linger, and the cut is an error that says so,
    /// not a clean end.
    #[tokio::test(start_paused = true)]
    async fn a_linger_that_passes_is_a_cut() {
        let (client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, _server_never_closes) = tokio::io::duplex(1024);
        let limits = Limits::symmetric(Linger::For(Duration::from_secs(2)), None);
        let relay = tokio::spawn(async move { pump(relay_a, relay_b, limits).await });
        let (_r, mut w) = tokio::io::split(client);
        w.shutdown().await.expect("half-close");
        let started = tokio::time::Instant::now();
        let (_, r) = relay.await.expect("relay");
        let e = r.expect_err("a cut");
        let cut = cut_of(&e).expect("a Cut");
        assert_eq!(cut.direction, Direction::BToA);
        assert_eq!(started.elapsed().as_secs(), 2, "cut at the linger deadline");
    }

    /// The linger counts quiet time: a direction that keeps moving bytes long after the other
    /// ended (an upload after the server's early end) is not cut; it is cut once quiet.
    #[tokio::test(start_paused = true)]
    async fn a_linger_cuts_only_a_quiet_direction() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        let (stdout, mut far) = tokio::io::duplex(1 << 20);
        // `b` (stdin) ends at once; `a` sends for 20 s, a byte a second, under a 2 s linger.
        let b = tokio::io::join(tokio::io::empty(), stdout);
        let limits = Limits::symmetric(Linger::For(Duration::from_secs(2)), None);
        let relay = tokio::spawn(async move { pump(ours, b, limits).await });
        for i in 0..20u8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peer.write_all(&[i]).await.expect("still open");
        }
        // Now quiet: cut 2 s later.
        let (stats, r) = relay.await.expect("relay");
        let e = r.expect_err("cut once quiet");
        assert!(cut_of(&e).is_some(), "{e}");
        assert_eq!(stats.a_to_b, 20, "every byte of the 20 s went through");
        let mut got = vec![0u8; 20];
        far.read_exact(&mut got).await.expect("delivered");
    }

    /// With no linger, the other direction goes on as long as it likes: receiving does not
    /// stop because our side's data ended.
    #[tokio::test(start_paused = true)]
    async fn without_a_linger_receiving_goes_on() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        // stdin ends at once; stdout goes to `stdout_far`.
        let (stdout, mut stdio_r_far) = tokio::io::duplex(1 << 20);
        let stdio = tokio::io::join(tokio::io::empty(), stdout);
        let limits = Limits::symmetric(Linger::Forever, None);
        let relay = tokio::spawn(async move { pump(ours, stdio, limits).await });
        for i in 0..100u8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peer.write_all(&[i; 100])
                .await
                .expect("the peer can still send");
        }
        peer.shutdown().await.expect("close");
        let mut got = Vec::new();
        stdio_r_far.read_to_end(&mut got).await.expect("read");
        assert_eq!(got.len(), 10_000, "100 s later, every byte arrived");
        let (stats, r) = relay.await.expect("relay");
        r.expect("clean");
        assert_eq!(stats.a_to_b, 10_000);
    }

    /// `WhenQuiet`: the end of data goes out only after the other way has been quiet.
    #[tokio::test(start_paused = true)]
    async fn when_quiet_waits_for_the_reply() {
        let (client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, mut server) = tokio::io::duplex(1024);
        let limits = Limits {
            finish_ab: Finish::WhenQuiet(Duration::from_secs(1)),
            ..Limits::symmetric(Linger::Forever, None)
        };
        let relay = tokio::spawn(async move { pump(relay_a, relay_b, limits).await });
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(b"req").await.expect("write");
        cw.shutdown().await.expect("stdin ends");
        let mut req = [0u8; 3];
        server.read_exact(&mut req).await.expect("request");
        // Reply in pieces, 600 ms apart: each piece restarts the quiet period.
        let t0 = tokio::time::Instant::now();
        for piece in [b"r1", b"r2", b"r3"] {
            tokio::time::sleep(Duration::from_millis(600)).await;
            server.write_all(piece).await.expect("reply");
        }
        let mut rest = Vec::new();
        server
            .read_to_end(&mut rest)
            .await
            .expect("EOF from the relay");
        assert!(rest.is_empty());
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(2800),
            "the end came only once the reply had been quiet for 1 s: {waited:?}"
        );
        server.shutdown().await.expect("close");
        let mut back = Vec::new();
        cr.read_to_end(&mut back).await.expect("read");
        assert_eq!(back, b"r1r2r3");
        relay.await.expect("relay").1.expect("clean");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed() {
        let (_client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, _server) = tokio::io::duplex(1024);
        let limits = Limits::symmetric(
            Linger::For(Duration::from_secs(60)),
            Some(Duration::from_secs(3)),
        );
        let (_, r) = pump(relay_a, relay_b, limits).await;
        let e = r.expect_err("idle");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(is_idle_timeout(&e), "the command's own idle timeout: {e}");
        assert!(
            !is_idle_timeout(&io::Error::new(io::ErrorKind::TimedOut, "no pong")),
            "another timeout is not the idle timeout"
        );
    }

    /// A source that always has `chunk` bytes ready (like rustls holding several decrypted
    /// records), `total` in all.
    struct Ready {
        left: usize,
        chunk: usize,
    }

    impl AsyncRead for Ready {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self.left.min(self.chunk).min(buf.remaining());
            buf.put_slice(&vec![7u8; n]);
            self.left -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A destination that keeps what it is given until flushed (like a TLS stream whose
    /// records wait in rustls), and records each write and flush.
    #[derive(Clone, Default)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Recorded>>);

    #[derive(Default)]
    struct Recorded {
        writes: Vec<usize>,
        flushes: usize,
        held: usize,
        flushed: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let mut r = self.0.lock().expect("lock");
            r.writes.push(buf.len());
            r.held += buf.len();
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let mut r = self.0.lock().expect("lock");
            r.flushes += 1;
            r.flushed += std::mem::take(&mut r.held);
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    /// issue 19 item 9: a TLS source hands out one 16 KiB record per read; what is already
    /// decrypted is gathered into one 64 KiB write, and the destination is flushed when the
    /// source has nothing more for now or ends, not after every write.
    #[tokio::test]
    async fn ready_bytes_are_gathered_into_full_writes() {
        let total = 1 << 20;
        let rec = Recorder::default();
        let shared = Shared::new(None);
        let count = Counters::default();
        let mut src = Ready {
            left: total,
            chunk: 16 * 1024,
        };
        let mut dst = rec.clone();
        copy(
            &mut src,
            &mut dst,
            &count,
            &shared,
            Direction::AToB,
            Finish::Now,
        )
        .await
        .expect("copy");
        let r = rec.0.lock().expect("lock");
        assert_eq!(r.flushed, total, "every byte flushed by the end");
        assert_eq!(count.delivered.load(Ordering::Relaxed), total as u64);
        assert!(
            r.writes.iter().all(|&w| w == BUFFER),
            "16 KiB reads gathered into {BUFFER}-byte writes: {:?}",
            &r.writes[..r.writes.len().min(8)]
        );
        assert!(
            r.flushes < r.writes.len(),
            "{} flushes for {} writes: not one per write",
            r.flushes,
            r.writes.len()
        );
    }

    /// A source that gives `first` bytes, then fails (a reset), then reads 0 (as a socket
    /// does after reporting a reset once).
    struct ThenReset {
        first: usize,
        reported: bool,
    }

    impl AsyncRead for ThenReset {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if self.first > 0 {
                let n = self.first.min(buf.remaining());
                buf.put_slice(&vec![1u8; n]);
                self.first -= n;
            } else if !self.reported {
                self.reported = true;
                return std::task::Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A reset met while gathering is not lost: the bytes before it are delivered, then the
    /// copy fails with it (never a clean end).
    #[tokio::test]
    async fn a_reset_met_while_gathering_is_returned() {
        let rec = Recorder::default();
        let (shared, count) = (Shared::new(None), Counters::default());
        let mut src = ThenReset {
            first: 1000,
            reported: false,
        };
        let mut dst = rec.clone();
        let e = copy(
            &mut src,
            &mut dst,
            &count,
            &shared,
            Direction::AToB,
            Finish::Now,
        )
        .await
        .expect_err("the reset");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(count.delivered.load(Ordering::Relaxed), 1000);
    }

    /// Bytes written while the source goes quiet are flushed before the copy waits for more:
    /// nothing stays held in a TLS stream's buffer while its peer waits for it.
    #[tokio::test(start_paused = true)]
    async fn a_quiet_source_leaves_nothing_unflushed() {
        let (mut peer, mut src) = tokio::io::duplex(1024);
        let rec = Recorder::default();
        let mut dst = rec.clone();
        let copying = tokio::spawn(async move {
            let shared = Shared::new(None);
            let count = Counters::default();
            copy(
                &mut src,
                &mut dst,
                &count,
                &shared,
                Direction::AToB,
                Finish::Now,
            )
            .await
        });
        peer.write_all(b"hello").await.expect("write");
        // The paused clock moves on only once every task is idle: the copy is waiting.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            rec.0.lock().expect("lock").flushed,
            5,
            "flushed before waiting"
        );
        drop(peer);
        copying.await.expect("task").expect("copy");
    }

    /// A destination that takes 1,000 bytes per write, one write every 200 ms: slow, but
    /// flowing.
    struct Slow {
        wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
        got: usize,
    }

    impl AsyncWrite for Slow {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            if let Some(w) = self.wait.as_mut() {
                std::task::ready!(w.as_mut().poll(cx));
            }
            self.wait = Some(Box::pin(tokio::time::sleep(Duration::from_millis(200))));
            let n = buf.len().min(1000);
            self.got += n;
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Issue 24 item 8: with `--idle-timeout 1`, a download that a slow reader takes 1,000
    /// bytes at a time (one 64 KiB chunk lasts 13 s) is flowing, not idle: the copy path
    /// marks activity on every partial write.
    #[tokio::test(start_paused = true)]
    async fn a_slow_but_flowing_write_is_not_idle() {
        let shared = Shared::new(Some(Duration::from_secs(1)));
        let (up, down) = (Counters::default(), Counters::default());
        let mut src = Ready {
            left: BUFFER,
            chunk: BUFFER,
        };
        let mut dst = Slow { wait: None, got: 0 };
        // The other way: nothing, ever (its reads wait with the idle timeout).
        let (mut quiet, _keep) = tokio::io::duplex(16);
        let mut sink = tokio::io::sink();
        let limits = Limits::symmetric(Linger::Forever, Some(Duration::from_secs(1)));
        let r = both_ways(
            copy(
                &mut src,
                &mut dst,
                &up,
                &shared,
                Direction::AToB,
                Finish::Now,
            ),
            copy(
                &mut quiet,
                &mut sink,
                &down,
                &shared,
                Direction::BToA,
                Finish::Now,
            ),
            &shared,
            Limits {
                after_a: Linger::For(Duration::from_millis(1)),
                ..limits
            },
            None,
        )
        .await;
        assert_eq!(dst.got, BUFFER, "the whole chunk was written");
        match r {
            Ok(()) => {}
            Err(e) => assert!(
                cut_of(&e).is_some(),
                "only the quiet way is cut at the linger, not an idle timeout: {e}"
            ),
        }
    }

    /// Issue 24 item 7: a stop from outside (the relay's drain deadline) ends the copy with a
    /// [`Stopped`] error and the bytes counted so far, never a clean end.
    #[tokio::test(start_paused = true)]
    async fn a_stop_is_an_error_with_the_counts() {
        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        let (other, _far) = tokio::io::duplex(1 << 16);
        let (tx, rx) = tokio::sync::watch::channel(None);
        let copying = tokio::spawn(async move {
            pump_until(
                ours,
                other,
                Limits::symmetric(Linger::Forever, None),
                Some(rx),
            )
            .await
        });
        peer.write_all(&[5u8; 2500]).await.expect("write");
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send_replace(Some("the drain deadline passed".into()));
        let (stats, r) = copying.await.expect("task");
        let e = r.expect_err("stopped");
        assert_eq!(
            stopped_of(&e).map(|s| s.why.as_str()),
            Some("the drain deadline passed")
        );
        assert_eq!(stats.a_to_b, 2500);
    }

    #[test]
    fn half_close_policies() {
        assert_eq!("auto".parse(), Ok(HalfClose::Auto));
        assert!("".parse::<HalfClose>().is_err());
        let ws = Destination::CloseOnly(Duration::from_secs(5));
        assert_eq!(HalfClose::Auto.finish(Destination::HalfCloses), Finish::Now);
        assert_eq!(
            HalfClose::Auto.finish(Destination::Tls),
            Finish::WhenQuiet(TLS_QUIET)
        );
        assert_eq!(
            HalfClose::Auto.finish(ws),
            Finish::WhenQuiet(Duration::from_secs(5))
        );
        assert_eq!(HalfClose::Always.finish(Destination::Tls), Finish::Now);
        assert_eq!(HalfClose::Always.finish(ws), Finish::Now);
        assert_eq!(
            HalfClose::Never.finish(Destination::HalfCloses),
            Finish::Never
        );
    }
}
