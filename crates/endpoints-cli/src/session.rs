//! `listen` and `connect`: one connection on stdin and stdout (or an echo server).
//!
//! Each direction runs to its own end: receiving goes on until the peer's data ends, however
//! long stdin has been at its end (stdin is `/dev/null` under nohup, cron, systemd and CI),
//! and what stdin holds is sent until stdin ends, whatever the peer did (`nc -l > out` on one
//! side, `nc host < file` on the other). The command exits when both have ended. Only a
//! terminal's stdin stops when the peer has finished. A peer that refuses the rest (a reset, a
//! broken pipe) and a direction given up on at the `--linger` deadline are truncations: a
//! warning with the byte counts, a reset, exit status 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use endpoints::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::flags::Parsed;
use crate::handover::{ECHO_DRAIN, Handover};
use crate::pump::{self, Direction, HalfClose, Limits, Linger, pump};
use crate::relay::{DrainCause, destination, drain_or_cut, handover_ready, reset_on_close, via};
use crate::{Fail, USAGE, build_client, shutdown_signal, start_listening};

/// How a stdio session ends: `--linger` and `--half-close`.
#[derive(Clone, Copy, Debug)]
struct Session {
    linger: Option<Duration>,
    half_close: HalfClose,
}

impl Session {
    fn from_flags(p: &Parsed) -> Result<Self, Fail> {
        Ok(Self {
            linger: p.seconds("--linger", true).map_err(Fail::Usage)?,
            half_close: p.half_close().map_err(Fail::Usage)?,
        })
    }

    /// The copy's limits, `a` being the connection and `b` stdin/stdout. Each direction runs
    /// to its own end: a peer's end of data says it will send nothing more, not that it reads
    /// nothing more, so what stdin holds is still sent. Only an interactive stdin (a terminal)
    /// stops when the peer has finished, as people expect of a session they type into.
    fn limits(self, conn: &Connection, stdin_is_terminal: bool) -> Limits {
        let after_peer = match (stdin_is_terminal, self.linger) {
            (true, _) => Linger::Stop,
            (false, Some(d)) => Linger::For(d),
            (false, None) => Linger::Forever,
        };
        Limits {
            after_a: after_peer,
            after_b: self.linger.map_or(Linger::Forever, Linger::For),
            idle: None,
            finish_ab: pump::Finish::Now,
            finish_ba: self.half_close.finish(destination(
                conn,
                self.linger.unwrap_or(pump::CLOSE_ONLY_QUIET),
            )),
        }
    }
}

/// Whether standard input is a terminal (someone typing), not a file or a pipe.
fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdin().is_terminal()
}

pub(crate) async fn listen(p: Parsed) -> Result<ExitCode, Fail> {
    let session = Session::from_flags(&p)?;
    let mut handover = if p.has("--echo") {
        Some(Handover::from_flags(&p)?)
    } else {
        None
    };
    let mut listener = start_listening(p.one("description", USAGE).map_err(Fail::Usage)?).await?;
    crate::log::release();
    let Some(mut handover) = handover.take() else {
        let conn = tokio::select! {
            c = listener.accept() => c.map_err(|e| Fail::Run(e.to_string()))?,
            () = shutdown_signal() => return Ok(ExitCode::SUCCESS),
        };
        let _ = listener.close().await;
        let name = format!("connection from {}{}", conn.peer_addr(), via(&conn));
        return stdio(conn, session, &name).await;
    };
    handover.listening()?;
    // At the drain deadline, what is still open is cut (a reset and a warning each), not
    // closed as if the echo were complete.
    let (cut_all, stop) = tokio::sync::watch::channel(None::<String>);
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let mut failure = None;
    let mut drained_after = DrainCause::Stop;
    loop {
        let conn = tokio::select! {
            c = listener.accept() => match c {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(Fail::Run(format!("{listener}: {e}; no longer accepting")));
                    break;
                }
            },
            () = shutdown_signal() => break,
            pid = handover.successor_ready() => {
                drained_after = handover_ready(pid, &mut tasks);
                break;
            }
        };
        // Finished connections leave the set at each accept (no wake-up of this loop per
        // connection that ends): it holds the open ones, and those ended since the last.
        while tasks.try_join_next().is_some() {}
        let (failed, stop) = (failed.clone(), stop.clone());
        tasks.spawn(async move {
            if !echo(conn, stop).await.0 {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        });
        if p.has("--once") {
            break;
        }
    }
    let _ = listener.close().await;
    let deadline = format!(
        "the echo server's drain deadline ({}s)",
        ECHO_DRAIN.as_secs()
    );
    drain_or_cut(
        tasks,
        ECHO_DRAIN,
        &deadline,
        drained_after,
        &cut_all,
        &failed,
    )
    .await;
    match (failure, failed.load(Ordering::Relaxed)) {
        (Some(f), _) => Err(f),
        (None, 0) => Ok(ExitCode::SUCCESS),
        (None, n) => Err(Fail::Run(format!(
            "{n} echoed connection(s) failed or were cut (see above)"
        ))),
    }
}

