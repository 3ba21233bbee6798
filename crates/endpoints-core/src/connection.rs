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

/// Declared in a connection's [`Extensions`] by a transport whose data ends when something it
/// watches ends, not when its peer stops sending: for `exec:`, the program's exit. A quiet
/// period there is the program at work (an inetd-style handler that reads its request, then
/// takes a while to answer), not a peer that went away. So a relay that gives up on a quiet
/// direction once the other has ended (the `endpoints` command's `--linger`) lets the
/// direction reading from such a connection run until it ends by itself (its idle timeout,
/// if one was asked for, still applies).
///
/// ```
/// use endpoints_core::{Address, Connection, EndsByItself};
/// # let (a, _b) = tokio::io::duplex(64);
/// let mut conn = Connection::new(a, Address::Unnamed, Address::Unnamed);
/// conn.extensions_mut().insert(EndsByItself::new("the program's exit"));
/// assert!(conn.extensions().get::<EndsByItself>().is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndsByItself {
    /// What ends the data, in words for a log line (`the program's exit`).
    pub when: &'static str,
}

impl EndsByItself {
    /// A declaration that the data ends at `when`.
    pub const fn new(when: &'static str) -> Self {
        Self { when }
    }
}

/// The future [`Delivery::wait`] returns.
pub type DeliveryFuture = Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send>>;

/// Declared in a connection's [`Extensions`] by a transport whose last bytes can still be on
/// their way after the stream is shut down and dropped: an SSH channel (`ssh:`), whose server
/// writes them on to the far end and confirms with its own close. Dropping the connection
/// starts that handshake in the background; a program that ends once its connection ends
/// (the `endpoints` command's `connect`) drops the connection, then waits for
/// [`Delivery::wait`] before it exits, so that its exit does not cut the bytes off. The
/// future resolves within the transport's own bound once the connection is dropped: `Ok` when
/// the far end confirmed everything written before the shutdown, an error (a truncation, to
/// be reported as one) when it did not.
///
/// ```
/// use endpoints_core::{Address, Connection, Delivery};
/// # let (a, _b) = tokio::io::duplex(64);
/// let mut conn = Connection::new(a, Address::Unnamed, Address::Unnamed);
/// conn.extensions_mut()
///     .insert(Delivery::new("the SSH server's close", || async { Ok(()) }));
/// let delivery = conn.extensions().get::<Delivery>().cloned();
/// drop(conn);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// if let Some(d) = delivery {
///     d.wait().await.expect("delivered");
/// }
/// # });
/// ```
#[derive(Clone)]
pub struct Delivery {
    /// What confirms the delivery, in words for a log line (`the SSH server's close`).
    pub what: &'static str,
    wait: std::sync::Arc<dyn Fn() -> DeliveryFuture + Send + Sync>,
}

