//! `cargo xtask bench [--quick]`: each figure is a ratio against a baseline measured in the
//! same run, on the same machine, interleaved (baseline, ours, baseline, ours, ...), with the
//! median of several runs. Absolute numbers on a 2-core machine are noisy; ratios are not.
//!
//! A run that fails (a baseline or ours: a server that did not start, connections or bytes
//! that did not arrive within a bounded wait) is an error: its row says FAILED with what was
//! lost, and the bench exits with status 1 after the other groups.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use endpoints::Listener;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

mod echo;
mod exec;
mod handover;
mod metrics;
mod pipes;
mod relay;
mod run;
mod socks;
mod ssh;
mod terminate;
mod tls;
mod ws;

/// What a failed measurement says: what was lost, within which bound.
pub(crate) type Outcome<T> = Result<T, String>;

pub(crate) struct Config {
    runs: usize,
    accepts: usize,
    concurrency: usize,
    connects: usize,
    /// TLS handshakes per run.
    handshakes: usize,
}

/// The groups of figures, for `--only`.
const GROUPS: [&str; 14] = [
    "accept",
    "echo",
    "connect",
    "proxy",
    "relay",
    "tls",
    "socks",
    "terminate",
    "exec",
    "handover",
    "ws",
    "metrics",
    "run",
    "ssh",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The echo group's baseline server, in a process of its own (see `echo.rs`).
    if let [flag, port] = args.as_slice()
        && flag == "--raw-echo-server"
    {
        let Ok(port) = port.parse() else {
            eprintln!("endpoints-bench: --raw-echo-server needs a port");
            std::process::exit(2);
        };
        std::process::exit(echo::raw_server(port));
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only relay,tls`: run just these groups (default: all).
    let only: Option<Vec<String>> = args.iter().position(|a| a == "--only").map(|i| {
        args.get(i + 1)
            .map(|g| g.split(',').map(str::to_owned).collect())
            .unwrap_or_else(|| vec![String::new()])
    });
    if let Some(bad) = only
        .iter()
        .flatten()
        .find(|g| !GROUPS.contains(&g.as_str()))
    {
        eprintln!(
            "endpoints-bench: unknown group `{bad}` for --only; the groups are {}",
            GROUPS.join(", ")
        );
        std::process::exit(2);
    }
    let want = |group: &str| only.as_ref().is_none_or(|o| o.iter().any(|g| g == group));
    if let Some(i) = args.iter().position(|a| a == "--cc") {
        // The name goes into a shell script run as root: letters, digits and `_` only.
        let Some(cc) = args.get(i + 1).filter(|cc| {
            !cc.is_empty() && cc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }) else {
            eprintln!("endpoints-bench: --cc needs a congestion control name (cubic, bbr, reno)");
            std::process::exit(2);
        };
        let mut rest = args.clone();
        rest.drain(i..i + 2);
        std::process::exit(in_namespace(cc, &rest));
    }
    let cfg = if quick {
        Config {
            runs: 3,
            accepts: 2_000,
            concurrency: 16,
            connects: 300,
            handshakes: 300,
        }
    } else {
        Config {
            runs: 7,
            accepts: 10_000,
            concurrency: 16,
            connects: 2_000,
            handshakes: 2_000,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("endpoints-bench: cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    let failed = rt.block_on(async {
        println!(
            "endpoints-bench: {} runs per figure, medians; ratio = endpoints / baseline (higher is better)",
            cfg.runs
        );
        // The relay figures depend on it: BBR paces every send with a timer, CUBIC does not.
        let cc = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control");
        println!(
            "machine: {} cores, TCP congestion control {} (see --cc)\n",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cc.as_deref().map_or("unknown", str::trim)
        );
        // The machine's cores are shared: say how busy it was, at the start and at the end.
        println!("load average at start: {}\n", load_average());
        println!("| benchmark | baseline | endpoints | ratio | target |");
        println!("|---|---|---|---|---|");

        let mut failed = Vec::new();
        let mut report = |group: &str, r: Outcome<()>| {
            if let Err(e) = r {
                println!("| {group}: FAILED | {e} | | | |");
                failed.push(format!("{group}: {e}"));
            }
        };
        if want("accept") {
            report("accept", accept_figures(&cfg).await);
        }
        if want("echo") {
            report("echo", echo::figures(&cfg).await);
        }
        if want("connect") {
            report("connect", connect_figures(&cfg).await);
        }
        if want("proxy") {
            report("proxy", proxy_figures(&cfg).await);
        }
        if want("relay") {
            report("relay", relay::figures(quick).await);
        }
        if want("tls") {
            report("tls", tls_figures(&cfg, quick).await);
        }
        if want("socks") {
            report("socks", socks::figures(&cfg).await);
        }
        if want("terminate") {
            let tls = tls::Fixture::new();
            report("terminate", terminate::figures(quick, tls.pems()).await);
        }
        if want("exec") {
            report("exec", exec::figures(quick).await);
        }
        if want("handover") {
            report("handover", handover::figures(quick).await);
        }
        if want("ws") {
            report("ws", ws::figures(quick).await);
        }
        if want("metrics") {
            report("metrics", metrics::figures(&cfg).await);
        }
        if want("run") {
            report("run", run::figures(quick).await);
        }
        if want("ssh") {
            report("ssh", ssh::figures(quick).await);
        }
        println!("\nload average at the end: {}", load_average());
        failed
    });
    if !failed.is_empty() {
        for f in &failed {
            eprintln!("endpoints-bench: FAILED: {f}");
        }
        std::process::exit(1);
    }
}

/// Accept rate: `tcp:` against a raw tokio listener.
async fn accept_figures(cfg: &Config) -> Outcome<()> {
    let (base, ours) = interleave(
        cfg.runs,
        || accept_rate(Server::Raw, cfg),
        || accept_rate(Server::Endpoints, cfg),
    )
    .await?;
    row(
        "accept-and-close rate, `tcp:` listener vs tokio `TcpListener` (conn/s)",
        base,
        ours,
        "≥ 0.95",
    )
}

/// Connect rate: `tcp:` with an IP literal and with `localhost`, against tokio's connect.
async fn connect_figures(cfg: &Config) -> Outcome<()> {
    let (base, ours) = interleave(
        cfg.runs,
        || connect_rate(Client::Raw, cfg),
        || connect_rate(Client::TcpLiteral, cfg),
    )
    .await?;
    row(
        "connect rate, `tcp:127.0.0.1:P` vs `TcpStream::connect` (conn/s)",
        base,
        ours,
        "≥ 0.95",
    )?;

    let (base, ours) = interleave(
        cfg.runs,
        || connect_rate(Client::RawName, cfg),
        || connect_rate(Client::TcpName, cfg),
    )
    .await?;
    row(
        "connect rate, `tcp:localhost:P` (happy eyeballs) vs `TcpStream::connect((\"localhost\", P))` (conn/s)",
        base,
        ours,
        "≥ 0.95",
    )
}

/// PROXY header overhead: `haproxy:tcp:` against `tcp:` reading the same bytes.
async fn proxy_figures(cfg: &Config) -> Outcome<()> {
    for (version, name) in [(1u8, "v1"), (2, "v2")] {
        let (base, ours) = interleave(
            cfg.runs,
            || proxy_accept_rate(version, true, cfg),
            || proxy_accept_rate(version, false, cfg),
        )
        .await?;
        row(
            &format!(
                "accept rate, `haproxy:tcp:` parsing a {name} header vs `tcp:` with the app reading the same bytes (conn/s)"
            ),
            base,
            ours,
            "≥ 0.95",
        )?;
    }
    Ok(())
}

/// TLS handshakes against tokio-rustls, and `openssl s_time` against `openssl s_server`.
async fn tls_figures(cfg: &Config, quick: bool) -> Outcome<()> {
    let tls = tls::Fixture::new();
    let (base, ours) = interleave(
        cfg.runs,
        || tls.handshake_rate(tls::Server::Raw, cfg),
        || tls.handshake_rate(tls::Server::Endpoints, cfg),
    )
    .await?;
    row(
        "TLS 1.3 full handshakes, `ssl:` listener vs raw tokio-rustls, same config (handshakes/s)",
        base,
        ours,
        "≥ 0.95",
    )?;
    if !tls::openssl_present() {
        println!("| `openssl s_time` vs `openssl s_server` | skipped: `openssl` not found | | | |");
        return Ok(());
    }
    // Interleaved like the rest: s_server, ours, s_server, ours, ... after one warm-up each.
    let seconds = if quick { 2 } else { 3 };
    let (openssl, ours) = interleave(
        cfg.runs,
        || tls.s_time_openssl(seconds),
        || tls.s_time_ours(seconds),
    )
    .await?;
    row(
        &format!(
            "`openssl s_time -new -time {seconds}` against `openssl s_server` vs against `ssl:` (connections/s)"
        ),
        openssl,
        ours,
        "≥ 1.0",
    )
}

/// Run this benchmark again, in a new network namespace (loopback only) whose TCP congestion
/// control is `cc`, with the machine's TCP buffer limits copied in, so that the congestion
/// control is the one difference. Needs root (`unshare --net`); returns the exit code.
fn in_namespace(cc: &str, args: &[String]) -> i32 {
    let sysctl = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (rmem, wmem) = (sysctl("tcp_rmem"), sysctl("tcp_wmem"));
    let script = format!(
        "ip link set lo up && echo '{cc}' > /proc/sys/net/ipv4/tcp_congestion_control \
         && echo '{rmem}' > /proc/sys/net/ipv4/tcp_rmem && echo '{wmem}' > /proc/sys/net/ipv4/tcp_wmem \
         && exec \"$0\" \"$@\""
    );
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("endpoints-bench: cannot find my own binary: {e}");
            return 1;
        }
    };
    let status = std::process::Command::new("unshare")
        .args(["--net", "--", "sh", "-c", &script])
        .arg(exe)
        .args(args)
        .status();
    match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("endpoints-bench: --cc runs `unshare --net` (util-linux, as root): {e}");
            1
        }
    }
}

