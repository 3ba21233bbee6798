//! Our client against our server: over TCP, unix sockets and TLS; the handshake's details
//! reach both applications; keepalive pings.

use std::time::Duration;

use endpoints_core::escape;
use endpoints_ws::WsInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{
    connect, echo, listen, payload, pki, port_of, round_trip, sha256, temp_dir, within,
};

#[tokio::test]
async fn echo_over_tcp_with_path_subprotocol_headers_and_token() {
    let l = listen("ws:path=/tunnel:subprotocols=v2,v1:token=t0k:tcp:0:interface=127.0.0.1").await;
    let shown = l.to_string();
    assert!(shown.starts_with("ws:path=/tunnel:"), "{shown}");
    assert!(
        shown.contains("token=***") && !shown.contains("t0k"),
        "{shown}"
    );
    let port = port_of(&*l);
    let mut seen = echo(l);
    let conn = connect(&format!(
        "ws:127.0.0.1:{port}:path=/tunnel?x=1:subprotocols=v1,v2:headers=X-Team=blue,X-Trace=7:token=t0k"
    ))
    .await;
    let info = conn
        .extensions()
        .get::<WsInfo>()
        .expect("client WsInfo")
        .clone();
    assert_eq!(info.path, "/tunnel?x=1");
    // The declared layer: framed bytes (no splice), the TCP socket reachable beneath.
    assert!(
        conn.transforms(),
        "a WebSocket's bytes are not the socket's"
    );
    let beneath = conn.beneath().expect("the connection beneath");
    assert_eq!(beneath.peer_addr().to_string(), format!("127.0.0.1:{port}"));
    // The server's preference order wins among what the client offers.
    assert_eq!(info.subprotocol.as_deref(), Some("v2"));
    let data = payload(1 << 20);
    let back = round_trip(conn, &data).await;
    assert!(back == data, "the echo differs");
    let s = within("server report", seen.recv()).await.expect("report");
    assert_eq!(s.end, Ok(data.len()), "a clean end at the client's Close");
    let info = s.info.expect("server WsInfo");
    assert_eq!(info.path, "/tunnel?x=1");
    assert_eq!(info.subprotocol.as_deref(), Some("v2"));
    assert_eq!(info.header("x-team"), Some("blue"));
    assert_eq!(info.header("X-Trace"), Some("7"));
    assert_eq!(
        info.header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(info.header("authorization"), Some("Bearer t0k"));
    assert!(
        !format!("{info:?}").contains("t0k"),
        "Debug shows the token"
    );
}

#[tokio::test]
async fn basic_credentials_from_a_file() {
    let dir = temp_dir("basic");
    let file = dir.join("pw");
    std::fs::write(&file, "open sesame\n").expect("write");
    let l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let conn = connect(&format!(
        "ws:127.0.0.1:{port}:user=ali:passwordFile={}:hostHeader=front.example:origin=https\\://app.example",
        escape(&file.display().to_string())
    ))
    .await;
    drop(round_trip(conn, b"x").await);
    let info = within("report", seen.recv())
        .await
        .expect("report")
        .info
        .expect("info");
    // base64("ali:open sesame")
    assert_eq!(
        info.header("authorization"),
        Some("Basic YWxpOm9wZW4gc2VzYW1l")
    );
    assert_eq!(info.header("host"), Some("front.example"));
    assert_eq!(info.header("origin"), Some("https://app.example"));
}

#[tokio::test]
async fn over_unix_sockets_through_endpoint() {
    let dir = temp_dir("unix");
    let sock = dir.join("ws.sock");
    let path = sock.display().to_string();
    let l = listen(&format!("ws:path=/u:unix:{}", escape(&path))).await;
    let mut seen = echo(l);
    let conn = connect(&format!(
        "ws:localhost:path=/u:endpoint={}",
        escape(&format!("unix:{}", escape(&path)))
    ))
    .await;
    let data = payload(300_000);
    assert!(round_trip(conn, &data).await == data);
    let s = within("report", seen.recv()).await.expect("report");
    assert_eq!(s.end, Ok(data.len()));
    assert_eq!(s.info.expect("info").header("host"), Some("localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_tls_trust_parameters() {
    let pki = pki("wss");
    let certs = escape(&pki.join("certs").display().to_string());
    let ca = escape(&pki.join("ca.pem").display().to_string());
    let l = listen(&format!("ws:path=/s:tls:{certs}:0:interface=127.0.0.1")).await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let conn = connect(&format!("wss:localhost:{port}:path=/s:trustRoots={ca}")).await;
    let data = payload(2 << 20);
    let back = round_trip(conn, &data).await;
    assert_eq!(sha256(&back), sha256(&data));
    assert_eq!(
        within("report", seen.recv()).await.expect("report").end,
        Ok(data.len())
    );
    // Not trusted without the CA: the TLS error, named after the endpoint.
    let c = endpoints_core::registry::build_client(
        &format!("wss:localhost:{port}:path=/s:trustRoots=mozilla")
            .parse()
            .expect("grammar"),
    )
    .expect("builds");
    let e = within("refused", c.connect()).await.expect_err("untrusted");
    let shown = e.to_string();
    assert!(
        shown.contains("`wss:host=localhost") && shown.contains("not in Mozilla"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_client_that_ends_without_close_is_a_read_error_on_the_server() {
    let l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let mut conn = connect(&format!("ws:127.0.0.1:{port}")).await;
    conn.write_all(b"abc").await.expect("write");
    let mut back = [0u8; 3];
    within("echo", conn.read_exact(&mut back))
        .await
        .expect("echo");
    // Drop the socket beneath without a Close frame.
    drop(conn);
    let s = within("report", seen.recv()).await.expect("report");
    let e = s.end.expect_err("an end without Close is not clean");
    assert!(e.contains("without a Close"), "{e}");
}

#[tokio::test]
async fn keepalive_pings_keep_a_quiet_connection_and_are_answered() {
    // Pings every 100 ms; pongs are due within 2 s. The server's echo app is reading, so it
    // answers; the client reads for 1 s (10 pings) and must see no error.
    let l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let _seen = echo(l);
    let mut conn = connect(&format!("ws:127.0.0.1:{port}:ping=0.1:pongTimeout=2")).await;
    let mut buf = [0u8; 16];
    let quiet = tokio::time::timeout(Duration::from_secs(1), conn.read(&mut buf)).await;
    assert!(
        quiet.is_err(),
        "a quiet connection returned from read: {quiet:?}"
    );
    conn.write_all(b"still").await.expect("write");
    let mut back = [0u8; 5];
    within("echo after pings", conn.read_exact(&mut back))
        .await
        .expect("echo");
    assert_eq!(&back, b"still");
}

#[tokio::test]
async fn haproxy_goes_beneath_the_websocket_on_both_sides() {
    // Server: `ws:haproxy:...` reads the PROXY header on the socket, then the upgrade.
    // Client: `haproxy:ws:...` sends it first (the declared transport), then the upgrade.
    let l = listen("ws:path=/p:haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut l = l;
    let client = async {
        let conn = connect(&format!("haproxy:version=2:ws:127.0.0.1:{port}:path=/p")).await;
        round_trip(conn, b"through both").await
    };
    let server = async {
        let mut conn = within("accept", l.accept()).await.expect("accept");
        let header = conn.extensions().get::<endpoints_proxy::ProxyHeader>();
        assert_eq!(
            header.map(|h| h.version),
            Some(2),
            "the client's v2 header, kept"
        );
        assert_eq!(conn.extensions().get::<WsInfo>().expect("info").path, "/p");
        let mut buf = vec![0u8; 12];
        conn.read_exact(&mut buf).await.expect("read");
        conn.write_all(&buf).await.expect("write");
        let mut rest = Vec::new();
        within("the client's end", conn.read_to_end(&mut rest))
            .await
            .expect("clean end");
        // Our end too (between our ends the client's end is in-band, not a Close): as on
        // TLS, a clean end is a shutdown, not a drop.
        conn.shutdown().await.expect("shutdown");
    };
    let (back, ()) = tokio::join!(client, server);
    assert_eq!(back, b"through both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_goes_beneath_tls_and_the_websocket() {
    // `haproxy:wss:` sends its header on the socket, then TLS, then the upgrade; the server
    // reads them in the same order (`ws:haproxy:tls:`, haproxy beneath TLS by its declared
    // transport).
    let pki = pki("haproxy-wss");
    let certs = escape(&pki.join("certs").display().to_string());
    let ca = escape(&pki.join("ca.pem").display().to_string());
    let mut l = listen(&format!(
        "ws:haproxy:trusted=127.0.0.1:tls:{certs}:0:interface=127.0.0.1"
    ))
    .await;
    let port = port_of(&*l);
    let client = async {
        let conn = connect(&format!("haproxy:wss:localhost:{port}:trustRoots={ca}")).await;
        round_trip(conn, b"three layers").await
    };
    let server = async {
        let mut conn = within("accept", l.accept()).await.expect("accept");
        assert!(
            conn.extensions()
                .get::<endpoints_proxy::ProxyHeader>()
                .is_some()
        );
        assert!(conn.extensions().get::<endpoints_tls::TlsInfo>().is_some());
        let mut buf = vec![0u8; 12];
        conn.read_exact(&mut buf).await.expect("read");
        conn.write_all(&buf).await.expect("write");
        let mut rest = Vec::new();
        within("the client's end", conn.read_to_end(&mut rest))
            .await
            .expect("clean end");
        // Our end too (between our ends the client's end is in-band, not a Close): as on
        // TLS, a clean end is a shutdown, not a drop.
        conn.shutdown().await.expect("shutdown");
    };
    let (back, ()) = tokio::join!(client, server);
    assert_eq!(back, b"three layers");
}

/// Issue 30 item 2: between our own ends a `ws:` connection half-closes as `tcp:` does: the
/// client's `shutdown()` is an end of data the server reads (0), the server then still sends
/// (here, what it read, reversed, and more), and the client reads it all, then a clean end.
/// Both ends see that the half-close was agreed on.
#[tokio::test]
async fn our_ends_carry_a_real_half_close() {
    let mut l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let server = tokio::spawn(async move {
        let mut c = l.accept().await.expect("accept");
        assert!(
            c.extensions().get::<WsInfo>().expect("info").half_close,
            "the server agreed to the half-close"
        );
        let mut got = Vec::new();
        within("the client's end of data", c.read_to_end(&mut got))
            .await
            .expect("an end of data, not an error");
        // After the client's end, writing goes on: 3 MiB, then the end.
        got.reverse();
        c.write_all(&got).await.expect("write after the peer's end");
        c.write_all(&vec![9u8; 3 << 20]).await.expect("more");
        c.shutdown().await.expect("shutdown");
        let mut rest = Vec::new();
        within("the end", c.read_to_end(&mut rest))
            .await
            .expect("clean");
        assert!(rest.is_empty());
        got.len()
    });
    let mut c = connect(&format!("ws:127.0.0.1:{port}")).await;
    assert!(c.extensions().get::<WsInfo>().expect("info").half_close);
    let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    c.write_all(&sent).await.expect("write");
    c.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    within("everything back", c.read_to_end(&mut back))
        .await
        .expect("a clean end after all of it");
    let mut want = sent.clone();
    want.reverse();
    want.extend(std::iter::repeat_n(9u8, 3 << 20));
    assert_eq!(back.len(), want.len());
    assert!(back == want);
    assert_eq!(server.await.expect("server"), sent.len());
    // A write after our shutdown is refused, as on a socket.
    assert!(c.write_all(b"late").await.is_err());
}

/// Issue 30 item 2: after our end of data the peer need not read (its read side is done),
/// so keepalive pings stop: a server of ours that answers 2.5 s after the client's end,
/// longer than `ping=1:pongTimeout=1`, is not taken for a silent one.
#[tokio::test]
async fn keepalive_does_not_fail_a_slow_answer_after_our_end_of_data() {
    let mut l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let server = tokio::spawn(async move {
        let mut c = l.accept().await.expect("accept");
        let mut got = Vec::new();
        within("the client's end", c.read_to_end(&mut got))
            .await
            .expect("end");
        // Working on the answer, not reading: longer than ping + pongTimeout.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        c.write_all(&got).await.expect("answer");
        c.shutdown().await.expect("shutdown");
    });
    let mut c = connect(&format!("ws:127.0.0.1:{port}:ping=1:pongTimeout=1")).await;
    c.write_all(b"question").await.expect("write");
    c.shutdown().await.expect("our end");
    let mut back = Vec::new();
    within("the answer", c.read_to_end(&mut back))
        .await
        .expect("the answer and a clean end, not a pong timeout");
    assert_eq!(back, b"question");
    server.await.expect("server");
}
