//! [`WsStream`]: a WebSocket as a byte stream. Each write goes out as one binary message (at
//! most [`MAX_WRITE`] bytes); binary and text payloads read in are concatenated. Shutting
//! down the write side, between two ends of ours that agreed on [`HALF_CLOSE`] in the
//! upgrade, sends an empty message (our end of data) and writing goes on the other way, as
//! on a socket; with another peer it sends Close and leaves reading on until the peer's Close.

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

/// The extension token of our in-band half-close, offered by our clients in
/// `Sec-WebSocket-Extensions` and answered by our servers. Once agreed on, an empty data
/// message is an end of data (we never send one otherwise): `shutdown()` sends it and the
/// peer's reads return 0 while its writes go on; the second end of data is a Close (1000).
/// Peers that are not ours do not answer it (RFC 6455 §9.1) and get Close on `shutdown()`.
pub const HALF_CLOSE: &str = "x-endpoints-half-close";

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
    /// Our Close is out: the peer's Close is due like a pong, within `pong_timeout` of our
    /// Close or of the last message it sent since.
    closing: bool,
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
    /// Both ends agreed on [`HALF_CLOSE`].
    half_close: bool,
    /// With `half_close`: the peer's end of data (an empty message) has arrived; reads
    /// return 0 and writing goes on.
    peer_done: bool,
    /// With `half_close`: `shut` by our end of data, not by a Close (the Close is still to
    /// send, once the peer's end arrives).
    eof_only: bool,
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
            .field("half_close", &self.half_close)
            .field("peer_done", &self.peer_done)
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
    /// carries the bytes as Base64 in text messages (Twisted `autobahn:`'s mode);
    /// `half_close`: both ends agreed on [`HALF_CLOSE`].
    pub(crate) fn new(
        ws: WebSocketStream<Connection>,
        settings: &StreamSettings,
        subprotocol: Option<&str>,
        half_close: bool,
    ) -> Self {
        let keepalive = settings.ping.map(|every| Keepalive {
            every,
            pong_timeout: settings.pong_timeout,
            timer: Box::pin(tokio::time::sleep(every)),
            waiting: false,
            closing: false,
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
            half_close,
            peer_done: false,
            eof_only: false,
        }
    }

    /// Whether both ends agreed on [`HALF_CLOSE`]: `shutdown()` ends our data only.
    pub fn half_close(&self) -> bool {
        self.half_close
    }

    /// Queue `frame` as a Close and flush it, from a read or a write, best effort: a peer
    /// that broke the protocol or sent too much learns why (1002, 1009, ...) instead of
    /// seeing the connection drop (1006). Nothing more is written after it.
    fn close_with(&mut self, cx: &mut Context<'_>, code: CloseCode, reason: &str) {
        if self.shut && !self.eof_only {
            return;
        }
        self.shut = true;
        self.eof_only = false;
        if let Poll::Ready(Ok(())) = Pin::new(&mut self.ws).poll_ready(cx) {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: reason.to_owned().into(),
            }));
            if Pin::new(&mut self.ws).start_send(close).is_ok() {
                self.unflushed = true;
                self.flush_from_read(cx);
            }
        }
    }

    /// A read error: the Close it calls for goes out first (1009 for a message over the
    /// limits, 1002 for a protocol error, 1007 for text that is not UTF-8); the error, in
    /// words, is returned.
    fn read_failed(&mut self, cx: &mut Context<'_>, e: WsError) -> io::Error {
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        self.ended = true;
        let close = match &e {
            WsError::Capacity(_) => Some((CloseCode::Size, "message too big")),
            WsError::Utf8(_) => Some((CloseCode::Invalid, "text is not UTF-8")),
            WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
                | ProtocolError::SendAfterClosing
                | ProtocolError::ReceivedAfterClosing,
            ) => None,
            WsError::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
            _ => None,
        };
        if let Some((code, reason)) = close {
            self.close_with(cx, code, reason);
        }
        ws_error(e)
    }

    /// The peer's end of data (an empty message under [`HALF_CLOSE`]). If ours was sent
    /// already, both are done: Close (1000) goes out.
    fn peer_ended(&mut self, cx: &mut Context<'_>) {
        self.peer_done = true;
        if self.eof_only {
            self.close_with(cx, CloseCode::Normal, "");
        }
    }

    /// After the peer's end of data, nobody reads: take what still comes in (pings, to be
    /// answered; a Close) from the writer's side, without waiting. An error when the
    /// connection can take no more writes: the peer closed, broke, or sent data after its end
    /// of data (which could not be delivered: the reader has had its end).
    fn drain_after_peer_done(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.peer_done || self.ended {
            return Ok(());
        }
        // Bounded: each turn takes one frame that is already in.
        for _ in 0..64 {
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Ready(Some(Ok(Message::Close(_)))) | Poll::Ready(None) => {
                    self.ended = true;
                    self.unflushed = true;
                    self.flush_from_read(cx);
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the peer closed the WebSocket after its end of data: it takes nothing more",
                    ));
                }
                Poll::Ready(Some(Ok(Message::Ping(_)))) => self.unflushed = true,
                Poll::Ready(Some(Ok(Message::Binary(_) | Message::Text(_)))) => {
                    self.ended = true;
                    self.close_with(cx, CloseCode::Protocol, "data after the end of data");
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the peer sent data after its end of data (WebSocket protocol error)",
                    ));
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => {
                    self.ended = true;
                    return Err(ws_error(e));
                }
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
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
        // Our Close is out (not our in-band end of data: after that the peer owes nothing
        // until it writes): its Close is due within `pong_timeout`, as a pong would be.
        if self.shut && !self.eof_only && !k.closing {
            k.closing = true;
            k.waiting = true;
            k.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + k.pong_timeout);
        }
        if k.timer.as_mut().poll(cx).is_ready() {
            if k.closing {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no Close from the peer within {:.3}s of ours, nor anything else \
                         (pongTimeout=): the peer may have stopped, and what it had not sent \
                         is lost",
                        k.pong_timeout.as_secs_f64()
                    ),
                ));
            }
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
        // Not after our end of data: the peer need not read once it has it (as after our
        // Close), so a pong could not be expected.
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

    /// A message from the peer after our Close: it is alive and still sending; its Close is
    /// due within `pong_timeout` of this.
    fn heard_while_closing(&mut self, cx: &mut Context<'_>) {
        if let Some(k) = self.keepalive.as_mut()
            && k.closing
        {
            let at = tokio::time::Instant::now() + k.pong_timeout;
            k.timer.as_mut().reset(at);
            let _ = k.timer.as_mut().poll(cx);
        }
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
            if this.ended || this.peer_done {
                // The Close owed once both ends of data are in goes out before the end is
                // reported: the relay drops the connection right after (a failure to flush
                // is no news: every byte went out before our end of data).
                if this.peer_done && this.unflushed {
                    let _ = ready!(Pin::new(&mut this.ws).poll_flush(cx));
                    this.unflushed = false;
                    this.writer = None;
                }
                return Poll::Ready(Ok(()));
            }
            this.flush_from_read(cx);
            if let Err(e) = this.poll_keepalive(cx) {
                this.ended = true;
                // The peer is silent; a Close tells it why if it ever reads.
                this.close_with(cx, CloseCode::Error, "no pong to a keepalive ping");
                return Poll::Ready(Err(e));
            }
            let next = ready!(Pin::new(&mut this.ws).poll_next(cx));
            if matches!(next, Some(Ok(_))) {
                this.heard_while_closing(cx);
            }
            match next {
                // The loop's top reports the end (after flushing a Close owed).
                Some(Ok(Message::Binary(b))) if this.half_close && b.is_empty() => {
                    this.peer_ended(cx);
                }
                Some(Ok(Message::Text(t))) if this.half_close && t.is_empty() => {
                    this.peer_ended(cx);
                }
                Some(Ok(Message::Binary(_))) if this.base64 => {
                    this.close_with(cx, CloseCode::Unsupported, "text expected (base64)");
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
                            this.close_with(cx, CloseCode::Invalid, "not Base64");
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
                Some(Err(e)) => return Poll::Ready(Err(this.read_failed(cx, e))),
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
        this.drain_after_peer_done(cx)?;
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

    /// Under [`HALF_CLOSE`] while the peer still sends: send our end of data (an empty
    /// message); reading goes on until the peer's end. Otherwise send Close (1000); reading
    /// goes on until the peer's Close. Either is flushed.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut && this.half_close && !this.peer_done {
            ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(ws_error)?;
            this.shut = true;
            this.eof_only = true;
            let end = if this.base64 {
                Message::Text("".into())
            } else {
                Message::Binary(Bytes::new())
            };
            Pin::new(&mut this.ws).start_send(end).map_err(ws_error)?;
        }
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
