//! In-band half-close for `tor:` and `onion:` (`halfClose=inband`, on both ends).
//!
//! Tor carries no half-open stream: "If an edge node receives a RELAY_END message for any
//! stream, it closes the TCP connection completely" (tor-spec, *Closing streams*). So when
//! one side ends its sending, Tor ends the whole stream, and bytes still on their way the
//! other way are cut, which the other side sees as a clean end. With `halfClose=inband` on
//! both ends, each side's end of data travels inside the stream instead, and a stream that
//! ends without it is an error (a reset), never a clean end.
//!
//! The format, after a 16-byte greeting each way (`endpoints-hc/1\r\n`): frames of a 4-byte
//! big-endian length and that many bytes (at most 16 KiB); a frame of length 0 is the end of
//! that side's data. The stream itself is closed once both sides have sent their end.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use endpoints_core::{Connection, Layer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The greeting each side sends first.
pub(crate) const GREETING: &[u8; 16] = b"endpoints-hc/1\r\n";
/// The largest frame sent or accepted.
const MAX_FRAME: usize = 16 * 1024;

/// A stream whose end of data travels in-band (see the module docs).
#[derive(Debug)]
pub struct InBand<S> {
    inner: S,
    /// How much of the peer's greeting has been read and checked.
    greeted: usize,
    head: [u8; 4],
    head_len: usize,
    /// Payload bytes left in the frame being read.
    frame_left: usize,
    /// The peer's end of data arrived.
    peer_done: bool,
    /// Bytes to send before anything else: the greeting, a frame, the end marker.
    out: Vec<u8>,
    out_at: usize,
    /// Our end of data is queued.
    we_done: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> InBand<S> {
    /// Wrap `inner` and send the greeting now, so that a side that only reads still greets
    /// (reads never write).
    pub async fn start(inner: S) -> io::Result<Self> {
        let mut s = Self {
            inner,
            greeted: 0,
            head: [0; 4],
            head_len: 0,
            frame_left: 0,
            peer_done: false,
            out: GREETING.to_vec(),
            out_at: 0,
            we_done: false,
        };
        s.flush().await?;
        Ok(s)
    }

    /// Write out what is queued.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the stream took no more bytes",
                )));
            }
            self.out_at += n;
        }
        self.out.clear();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }

    /// Read into `into` from the inner stream; `Ok(0)` is its end.
    fn poll_inner(&mut self, cx: &mut Context<'_>, into: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(into);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(rb.filled().len()))
    }
}

