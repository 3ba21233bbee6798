//! Relay benchmarks: `endpoints relay` against socat, a raw tokio relay and a direct
//! connection, over loopback.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::Outcome;

/// Which relay sits between client and sink.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Relay {
    Direct,
    Tokio,
    Socat,
    Endpoints,
    /// `endpoints relay` from a `haproxy:tcp:` listener; the client sends a PROXY v1 header.
    EndpointsProxy,
    /// `endpoints run FILE`: one tunnel (`tcp:` to `tcp:`) with the metrics recorder
    /// installed (`metrics = ...`), as an operator runs it.
    EndpointsRun,
}

/// A sink that reads and counts everything, on every connection. Its accept queue is deep
/// (the usual `somaxconn`, 4096): with tokio's default of 1024, a burst of 1,000 relayed
/// connections overflowed it now and then on the 2-core VM these figures come from, and the
/// connections it turned away were reset.
pub(crate) async fn sink() -> (SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let l = socket.listen(4096).expect("listen");
    let addr = l.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let task = tokio::spawn(async move {
        loop {
            let mut s = match l.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    eprintln!("bench sink: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, count, task)
}

/// The relay rows of the table: one connection (throughput against socat, tokio and a
/// direct connection; the relay's CPU per GiB), and 1,000 connections at once (throughput and
/// memory per connection against socat's forks), all interleaved, medians.
pub(crate) async fn figures(quick: bool) -> Outcome<()> {
    if std::process::Command::new("socat")
        .arg("-V")
        .output()
        .is_err()
    {
        println!("| relay benchmarks | skipped: `socat` not found | | | |");
        return Ok(());
    }
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let runs = if quick { 3 } else { 5 };
    // Round robin, so that drift in the machine's speed falls on all of them alike.
    let kinds = [
        Relay::Direct,
        Relay::Socat,
        Relay::Tokio,
        Relay::Endpoints,
        Relay::EndpointsProxy,
    ];
    let mut results: Vec<Vec<Transfer>> = kinds.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (kind, v) in kinds.iter().zip(&mut results) {
            v.push(throughput(*kind, bytes).await?);
        }
    }
    let cpu = |v: &[Transfer]| crate::median(v.iter().filter_map(|t| t.cpu_per_gib).collect());
    let (socat_cpu, ours_cpu) = (cpu(&results[1]), cpu(&results[3]));
    let mut medians = results
        .iter()
        .map(|v| crate::median(v.iter().map(|t| t.gbits).collect()));
    let mut next = || medians.next().unwrap_or(f64::NAN);
    let (direct, socat, tokio_relay, ours, ours_proxy) = (next(), next(), next(), next(), next());
    let mb = bytes >> 20;
    crate::row(
        &format!(
            "relay, {mb} MiB over one connection: `endpoints relay` vs `socat -b 65536` (Gbit/s)"
        ),
        socat,
        ours,
        "≥ 1.5",
    )?;
    crate::row(
        &format!(
            "relay, {mb} MiB: `endpoints relay` vs raw tokio `copy_bidirectional` 64 KiB (Gbit/s)"
        ),
        tokio_relay,
        ours,
        "informative",
    )?;
    crate::row(
        &format!("relay, {mb} MiB: `endpoints relay` vs a direct connection, the ceiling (Gbit/s)"),
        direct,
        ours,
        "≥ 0.7",
    )?;
    crate::row(
        &format!(
            "relay, {mb} MiB: from a `haproxy:tcp:` listener (PROXY v1 header) vs from `tcp:` (Gbit/s)"
        ),
        ours,
        ours_proxy,
        "informative",
    )?;
    // /proc counts ticks of 10 ms: ours is about 17 ticks in a full run (1 GiB), 4 in a quick one.
    if ours_cpu > 0.0 && socat_cpu > 0.0 {
        println!(
            "| relay, {mb} MiB: CPU time of the relay process per GiB (ms, 10 ms ticks) | socat {:.0} | endpoints {:.0} | {:.2}× less | informative |",
            socat_cpu * 1e3,
            ours_cpu * 1e3,
            socat_cpu / ours_cpu
        );
    } else {
        println!(
            "| relay, {mb} MiB: CPU time of the relay process per GiB | not measured (no /proc readings) | | | |"
        );
    }
    let (conns, each) = (1_000, 1u64 << 20);
    // Interleaved like the rest (socat fork, ours, socat fork, ours, ...), after one warm-up
    // each; the memory is taken in each run while all connections are open (see `many`).
    let mut socat_runs = Vec::new();
    let mut ours_runs = Vec::new();
    for round in 0..=runs {
        let s = many(Relay::Socat, conns, each).await?;
        let o = many(Relay::Endpoints, conns, each).await?;
        if round > 0 {
            socat_runs.push(s);
            ours_runs.push(o);
        }
    }
    let med = |v: &[Many], f: fn(&Many) -> f64| crate::median(v.iter().map(f).collect());
    crate::row(
        &format!(
            "relay, {conns} connections at once, 1 MiB each: aggregate throughput vs socat fork (Gbit/s)"
        ),
        med(&socat_runs, |m| m.gbits),
        med(&ours_runs, |m| m.gbits),
        "informative",
    )?;
    let socat_kib = med(&socat_runs, |m| m.pss_kib);
    let (ours_pss, ours_pipes) = (
        med(&ours_runs, |m| m.pss_kib),
        med(&ours_runs, |m| m.pipe_kib),
    );
    let ours_kib = ours_pss + ours_pipes;
    if !(socat_kib > 0.0 && ours_kib > 0.0) {
        return Err(format!(
            "memory per connection: no readings (socat {socat_kib} KiB, endpoints {ours_kib} KiB)"
        ));
    }
    println!(
        "| relay, {conns} connections at once: memory per connection, PSS + pipe capacity (KiB) | socat fork {socat_kib:.0} (PSS) | endpoints {ours_kib:.0} (PSS {ours_pss:.1} + pipes {ours_pipes:.0}) | {:.2}× (socat / endpoints) | informative |",
        socat_kib / ours_kib
    );
    Ok(())
}

/// A relay in front of `target`; returns where to connect and what to keep alive.
async fn start(
    kind: Relay,
    target: SocketAddr,
    fork: bool,
) -> Outcome<(
    SocketAddr,
    Option<Child>,
    Option<tokio::task::JoinHandle<()>>,
)> {
    Ok(match kind {
        Relay::Direct => (target, None, None),
        Relay::Tokio => {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("addr");
            let task = tokio::spawn(async move {
                loop {
                    let Ok((mut a, _)) = l.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let Ok(mut b) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional_with_sizes(
                            &mut a,
                            &mut b,
                            1 << 16,
                            1 << 16,
                        )
                        .await;
                    });
                }
            });
            (addr, None, Some(task))
        }
        Relay::Socat => {
            let port = crate::free_port();
            let listen = if fork {
                format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=1024")
            } else {
                format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr")
            };
            let child = Command::new("socat")
                .args(["-b", "65536", &listen, &format!("TCP:{target}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("socat: {e}"))?;
            wait_bound(port).await?;
            (SocketAddr::from(([127, 0, 0, 1], port)), Some(child), None)
        }
        Relay::EndpointsRun => {
            let (port, metrics) = (crate::free_port(), crate::free_port());
            let dir =
                std::env::temp_dir().join(format!("endpoints-bench-run-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let file = dir.join("tunnels.toml");
            std::fs::write(
                &file,
                format!(
                    "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\n[tunnel.bench]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\nconnect = \"tcp:{}:{}\"\n",
                    target.ip(),
                    target.port()
                ),
            )
            .map_err(|e| format!("{}: {e}", file.display()))?;
            let bin = std::env::var("ENDPOINTS_BIN")
                .unwrap_or_else(|_| "target/release/endpoints".into());
            let mut child = Command::new(bin)
                .arg("run")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    format!("endpoints run: {e} (run through `cargo xtask bench`, which builds it)")
                })?;
            let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
            let wait = async {
                while let Some(l) = lines.next_line().await.map_err(|e| e.to_string())? {
                    if l.starts_with("metrics: listening on") {
                        return Ok(());
                    }
                }
                Err("endpoints run: exited before listening".to_owned())
            };
            tokio::time::timeout(Duration::from_secs(10), wait)
                .await
                .map_err(|_| "endpoints run: not listening within 10 s")??;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            (SocketAddr::from(([127, 0, 0, 1], port)), Some(child), None)
        }
        Relay::Endpoints | Relay::EndpointsProxy => {
            let listen = if matches!(kind, Relay::EndpointsProxy) {
                "haproxy:tcp:0:interface=127.0.0.1"
            } else {
                "tcp:0:interface=127.0.0.1"
            };
            let bin = std::env::var("ENDPOINTS_BIN")
                .unwrap_or_else(|_| "target/release/endpoints".into());
            let mut child = Command::new(bin)
                .args([
                    "relay",
                    listen,
                    &format!("tcp:{}:{}", target.ip(), target.port()),
                ])
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
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .map_err(|_| "endpoints relay: no `listening on` line within 10 s")?
                .map_err(|e| format!("endpoints relay: {e}"))?
                .ok_or("endpoints relay: exited before listening")?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let d: endpoints::Description = line
                .trim_start_matches("listening on ")
                .parse()
                .expect("description");
            let port: u16 = d.get("port").and_then(|p| p.parse().ok()).expect("port");
            (SocketAddr::from(([127, 0, 0, 1], port)), Some(child), None)
        }
    })
}

/// Wait (up to 4 s) until socat listens on `port`: binding it fails. A probe connection
/// would use up a socat without `fork`, which serves one connection.
pub(crate) async fn wait_bound(port: u16) -> Outcome<()> {
    for _ in 0..400 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("nothing bound port {port} within 4 s"))
}

/// One transfer over one connection.
pub(crate) struct Transfer {
    pub(crate) gbits: f64,
    /// CPU seconds the relay process spent per GiB moved (user + system, `/proc`), for the
    /// relays that run as their own process.
    pub(crate) cpu_per_gib: Option<f64>,
}

/// `bytes` sent over one connection through `kind`.
pub(crate) async fn throughput(kind: Relay, bytes: u64) -> Outcome<Transfer> {
    let (target, count, sink_task) = sink().await;
    let (addr, child, task) = start(kind, target, false).await?;
    let pid = child.as_ref().and_then(Child::id);
    let cpu_before = pid.and_then(cpu_secs);
    let started = Instant::now();
    // Bounded: 1 GiB at 0.1 Gbit/s would take 86 s; past 120 s something is stuck.
    let deadline = started + Duration::from_secs(120);
    let send = async {
        let mut s = TcpStream::connect(addr).await?;
        if matches!(kind, Relay::EndpointsProxy) {
            // Not counted: the relay takes the header off.
            s.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 443\r\n")
                .await?;
        }
        let buf = vec![0x5Au8; 1 << 16];
        let mut sent = 0u64;
        while sent < bytes {
            s.write_all(&buf).await?;
            sent += buf.len() as u64;
        }
        s.shutdown().await?;
        std::io::Result::Ok(s)
    };
    let s = match tokio::time::timeout_at(deadline.into(), send).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(lost(
                kind,
                &count,
                bytes,
                &format!("the client failed: {e}"),
            ));
        }
        Err(_) => {
            return Err(lost(
                kind,
                &count,
                bytes,
                "the client could not send in 120 s",
            ));
        }
    };
    while count.load(Ordering::Relaxed) < bytes {
        if Instant::now() > deadline {
            return Err(lost(kind, &count, bytes, "not within 120 s"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, pid.and_then(cpu_secs)) {
        (Some(before), Some(after)) => Some((after - before) / (bytes as f64 / f64::from(1 << 30))),
        _ => None,
    };
    drop((child, s));
    if let Some(t) = task {
        t.abort();
    }
    sink_task.abort();
    Ok(Transfer {
        gbits: bytes as f64 * 8.0 / secs / 1e9,
        cpu_per_gib: cpu,
    })
}

/// The error of a transfer through `kind` whose bytes did not all reach the sink.
fn lost(kind: Relay, count: &AtomicU64, bytes: u64, why: &str) -> String {
    let got = count.load(Ordering::Relaxed);
    format!(
        "{kind:?}: {got} of {bytes} bytes reached the sink, {} lost: {why}",
        bytes.saturating_sub(got)
    )
}

/// User plus system CPU seconds of process `pid` (all its threads), from `/proc/PID/stat`.
/// The process may have exited already (socat without `fork` does, after its connection);
/// until it is reaped its figures stay readable.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // the first, utime the 12th and stime the 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // USER_HZ: /proc reports ticks of 1/100 s on x86 and ARM Linux, whatever the kernel's HZ.
    Some(ticks as f64 / 100.0)
}

/// One run of the many-connections figure.
pub(crate) struct Many {
    /// Aggregate throughput.
    gbits: f64,
    /// Proportional set size (`Pss:` of `/proc/PID/smaps_rollup`) of the relay's processes
    /// (socat: the listener and every fork) while all connections are open, less the idle
    /// relay's, per connection, KiB. PSS divides each shared page among the processes that map
    /// it, so socat's forks are not charged the pages they share with their parent.
    pss_kib: f64,
    /// Kernel pipe capacity the relay holds at that moment (every pipe descriptor's
    /// `F_GETPIPE_SZ`, each pipe once), per connection, KiB: the memory splice may use beyond
    /// the process's own pages. Zero for socat, which copies through its own buffers.
    pipe_kib: f64,
}

/// `conns` connections at once through `kind`, `each` bytes apiece. Every client connects and
/// sends its first 64 KiB, then waits until all have (and the sink has them all: every
/// connection is open end to end); the memory is read at that moment, then all send the rest.
/// The throughput counts from the first connect to the last byte at the sink, less the pause
/// for reading the memory.
pub(crate) async fn many(kind: Relay, conns: usize, each: u64) -> Outcome<Many> {
    const FIRST: u64 = 1 << 16;
    let (target, count, sink_task) = sink().await;
    let (addr, child, _task) = start(kind, target, true).await?;
    let pid = child.as_ref().and_then(Child::id);
    let idle_pss = pid.map_or(0, pss_tree_kib);
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..conns {
        let go = go.clone();
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            let buf = vec![0xA5u8; FIRST as usize];
            s.write_all(&buf).await?;
            // Held until the memory is read.
            let _ = go.acquire().await;
            let mut sent = FIRST;
            while sent < each {
                s.write_all(&buf).await?;
                sent += buf.len() as u64;
            }
            s.shutdown().await?;
            // The relay closes this side once the sink has read everything; a reset here
            // means the bytes did not all arrive.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await?;
            std::io::Result::Ok(())
        }));
    }
    // Bounded waits: 1 GiB at 0.1 Gbit/s would take 86 s.
    let deadline = started + Duration::from_secs(120);
    let opened = conns as u64 * FIRST;
    while count.load(Ordering::Relaxed) < opened {
        if Instant::now() > deadline {
            go.add_permits(conns);
            return Err(lost(
                kind,
                &count,
                opened,
                &format!("the first 64 KiB of {conns} connections, not within 120 s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Reading 1,000 processes' smaps (socat) or 2,000 pipes (ours) takes time: the pause is
    // not counted in the throughput.
    let paused_at = Instant::now();
    let (pss, pipes) = match pid {
        Some(pid) => (pss_tree_kib(pid), crate::pipes::capacity_kib(pid)),
        None => (0, 0),
    };
    let pause = paused_at.elapsed();
    go.add_permits(conns);
    let total = each * conns as u64;
    let mut failed = Vec::new();
    for c in clients {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => failed.push(e.to_string()),
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(_) => failed.push("not done within 120 s".into()),
        }
    }
    if let Some(first) = failed.first() {
        return Err(lost(
            kind,
            &count,
            total,
            &format!(
                "{} of {conns} connections failed (first: {first})",
                failed.len()
            ),
        ));
    }
    while count.load(Ordering::Relaxed) < total {
        if Instant::now() > deadline {
            return Err(lost(kind, &count, total, "not within 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = started.elapsed().saturating_sub(pause).as_secs_f64();
    drop(child);
    sink_task.abort();
    Ok(Many {
        gbits: total as f64 * 8.0 / secs / 1e9,
        pss_kib: pss.saturating_sub(idle_pss) as f64 / conns as f64,
        pipe_kib: pipes as f64 / conns as f64,
    })
}

/// PSS of `pid` and its children (socat forks one per connection), in KiB.
fn pss_tree_kib(pid: u32) -> u64 {
    let mut total = pss_kib(pid);
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            total += pss_kib(c);
        }
    }
    total
}

/// `Pss:` of `/proc/PID/smaps_rollup`, KiB (0 when unreadable).
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
