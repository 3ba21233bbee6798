//! The echo server's rate (issue 30, item 4): `endpoints listen tcp:... --echo`, the unit
//! file's example server, against an echo server written by hand with tokio (this bench
//! binary started as `--raw-echo-server PORT`, in a process of its own like ours, on a
//! multi-thread runtime like ours). `concurrency` clients each connect, send a line,
//! half-close and read the echo to its end, until `accepts` round trips are done; round trips
//! per second. Ours runs with its default log (a line per connection, to a file) and with
//! `--log-level warn`.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::{Config, Outcome, free_port, interleave, row};

fn bin() -> String {
    std::env::var("ENDPOINTS_BIN").unwrap_or_else(|_| "target/release/endpoints".into())
}

#[derive(Clone, Copy, Debug)]
enum Server {
    /// The hand-written tokio echo server.
    Raw,
    /// `endpoints listen --echo`, its default log.
    Echo,
    /// `endpoints listen --echo --log-level warn`.
    Quiet,
}

pub(crate) async fn figures(cfg: &Config) -> Outcome<()> {
    let dir = std::env::temp_dir().join(format!("endpoints-bench-echo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (ours, name) in [
        (
            Server::Echo,
            "echo server rate, `endpoints listen tcp: --echo` (a log line per connection) vs a hand-written tokio echo server (round trips/s)",
        ),
        (
            Server::Quiet,
            "echo server rate, `endpoints listen tcp: --echo --log-level warn` vs a hand-written tokio echo server (round trips/s)",
        ),
    ] {
        let (base, ours) = interleave(
            cfg.runs,
            || rate(Server::Raw, cfg, &dir),
            || rate(ours, cfg, &dir),
        )
        .await?;
        row(name, base, ours, "≥ 0.95")?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Start `server` on a free loopback port; returns the child and the port, once it accepts.
async fn start(server: Server, dir: &Path) -> Outcome<(Child, u16)> {
    let port = free_port();
    let log = dir.join("echo.log");
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = match server {
        Server::Raw => {
            let exe = std::env::current_exe().map_err(|e| format!("the bench binary: {e}"))?;
            let mut c = Command::new(exe);
            c.args(["--raw-echo-server", &port.to_string()]);
            c
        }
        Server::Echo | Server::Quiet => {
            let mut c = Command::new(bin());
            c.args([
                "listen",
                &format!("tcp:{port}:interface=127.0.0.1"),
                "--echo",
            ]);
            if matches!(server, Server::Quiet) {
                c.args(["--log-level", "warn"]);
            }
            c
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{server:?}: cannot start: {e}"))?;
    // Bounded: 10 s for the server to bind (it takes milliseconds).
    for _ in 0..1000 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok((child, port));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!(
        "{server:?}: not listening on port {port} within 10 s"
    ))
}

/// Round trips per second against a freshly started `server`.
async fn rate(server: Server, cfg: &Config, dir: &Path) -> Outcome<f64> {
    let (mut child, port) = start(server, dir).await?;
    let target = cfg.accepts;
    let issued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            let issued = issued.clone();
            tokio::spawn(async move {
                while issued.fetch_add(1, Ordering::Relaxed) < target {
                    round_trip(port).await?;
                }
                Ok::<(), std::io::Error>(())
            })
        })
        .collect();
    let all = async {
        for c in clients {
            c.await.map_err(std::io::Error::other)??;
        }
        Ok::<(), std::io::Error>(())
    };
    let done = tokio::time::timeout(Duration::from_secs(60), all).await;
    let elapsed = started.elapsed();
    let _ = child.kill().await;
    match done {
        Ok(Ok(())) => Ok(target as f64 / elapsed.as_secs_f64()),
        Ok(Err(e)) => Err(format!("{server:?}: a round trip failed: {e}")),
        Err(_) => Err(format!(
            "{server:?}: {target} round trips not done within 60 s"
        )),
    }
}

async fn round_trip(port: u16) -> std::io::Result<()> {
    const LINE: &[u8] = b"hello, echo server\n";
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(LINE).await?;
    s.shutdown().await?;
    let mut back = Vec::with_capacity(LINE.len());
    s.read_to_end(&mut back).await?;
    if back == LINE {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("echoed {back:?}")))
    }
}

/// `--raw-echo-server PORT`: the baseline, an echo server as one would write it with tokio
/// (a task per connection, a 64 KiB buffer, the write side shut down at the peer's end).
pub(crate) fn raw_server(port: u16) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raw echo server: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let l = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("raw echo server: bind 127.0.0.1:{port}: {e}");
                return 1;
            }
        };
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => {
                            let _ = s.shutdown().await;
                            break;
                        }
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            });
        }
    })
}