impl<S> InBand<S> {
    /// The stream beneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream beneath, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

/// The layer of an in-band framed connection: it changes the bytes (frames), so nothing
/// splices beneath it.
static LAYER: Layer<InBand<Connection>> =
    Layer::<InBand<Connection>>::new(InBand::get_ref, InBand::get_mut);

/// `conn` framed, its greeting sent; addresses and extensions kept.
pub(crate) async fn wrap(mut conn: Connection) -> io::Result<Connection> {
    let (local, peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
    let extensions = std::mem::take(conn.extensions_mut());
    let framed = InBand::start(conn).await?;
    let mut out = Connection::new(framed, local, peer).with_layer(&LAYER);
    out.extensions_mut().extend(extensions);
    Ok(out)
}

fn cut(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        format!(
            "the stream ended {what} without the peer's end of data (halfClose=inband): it was cut, \
             not ended; the bytes before the cut arrived, the rest did not"
        ),
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for InBand<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Reading never writes: with the halves in two tasks, a write from here would take
        // the writer's wake-up and leave it asleep. The greeting went out in `start`.
        loop {
            if this.greeted < GREETING.len() {
                let mut got = [0u8; 16];
                let want = GREETING.len() - this.greeted;
                let n = ready!(this.poll_inner(cx, &mut got[..want]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer ended the stream before its in-band half-close greeting: \
                         set halfClose=inband on both ends, or on neither",
                    )));
                }
                if got[..n] != GREETING[this.greeted..this.greeted + n] {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the peer does not speak in-band half-close (its first bytes are not \
                         the greeting): set halfClose=inband on both ends, or on neither",
                    )));
                }
                this.greeted += n;
                continue;
            }
            if this.peer_done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.frame_left > 0 {
                let n = this.frame_left.min(buf.remaining());
                let k = ready!(this.poll_inner(cx, &mut buf.initialize_unfilled_to(n)[..n]))?;
                if k == 0 {
                    return Poll::Ready(Err(cut("inside a frame")));
                }
                buf.advance(k);
                this.frame_left -= k;
                return Poll::Ready(Ok(()));
            }
            let at = this.head_len;
            let mut head = this.head;
            let n = ready!(this.poll_inner(cx, &mut head[at..]))?;
            this.head = head;
            if n == 0 {
                return Poll::Ready(Err(cut(if at == 0 {
                    "between frames"
                } else {
                    "inside a frame's length"
                })));
            }
            this.head_len += n;
            if this.head_len < 4 {
                continue;
            }
            this.head_len = 0;
            let len = u32::from_be_bytes(this.head) as usize;
            if len == 0 {
                // Both ends done: the stream itself ends when it is dropped (or shut down
                // by the writer); never from here, for the reason above.
                this.peer_done = true;
                return Poll::Ready(Ok(()));
            }
            if len > MAX_FRAME {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "an in-band frame of {len} bytes (at most {MAX_FRAME}): the peer does \
                         not speak this framing"
                    ),
                )));
            }
            this.frame_left = len;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for InBand<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.we_done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after this side's end of data",
            )));
        }
        ready!(this.poll_push(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_FRAME);
        this.out.extend_from_slice(&(n as u32).to_be_bytes());
        this.out.extend_from_slice(&buf[..n]);
        // Start sending now; the rest goes with the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_push(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_push(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.we_done {
            ready!(this.poll_push(cx))?;
            this.out.extend_from_slice(&0u32.to_be_bytes());
            this.we_done = true;
        }
        ready!(this.poll_push(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        if this.peer_done {
            // Both ends are done: the stream itself may end.
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, duplex};

    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn each_side_ends_its_data_and_the_other_still_answers() {
        let (a, b) = duplex(8 * 1024);
        let up = data(1 << 20, 1);
        let down = data(3 << 20, 2);
        let (up2, down2) = (up.clone(), down.clone());
        let server = tokio::spawn(async move {
            let mut b = InBand::start(b).await.expect("greets");
            let mut got = Vec::new();
            b.read_to_end(&mut got)
                .await
                .expect("reads to the client's end");
            assert_eq!(got, up2, "upload exact");
            // Only now the answer: the client's end of data did not end the stream.
            b.write_all(&down2)
                .await
                .expect("answers after the client's end");
            b.shutdown().await.expect("ends");
        });
        let mut a = InBand::start(a).await.expect("greets");
        a.write_all(&up).await.expect("uploads");
        a.shutdown().await.expect("half-closes");
        let mut got = Vec::new();
        a.read_to_end(&mut got).await.expect("reads the answer");
        assert_eq!(got.len(), down.len());
        assert!(got == down, "download exact");
        server.await.expect("server");
    }

    /// Reader and writer in tasks of their own (as `tokio::io::split` and a relay use them),
    /// a small buffer: the reader must never take the writer's wake-up (a read that also
    /// pushed queued bytes stole it, and the writer slept forever: seen on the Tor network).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn split_halves_in_two_tasks_never_stall() {
        for round in 0..20u64 {
            let (a, b) = duplex(512);
            let echo = tokio::spawn(async move {
                let b = InBand::start(b).await.expect("greets");
                let (mut r, mut w) = tokio::io::split(b);
                tokio::io::copy(&mut r, &mut w).await.expect("echo");
                w.shutdown().await.expect("ends");
            });
            let a = InBand::start(a).await.expect("greets");
            let (mut r, mut w) = tokio::io::split(a);
            let sent = data(256 * 1024, round + 7);
            let up = sent.clone();
            let writer = tokio::spawn(async move {
                w.write_all(&up).await.expect("writes");
                w.shutdown().await.expect("half-closes");
            });
            let mut back = Vec::new();
            // Bounded: 256 KiB through an in-memory pipe takes milliseconds; 60 s is stuck.
            tokio::time::timeout(std::time::Duration::from_secs(60), r.read_to_end(&mut back))
                .await
                .unwrap_or_else(|_| panic!("round {round}: stalled"))
                .expect("reads the echo");
            assert!(back == sent, "round {round}: the same bytes");
            writer.await.expect("writer");
            echo.await.expect("echo");
        }
    }

    #[tokio::test]
    async fn a_stream_cut_without_the_end_marker_is_a_reset_not_an_end() {
        let (a, b) = duplex(64 * 1024);
        let mut b = InBand::start(b).await.expect("greets");
        let mut a = InBand::start(a).await.expect("greets");
        a.write_all(&data(10_000, 3)).await.expect("writes");
        a.flush().await.expect("flushes");
        drop(a); // cut: no end marker
        let mut got = Vec::new();
        let e = b
            .read_to_end(&mut got)
            .await
            .expect_err("a cut is an error");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        assert_eq!(got.len(), 10_000, "the bytes before the cut arrived");
    }

    #[tokio::test]
    async fn a_peer_without_the_greeting_is_refused_in_words() {
        let (a, mut b) = duplex(1024);
        let mut a = InBand::start(a).await.expect("greets");
        b.write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            .await
            .expect("plain peer");
        let mut buf = [0u8; 64];
        let e = a.read(&mut buf).await.expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("halfClose=inband on both ends"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused() {
        let (a, mut b) = duplex(1024);
        let mut a = InBand::start(a).await.expect("greets");
        b.write_all(GREETING).await.expect("greeting");
        b.write_all(&(1u32 << 30).to_be_bytes())
            .await
            .expect("length");
        let mut buf = [0u8; 64];
        let e = a.read(&mut buf).await.expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[tokio::test]
    async fn a_side_that_only_reads_still_greets_and_the_server_may_speak_first() {
        let (a, b) = duplex(1024);
        let server = tokio::spawn(async move {
            let mut b = InBand::start(b).await.expect("greets");
            b.write_all(b"220 hello\r\n").await.expect("speaks first");
            b.shutdown().await.expect("ends");
            let mut rest = Vec::new();
            b.read_to_end(&mut rest).await.expect("client's end");
            rest
        });
        let mut a = InBand::start(a).await.expect("greets");
        let mut got = Vec::new();
        a.read_to_end(&mut got)
            .await
            .expect("reads the banner to its end");
        assert_eq!(got, b"220 hello\r\n");
        a.write_all(b"QUIT\r\n")
            .await
            .expect("still writes after the server's end");
        a.shutdown().await.expect("ends");
        assert_eq!(server.await.expect("server"), b"QUIT\r\n");
    }
}
