//! [`ExecClientEndpoint`]: each `connect()` starts the program; a supervisor task reaps it.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Operation, async_trait, io_error,
};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::stderr::{self, Tail};
use crate::stream::{ExecStream, Report};
use crate::sys;

/// What happens to the child's stderr (`stderr=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stderr {
    /// Read line by line and logged at WARN with the program's name (bounded); the last lines
    /// go into the error of a failed exit.
    Log,
    /// This process's stderr.
    Inherit,
    /// `/dev/null`.
    Drop,
}

/// Whether [`set_process_wide_cloexec`] is on.
static PROCESS_WIDE: AtomicBool = AtomicBool::new(false);

/// Opt in (`true`) to marking every descriptor of this process from 3 up close-on-exec before
/// each `exec:` child starts, instead of closing them in the child. Off by default.
///
/// Why: with nothing to do between fork and exec, std starts the child with `posix_spawn` (a
/// vfork) rather than a fork of this whole process, about twice as many children a second
/// (docs/benchmarks.md). The cost: it changes process-wide state. A descriptor this process
/// meant its own children to inherit (a pipe passed with `--passphrase-fd`, a jobserver, a
/// listener handed to a worker) gets close-on-exec and no longer reaches them, and one that
/// another thread opens without `O_CLOEXEC` between the marking and the spawn reaches the
/// `exec:` child. Turn it on only in a program that owns every descriptor it has and starts
/// no other children that inherit any (the `endpoints` command does). On a kernel without
/// `close_range(CLOSE_RANGE_CLOEXEC)` (before Linux 5.11, other systems) the child closes
/// them as when it is off.
pub fn set_process_wide_cloexec(on: bool) {
    PROCESS_WIDE.store(on, Ordering::Relaxed);
}

/// How to start the program, from an `exec:` description. `Debug` shows no `env=` value.
#[derive(Clone)]
pub(crate) struct ExecConfig {
    pub(crate) program: PathBuf,
    pub(crate) arguments: Vec<String>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) unset: Vec<OsString>,
    pub(crate) clear_env: bool,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stderr: Stderr,
    pub(crate) grace: Duration,
}

impl fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(n, _)| format!("{}={}", n.to_string_lossy(), crate::parse::REDACTED))
            .collect();
        f.debug_struct("ExecConfig")
            .field("program", &self.program)
            .field("arguments", &self.arguments)
            .field("env", &env)
            .field("unset", &self.unset)
            .field("clear_env", &self.clear_env)
            .field("cwd", &self.cwd)
            .field("stderr", &self.stderr)
            .field("grace", &self.grace)
            .finish()
    }
}

/// Who the child of a connection is, in its [`Extensions`](endpoints_core::Extensions).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecInfo {
    /// The child's process id, which is also its process group's id.
    pub pid: u32,
    /// The program as described (`cat`, `/usr/bin/ssh`).
    pub program: PathBuf,
}

/// The `exec:` client endpoint: every [`connect`](ClientEndpoint::connect) starts the program
/// in a process group of its own, with stdin and stdout as the connection.
#[derive(Debug)]
pub struct ExecClientEndpoint {
    config: ExecConfig,
    canonical: Description,
    shown: Arc<str>,
}

impl ExecClientEndpoint {
    pub(crate) fn new(config: ExecConfig, canonical: Description) -> Self {
        let shown = Arc::from(canonical.to_string());
        Self {
            config,
            canonical,
            shown,
        }
    }

    /// The grace period between SIGTERM and SIGKILL when a connection is closed.
    pub fn grace(&self) -> Duration {
        self.config.grace
    }

    fn command(&self) -> Command {
        let c = &self.config;
        let mut cmd = Command::new(&c.program);
        cmd.args(&c.arguments);
        if c.clear_env {
            cmd.env_clear();
        }
        for name in &c.unset {
            cmd.env_remove(name);
        }
        for (name, value) in &c.env {
            cmd.env(name, value);
        }
        if let Some(dir) = &c.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(match c.stderr {
                Stderr::Log => Stdio::piped(),
                Stderr::Inherit => Stdio::inherit(),
                Stderr::Drop => Stdio::null(),
            })
            // Its own group, so that closing reaches what it started, and a Ctrl-C meant for
            // us is not delivered to it directly.
            .process_group(0)
            // Only if the supervisor task is dropped unrun (the runtime shutting down): kill
            // the leader rather than leave it.
            .kill_on_drop(true);
        // Descriptors 0, 1 and 2 only: closed in the child by a hook between fork and exec,
        // which changes nothing in this process. With the opt-in, marked in this whole
        // process instead (then std spawns with posix_spawn, cheaper than a fork).
        if !(PROCESS_WIDE.load(Ordering::Relaxed) && sys::mark_all_cloexec()) {
            sys::cloexec_in_child(&mut cmd);
        }
        cmd
    }

    /// The PATH the program is searched in (the child's, if `env=` sets it).
    fn search_path(&self) -> Option<OsString> {
        let c = &self.config;
        if let Some((_, v)) = c.env.iter().rev().find(|(n, _)| n == "PATH") {
            return Some(v.clone());
        }
        if c.clear_env || c.unset.iter().any(|n| n == "PATH") {
            return None;
        }
        std::env::var_os("PATH")
    }

