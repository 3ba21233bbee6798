//! axum serving HTTP on endpoint listeners (`--features axum`), requested with curl; and the
//! incoming-connection stream.
#![cfg(feature = "axum")]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use endpoints::service::{AxumListener, incoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve(desc: &str) -> endpoints::Address {
    let listener = endpoints::listen(desc).await.expect("listen");
    let at = listener.local_addr().expect("bound");
    let app = Router::new().route("/", get(|| async { "hello from an endpoint" }));
    tokio::spawn(async move { axum::serve(AxumListener::from(listener), app).await });
    at
}

async fn curl(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl finished")
    .expect("curl ran");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_on_tcp_unix_and_haproxy() {
    if !endpoints_conformance::peer_program("curl", "--version", "curl") {
        return;
    }
    let tcp = serve("tcp:0:interface=127.0.0.1").await;
    let url = format!("http://{}/", tcp.ip().expect("ip"));
    assert_eq!(curl(&[&url]).await, "hello from an endpoint");

    let sock = std::env::temp_dir().join(format!("endpoints-axum-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    serve(&format!("unix:{}", sock.display())).await;
    assert_eq!(
        curl(&[
            "--unix-socket",
            &sock.display().to_string(),
            "http://localhost/"
        ])
        .await,
        "hello from an endpoint"
    );

    let proxied = serve("haproxy:tcp:0:interface=127.0.0.1").await;
    let url = format!("http://{}/", proxied.ip().expect("ip"));
    assert_eq!(
        curl(&["--haproxy-protocol", &url]).await,
        "hello from an endpoint"
    );
}

#[tokio::test]
async fn incoming_is_a_stream_of_connections() {
    use std::future::poll_fn;
    use std::pin::Pin;

    let listener = endpoints::listen("tcp:0:interface=127.0.0.1")
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("bound").ip().expect("ip");
    let mut stream = incoming(listener);
    for i in 0..3u8 {
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client.write_all(&[i]).await.expect("write");
        let next = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut stream), cx)).await;
        let mut conn = next.expect("an item").expect("a connection");
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).await.expect("read");
        assert_eq!(b[0], i);
    }
}

/// The whole connection through connect info: needs the `haproxy:`, `ssl:` and `unix:` types.
#[cfg(all(feature = "proxy", feature = "tls", feature = "unix"))]
mod whole_connection {
    use super::*;
    use axum::extract::ConnectInfo;
    use endpoints::service::{ConnectionInfo, serve_axum};

    /// What a handler can see of its connection through `ConnectInfo<ConnectionInfo>`.
    async fn whole_connection(ConnectInfo(c): ConnectInfo<ConnectionInfo>) -> String {
        let proxy = c.get::<endpoints::proxy::ProxyHeader>();
        let tls = c.get::<endpoints::tls::TlsInfo>();
        let creds = c.get::<endpoints::unix::PeerCredentials>();
        format!(
            "peer={} local={} proxy-src={} proxy-dst={} sni={} uid={}",
            c.peer,
            c.local,
            proxy
                .and_then(|h| h.source.as_ref())
                .map(ToString::to_string)
                .unwrap_or_default(),
            proxy
                .and_then(|h| h.destination.as_ref())
                .map(ToString::to_string)
                .unwrap_or_default(),
            tls.and_then(|t| t.sni.clone()).unwrap_or_default(),
            creds.map(|c| c.uid.to_string()).unwrap_or_default(),
        )
    }

