//! `endpoints`: every endpoint description, usable from a shell.
//!
//! ```text
//! endpoints check [--client|--server] [--json] DESC     parse and build, print the canonical form
//! endpoints types [--json] [PREFIX [SIDE]]              the registered endpoint types
//! endpoints types --markdown [PREFIX SIDE]              the docs' tables
//! endpoints listen DESC [--echo] [--once] [SESSION]     listen; pipe the first connection to stdio
//! endpoints connect DESC [SESSION]                      connect; copy stdin to it and it to stdout
//! endpoints relay LISTEN CONNECT [--max-connections N] [--idle-timeout S] [--linger S]
//!                 [--drain-timeout S] [--half-close auto|always|never]
//! endpoints help | --version
//! handover (listen --echo, relay): [--pid-file PATH] [--ready-timeout SECS]
//!                 [--handover-exec PROGRAM] [--fd-store]
//! SESSION: [--linger S] [--half-close auto|always|never]
//! any command: [--log-level LEVEL] [--log-format text|json]
//! TYPES (check, listen, connect, relay): [--allow-types T,..] [--deny-types T,..]
//! ```
//!
//! See [`HELP`] (`endpoints help`) for what each flag does, the half-close policy, the
//! default limits and the exit status.

/// `eprintln!` that cannot panic: with stderr closed (`endpoints relay ... 2>&1 | head -1`)
/// the line is lost, not the process.
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// `println!` that cannot panic (`endpoints types | head -1`): a reader that went away has
/// chosen not to read the rest.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// One of the command's own log lines (see [`log`]): `info` for each connection, `warn` for
/// one that failed or was cut. Shown by default; `--log-level`/`RUST_LOG` filter them.
macro_rules! line {
    ($level:ident, $($t:tt)*) => {
        tracing::$level!(target: crate::log::OWN, $($t)*)
    };
}

mod describe;
mod flags;
mod handover;
mod log;
mod pump;
mod relay;
mod rlimit;
mod session;
mod splice;

use std::process::ExitCode;

use endpoints::Listener;
use endpoints::registry::Side;

use flags::{Parsed, parse};

const USAGE: &str = "\
usage: endpoints check [--client|--server] [--json] DESC
       endpoints types [--json] [PREFIX [SIDE]] | endpoints types --markdown [PREFIX SIDE]
       endpoints listen DESC [--echo] [--once] [--linger SECS] [--half-close auto|always|never]
       endpoints connect DESC [--linger SECS] [--half-close auto|always|never]
       endpoints relay LISTEN CONNECT [--max-connections N] [--idle-timeout SECS] [--linger SECS]
                       [--drain-timeout SECS] [--half-close auto|always|never]
       endpoints help | --version
Handover (listen --echo, relay): [--pid-file PATH] [--ready-timeout SECS]
                       [--handover-exec PROGRAM] [--fd-store]
Any command: [--log-level off|error|warn|info|debug|trace] [--log-format text|json]
check, listen, connect and relay also take [--allow-types TYPE,..] [--deny-types TYPE,..]";

/// `endpoints help`: the usage, then what the flags mean.
const HELP: &str = "
check DESC (parse and build without listening or connecting; print the canonical form):
  Says on stderr whether DESC was read as a server, a client, or both; a bad description
  is shown with the parameter pointed at and a suggestion (exit status 2).
  --client            read DESC as a client description only.
  --server            read DESC as a server description only.
  --json              print the result (or the error, with its byte span) as JSON.

