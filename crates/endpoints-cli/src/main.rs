//! `endpoints`: every endpoint description, usable from a shell.
//!
//! ```text
//! endpoints check [--client|--server] [--json] DESC     parse and build, print the canonical form
//! endpoints types [--json|--markdown] [PREFIX [SIDE]]   the registered endpoint types
//! endpoints listen DESC [--echo] [--once] [SESSION]     listen; pipe the first connection to stdio
//! endpoints connect DESC [SESSION]                      connect; copy stdin to it and it to stdout
//! endpoints relay LISTEN CONNECT [--max-connections N] [--idle-timeout S] [--linger S]
//!                 [--drain-timeout S] [--half-close auto|always|never]
//! endpoints run [--check] FILE                        the named tunnels of a TOML file
//! endpoints completions bash|zsh|fish                   a shell's completion script
//! endpoints help [SUBCOMMAND] | SUBCOMMAND --help | --version
//! handover (listen --echo, relay): [--pid-file PATH] [--ready-timeout SECS]
//!                 [--handover-exec PROGRAM] [--fd-store]
//! SESSION: [--linger S] [--half-close auto|always|never]
//! any command: [-q|-v..] [--log-level LEVEL] [--log-format text|json]
//! TYPES (check, listen, connect, relay): [--allow-types T,..] [--deny-types T,..]
//! ```
//!
//! The flags are defined in [`cli`] (clap), which is also the source of each subcommand's
//! `--help`, the completions and the man pages (`cargo xtask man`).

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

mod cli;
mod config;
mod describe;
mod exporter;
mod flags;
mod handover;
mod log;
mod prometheus;
mod pump;
mod relay;
mod rlimit;
mod run;
mod session;
mod splice;

use std::process::ExitCode;

use endpoints::Listener;
use endpoints::registry::Side;

use clap::{CommandFactory as _, Parser as _};

use cli::{Cli, Command};
use flags::Parsed;

/// Where to read the usage, for the few usage errors found after clap's parsing.
pub(crate) const USAGE: &str =
    "(`endpoints --help` has the usage, `endpoints SUBCOMMAND --help` its flags)";

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
    // The command owns every descriptor it has and passes none to an `exec:` child: the
    // cheaper spawn (posix_spawn) is safe here, unlike in an application (issue 30 item 9).
    endpoints::exec::set_process_wide_cloexec(true);
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
    let cli = match Cli::try_parse_from(std::iter::once("endpoints".to_owned()).chain(args)) {
        Ok(cli) => cli,
        // Help and version (status 0, stdout), and every usage error clap finds (status 2,
        // stderr): printed by us, so that a closed stdout or stderr is no panic.
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                err!("{}", text.trim_end());
            } else {
                out!("{}", text.trim_end());
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let mut cli = cli;
    // `run`: the file's log-level and log-format, where no flag gives them.
    if let Command::Run(a) = &cli.command
        && cli.log.log_level.is_none()
        && !cli.log.quiet
        && cli.log.verbose == 0
    {
        let (level, format) = config::log_settings(&a.file);
        cli.log.log_level = level;
        if cli.log.log_format.is_none() {
            cli.log.log_format = format;
        }
    }
    let quiet_by_default = matches!(cli.command, Command::Connect(_));
    match log::options(&cli.log, quiet_by_default) {
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
    let result = rt.block_on(run(cli.command));
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

async fn run(command: Command) -> Result<ExitCode, Fail> {
    catch_shutdown_signals();
    match command {
        Command::Check(a) => {
            set_type_policy(&a.policy)?;
            check(&a)
        }
        Command::Types(a) => types(a),
        Command::Listen(a) => {
            set_type_policy(&a.policy)?;
            let given = a.handover.given();
            if !a.echo && !given.is_empty() {
                return Err(Fail::Usage(format!(
                    "{}: a handover needs a server that goes on serving: `listen --echo` or \
                     `relay`; `listen` without --echo serves one connection on stdio and has no \
                     handover\n{USAGE}",
                    given.join(", ")
                )));
            }
            let h = a.handover;
            session::listen(
                Parsed::new(vec![a.desc])
                    .switch("--echo", a.echo)
                    .switch("--once", a.once)
                    .value("--linger", a.session.linger)
                    .value("--half-close", a.session.half_close)
                    .value("--pid-file", h.pid_file)
                    .value("--ready-timeout", h.ready_timeout)
                    .value("--handover-exec", h.handover_exec)
                    .switch("--fd-store", h.fd_store),
            )
            .await
        }
        Command::Connect(a) => {
            set_type_policy(&a.policy)?;
            session::connect(
                Parsed::new(vec![a.desc])
                    .value("--linger", a.session.linger)
                    .value("--half-close", a.session.half_close),
            )
            .await
        }
        Command::Relay(a) => {
            set_type_policy(&a.policy)?;
            // What building CONNECT warns about (an `exec:` program not in PATH now) comes
            // after the `listening on` line, which scripts read first.
            log::hold();
            let h = a.handover;
            relay::relay(
                Parsed::new(vec![a.listen, a.connect])
                    .value("--max-connections", a.max_connections)
                    .value("--idle-timeout", a.idle_timeout)
                    .value("--linger", a.linger)
                    .value("--drain-timeout", a.drain_timeout)
                    .value("--half-close", a.half_close)
                    .value("--pid-file", h.pid_file)
                    .value("--ready-timeout", h.ready_timeout)
                    .value("--handover-exec", h.handover_exec)
                    .switch("--fd-store", h.fd_store),
            )
            .await
        }
        Command::Run(a) => run::run(a).await,
        Command::Completions(a) => {
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "endpoints", &mut script);
            use std::io::Write as _;
            // A reader that went away has chosen not to read the rest.
            let _ = std::io::stdout().write_all(&script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            out!("endpoints {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn types(a: cli::TypesArgs) -> Result<ExitCode, Fail> {
    let positional: Vec<String> = a.prefix.into_iter().chain(a.side).collect();
    if a.markdown {
        return match positional.as_slice() {
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
    let plugins = describe::select(&positional).map_err(Fail::Usage)?;
    if a.json {
        out!("{}", describe::types_json(&plugins));
    } else {
        out!("{}", describe::types_text(&plugins).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: &cli::CheckArgs) -> Result<ExitCode, Fail> {
    let side = match (a.client, a.server) {
        (true, true) => return Err(Fail::Usage("give --client or --server, not both".into())),
        (true, false) => Some(Side::Client),
        (false, true) => Some(Side::Server),
        (false, false) => None,
    };
    match endpoints::registry::with_policy(&type_policy(), || describe::check(&a.desc, side)) {
        Ok(checked) => {
            if a.json {
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
            if a.json {
                out!("{}", describe::error_json(&e));
            } else {
                err!("{e}");
            }
            Ok(ExitCode::from(2))
        }
    }
}

/// Put the `--allow-types`/`--deny-types` policy in force for [`build_server`],
/// [`build_client`] and `check`.
fn set_type_policy(p: &cli::PolicyArgs) -> Result<(), Fail> {
    if let Some(policy) = flags::type_policy(&p.allow_types, &p.deny_types).map_err(Fail::Usage)? {
        let _ = TYPE_POLICY.set(policy);
    }
    Ok(())
}

/// The `--allow-types`/`--deny-types` policy, set once by [`set_type_policy`].
static TYPE_POLICY: std::sync::OnceLock<endpoints::registry::TypePolicy> =
    std::sync::OnceLock::new();

pub(crate) fn type_policy() -> endpoints::registry::TypePolicy {
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
        handover::close_stale();
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
