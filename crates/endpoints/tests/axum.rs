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
