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

/// Which relay sits between client and sink.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Relay {
    Direct,
    Tokio,
    Socat,
    Endpoints,
    /// `endpoints relay` from a `haproxy:tcp:` listener; the client sends a PROXY v1 header.
    EndpointsProxy,
}

/// A sink that reads and counts everything, on every connection. Its accept queue is deep
/// (the usual `somaxconn`, 4096): with tokio's default of 1024, a burst of 1,000 relayed
/// connections overflowed it now and then on the 2-core VM these figures come from, and the
/// connections it turned away were reset.
async fn sink() -> (SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
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
/// direct connection; the relay's CPU per GiB), and 1,000 connections at once.
pub(crate) async fn figures(quick: bool) {
    if std::process::Command::new("socat")
        .arg("-V")
        .output()
        .is_err()
    {
        println!("| relay benchmarks | skipped: `socat` not found | | | |");
        return;
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
            v.push(throughput(*kind, bytes).await);
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
    );
    crate::row(
        &format!(
            "relay, {mb} MiB: `endpoints relay` vs raw tokio `copy_bidirectional` 64 KiB (Gbit/s)"
        ),
        tokio_relay,
        ours,
        "informative",
    );
    crate::row(
        &format!("relay, {mb} MiB: `endpoints relay` vs a direct connection, the ceiling (Gbit/s)"),
        direct,
        ours,
        "≥ 0.7",
    );
    crate::row(
        &format!(
            "relay, {mb} MiB: from a `haproxy:tcp:` listener (PROXY v1 header) vs from `tcp:` (Gbit/s)"
        ),
        ours,
        ours_proxy,
        "informative",
    );
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
    let (socat_bw, socat_kib) = many(Relay::Socat, conns, each).await;
    let (ours_bw, ours_kib) = many(Relay::Endpoints, conns, each).await;
    crate::row(
        &format!(
            "relay, {conns} connections at once, 1 MiB each: aggregate throughput vs socat fork (Gbit/s)"
        ),
        socat_bw,
        ours_bw,
        "informative",
    );
    println!(
        "| relay, {conns} connections at once: peak memory per connection (KiB) | socat fork {socat_kib:.0} | endpoints {ours_kib:.0} | {:.2}× less | informative |",
        socat_kib / ours_kib.max(1.0)
    );
}

/// A relay in front of `target`; returns where to connect and what to keep alive.
async fn start(
    kind: Relay,
    target: SocketAddr,
    fork: bool,
) -> (
    SocketAddr,
    Option<Child>,
    Option<tokio::task::JoinHandle<()>>,
) {
    match kind {
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
                .expect("socat");
            wait_bound(port).await;
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
                .expect("endpoints relay (run through `cargo xtask bench`, which builds it)");
            let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
            let line = lines
                .next_line()
                .await
                .expect("read")
                .expect("listening line");
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let d: endpoints::Description = line
                .trim_start_matches("listening on ")
                .parse()
                .expect("description");
            let port: u16 = d.get("port").and_then(|p| p.parse().ok()).expect("port");
            (SocketAddr::from(([127, 0, 0, 1], port)), Some(child), None)
        }
    }
}

/// Wait (up to 4 s) until socat listens on `port`: binding it fails. A probe connection
/// would use up a socat without `fork`, which serves one connection.
async fn wait_bound(port: u16) {
    for _ in 0..400 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One transfer over one connection.
pub(crate) struct Transfer {
    pub(crate) gbits: f64,
    /// CPU seconds the relay process spent per GiB moved (user + system, `/proc`), for the
    /// relays that run as their own process.
    pub(crate) cpu_per_gib: Option<f64>,
}

/// `bytes` sent over one connection through `kind`.
pub(crate) async fn throughput(kind: Relay, bytes: u64) -> Transfer {
    let (target, count, sink_task) = sink().await;
    let (addr, child, task) = start(kind, target, false).await;
    let pid = child.as_ref().and_then(Child::id);
    let cpu_before = pid.and_then(cpu_secs);
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    if matches!(kind, Relay::EndpointsProxy) {
        // Not counted: the relay takes the header off.
        s.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 443\r\n")
            .await
            .expect("write");
    }
    let buf = vec![0x5Au8; 1 << 16];
    let mut sent = 0u64;
    while sent < bytes {
        s.write_all(&buf).await.expect("write");
        sent += buf.len() as u64;
    }
    s.shutdown().await.expect("shutdown");
    while count.load(Ordering::Relaxed) < bytes {
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
    Transfer {
        gbits: bytes as f64 * 8.0 / secs / 1e9,
        cpu_per_gib: cpu,
    }
}

/// User plus system CPU seconds of process `pid` (all its threads), from `/proc/PID/stat`.
/// The process may have exited already (socat without `fork` does, after its connection);
/// until it is reaped its figures stay readable.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // the first, utime the 12th and stime the 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // USER_HZ: /proc reports ticks of 1/100 s on x86 and ARM Linux, whatever the kernel's HZ.
    Some(ticks as f64 / 100.0)
}

/// (aggregate Gbit/s, peak KiB of relay memory per connection) for `conns` connections at
/// once, `each` bytes apiece.
pub(crate) async fn many(kind: Relay, conns: usize, each: u64) -> (f64, f64) {
    let (target, count, sink_task) = sink().await;
    let (addr, child, _task) = start(kind, target, true).await;
    let pid = child.as_ref().and_then(Child::id);
    let baseline = pid.map_or(0, rss_tree_kib);
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while let Some(pid) = pid {
                peak.fetch_max(rss_tree_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let buf = vec![0xA5u8; 1 << 16];
            let mut sent = 0u64;
            while sent < each {
                s.write_all(&buf).await.expect("write");
                sent += buf.len() as u64;
            }
            s.shutdown().await.expect("shutdown");
            // The relay closes this side once the sink has read everything; a reset here
            // means the bytes did not all arrive.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.is_ok()
        }));
    }
    let total = each * conns as u64;
    let mut failed = 0;
    for c in clients {
        if !c.await.expect("client") {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("{kind:?}: {failed} of {conns} connections were reset");
        return (0.0, 0.0);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < total {
        if Instant::now() > deadline {
            eprintln!(
                "{kind:?}: only {} of {total} bytes reached the sink within 120 s",
                count.load(Ordering::Relaxed)
            );
            return (0.0, 0.0);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    sampler.abort();
    if let Some(pid) = pid {
        peak.fetch_max(rss_tree_kib(pid), Ordering::Relaxed);
    }
    drop(child);
    sink_task.abort();
    let per_conn = peak.load(Ordering::Relaxed).saturating_sub(baseline) as f64 / conns as f64;
    (total as f64 * 8.0 / secs / 1e9, per_conn)
}

/// Resident memory of `pid` and its children (socat forks one per connection), in KiB.
fn rss_tree_kib(pid: u32) -> u64 {
    let mut total = rss_kib(pid);
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            total += rss_kib(c);
        }
    }
    total
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
