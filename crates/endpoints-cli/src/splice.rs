//! Zero-copy relaying with `splice(2)` between plain TCP or unix sockets (Linux): bytes go
//! socket → pipe → socket inside the kernel; and between a socket and a stream that declared
//! its descriptors (`exec:`: socket → pipe → the child's stdin, its stdout → pipe → socket). Same rules as [`crate::pump::pump`]: half-close
//! propagated, a linger deadline after the first EOF, an idle timeout, byte counts.
//!
//! Only [`End`] (finding the plain socket of a connection) is portable; the pipes and
//! `splice` are Linux-only, and elsewhere the relay always uses the buffered copy.
#![allow(unsafe_code)] // pipe2, fcntl and splice on descriptors owned here; each call has a SAFETY note.

#[cfg(target_os = "linux")]
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
#[cfg(target_os = "linux")]
use std::sync::OnceLock;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use endpoints::Connection;
#[cfg(target_os = "linux")]
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

#[cfg(target_os = "linux")]
use crate::pump::{Counters, Direction, Finish, Limits, Shared, Stats};

/// A pipe's default capacity (16 pages).
#[cfg(target_os = "linux")]
const SMALL: usize = 1 << 16;
/// The capacity a pipe grows to once its direction has moved [`GROW_AFTER`] bytes: fewer
/// system calls for bulk transfers, while thousands of short connections keep small pipes
/// (the kernel limits a user's pipe memory, and pipes made past that limit get two pages).
/// Growth also stays within [`growth_budget`].
#[cfg(target_os = "linux")]
const BIG: usize = 1 << 20;
/// Bytes a direction moves before its pipe grows.
#[cfg(target_os = "linux")]
const GROW_AFTER: u64 = 8 << 20;

