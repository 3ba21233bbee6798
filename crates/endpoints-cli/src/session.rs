//! `listen` and `connect`: one connection on stdin and stdout (or an echo server).
//!
//! Receiving goes on until the peer closes, however long stdin has been at its end: stdin is
//! `/dev/null` under nohup, cron, systemd and CI. Once the peer's data has ended, stdin is no
//! longer read unless `--linger` asks for it. A direction given up on at the `--linger`
//! deadline is a truncation: a warning, a reset, exit status 1.

use std::process::ExitCode;
use std::time::Duration;

use endpoints::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::flags::Parsed;
use crate::pump::{self, Direction, HalfClose, Limits, Linger, pump};
use crate::relay::{is_tls, reset_on_close};
use crate::{Fail, USAGE, build_client, drain, shutdown_signal, start_listening};

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

    /// The copy's limits, `a` being the connection and `b` stdin/stdout.
    fn limits(self, conn: &Connection) -> Limits {
        let after_peer = match self.linger {
            Some(d) => Linger::For(d),
            // Stop reading stdin once the peer's data has ended (as nc does): waiting for
            // the end of a stdin that stays open (a terminal, a parent's pipe) would hang.
            None => Linger::Stop,
        };
        Limits {
            after_a: after_peer,
            after_b: self.linger.map_or(Linger::Forever, Linger::For),
            idle: None,
            finish_ab: pump::Finish::Now,
            finish_ba: self.half_close.finish(is_tls(conn)),
        }
    }
}

pub(crate) async fn listen(p: Parsed) -> Result<ExitCode, Fail> {
    let session = Session::from_flags(&p)?;
    let mut listener = start_listening(p.one("description", USAGE).map_err(Fail::Usage)?).await?;
    if !p.has("--echo") {
        let conn = tokio::select! {
            c = listener.accept() => c.map_err(|e| Fail::Run(e.to_string()))?,
            () = shutdown_signal() => return Ok(ExitCode::SUCCESS),
        };
        let _ = listener.close().await;
        let name = format!("connection from {}", conn.peer_addr());
        return stdio(conn, session, &name).await;
    }
    let mut tasks = JoinSet::new();
    let mut failure = None;
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
        };
        tasks.spawn(echo(conn));
        if p.has("--once") {
            break;
        }
    }
    let _ = listener.close().await;
    drain(tasks, Duration::from_secs(10)).await;
    match failure {
        Some(f) => Err(f),
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn echo(conn: Connection) {
    let (mut r, mut w) = tokio::io::split(conn);
    let mut buf = vec![0u8; pump::BUFFER];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = w.shutdown().await;
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
    let limits = session.limits(&conn);
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    let (stats, result) = tokio::select! {
        done = pump(&mut conn, stdio, limits) => done,
        // SIGINT/SIGTERM (the handlers are installed at start, so ^C must end this here):
        // the status a shell gives a process ended by SIGINT.
        () = shutdown_signal() => return Ok(ExitCode::from(130)),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            reset_on_close(&conn);
            if let Some(cut) = pump::cut_of(&e) {
                let (what, delivered, held) = match cut.direction {
                    Direction::AToB => ("receiving", stats.a_to_b, stats.a_to_b_held),
                    Direction::BToA => ("sending stdin", stats.b_to_a, stats.b_to_a_held),
                };
                Err(Fail::Run(format!(
                    "warning: {name}: gave up {what} {:?} after the other direction ended \
                     (--linger): {delivered} bytes had gone through that way, {held} read but \
                     not delivered were dropped; the connection is reset so the peer does not \
                     take it for a complete transfer",
                    cut.after
                )))
            } else {
                Err(Fail::Run(format!(
                    "{name}: {e} after {} bytes received and {} sent; the connection is reset",
                    stats.a_to_b, stats.b_to_a
                )))
            }
        }
    }
}
