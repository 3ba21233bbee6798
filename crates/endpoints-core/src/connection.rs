//! [`Connection`]: a byte stream with its addresses and typed extension data.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::address::Address;

/// A byte stream a [`Connection`] can carry: any tokio stream that is `Send + Unpin`.
///
/// It is implemented for every such type; the `Any` supertrait lets callers get the concrete
/// stream back ([`Connection::stream_ref`]), for example to reach a `TcpStream`'s socket
/// options or its file descriptor.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + fmt::Debug + Any {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + fmt::Debug + Any> Stream for T {}

/// Typed data attached to a connection by the endpoints that made it (TLS details, the
/// PROXY header, unix peer credentials). One value per type; wrappers keep what the inner
/// connection had.
#[derive(Default)]
pub struct Extensions {
    map: Option<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// Empty (allocates nothing until the first insert).
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert a value, returning the previous value of that type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_with(Default::default)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| (old as Box<dyn Any>).downcast().ok().map(|b| *b))
    }

    /// The value of type `T`, if any.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.as_ref()?.get(&TypeId::of::<T>())?.downcast_ref()
    }

    /// The value of type `T`, mutably.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())?
            .downcast_mut()
    }

    /// Remove and return the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|old| (old as Box<dyn Any>).downcast().ok().map(|b| *b))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Move every value of `other` into `self` (values of `self` win on a clash).
    pub fn extend(&mut self, other: Extensions) {
        let Some(theirs) = other.map else { return };
        let mine = self.map.get_or_insert_with(Default::default);
        for (k, v) in theirs {
            mine.entry(k).or_insert(v);
        }
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.len())
            .finish()
    }
}

/// An established connection: the stream, both addresses and [`Extensions`].
///
/// It is itself an `AsyncRead + AsyncWrite`, so it can be used directly with tokio's I/O
/// utilities. Wrappers (TLS, PROXY) take it apart with [`into_parts`](Self::into_parts) and
/// build a new one with the extensions carried over.
pub struct Connection {
    stream: Box<dyn Stream>,
    local: Address,
    peer: Address,
    extensions: Extensions,
}

/// The pieces of a [`Connection`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Parts {
    /// The byte stream.
    pub stream: Box<dyn Stream>,
    /// This end's address.
    pub local: Address,
    /// The other end's address.
    pub peer: Address,
    /// Extension data.
    pub extensions: Extensions,
}

impl Connection {
    /// A connection over `stream` between `local` and `peer`.
    pub fn new(stream: impl Stream, local: Address, peer: Address) -> Self {
        Self::from_boxed(Box::new(stream), local, peer)
    }

    /// Like [`new`](Self::new) for an already boxed stream.
    pub fn from_boxed(stream: Box<dyn Stream>, local: Address, peer: Address) -> Self {
        Self {
            stream,
            local,
            peer,
            extensions: Extensions::new(),
        }
    }

    /// Rebuild a connection from its parts.
    pub fn from_parts(parts: Parts) -> Self {
        Self {
            stream: parts.stream,
            local: parts.local,
            peer: parts.peer,
            extensions: parts.extensions,
        }
    }

    /// Take the connection apart.
    pub fn into_parts(self) -> Parts {
        Parts {
            stream: self.stream,
            local: self.local,
            peer: self.peer,
            extensions: self.extensions,
        }
    }

    /// This end's address.
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// The other end's address (for a `haproxy:` listener, the client named by the header).
    pub fn peer_addr(&self) -> &Address {
        &self.peer
    }

    /// Replace this end's address.
    pub fn set_local_addr(&mut self, a: Address) {
        self.local = a;
    }

    /// Replace the other end's address.
    pub fn set_peer_addr(&mut self, a: Address) {
        self.peer = a;
    }

    /// The extension data.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extension data, mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The concrete stream, if it is a `T` (for example `tokio::net::TcpStream`).
    pub fn stream_ref<T: Stream>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.stream;
        any.downcast_ref()
    }

    /// The concrete stream, mutably, if it is a `T`.
    pub fn stream_mut<T: Stream>(&mut self) -> Option<&mut T> {
        let any: &mut dyn Any = &mut *self.stream;
        any.downcast_mut()
    }

    /// The boxed stream, dropping addresses and extensions.
    pub fn into_stream(self) -> Box<dyn Stream> {
        self.stream
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("stream", &self.stream)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    #[derive(Debug, PartialEq)]
    struct Tag(&'static str);

    #[tokio::test]
    async fn delegates_io_and_downcasts() -> io::Result<()> {
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = Connection::new(a, Address::Unnamed, Address::Unnamed);
        c.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        assert!(c.stream_ref::<DuplexStream>().is_some());
        assert!(c.stream_ref::<tokio::net::TcpStream>().is_none());
        Ok(())
    }

    #[test]
    fn extensions_survive_rewrapping() {
        let (a, _b) = tokio::io::duplex(64);
        let mut c = Connection::new(a, Address::Unnamed, Address::Unnamed);
        assert!(c.extensions().is_empty());
        assert_eq!(c.extensions_mut().insert(Tag("tls")), None);
        let parts = c.into_parts();
        let mut outer = Connection::from_boxed(parts.stream, parts.local, parts.peer);
        outer.extensions_mut().insert(7u32);
        outer.extensions_mut().extend(parts.extensions);
        assert_eq!(outer.extensions().get::<Tag>(), Some(&Tag("tls")));
        assert_eq!(outer.extensions().get::<u32>(), Some(&7));
        assert_eq!(outer.extensions_mut().remove::<u32>(), Some(7));
        assert_eq!(outer.extensions().len(), 1);
    }
}
