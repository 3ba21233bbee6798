//! What `ws:` listeners record (issue 32 item 4, docs/metrics.md): a refused upgrade is a
//! handshake failure under `layer="ws"`, `reason="refused"` for the policy's refusals (path,
//! origin, token) and `protocol` for requests that are not upgrades.

use std::sync::Arc;
use std::time::Duration;

use endpoints_test_support::metrics::Recorded;
use endpoints_util::metrics::{HANDSHAKE_FAILURES, scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{echo, listen, port_of, within};

/// Send `request`, read the answer until the server closes.
async fn answer(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    within("the refusal", s.read_to_end(&mut got))
        .await
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
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
async fn refused_upgrades_count_under_ws_and_the_tunnel() {
    let rec = Recorded::new();
    let guard = rec.local();
    let name: Arc<str> = "ssh-over-ws".into();
    let l = scope(name, listen("ws:path=/ssh:tcp:0:interface=127.0.0.1")).await;
    drop(guard);
    let port = port_of(&*l);
    let _seen = echo(l);
    let labels = |reason| {
        [
            ("tunnel", "ssh-over-ws"),
            ("layer", "ws"),
            ("reason", reason),
        ]
    };

    let wrong_path = "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert!(answer(port, wrong_path).await.starts_with("HTTP/1.1 404"));
    until(|| rec.counter(HANDSHAKE_FAILURES, &labels("refused")) >= 1).await;
    assert_eq!(rec.counter(HANDSHAKE_FAILURES, &labels("refused")), 1);

    let not_upgrade = "GET /ssh HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(answer(port, not_upgrade).await.starts_with("HTTP/1.1 426"));
    until(|| rec.counter(HANDSHAKE_FAILURES, &labels("protocol")) >= 1).await;
    assert_eq!(rec.counter(HANDSHAKE_FAILURES, &labels("protocol")), 1);
    assert_eq!(rec.counter_sum(HANDSHAKE_FAILURES), 2);
    rec.assert_plain_labels(&["ssh-over-ws"]);
}
