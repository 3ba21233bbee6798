//! Requests the server refuses get a short HTTP answer at once (never a hang), are never
//! returned by `accept`, and the listener goes on serving.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{connect, echo, listen, port_of, round_trip, within};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Send `request` raw; the whole answer (the server closes after it) and how long it took.
async fn answer(port: u16, request: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    within("the refusal", s.read_to_end(&mut got))
        .await
        .expect("read");
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[tokio::test]
async fn each_refusal_gets_its_status_at_once() {
    // timeout=30: a refusal that waited for the deadline would take 30 s; the bound below
    // (5 s) is over 100x what an answer on loopback takes, and far under the deadline.
    let l = listen(
        "ws:path=/chat:origins=https\\://app.example:subprotocols=chat.v1:token=s3cret:timeout=30:tcp:0:interface=127.0.0.1",
    )
    .await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let good = "Origin: https://app.example\r\nSec-WebSocket-Protocol: chat.v1\r\nAuthorization: Bearer s3cret\r\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "426 Upgrade Required",
            "not an upgrade",
        ),
        (upgrade("/other", good), "404 Not Found", "another path"),
        (
            upgrade("/chat", &good.replace("app.example", "evil.example")),
            "403 Forbidden",
            "another origin",
        ),
        (
            upgrade("/chat", &good.replace("s3cret", "guess")),
            "401 Unauthorized",
            "a wrong token",
        ),
        (
            upgrade(
                "/chat",
                &good.replace("Authorization: Bearer s3cret\r\n", ""),
            ),
            "401 Unauthorized",
            "no token",
        ),
        (
            upgrade("/chat", &good.replace("chat.v1", "chat.v9")),
            "400 Bad Request",
            "no common subprotocol",
        ),
        (
            upgrade("/chat", good).replace("Version: 13", "Version: 8"),
            "426 Upgrade Required",
            "an old version",
        ),
        (
            "POST /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".into(),
            "400 Bad Request",
            "not a GET",
        ),
        (
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n".into(),
            "400 Bad Request",
            "TLS to a plain server",
        ),
    ];
    for (request, status, what) in &cases {
        let (got, took) = answer(port, request).await;
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{what}: {got:?}"
        );
        assert!(got.contains("Connection: close"), "{what}: {got:?}");
        assert!(
            took < Duration::from_secs(5),
            "{what}: answered after {took:?}"
        );
        if status.starts_with("401") {
            assert!(got.contains("WWW-Authenticate: Bearer"), "{got}");
        }
    }
    // None of them reached the application; a good client still does.
    assert!(seen.try_recv().is_err(), "a refused request was accepted");
    let conn = connect(&format!(
        "ws:127.0.0.1:{port}:path=/chat:origin=https\\://app.example:subprotocols=chat.v1:token=s3cret"
    ))
    .await;
    assert_eq!(round_trip(conn, b"hello").await, b"hello");
    assert_eq!(
        within("report", seen.recv()).await.expect("report").end,
        Ok(5)
    );
}

#[tokio::test]
async fn a_request_head_over_max_request_gets_431() {
    let l = listen("ws:maxRequest=1024:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let _seen = echo(l);
    let big = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(4000));
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The server may close before it has read all of it: a failed write is fine.
    let _ = s.write_all(big.as_bytes()).await;
    let mut got = vec![0u8; 64];
    let n = within("431", s.read(&mut got)).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text:?}");
}

#[tokio::test]
async fn the_client_reports_the_servers_refusal_in_words() {
    let l = listen("ws:path=/a:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let _seen = echo(l);
    let c = endpoints_core::registry::build_client(
        &format!("ws:127.0.0.1:{port}:path=/b")
            .parse()
            .expect("grammar"),
    )
    .expect("builds");
    let e = within("refused", c.connect()).await.expect_err("404");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("404 Not Found") && shown.contains("ws:host=127.0.0.1"),
        "{shown}"
    );
}
