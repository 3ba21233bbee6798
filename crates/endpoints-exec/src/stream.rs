//! [`ExecStream`]: writes to the child's stdin, reads from its stdout, and an end of stdout
//! that is clean only if the program exited with status 0.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::oneshot;

use crate::client::Stderr;

/// What the supervisor learnt when the child exited.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) status: io::Result<ExitStatus>,
    /// The last stderr lines, with `stderr=log`.
    pub(crate) tail: Option<Vec<String>>,
}

/// A program that ended badly: a non-zero status or a signal. The error of the read that
/// follows the end of its stdout (kind `Other`); get it with `io::Error::get_ref` and
/// `downcast_ref`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExitError {
    /// The endpoint's canonical description.
    pub endpoint: String,
    /// The program as described.
    pub program: String,
    /// Its process id.
    pub pid: u32,
    /// How it ended.
    pub status: ExitStatus,
    /// The last lines of its stderr (with `stderr=log`; empty otherwise).
    pub stderr: Vec<String>,
    stderr_mode: Stderr,
}

impl ExitError {
    /// The exit code, when it exited rather than being killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that ended it, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

impl fmt::Display for ExitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {}, from `{}`) ",
            self.program, self.pid, self.endpoint
        )?;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => write!(f, "exited with status {code}")?,
            (None, Some(sig)) => write!(f, "was killed by signal {sig}")?,
            _ => write!(f, "ended: {}", self.status)?,
        }
        match self.stderr_mode {
            Stderr::Log if self.stderr.is_empty() => f.write_str("; it wrote nothing to stderr"),
            Stderr::Log => write!(
                f,
                "; the last lines of its stderr: {}",
                self.stderr.join(" | ")
            ),
            Stderr::Inherit => f.write_str("; its stderr went to ours (stderr=inherit)"),
            Stderr::Drop => {
                f.write_str("; its stderr was dropped (stderr=drop; stderr=log shows it)")
            }
        }
    }
}

impl std::error::Error for ExitError {}

/// Where the read side is once stdout has ended.
#[derive(Debug)]
enum End {
    /// Waiting for the supervisor's report.
    Waiting(oneshot::Receiver<Report>),
    /// Exited with status 0: end of stream.
    Clean,
    /// Failed: every read returns this error.
    Failed(io::ErrorKind, Arc<str>, Option<ExitError>),
}

/// The stream of an `exec:` connection. Dropping it closes both pipes and has the supervisor
/// end the child (SIGTERM to its group, SIGKILL after the grace period) and reap it.
pub struct ExecStream {
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    end: End,
    /// Dropped with the stream: the supervisor's signal to end the child.
    _close: oneshot::Sender<()>,
    endpoint: Arc<str>,
    program: String,
    pid: u32,
    stderr_mode: Stderr,
}

impl fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecStream")
            .field("program", &self.program)
            .field("pid", &self.pid)
            .field("stdin_open", &self.stdin.is_some())
            .field("stdout_open", &self.stdout.is_some())
            .finish()
    }
}

/// The child's stdout and stdin pipes, declared so that a relay may `splice(2)` them: nothing
/// is held above them, a read after the stdout's end of file gives the exit status, and
/// shutting the write side down closes the stdin.
pub(crate) static DESCRIPTORS: endpoints_core::Descriptors<ExecStream> =
    endpoints_core::Descriptors::<ExecStream>::new(
        |s| s.stdout.as_ref().map(AsFd::as_fd),
        |s| s.stdin.as_ref().map(AsFd::as_fd),
    );

