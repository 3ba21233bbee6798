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
    /// Kept to close the channel when the stream is dropped.
    half: Option<russh::ChannelWriteHalf<Msg>>,
    _in_use: Arc<InUse>,
}

impl Drop for SshStream {
    fn drop(&mut self) {
        if let Some(half) = self.half.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = half.close().await;
            });
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
        tokio::spawn(async move {
            let mut status = None;
            let mut signal = None;
            let mut logged = 0usize;
            let mut tail: Vec<String> = Vec::new();
            let mut partial = Vec::new();
            let mut eof = false;
            while let Some(msg) = read.wait().await {
                match msg {
                    ChannelMsg::Data { data } if data.is_empty() => {}
                    ChannelMsg::Data { data } => {
                        // The reader is gone: the stream was dropped, the channel closes.
                        let sent = sender.send(Ok(data)).await;
                        if sent.is_err() {
                            return;
                        }
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
                        if command.is_none() {
                            break;
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
                        return;
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            if !partial.is_empty() {
                let line = String::from_utf8_lossy(&partial).into_owned();
                stderr_line(&command, &line, &mut logged, &mut tail);
            }
            let end = match &command {
                None if eof => Ok(Bytes::new()),
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the SSH channel closed without an end of file (the forward was cut)",
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
            half: Some(write),
            _in_use: in_use,
        }
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

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.tx.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.as_mut().poll_shutdown(cx)
    }
}
