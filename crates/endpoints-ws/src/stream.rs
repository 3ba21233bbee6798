//! [`WsStream`]: a WebSocket as a byte stream. Each write goes out as one binary message (at
//! most [`MAX_WRITE`] bytes); binary and text payloads read in are concatenated; shutting
//! down the write side sends Close and leaves reading on until the peer's Close.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::Duration;

use endpoints_core::{Connection, Layer};
use futures_core::Stream as _;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

/// The largest message one write sends (64 KiB): peers with small message limits (Python
/// `websockets` takes 1 MiB by default, browsers more) accept it, and a large `write_all`
/// becomes a series of messages rather than one the peer must hold whole.
pub const MAX_WRITE: usize = 64 * 1024;

/// How a [`WsStream`] behaves: the sizes it accepts and its keepalive pings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSettings {
    /// Largest message accepted (a fragmented one counted whole).
    pub max_message: usize,
    /// Largest frame accepted, checked on the frame header.
    pub max_frame: usize,
    /// Send a ping after this long without one, while reading (`None`: never).
    pub ping: Option<Duration>,
    /// With `ping`: the pong must arrive within this long.
    pub pong_timeout: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_message: crate::params::DEFAULT_MAX_MESSAGE,
            max_frame: crate::params::DEFAULT_MAX_FRAME,
            ping: None,
            pong_timeout: Duration::from_secs(30),
        }
    }
}

impl StreamSettings {
    pub(crate) fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_frame))
            // The write buffer is flushed past 128 KiB (tungstenite's default); past this,
            // a write waits for the peer instead of growing it.
            .max_write_buffer_size(1 << 20)
    }
}

/// Keepalive state: when to ping next, and by when the pong is due.
struct Keepalive {
    every: Duration,
    pong_timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// A ping is out and its pong not yet in.
    waiting: bool,
    /// A ping is due but could not be queued yet (the write buffer is full).
    due: bool,
}

/// A WebSocket connection read and written as bytes. See the [module docs](self).
pub struct WsStream {
    ws: WebSocketStream<Connection>,
    /// The rest of the last message read.
    pending: Bytes,
    /// The write side is shut (our Close sent or queued).
    shut: bool,
    /// The read side ended (the peer's Close, or after an error).
    ended: bool,
    keepalive: Option<Keepalive>,
    /// Twisted `autobahn:`'s `base64` subprotocol: every message is text holding Base64.
    base64: bool,
    /// Bytes queued in tungstenite's write buffer that a flush has not sent yet: every write
    /// is flushed at once, like a socket's, and what a full socket held back is flushed by
    /// the next write, flush or read.
    unflushed: bool,
    /// The waker of the last write that left bytes unflushed: a read that flushes them
    /// wakes it too, so a writer in another task is not forgotten.
    writer: Option<Waker>,
}

/// Wakes a reader and a writer.
struct Both(Waker, Waker);

impl Wake for Both {
    fn wake(self: Arc<Self>) {
        self.0.wake_by_ref();
        self.1.wake_by_ref();
    }
}

impl fmt::Debug for WsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsStream")
            .field("inner", self.ws.get_ref())
            .field("pending", &self.pending.len())
            .field("shut", &self.shut)
            .field("ended", &self.ended)
            .finish()
    }
}

/// How a `ws:` connection sits over the connection beneath: framed, so its bytes are not the
/// socket's (no splice), but the socket is reachable (to reset it).
pub(crate) static LAYER: Layer<WsStream> =
    Layer::<WsStream>::new(|w| w.ws.get_ref(), |w| w.ws.get_mut());

