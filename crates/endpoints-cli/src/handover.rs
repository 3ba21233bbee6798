//! Handing the listeners to a successor on `SIGHUP` (issue 25), for `listen --echo` and
//! `relay`.
//!
//! On `SIGHUP` the command starts its successor (the binary on disk now, with the same
//! arguments, or `--handover-exec PROGRAM` with the same arguments), passing every listener
//! through the systemd protocol, and keeps serving while it waits for the successor's
//! readiness (at most `--ready-timeout`, 60 s by default). Once the successor is ready, the
//! pid file (`--pid-file`) names it, and this process stops accepting, drains and exits. A
//! successor that cannot start, exits, or is not ready in time is killed and reaped; this
//! process logs why and keeps serving, its pid file unchanged. A `SIGHUP` during a handover is
//! refused with a log line.
//!
//! Under a service manager (`NOTIFY_SOCKET`, `Type=notify-reload`): `READY=1` once listening,
//! `RELOADING=1` at a handover's start, `MAINPID=` the successor with `READY=1` once it is
//! ready, `READY=1` again after a failed one; with `--fd-store`, every listener is also kept
//! in the descriptor store (`FDSTORE=1`, `FDNAME=` its key), and stored descriptors that no
//! description adopted are closed and removed from it (`FDSTOREREMOVE=1`, `FDNAME=`).

use std::path::PathBuf;
use std::time::Duration;

use std::os::fd::AsFd;

use endpoints::systemd;
use endpoints::util::handover::{self, HandoverError, HandoverOptions, Ready};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;

use crate::Fail;
use crate::flags::Parsed;

/// The SIGHUP handler, the successor to start, and the handover in progress.
pub(crate) struct Handover {
    sighup: Signal,
    options: HandoverOptions,
    pid_file: Option<PathBuf>,
    fd_store: bool,
    running: Option<JoinHandle<Result<Ready, HandoverError>>>,
}

impl Handover {
    /// Read the flags and catch `SIGHUP` from now on (before listening: a hangup at any later
    /// moment asks for a handover, never kills the process).
    pub(crate) fn from_flags(p: &Parsed) -> Result<Self, Fail> {
        let mut options = HandoverOptions::same_binary().map_err(|e| Fail::Run(e.to_string()))?;
        if let Some(t) = p.seconds("--ready-timeout", false).map_err(Fail::Usage)? {
            options.ready_timeout = t;
        }
        if let Some(program) = p.text("--handover-exec") {
            if program.is_empty() {
                return Err(Fail::Usage(
                    "--handover-exec needs a program (a path, or a name in PATH)".into(),
                ));
            }
            options.program = PathBuf::from(program);
        }
        let pid_file = p.text("--pid-file").map(PathBuf::from);
        let sighup = signal(SignalKind::hangup())
            .map_err(|e| Fail::Run(format!("cannot catch SIGHUP (for handovers): {e}")))?;
        Ok(Self {
            sighup,
            options,
            pid_file,
            fd_store: p.has("--fd-store"),
            running: None,
        })
    }

    /// Call once every listener listens: a process started by a handover tells its
    /// predecessor it is ready (which then writes the pid file); any other writes its own pid
    /// file.
    pub(crate) fn listening(&self) -> Result<(), Fail> {
        if self.fd_store {
            forget_stale();
            store_listeners();
        }
        if handover::started_by_handover() {
            match handover::signal_ready() {
                Ok(_) => line!(
                    info,
                    "handover: ready, serving the listeners of the previous process"
                ),
                // The previous process is gone (killed meanwhile): these listeners are ours
                // alone now, so serve them all the same.
                Err(e) => line!(warn, "handover: {e}; serving the listeners anyway"),
            }
            return Ok(());
        }
        if let Some(path) = &self.pid_file {
            handover::write_pid_file(path, std::process::id())
                .map_err(|e| Fail::Run(e.to_string()))?;
        }
        notify("READY=1");
        Ok(())
    }

