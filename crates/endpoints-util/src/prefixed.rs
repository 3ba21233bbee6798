//! [`Prefixed`]: a stream that first yields bytes already read, then the rest of the stream:
//! the bytes that arrived with a PROXY header (`haproxy:`), or after a proxy's answer
//! (`httpconnect:`), belong to the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `prefix`, then `inner`. Writes go straight to `inner`.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Yield `prefix` before reading from `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// The bytes read ahead (with a header, after an answer) and not read yet.
    pub fn buffered(&self) -> &[u8] {
        &self.prefix[self.pos..]
    }

    /// Take the bytes read ahead and not read yet: later reads
    /// go straight to the stream underneath. For a caller that moves the rest of the stream
    /// itself (the `endpoints relay` command splices the socket underneath).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.prefix);
        rest.drain(..self.pos);
        self.pos = 0;
        rest
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream underneath, mutably. Reading from it directly skips [`Self::buffered`].
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn take_buffered_hands_over_what_was_not_read_and_reads_go_on_underneath() {
        let inner: &[u8] = b" and then the socket";
        let mut s = Prefixed::new(b"with the header".to_vec(), inner);
        let mut first = [0u8; 5];
        s.read_exact(&mut first).await.expect("read");
        assert_eq!(&first, b"with ");
        assert_eq!(s.buffered(), b"the header");
        assert_eq!(s.take_buffered(), b"the header");
        assert!(s.buffered().is_empty());
        assert_eq!(s.get_ref(), b" and then the socket");
        let mut rest = String::new();
        s.read_to_string(&mut rest).await.expect("read");
        assert_eq!(rest, " and then the socket");
    }
}
