//! Handovers under load (issue 25): a steady stream of short echo connections (about 1,000 a
//! second, each sending a line and checking the echo) through `endpoints listen --echo`, while
//! the server is replaced over and over: by `SIGHUP` handovers (ours), by stop-then-start, and
//! by starting a `reuseport=1` twin and stopping the old one (the two baselines). Each row
//! counts what the clients lost: refused, reset, wrong replies, other errors; and compares the
//! p99 connect latency during the replacements with the steady state before them. A handover
//! row that loses a connection, or whose p99 is more than 10 ms above the steady one, fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How the server is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `SIGHUP`: the listener is handed to the successor.
    Handover,
    /// `SIGTERM`, wait for the exit, start a new one on the same address.
    StopStart,
    /// Start a `reuseport=1` twin, then `SIGTERM` the old one.
    Reuseport,
}

/// Where the server listens.
#[derive(Clone, Debug)]
enum Addr {
    Tcp,
    Unix(PathBuf),
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    wrong: AtomicU64,
    other: AtomicU64,
    /// (started after the first replacement began, connect latency).
    latencies: Mutex<Vec<(bool, Duration)>>,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn lost(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
            + self.reset.load(Ordering::Relaxed)
            + self.wrong.load(Ordering::Relaxed)
            + self.other.load(Ordering::Relaxed)
    }

    fn error(&self, e: &std::io::Error) {
        let counter = match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => &self.refused,
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => &self.reset,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e.to_string());
        }
    }
}

fn bin() -> String {
    std::env::var("ENDPOINTS_BIN").unwrap_or_else(|_| "target/release/endpoints".into())
}

/// The rows of the group.
pub(crate) async fn figures(quick: bool) -> Result<(), String> {
    let cycles = if quick { 10 } else { 100 };
    let dir = std::env::temp_dir().join(format!("endpoints-bench-handover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut failed = None;
    for (addr, mode) in [
        (Addr::Tcp, Mode::Handover),
        (Addr::Tcp, Mode::StopStart),
        (Addr::Tcp, Mode::Reuseport),
        (Addr::Unix(dir.join("echo.sock")), Mode::Handover),
        (Addr::Unix(dir.join("echo.sock")), Mode::StopStart),
    ] {
        let r = scenario(&addr, mode, cycles, &dir).await;
        if let Err(e) = r
            && failed.is_none()
        {
            failed = Some(e);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    failed.map_or(Ok(()), Err)
}

/// One server process as started: its child handle if it is ours, its pid and description.
struct Server {
    child: Option<Child>,
    pid: u32,
}

async fn start(desc: &str, pid_file: &Path) -> Result<(Server, String), String> {
    let mut child = Command::new(bin())
        .args(["listen", desc, "--echo", "--pid-file"])
        .arg(pid_file)
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("endpoints listen: {e} (run through `cargo xtask bench`, which builds it)")
        })?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| "endpoints listen printed nothing in 20 s".to_owned())?
        .map_err(|e| e.to_string())?
        .ok_or("endpoints listen exited at start")?;
    let shown = first
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("endpoints listen: {first}"))?
        .to_owned();
    // Keep reading its stderr (successors write there too), so nobody blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let pid = child.id().ok_or("no pid")?;
    Ok((
        Server {
            child: Some(child),
            pid,
        },
        shown,
    ))
}