    fn field<'a>(body: &'a str, name: &str) -> &'a str {
        body.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no `{name}` in {body:?}"))
    }

    async fn serve_with_info(desc: &str) -> endpoints::Address {
        let listener = endpoints::listen(desc).await.expect("listen");
        let at = listener.local_addr().expect("bound");
        let app = Router::new().route("/", get(whole_connection));
        tokio::spawn(async move {
            axum::serve(
                AxumListener::from(listener),
                app.into_make_service_with_connect_info::<ConnectionInfo>(),
            )
            .await
        });
        at
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn axum_sees_the_proxy_header_tls_info_and_local_address() {
        if !endpoints_conformance::peer_program("curl", "--version", "curl") {
            return;
        }
        // Over `haproxy:`: curl's PROXY header names curl's socket as the source and the
        // listener as the destination; `peer` is the header's source.
        let at = serve_with_info("haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1").await;
        let url = format!("http://{}/", at.ip().expect("ip"));
        let body = curl(&["--haproxy-protocol", &url]).await;
        assert_eq!(field(&body, "proxy-dst"), at.to_string(), "{body}");
        assert_eq!(field(&body, "local"), at.to_string(), "{body}");
        assert_eq!(field(&body, "peer"), field(&body, "proxy-src"), "{body}");

        // Over `ssl:`: the name curl asked for (SNI).
        let dir = std::env::temp_dir().join(format!("endpoints-axum-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["app.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let pem = dir.join("server.pem");
        std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");
        std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let at = serve_with_info(&format!(
            "ssl:0:privateKey={}:interface=127.0.0.1",
            pem.display()
        ))
        .await;
        let port = at.ip().expect("ip").port();
        let body = curl(&[
            "-k",
            "--resolve",
            &format!("app.example:{port}:127.0.0.1"),
            &format!("https://app.example:{port}/"),
        ])
        .await;
        assert_eq!(field(&body, "sni"), "app.example", "{body}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_axum_serves_one_app_on_several_listeners() {
        if !endpoints_conformance::peer_program("curl", "--version", "curl") {
            return;
        }
        let tcp = endpoints::listen("tcp:0:interface=127.0.0.1")
            .await
            .expect("listen");
        let at = tcp.local_addr().expect("bound");
        let sock =
            std::env::temp_dir().join(format!("endpoints-axum-many-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let unix = endpoints::listen(&format!("unix:{}", sock.display()))
            .await
            .expect("listen");
        let app = Router::new().route("/", get(whole_connection));
        let server = tokio::spawn(serve_axum(vec![tcp, unix], app));
        let body = curl(&[&format!("http://{}/", at.ip().expect("ip"))]).await;
        assert_eq!(field(&body, "local"), at.to_string(), "{body}");
        let body = curl(&[
            "--unix-socket",
            &sock.display().to_string(),
            "http://localhost/",
        ])
        .await;
        assert_eq!(field(&body, "local"), sock.display().to_string(), "{body}");
        assert!(
            !field(&body, "uid").is_empty(),
            "unix peer credentials: {body}"
        );
        server.abort();
    }
}

/// Issue 31 item 8: `serve_axum_with_shutdown` stops on a signal and drains as
/// `ServerService` does (the old `serve_axum` could only be aborted).
mod graceful {
    use super::*;
    use axum::extract::ConnectInfo;
    use endpoints::service::{ConnectionInfo, serve_axum_with_shutdown};
    use tokio::net::TcpStream;

    /// `started` is told when a `/forever` request reaches its handler.
    fn app(started: tokio::sync::mpsc::UnboundedSender<()>) -> Router {
        Router::new()
            .route(
                "/",
                get(|ConnectInfo(c): ConnectInfo<ConnectionInfo>| async move {
                    format!("hello {}", c.peer)
                }),
            )
            // A request that never gets its answer: only the deadline ends it.
            .route(
                "/forever",
                get(move || async move {
                    let _ = started.send(());
                    std::future::pending::<String>().await
                }),
            )
    }

    /// One `GET path` on a kept-alive HTTP/1.1 connection; the body.
    async fn get_on(conn: &mut TcpStream, path: &str) -> String {
        conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
            .await
            .expect("send the request");
        let mut got = Vec::new();
        let mut b = [0u8; 1024];
        loop {
            let n = conn.read(&mut b).await.expect("read the response");
            assert!(n > 0, "closed before a whole response: {got:?}");
            got.extend_from_slice(&b[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .expect("a content-length")
                    .parse()
                    .expect("a number");
                if body.len() >= len {
                    return body.to_owned();
                }
            }
        }
    }

    /// Reads until the server closes: the bytes it sent, or the error.
    async fn read_to_close(conn: &mut TcpStream) -> std::io::Result<usize> {
        let mut all = Vec::new();
        conn.read_to_end(&mut all).await.map(|_| all.len())
    }

    /// A real SIGTERM (sent to this test process with kill(1), caught by the handler the
    /// application installs) ends the server: the idle keep-alive connection is closed at
    /// once, the listener is closed, and the drain does not wait for its deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_closes_an_idle_keep_alive_connection_and_ends_the_server() {
        use tokio::signal::unix::{SignalKind, signal};
        // Only this test in the binary sends SIGTERM; the handler is installed before it is.
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        let listener = endpoints::listen("tcp:0:interface=127.0.0.1")
            .await
            .expect("listen");
        let at = listener.local_addr().expect("bound").ip().expect("ip");
        let server = tokio::spawn(serve_axum_with_shutdown(
            vec![listener],
            app(tokio::sync::mpsc::unbounded_channel().0),
            async move {
                term.recv().await;
            },
            // An hour: had the drain waited for its deadline, the bound below would fail.
            Duration::from_secs(3600),
        ));
        let mut idle = TcpStream::connect(at).await.expect("connect");
        let me = idle.local_addr().expect("local");
        assert_eq!(get_on(&mut idle, "/").await, format!("hello {me}"));
        assert_eq!(
            get_on(&mut idle, "/").await,
            format!("hello {me}"),
            "kept alive"
        );

        let kill = tokio::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .await
            .expect("kill(1) runs");
        assert!(kill.success());
        // Expected within milliseconds; 60 s only turns a hang into a failure.
        let closed = tokio::time::timeout(Duration::from_secs(60), read_to_close(&mut idle))
            .await
            .expect("the idle connection was closed");
        assert_eq!(closed.expect("a clean close"), 0, "no bytes, a FIN");
        let report = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("the server ended without waiting for its deadline")
            .expect("no panic");
        assert_eq!((report.drained, report.aborted), (1, 0), "{report:?}");
        assert!(
            TcpStream::connect(at).await.is_err(),
            "the listener is closed"
        );
    }

    /// A request still running at the deadline is cut (its connection closed without an
    /// answer) and counted as aborted; an idle connection next to it is drained.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_still_running_at_the_deadline_is_aborted() {
        let listener = endpoints::listen("tcp:0:interface=127.0.0.1")
            .await
            .expect("listen");
        let at = listener.local_addr().expect("bound").ip().expect("ip");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, mut in_flight) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(serve_axum_with_shutdown(
            vec![listener],
            app(started),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        let mut idle = TcpStream::connect(at).await.expect("connect");
        get_on(&mut idle, "/").await;
        let mut busy = TcpStream::connect(at).await.expect("connect");
        busy.write_all(b"GET /forever HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("send");
        in_flight
            .recv()
            .await
            .expect("the request reached its handler");
        stop.send(()).expect("the server waits for the signal");
        // The deadline is 1 s; 60 s only turns a hang into a failure.
        let report = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("the server ended at its deadline")
            .expect("no panic");
        assert_eq!(report.aborted, 1, "{report:?}");
        assert_eq!(report.drained, 1, "{report:?}");
        match tokio::time::timeout(Duration::from_secs(60), read_to_close(&mut busy))
            .await
            .expect("closed")
        {
            Ok(n) => assert_eq!(n, 0, "closed without an answer"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(60), read_to_close(&mut idle))
                .await
                .expect("closed")
                .expect("a clean close"),
            0
        );
    }
}
