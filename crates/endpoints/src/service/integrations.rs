//! Serving frameworks on any listener: axum's `Listener` (feature `axum`), and a stream of
//! connections for hyper-util and other `serve_incoming`-style servers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use endpoints_core::{Connection, Listener};

/// Every connection of `listener`, as a `futures_core::Stream` (for hyper-util's
/// `serve_connection` loops and servers that take an incoming stream). Ends after a fatal
/// listener error, which it yields first.
pub fn incoming(listener: Box<dyn Listener>) -> Incoming {
    Incoming {
        listener: Some(listener),
        pending: None,
    }
}

type Accepting =
    Pin<Box<dyn std::future::Future<Output = (Box<dyn Listener>, io::Result<Connection>)> + Send>>;

/// The stream returned by [`incoming`].
pub struct Incoming {
    listener: Option<Box<dyn Listener>>,
    pending: Option<Accepting>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}

impl futures_core::Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending.is_none() {
            let Some(mut l) = self.listener.take() else {
                return Poll::Ready(None);
            };
            self.pending = Some(Box::pin(async move {
                let r = l.accept().await;
                (l, r)
            }));
        }
        let Some(fut) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((l, r)) => {
                self.pending = None;
                if r.is_ok() {
                    self.listener = Some(l);
                }
                Poll::Ready(Some(r))
            }
        }
    }
}

/// Any endpoint listener as an [`axum::serve::Listener`]: `axum::serve(AxumListener::from(l),
/// app)` serves HTTP on `tcp:`, `unix:`, `haproxy:tcp:`, `ssl:`, `systemd:`...
///
/// Serve with `app.into_make_service_with_connect_info::<ConnectionInfo>()` for handlers to
/// see the whole connection ([`ConnectionInfo`]: the peer, the local address and the
/// extensions: PROXY header, `TlsInfo`, unix peer credentials), or with
/// `::<PeerAddr>()` for the peer only. [`serve_axum`] does the former on several listeners.
///
/// Accepting keeps the endpoint's never-deaf policy; if the listener fails outright, the error
/// is logged and accepting is retried every second (axum's `accept` cannot fail).
#[cfg(feature = "axum")]
#[derive(Debug)]
pub struct AxumListener(Box<dyn Listener>);

#[cfg(feature = "axum")]
impl From<Box<dyn Listener>> for AxumListener {
    fn from(l: Box<dyn Listener>) -> Self {
        Self(l)
    }
}

#[cfg(feature = "axum")]
impl axum::serve::Listener for AxumListener {
    type Io = Connection;
    type Addr = endpoints_core::Address;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(mut conn) => {
                    let peer = conn.peer_addr().clone();
                    // The extensions move to a shared `ConnectionInfo` that axum's connect
                    // info can clone (the stream itself only carries bytes from here on).
                    let info = ConnectionInfo {
                        peer: peer.clone(),
                        local: conn.local_addr().clone(),
                        extensions: std::sync::Arc::new(std::mem::take(conn.extensions_mut())),
                    };
                    conn.extensions_mut().insert(info);
                    return (conn, peer);
                }
                Err(e) => {
                    tracing::error!(listener = %self.0, error = %e, "accept failed; retrying in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection as tonic's server wants it: [`tonic::transport::server::Connected`] with the
/// peer [`Address`](endpoints_core::Address) as connect info.
#[cfg(feature = "tonic")]
#[derive(Debug)]
pub struct TonicIo(pub Connection);

#[cfg(feature = "tonic")]
impl tonic::transport::server::Connected for TonicIo {
    type ConnectInfo = endpoints_core::Address;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.peer_addr().clone()
    }
}

#[cfg(feature = "tonic")]
impl tokio::io::AsyncRead for TonicIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

#[cfg(feature = "tonic")]
impl tokio::io::AsyncWrite for TonicIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// [`incoming`] for tonic: `Server::builder().add_service(svc).serve_with_incoming(
/// tonic_incoming(listener))` serves gRPC on any endpoint listener.
#[cfg(feature = "tonic")]
pub fn tonic_incoming(
    listener: Box<dyn Listener>,
) -> impl futures_core::Stream<Item = io::Result<TonicIo>> + Send {
    TonicIncoming(incoming(listener))
}

#[cfg(feature = "tonic")]
struct TonicIncoming(Incoming);

#[cfg(feature = "tonic")]
impl futures_core::Stream for TonicIncoming {
    type Item = io::Result<TonicIo>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(TonicIo)))
    }
}

/// The peer of an axum connection, for `ConnectInfo<PeerAddr>` (the real client behind a
/// `haproxy:` listener): serve with `app.into_make_service_with_connect_info::<PeerAddr>()`.
#[cfg(feature = "axum")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub endpoints_core::Address);

#[cfg(feature = "axum")]
impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, AxumListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, AxumListener>) -> Self {
        Self(stream.remote_addr().clone())
    }
}