/// The words for a Close code.
fn close_error(frame: &CloseFrame) -> io::Error {
    let code = u16::from(frame.code);
    let reason = frame.reason.as_str();
    let what = match frame.code {
        CloseCode::Away => "going away",
        CloseCode::Protocol => "protocol error",
        CloseCode::Unsupported => "unsupported data",
        CloseCode::Invalid => "invalid payload",
        CloseCode::Policy => "policy violation",
        CloseCode::Size => "message too big",
        CloseCode::Extension => "extension required",
        CloseCode::Error => "internal server error",
        CloseCode::Restart => "service restart",
        CloseCode::Again => "try again later",
        _ => "error",
    };
    let kind = match frame.code {
        CloseCode::Away | CloseCode::Restart | CloseCode::Again => io::ErrorKind::ConnectionAborted,
        _ => io::ErrorKind::InvalidData,
    };
    if reason.is_empty() {
        io::Error::new(
            kind,
            format!("the peer closed the WebSocket with code {code} ({what})"),
        )
    } else {
        io::Error::new(
            kind,
            format!("the peer closed the WebSocket with code {code} ({what}): {reason}"),
        )
    }
}

/// A tungstenite error as an I/O error in words.
pub(crate) fn ws_error(e: WsError) -> io::Error {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the WebSocket connection ended without a Close frame (1006: abnormal closure)",
        ),
        WsError::Protocol(ProtocolError::SendAfterClosing) => io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the WebSocket's write side is shut",
        ),
        WsError::Capacity(c) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket limit: {c} (raise maxMessage=/maxFrame=)"),
        ),
        WsError::Protocol(p) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket protocol error: {p}"),
        ),
        WsError::Utf8(e) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket text message is not UTF-8: {e}"),
        ),
        other => io::Error::other(format!("WebSocket error: {other}")),
    }
}

impl WsStream {
    /// Frame `ws`, already upgraded, with `settings`' keepalive; `subprotocol` `base64`
    /// carries the bytes as Base64 in text messages (Twisted `autobahn:`'s mode).
    pub(crate) fn new(
        ws: WebSocketStream<Connection>,
        settings: &StreamSettings,
        subprotocol: Option<&str>,
    ) -> Self {
        let keepalive = settings.ping.map(|every| Keepalive {
            every,
            pong_timeout: settings.pong_timeout,
            timer: Box::pin(tokio::time::sleep(every)),
            waiting: false,
            due: false,
        });
        Self {
            ws,
            pending: Bytes::new(),
            shut: false,
            ended: false,
            keepalive,
            base64: subprotocol == Some("base64"),
            unflushed: false,
            writer: None,
        }
    }

    /// Flush what is queued, from a read: with a waker that wakes the reader and the last
    /// writer. Errors are left to the read that follows (the connection is broken).
    fn flush_from_read(&mut self, cx: &mut Context<'_>) {
        if !self.unflushed {
            return;
        }
        let waker = match &self.writer {
            Some(w) => Waker::from(Arc::new(Both(cx.waker().clone(), w.clone()))),
            None => cx.waker().clone(),
        };
        let mut both = Context::from_waker(&waker);
        if Pin::new(&mut self.ws).poll_flush(&mut both).is_ready() {
            self.unflushed = false;
            self.writer = None;
        }
    }