types [PREFIX [SIDE]] (the registered endpoint types and their parameters):
  PREFIX              only that type (`types unix`); SIDE (`client` or `server`) only one
                      side of it (`types unix server`).
  --json              the same as JSON.
  --markdown          the tables of the docs (all types, or PREFIX SIDE's parameters).

listen, connect (stdin and stdout on one connection, like nc):
  Each direction runs to its own end. What stdin holds is sent until stdin ends, whatever
  the peer did: a peer's end of data says it will send nothing more, not that it reads
  nothing more (`endpoints listen ... >out` on one side, `endpoints connect ... <file` on
  the other). Receiving goes on until the peer's data ends, however long stdin has been at
  its end (stdin is often /dev/null). The command exits when both directions have ended.
  Only a terminal's stdin (someone typing) stops when the peer has finished.
  A peer that refuses the rest (a reset, a broken pipe) while bytes were still on their way
  is a truncation: a warning with the bytes sent and received, a reset, exit status 1.
  --echo              (listen) serve every connection as an echo server instead of stdio,
                      until SIGINT/SIGTERM; open connections get 10 s to finish.
  --once              (listen --echo) serve one connection, then stop listening. Without
                      --echo, listen always takes one connection.
  --linger SECS       once one direction has ended, give up on the other when nothing has
                      moved on it for SECS (default: never give up). Giving up is a
                      truncation: a warning naming the connection and the bytes cut, a reset
                      to the peer (SO_LINGER 0), exit status 1.

relay (accept on LISTEN, connect to CONNECT for each connection, copy both ways):
  --max-connections N at most N connections at once; further clients wait in the listen
                      queue. Default: what the open-files limit allows, at 6 descriptors per
                      connection (two sockets, up to two pipes), less 32 for the command; printed
                      at start. The soft open-files limit is raised to the hard one first.
  --idle-timeout SECS close a connection when no byte moved either way for SECS (> 0).
  --linger SECS       after one direction ends, the other goes on as long as bytes move;
                      once nothing has moved for SECS (default 5) it is cut: a warning with
                      the bytes cut, a reset to both sides.
  --drain-timeout SECS on SIGINT/SIGTERM, stop listening, give open connections SECS to
                      finish (default 10), then close them.

--allow-types T,.. / --deny-types T,.. (check, listen, connect, relay): the endpoint types the
  descriptions may use, at every nesting level (`--deny-types exec` refuses
  `tls:...:endpoint=exec\\:...` too); a refused type is a usage error naming it.

handover (listen --echo, relay): on SIGHUP, start the successor (the binary on disk now,
  with the same arguments) with every listener (the systemd protocol: LISTEN_FDS,
  LISTEN_FDNAMES), keep serving until it is ready, then stop accepting, drain and exit. The
  successor adopts each listener by its description: the same port (port 0 too), the same
  unix socket file and lock. Connections waiting in the listen queue go to the successor.
  A successor that fails to start, exits, or is not ready in time is killed; this process
  logs why and keeps serving. A SIGHUP during a handover is refused (logged).
  --pid-file PATH     write this process's pid at start, and the successor's once it is
                      ready (atomically: a temporary file renamed over PATH).
  --ready-timeout SECS how long the successor has to be ready (default 60).
  --handover-exec PROGRAM start PROGRAM (with the same arguments) instead of this binary.
  --fd-store          under systemd, also keep the listeners in its descriptor store
                      (FDSTORE=1; FileDescriptorStoreMax= must allow them), so that a plain
                      restart keeps them too. READY=1, RELOADING=1 and MAINPID= are sent
                      whenever NOTIFY_SOCKET is set.

--half-close POLICY (listen, connect, relay): when one side's data ends, how that end is
  passed on to the other side.
  auto (default)      plain TCP and unix sockets: at once (shutdown of the write side). TLS:
                      close_notify once the peer has sent nothing for 1 s, or has closed.
                      Servers that follow TLS 1.2's rule close at once on close_notify and
                      drop their pending writes, so the reply must be in first; peers that
                      wait for our end (TLS 1.3 half-close) get it 1 s later. ws:/wss:
                      between our own ends (which agree on an in-band end of data in the
                      upgrade): at once. Another WebSocket peer takes the end only as a
                      Close, after which it sends nothing: the Close waits until that peer
                      has sent nothing for the linger time (relay: --linger, 5 s by
                      default; listen/connect: --linger, else 1 s), or has closed.
  always              at once, TLS and WebSocket Close included.
  never               not until the other side has closed too.

--allow-types T,..   (check, listen, connect, relay) build only descriptions made of these
                     types, at every nesting level (`--allow-types tcp,tls,hostname`).
--deny-types T,..    (check, listen, connect, relay) refuse these types at every nesting
                     level (`--deny-types exec` for a description you did not write).
--version, -V        print the version and exit.
--log-level LEVEL    what reaches stderr besides the `listening on` line: off, error, warn,
                     info (each connection, failed TLS handshakes), debug, trace. Default:
                     the library's warnings, the command's own info lines and failed
                     handshakes (TLS, PROXY headers) with their reason; RUST_LOG
                     (tracing's filter syntax, e.g. `endpoints_tls=debug,info`) when set.
--log-format FORMAT  text (default: the command's lines as they are, the library's with
                     their level and origin) or json (one object a line: journald, Loki).

Seconds are decimals from 0 (more than 0 for --idle-timeout) to 31536000 (one year);
counts are from 1 to 1048576. A bad value is a usage error.

Exit status: 0 success; 2 a bad description or usage; 1 a failure: cannot listen or
connect, a fatal accept error, a connection that failed or was cut (listen, connect), or,
for relay, any relayed connection that failed or was cut during the run (counted in the last
line). A listener that has handed out its only connection (stdio:) ends relay normally.";

/// A failure, with its exit status.
pub(crate) enum Fail {
    Usage(String),
    Run(String),
}

fn main() -> ExitCode {
    // Before any thread exists: take systemd's descriptors and clear the variables.
    if let Err(e) = endpoints::systemd::init() {
        err!("endpoints: {e}");
        return ExitCode::from(2);
    }
    // Not `env::args()`, which panics on an argument that is not UTF-8.
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                err!(
                    "endpoints: the argument {} is not UTF-8; descriptions and flags are text\n{USAGE}",
                    a.to_string_lossy().escape_debug()
                );
                return ExitCode::from(2);
            }
        }
    }
    match log::take_flags(&mut args) {
        Ok(o) => log::init(&o),
        Err(e) => {
            err!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    // Best effort: with the soft limit as it was, the command still works, on fewer
    // connections at once.
    if let Err(e) = rlimit::raise_open_files() {
        tracing::debug!(error = %e, "cannot raise the open-files limit");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err!("endpoints: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(args));
    log::release();
    // Not a plain drop: a read of stdin blocked in its thread (a terminal nobody types into)
    // cannot be cancelled, and dropping the runtime would wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(Fail::Usage(m)) => {
            err!("{m}");
            ExitCode::from(2)
        }
        Err(Fail::Run(m)) => {
            err!("endpoints: {m}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<ExitCode, Fail> {
    catch_shutdown_signals();
    let Some((cmd, rest)) = args.split_first() else {
        return Err(Fail::Usage(USAGE.into()));
    };
    match cmd.as_str() {
        "check" => check(parse_described(
            rest,
            &["--client", "--server", "--json"],
            &[],
        )?),
        "types" => {
            let p = parse_args(rest, &["--json", "--markdown"], &[])?;
            if p.has("--markdown") {
                return match p.positional.as_slice() {
                    [] => {
                        out!("{}", describe::types_markdown().trim_end());
                        Ok(ExitCode::SUCCESS)
                    }
                    [prefix, side] => match describe::params_markdown(prefix, side) {
                        Some(t) => {
                            out!("{}", t.trim_end());
                            Ok(ExitCode::SUCCESS)
                        }
                        None => Err(Fail::Usage(format!(
                            "no `{}` {} type is registered (endpoints types lists them)",
                            prefix.escape_debug(),
                            side.escape_debug()
                        ))),
                    },
                    _ => Err(Fail::Usage(format!(
                        "types --markdown takes nothing, or PREFIX and SIDE\n{USAGE}"
                    ))),
                };
            }
            let plugins = describe::select(&p.positional).map_err(Fail::Usage)?;
            if p.has("--json") {
                out!("{}", describe::types_json(&plugins));
            } else {
                out!("{}", describe::types_text(&plugins).trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
        "listen" => {
            session::listen(parse_described(
                rest,
                &[&["--echo", "--once"][..], handover::SWITCHES].concat(),
                &[&["--linger", "--half-close"][..], handover::FLAGS].concat(),
            )?)
            .await
        }
        "connect" => {
            session::connect(parse_described(rest, &[], &["--linger", "--half-close"])?).await
        }
        "relay" => {
            relay::relay(parse_described(
                rest,
                handover::SWITCHES,
                &[
                    &[
                        "--max-connections",
                        "--idle-timeout",
                        "--linger",
                        "--drain-timeout",
                        "--half-close",
                    ][..],
                    handover::FLAGS,
                ]
                .concat(),
            )?)
            .await
        }
        "--version" | "-V" | "version" => {
            out!("endpoints {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        "help" | "--help" | "-h" => {
            out!("{USAGE}\n{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(Fail::Usage(format!("unknown command `{other}`\n{USAGE}"))),
    }
}

fn check(p: Parsed) -> Result<ExitCode, Fail> {
    let text = p.one("description", USAGE).map_err(Fail::Usage)?;
    let side = match (p.has("--client"), p.has("--server")) {
        (true, true) => return Err(Fail::Usage("give --client or --server, not both".into())),
        (true, false) => Some(Side::Client),
        (false, true) => Some(Side::Server),
        (false, false) => None,
    };
    match endpoints::registry::with_policy(&type_policy(), || describe::check(text, side)) {
        Ok(checked) => {
            if p.has("--json") {
                let mut v = describe::to_json(checked.side, &checked.canonical);
                let sides: Vec<&str> = checked.sides().iter().map(|s| s.as_str()).collect();
                v["sides"] = serde_json::json!(sides);
                out!("{v}");
            } else {
                out!("{}", checked.canonical);
                let prefix = checked.canonical.prefix().unwrap_or("");
                err!("{}", checked.how_read(prefix));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if p.has("--json") {
                out!("{}", describe::error_json(&e));
            } else {
                err!("{e}");
            }
            Ok(ExitCode::from(2))
        }
    }
}

fn parse_args(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Parsed, Fail> {
    parse(args, flags, valued, USAGE).map_err(Fail::Usage)
}

/// [`parse_args`] for a command that builds descriptions: it also takes the type-policy
/// flags ([`flags::POLICY_FLAGS`]) and puts their policy in force for [`build_server`],
/// [`build_client`] and `check`.
fn parse_described(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Parsed, Fail> {
    let mut valued = valued.to_vec();
    valued.extend_from_slice(flags::POLICY_FLAGS);
    let p = parse_args(args, flags, &valued)?;
    if let Some(policy) = p.type_policy().map_err(Fail::Usage)? {
        let _ = TYPE_POLICY.set(policy);
    }
    Ok(p)
}

/// The `--allow-types`/`--deny-types` policy, set once by [`parse_described`].
static TYPE_POLICY: std::sync::OnceLock<endpoints::registry::TypePolicy> =
    std::sync::OnceLock::new();

fn type_policy() -> endpoints::registry::TypePolicy {
    TYPE_POLICY.get().cloned().unwrap_or_default()
}

/// Build a description, or fail with status 2 and the rendered error.
pub(crate) fn build_server(text: &str) -> Result<Box<dyn endpoints::ServerEndpoint>, Fail> {
    endpoints::server_with(text, &type_policy()).map_err(|e| Fail::Usage(e.to_string()))
}

pub(crate) fn build_client(text: &str) -> Result<Box<dyn endpoints::ClientEndpoint>, Fail> {
    endpoints::client_with(text, &type_policy()).map_err(|e| Fail::Usage(e.to_string()))
}

/// Build and listen; print `listening on DESC` as the first line on stderr. The library's
/// warnings about the listener are held until the caller has printed its other start lines
/// and calls [`log::release`].
pub(crate) async fn start_listening(text: &str) -> Result<Box<dyn Listener>, Fail> {
    log::hold();
    let listening = async {
        let endpoint = build_server(text)?;
        endpoint
            .listen()
            .await
            .map_err(|e| Fail::Run(e.to_string()))
    };
    let listener = listening.await;
    if let Ok(l) = &listener {
        err!("listening on {l}");
    }
    listener
}

/// Set once SIGINT or SIGTERM has arrived.
static SHUTDOWN: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> =
    std::sync::OnceLock::new();

/// Install the SIGINT and SIGTERM handlers now, before anything listens: a signal that
/// arrives at any later moment is a graceful stop, never the default action (death).
fn catch_shutdown_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::watch::channel(false);
    // Registered here, synchronously; only the waiting happens in the task.
    if let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = tx.send(true);
        });
    }
    let _ = SHUTDOWN.set(rx);
}

/// SIGINT or SIGTERM (see [`catch_shutdown_signals`]).
pub(crate) async fn shutdown_signal() {
    let Some(rx) = SHUTDOWN.get() else {
        return std::future::pending().await;
    };
    let mut rx = rx.clone();
    // An error: the waiting task is gone, so no signal will be reported.
    if rx.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Wait for tasks to finish, up to `deadline`; then abort the rest.
pub(crate) async fn drain<T: 'static>(
    mut tasks: tokio::task::JoinSet<T>,
    deadline: std::time::Duration,
) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all).await.is_err() {
        err!(
            "endpoints: {} connection(s) still open after {deadline:?}: closing them",
            tasks.len()
        );
        tasks.shutdown().await;
    }
}
