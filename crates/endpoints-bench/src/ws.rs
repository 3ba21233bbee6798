//! WebSocket benchmarks (issue 26): bytes through `endpoints relay tcp: ws:` into a
//! WebSocket sink, against websocat doing the same, and against a plain `tcp:` relay (the
//! cost of the WebSocket hop), interleaved in one run.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::Outcome;
use crate::relay::{Transfer, cpu_secs, wait_bound};

/// What sits between the client (plain TCP) and the sink.
#[derive(Clone, Copy, Debug)]
enum Hop {
    /// `endpoints relay tcp: tcp:` into a TCP sink: the baseline of the WebSocket hop.
    EndpointsTcp,
    /// `endpoints relay tcp: ws:` into a `ws:` sink.
    EndpointsWs,
    /// `websocat --binary tcp-l: ws://` into the same `ws:` sink.
    Websocat,
}

/// A `ws:` server (this library) that reads and counts everything on every connection.
async fn ws_sink() -> Outcome<(SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>)> {
    let mut l = endpoints::listen("ws:tcp:0:interface=127.0.0.1")
        .await
        .map_err(|e| format!("ws sink: {e}"))?;
    let port = l
        .local_addr()
        .ok()
        .and_then(|a| a.ip())
        .map(|a| a.port())
        .ok_or("ws sink: no port")?;
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let task = tokio::spawn(async move {
        while let Ok(mut conn) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    Ok((SocketAddr::from(([127, 0, 0, 1], port)), count, task))
}

/// websocat: on PATH, or built once into `target/websocat` with `cargo install` (minutes, the
/// first time); `None` with the reason when neither works.
fn websocat() -> Result<String, String> {
    let works = |bin: &str| {
        std::process::Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("websocat") {
        return Ok("websocat".into());
    }
    let local = "target/websocat/bin/websocat";
    if works(local) {
        return Ok(local.into());
    }
    eprintln!("ws bench: building websocat with `cargo install websocat` (once)");
    let status = std::process::Command::new("cargo")
        .args([
            "install",
            "--quiet",
            "--locked",
            "websocat",
            "--root",
            "target/websocat",
        ])
        .status()
        .map_err(|e| format!("cargo install websocat: {e}"))?;
    if status.success() && works(local) {
        Ok(local.into())
    } else {
        Err(format!("cargo install websocat failed ({status})"))
    }
}

/// Start `endpoints relay tcp:0 <to>`; its address and process.
async fn endpoints_relay(to: &str) -> Outcome<(SocketAddr, Child)> {
    let bin = std::env::var("ENDPOINTS_BIN").unwrap_or_else(|_| "target/release/endpoints".into());
    let mut child = Command::new(bin)
        .args(["relay", "tcp:0:interface=127.0.0.1", to])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("endpoints relay: {e} (run through `cargo xtask bench`, which builds it)")
        })?;
    let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| "endpoints relay: no `listening on` line within 10 s")?
        .map_err(|e| format!("endpoints relay: {e}"))?
        .ok_or("endpoints relay: exited before listening")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let d: endpoints::Description = line
        .trim_start_matches("listening on ")
        .parse()
        .map_err(|e| format!("endpoints relay: {e}"))?;
    let port: u16 = d
        .get("port")
        .and_then(|p| p.parse().ok())
        .ok_or("endpoints relay: no port")?;
    Ok((SocketAddr::from(([127, 0, 0, 1], port)), child))
}

