//! `endpoints`: every endpoint description, usable from a shell.
//!
//! ```text
//! endpoints check [--client|--server] [--json] DESC     parse and build, print the canonical form
//! endpoints types [--json]                              every registered endpoint type
//! endpoints listen DESC [--echo] [--once]               listen; pipe the first connection to stdio
//! endpoints connect DESC                                connect; copy stdin to it and it to stdout
//! endpoints relay LISTEN CONNECT [--max-connections N] [--idle-timeout S] [--linger S] [--drain-timeout S]
//! ```
//!
//! Exit status: 0 on success, 2 for a bad description or usage, 1 when listening, connecting or
//! relaying fails.
//!
//! `relay` logs one line per connection to stderr when it ends:
//! `relay PEER -> CONNECT: N bytes up, M bytes down, SECONDSs, spliced` (or `copied`), then
//! ` (error)` if it failed. PEER is the client named by a PROXY header when there is one.
//! Between plain TCP or unix sockets, a PROXY header's socket included, the bytes move with
//! `splice(2)` and never enter user space; TLS takes the buffered copy.
//!
//! At start the command raises its soft limit on open files to the hard limit (as Go
//! programs do): a relayed connection holds up to six descriptors.

mod describe;
mod pump;
mod rlimit;
mod splice;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use endpoints::registry::Side;
use endpoints::{Connection, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use pump::{Limits, pump};

const USAGE: &str = "\
usage: endpoints check [--client|--server] [--json] DESC
       endpoints types [--json]
       endpoints listen DESC [--echo] [--once]
       endpoints connect DESC
       endpoints relay LISTEN CONNECT [--max-connections N] [--idle-timeout SECS] [--linger SECS] [--drain-timeout SECS]";

/// A failure, with its exit status.
enum Fail {
    Usage(String),
    Run(String),
}

fn main() -> ExitCode {
    // Before any thread exists: take systemd's descriptors and clear the variables.
    if let Err(e) = endpoints::systemd::init() {
        eprintln!("endpoints: {e}");
        return ExitCode::from(2);
    }
    // Best effort: with the soft limit as it was, the command still works, on fewer
    // connections at once.
    if let Err(e) = rlimit::raise_open_files() {
        tracing::debug!(error = %e, "cannot raise the open-files limit");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("endpoints: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(Fail::Usage(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
        Err(Fail::Run(m)) => {
            eprintln!("endpoints: {m}");
            ExitCode::FAILURE
        }
    }
}

/// Options and positional arguments of a subcommand.
struct Parsed {
    flags: Vec<String>,
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

fn parse(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Parsed, Fail> {
    let mut p = Parsed {
        flags: Vec::new(),
        values: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            p.positional.extend(it.by_ref().cloned());
            break;
        }
        if flags.contains(&a.as_str()) {
            p.flags.push(a.clone());
        } else if valued.contains(&a.as_str()) {
            let v = it
                .next()
                .ok_or_else(|| Fail::Usage(format!("{a} needs a value\n{USAGE}")))?;
            p.values.push((a.clone(), v.clone()));
        } else if a.starts_with("--") {
            return Err(Fail::Usage(format!("unknown option {a}\n{USAGE}")));
        } else {
            p.positional.push(a.clone());
        }
    }
    Ok(p)
}

impl Parsed {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn seconds(&self, name: &str, default: Option<f64>) -> Result<Option<Duration>, Fail> {
        match self.values.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Some(Duration::from_secs_f64(s)))
                .ok_or_else(|| Fail::Usage(format!("{name}: expected seconds, got `{v}`"))),
            None => Ok(default.map(Duration::from_secs_f64)),
        }
    }

    fn count(&self, name: &str) -> Result<Option<usize>, Fail> {
        match self.values.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| {
                    Fail::Usage(format!("{name}: expected a positive number, got `{v}`"))
                }),
            None => Ok(None),
        }
    }

    fn one(&self, what: &str) -> Result<&str, Fail> {
        match self.positional.as_slice() {
            [one] => Ok(one),
            _ => Err(Fail::Usage(format!("expected exactly one {what}\n{USAGE}"))),
        }
    }
}

