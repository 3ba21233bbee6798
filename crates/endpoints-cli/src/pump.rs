//! Copying both ways between two streams, the way a relay must: half-close propagated, a
//! linger deadline once one side is done, an optional idle timeout, byte counts.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffer per direction (64 KiB: what socat needs `-b 65536` for).
pub(crate) const BUFFER: usize = 64 * 1024;

/// Bytes moved each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// From `a` to `b`.
    pub(crate) a_to_b: u64,
    /// From `b` to `a`.
    pub(crate) b_to_a: u64,
}

/// How the copy ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// After one direction reaches EOF (and the other side's write half was shut down), how
    /// long the other direction may still run. Nothing stays half-open longer.
    pub(crate) linger: Duration,
    /// Close when no byte moved either way for this long.
    pub(crate) idle: Option<Duration>,
}

/// Copy `a` ⇄ `b` until both directions end, or the linger or idle deadline passes.
pub(crate) async fn pump<A, B>(a: A, b: B, limits: Limits) -> (Stats, io::Result<()>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let result = both_ways(
        copy(&mut ar, &mut bw, &up, &activity, started, limits.idle),
        copy(&mut br, &mut aw, &down, &activity, started, limits.idle),
        limits.linger,
    )
    .await;
    let stats = Stats {
        a_to_b: up.load(Ordering::Relaxed),
        b_to_a: down.load(Ordering::Relaxed),
    };
    (stats, result)
}

/// Run both directions; when one ends cleanly (its half-close already passed on), give the
/// other `linger` to finish, then stop: nothing stays half-open. An error in either ends both.
pub(crate) async fn both_ways(
    ab: impl std::future::Future<Output = io::Result<()>>,
    ba: impl std::future::Future<Output = io::Result<()>>,
    linger: Duration,
) -> io::Result<()> {
    tokio::pin!(ab, ba);
    let first = tokio::select! {
        r = &mut ab => (r, false),
        r = &mut ba => (r, true),
    };
    match first {
        (Err(e), _) => Err(e),
        (Ok(()), ab_left) => {
            let rest = async { if ab_left { ab.await } else { ba.await } };
            // Lingered long enough: close both.
            tokio::time::timeout(linger, rest).await.unwrap_or(Ok(()))
        }
    }
}

async fn copy<R, W>(
    r: &mut R,
    w: &mut W,
    count: &AtomicU64,
    activity: &AtomicU64,
    started: Instant,
    idle: Option<Duration>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match idle {
            None => r.read(&mut buf).await?,
            Some(limit) => loop {
                match tokio::time::timeout(limit, r.read(&mut buf)).await {
                    Ok(n) => break n?,
                    Err(_) => {
                        // Quiet this way; idle only if the other way was quiet too.
                        let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                        if started.elapsed().saturating_sub(last) >= limit {
                            return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                        }
                    }
                }
            },
        };
        if n == 0 {
            // Propagate the half-close.
            w.shutdown().await?;
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        activity.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn half_close_is_propagated_and_bytes_counted() {
        let (client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, mut server) = tokio::io::duplex(1024);
        let limits = Limits {
            linger: Duration::from_secs(5),
            idle: None,
        };
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
                b_to_a: 8
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn linger_bounds_a_half_open_connection() {
        let (client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, _server_never_closes) = tokio::io::duplex(1024);
        let limits = Limits {
            linger: Duration::from_secs(2),
            idle: None,
        };
        let relay = tokio::spawn(async move { pump(relay_a, relay_b, limits).await });
        let (_r, mut w) = tokio::io::split(client);
        w.shutdown().await.expect("half-close");
        let started = tokio::time::Instant::now();
        let (_, r) = relay.await.expect("relay");
        r.expect("clean");
        assert_eq!(
            started.elapsed().as_secs(),
            2,
            "closed at the linger deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed() {
        let (_client, relay_a) = tokio::io::duplex(1024);
        let (relay_b, _server) = tokio::io::duplex(1024);
        let limits = Limits {
            linger: Duration::from_secs(60),
            idle: Some(Duration::from_secs(3)),
        };
        let (_, r) = pump(relay_a, relay_b, limits).await;
        assert_eq!(r.expect_err("idle").kind(), io::ErrorKind::TimedOut);
    }
}
