//! The command's arguments, as clap definitions: the one source of `endpoints --help`, each
//! subcommand's `--help`, the shell completions (`endpoints completions bash|zsh|fish`) and
//! the man pages (`cargo xtask man`).
//!
//! This file uses nothing but `clap` and `clap_complete`: xtask includes it by path to
//! generate the man pages and completions. Values are taken as text here and checked in
//! `flags.rs` (a bad value is a usage error naming the flag and the accepted range).

use clap::{ArgAction, Args, Parser, Subcommand};

/// What `endpoints --help` ends with: the rules every subcommand shares.
const AFTER_HELP: &str = "\
Seconds are decimals from 0 (more than 0 for --idle-timeout) to 31536000 (one year); counts \
are from 1 to 1048576. A bad value is a usage error. Flags take their value as `--flag value` \
or `--flag=value`; `endpoints SUBCOMMAND --help` explains each flag.

Exit status: 0 success; 2 a bad description or usage; 1 a failure: cannot listen or connect, \
a fatal accept error, a connection that failed or was cut (listen, connect), or, for relay, \
any relayed connection that failed or was cut during the run (counted in the last line). A \
listener that has handed out its only connection (stdio:) ends relay normally.";

/// What the half-close policy means (listen, connect and relay).
const HALF_CLOSE: &str = "\
When one side's data ends, how that end is passed on to the other side.
  auto (default): plain TCP and unix sockets at once (shutdown of the write side); TLS: \
close_notify once the peer has sent nothing for 1 s, or has closed. Servers that follow TLS \
1.2's rule close at once on close_notify and drop their pending writes, so the reply must be \
in first; peers that wait for our end (TLS 1.3 half-close) get it 1 s later. ws:/wss: between \
our own ends (which agree on an in-band end of data in the upgrade): at once. Another WebSocket \
peer takes the end only as a Close, after which it sends nothing: the Close waits until that \
peer has sent nothing for the linger time (relay: --linger, 5 s by default; listen/connect: \
--linger, else 1 s), or has closed.
  always: at once, TLS and WebSocket Close included.
  never: not until the other side has closed too.";

/// The `endpoints` command: every endpoint description, usable from a shell.
#[derive(Debug, Parser)]
#[command(
    name = "endpoints",
    version,
    about = "Endpoint descriptions from a shell: check them, list the types, listen, connect, relay",
    long_about = "Endpoint descriptions from a shell (`tcp:8080:interface=127.0.0.1`, \
                  `tls:example.com:443`, `ws:tcp:17002`, `exec:cat`): check them, list the \
                  registered types, listen or connect with stdin and stdout (like nc), or \
                  relay (like socat, websocat and stunnel).",
    after_long_help = AFTER_HELP,
    subcommand_required = true,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) log: LogArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse and build a description without listening or connecting; print its canonical form
    ///
    /// Says on stderr whether DESC was read as a server, a client, or both; a bad description
    /// is shown with the parameter pointed at and a suggestion (exit status 2).
    Check(CheckArgs),
    /// The registered endpoint types and their parameters
    Types(TypesArgs),
    /// Listen; pipe the first connection to stdin and stdout (or serve an echo server)
    ///
    /// Each direction runs to its own end. What stdin holds is sent until stdin ends, whatever
    /// the peer did: a peer's end of data says it will send nothing more, not that it reads
    /// nothing more (`endpoints listen ... >out` on one side, `endpoints connect ... <file` on
    /// the other). Receiving goes on until the peer's data ends, however long stdin has been
    /// at its end (stdin is often /dev/null). The command exits when both directions have
    /// ended. Only a terminal's stdin (someone typing) stops when the peer has finished. A peer
    /// that refuses the rest (a reset, a broken pipe) while bytes were still on their way is a
    /// truncation: a warning with the bytes sent and received, a reset, exit status 1.
    ///
    /// The first line on stderr is `listening on DESC`, DESC being the canonical form with the
    /// real port; then one line for each connection (-q for warnings only).
    Listen(ListenArgs),
    /// Connect; copy stdin to the connection and the connection to stdout (like nc)
    ///
    /// Each direction runs to its own end. What stdin holds is sent until stdin ends, whatever
    /// the peer did: a peer's end of data says it will send nothing more, not that it reads
    /// nothing more. Receiving goes on until the peer's data ends, however long stdin has been
    /// at its end (stdin is often /dev/null). The command exits when both directions have
    /// ended. Only a terminal's stdin (someone typing) stops when the peer has finished. A peer
    /// that refuses the rest (a reset, a broken pipe) while bytes were still on their way is a
    /// truncation: a warning with the bytes sent and received, a reset, exit status 1.
    ///
    /// Quiet like nc: nothing on stderr after a complete transfer (-v for a summary line with
    /// the byte counts); warnings and failures are always shown.
    Connect(ConnectArgs),
    /// Accept on LISTEN, connect to CONNECT for each connection, copy both ways
    ///
    /// The first line on stderr is `listening on DESC`, then the connection limit, then one
    /// line for each relayed connection (who, bytes each way, how it ended; -q for warnings
    /// only). On SIGINT/SIGTERM it stops listening and drains (--drain-timeout).
    Relay(RelayArgs),
    /// Serve the named tunnels of a TOML file (many relays in one process, reloaded on SIGHUP)
    ///
    /// Each `[tunnel.NAME]` has a `listen` description and one of `connect` (a relay, as
    /// `relay LISTEN CONNECT`; a program is `connect = "exec:..."` or `exec = "..."`) or
    /// `echo = true`. The whole file is checked before anything listens: an error names
    /// FILE:LINE:COL, points at the place and says the fix (exit status 2). SIGHUP is a
    /// handover to a successor that reads the file again (see docs/handover.md); a file that
    /// fails the check is refused by the successor and this process serves on. With
    /// `metrics = "DESC"`, Prometheus metrics are served on GET /metrics there.
    Run(RunArgs),
    /// Print a shell's completion script for this command (bash, zsh, fish, elvish, powershell)
    ///
    /// bash: `endpoints completions bash > ~/.local/share/bash-completion/completions/endpoints`;
    /// zsh: into a directory of your $fpath as `_endpoints`; fish:
    /// `endpoints completions fish > ~/.config/fish/completions/endpoints.fish`.
    Completions(CompletionsArgs),
    /// Print the version (as --version does)
    #[command(hide = true)]
    Version,
}