/// One end of the relay, if it is a plain socket, or (Linux) a stream's declared descriptors.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the unix socket is read by splice
pub(crate) enum End<'a> {
    Tcp(&'a TcpStream),
    Unix(&'a UnixStream),
    /// A stream that reads from one descriptor and writes to another (`exec:`'s pipes).
    #[cfg(target_os = "linux")]
    Fds(&'a Fds<'a>),
}

impl<'a> End<'a> {
    /// The plain socket `conn` reads from and writes to, if splicing it moves the same bytes:
    /// a TCP or unix socket, or one under a PROXY-protocol header once no bytes that came
    /// with the header are left unread (see [`take_early`]). `None` for TLS and other
    /// streams that transform their bytes.
    #[cfg(target_os = "linux")]
    pub(crate) fn of(conn: &'a Connection) -> Option<Self> {
        Self::find(conn, false)
    }

    /// The socket under `conn` (through PROXY headers and TLS), whatever is buffered above it.
    pub(crate) fn under(conn: &'a Connection) -> Option<Self> {
        Self::find(conn, true)
    }

    /// Down through the layers wrappers declared (`Connection::beneath`), whatever the
    /// wrappers' types: a PROXY header's leftover bytes, TLS.
    fn find(conn: &'a Connection, buffered_ok: bool) -> Option<Self> {
        if let Some(t) = conn.stream_ref::<TcpStream>() {
            return Some(Self::Tcp(t));
        }
        if let Some(u) = conn.stream_ref::<UnixStream>() {
            return Some(Self::Unix(u));
        }
        let beneath = conn.beneath()?;
        // Under TLS, or under bytes held above the socket: only to reach the socket (a
        // reset), never to splice.
        if !buffered_ok && (conn.transforms() || conn.buffered_above() > 0) {
            return None;
        }
        Self::find(beneath, buffered_ok)
    }

    /// The TCP socket, if this end is one.
    pub(crate) fn tcp(self) -> Option<&'a TcpStream> {
        match self {
            Self::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The descriptor bytes are read from.
    #[cfg(target_os = "linux")]
    fn read_fd(self) -> RawFd {
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
            Self::Fds(p) => p.read.as_raw_fd(),
        }
    }

    /// The descriptor bytes are written to.
    #[cfg(target_os = "linux")]
    fn write_fd(self) -> RawFd {
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
            Self::Fds(p) => p.write_raw,
        }
    }

    #[cfg(target_os = "linux")]
    async fn ready(self, interest: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.ready(interest).await.map(|_| ()),
            Self::Unix(s) => s.ready(interest).await.map(|_| ()),
            Self::Fds(p) if interest.is_readable() => p.read.ready(interest).await.map(|_| ()),
            Self::Fds(p) => p.writer()?.ready(interest).await.map(|_| ()),
        }
    }

    #[cfg(target_os = "linux")]
    fn try_io<R>(self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self {
            Self::Tcp(s) => s.try_io(interest, f),
            Self::Unix(s) => s.try_io(interest, f),
            Self::Fds(p) if interest.is_readable() => p.read.try_io(interest, |_| f()),
            Self::Fds(p) => p.writer()?.try_io(interest, |_| f()),
        }
    }

    /// Pass the end of data on: a socket's write side is shut down; declared descriptors
    /// close our duplicate, then shut the stream's write side down (`exec:`: the child's stdin
    /// is closed).
    #[cfg(target_os = "linux")]
    async fn shutdown_write(self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
            Self::Unix(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write),
            Self::Fds(p) => {
                drop(lock(&p.write).take());
                std::future::poll_fn(|cx| {
                    tokio::io::AsyncWrite::poll_shutdown(
                        std::pin::Pin::new(&mut **lock(&p.conn)),
                        cx,
                    )
                })
                .await
            }
        }
    }

    /// Once the read descriptor gave end of file: whether that is the end of the data. Always
    /// for a socket; declared descriptors ask the stream (`exec:`: the exit status, an error
    /// unless the program exited with status 0).
    #[cfg(target_os = "linux")]
    async fn end_of_data(self) -> io::Result<()> {
        let Self::Fds(p) = self else {
            return Ok(());
        };
        let mut byte = [0u8; 1];
        let n = std::future::poll_fn(|cx| {
            let mut buf = tokio::io::ReadBuf::new(&mut byte);
            tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut **lock(&p.conn)), cx, &mut buf)
                .map_ok(|()| buf.filled().len())
        })
        .await?;
        if n > 0 {
            return Err(io::Error::other(
                "the stream gave bytes after its descriptor's end of file",
            ));
        }
        Ok(())
    }
}

/// A stream's declared descriptors ([`endpoints::Descriptors`]), duplicated and registered with
/// the runtime for splicing, and the connection itself, for the two ends of its data.
#[cfg(target_os = "linux")]
pub(crate) struct Fds<'a> {
    read: tokio::io::unix::AsyncFd<OwnedFd>,
    /// Taken (closed) when the end of data is passed on.
    write: std::sync::Mutex<Option<std::sync::Arc<tokio::io::unix::AsyncFd<OwnedFd>>>>,
    write_raw: RawFd,
    /// Locked only within one poll: both directions run in one task.
    conn: std::sync::Mutex<&'a mut Connection>,
}

