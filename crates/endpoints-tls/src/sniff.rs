//! [`Sniff`]: a stream that keeps the first bytes the server sent during the handshake, so that
//! an error can show them ("the server answered `220 smtp ready\r\n`").

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::errors::SHOWN_BYTES;

/// Passes everything through; until [`Sniff::stop`], copies up to [`SHOWN_BYTES`] read bytes.
#[derive(Debug)]
pub(crate) struct Sniff<S> {
    inner: S,
    pub(crate) first: Vec<u8>,
    recording: bool,
}

impl<S> Sniff<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            first: Vec::new(),
            recording: true,
        }
    }

    /// The stream underneath.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream underneath, mutably.
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The handshake is over: record nothing more, free the copy.
    pub(crate) fn stop(&mut self) {
        self.recording = false;
        self.first = Vec::new();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.recording && this.first.len() < SHOWN_BYTES {
            let new = &buf.filled()[before..];
            let room = SHOWN_BYTES - this.first.len();
            this.first.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