    /// Serve `SIGHUP`s: resolves with the successor's pid once one is ready (the pid file
    /// already names it). Failures and refused signals are logged here and never resolve.
    pub(crate) async fn successor_ready(&mut self) -> u32 {
        loop {
            let running = async {
                match self.running.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = self.sighup.recv() => {
                    if got.is_none() {
                        // The handler is gone: no SIGHUP will be reported again.
                        return std::future::pending().await;
                    }
                    if self.running.is_some() {
                        line!(warn, "handover: SIGHUP refused: a handover is already in progress (wait for it to finish or fail)");
                        continue;
                    }
                    line!(info, "handover: SIGHUP: starting the successor {}", self.options.program.display());
                    notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", systemd::monotonic_usec()));
                    let options = self.options.clone();
                    self.running = Some(tokio::spawn(async move { handover::hand_over(&options).await }));
                }
                done = running => {
                    self.running = None;
                    match done {
                        Ok(Ok(ready)) => {
                            let pid = ready.pid;
                            // Not waited for: it carries on after this process exits.
                            drop(ready.child);
                            if let Some(path) = &self.pid_file
                                && let Err(e) = handover::write_pid_file(path, pid)
                            {
                                line!(warn, "handover: {e}");
                            }
                            // The service manager follows the successor from now on.
                            notify(&format!("MAINPID={pid}\nREADY=1"));
                            return pid;
                        }
                        Ok(Err(e)) => {
                            line!(warn, "handover failed: {e}");
                            notify("READY=1\nSTATUS=the last handover failed; still serving");
                        }
                        Err(e) => {
                            line!(warn, "handover failed: its task ended: {e}; this process keeps serving");
                            notify("READY=1\nSTATUS=the last handover failed; still serving");
                        }
                    }
                }
            }
        }
    }
}

/// At exit (the end of `listen --echo` or `relay`, a SIGTERM included), the pid file is
/// removed if it still names this process: after a handover it names the successor, which
/// goes on, and is left alone.
impl Drop for Handover {
    fn drop(&mut self) {
        let Some(path) = &self.pid_file else { return };
        let named = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if named == Some(std::process::id())
            && let Err(e) = std::fs::remove_file(path)
        {
            line!(warn, "cannot remove the pid file {}: {e}", path.display());
        }
    }
}

/// Tell the service manager (`$NOTIFY_SOCKET`), if there is one; a failure is logged.
fn notify(state: &str) {
    if let Err(e) = systemd::notify(state) {
        line!(
            warn,
            "cannot notify the service manager ({}): {e}",
            state.replace('\n', " ")
        );
    }
}

/// The inherited descriptors [`close_stale`] closed: `--fd-store` tells the store to drop
/// them.
static STALE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Once the command's listener listens (every command, handover or not): close the inherited
/// descriptors nothing adopted (a handed-over or stored listener whose description changed),
/// each with a warning, so that no socket listens with nobody to serve it.
pub(crate) fn close_stale() {
    let closed = handover::close_unclaimed();
    if !closed.is_empty() {
        STALE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(closed);
    }
}

/// `--fd-store`: tell the descriptor store to drop what [`close_stale`] closed
/// (`FDSTOREREMOVE=1` with `FDNAME=` each name), or a restart would pass it back again.
fn forget_stale() {
    let stale = std::mem::take(
        &mut *STALE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for name in stale {
        match systemd::notify(&format!("FDSTOREREMOVE=1\nFDNAME={name}")) {
            Ok(true) => {}
            // Not under a service manager: store_listeners says so.
            Ok(false) => return,
            Err(e) => line!(
                warn,
                "--fd-store: cannot remove {name} from the descriptor store: {e}"
            ),
        }
    }
}

/// `--fd-store`: give every listener to the service manager's descriptor store
/// (`FDSTORE=1`, named by its description's key), so that a plain restart passes them back
/// and they are adopted as after a handover. systemd ignores a descriptor it already holds.
fn store_listeners() {
    let listeners = match handover::listeners() {
        Ok(l) => l,
        Err(e) => {
            line!(warn, "--fd-store: cannot duplicate the listeners: {e}");
            return;
        }
    };
    let mut all = true;
    for (name, fd) in &listeners {
        match systemd::notify_with_fds(&format!("FDSTORE=1\nFDNAME={name}"), &[fd.as_fd()]) {
            Ok(true) => {}
            Ok(false) => {
                line!(
                    warn,
                    "--fd-store: NOTIFY_SOCKET is not set (not under a service manager): nothing stored"
                );
                return;
            }
            Err(e) => {
                all = false;
                line!(warn, "--fd-store: cannot store {name}: {e}");
            }
        }
    }
    if all && !listeners.is_empty() {
        // The store passes them to the next start: a stop leaves unix socket files in place.
        handover::mark_stored();
    }
}

/// How long `listen --echo` gives open connections after a handover or a stop.
pub(crate) const ECHO_DRAIN: Duration = Duration::from_secs(10);