/// `--log-level`, `--log-format`, `-q` and `-v`: for every subcommand, anywhere on the line.
#[derive(Debug, Args)]
#[command(next_help_heading = "Log (any subcommand)")]
pub(crate) struct LogArgs {
    /// What reaches stderr besides the `listening on` line: off, error, warn, info, debug, trace
    ///
    /// info has each connection and failed TLS handshakes. Default: the library's warnings,
    /// the command's own info lines (for listen and relay: one a connection) and failed
    /// handshakes (TLS, PROXY headers) with their reason; for connect, warnings only. RUST_LOG
    /// (tracing's filter syntax, e.g. `endpoints_tls=debug,info`) when set.
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        allow_hyphen_values = true,
        conflicts_with_all = ["quiet", "verbose"]
    )]
    pub(crate) log_level: Option<String>,
    /// text (default) or json (one object a line: journald, Loki)
    ///
    /// text: the command's lines as they are, the library's with their level and origin.
    #[arg(long, global = true, value_name = "FORMAT", allow_hyphen_values = true)]
    pub(crate) log_format: Option<String>,
    /// Quiet: warnings and errors only (no line for each connection)
    ///
    /// As --log-level warn. The `listening on` line is still printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Verbose: -v info (connect's summary line), -vv debug, -vvv trace
    ///
    /// -v shows every info line: connect's summary line with the bytes each way, a listener's
    /// connections.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// `--allow-types` and `--deny-types` (check, listen, connect, relay).
#[derive(Debug, Args)]
#[command(next_help_heading = "Endpoint types")]
pub(crate) struct PolicyArgs {
    /// Build only descriptions made of these types, at every nesting level (`tcp,tls,hostname`)
    ///
    /// Repeated, the lists intersect: a type must be in every one.
    #[arg(long, value_name = "TYPE,..", allow_hyphen_values = true)]
    pub(crate) allow_types: Vec<String>,
    /// Refuse these types at every nesting level (`--deny-types exec` for a description you did
    /// not write)
    ///
    /// `--deny-types exec` refuses `tls:...:endpoint=exec\:...` too. Repeated, the lists add
    /// up. With --allow-types, the allow-list must not name a denied type (a usage error:
    /// which one was meant is unclear). A refused type is a usage error naming it.
    #[arg(long, value_name = "TYPE,..", allow_hyphen_values = true)]
    pub(crate) deny_types: Vec<String>,
}

/// `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The endpoint description
    #[arg(value_name = "DESC")]
    pub(crate) desc: String,
    /// Read DESC as a client description only
    #[arg(long, conflicts_with = "server")]
    pub(crate) client: bool,
    /// Read DESC as a server description only
    #[arg(long)]
    pub(crate) server: bool,
    /// Print the result (or the error, with its byte span) as JSON
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
}

/// `types`.
#[derive(Debug, Args)]
pub(crate) struct TypesArgs {
    /// The same as JSON
    #[arg(long, conflicts_with = "markdown")]
    pub(crate) json: bool,
    /// The tables of the docs (all types, or PREFIX SIDE's parameters)
    #[arg(long)]
    pub(crate) markdown: bool,
    /// Only that type (`types unix`)
    #[arg(value_name = "PREFIX")]
    pub(crate) prefix: Option<String>,
    /// `client` or `server`: only one side of PREFIX (`types unix server`)
    #[arg(value_name = "SIDE", requires = "prefix")]
    pub(crate) side: Option<String>,
}

