//! Issue 15: a process-wide rustls `CryptoProvider` installed by the application is the one
//! `tls:`/`ssl:` use (as rustls asks libraries to); ring only when none is installed. Its own
//! binary: installing a default is process-wide.

use endpoints_test_support as common;

use common::Pki;
use endpoints_core::registry::{build_client, build_server};
use endpoints_tls::TlsInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;

#[tokio::test]
async fn an_installed_default_provider_is_used_on_both_sides() {
    // ring's provider with one cipher suite: ring's own default prefers AES-256-GCM, so the
    // suite negotiated shows whose provider was used.
    let mut only_chacha = rustls::crypto::ring::default_provider();
    only_chacha.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256];
    only_chacha
        .install_default()
        .expect("no default installed yet in this test binary");

    let pki = Pki::new("provider");
    let server = build_server(
        &format!(
            "ssl:0:interface=127.0.0.1:privateKey={}",
            pki.path("server.pem")
        )
        .parse()
        .expect("description"),
    )
    .expect("server");
    let mut listener = server.listen().await.expect("listen");
    let port = listener
        .local_addr()
        .expect("addr")
        .ip()
        .expect("ip")
        .port();
    let served = tokio::spawn(async move {
        let mut conn = listener.accept().await.expect("accept");
        let info = conn.extensions().get::<TlsInfo>().cloned().expect("info");
        let mut byte = [0; 1];
        conn.read_exact(&mut byte).await.expect("read");
        conn.write_all(&byte).await.expect("write");
        info
    });
    let client = build_client(
        &format!("tls:127.0.0.1:{port}:trustRoots={}", pki.path("ca.pem"))
            .parse()
            .expect("description"),
    )
    .expect("client");
    let mut conn = client.connect().await.expect("connect");
    conn.write_all(b"x").await.expect("write");
    let mut byte = [0; 1];
    conn.read_exact(&mut byte).await.expect("read");
    let client_info = conn.extensions().get::<TlsInfo>().cloned().expect("info");
    let server_info = served.await.expect("server task");
    for info in [client_info, server_info] {
        assert_eq!(
            info.cipher_suite.as_deref(),
            Some("TLS13_CHACHA20_POLY1305_SHA256"),
            "{info:?}"
        );
    }
}
