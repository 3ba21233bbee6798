//! What `haproxy:` listeners record (issue 32 item 4, docs/metrics.md): a bad or refused
//! PROXY header is a handshake failure under `layer="proxy"`, labelled with the tunnel.

use std::sync::Arc;
use std::time::Duration;

use endpoints_core::Listener;
use endpoints_core::registry::build_server;
use endpoints_test_support::metrics::Recorded;
use endpoints_util::metrics::{HANDSHAKE_FAILURES, scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;

async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Send `bytes` and read until the server closes (bounded: 10 s, for a close that takes
/// milliseconds on loopback).
async fn send(port: u16, bytes: &[u8]) {
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    c.write_all(bytes).await.expect("write");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut sink)).await;
}

/// Wait until `f` is true: the failure is counted right after the server closes
/// (milliseconds); the bound is 10 s.
async fn until(f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn header_failures_count_under_proxy_and_the_tunnel() {
    let rec = Recorded::new();
    let guard = rec.local();
    let edge: Arc<str> = "edge".into();
    let mut any = scope(
        edge.clone(),
        listen("haproxy:trusted=any:tcp:0:interface=127.0.0.1"),
    )
    .await;
    // Only a proxy at 192.0.2.1 may send headers: loopback is refused.
    let mut only = scope(
        edge,
        listen("haproxy:trusted=192.0.2.1:untrusted=reject:tcp:0:interface=127.0.0.1"),
    )
    .await;
    drop(guard);
    let port = |l: &dyn Listener| l.local_addr().expect("bound").ip().expect("ip").port();
    let (p1, p2) = (port(&*any), port(&*only));
    let server = tokio::spawn(async move {
        loop {
            tokio::select! {
                r = any.accept() => if r.is_err() { break },
                r = only.accept() => if r.is_err() { break },
            }
        }
    });
    let labels = |reason| [("tunnel", "edge"), ("layer", "proxy"), ("reason", reason)];

    send(p1, b"HELLO there\r\n").await;
    until(|| rec.counter(HANDSHAKE_FAILURES, &labels("protocol")) >= 1).await;
    assert_eq!(
        rec.counter(HANDSHAKE_FAILURES, &labels("protocol")),
        1,
        "not a PROXY header"
    );

    send(p2, b"PROXY TCP4 198.51.100.1 203.0.113.1 40000 443\r\n").await;
    until(|| rec.counter(HANDSHAKE_FAILURES, &labels("refused")) >= 1).await;
    assert_eq!(
        rec.counter(HANDSHAKE_FAILURES, &labels("refused")),
        1,
        "a header from a sender not in trusted="
    );
    assert_eq!(rec.counter_sum(HANDSHAKE_FAILURES), 2);
    rec.assert_plain_labels(&["edge"]);
    server.abort();
}