    /// Flush after queueing a frame: done, or left for later (`unflushed`).
    fn flush_after_send(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match Pin::new(&mut self.ws).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                self.writer = None;
                Ok(())
            }
            Poll::Ready(Err(e)) => Err(ws_error(e)),
            Poll::Pending => {
                self.unflushed = true;
                self.writer = Some(cx.waker().clone());
                Ok(())
            }
        }
    }

    /// The connection beneath (TCP, TLS, ...).
    pub fn get_ref(&self) -> &Connection {
        self.ws.get_ref()
    }

    /// Drive the keepalive: queue a ping when due, fail when a pong is late.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(k) = self.keepalive.as_mut() else {
            return Ok(());
        };
        if k.timer.as_mut().poll(cx).is_ready() {
            if k.waiting {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no pong within {:.3}s of a keepalive ping (pongTimeout=)",
                        k.pong_timeout.as_secs_f64()
                    ),
                ));
            }
            k.due = true;
        }
        if k.due && !self.shut {
            let ws = Pin::new(&mut self.ws);
            let ready = ws.poll_ready(cx);
            match ready {
                Poll::Ready(Ok(())) => {
                    Pin::new(&mut self.ws)
                        .start_send(Message::Ping(Bytes::from_static(b"keepalive")))
                        .map_err(ws_error)?;
                    self.unflushed = true;
                    self.flush_from_read(cx);
                    if let Some(k) = self.keepalive.as_mut() {
                        k.due = false;
                        k.waiting = true;
                        let at = tokio::time::Instant::now() + k.pong_timeout;
                        k.timer.as_mut().reset(at);
                        // Register the new deadline with this task.
                        let _ = k.timer.as_mut().poll(cx);
                    }
                }
                Poll::Ready(Err(e)) => return Err(ws_error(e)),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    fn pong_arrived(&mut self, cx: &mut Context<'_>) {
        if let Some(k) = self.keepalive.as_mut()
            && k.waiting
        {
            k.waiting = false;
            let at = tokio::time::Instant::now() + k.every;
            k.timer.as_mut().reset(at);
            let _ = k.timer.as_mut().poll(cx);
        }
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            this.flush_from_read(cx);
            if let Err(e) = this.poll_keepalive(cx) {
                this.ended = true;
                return Poll::Ready(Err(e));
            }
            let next = ready!(Pin::new(&mut this.ws).poll_next(cx));
            match next {
                Some(Ok(Message::Binary(_))) if this.base64 => {
                    this.ended = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a binary message on a `base64` subprotocol connection (text expected)",
                    )));
                }
                Some(Ok(Message::Text(t))) if this.base64 => {
                    match crate::http::unbase64(t.as_bytes()) {
                        Some(b) => this.pending = Bytes::from(b),
                        None => {
                            this.ended = true;
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "a text message that is not Base64 on a `base64` subprotocol connection",
                            )));
                        }
                    }
                }
                Some(Ok(Message::Binary(b))) => this.pending = b,
                Some(Ok(Message::Text(t))) => this.pending = Bytes::from(t),
                Some(Ok(Message::Pong(_))) => this.pong_arrived(cx),
                // tungstenite queued the pong; it goes out with the next read or write.
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    this.ended = true;
                    // The reply Close is queued; flush it now (a failure to is no news: the
                    // peer is done).
                    this.unflushed = true;
                    this.flush_from_read(cx);
                    return Poll::Ready(match frame {
                        None => Ok(()),
                        Some(f) if f.code == CloseCode::Normal => Ok(()),
                        Some(f) => Err(close_error(&f)),
                    });
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Err(ws_error(e)));
                }
                None => {
                    this.ended = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.shut {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the WebSocket's write side is shut (Close sent)",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.unflushed {
            ready!(Pin::new(&mut this.ws).poll_flush(cx)).map_err(ws_error)?;
            this.unflushed = false;
            this.writer = None;
        }
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(ws_error)?;
        let n = buf.len().min(MAX_WRITE);
        let message = if this.base64 {
            Message::Text(crate::http::base64(&buf[..n]).into())
        } else {
            Message::Binary(Bytes::copy_from_slice(&buf[..n]))
        };
        Pin::new(&mut this.ws)
            .start_send(message)
            .map_err(ws_error)?;
        this.flush_after_send(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.ws).poll_flush(cx)).map_err(ws_error)?;
        this.unflushed = false;
        this.writer = None;
        Poll::Ready(Ok(()))
    }

    /// Send Close (1000) and flush it; reading goes on until the peer's Close.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            match ready!(Pin::new(&mut this.ws).poll_ready(cx)) {
                Ok(()) => {}
                // The peer closed first and its Close was answered: nothing left to send.
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    this.shut = true;
                    return Poll::Ready(Ok(()));
                }
                Err(e) => return Poll::Ready(Err(ws_error(e))),
            }
            this.shut = true;
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }));
            match Pin::new(&mut this.ws).start_send(close) {
                Ok(()) => {}
                // Already closing (the peer's Close came first): just flush.
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
                Err(WsError::Protocol(_)) => {}
                Err(e) => return Poll::Ready(Err(ws_error(e))),
            }
        }
        match ready!(Pin::new(&mut this.ws).poll_flush(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                this.unflushed = false;
                this.writer = None;
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(ws_error(e))),
        }
    }
}
