//! issue 20 item 1: our `haproxy:` client to our `haproxy:` listener, v1 and v2, plain and
//! TLS. Under TLS the header goes on the raw connection first, then the handshake, in both
//! directions (what real haproxy does with `send-proxy` on an `ssl` server line).

use std::path::PathBuf;
use std::time::Duration;

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, ErrorKind};
use endpoints_proxy::{ProxyHeader, connect_announcing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;
use endpoints_tls as _;

/// A directory holding only `ca` (for the `ssl:` client's `caCertsDir=`).
fn ca_dir(ca: &std::path::Path) -> PathBuf {
    let dir = ca.with_extension("d");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(ca, dir.join("ca.pem")).expect("copy");
    dir
}

/// A self-signed certificate for `localhost`: (certificate file, certificate + key file).
fn certificate(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "endpoints-proxy-client-{name}-{}",
        std::process::id()
    ));
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

/// Listen on `server`, connect with `client(port)` (announcing `announce` when given), send
/// a line both ways; return the header the listener received and the peer it reported.
async fn round_trip(
    server: &str,
    client: impl Fn(u16) -> String,
    announce: Option<(Address, Address)>,
) -> (ProxyHeader, Address, bool) {
    let mut l = build_server(&server.parse().expect("parse"))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().expect("bound").ip().expect("ip").port();
    let c = build_client(&client(port).parse().expect("parse")).unwrap_or_else(|e| panic!("{e}"));
    let announced = announce.is_some();
    let connecting = tokio::spawn(async move {
        let mut conn = match announce {
            Some((s, d)) => connect_announcing(&*c, s, d).await,
            None => c.connect().await,
        }
        .unwrap_or_else(|e| panic!("connect: {e}"));
        conn.write_all(b"ping").await.expect("write");
        let mut b = [0u8; 4];
        conn.read_exact(&mut b).await.expect("read");
        assert_eq!(&b, b"pong");
        conn.local_addr().clone()
    });
    let mut conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
        .await
        .expect("accepted in time")
        .expect("accepted");
    let mut b = [0u8; 4];
    conn.read_exact(&mut b).await.expect("read");
    assert_eq!(&b, b"ping");
    conn.write_all(b"pong").await.expect("write");
    let client_local = connecting.await.expect("client");
    let header = conn
        .extensions()
        .get::<ProxyHeader>()
        .cloned()
        .expect("a header");
    let tls = conn.extensions().get::<endpoints_tls::TlsInfo>().is_some();
    if !announced {
        assert_eq!(
            conn.peer_addr(),
            &client_local,
            "the header names the client"
        );
    }
    (header, conn.peer_addr().clone(), tls)
}

#[tokio::test]
async fn our_client_to_our_server_v1_v2_plain_and_tls() {
    let (ca, both) = certificate("ours");
    for version in [1, 2] {
        let (h, _, tls) = round_trip(
            "haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1",
            |p| format!("haproxy:version={version}:tcp:127.0.0.1:{p}"),
            None,
        )
        .await;
        assert_eq!((h.version, tls), (version, false));

        let (h, _, tls) = round_trip(
            &format!(
                "haproxy:trusted=127.0.0.1:ssl:0:privateKey={}:interface=127.0.0.1",
                both.display()
            ),
            |p| {
                format!(
                    "haproxy:version={version}:tls:localhost:{p}:trustRoots={}",
                    ca.display()
                )
            },
            None,
        )
        .await;
        assert_eq!((h.version, tls), (version, true), "header, then TLS");

        // Over the TLS client's own `endpoint=`: the header goes on that transport.
        let (h, _, tls) = round_trip(
            &format!(
                "haproxy:trusted=127.0.0.1:ssl:0:privateKey={}:interface=127.0.0.1",
                both.display()
            ),
            |p| {
                format!(
                    "haproxy:version={version}:tls:localhost:{p}:trustRoots={}:endpoint={}",
                    ca.display(),
                    endpoints_core::escape(&format!("tcp:127.0.0.1:{p}"))
                )
            },
            None,
        )
        .await;
        assert_eq!(
            (h.version, tls),
            (version, true),
            "endpoint=: header, then TLS"
        );

        // issue 24 item 11: the legacy `ssl:` client declares its transport as `tls:` does,
        // so `haproxy:ssl:` composes through the registry: header, then TLS.
        let cas = ca_dir(&ca);
        let (h, _, tls) = round_trip(
            &format!(
                "haproxy:trusted=127.0.0.1:ssl:0:privateKey={}:interface=127.0.0.1",
                both.display()
            ),
            |p| {
                format!(
                    "haproxy:version={version}:ssl:localhost:{p}:caCertsDir={}",
                    cas.display()
                )
            },
            None,
        )
        .await;
        assert_eq!(
            (h.version, tls),
            (version, true),
            "ssl: client: header, then TLS"
        );
    }
}

#[tokio::test]
async fn a_relay_announces_its_client_through_tls() {
    let (ca, both) = certificate("announce");
    let source = Address::Ip("192.0.2.33:4433".parse().expect("addr"));
    let destination = Address::Ip("198.51.100.2:443".parse().expect("addr"));
    let (_, peer, tls) = round_trip(
        &format!(
            "haproxy:trusted=127.0.0.1:ssl:0:privateKey={}:interface=127.0.0.1",
            both.display()
        ),
        |p| format!("haproxy:tls:localhost:{p}:trustRoots={}", ca.display()),
        Some((source.clone(), destination)),
    )
    .await;
    assert_eq!((peer, tls), (source, true));
}

#[test]
fn haproxy_tls_client_is_shown_as_written_and_checked_where_written() {
    let (ca, _) = certificate("shown");
    let text = format!("haproxy:tls:localhost:443:trustRoots={}", ca.display());
    let c = build_client(&text.parse().expect("parse")).unwrap_or_else(|e| panic!("{e}"));
    let shown = c.to_string();
    assert!(
        shown.starts_with("haproxy:version=1:tls:host=localhost:port=443"),
        "{shown}"
    );
    assert!(!shown.contains("endpoint="), "{shown}");

    // An error in the TLS part points into the text as written.
    let bad = "haproxy:tls:localhost:443:trustRoots=/nonexistent/ca.pem";
    let e = build_client(&bad.parse().expect("parse"))
        .map(|_| ())
        .expect_err("no such file");
    assert_eq!(
        e.span().start,
        bad.find("/nonexistent").expect("found"),
        "{e}"
    );

    // The `ssl:` client the same way (issue 24 item 11): shown as written, its transport
    // hidden, errors pointed into the text as written.
    let cas = ca_dir(&ca);
    let text = format!(
        "haproxy:ssl:localhost:443:caCertsDir={}:bindAddress=127.0.0.1",
        cas.display()
    );
    let c = build_client(&text.parse().expect("parse")).unwrap_or_else(|e| panic!("{e}"));
    let shown = c.to_string();
    assert!(
        shown.starts_with("haproxy:version=1:ssl:host=localhost:port=443"),
        "{shown}"
    );
    assert!(shown.contains("bindAddress=127.0.0.1"), "{shown}");
    assert!(!shown.contains("endpoint="), "{shown}");
    let bad = "haproxy:ssl:localhost:443:caCertsDir=/nonexistent/cas";
    let e = build_client(&bad.parse().expect("parse"))
        .map(|_| ())
        .expect_err("no such directory");
    assert_eq!(
        e.span().start,
        bad.find("/nonexistent").expect("found"),
        "{e}"
    );
    assert_ne!(e.kind(), ErrorKind::UnknownType, "{e}");
}