#[cfg(target_os = "linux")]
impl<'a> Fds<'a> {
    /// Duplicates of `conn`'s declared descriptors, if it declared both.
    fn of(conn: &'a mut Connection) -> io::Result<Self> {
        let (Some(r), Some(w)) = (conn.read_descriptor(), conn.write_descriptor()) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no descriptors declared",
            ));
        };
        let (r, w) = (r.try_clone_to_owned()?, w.try_clone_to_owned()?);
        let write_raw = w.as_raw_fd();
        let register = |fd: OwnedFd| {
            // SAFETY: an OwnedFd keeps its descriptor open, and the same, until it is dropped
            // with the AsyncFd that owns it.
            unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
        };
        let (read, write) = (register(r)?, register(w)?);
        Ok(Self {
            read,
            write: std::sync::Mutex::new(Some(std::sync::Arc::new(write))),
            write_raw,
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn writer(&self) -> io::Result<std::sync::Arc<tokio::io::unix::AsyncFd<OwnedFd>>> {
        lock(&self.write)
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the write side is closed"))
    }
}

/// A lock that a panic elsewhere does not poison for us.
#[cfg(target_os = "linux")]
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `conn` declared the descriptors it reads from and writes to (`exec:`).
#[cfg(target_os = "linux")]
pub(crate) fn has_descriptors(conn: &Connection) -> bool {
    conn.read_descriptor().is_some() && conn.write_descriptor().is_some()
}

/// Relay the socket `a` ⇄ `b`, a stream that declared its descriptors (`exec:`'s pipes), with
/// splice: socket → pipe → the child's stdin, its stdout → pipe → socket. As [`pump`]; an
/// error for which [`is_refused`] holds means no byte was taken.
#[cfg(target_os = "linux")]
pub(crate) async fn pump_descriptors(
    a: End<'_>,
    b: &mut Connection,
    limits: Limits,
    stop: crate::pump::Stop,
) -> (Stats, io::Result<()>) {
    let fds = match Fds::of(b) {
        Ok(fds) => fds,
        Err(e) => return (Stats::default(), Err(refused(e))),
    };
    pump(a, End::Fds(&fds), limits, stop).await
}

/// If `conn` is a PROXY-protocol connection over a plain socket, and `other` is a plain
/// socket too, take the bytes that arrived with the header and are not read yet, so that the
/// caller forwards them before splicing the socket underneath. Empty otherwise.
#[cfg(target_os = "linux")]
pub(crate) fn take_early(conn: &mut Connection, other: &Connection) -> Vec<u8> {
    if End::of(other).is_none() {
        return Vec::new();
    }
    if conn.transforms() || conn.beneath().and_then(End::under).is_none() {
        return Vec::new();
    }
    conn.take_buffered_above()
}

#[cfg(target_os = "linux")]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// The growth budget this pipe holds, given back when it closes.
    grown: Option<Reservation<'static>>,
}

/// Capacity that growing pipes may add, shared by every connection of the process.
#[cfg(target_os = "linux")]
struct Budget {
    used: AtomicUsize,
    limit: usize,
}

#[cfg(target_os = "linux")]
impl Budget {
    fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// `bytes` of the budget, or `None` if that would go over it.
    fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return None;
        }
        Some(Reservation {
            budget: self,
            bytes,
        })
    }
}

/// Part of a [`Budget`], given back on drop.
#[cfg(target_os = "linux")]
struct Reservation<'a> {
    budget: &'a Budget,
    bytes: usize,
}

#[cfg(target_os = "linux")]
impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The kernel counts the capacity of all of a user's pipes against `fs.pipe-user-pages-soft`
/// (64 MiB by default) and gives a pipe made past it two pages: a few dozen grown pipes
/// would shrink the pipes of every later connection. So growth may take a quarter of that
/// limit (16 MiB, 16 grown pipes by default); past it, pipes keep their default size.
#[cfg(target_os = "linux")]
fn growth_budget() -> &'static Budget {
    static BUDGET: OnceLock<Budget> = OnceLock::new();
    BUDGET.get_or_init(|| {
        let pages = std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(16384);
        // 0: no limit.
        Budget::new(if pages == 0 {
            usize::MAX
        } else {
            pages * 4096 / 4
        })
    })
}

#[cfg(target_os = "linux")]
fn pipe() -> io::Result<Pipe> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(Pipe {
        read,
        write,
        grown: None,
    })
}

