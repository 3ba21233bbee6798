//! `exec:` benchmarks (issue 27): bytes through `endpoints relay tcp: exec:cat` against
//! `socat TCP-LISTEN:...,fork EXEC:cat`, and connections per second, each starting a child.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::Outcome;

#[derive(Clone, Copy, Debug)]
enum Relay {
    Socat,
    Endpoints,
    /// Another build of the command, from `ENDPOINTS_BIN_BEFORE` (the code before a change,
    /// for a same-run comparison).
    Before,
}

/// CPU time (user + system, seconds) of process `pid` and its reaped children: for both
/// relays that counts `cat` too (socat's per-connection fork reaps it, and socat reaps the
/// fork). `None` without /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After `(comm)`: state is field 3; utime, stime, cutime, cstime are fields 14 to 17.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<f64>().ok())
        .sum::<Option<f64>>()?;
    Some(ticks / clock_ticks())
}

/// Clock ticks a second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// A relay from a loopback port to `cat` started per connection; where to connect, and the
/// process to keep alive.
async fn start(kind: Relay) -> Outcome<(SocketAddr, Child)> {
    match kind {
        Relay::Socat => {
            let port = crate::free_port();
            let child = Command::new("socat")
                .args([
                    "-b",
                    "65536",
                    &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=1024"),
                    "EXEC:cat",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("socat: {e}"))?;
            crate::relay::wait_bound(port).await?;
            Ok((SocketAddr::from(([127, 0, 0, 1], port)), child))
        }
        Relay::Endpoints | Relay::Before => {
            let bin = match kind {
                Relay::Before => std::env::var("ENDPOINTS_BIN_BEFORE")
                    .map_err(|_| "ENDPOINTS_BIN_BEFORE is not set")?,
                _ => std::env::var("ENDPOINTS_BIN")
                    .unwrap_or_else(|_| "target/release/endpoints".into()),
            };
            let mut child = Command::new(bin)
                .args(["relay", "tcp:0:interface=127.0.0.1", "exec:cat"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    format!(
                        "endpoints relay: {e} (run through `cargo xtask bench`, which builds it)"
                    )
                })?;
            let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
            let port = loop {
                let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                    .await
                    .map_err(|_| "endpoints relay: no `listening on` line within 10 s")?
                    .map_err(|e| format!("endpoints relay: {e}"))?
                    .ok_or("endpoints relay: exited before listening")?;
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let d: endpoints::Description = rest.parse().map_err(|e| format!("{e}"))?;
                    break d
                        .get("port")
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or("endpoints relay: no port")?;
                }
            };
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((SocketAddr::from(([127, 0, 0, 1], port)), child))
        }
    }
}

/// `bytes` sent through the relay to `cat` and read back, on one connection: Gbit/s of the
/// echo (each byte crosses the relay twice), and the CPU seconds per GiB echoed that the
/// relay and its `cat` spent (user + system).
async fn echo_throughput(kind: Relay, bytes: u64) -> Outcome<(f64, f64)> {
    let (addr, child) = start(kind).await?;
    let pid = child.id().ok_or("the relay has no pid")?;
    let cpu_before = cpu_seconds(pid).ok_or("no CPU reading from /proc")?;
    let started = Instant::now();
    // Bounded: 1 GiB at 0.1 Gbit/s would take 86 s; past 120 s something is stuck.
    let run = async {
        let s = TcpStream::connect(addr).await?;
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move {
            let buf = vec![0x5Au8; 1 << 16];
            let mut sent = 0u64;
            while sent < bytes {
                w.write_all(&buf).await?;
                sent += buf.len() as u64;
            }
            w.shutdown().await?;
            std::io::Result::Ok(())
        });
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        writer.await.map_err(std::io::Error::other)??;
        std::io::Result::Ok(got)
    };
    let got = match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(Ok(got)) => got,
        Ok(Err(e)) => return Err(format!("{kind:?}: the echo failed: {e}")),
        Err(_) => return Err(format!("{kind:?}: the echo did not end within 120 s")),
    };
    let secs = started.elapsed().as_secs_f64();
    // The children (socat's fork, `cat`) count once reaped: give them a moment (bounded).
    let settle = Instant::now();
    let mut cpu_after = cpu_seconds(pid).ok_or("no CPU reading from /proc")?;
    while settle.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = cpu_seconds(pid).ok_or("no CPU reading from /proc")?;
        if now == cpu_after && settle.elapsed() >= Duration::from_millis(300) {
            break;
        }
        cpu_after = now;
    }
    drop(child);
    if got != bytes {
        return Err(format!("{kind:?}: {got} of {bytes} bytes came back"));
    }
    let gib = bytes as f64 / f64::from(1u32 << 30);
    Ok((
        bytes as f64 * 8.0 / secs / 1e9,
        (cpu_after - cpu_before) / gib,
    ))
}