/// `--linger` and `--half-close` of a stdio session (listen, connect).
#[derive(Debug, Args)]
pub(crate) struct SessionArgs {
    /// Once one direction has ended, give up on the other after SECS with nothing moving
    /// (default: never)
    ///
    /// Giving up is a truncation: a warning naming the connection and the bytes cut, a reset
    /// to the peer (SO_LINGER 0), exit status 1.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) linger: Option<String>,
    /// How one side's end of data is passed on: auto (default), always, never
    #[arg(
        long,
        value_name = "POLICY",
        allow_hyphen_values = true,
        long_help = HALF_CLOSE
    )]
    pub(crate) half_close: Option<String>,
}

/// The handover flags (listen --echo, relay).
#[derive(Debug, Args)]
#[command(next_help_heading = "Handover (on SIGHUP; listen --echo and relay)")]
pub(crate) struct HandoverArgs {
    /// Write this process's pid at start, and the successor's once it is ready
    ///
    /// Written atomically (a temporary file renamed over PATH); removed at exit while it names
    /// this process. On
    /// SIGHUP, the successor (the binary on disk now, with the same arguments) gets every
    /// listener (LISTEN_FDS, LISTEN_FDNAMES) and adopts each by its description; this process
    /// keeps serving until it is ready, then stops accepting, drains and exits. A successor
    /// that fails to start, exits, or is not ready in time is killed; this process logs why
    /// and keeps serving. See docs/handover.md.
    #[arg(long, value_name = "PATH")]
    pub(crate) pid_file: Option<String>,
    /// How long the successor has to be ready (default 60)
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) ready_timeout: Option<String>,
    /// Start PROGRAM (with the same arguments) instead of this binary
    #[arg(long, value_name = "PROGRAM")]
    pub(crate) handover_exec: Option<String>,
    /// Under systemd, also keep the listeners in its descriptor store (FDSTORE=1)
    ///
    /// FileDescriptorStoreMax= must allow them; a plain restart then keeps them too. READY=1,
    /// RELOADING=1 and MAINPID= are sent whenever NOTIFY_SOCKET is set.
    #[arg(long)]
    pub(crate) fd_store: bool,
}

impl HandoverArgs {
    /// The handover flags given, by name.
    pub(crate) fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if self.pid_file.is_some() {
            given.push("--pid-file");
        }
        if self.ready_timeout.is_some() {
            given.push("--ready-timeout");
        }
        if self.handover_exec.is_some() {
            given.push("--handover-exec");
        }
        if self.fd_store {
            given.push("--fd-store");
        }
        given
    }
}

/// `listen`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// The server description
    #[arg(value_name = "DESC")]
    pub(crate) desc: String,
    /// Serve every connection as an echo server instead of stdio, until SIGINT/SIGTERM
    ///
    /// On SIGINT/SIGTERM or after a SIGHUP handover, open connections get 10 s to finish;
    /// those still open then are cut (a reset, a warning, exit status 1). One line for each
    /// connection (-q: none).
    #[arg(long)]
    pub(crate) echo: bool,
    /// (with --echo) serve one connection, then stop listening
    ///
    /// Without --echo, listen always takes one connection.
    #[arg(long)]
    pub(crate) once: bool,
    #[command(flatten)]
    pub(crate) session: SessionArgs,
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    #[command(flatten)]
    pub(crate) handover: HandoverArgs,
}

/// `connect`.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The client description
    #[arg(value_name = "DESC")]
    pub(crate) desc: String,
    #[command(flatten)]
    pub(crate) session: SessionArgs,
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
}

/// `relay`.
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// The server description to accept on
    #[arg(value_name = "LISTEN")]
    pub(crate) listen: String,
    /// The client description to connect to, once for each connection
    #[arg(value_name = "CONNECT")]
    pub(crate) connect: String,
    /// At most N connections at once (default: what the open-files limit fits)
    ///
    /// Further clients wait in the listen queue. Default: what the open-files limit allows, at 6 descriptors per connection (two sockets, up to two
    /// pipes), less 32 for the command; printed at start. The soft open-files limit is raised
    /// to the hard one first.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub(crate) max_connections: Option<String>,
    /// Close a connection when no byte moved either way for SECS (> 0)
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) idle_timeout: Option<String>,
    /// After one direction ends, cut the other once nothing has moved for SECS (default 5)
    ///
    /// The other direction goes on as long as bytes move. A cut is a warning with the bytes
    /// cut and a reset to both sides.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) linger: Option<String>,
    /// On SIGINT/SIGTERM, give open connections SECS to finish (default 10)
    ///
    /// Listening stops at once; what is still open at the deadline is cut (a reset to both
    /// sides, counted as failed).
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) drain_timeout: Option<String>,
    /// How one side's end of data is passed on: auto (default), always, never
    #[arg(
        long,
        value_name = "POLICY",
        allow_hyphen_values = true,
        long_help = HALF_CLOSE
    )]
    pub(crate) half_close: Option<String>,
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    #[command(flatten)]
    pub(crate) handover: HandoverArgs,
}

/// `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The TOML file of tunnels
    #[arg(value_name = "FILE")]
    pub(crate) file: String,
    /// Only check FILE: print each tunnel's canonical form (exit status 0), or the errors (2)
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) handover: HandoverArgs,
}

/// `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}
