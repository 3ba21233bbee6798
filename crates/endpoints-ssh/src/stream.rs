//! The connections: a forward's channel as a byte stream (end of file both ways is the
//! channel's `eof`), and a command's channel whose exit status ends the stream.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use russh::ChannelMsg;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::session::InUse;

/// A channel as a stream: bytes written are channel data, shutdown sends `eof`; the read
/// side ends at the server's `eof` (a forward) or with the command's exit (a command).
pub struct SshStream {
    /// The channel's data as russh received it (no copy on the way: `Bytes` are shared).
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// The rest of the last message, handed out by `poll_read`.
    pending: Bytes,
    done: bool,
    tx: Pin<Box<dyn AsyncWrite + Send + Sync>>,
    /// The channel's end, shared with the task that reads it.
    chan: Arc<Chan>,
}

/// How long the session is kept for a dropped stream's close handshake: the server confirms
/// with its own `close` once it has written every byte on to the far end (and the far end's
/// data ended); a far end that stops reading for this long loses the rest, loudly.
pub(crate) const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(30);

/// How much of the channel's data the task holds for the stream while a write waits. russh
/// takes the server's window adjustments in the same loop that hands each channel its data,
/// and that loop waits while a channel's queue is full: an application that stops reading
/// while its write waits for the window (an echo) would wait forever for an adjustment
/// queued behind its own unread data. So while a write waits, the task keeps taking the data
/// (up to this much; russh tops the window up as data arrives, so about one window comes in
/// before the adjustment is read).
const BACKLOG_LIMIT: usize = 16 * 1024 * 1024;

/// How a channel ended, once it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The server's `close` after our `eof`: it wrote everything on to the far end.
    Closed,
    /// The server's `close` before our `eof`: the far end closed or reset, bytes written
    /// since are lost.
    ClosedEarly,
    /// The session ended before the server's `close`.
    SessionEnded,
    /// The stream was dropped after its shutdown and the server did not close within
    /// [`CLOSE_LINGER`].
    Unconfirmed,
    /// The stream was dropped before its shutdown, or with bytes it had not read: the channel
    /// is closed at once (an abort), nothing confirmed.
    Abandoned,
}

impl End {
    fn error(self, forward: bool) -> Option<io::Error> {
        let what = if forward {
            "forward"
        } else {
            "command's channel"
        };
        match self {
            End::Closed => None,
            End::ClosedEarly => Some(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "the SSH server closed the {what} before this side ended (the far end \
                     closed or reset): bytes written since were not delivered"
                ),
            )),
            End::SessionEnded => Some(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!(
                    "the SSH session ended before the server confirmed the {what}'s end: the \
                     last bytes written may not have been delivered"
                ),
            )),
            End::Abandoned => Some(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "the {what} was dropped before its shutdown or with bytes unread (an abort)"
                ),
            )),
            End::Unconfirmed => Some(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the SSH server did not confirm the {what}'s end within {}s (the far end \
                     stopped reading?): the last bytes written may not have been delivered",
                    CLOSE_LINGER.as_secs()
                ),
            )),
        }
    }
}

/// What the stream and the task reading its channel share.
struct Chan {
    /// Set by the task when the channel has ended.
    end: tokio::sync::watch::Sender<Option<End>>,
    /// Our `eof` is queued (in order after every byte written).
    shut: std::sync::atomic::AtomicBool,
    /// The stream was dropped with bytes it had not read.
    unread: std::sync::atomic::AtomicBool,
    /// A writer waiting for the window, woken when the channel ends (its window never
    /// opens again).
    writer: std::sync::Mutex<Option<std::task::Waker>>,
    /// A write is waiting (for the window, or the session's queue): the task must keep
    /// taking the channel's data from russh meanwhile (see [`BACKLOG_LIMIT`]).
    writer_waiting: std::sync::atomic::AtomicBool,
    /// Tells the task that a write started waiting.
    wake_task: tokio::sync::Notify,
    /// A forward (not a command), for the words.
    forward: bool,
}

impl Chan {
    fn ended(&self) -> Option<End> {
        *self.end.borrow()
    }