async fn run(args: Vec<String>) -> Result<ExitCode, Fail> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(Fail::Usage(USAGE.into()));
    };
    match cmd.as_str() {
        "check" => check(parse(rest, &["--client", "--server", "--json"], &[])?),
        "types" => {
            let p = parse(rest, &["--json"], &[])?;
            if p.has("--json") {
                println!("{}", describe::types_json());
            } else {
                print!("{}", describe::types_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        "listen" => listen(parse(rest, &["--echo", "--once"], &[])?).await,
        "connect" => connect(parse(rest, &[], &[])?).await,
        "relay" => {
            relay(parse(
                rest,
                &[],
                &[
                    "--max-connections",
                    "--idle-timeout",
                    "--linger",
                    "--drain-timeout",
                ],
            )?)
            .await
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(Fail::Usage(format!("unknown command `{other}`\n{USAGE}"))),
    }
}

fn check(p: Parsed) -> Result<ExitCode, Fail> {
    let text = p.one("description")?;
    let side = match (p.has("--client"), p.has("--server")) {
        (true, true) => return Err(Fail::Usage("give --client or --server, not both".into())),
        (true, false) => Some(Side::Client),
        (false, true) => Some(Side::Server),
        (false, false) => None,
    };
    match describe::check(text, side) {
        Ok((side, canonical)) => {
            if p.has("--json") {
                println!("{}", describe::to_json(side, &canonical));
            } else {
                println!("{canonical}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if p.has("--json") {
                println!("{}", describe::error_json(&e));
            } else {
                eprintln!("{e}");
            }
            Ok(ExitCode::from(2))
        }
    }
}

/// Build a description, or fail with status 2 and the rendered error.
fn build_server(text: &str) -> Result<Box<dyn endpoints::ServerEndpoint>, Fail> {
    endpoints::server(text).map_err(|e| Fail::Usage(e.to_string()))
}

fn build_client(text: &str) -> Result<Box<dyn endpoints::ClientEndpoint>, Fail> {
    endpoints::client(text).map_err(|e| Fail::Usage(e.to_string()))
}

async fn start_listening(text: &str) -> Result<Box<dyn Listener>, Fail> {
    let endpoint = build_server(text)?;
    let listener = endpoint
        .listen()
        .await
        .map_err(|e| Fail::Run(e.to_string()))?;
    eprintln!("listening on {listener}");
    Ok(listener)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn listen(p: Parsed) -> Result<ExitCode, Fail> {
    let mut listener = start_listening(p.one("description")?).await?;
    if !p.has("--echo") {
        let conn = tokio::select! {
            c = listener.accept() => c.map_err(|e| Fail::Run(e.to_string()))?,
            () = shutdown_signal() => return Ok(ExitCode::SUCCESS),
        };
        let _ = listener.close().await;
        let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        let (_, result) = pump(
            conn,
            stdio,
            Limits {
                linger: Duration::from_secs(5),
                idle: None,
            },
        )
        .await;
        return result
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| Fail::Run(e.to_string()));
    }
    let mut tasks = JoinSet::new();
    loop {
        let conn = tokio::select! {
            c = listener.accept() => match c {
                Ok(c) => c,
                Err(e) => return Err(Fail::Run(e.to_string())),
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
    Ok(ExitCode::SUCCESS)
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

async fn connect(p: Parsed) -> Result<ExitCode, Fail> {
    let endpoint = build_client(p.one("description")?)?;
    let conn = endpoint
        .connect()
        .await
        .map_err(|e| Fail::Run(e.to_string()))?;
    let (mut cr, mut cw) = tokio::io::split(conn);
    let upload = async {
        let mut stdin = tokio::io::stdin();
        let _ = tokio::io::copy(&mut stdin, &mut cw).await;
        // EOF on stdin: half-close, keep reading.
        let _ = cw.shutdown().await;
        std::future::pending::<()>().await;
    };
    let download = async {
        let mut stdout = tokio::io::stdout();
        let r = tokio::io::copy(&mut cr, &mut stdout).await;
        let _ = stdout.flush().await;
        r
    };
    tokio::select! {
        r = download => r.map(|_| ExitCode::SUCCESS).map_err(|e| Fail::Run(format!("reading from `{endpoint}`: {e}"))),
        () = upload => Ok(ExitCode::SUCCESS),
    }
}

async fn relay(p: Parsed) -> Result<ExitCode, Fail> {
    let [listen_at, connect_to] = p.positional.as_slice() else {
        return Err(Fail::Usage(format!(
            "relay needs LISTEN and CONNECT\n{USAGE}"
        )));
    };
    let target: Arc<dyn endpoints::ClientEndpoint> = Arc::from(build_client(connect_to)?);
    let limits = Limits {
        linger: p
            .seconds("--linger", Some(5.0))?
            .unwrap_or(Duration::from_secs(5)),
        idle: p.seconds("--idle-timeout", None)?,
    };
    let drain_for = p
        .seconds("--drain-timeout", Some(10.0))?
        .unwrap_or(Duration::from_secs(10));
    let slots = Arc::new(Semaphore::new(
        p.count("--max-connections")?
            .unwrap_or(Semaphore::MAX_PERMITS),
    ));
    let mut listener = start_listening(listen_at).await?;
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown_signal() => break,
        };
        let conn = tokio::select! {
            c = listener.accept() => match c {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("endpoints: {e}");
                    break;
                }
            },
            () = shutdown_signal() => break,
        };
        while tasks.try_join_next().is_some() {}
        let target = target.clone();
        tasks.spawn(async move {
            let _permit = permit;
            relay_one(conn, &*target, limits).await;
        });
    }
    let _ = listener.close().await;
    drain(tasks, drain_for).await;
    Ok(ExitCode::SUCCESS)
}

async fn relay_one(mut conn: Connection, target: &dyn endpoints::ClientEndpoint, limits: Limits) {
    let started = Instant::now();
    let peer = conn.peer_addr().clone();
    let mut upstream = match target.connect().await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("relay {peer}: {e}");
            return;
        }
    };
    let (stats, result, how) = carry(&mut conn, &mut upstream, limits).await;
    // A failure on one side (a reset, a broken pipe) reaches the other side as a reset: closing
    // it cleanly would tell that peer its bytes were delivered when they may not have been.
    // An idle timeout is an ordinary close.
    if matches!(&result, Err(e) if e.kind() != std::io::ErrorKind::TimedOut) {
        reset_on_close(&conn);
        reset_on_close(&upstream);
    }
    let outcome = match result {
        Ok(()) => String::new(),
        Err(e) => format!(" ({e})"),
    };
    eprintln!(
        "relay {peer} -> {target}: {} bytes up, {} bytes down, {:.3}s, {how}{outcome}",
        stats.a_to_b,
        stats.b_to_a,
        started.elapsed().as_secs_f64()
    );
}

/// Move bytes both ways until both directions end. Plain TCP/unix on both sides (also under
/// a PROXY header, once the bytes that came with it are forwarded): splice in the kernel;
/// else (TLS, ...), or if the kernel refuses splice before any byte was taken, the buffered
/// copy. Returns the byte counts, the outcome and how the bytes moved.
async fn carry(
    conn: &mut Connection,
    upstream: &mut Connection,
    limits: Limits,
) -> (pump::Stats, std::io::Result<()>, &'static str) {
    let early = splice::take_early(conn, upstream);
    if let Err(e) = upstream.write_all(&early).await {
        return (pump::Stats::default(), Err(e), "copied");
    }
    let spliced = match (splice::End::of(conn), splice::End::of(upstream)) {
        (Some(a), Some(b)) => match splice::pump(a, b, limits).await {
            (_, Err(e)) if splice::is_refused(&e) => None,
            done => Some(done),
        },
        _ => None,
    };
    let ((mut stats, result), how) = match spliced {
        Some(done) => (done, "spliced"),
        None => (pump(conn, upstream, limits).await, "copied"),
    };
    stats.a_to_b += early.len() as u64;
    (stats, result, how)
}

/// Make dropping `conn` send a TCP reset (`SO_LINGER` 0) when it is a TCP socket, plain or
/// under a PROXY header. Unix sockets have no reset (the peer sees EOF or `EPIPE`), and TLS
/// does not expose its socket here, so those close normally.
fn reset_on_close(conn: &Connection) {
    if let Some(tcp) = splice::End::under(conn).and_then(splice::End::tcp) {
        // Best effort: the connection is being torn down either way.
        let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
    }
}

/// Wait for connections to finish, up to `deadline`; then abort the rest.
async fn drain(mut tasks: JoinSet<()>, deadline: Duration) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all).await.is_err() {
        eprintln!(
            "endpoints: {} connection(s) still open after {deadline:?}: closing them",
            tasks.len()
        );
        tasks.shutdown().await;
    }
}