fn kill(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Wait (30 s at most) until `server` has exited.
async fn gone(server: &mut Server) -> Result<(), String> {
    if let Some(child) = server.child.as_mut() {
        return tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .map(|_| ())
            .map_err(|_| format!("process {} did not exit in 30 s", server.pid));
    }
    for _ in 0..3000 {
        if !alive(server.pid) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("process {} did not exit in 30 s", server.pid))
}

async fn scenario(addr: &Addr, mode: Mode, cycles: usize, dir: &Path) -> Result<(), String> {
    let pid_file = dir.join(format!("pid-{mode:?}"));
    let _ = std::fs::remove_file(&pid_file);
    let reuse = if mode == Mode::Reuseport {
        ":reuseport=1"
    } else {
        ""
    };
    let first_desc = match addr {
        Addr::Tcp => format!("tcp:0:interface=127.0.0.1{reuse}"),
        Addr::Unix(p) => {
            let _ = std::fs::remove_file(p);
            format!("unix:{}", p.display())
        }
    };
    let (mut server, shown) = start(&first_desc, &pid_file).await?;
    let port: Option<u16> = shown
        .parse::<endpoints::Description>()
        .ok()
        .and_then(|d| d.get("port").and_then(|p| p.parse().ok()));
    let desc = match (addr, port) {
        (Addr::Tcp, Some(p)) => format!("tcp:{p}:interface=127.0.0.1{reuse}"),
        (Addr::Tcp, None) => return Err(format!("no port in {shown}")),
        (Addr::Unix(_), _) => first_desc.clone(),
    };
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let replacing = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(
        addr.clone(),
        port.unwrap_or(0),
        tally.clone(),
        stop.clone(),
        replacing.clone(),
    ));
    // One second of steady state first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    replacing.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut result = Ok(());
    for _ in 0..cycles {
        let step = async {
            match mode {
                Mode::Handover => {
                    let old = server.pid;
                    kill(old, "HUP");
                    let new = wait_pid_change(&pid_file, old).await?;
                    gone(&mut server).await?;
                    server = Server {
                        child: None,
                        pid: new,
                    };
                }
                Mode::StopStart => {
                    kill(server.pid, "TERM");
                    gone(&mut server).await?;
                    server = start(&desc, &pid_file).await?.0;
                }
                Mode::Reuseport => {
                    let (twin, _) = start(&desc, &pid_file).await?;
                    kill(server.pid, "TERM");
                    gone(&mut server).await?;
                    server = twin;
                }
            }
            Ok::<(), String>(())
        };
        if let Err(e) = step.await {
            result = Err(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    kill(server.pid, "KILL");
    let _ = gone(&mut server).await;
    result?;

    let what = match mode {
        Mode::Handover => "SIGHUP handovers",
        Mode::StopStart => "stop-then-start (baseline)",
        Mode::Reuseport => "`reuseport=1` twin, then stop the old (baseline)",
    };
    let family = match addr {
        Addr::Tcp => "tcp:",
        Addr::Unix(_) => "unix:",
    };
    let lat = tally
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let p99 = |during: bool| {
        let mut v: Vec<Duration> = lat
            .iter()
            .filter(|(d, _)| *d == during)
            .map(|(_, l)| *l)
            .collect();
        v.sort();
        v.get(v.len().saturating_mul(99) / 100)
            .copied()
            .unwrap_or_default()
    };
    let (steady, during) = (p99(false), p99(true));
    let ok = tally.ok.load(Ordering::Relaxed);
    let lost = tally.lost();
    let target = if mode == Mode::Handover {
        "0 lost; p99 within 10 ms of steady"
    } else {
        "shows the loss"
    };
    println!(
        "| {family} {cycles} {what} in {:.1}s under ~1,000 conn/s: {} ok | refused {}, reset {}, wrong {}, other {} | p99 connect {:.2} ms steady, {:.2} ms during | {} | {target} |",
        took.as_secs_f64(),
        ok,
        tally.refused.load(Ordering::Relaxed),
        tally.reset.load(Ordering::Relaxed),
        tally.wrong.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
        steady.as_secs_f64() * 1e3,
        during.as_secs_f64() * 1e3,
        if lost == 0 {
            "0 lost".to_owned()
        } else {
            format!("{lost} lost")
        },
    );
    if mode == Mode::Handover {
        if lost > 0 {
            let first = tally
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(format!(
                "{family} handovers lost {lost} connection(s) (first: {first})"
            ));
        }
        if ok == 0 {
            return Err(format!("{family} handovers: no connection succeeded"));
        }
        if during > steady + Duration::from_millis(10) {
            return Err(format!(
                "{family} handovers: p99 connect latency {:.2} ms during the handovers, more than 10 ms above the steady {:.2} ms",
                during.as_secs_f64() * 1e3,
                steady.as_secs_f64() * 1e3
            ));
        }
    }
    Ok(())
}

/// The pid the pid file names once it is not `old` (30 s at most).
async fn wait_pid_change(path: &Path, old: u32) -> Result<u32, String> {
    for _ in 0..3000 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<u32>()
            && pid != old
        {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("no successor of {old} was ready within 30 s"))
}

/// About 1,000 connections a second (one started every millisecond, at most 256 at once)
/// until `stop`.
async fn load(
    addr: Addr,
    port: u16,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    replacing: Arc<AtomicBool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        n += 1;
        let (addr, tally, during) = (
            addr.clone(),
            tally.clone(),
            replacing.load(Ordering::Relaxed),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let r = match &addr {
                Addr::Tcp => match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(s) => {
                        let l = t.elapsed();
                        echo(s, n, l, during, &tally).await
                    }
                    Err(e) => Err(e),
                },
                Addr::Unix(p) => match tokio::net::UnixStream::connect(p).await {
                    Ok(s) => {
                        let l = t.elapsed();
                        echo(s, n, l, during, &tally).await
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = r {
                tally.error(&e);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    // Bounded: each connection's echo has 20 s (below).
    while tasks.join_next().await.is_some() {}
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    n: u64,
    latency: Duration,
    during: bool,
    tally: &Tally,
) -> std::io::Result<()> {
    tally
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((during, latency));
    let msg = format!("ping {n}\n");
    s.write_all(msg.as_bytes()).await?;
    s.shutdown().await?;
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut back))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no echo in 20 s"))??;
    if back == msg.as_bytes() {
        tally.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        tally.wrong.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