/// Try to give `pipe` `size` bytes of capacity, within `budget`; returns the capacity it has.
#[cfg(target_os = "linux")]
fn grow(pipe: &mut Pipe, size: usize, budget: &'static Budget) -> usize {
    let Some(reservation) = budget.reserve(size - SMALL) else {
        return SMALL;
    };
    // SAFETY: fcntl on a descriptor this module owns; a refusal leaves the capacity as it was.
    let got = unsafe {
        libc::fcntl(
            pipe.write.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            size as libc::c_int,
        )
    };
    if got > 0 {
        pipe.grown = Some(reservation);
        got as usize
    } else {
        SMALL
    }
}

#[cfg(target_os = "linux")]
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (owned by this module's
    // pipes or borrowed from live sockets); null offsets are allowed for pipes and sockets.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Why [`pump`] moved nothing: the kernel refused splice for these sockets, or no pipe could
/// be made, before any byte was taken from either socket. The caller copies instead.
#[derive(Debug)]
#[cfg(target_os = "linux")]
struct Refused(io::Error);

#[cfg(target_os = "linux")]
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "splice refused: {}", self.0)
    }
}

#[cfg(target_os = "linux")]
impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[cfg(target_os = "linux")]
fn refused(e: io::Error) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, Refused(e))
}

/// Whether `e` from [`pump`] means nothing was taken, so the buffered copy may take over.
#[cfg(target_os = "linux")]
pub(crate) fn is_refused(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Refused>())
}

/// Relay `a` ⇄ `b` with splice. An error for which [`is_refused`] holds means no byte was
/// taken from either socket: use the buffered copy instead.
#[cfg(target_os = "linux")]
pub(crate) async fn pump(
    a: End<'_>,
    b: End<'_>,
    limits: Limits,
    stop: crate::pump::Stop,
) -> (Stats, io::Result<()>) {
    let shared = Shared::new(limits.idle);
    let taken = AtomicBool::new(false);
    let (up, down) = (Counters::default(), Counters::default());
    let result = async {
        let (p1, p2) = (pipe().map_err(refused)?, pipe().map_err(refused)?);
        crate::pump::both_ways(
            direction(
                a,
                b,
                p1,
                &up,
                &shared,
                &taken,
                Direction::AToB,
                limits.finish_ab,
            ),
            direction(
                b,
                a,
                p2,
                &down,
                &shared,
                &taken,
                Direction::BToA,
                limits.finish_ba,
            ),
            &shared,
            limits,
            stop,
        )
        .await
    }
    .await;
    (Counters::stats(&up, &down), result)
}

