//! What `tls:`/`ssl:` listeners record (issue 32 item 4, docs/metrics.md): handshake failures
//! by reason, labelled with the tunnel the listener was created in, and nothing else in
//! the labels.

use std::sync::Arc;
use std::time::Duration;

use crate::common;
use common::Pki;
use common::metrics::Recorded;
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, Listener};
use endpoints_util::metrics::{HANDSHAKE_FAILURES, scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn port_of(a: &Address) -> u16 {
    a.ip().map(|s| s.port()).expect("an IP listener")
}

async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Wait until `f` is true. The failures are counted once the server has closed the
/// connection (the client sees its end a moment before): milliseconds; the bound is 10 s.
async fn until(f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn twenty_failed_handshakes_count_twenty_under_tls_and_the_tunnel() {
    let rec = Recorded::new();
    let pki = Pki::new("metrics");
    let desc = format!(
        "ssl:0:privateKey={}:interface=127.0.0.1",
        pki.path("server.pem")
    );
    let guard = rec.local();
    let web: Arc<str> = "web".into();
    let mut listener = scope(web, listen(&desc)).await;
    // Handles are registered at listen: the recorder needs not stay installed.
    drop(guard);
    let port = port_of(&listener.local_addr().expect("bound"));
    let server = tokio::spawn(async move {
        while let Ok(c) = listener.accept().await {
            drop(c);
        }
    });
    let labels = |reason| [("tunnel", "web"), ("layer", "tls"), ("reason", reason)];
    assert!(
        rec.has_counter(HANDSHAKE_FAILURES, &labels("timeout")),
        "every reason is there from the start, at 0"
    );

    // 20 clients that speak HTTP, not TLS.
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        c.write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
            .await
            .expect("write");
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink).await;
    }
    until(|| rec.counter(HANDSHAKE_FAILURES, &labels("protocol")) >= 20).await;
    assert_eq!(rec.counter(HANDSHAKE_FAILURES, &labels("protocol")), 20);

    // A client that does not trust the certificate: `certificate`.
    let other = format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("other-ca.pem")
    );
    let e = build_client(&other.parse().expect("parse"))
        .expect("client")
        .connect()
        .await
        .expect_err("unknown CA");
    drop(e);
    until(|| rec.counter(HANDSHAKE_FAILURES, &labels("certificate")) >= 1).await;
    assert_eq!(rec.counter(HANDSHAKE_FAILURES, &labels("certificate")), 1);
    assert_eq!(
        rec.counter_sum(HANDSHAKE_FAILURES),
        21,
        "nothing counted twice or elsewhere"
    );
    rec.assert_plain_labels(&["web"]);
    server.abort();
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_counts_as_a_timeout_without_a_tunnel_label() {
    let rec = Recorded::new();
    let pki = Pki::new("metrics-silent");
    let guard = rec.local();
    let mut listener = listen(&format!(
        "ssl:0:privateKey={}:interface=127.0.0.1:handshakeTimeout=1",
        pki.path("server.pem")
    ))
    .await;
    drop(guard);
    let port = port_of(&listener.local_addr().expect("bound"));
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The handshake deadline passes (paused clock: no real waiting).
    let r = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
    assert!(r.is_err(), "nothing to accept");
    let labels = [("layer", "tls"), ("reason", "timeout")];
    assert_eq!(rec.counter(HANDSHAKE_FAILURES, &labels), 1);
    rec.assert_plain_labels(&[]);
}