    /// The error for a write (or shutdown) once the channel ended.
    fn write_error(&self) -> Option<io::Error> {
        self.ended().map(|end| {
            end.error(self.forward).unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the SSH channel is closed: nothing more can be written",
                )
            })
        })
    }

    fn finish(&self, end: End) {
        self.end.send_replace(Some(end));
        if let Some(w) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            w.wake();
        }
    }
}

impl Drop for SshStream {
    /// The channel's task ends the channel: gracefully (waiting for the server's close)
    /// when this side was shut down and every byte received was read, else at once.
    fn drop(&mut self) {
        let mut unread = !self.pending.is_empty();
        // No more sends from here on (a send fails: the task sees bytes nobody reads).
        self.rx.close();
        while let Ok(m) = self.rx.try_recv() {
            unread |= matches!(m, Ok(d) if !d.is_empty());
        }
        if unread {
            self.chan
                .unread
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for SshStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshStream").finish_non_exhaustive()
    }
}

/// How the command ended, when it did not end well.
#[derive(Debug)]
pub struct ExitError {
    /// The exit status, if the server sent one.
    pub status: Option<u32>,
    /// The signal that ended it, if the server sent one.
    pub signal: Option<String>,
    /// The last lines the command wrote on stderr.
    pub stderr_tail: Vec<String>,
    command: String,
}

impl fmt::Display for ExitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.status, &self.signal) {
            (_, Some(sig)) => write!(
                f,
                "the remote command `{}` was killed by signal {sig}",
                self.command
            )?,
            (Some(s), None) => write!(
                f,
                "the remote command `{}` exited with status {s}",
                self.command
            )?,
            (None, None) => write!(
                f,
                "the remote command `{}` ended without an exit status (the session closed?)",
                self.command
            )?,
        }
        if let Some(last) = self.stderr_tail.last() {
            write!(f, "; its last stderr line: {last}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExitError {}

/// At most this much of a command's stderr is logged; the rest is counted.
const STDERR_LOG_LIMIT: usize = 64 * 1024;
/// Lines kept for the exit error.
const STDERR_TAIL: usize = 5;

impl SshStream {
    /// The stream over `channel`; `command` is `Some` for a command (its exit status ends
    /// the stream), `None` for a forward.
    pub(crate) fn new(
        channel: russh::Channel<Msg>,
        command: Option<String>,
        in_use: Arc<InUse>,
    ) -> Self {
        let (mut read, write) = channel.split();
        let tx: Pin<Box<dyn AsyncWrite + Send + Sync>> = Box::pin(write.make_writer());
        // A few messages in flight: the channel's window is the real bound (the server
        // sends no more than the window; russh's own per-channel queue holds the rest).
        let (sender, rx) = mpsc::channel(8);
        let chan = Arc::new(Chan {
            end: tokio::sync::watch::Sender::new(None),
            shut: std::sync::atomic::AtomicBool::new(false),
            unread: std::sync::atomic::AtomicBool::new(false),
            writer: std::sync::Mutex::new(None),
            writer_waiting: std::sync::atomic::AtomicBool::new(false),
            wake_task: tokio::sync::Notify::new(),
            forward: command.is_none(),
        });
        let task_chan = chan.clone();
        // The task holds the session (`in_use`) until the channel's close handshake is over,
        // also after the stream is dropped: the server's `close` says it wrote every byte on
        // to the far end; ending the session before it would cut them off.
        tokio::spawn(async move {
            let chan = task_chan;
            let _in_use = in_use;
            let mut status = None;
            let mut signal = None;
            let mut logged = 0usize;
            let mut tail: Vec<String> = Vec::new();
            let mut partial = Vec::new();
            let mut eof = false;
            // The reader has its end (the forward's `eof`), or is gone.
            let mut told = false;
            // Data (and the forward's end, as an empty entry) not yet handed to the stream.
            let mut backlog: std::collections::VecDeque<Bytes> = Default::default();
            let mut backlog_bytes = 0usize;
            // Set when the stream is dropped: the close handshake's bound.
            let mut deadline: Option<tokio::time::Instant> = None;
            let closed = loop {
                let taking = backlog.is_empty()
                    || (chan
                        .writer_waiting
                        .load(std::sync::atomic::Ordering::SeqCst)
                        && backlog_bytes < BACKLOG_LIMIT);
                let msg = tokio::select! {
                    msg = read.wait(), if taking => msg,
                    permit = sender.reserve(), if !backlog.is_empty() && deadline.is_none() => {
                        match permit {
                            Ok(permit) => {
                                let d = backlog.pop_front().unwrap_or_default();
                                backlog_bytes -= d.len();
                                permit.send(Ok(d));
                            }
                            // The stream is gone with bytes it never read: an abort.
                            Err(_) if backlog_bytes > 0 => {
                                let _ = write.close().await;
                                break Closed::Abandoned;
                            }
                            Err(_) => backlog.clear(),
                        }
                        continue;
                    }
                    () = chan.wake_task.notified(), if !taking => continue,
                    // The stream is dropped. After its shutdown: wait for the server's
                    // close (russh forwards no close of the server's once ours is sent), which
                    // comes once it wrote every byte on to the far end and the far end's data
                    // ended; the rest of that data is dropped here. Before: close at once.
                    () = sender.closed(), if deadline.is_none() => {
                        // As TCP's close: with bytes unread (or this side not ended), an
                        // abort.
                        if chan.unread.load(std::sync::atomic::Ordering::SeqCst)
                            || backlog_bytes > 0
                            || !chan.shut.load(std::sync::atomic::Ordering::SeqCst)
                        {
                            let _ = write.close().await;
                            break Closed::Abandoned;
                        }
                        told = true;
                        deadline = Some(tokio::time::Instant::now() + CLOSE_LINGER);
                        continue;
                    }
                    () = sleep_until(deadline), if deadline.is_some() => {
                        let _ = write.close().await;
                        break Closed::Unconfirmed;
                    }
                };
                let Some(msg) = msg else {
                    break Closed::SessionEnded;
                };
                match msg {
                    ChannelMsg::Data { data } if data.is_empty() => {}
                    ChannelMsg::Data { data } => {
                        // Bytes for a stream that was dropped: they will never be read, so
                        // the channel is aborted at once (as TCP resets a socket closed with
                        // bytes unread), and the far end learns of it.
                        if deadline.is_some() {
                            let _ = write.close().await;
                            break Closed::Abandoned;
                        }
                        backlog_bytes += data.len();
                        backlog.push_back(data);
                    }
                    ChannelMsg::ExtendedData { data, .. } => {
                        partial.extend_from_slice(&data);
                        while let Some(nl) = partial.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = partial.drain(..=nl).collect();
                            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                            stderr_line(&command, &line, &mut logged, &mut tail);
                        }
                        if partial.len() > 4096 {
                            let line = String::from_utf8_lossy(&partial).into_owned();
                            partial.clear();
                            stderr_line(&command, &line, &mut logged, &mut tail);
                        }
                    }
                    ChannelMsg::Eof => {
                        eof = true;
                        // A forward's data ends here; the channel stays open until the
                        // server's close (our side may still be sending).
                        if command.is_none() && !told {
                            told = true;
                            backlog.push_back(Bytes::new());
                        }
                    }
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        signal = Some(format!("{signal_name:?}"))
                    }
                    ChannelMsg::Failure if command.is_some() => {
                        let _ = sender
                            .send(Err(io::Error::new(
                                io::ErrorKind::PermissionDenied,
                                "the SSH server refused to run the command",
                            )))
                            .await;
                        chan.finish(End::ClosedEarly);
                        return;
                    }
                    ChannelMsg::Close => break Closed::ByServer,
                    _ => {}
                }
            };
            let shut = chan.shut.load(std::sync::atomic::Ordering::SeqCst);
            let end = match closed {
                Closed::ByServer if shut => End::Closed,
                Closed::ByServer => End::ClosedEarly,
                Closed::SessionEnded => End::SessionEnded,
                Closed::Unconfirmed => End::Unconfirmed,
                Closed::Abandoned => End::Abandoned,
            };
            chan.finish(end);
            if deadline.is_some()
                && shut
                && let Some(e) = end.error(command.is_none())
            {
                // The stream is gone: nobody reads this but the log (and `Delivery`).
                tracing::warn!("ssh: {e}");
            }
            if !partial.is_empty() {
                let line = String::from_utf8_lossy(&partial).into_owned();
                stderr_line(&command, &line, &mut logged, &mut tail);
            }
            // What the stream has not taken yet, before its end.
            if deadline.is_none() {
                for d in backlog.drain(..) {
                    if sender.send(Ok(d)).await.is_err() {
                        return;
                    }
                }
            }
            if told {
                return;
            }
            let end = match &command {
                None if eof => Ok(Bytes::new()),
                None if closed == Closed::SessionEnded => Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the SSH session ended under the channel (the forward was cut)",
                )),
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the SSH server closed the forward without an end of file (the far end \
                     reset or went away)",
                )),
                Some(_) if status == Some(0) && signal.is_none() => Ok(Bytes::new()),
                Some(c) => Err(io::Error::other(ExitError {
                    status,
                    signal,
                    stderr_tail: tail,
                    command: c.clone(),
                })),
            };
            let _ = sender.send(end).await;
        });
        Self {
            rx,
            pending: Bytes::new(),
            done: false,
            tx,
            chan,
        }
    }

    /// Waits for the channel's close handshake (for [`endpoints_core::Delivery`]): `Ok` once
    /// the server closed after our `eof`.
    pub(crate) fn delivery(&self) -> endpoints_core::Delivery {
        let end = self.chan.end.subscribe();
        let forward = self.chan.forward;
        endpoints_core::Delivery::new("the SSH server's close", move || {
            let mut end = end.clone();
            async move {
                let r = end.wait_for(Option::is_some).await.map(|e| *e);
                match r {
                    Ok(Some(e)) => e.error(forward).map_or(Ok(()), Err),
                    _ => Err(End::SessionEnded
                        .error(forward)
                        .unwrap_or_else(|| io::Error::other("the SSH channel's task ended"))),
                }
            }
        })
    }
}