/// Connections per second, each starting a `cat` that echoes one byte and exits: `conns`
/// connections, `concurrency` at a time; each connects, writes a byte, half-closes, reads
/// the byte and the end.
async fn child_rate(kind: Relay, conns: usize, concurrency: usize) -> Outcome<f64> {
    let (addr, child) = start(kind).await?;
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < conns {
                let mut s = TcpStream::connect(addr).await?;
                s.write_all(b"x").await?;
                s.shutdown().await?;
                let mut back = Vec::new();
                s.read_to_end(&mut back).await?;
                if back != b"x" {
                    return Err(std::io::Error::other(format!("echoed {back:?}")));
                }
            }
            std::io::Result::Ok(())
        }));
    }
    let all = async {
        for t in tasks {
            t.await.map_err(std::io::Error::other)??;
        }
        std::io::Result::Ok(())
    };
    // Bounded: 2,000 children at 100/s would take 20 s; past 120 s something is stuck.
    match tokio::time::timeout(Duration::from_secs(120), all).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{kind:?}: a connection failed: {e}")),
        Err(_) => {
            return Err(format!(
                "{kind:?}: {conns} connections not done within 120 s"
            ));
        }
    }
    let rate = conns as f64 / started.elapsed().as_secs_f64();
    drop(child);
    Ok(rate)
}

/// The `exec:` rows: echo throughput through `cat` and the rate of connections each
/// starting a child, against socat's fork + EXEC; interleaved runs, medians.
pub(crate) async fn figures(quick: bool) -> Outcome<()> {
    if std::process::Command::new("socat")
        .arg("-V")
        .output()
        .is_err()
    {
        println!("| exec benchmarks | skipped: `socat` not found | | | |");
        return Ok(());
    }
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let runs = if quick { 3 } else { 5 };
    let (conns, concurrency) = if quick { (300, 8) } else { (2_000, 8) };
    // With ENDPOINTS_BIN_BEFORE (an earlier build of the command), its echo too, interleaved.
    let before = std::env::var_os("ENDPOINTS_BIN_BEFORE").is_some();
    let (mut socat_gbits, mut ours_gbits, mut before_gbits) = (Vec::new(), Vec::new(), Vec::new());
    let (mut socat_cpu, mut ours_cpu, mut before_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut socat_rate, mut ours_rate) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (g, c) = echo_throughput(Relay::Socat, bytes).await?;
        socat_gbits.push(g);
        socat_cpu.push(c);
        let (g, c) = echo_throughput(Relay::Endpoints, bytes).await?;
        ours_gbits.push(g);
        ours_cpu.push(c);
        if before {
            let (g, c) = echo_throughput(Relay::Before, bytes).await?;
            before_gbits.push(g);
            before_cpu.push(c);
        }
        socat_rate.push(child_rate(Relay::Socat, conns, concurrency).await?);
        ours_rate.push(child_rate(Relay::Endpoints, conns, concurrency).await?);
    }
    let mb = bytes >> 20;
    crate::row(
        &format!(
            "exec, {mb} MiB echoed through `cat`: `endpoints relay tcp: exec:cat` vs `socat TCP-LISTEN:...,fork EXEC:cat` (Gbit/s)"
        ),
        crate::median(socat_gbits),
        crate::median(ours_gbits.clone()),
        "≥ 1.0",
    )?;
    crate::row(
        "exec, the same echo: CPU seconds per GiB, the relay and its `cat` (user + system; lower is better)",
        crate::median(socat_cpu),
        crate::median(ours_cpu.clone()),
        "≤ 1.0",
    )?;
    if before {
        crate::row(
            &format!("exec, {mb} MiB through `cat`: this build vs ENDPOINTS_BIN_BEFORE (Gbit/s)"),
            crate::median(before_gbits),
            crate::median(ours_gbits),
            "≥ 1.0",
        )?;
        crate::row(
            "exec, the same: CPU seconds per GiB vs ENDPOINTS_BIN_BEFORE (lower is better)",
            crate::median(before_cpu),
            crate::median(ours_cpu),
            "≤ 1.0",
        )?;
    }
    crate::row(
        &format!(
            "exec, {conns} connections, {concurrency} at once, each starting `cat`: vs socat fork + EXEC (conn/s)"
        ),
        crate::median(socat_rate),
        crate::median(ours_rate),
        "≥ 1.0",
    )?;
    Ok(())
}