/// Everything known about an axum connection, for `ConnectInfo<ConnectionInfo>`: serve with
/// `app.into_make_service_with_connect_info::<ConnectionInfo>()` (or [`serve_axum`]).
///
/// ```no_run
/// # #[cfg(feature = "proxy")]
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, extract::ConnectInfo, routing::get};
/// use endpoints::service::{AxumListener, ConnectionInfo};
///
/// async fn who(ConnectInfo(c): ConnectInfo<ConnectionInfo>) -> String {
///     let via = c.get::<endpoints::proxy::ProxyHeader>().and_then(|h| h.destination.clone());
///     format!("you are {} (we are {}, reached at {via:?})", c.peer, c.local)
/// }
/// let app = Router::new().route("/", get(who));
/// let listener = AxumListener::from(endpoints::listen("haproxy:tcp:8080").await?);
/// axum::serve(listener, app.into_make_service_with_connect_info::<ConnectionInfo>()).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "axum")]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer (behind a `haproxy:` listener, the client the PROXY header names).
    pub peer: endpoints_core::Address,
    /// This end of the connection (the listener's address).
    pub local: endpoints_core::Address,
    /// What the endpoints attached: `ProxyHeader`, `TlsInfo`, `PeerCredentials`...
    pub extensions: std::sync::Arc<endpoints_core::Extensions>,
}

#[cfg(feature = "axum")]
impl ConnectionInfo {
    /// The extension of type `T` (`c.get::<endpoints::tls::TlsInfo>()`), if the connection
    /// has one.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions.get::<T>()
    }
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, AxumListener>>
    for ConnectionInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, AxumListener>) -> Self {
        let conn = stream.io();
        conn.extensions()
            .get::<ConnectionInfo>()
            .cloned()
            .unwrap_or_else(|| Self {
                peer: conn.peer_addr().clone(),
                local: conn.local_addr().clone(),
                extensions: std::sync::Arc::default(),
            })
    }
}

/// Serve one axum app on every listener, with [`ConnectionInfo`] as connect info (so
/// handlers can take `ConnectInfo<ConnectionInfo>`). Runs until a listener's server fails
/// (its error is returned; the others are stopped) or every one ends: it has no shutdown.
/// To stop on a signal and drain, use [`serve_axum_with_shutdown`].
///
/// ```no_run
/// # async fn demo(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// let listeners = vec![
///     endpoints::listen("tcp:8080").await?,
///     endpoints::listen("unix:/run/app.sock").await?,
/// ];
/// endpoints::service::serve_axum(listeners, app).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "axum")]
pub async fn serve_axum(
    listeners: impl IntoIterator<Item = Box<dyn Listener>>,
    app: axum::Router,
) -> io::Result<()> {
    let mut servers = tokio::task::JoinSet::new();
    for l in listeners {
        let app = app.clone();
        servers.spawn(async move {
            axum::serve(
                AxumListener::from(l),
                app.into_make_service_with_connect_info::<ConnectionInfo>(),
            )
            .await
        });
    }
    while let Some(done) = servers.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    Ok(())
}

/// [`serve_axum`] with a graceful shutdown, as [`ServerService`](super::ServerService) does
/// it: serve until `signal` completes, then stop accepting (every listener is closed), tell
/// each connection to finish (hyper's graceful shutdown: an idle keep-alive connection is
/// closed at once, a request in flight gets its response, then the connection closes), wait
/// up to `deadline` for them, and close (abort) the rest. Returns what the drain did.
///
/// `signal` is any future: SIGTERM (`tokio::signal::unix::signal(SignalKind::terminate())`,
/// installed by the application: the library does not touch signal handlers), a channel, a
/// [`Shutdown`](super::Shutdown)'s `signalled()`. HTTP/1, with hyper's 30 s bound on reading a request head;
/// if a listener fails outright, it stops accepting (logged at ERROR) and the others go on.
///
/// ```no_run
/// # async fn demo(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tokio::signal::unix::{SignalKind, signal};
///
/// let mut term = signal(SignalKind::terminate())?;
/// let listeners = vec![endpoints::listen("tcp:8080").await?];
/// let report = endpoints::service::serve_axum_with_shutdown(
///     listeners,
///     app,
///     async move { term.recv().await; },
///     Duration::from_secs(10),
/// )
/// .await;
/// eprintln!("drained {}, aborted {}", report.drained, report.aborted);
/// # Ok(()) }
/// ```
#[cfg(feature = "axum")]
pub async fn serve_axum_with_shutdown(
    listeners: impl IntoIterator<Item = Box<dyn Listener>>,
    app: axum::Router,
    signal: impl std::future::Future<Output = ()> + Send,
    deadline: std::time::Duration,
) -> super::ShutdownReport {
    let server = super::ServerService::serve_listeners(
        listeners.into_iter().collect(),
        move |conn, shutdown| serve_axum_connection(app.clone(), conn, shutdown),
    );
    signal.await;
    server.shutdown(deadline).await
}

/// One connection of [`serve_axum_with_shutdown`]: HTTP/1 by hyper, `ConnectInfo<ConnectionInfo>`
/// in every request, a graceful shutdown when `shutdown` fires.
#[cfg(feature = "axum")]
async fn serve_axum_connection(app: axum::Router, mut conn: Connection, shutdown: super::Shutdown) {
    use tower_service::Service as _;

    let info = axum::extract::ConnectInfo(ConnectionInfo {
        peer: conn.peer_addr().clone(),
        local: conn.local_addr().clone(),
        extensions: std::sync::Arc::new(std::mem::take(conn.extensions_mut())),
    });
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(info.clone());
            // A Router is always ready; its error type is `Infallible`.
            app.clone().call(request)
        });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(hyper_util::rt::TokioIo::new(conn), service)
        .with_upgrades();
    let mut http = std::pin::pin!(http);
    let result = tokio::select! {
        r = http.as_mut() => r,
        () = shutdown.signalled() => {
            http.as_mut().graceful_shutdown();
            http.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}
