//! What `ServerService` and `ClientService` record (issue 32 item 4, docs/metrics.md):
//! accepted, open and ended connections; connect failures and connect time; under the
//! service's name, and nothing else in the labels.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use endpoints::service::{ClientService, ServerService};
use endpoints::util::metrics::{
    CONNECT_FAILURES, CONNECT_SECONDS, CONNECTIONS_ACCEPTED, CONNECTIONS_ENDED, CONNECTIONS_OPEN,
};
use endpoints_test_support::metrics::Recorded;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Wait until `f` is true: each step takes milliseconds on loopback; the bound is 10 s.
async fn until(f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn server_service_counts_accepted_open_and_ended() {
    let rec = Recorded::new();
    let guard = rec.local();
    let service = ServerService::start_named(
        "api",
        "tcp:0:interface=127.0.0.1",
        |conn, _shutdown| async move {
            let mut conn = BufReader::new(conn);
            let mut line = String::new();
            let _ = conn.read_line(&mut line).await;
            if line == "hold\n" {
                // Ignores the shutdown signal: aborted at the deadline.
                std::future::pending::<()>().await;
            }
            let _ = conn.write_all(b"bye\n").await;
        },
    )
    .await
    .expect("listen");
    drop(guard);
    let port: u16 = service.listening()[0]
        .split_once("port=")
        .and_then(|(_, rest)| rest.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a port in {:?}", service.listening()));
    let api = [("tunnel", "api")];
    let ended = |end| rec.counter(CONNECTIONS_ENDED, &[("tunnel", "api"), ("end", end)]);
    assert_eq!(rec.gauge(CONNECTIONS_OPEN, &api), Some(0.0));

    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        c.write_all(b"hi\n").await.expect("write");
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"bye\n");
    }
    until(|| ended("clean") == 3).await;
    assert_eq!(rec.counter(CONNECTIONS_ACCEPTED, &api), 3);
    assert_eq!(ended("clean"), 3);
    assert_eq!(rec.gauge(CONNECTIONS_OPEN, &api), Some(0.0));

    let mut held = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    held.write_all(b"hold\n").await.expect("write");
    until(|| rec.counter(CONNECTIONS_ACCEPTED, &api) == 4).await;
    assert_eq!(rec.gauge(CONNECTIONS_OPEN, &api), Some(1.0));

    let report = service.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.aborted, 1);
    assert_eq!(ended("drain_cut"), 1, "aborted at the shutdown deadline");
    assert_eq!(ended("truncated"), 0);
    assert_eq!(rec.gauge(CONNECTIONS_OPEN, &api), Some(0.0));
    rec.assert_plain_labels(&["api"]);
}

#[tokio::test(start_paused = true)]
async fn client_service_counts_connect_failures_and_connect_time() {
    let rec = Recorded::new();
    // A port nothing listens on: bound, then closed.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr").port()
    };
    let failures = Arc::new(AtomicU64::new(0));
    let seen = failures.clone();
    let guard = rec.local();
    let failing = ClientService::new(
        endpoints::client(&format!("tcp:127.0.0.1:{closed}")).expect("client"),
        |_conn| ((), async {}),
    )
    .name("db")
    .retry(|_| Duration::from_secs(1))
    .on_failure(move |_| {
        seen.fetch_add(1, Ordering::Relaxed);
    });
    drop(guard);
    failing.start();
    let _ = failing.when_connected(Some(3)).await;
    failing.stop().await;
    let n = failures.load(Ordering::Relaxed);
    assert!(n >= 3, "{n} failures seen");
    let db = [("tunnel", "db")];
    assert_eq!(rec.counter(CONNECT_FAILURES, &db), n);
    assert!(rec.histogram(CONNECT_SECONDS, &db).is_empty());

    // Connected once: one connect time (paused clock: 0 s, which the histogram takes).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let guard = rec.local();
    let ok = ClientService::new(
        endpoints::client(&format!("tcp:127.0.0.1:{port}")).expect("client"),
        |_conn| ((), std::future::pending::<()>()),
    )
    .name("db");
    drop(guard);
    ok.start();
    ok.when_connected(None).await.expect("connected");
    ok.stop().await;
    let times = rec.histogram(CONNECT_SECONDS, &db);
    assert_eq!(times.len(), 1, "{times:?}");
    assert!(times[0] >= 0.0 && times[0] < 10.0, "{times:?}");
    assert_eq!(rec.counter(CONNECT_FAILURES, &db), n);
    rec.assert_plain_labels(&["db"]);
}