/// How the task's wait on a channel ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closed {
    ByServer,
    SessionEnded,
    Unconfirmed,
    Abandoned,
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn stderr_line(command: &Option<String>, line: &str, logged: &mut usize, tail: &mut Vec<String>) {
    let c = command.as_deref().unwrap_or("");
    if *logged < STDERR_LOG_LIMIT {
        tracing::warn!(command = c, "remote stderr: {line}");
        *logged += line.len() + 1;
        if *logged >= STDERR_LOG_LIMIT {
            tracing::warn!(
                command = c,
                "remote stderr: more lines not logged (64 KiB logged)"
            );
        }
    }
    if tail.len() == STDERR_TAIL {
        tail.remove(0);
    }
    tail.push(line.chars().take(512).collect());
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) if data.is_empty() => this.done = true,
                Poll::Ready(Some(Ok(data))) => this.pending = data,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the SSH session ended under the channel",
                    )));
                }
            }
        }
    }
}

impl SshStream {
    /// A write is waiting (for the window, or room in the session's queue): be woken when
    /// the channel ends too, and fail then.
    fn wait_for_end(&self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if let Ok(mut w) = self.chan.writer.lock() {
            *w = Some(cx.waker().clone());
        }
        if !self
            .chan
            .writer_waiting
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.chan.wake_task.notify_one();
        }
        match self.chan.write_error() {
            Some(e) => Poll::Ready(e),
            None => Poll::Pending,
        }
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Once the server closed the channel its window never opens again: fail, don't wait.
        if let Some(e) = this.chan.write_error() {
            return Poll::Ready(Err(e));
        }
        let r = this.tx.as_mut().poll_write(cx, buf);
        if r.is_ready() {
            this.chan
                .writer_waiting
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        match r {
            Poll::Pending => this.wait_for_end(cx).map(Err),
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.chan.write_error().unwrap_or(e))),
            ready => ready,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.chan.shut.load(std::sync::atomic::Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = this.chan.write_error() {
            return Poll::Ready(Err(e));
        }
        let r = this.tx.as_mut().poll_shutdown(cx);
        if r.is_ready() {
            this.chan
                .writer_waiting
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        match r {
            Poll::Pending => this.wait_for_end(cx).map(Err),
            Poll::Ready(Ok(())) => {
                this.chan
                    .shut
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.chan.write_error().unwrap_or(e))),
        }
    }
}