    /// Why the program could not be started, in words: the path searched, the directory.
    fn cannot_start(&self, e: io::Error) -> io::Error {
        let c = &self.config;
        let program = c.program.display();
        if let Some(dir) = &c.cwd
            && !dir.is_dir()
        {
            return io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the working directory `{}` (cwd=) is not a directory that exists",
                    dir.display()
                ),
            );
        }
        let searched = if has_slash(&c.program) {
            format!("`{program}`")
        } else {
            match self.search_path() {
                Some(p) => format!("PATH={}", p.to_string_lossy()),
                None => "no PATH (clearEnv=1 or unsetEnv=PATH; give a full path)".to_owned(),
            }
        };
        let why = match e.kind() {
            io::ErrorKind::NotFound => format!("`{program}` not found (searched {searched})"),
            io::ErrorKind::PermissionDenied => {
                format!("`{program}` is not executable by us (searched {searched})")
            }
            _ => format!("cannot start `{program}` (searched {searched}): {e}"),
        };
        io::Error::new(e.kind(), why)
    }
}

fn has_slash(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().contains(&b'/')
}

impl fmt::Display for ExecClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for ExecClientEndpoint {
    /// Start the program. Nothing here waits: the child exists, with its supervisor, by the
    /// time this returns, and dropping the future before that leaves nothing behind.
    async fn connect(&self) -> io::Result<Connection> {
        let mut child = self
            .command()
            .spawn()
            .map_err(|e| io_error(Operation::Connect, self, self.cannot_start(e)))?;
        let pid = child.id().unwrap_or(0);
        let broken = || {
            io_error(
                Operation::Connect,
                self,
                io::Error::other("the child's pipes were not created"),
            )
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(broken());
        };
        // Fewer wake-ups per byte for a child that moves a lot (measured: the 64 KiB default
        // costs throughput against socat).
        sys::grow_pipe(&stdin, PIPE_CAPACITY);
        sys::grow_pipe(&stdout, PIPE_CAPACITY);
        let program = self.config.program.display().to_string();
        let tail = child
            .stderr
            .take()
            .map(|err| stderr::spawn_reader(err, program.clone(), pid));
        let (close_tx, close_rx) = oneshot::channel();
        let (report_tx, report_rx) = oneshot::channel();
        tokio::spawn(supervise(
            child,
            pid,
            self.config.grace,
            tail,
            close_rx,
            report_tx,
        ));
        let stream = ExecStream::new(
            stdin,
            stdout,
            report_rx,
            close_tx,
            self.shown.clone(),
            program,
            pid,
            self.config.stderr,
        );
        let mut conn = Connection::new(stream, Address::Unnamed, Address::Unnamed)
            .with_descriptors(&crate::stream::DESCRIPTORS);
        conn.extensions_mut().insert(ExecInfo {
            pid,
            program: self.config.program.clone(),
        });
        // While the program runs, a quiet stdout is the program at work: a relay must not
        // give up on it (its `--linger`) once the other direction has ended.
        conn.extensions_mut()
            .insert(endpoints_core::EndsByItself::new("the program's exit"));
        Ok(conn)
    }
}

/// The capacity asked for the child's stdin and stdout pipes (1 MiB, the unprivileged maximum
/// by default).
const PIPE_CAPACITY: libc::c_int = 1 << 20;

/// SIGKILL to the group if the supervisor is dropped before the leader was reaped (the
/// runtime shutting down): `kill_on_drop` reaches the leader only.
struct KillGroupOnDrop {
    pgid: u32,
    reaped: bool,
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = sys::signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// Own the child until it is reaped. Either it exits by itself (then its exit status, with the
/// last stderr lines, goes to the stream), or the connection is dropped first (then its
/// group gets SIGTERM, SIGKILL after `grace`, and it is reaped).
async fn supervise(
    mut child: Child,
    pgid: u32,
    grace: Duration,
    tail: Option<tokio::task::JoinHandle<Tail>>,
    mut close_rx: oneshot::Receiver<()>,
    report_tx: oneshot::Sender<Report>,
) {
    let mut guard = KillGroupOnDrop {
        pgid,
        reaped: false,
    };
    let exited = tokio::select! {
        status = child.wait() => Some(status),
        _ = &mut close_rx => None,
    };
    let status: io::Result<ExitStatus> = match exited {
        Some(status) => {
            guard.reaped = true;
            // What it left running in its group goes too: the program is the connection.
            // The group's id cannot be reused while any of them lives.
            clear_group(pgid, grace).await;
            status
        }
        None => {
            let status = terminate(&mut child, pgid, grace).await;
            guard.reaped = true;
            status
        }
    };
    let tail = match tail {
        // The pipe ends when the last holder exits (the group is gone by now); bounded in
        // case something outside the group holds it.
        Some(h) => tokio::time::timeout(Duration::from_secs(1).max(grace), h)
            .await
            .ok()
            .and_then(|r| r.ok()),
        None => None,
    };
    let _ = report_tx.send(Report { status, tail });
}

/// SIGTERM to the group, SIGKILL after `grace` if the leader has not exited; then reap it.
async fn terminate(child: &mut Child, pgid: u32, grace: Duration) -> io::Result<ExitStatus> {
    let _ = sys::signal_group(pgid, libc::SIGTERM);
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        clear_group(pgid, grace).await;
        return status;
    }
    let _ = sys::signal_group(pgid, libc::SIGKILL);
    child.wait().await
}

/// After the leader was reaped: SIGTERM to what is left of its group, SIGKILL once `grace`
/// has passed. Checked every 20 ms, so at most `grace` plus one step.
async fn clear_group(pgid: u32, grace: Duration) {
    if !sys::signal_group(pgid, libc::SIGTERM).unwrap_or(false) {
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while sys::group_exists(pgid) {
        if tokio::time::Instant::now() >= deadline {
            let _ = sys::signal_group(pgid, libc::SIGKILL);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
