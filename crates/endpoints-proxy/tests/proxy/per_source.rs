//! issue 20 item 4: one host must not hold every pending slot. With 1,100 silent connections
//! open from 127.0.0.1 (more than the 1,024-slot pool), a client from 127.0.0.2 completes its
//! PROXY header (and, for TLS listeners, its handshake) while the silent ones are still
//! pending. Its own binary: it opens a few thousand descriptors.

use std::time::{Duration, Instant};

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{ErrorKind, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use endpoints_proxy as _;
use endpoints_tcp as _;
use endpoints_tls as _;

/// `n` connections from 127.0.0.1 that send `first(i)` and then nothing.
async fn silent_from_127_0_0_1(
    addr: std::net::SocketAddr,
    n: usize,
    first: &dyn Fn(usize) -> Vec<u8>,
) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let s = TcpSocket::new_v4().expect("socket");
        s.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let mut s = s.connect(addr).await.expect("connect");
        let bytes = first(i);
        if !bytes.is_empty() {
            // A connection closed at once (over the cap) may refuse the write: that is fine.
            let _ = s.write_all(&bytes).await;
        }
        v.push(s);
    }
    v
}

/// Nothing: a silent client.
fn nothing(_: usize) -> Vec<u8> {
    Vec::new()
}

/// A PROXY header announcing a different client on every connection, then silence (a host
/// trying to escape the TLS layer's per-source cap).
fn spoofed_header(i: usize) -> Vec<u8> {
    format!(
        "PROXY TCP4 10.{}.{}.{} 127.0.0.1 1000 443\r\n",
        i / 65_536,
        (i / 256) % 256,
        i % 256
    )
    .into_bytes()
}

/// How many of `silent` the server has not closed (each checked briefly: the ones over the
/// cap were closed when accepted, before the other client was served).
async fn still_open(silent: &mut [TcpStream]) -> usize {
    let mut open = 0;
    for s in silent {
        let mut b = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(20), s.read(&mut b))
            .await
            .is_err()
        {
            open += 1;
        }
    }
    open
}

async fn one_host_cannot_stall_the_others(
    server: &str,
    first: &dyn Fn(usize) -> Vec<u8>,
    client: impl Fn(u16) -> String,
) {
    let mut l: Box<dyn Listener> = build_server(&server.parse().expect("parse"))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().expect("bound").ip().expect("ip");
    let (tx, mut accepted) = tokio::sync::mpsc::channel(4);
    let server_task = tokio::spawn(async move {
        while let Ok(c) = l.accept().await {
            if tx.send(c).await.is_err() {
                break;
            }
        }
    });
    let mut silent = silent_from_127_0_0_1(addr, 1_100, first).await;

    let c = build_client(&client(addr.port()).parse().expect("parse"))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let talk = tokio::spawn(async move {
        let mut conn = c.connect().await.unwrap_or_else(|e| panic!("connect: {e}"));
        conn.write_all(b"hi").await.expect("write");
        conn
    });
    let mut conn = tokio::time::timeout(Duration::from_secs(10), accepted.recv())
        .await
        .unwrap_or_else(|_| panic!("{server}: 127.0.0.2 stalled behind 127.0.0.1"))
        .expect("accepted");
    let waited = started.elapsed();
    let mut hi = [0u8; 2];
    conn.read_exact(&mut hi).await.expect("read");
    assert_eq!(&hi, b"hi");
    let _client_conn = talk.await.expect("client");
    // The order of events is the real check: served while 64 silent connections from
    // 127.0.0.1 still hold their slots (their deadline is 60 s away). The clock bound is
    // 2 s, well over 10x the 100 ms, for a loaded 2-core machine and a debug build
    // doing a TLS handshake.
    assert!(
        waited < Duration::from_secs(2),
        "{server}: waited {waited:?}"
    );
    assert_eq!(still_open(&mut silent).await, 64, "{server}");
    drop(silent);
    server_task.abort();
}

fn certificate(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("endpoints-proxy-cap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (ca, both) = (dir.join("ca.pem"), dir.join("server.pem"));
    std::fs::write(&ca, cert.pem()).expect("write");
    std::fs::write(&both, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");
    (ca, both)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_cap_on_proxy_headers_and_tls_handshakes() {
    one_host_cannot_stall_the_others(
        "haproxy:trusted=any:timeout=60:tcp:0:interface=127.0.0.1",
        &nothing,
        |p| format!("haproxy:tcp:127.0.0.1:{p}:bindAddress=127.0.0.2"),
    )
    .await;
    let (ca, both) = certificate("cap");
    let haproxy_ssl = format!(
        "haproxy:trusted=any:timeout=60:ssl:0:privateKey={}:interface=127.0.0.1:handshakeTimeout=60",
        both.display()
    );
    // Silent before the header; then silent after a header announcing a new client each
    // time: the TLS layer still counts those against 127.0.0.1.
    for first in [&nothing as &dyn Fn(usize) -> Vec<u8>, &spoofed_header] {
        one_host_cannot_stall_the_others(&haproxy_ssl, first, |p| {
            format!(
                "haproxy:tls:localhost:{p}:trustRoots={}:bindAddress=127.0.0.2",
                ca.display()
            )
        })
        .await;
    }
    one_host_cannot_stall_the_others(
        &format!(
            "ssl:0:privateKey={}:interface=127.0.0.1:handshakeTimeout=60",
            both.display()
        ),
        &nothing,
        |p| {
            format!(
                "tls:localhost:{p}:trustRoots={}:bindAddress=127.0.0.2",
                ca.display()
            )
        },
    )
    .await;
}

#[test]
fn zero_deadlines_and_caps_are_errors() {
    let (_, key) = certificate("zero");
    let key = key.display();
    for (text, param) in [
        ("haproxy:timeout=0:tcp:80".to_owned(), "timeout"),
        (
            "haproxy:maxPendingPerSource=0:tcp:80".to_owned(),
            "maxPendingPerSource",
        ),
        (
            "haproxy:maxPendingPerSource=1025:tcp:80".to_owned(),
            "maxPendingPerSource",
        ),
        (
            format!("ssl:443:privateKey={key}:handshakeTimeout=0"),
            "handshakeTimeout",
        ),
        (
            format!("ssl:443:privateKey={key}:maxPendingPerSource=0"),
            "maxPendingPerSource",
        ),
    ] {
        let text = text.as_str();
        let e = build_server(&text.parse().expect("parse"))
            .map(|_| ())
            .expect_err(text);
        assert_eq!(e.kind(), ErrorKind::InvalidValue, "{e}");
        assert_eq!(e.parameter(), Some(param), "{e}");
    }
}