impl Delivery {
    /// A declaration that delivery is confirmed when the future `wait` makes resolves.
    pub fn new<F, Fut>(what: &'static str, wait: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
    {
        Self {
            what,
            wait: std::sync::Arc::new(move || Box::pin(wait()) as DeliveryFuture),
        }
    }

    /// Resolves once the bytes are confirmed delivered (`Ok`) or known not to be (an error
    /// saying why).
    pub fn wait(&self) -> DeliveryFuture {
        (self.wait)()
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

/// How a wrapper's stream sits over the [`Connection`] beneath it (TLS over TCP, a PROXY
/// header's leftover bytes over the socket). A wrapper declares one as a `static` and builds
/// its connection with [`Connection::with_layer`]; callers then reach the socket beneath
/// ([`Connection::beneath`]) and learn whether the bytes they would move there are the same
/// ([`Connection::transforms`], [`Connection::buffered_above`]) without knowing the
/// wrapper's type. The `endpoints relay` command uses it to `splice(2)` the socket under a
/// `haproxy:` listener, and to reset the TCP socket under TLS.
///
/// ```
/// use endpoints_core::{Address, Connection, Layer};
///
/// /// A wrapper that passes bytes through unchanged.
/// #[derive(Debug)]
/// struct Counting { inner: Connection, read: u64 }
/// # impl tokio::io::AsyncRead for Counting {
/// #     fn poll_read(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>> { std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) }
/// # }
/// # impl tokio::io::AsyncWrite for Counting {
/// #     fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> { std::pin::Pin::new(&mut self.inner).poll_write(cx, buf) }
/// #     fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> { std::pin::Pin::new(&mut self.inner).poll_flush(cx) }
/// #     fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> { std::pin::Pin::new(&mut self.inner).poll_shutdown(cx) }
/// # }
///
/// static COUNTING: Layer<Counting> = Layer::<Counting>::new(|c| &c.inner, |c| &mut c.inner)
///     .passing_bytes_through(|_| 0, |_| Vec::new());
///
/// # let (a, _b) = tokio::io::duplex(64);
/// let beneath = Connection::new(a, Address::Unnamed, Address::Unnamed);
/// let (local, peer) = (beneath.local_addr().clone(), beneath.peer_addr().clone());
/// let conn = Connection::new(Counting { inner: beneath, read: 0 }, local, peer)
///     .with_layer(&COUNTING);
/// assert!(conn.beneath().is_some());
/// assert!(!conn.transforms());
/// ```
pub struct Layer<T> {
    beneath: fn(&T) -> &Connection,
    beneath_mut: fn(&mut T) -> &mut Connection,
    /// `None`: the layer transforms the bytes (TLS).
    through: Option<Through<T>>,
}

/// How a pass-through layer counts and takes the bytes it holds.
type Through<T> = (fn(&T) -> usize, fn(&mut T) -> Vec<u8>);

impl<T: Stream> Layer<T> {
    /// A layer whose stream holds the connection beneath, reached with `beneath` and
    /// `beneath_mut`. It transforms the bytes (like TLS) unless
    /// [`passing_bytes_through`](Self::passing_bytes_through) says otherwise.
    pub const fn new(
        beneath: fn(&T) -> &Connection,
        beneath_mut: fn(&mut T) -> &mut Connection,
    ) -> Self {
        Self {
            beneath,
            beneath_mut,
            through: None,
        }
    }

    /// The layer's bytes are those of the connection beneath, after the bytes it holds above
    /// it: `buffered` says how many, `take_buffered` takes them (later reads then go straight
    /// to the connection beneath).
    pub const fn passing_bytes_through(
        self,
        buffered: fn(&T) -> usize,
        take_buffered: fn(&mut T) -> Vec<u8>,
    ) -> Self {
        Self {
            through: Some((buffered, take_buffered)),
            ..self
        }
    }
}

impl<T> fmt::Debug for Layer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("stream", &std::any::type_name::<T>())
            .field("transforms", &self.through.is_none())
            .finish()
    }
}

/// A [`Layer`] of some stream type, used through the connection's boxed stream.
trait AnyLayer: Send + Sync + fmt::Debug {
    fn beneath<'a>(&self, s: &'a dyn Stream) -> Option<&'a Connection>;
    fn beneath_mut<'a>(&self, s: &'a mut dyn Stream) -> Option<&'a mut Connection>;
    fn transforms(&self) -> bool;
    fn buffered(&self, s: &dyn Stream) -> usize;
    fn take_buffered(&self, s: &mut dyn Stream) -> Vec<u8>;
}

impl<T: Stream> AnyLayer for Layer<T> {
    fn beneath<'a>(&self, s: &'a dyn Stream) -> Option<&'a Connection> {
        let any: &dyn Any = s;
        any.downcast_ref::<T>().map(self.beneath)
    }
    fn beneath_mut<'a>(&self, s: &'a mut dyn Stream) -> Option<&'a mut Connection> {
        let any: &mut dyn Any = s;
        any.downcast_mut::<T>().map(self.beneath_mut)
    }
    fn transforms(&self) -> bool {
        self.through.is_none()
    }
    fn buffered(&self, s: &dyn Stream) -> usize {
        let any: &dyn Any = s;
        match (self.through, any.downcast_ref::<T>()) {
            (Some((buffered, _)), Some(t)) => buffered(t),
            _ => 0,
        }
    }
    fn take_buffered(&self, s: &mut dyn Stream) -> Vec<u8> {
        let any: &mut dyn Any = s;
        match (self.through, any.downcast_mut::<T>()) {
            (Some((_, take)), Some(t)) => take(t),
            _ => Vec::new(),
        }
    }
}

/// How a stream moves its bytes through descriptors of its own, with nothing held above
/// them: what it reads comes from one descriptor, what it writes goes to another (a
/// program's stdout and stdin pipes for `exec:`). Declared like a [`Layer`], with
/// [`Connection::with_descriptors`]; a caller may then move bytes with system calls on
/// duplicates of them (the `endpoints relay` command `splice(2)`s them to and from a socket),
/// as long as it keeps to the stream for the two ends:
///
/// * once the read descriptor has given end of file, a read of the stream gives the stream's
///   end: `Ok` with no bytes, or the error that ends it (for `exec:`, a failed exit);
/// * to end what it writes, the caller closes its duplicate of the write descriptor, then
///   shuts the stream's write side down (which closes the stream's own).
///
/// A function returns `None` once its side is closed.
#[cfg(unix)]
pub struct Descriptors<T> {
    read: fn(&T) -> Option<std::os::fd::BorrowedFd<'_>>,
    write: fn(&T) -> Option<std::os::fd::BorrowedFd<'_>>,
}