/// Echo one connection until its peer's data ends, or until `stop` says to cut it (a reset
/// and a warning); log one line when it ends (who, bytes, how it ended). Returns whether it
/// ended cleanly, and the bytes echoed.
pub(crate) async fn echo(
    mut conn: Connection,
    stop: tokio::sync::watch::Receiver<Option<String>>,
) -> (bool, u64) {
    let started = std::time::Instant::now();
    // Most echo connections are short (a line or a request): a small buffer first, the
    // copy's full one once a read fills it.
    let mut buf = vec![0u8; 4096];
    let mut echoed = 0u64;
    let copy = async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) => break conn.shutdown().await.err(),
                Err(e) => break Some(e),
                Ok(n) => {
                    if let Err(e) = conn.write_all(&buf[..n]).await {
                        break Some(e);
                    }
                    echoed += n as u64;
                    if n == buf.len() && buf.len() < pump::BUFFER {
                        buf.resize(pump::BUFFER, 0);
                    }
                }
            }
        }
    };
    let ended = tokio::select! {
        e = copy => e.map(Err),
        why = pump::stop_signal(Some(stop.clone())) => Some(Ok(why)),
    };
    let who = format!("{}{}", conn.peer_addr(), via(&conn));
    // A clean end is confirmed where the transport delivers after the drop (an SSH channel):
    // the echo's last bytes may still be on their way (bounded by the transport, and cut
    // with the rest at the drain deadline).
    let ended = match ended {
        None => {
            tokio::select! {
                r = delivered(conn) => r.err().map(Err),
                why = pump::stop_signal(Some(stop)) => Some(Ok(why)),
            }
        }
        Some(e) => {
            if e.is_ok() {
                reset_on_close(&conn);
            }
            Some(e)
        }
    };
    let secs = started.elapsed().as_secs_f64();
    match ended {
        None => {
            line!(
                info,
                "echo connection from {who}: {echoed} bytes echoed, {secs:.3}s, ended cleanly"
            );
            (true, echoed)
        }
        Some(Err(e)) => {
            line!(
                warn,
                "echo connection from {who}: {echoed} bytes echoed, {secs:.3}s, ended by an error: {e}"
            );
            (false, echoed)
        }
        Some(Ok(why)) => {
            line!(
                warn,
                "echo connection from {who}: {echoed} bytes echoed, {secs:.3}s, cut: {why}; \
                 reset"
            );
            (false, echoed)
        }
    }
}

pub(crate) async fn connect(p: Parsed) -> Result<ExitCode, Fail> {
    let session = Session::from_flags(&p)?;
    let endpoint = build_client(p.one("description", USAGE).map_err(Fail::Usage)?)?;
    let conn = endpoint
        .connect()
        .await
        .map_err(|e| Fail::Run(e.to_string()))?;
    stdio(conn, session, &format!("`{endpoint}`")).await
}

/// Copy stdin to `conn` and `conn` to stdout until both directions end.
async fn stdio(mut conn: Connection, session: Session, name: &str) -> Result<ExitCode, Fail> {
    let started = std::time::Instant::now();
    let limits = session.limits(&conn, stdin_is_terminal());
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    let (stats, result) = tokio::select! {
        done = pump(&mut conn, stdio, limits) => done,
        // SIGINT/SIGTERM (the handlers are installed at start, so ^C must end this here):
        // the status a shell gives a process ended by SIGINT.
        () = shutdown_signal() => return Ok(ExitCode::from(130)),
    };
    match result {
        // The last bytes sent may still be on their way after the connection is dropped (an
        // SSH channel: its server confirms with its close): the command does not exit before.
        Ok(()) => match delivered(conn).await {
            Ok(()) => {
                line!(
                    info,
                    "{name}: {} bytes received, {} bytes sent, {:.3}s, ended cleanly",
                    stats.a_to_b,
                    stats.b_to_a,
                    started.elapsed().as_secs_f64()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(Fail::Run(format!(
                "warning: {name}: the transfer was truncated: {e}; {} bytes sent, {} bytes \
                 received; the connection is reset",
                stats.b_to_a, stats.a_to_b
            ))),
        },
        Err(e) => {
            reset_on_close(&conn);
            if let Some(cut) = pump::cut_of(&e) {
                let (what, delivered, held) = match cut.direction {
                    Direction::AToB => ("receiving", stats.a_to_b, stats.a_to_b_held),
                    Direction::BToA => ("sending stdin", stats.b_to_a, stats.b_to_a_held),
                };
                Err(Fail::Run(format!(
                    "warning: {name}: gave up {what} with nothing moving for {:?} after the \
                     other direction ended (--linger): {delivered} bytes had gone through that \
                     way, {held} read but not delivered were dropped; the connection is reset \
                     so the peer does not take it for a complete transfer",
                    cut.after
                )))
            } else {
                // A reset or a broken pipe while bytes were still on their way (stdin still
                // had data, or the peer's data had not ended): the transfer is incomplete.
                Err(Fail::Run(format!(
                    "warning: {name}: the transfer was truncated: {e}; {} bytes sent ({} more \
                     read from stdin but not delivered), {} bytes received ({} more read but \
                     not written to stdout); the connection is reset",
                    stats.b_to_a, stats.b_to_a_held, stats.a_to_b, stats.a_to_b_held
                )))
            }
        }
    }
}

/// Drop `conn`, then wait until its transport confirms that the bytes written before its
/// shutdown reached the far end, where it says it delivers after the stream is dropped
/// ([`endpoints::Delivery`]: an SSH channel's close handshake); at once otherwise.
pub(crate) async fn delivered(conn: Connection) -> std::io::Result<()> {
    let delivery = conn.extensions().get::<endpoints::Delivery>().cloned();
    drop(conn);
    match delivery {
        Some(d) => d.wait().await,
        None => Ok(()),
    }
}