impl ExecStream {
    #[allow(clippy::too_many_arguments)] // one private constructor, called once
    pub(crate) fn new(
        stdin: ChildStdin,
        stdout: ChildStdout,
        report: oneshot::Receiver<Report>,
        close: oneshot::Sender<()>,
        endpoint: Arc<str>,
        program: String,
        pid: u32,
        stderr_mode: Stderr,
    ) -> Self {
        Self {
            stdin: Some(stdin),
            stdout: Some(stdout),
            end: End::Waiting(report),
            _close: close,
            endpoint,
            program,
            pid,
            stderr_mode,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// An I/O error on a pipe, naming the endpoint and the program.
    fn pipe_error(&self, which: &str, e: io::Error) -> io::Error {
        let hint = if e.kind() == io::ErrorKind::BrokenPipe {
            " (it closed its stdin or exited)"
        } else {
            ""
        };
        io::Error::new(
            e.kind(),
            format!(
                "`{}`: {which} of `{}` (pid {}){hint}: {e}",
                self.endpoint, self.program, self.pid
            ),
        )
    }

    fn end_from(&self, r: Result<Report, oneshot::error::RecvError>) -> End {
        let report = match r {
            Ok(report) => report,
            Err(_) => {
                return End::Failed(
                    io::ErrorKind::Other,
                    Arc::from(format!(
                        "`{}`: the exit status of `{}` (pid {}) was lost (the runtime is shutting down)",
                        self.endpoint, self.program, self.pid
                    )),
                    None,
                );
            }
        };
        match report.status {
            Ok(status) if status.success() => End::Clean,
            Ok(status) => {
                let e = ExitError {
                    endpoint: self.endpoint.to_string(),
                    program: self.program.clone(),
                    pid: self.pid,
                    status,
                    stderr: report.tail.unwrap_or_default(),
                    stderr_mode: self.stderr_mode,
                };
                End::Failed(io::ErrorKind::Other, Arc::from(e.to_string()), Some(e))
            }
            Err(e) => End::Failed(
                e.kind(),
                Arc::from(format!(
                    "`{}`: cannot learn how `{}` (pid {}) exited: {e}",
                    self.endpoint, self.program, self.pid
                )),
                None,
            ),
        }
    }
}

fn failed(kind: io::ErrorKind, message: &Arc<str>, exit: &Option<ExitError>) -> io::Error {
    match exit {
        Some(e) => io::Error::new(kind, e.clone()),
        None => io::Error::new(kind, message.to_string()),
    }
}

impl AsyncRead for ExecStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stdout) = this.stdout.as_mut() {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            if let Err(e) = ready!(Pin::new(stdout).poll_read(cx, buf)) {
                return Poll::Ready(Err(this.pipe_error("reading the stdout", e)));
            }
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            // End of stdout: close our end; the stream ends when the program has exited.
            this.stdout = None;
        }
        loop {
            match &mut this.end {
                End::Clean => return Poll::Ready(Ok(())),
                End::Failed(kind, message, exit) => {
                    return Poll::Ready(Err(failed(*kind, message, exit)));
                }
                End::Waiting(rx) => {
                    let r = ready!(Pin::new(rx).poll(cx));
                    this.end = this.end_from(r);
                }
            }
        }
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stdin) = this.stdin.as_mut() else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "`{}`: the stdin of `{}` is closed (the write side was shut down)",
                    this.endpoint, this.program
                ),
            )));
        };
        match ready!(Pin::new(stdin).poll_write(cx, buf)) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(this.pipe_error("writing the stdin", e))),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stdin) = this.stdin.as_mut() else {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return Pin::new(this).poll_write(cx, first);
        };
        match ready!(Pin::new(stdin).poll_write_vectored(cx, bufs)) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(this.pipe_error("writing the stdin", e))),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stdin.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.stdin.as_mut() {
            Some(stdin) => match ready!(Pin::new(stdin).poll_flush(cx)) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(e) => Poll::Ready(Err(this.pipe_error("flushing the stdin", e))),
            },
            None => Poll::Ready(Ok(())),
        }
    }

    /// Close the child's stdin (it reads end of file); the read side stays open.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stdin) = this.stdin.as_mut() {
            // Nothing is buffered in a pipe writer; a flush error is still the caller's.
            let r = ready!(Pin::new(stdin).poll_flush(cx));
            this.stdin = None;
            if let Err(e) = r
                && e.kind() != io::ErrorKind::BrokenPipe
            {
                return Poll::Ready(Err(this.pipe_error("closing the stdin", e)));
            }
        }
        Poll::Ready(Ok(()))
    }
}