/// `/proc/loadavg`'s first three fields (1, 5 and 15 minutes), or `unknown`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// A loopback port nobody listens on now, for a peer program (socat, openssl) to bind.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One row. A baseline or an `ours` that is not a positive number is an error (a failed
/// run), never an `inf×` or `0.00×` ratio.
pub(crate) fn row(name: &str, base: f64, ours: f64, target: &str) -> Outcome<()> {
    if !(base.is_finite() && base > 0.0) {
        return Err(format!("{name}: the baseline has no figure ({base})"));
    }
    if !(ours.is_finite() && ours > 0.0) {
        return Err(format!("{name}: endpoints has no figure ({ours})"));
    }
    println!(
        "| {name} | {} | {} | {:.2}× | {target} |",
        figure(base),
        figure(ours),
        ours / base
    );
    Ok(())
}

/// Two significant digits at least: 16 Gbit/s and 1.8 Gbit/s both read.
pub(crate) fn figure(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Baseline, ours, baseline, ours, ... after one warm-up of each; the medians. A failed run
/// of either ends the figure with its error.
pub(crate) async fn interleave<FB, FO, B, O>(
    runs: usize,
    mut base: FB,
    mut ours: FO,
) -> Outcome<(f64, f64)>
where
    FB: FnMut() -> B,
    FO: FnMut() -> O,
    B: Future<Output = Outcome<f64>>,
    O: Future<Output = Outcome<f64>>,
{
    // One warm-up of each, not counted.
    base().await?;
    ours().await?;
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        b.push(base().await?);
        o.push(ours().await?);
    }
    Ok((median(b), median(o)))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[derive(Clone, Copy)]
enum Server {
    Raw,
    Endpoints,
}

/// Accepted connections per second: `concurrency` clients connect and reset (SO_LINGER 0, so
/// no TIME_WAIT piles up) while the server accepts and drops, until `accepts` were accepted.
async fn accept_rate(server: Server, cfg: &Config) -> Outcome<f64> {
    let target = cfg.accepts;
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let (addr, task) = match server {
        Server::Raw => {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("addr");
            let task = tokio::spawn(async move {
                while counted.load(Ordering::Relaxed) < target {
                    if let Ok((s, _)) = l.accept().await {
                        drop(s);
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = done_tx.send(Instant::now());
            });
            (addr, task)
        }
        Server::Endpoints => {
            let mut l: Box<dyn Listener> = endpoints::listen("tcp:0:interface=127.0.0.1")
                .await
                .expect("listen");
            let addr = l.local_addr().expect("addr").ip().expect("ip");
            let task = tokio::spawn(async move {
                while counted.load(Ordering::Relaxed) < target {
                    if let Ok(c) = l.accept().await {
                        drop(c);
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = done_tx.send(Instant::now());
            });
            (addr, task)
        }
    };
    let started = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            let issued = issued.clone();
            tokio::spawn(async move {
                while issued.fetch_add(1, Ordering::Relaxed) < target {
                    if let Ok(s) = reset_connect(addr).await {
                        drop(s);
                    }
                }
            })
        })
        .collect();
    let finished = tokio::time::timeout(Duration::from_secs(60), done_rx).await;
    for c in clients {
        c.abort();
    }
    task.abort();
    match finished {
        Ok(Ok(at)) => Ok(target as f64 / (at - started).as_secs_f64()),
        _ => Err(format!(
            "accept ({}): {} of {target} connections accepted within 60 s",
            match server {
                Server::Raw => "tokio",
                Server::Endpoints => "tcp:",
            },
            accepted.load(Ordering::Relaxed)
        )),
    }
}

/// Accepted connections per second, every client sending the same bytes: a v`version` PROXY
/// header. Baseline (`plain == true`): a `tcp:` listener whose application reads those bytes
/// itself, as it would read a first request. Ours: `haproxy:tcp:`, whose wrapper reads and
/// parses them before the application sees the connection. The ratio is what the PROXY layer
/// costs. Each client waits for the server to close; 16 at a time.
async fn proxy_accept_rate(version: u8, plain: bool, cfg: &Config) -> Outcome<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let desc = if plain {
        "tcp:0:interface=127.0.0.1"
    } else {
        "haproxy:tcp:0:interface=127.0.0.1"
    };
    let mut l: Box<dyn Listener> = endpoints::listen(desc)
        .await
        .map_err(|e| format!("{desc}: {e}"))?;
    let addr = l.local_addr().expect("addr").ip().expect("ip");
    let src = endpoints::Address::Ip("192.0.2.1:5555".parse().expect("addr"));
    let header = endpoints::proxy::encode(version, &src, &endpoints::Address::Ip(addr));
    let header_len = header.len();
    let target = cfg.accepts / 2;
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let server = tokio::spawn(async move {
        let mut buf = vec![0u8; header_len];
        while counted.load(Ordering::Relaxed) < target {
            if let Ok(mut c) = l.accept().await {
                if plain {
                    let _ = c.read_exact(&mut buf).await;
                }
                drop(c);
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = done_tx.send(Instant::now());
    });
    let started = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            let (issued, header) = (issued.clone(), header.clone());
            tokio::spawn(async move {
                while issued.fetch_add(1, Ordering::Relaxed) < target {
                    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                        continue;
                    };
                    let _ = s.write_all(&header).await;
                    let mut b = [0u8; 1];
                    let _ = s.read(&mut b).await;
                }
            })
        })
        .collect();
    let finished = tokio::time::timeout(Duration::from_secs(60), done_rx).await;
    for c in clients {
        c.abort();
    }
    server.abort();
    match finished {
        Ok(Ok(at)) => Ok(target as f64 / (at - started).as_secs_f64()),
        _ => Err(format!(
            "{desc}: {} of {target} connections with a v{version} header accepted within 60 s",
            accepted.load(Ordering::Relaxed)
        )),
    }
}

async fn reset_connect(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = TcpSocket::new_v4()?;
    // Reset on close: no TIME_WAIT piles up over hundreds of thousands of connections.
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
    s.connect(addr).await
}

#[derive(Clone, Copy)]
enum Client {
    Raw,
    RawName,
    TcpLiteral,
    TcpName,
}

/// Sequential connects per second (one at a time: latency-bound) to a raw accept-and-drop
/// server.
async fn connect_rate(client: Client, cfg: &Config) -> Outcome<f64> {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        }
    });
    let endpoint = match client {
        Client::Raw | Client::RawName => None,
        Client::TcpLiteral => {
            Some(endpoints::client(&format!("tcp:127.0.0.1:{}", addr.port())).expect("builds"))
        }
        Client::TcpName => {
            Some(endpoints::client(&format!("tcp:localhost:{}", addr.port())).expect("builds"))
        }
    };
    let started = Instant::now();
    let mut failure = None;
    for i in 0..cfg.connects {
        // Each connect bounded: 10 s is thousands of times a loopback connect.
        let one = tokio::time::timeout(Duration::from_secs(10), async {
            match &endpoint {
                None if matches!(client, Client::RawName) => {
                    tokio::net::TcpStream::connect(("localhost", addr.port()))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                None => tokio::net::TcpStream::connect(addr)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Some(e) => e.connect().await.map(drop).map_err(|e| e.to_string()),
            }
        })
        .await;
        let e = match one {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => "no answer within 10 s".to_owned(),
        };
        failure = Some(format!("connect {i} of {}: {e}", cfg.connects));
        break;
    }
    let rate = cfg.connects as f64 / started.elapsed().as_secs_f64();
    server.abort();
    failure.map_or(Ok(rate), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// issue 19 item 7: a failed baseline (no figure) is an error, never an `inf×` ratio.
    #[test]
    fn a_failed_run_is_an_error_not_a_ratio() {
        for (base, ours) in [
            (0.0, 5.0),
            (f64::NAN, 5.0),
            (5.0, 0.0),
            (f64::INFINITY, 5.0),
        ] {
            let e = row("figure", base, ours, "≥ 1").expect_err("no ratio");
            assert!(e.contains("figure"), "{e}");
        }
        assert!(row("figure", 4.0, 5.0, "≥ 1").is_ok());
    }

    /// A failed run of either side ends the interleaved figure with its error.
    #[tokio::test]
    async fn interleave_stops_at_the_first_failure() {
        let calls = AtomicUsize::new(0);
        let r = interleave(
            3,
            || async {
                if calls.fetch_add(1, Ordering::Relaxed) == 2 {
                    Err("lost 5 bytes".to_owned())
                } else {
                    Ok(1.0)
                }
            },
            || async { Ok(2.0) },
        )
        .await;
        assert_eq!(r, Err("lost 5 bytes".to_owned()));
        assert_eq!(
            interleave(3, || async { Ok(1.0) }, || async { Ok(2.0) }).await,
            Ok((1.0, 2.0))
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(Vec::new()).is_nan());
    }
}
