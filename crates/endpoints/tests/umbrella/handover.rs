//! Issue 25, item 3 (the API): `ServerService::hand_over` with a successor that fails gives
//! the service back, still serving; the successful path is covered with real processes by the
//! command's tests (`crates/endpoints-cli/tests/cli/handover.rs`).

#![cfg(feature = "tcp")]

use std::time::Duration;

use endpoints::service::ServerService;
use endpoints::util::handover::HandoverOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_failed_handover_gives_the_service_back_still_serving() {
    let service = ServerService::start(&["tcp:0:interface=127.0.0.1"], |mut c| async move {
        let _ = c.write_all(b"hello").await;
    })
    .await
    .expect("listen");
    let desc: endpoints::Description = service.listening()[0].parse().expect("description");
    let port: u16 = desc.get("port").and_then(|p| p.parse().ok()).expect("port");
    let mut options = HandoverOptions::same_binary().expect("options");
    // A successor that exits at once (status 1), without signalling readiness.
    options.program = "false".into();
    options.args.clear();
    // Ten times what `false` needs on a loaded machine; it exits well before.
    options.ready_timeout = Duration::from_secs(10);
    let (service, e) = service
        .hand_over(&options, Duration::from_secs(1))
        .await
        .expect_err("the successor exits");
    let e = e.to_string();
    assert!(
        e.contains("before it was ready") && e.contains("keeps serving"),
        "{e}"
    );
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("still listening");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"hello");
    let report = service.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.aborted, 0);
}