/// One direction. `taken` is set once a byte has been taken from either socket: from then
/// on, falling back to the buffered copy would lose what is in the pipes.
#[allow(clippy::too_many_arguments)] // one call site per direction, each argument named there
#[cfg(target_os = "linux")]
async fn direction(
    from: End<'_>,
    to: End<'_>,
    mut pipe: Pipe,
    count: &Counters,
    shared: &Shared,
    taken: &AtomicBool,
    me: Direction,
    finish: Finish,
) -> io::Result<()> {
    let (mut capacity, mut moved, mut grown) = (SMALL, 0u64, false);
    loop {
        if !grown && moved >= GROW_AFTER {
            (capacity, grown) = (grow(&mut pipe, BIG, growth_budget()).max(SMALL), true);
        }
        // Socket → pipe.
        let n = loop {
            let ready = from.ready(Interest::READABLE);
            match shared.idle {
                None => ready.await?,
                Some(limit) => match tokio::time::timeout(limit, ready).await {
                    Ok(r) => r?,
                    Err(_) if shared.idle_expired() => {
                        return Err(crate::pump::idle_timeout());
                    }
                    Err(_) => continue,
                },
            }
            // Ask for as much as the pipe holds: the pipe is empty here, and one call that
            // takes everything queued on the socket beats several that take 64 KiB each.
            match from.try_io(Interest::READABLE, || {
                splice(from.read_fd(), pipe.write.as_raw_fd(), capacity)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e)
                    if !taken.load(Ordering::Relaxed)
                        && (e.raw_os_error() == Some(libc::EINVAL)
                            || e.raw_os_error() == Some(libc::ENOSYS)) =>
                {
                    return Err(refused(e));
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            from.end_of_data().await?;
            let other_done = shared.until_finish(me, finish).await;
            return match to.shutdown_write().await {
                Err(_) if other_done => Ok(()),
                r => r,
            };
        }
        taken.store(true, Ordering::Relaxed);
        count.taken.fetch_add(n as u64, Ordering::Relaxed);
        // Pipe → socket, all of it.
        let mut left = n;
        while left > 0 {
            to.ready(Interest::WRITABLE).await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), to.write_fd(), left)
            }) {
                Ok(m) => {
                    // Counted as it is delivered: a slow reader draining a big chunk is
                    // activity, and a failure part-way logs what really arrived.
                    left -= m;
                    count.delivered.fetch_add(m as u64, Ordering::Relaxed);
                    shared.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        moved += n as u64;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A wrapper from outside the project (not `Prefixed`, not TLS) holding bytes above the
    /// socket: declared through `endpoints::Layer`, the relay finds the socket under it.
    #[derive(Debug)]
    struct ThirdParty {
        held: Vec<u8>,
        inner: Connection,
    }

    impl tokio::io::AsyncRead for ThirdParty {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl tokio::io::AsyncWrite for ThirdParty {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    static THIRD_PARTY: endpoints::Layer<ThirdParty> =
        endpoints::Layer::<ThirdParty>::new(|t| &t.inner, |t| &mut t.inner)
            .passing_bytes_through(|t| t.held.len(), |t| std::mem::take(&mut t.held));
    static OPAQUE: endpoints::Layer<ThirdParty> =
        endpoints::Layer::<ThirdParty>::new(|t| &t.inner, |t| &mut t.inner);

    async fn tcp_pair() -> (Connection, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let a = tokio::net::TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (b, _) = l.accept().await.expect("accept");
        let (local, peer) = (
            a.local_addr().expect("local").into(),
            a.peer_addr().expect("peer").into(),
        );
        (Connection::new(a, local, peer), b)
    }

    #[tokio::test]
    async fn the_socket_under_any_declared_layer_is_found() {
        let (plain, _b) = tcp_pair().await;
        let (other, _d) = tcp_pair().await;
        let (local, peer) = (plain.local_addr().clone(), plain.peer_addr().clone());
        let wrapped = ThirdParty {
            held: b"early".to_vec(),
            inner: plain,
        };
        let mut conn = Connection::new(wrapped, local, peer).with_layer(&THIRD_PARTY);
        assert!(End::under(&conn).and_then(End::tcp).is_some());
        assert!(End::of(&conn).is_none(), "bytes are held above the socket");
        assert_eq!(take_early(&mut conn, &other), b"early");
        assert!(
            End::of(&conn).and_then(End::tcp).is_some(),
            "now splice-able"
        );

        let (plain, _b) = tcp_pair().await;
        let (local, peer) = (plain.local_addr().clone(), plain.peer_addr().clone());
        let wrapped = ThirdParty {
            held: Vec::new(),
            inner: plain,
        };
        let mut conn = Connection::new(wrapped, local, peer).with_layer(&OPAQUE);
        assert!(
            End::of(&conn).is_none(),
            "a transforming layer is never spliced"
        );
        assert!(take_early(&mut conn, &other).is_empty());
        assert!(
            End::under(&conn).and_then(End::tcp).is_some(),
            "but its socket is reached"
        );
    }

    #[test]
    fn only_a_refusal_before_any_byte_hands_over_to_the_copy() {
        assert!(is_refused(&refused(io::Error::from_raw_os_error(
            libc::EINVAL
        ))));
        // EOPNOTSUPP is also `Unsupported`, but a socket error part-way must not fall back.
        let mid_stream = io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        assert_eq!(mid_stream.kind(), io::ErrorKind::Unsupported);
        assert!(!is_refused(&mid_stream));
    }

    #[test]
    fn growth_stops_at_the_budget_and_resumes_when_pipes_close() {
        let budget = Budget::new(3 * (BIG - SMALL));
        let held: Vec<_> = (0..3)
            .map(|_| budget.reserve(BIG - SMALL).expect("within the budget"))
            .collect();
        assert!(budget.reserve(BIG - SMALL).is_none(), "a fourth is over it");
        assert_eq!(budget.used.load(Ordering::Relaxed), 3 * (BIG - SMALL));
        drop(held);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
        assert!(budget.reserve(BIG - SMALL).is_some(), "room again");
    }

    #[test]
    fn a_grown_pipe_holds_its_share_until_it_closes() {
        let budget: &'static Budget = Box::leak(Box::new(Budget::new(BIG - SMALL)));
        let mut first = pipe().expect("pipe");
        assert_eq!(grow(&mut first, BIG, budget), BIG);
        assert_eq!(budget.used.load(Ordering::Relaxed), BIG - SMALL);
        let mut second = pipe().expect("pipe");
        assert_eq!(grow(&mut second, BIG, budget), SMALL, "over the budget");
        drop(first);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
        assert_eq!(grow(&mut second, BIG, budget), BIG);
    }

    /// A reader that drains slowly, after the pipe has grown, is activity: the idle timeout
    /// counts from the last byte delivered, not from the last whole chunk.
    #[tokio::test]
    async fn a_slow_reader_is_not_an_idle_connection() {
        const FAST: usize = (GROW_AFTER as usize) + (1 << 20);
        const SLOW: usize = 2 << 20;
        let (mut client, relay_a) = UnixStream::pair().expect("pair");
        let (relay_b, mut sink) = UnixStream::pair().expect("pair");
        // A big buffer from the client, so that the relay takes 1 MiB chunks once its pipe
        // has grown; small ones towards the sink, so that delivering a chunk waits for the
        // reader. (A splice into a unix socket makes one message of up to 64 KiB whatever the
        // buffer size; the reader below takes 40 ms to drain one.)
        socket2::SockRef::from(&client)
            .set_send_buffer_size(2 << 20)
            .expect("sndbuf");
        for s in [&relay_b, &sink] {
            let s = socket2::SockRef::from(s);
            s.set_send_buffer_size(8 << 10).expect("sndbuf");
            s.set_recv_buffer_size(8 << 10).expect("rcvbuf");
        }
        let limits = Limits::symmetric(
            crate::pump::Linger::For(Duration::from_secs(5)),
            Some(Duration::from_millis(400)),
        );
        let relay = tokio::spawn(async move {
            pump(End::Unix(&relay_a), End::Unix(&relay_b), limits, None).await
        });
        let writer = tokio::spawn(async move {
            let buf = vec![7u8; FAST + SLOW];
            client.write_all(&buf).await.expect("write");
            client.shutdown().await.expect("half-close");
            client
        });
        let mut got = 0;
        let mut buf = vec![0u8; 64 << 10];
        while got < FAST {
            let n = sink.read(&mut buf).await.expect("read");
            assert!(n > 0, "EOF after {got} bytes");
            got += n;
        }
        // 8 KiB every 5 ms: a whole 1 MiB chunk takes longer than the idle timeout (400 ms),
        // one message of 64 KiB a tenth of it.
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let n = sink.read(&mut buf[..8 << 10]).await.expect("read");
            if n == 0 {
                break;
            }
            got += n;
        }
        drop(sink);
        let (stats, result) = relay.await.expect("relay");
        let _client = writer.await.expect("writer");
        assert!(
            result.is_ok(),
            "the relay ended with {result:?} after {got} of {} bytes",
            FAST + SLOW
        );
        assert_eq!(got, FAST + SLOW, "every byte arrived");
        assert_eq!(stats.a_to_b, (FAST + SLOW) as u64);
    }
}