/// `bytes` from a TCP client through `hop` into its sink.
async fn throughput(hop: Hop, websocat: Option<&str>, bytes: u64) -> Outcome<Transfer> {
    let (sink, count, sink_task) = match hop {
        Hop::EndpointsTcp => crate::relay::sink().await,
        Hop::EndpointsWs | Hop::Websocat => ws_sink().await?,
    };
    let (addr, child) = match hop {
        Hop::EndpointsTcp => endpoints_relay(&format!("tcp:127.0.0.1:{}", sink.port())).await?,
        Hop::EndpointsWs => endpoints_relay(&format!("ws:127.0.0.1:{}", sink.port())).await?,
        Hop::Websocat => {
            let port = crate::free_port();
            let child = Command::new(websocat.ok_or("no websocat")?)
                .args([
                    "--binary",
                    &format!("tcp-l:127.0.0.1:{port}"),
                    &format!("ws://127.0.0.1:{}/", sink.port()),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("websocat: {e}"))?;
            wait_bound(port).await?;
            (SocketAddr::from(([127, 0, 0, 1], port)), child)
        }
    };
    let pid = child.id();
    let cpu_before = pid.and_then(cpu_secs);
    let started = Instant::now();
    // Bounded: 1 GiB at 0.1 Gbit/s would take 86 s; past 120 s something is stuck.
    let deadline = started + Duration::from_secs(120);
    let send = async {
        let mut s = TcpStream::connect(addr).await?;
        let buf = vec![0x5Au8; 1 << 16];
        let mut sent = 0u64;
        while sent < bytes {
            s.write_all(&buf).await?;
            sent += buf.len() as u64;
        }
        std::io::Result::Ok(s)
    };
    let lost = |why: &str| {
        let got = count.load(Ordering::Relaxed);
        format!("{hop:?}: {got} of {bytes} bytes reached the sink: {why}")
    };
    let s = match tokio::time::timeout_at(deadline.into(), send).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(lost(&format!("the client failed: {e}"))),
        Err(_) => return Err(lost("the client could not send in 120 s")),
    };
    while count.load(Ordering::Relaxed) < bytes {
        if Instant::now() > deadline {
            return Err(lost("not within 120 s"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, pid.and_then(cpu_secs)) {
        (Some(before), Some(after)) => Some((after - before) / (bytes as f64 / f64::from(1 << 30))),
        _ => None,
    };
    drop((child, s));
    sink_task.abort();
    Ok(Transfer {
        gbits: bytes as f64 * 8.0 / secs / 1e9,
        cpu_per_gib: cpu,
    })
}

/// The WebSocket rows of the table.
pub(crate) async fn figures(quick: bool) -> Outcome<()> {
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let runs = if quick { 3 } else { 5 };
    let websocat = match websocat() {
        Ok(w) => Some(w),
        Err(why) => {
            println!("| ws: `endpoints relay tcp: ws:` vs websocat | skipped: {why} | | | |");
            None
        }
    };
    let mut hops = vec![Hop::EndpointsTcp, Hop::EndpointsWs];
    if websocat.is_some() {
        hops.push(Hop::Websocat);
    }
    let mut results: Vec<Vec<Transfer>> = hops.iter().map(|_| Vec::new()).collect();
    // Round robin, so that drift in the machine's speed falls on all of them alike.
    for _ in 0..runs {
        for (hop, v) in hops.iter().zip(&mut results) {
            v.push(throughput(*hop, websocat.as_deref(), bytes).await?);
        }
    }
    let gbits = |v: &[Transfer]| crate::median(v.iter().map(|t| t.gbits).collect());
    let cpu = |v: &[Transfer]| crate::median(v.iter().filter_map(|t| t.cpu_per_gib).collect());
    let mb = bytes >> 20;
    crate::row(
        &format!(
            "ws, {mb} MiB: `endpoints relay tcp: ws:` vs `tcp: tcp:`, the WebSocket hop's cost (Gbit/s)"
        ),
        gbits(&results[0]),
        gbits(&results[1]),
        "informative",
    )?;
    if let Some(w) = results.get(2) {
        crate::row(
            &format!(
                "ws, {mb} MiB into a WebSocket sink: `endpoints relay tcp: ws:` vs `websocat --binary` (Gbit/s)"
            ),
            gbits(w),
            gbits(&results[1]),
            "≥ 1.0",
        )?;
        let (theirs, ours) = (cpu(w), cpu(&results[1]));
        if theirs > 0.0 && ours > 0.0 {
            println!(
                "| ws, {mb} MiB: CPU time of the relay process per GiB (ms, 10 ms ticks) | websocat {:.0} | endpoints {:.0} | {:.2}× less | below websocat |",
                theirs * 1e3,
                ours * 1e3,
                theirs / ours
            );
        }
    }
    Ok(())
}