#[cfg(unix)]
impl<T: Stream> Descriptors<T> {
    /// The descriptor a `T` reads from (`read`) and the one it writes to (`write`).
    pub const fn new(
        read: fn(&T) -> Option<std::os::fd::BorrowedFd<'_>>,
        write: fn(&T) -> Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Self {
        Self { read, write }
    }
}

#[cfg(unix)]
impl<T> fmt::Debug for Descriptors<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptors")
            .field("stream", &std::any::type_name::<T>())
            .finish()
    }
}

/// [`Descriptors`] of some stream type, used through the connection's boxed stream.
#[cfg(unix)]
trait AnyDescriptors: Send + Sync + fmt::Debug {
    fn read<'a>(&self, s: &'a dyn Stream) -> Option<std::os::fd::BorrowedFd<'a>>;
    fn write<'a>(&self, s: &'a dyn Stream) -> Option<std::os::fd::BorrowedFd<'a>>;
}

#[cfg(unix)]
impl<T: Stream> AnyDescriptors for Descriptors<T> {
    fn read<'a>(&self, s: &'a dyn Stream) -> Option<std::os::fd::BorrowedFd<'a>> {
        let any: &dyn Any = s;
        any.downcast_ref::<T>().and_then(self.read)
    }
    fn write<'a>(&self, s: &'a dyn Stream) -> Option<std::os::fd::BorrowedFd<'a>> {
        let any: &dyn Any = s;
        any.downcast_ref::<T>().and_then(self.write)
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
    layer: Option<&'static dyn AnyLayer>,
    #[cfg(unix)]
    descriptors: Option<&'static dyn AnyDescriptors>,
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
    /// The wrapper's [`Layer`], kept for a connection rebuilt around the same stream.
    layer: Option<&'static dyn AnyLayer>,
    /// The stream's [`Descriptors`], kept likewise.
    #[cfg(unix)]
    descriptors: Option<&'static dyn AnyDescriptors>,
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
            layer: None,
            #[cfg(unix)]
            descriptors: None,
        }
    }

    /// Rebuild a connection from its parts.
    pub fn from_parts(parts: Parts) -> Self {
        Self {
            stream: parts.stream,
            local: parts.local,
            peer: parts.peer,
            extensions: parts.extensions,
            layer: parts.layer,
            #[cfg(unix)]
            descriptors: parts.descriptors,
        }
    }

    /// Take the connection apart.
    pub fn into_parts(self) -> Parts {
        Parts {
            stream: self.stream,
            local: self.local,
            peer: self.peer,
            extensions: self.extensions,
            layer: self.layer,
            #[cfg(unix)]
            descriptors: self.descriptors,
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

    /// Declare how this connection's stream (a `T`) sits over the connection beneath it; see
    /// [`Layer`]. A stream of another type makes the declaration void.
    pub fn with_layer<T: Stream>(mut self, layer: &'static Layer<T>) -> Self {
        self.layer = Some(layer);
        self
    }

    /// The connection beneath this one's stream, if the wrapper that made it declared a
    /// [`Layer`] (TLS, `haproxy:`). Walk down to reach the socket.
    pub fn beneath(&self) -> Option<&Connection> {
        self.layer?.beneath(&*self.stream)
    }

    /// The connection beneath, mutably.
    pub fn beneath_mut(&mut self) -> Option<&mut Connection> {
        self.layer?.beneath_mut(&mut *self.stream)
    }

    /// Whether the bytes read from and written to this connection differ from those of the
    /// connection beneath (TLS). `false` for a plain stream and for a wrapper that passes
    /// bytes through (a PROXY header's leftover bytes, then the socket).
    pub fn transforms(&self) -> bool {
        self.layer.is_some_and(|l| l.transforms())
    }

    /// How many bytes this connection's wrapper read from the connection beneath and holds,
    /// not yet read (0 for a transforming layer, which cannot tell).
    pub fn buffered_above(&self) -> usize {
        self.layer.map_or(0, |l| l.buffered(&*self.stream))
    }

    /// Take the bytes of [`buffered_above`](Self::buffered_above): later reads go straight
    /// to the connection beneath (for a caller that moves the rest of the stream itself).
    pub fn take_buffered_above(&mut self) -> Vec<u8> {
        match self.layer {
            Some(l) => l.take_buffered(&mut *self.stream),
            None => Vec::new(),
        }
    }

    /// Declare the descriptors this connection's stream (a `T`) reads from and writes to; see
    /// [`Descriptors`]. A stream of another type makes the declaration void.
    #[cfg(unix)]
    pub fn with_descriptors<T: Stream>(mut self, descriptors: &'static Descriptors<T>) -> Self {
        self.descriptors = Some(descriptors);
        self
    }

    /// The descriptor the stream reads from, if it declared one ([`Descriptors`]) and that
    /// side is open.
    #[cfg(unix)]
    pub fn read_descriptor(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.descriptors?.read(&*self.stream)
    }

    /// The descriptor the stream writes to, if it declared one ([`Descriptors`]) and that
    /// side is open.
    #[cfg(unix)]
    pub fn write_descriptor(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.descriptors?.write(&*self.stream)
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
mod layer_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, DuplexStream};

    /// A wrapper holding some bytes above the connection beneath (like a PROXY header's
    /// leftovers), then passing bytes through.
    #[derive(Debug)]
    struct Held {
        held: Vec<u8>,
        inner: Connection,
    }

    impl AsyncRead for Held {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !self.held.is_empty() {
                let n = self.held.len().min(buf.remaining());
                buf.put_slice(&self.held[..n]);
                self.held.drain(..n);
                return Poll::Ready(Ok(()));
            }
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Held {
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
    }

    static THROUGH: Layer<Held> = Layer::<Held>::new(|h| &h.inner, |h| &mut h.inner)
        .passing_bytes_through(|h| h.held.len(), |h| std::mem::take(&mut h.held));
    static OPAQUE: Layer<Held> = Layer::<Held>::new(|h| &h.inner, |h| &mut h.inner);
    static OTHER_TYPE: Layer<DuplexStream> = Layer::<DuplexStream>::new(
        |_| unreachable!("never a duplex stream here"),
        |_| unreachable!("never a duplex stream here"),
    );

    fn wrapped(layer: &'static Layer<Held>) -> (Connection, DuplexStream) {
        let (a, b) = tokio::io::duplex(64);
        let beneath = Connection::new(a, Address::Unnamed, Address::Unnamed);
        let held = Held {
            held: b"early".to_vec(),
            inner: beneath,
        };
        (
            Connection::new(held, Address::Unnamed, Address::Unnamed).with_layer(layer),
            b,
        )
    }

    #[tokio::test]
    async fn a_pass_through_layer_shows_the_stream_beneath_and_its_buffered_bytes() {
        let (mut c, _peer) = wrapped(&THROUGH);
        assert!(!c.transforms());
        assert_eq!(c.buffered_above(), 5);
        assert!(
            c.beneath()
                .is_some_and(|b| b.stream_ref::<DuplexStream>().is_some())
        );
        assert!(c.beneath_mut().is_some());
        // Survives being taken apart and rebuilt around the same stream.
        let mut c = Connection::from_parts(c.into_parts());
        assert_eq!(c.take_buffered_above(), b"early");
        assert_eq!(c.buffered_above(), 0);
        let beneath = c.beneath().expect("beneath");
        assert!(
            beneath.beneath().is_none(),
            "a plain stream has nothing beneath"
        );
        assert!(!beneath.transforms());
    }

    #[tokio::test]
    async fn a_transforming_layer_hides_its_bytes() {
        let (mut c, _peer) = wrapped(&OPAQUE);
        assert!(c.transforms());
        assert_eq!(c.buffered_above(), 0);
        assert!(c.take_buffered_above().is_empty());
        assert!(c.beneath().is_some());
        let mut first = [0; 5];
        c.read_exact(&mut first).await.expect("read");
        assert_eq!(
            &first, b"early",
            "the bytes stay readable through the wrapper"
        );
    }

    #[tokio::test]
    async fn a_layer_of_another_stream_type_is_void() {
        let (a, _b) = tokio::io::duplex(64);
        let beneath = Connection::new(a, Address::Unnamed, Address::Unnamed);
        let held = Held {
            held: Vec::new(),
            inner: beneath,
        };
        let c = Connection::new(held, Address::Unnamed, Address::Unnamed).with_layer(&OTHER_TYPE);
        assert!(c.beneath().is_none());
        assert_eq!(c.buffered_above(), 0);
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
