//! issue 27 item 4: `exec:` under TLS (our `ssl:` server at the far end of an
//! `exec:socat - TCP:...` hop), behind a PROXY header, and `openssl s_client` as the child.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use endpoints_core::escape;

use endpoints_exec as _;
use endpoints_proxy as _;
use endpoints_tls as _;

#[tokio::test]
async fn tls_over_an_exec_socat_hop_to_our_ssl_server() {
    if !have("socat", "-V", "socat") {
        return;
    }
    let pki = pki("tls-over-exec");
    let port = ssl_echo_server(&pki).await;
    let hop = format!(r"exec:socat:-:TCP\:127.0.0.1\:{port}");
    let text = format!(
        "tls:host=localhost:port={port}:trustRoots={}:endpoint={}",
        escape(&pki.join("ca.pem").display().to_string()),
        escape(&hop)
    );
    let mut conn = connect(&text)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(PATIENCE, async {
        let (mut r, mut w) = tokio::io::split(&mut conn);
        let (wrote, read) = tokio::join!(w.write_all(&payload), r.read_exact(&mut back));
        wrote.expect("write over TLS");
        read.expect("read over TLS");
    })
    .await
    .expect("echo through TLS over socat within the patience bound");
    assert!(back == payload, "the echo differs");
    // The canonical form nests the exec: description, escaped.
    let shown = endpoints_conformance::round_trip(endpoints_core::Side::Client, &text);
    assert!(
        shown.contains(r"endpoint=exec\:socat\:-\:TCP\\\:127.0.0.1\\\:"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_proxy_header_goes_first_into_the_childs_stdin() {
    let mut conn = connect("haproxy:exec:cat").await.expect("start");
    conn.write_all(b"payload").await.expect("write");
    conn.shutdown().await.expect("close stdin");
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, conn.read_to_end(&mut out))
        .await
        .expect("bounded")
        .expect("cat exits 0");
    // Pipes have no IP addresses: the header says UNKNOWN.
    assert_eq!(out, b"PROXY UNKNOWN\r\npayload");
    let shown = endpoints_conformance::round_trip(
        endpoints_core::Side::Client,
        "haproxy:version=2:exec:cat",
    );
    assert!(shown.starts_with("haproxy:version=2:exec:cat"), "{shown}");
}

#[tokio::test]
async fn openssl_s_client_as_the_child_talks_tls_to_our_ssl_server() {
    if !have("openssl", "version", "openssl") {
        return;
    }
    let pki = pki("s-client");
    let port = ssl_echo_server(&pki).await;
    let text = format!(
        r"exec:openssl:s_client:-quiet:-no_ign_eof:-verify_return_error:-connect:127.0.0.1\:{port}:-servername:localhost:-CAfile:{}:stderr=drop",
        escape(&pki.join("ca.pem").display().to_string())
    );
    let mut conn = connect(&text).await.expect("start openssl");
    conn.write_all(b"hello through openssl\n")
        .await
        .expect("write");
    let mut back = vec![0u8; 22];
    tokio::time::timeout(PATIENCE, conn.read_exact(&mut back))
        .await
        .expect("bounded")
        .expect("the echo, decrypted by openssl");
    assert_eq!(back, b"hello through openssl\n");
    let pid = pid_of(&conn);
    drop(conn);
    wait_gone(pid).await;
}
