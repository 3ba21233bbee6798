//! `haproxy:` behaviour on loopback, with headers written by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use endpoints_conformance::{Suite, echo};
use endpoints_core::registry::build_server;
use endpoints_core::{Address, ErrorKind, Listener};
use endpoints_proxy::{ProxyHeader, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use endpoints_tcp as _;
use endpoints_tcp6 as _;
use endpoints_tls as _;
use endpoints_unix as _;

async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn addr_of(l: &dyn Listener) -> SocketAddr {
    l.local_addr().expect("bound").ip().expect("ip")
}

/// The application's accept loop, in the background: accepted connections come out of the
/// channel (a wrapper upgrades connections while `accept` is being called, like any server).
fn accept_loop(
    mut l: Box<dyn Listener>,
) -> tokio::sync::mpsc::Receiver<endpoints_core::Connection> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok(c) = l.accept().await {
            if tx.send(c).await.is_err() {
                break;
            }
        }
    });
    rx
}

fn ip(s: &str) -> Address {
    Address::Ip(s.parse().expect("socket address"))
}

#[test]
fn conformance() {
    Suite::server("haproxy")
        .valid("haproxy:tcp:0:interface=127.0.0.1")
        .valid("haproxy:timeout=3:maxHeader=1024:trusted=[127.0.0.0/8,::1]:untrusted=accept:tcp6:0")
        .valid("HAPROXY:haproxy:tcp:80")
        .invalid("haproxy", ErrorKind::MissingParameter)
        .invalid("haproxy:", ErrorKind::UnknownType)
        .invalid("haproxy:bogus=1:tcp:80", ErrorKind::UnknownParameter)
        .invalid("haproxy:trusted=nope:tcp:80", ErrorKind::InvalidValue)
        .invalid("haproxy:untrusted=accept:tcp:80", ErrorKind::InvalidValue)
        .valid("haproxy:trusted=any:tcp:80")
        .valid("haproxy:trusted=[unix,10.0.0.0/8,::ffff:10.0.0.0/104]:tcp:80")
        .invalid(
            "haproxy:trusted=any,10.0.0.0/8:tcp:80",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "haproxy:trusted=any:untrusted=accept:tcp:80",
            ErrorKind::InvalidValue,
        )
        .invalid("haproxy:maxHeader=99999:tcp:80", ErrorKind::InvalidValue)
        .invalid("haproxy:tcp:99999", ErrorKind::InvalidValue)
        .random_cases(1000)
        .run();
    Suite::client("haproxy")
        .valid("haproxy:tcp:127.0.0.1:80")
        .valid("haproxy:version=2:tcp:h:1")
        .invalid("haproxy:version=3:tcp:h:1", ErrorKind::InvalidValue)
        .random_cases(1000)
        .run();
    // The inner description keeps its own spans: errors point into the original text.
    let e =
        build_server(&"haproxy:timeout=3:tcp:prot=80".parse().expect("parse")).expect_err("typo");
    assert_eq!((e.span(), e.suggestion()), (22..26, Some("port")));
}

#[test]
fn nesting_is_bounded_on_both_sides() {
    // issue 20 item 6: `"haproxy:"*15000 + "tcp:80"` is a parse error naming the first level
    // past the limit, not a stack overflow.
    let text = format!("{}tcp:80", "haproxy:".repeat(15_000));
    let d = text.parse().expect("parse");
    let e = build_server(&d).map(|_| ()).expect_err("too deep");
    assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
    let at = endpoints_core::registry::MAX_DEPTH * "haproxy:".len();
    assert_eq!(e.span(), at..at + "haproxy".len());
    let e = endpoints_core::registry::build_client(&d)
        .map(|_| ())
        .expect_err("too deep");
    assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
}

#[tokio::test]
async fn echo_through_client_and_server_wrappers() {
    echo("haproxy:tcp:0:interface=127.0.0.1", |a| {
        format!("haproxy:tcp:127.0.0.1:{}", a.ip().expect("ip").port())
    })
    .await;
    echo("haproxy:tcp:0:interface=127.0.0.1", |a| {
        format!(
            "haproxy:version=2:tcp:127.0.0.1:{}",
            a.ip().expect("ip").port()
        )
    })
    .await;
}

/// Send `bytes` in one write, then `after`; return what the application saw.
async fn deliver(
    l: &mut Box<dyn Listener>,
    chunks: Vec<(Vec<u8>, Duration)>,
) -> std::io::Result<(endpoints_core::Connection, Vec<u8>)> {
    let addr = addr_of(&**l);
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        for (c, pause) in chunks {
            tokio::time::sleep(pause).await;
            if s.write_all(&c).await.is_err() {
                break;
            }
        }
        let _ = s.shutdown().await;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        s
    });
    let mut conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
        .await
        .expect("accepted in time")?;
    let mut data = Vec::new();
    conn.read_to_end(&mut data).await?;
    drop(client);
    Ok((conn, data))
}

#[tokio::test]
async fn header_addresses_and_following_bytes() {
    let mut l = listen("haproxy:tcp:0:interface=127.0.0.1").await;
    let v1 = [
        &encode(1, &ip("192.0.2.7:5555"), &ip("198.51.100.1:443"))[..],
        b"GET / HTTP/1.1\r\n\r\n",
    ]
    .concat();
    let (conn, data) = deliver(&mut l, vec![(v1, Duration::ZERO)])
        .await
        .expect("v1");
    assert_eq!(conn.peer_addr(), &ip("192.0.2.7:5555"));
    assert_eq!(conn.local_addr(), &ip("198.51.100.1:443"));
    assert_eq!(
        data, b"GET / HTTP/1.1\r\n\r\n",
        "bytes after the header, in the same segment, are kept"
    );
    assert_eq!(
        conn.extensions().get::<ProxyHeader>().map(|h| h.version),
        Some(1)
    );

    let v2 = [
        &encode(2, &ip("[2001:db8::1]:1"), &ip("[2001:db8::2]:2"))[..],
        b"payload",
    ]
    .concat();
    let (conn, data) = deliver(&mut l, vec![(v2, Duration::ZERO)])
        .await
        .expect("v2");
    assert_eq!(conn.peer_addr(), &ip("[2001:db8::1]:1"));
    assert_eq!(data, b"payload");

    // UNKNOWN (bare form) and v2 LOCAL keep the real addresses.
    let (conn, _) = deliver(
        &mut l,
        vec![(b"PROXY UNKNOWN\r\nx".to_vec(), Duration::ZERO)],
    )
    .await
    .expect("unknown");
    assert!(conn.peer_addr().ip().is_some_and(|a| a.ip().is_loopback()));
    let mut local = endpoints_proxy::V2_SIGNATURE.to_vec();
    local.extend([0x20, 0x11, 0, 12, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2]);
    let (conn, _) = deliver(&mut l, vec![(local, Duration::ZERO)])
        .await
        .expect("local");
    assert!(
        conn.peer_addr().ip().is_some_and(|a| a.ip().is_loopback()),
        "LOCAL: {}",
        conn.peer_addr()
    );
}

#[tokio::test]
async fn a_header_trickled_byte_by_byte_is_accepted() {
    let mut l = listen("haproxy:timeout=5:tcp:0:interface=127.0.0.1").await;
    let mut chunks: Vec<(Vec<u8>, Duration)> =
        encode(2, &ip("203.0.113.9:4242"), &ip("127.0.0.1:80"))
            .into_iter()
            .map(|b| (vec![b], Duration::from_millis(5)))
            .collect();
    chunks.push((b"after".to_vec(), Duration::ZERO));
    let (conn, data) = deliver(&mut l, chunks).await.expect("trickled");
    assert_eq!(conn.peer_addr(), &ip("203.0.113.9:4242"));
    assert_eq!(data, b"after");
}

#[tokio::test]
async fn garbage_is_closed_at_once_and_the_listener_goes_on() {
    let l = listen("haproxy:timeout=30:tcp:0:interface=127.0.0.1").await;
    let addr = addr_of(&*l);
    let mut accepted = accept_loop(l);
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 extra\r\n",
        &[
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11,
            0xFF, 0xFF,
        ],
    ] {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(bad).await.expect("write");
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("closed well before the 30 s deadline");
        assert!(matches!(r, Ok(0) | Err(_)), "{bad:?}: got {r:?}");
        // Closed at once, not at the 30 s deadline: 2 s is far over 10x the few ms this
        // takes, and far under the deadline.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{bad:?}: took {:?}",
            started.elapsed()
        );
    }
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        &[
            &encode(1, &ip("192.0.2.1:1"), &ip("192.0.2.2:2"))[..],
            b"ok",
        ]
        .concat(),
    )
    .await
    .expect("write");
    let mut conn = tokio::time::timeout(Duration::from_secs(5), accepted.recv())
        .await
        .expect("in time")
        .expect("still serving");
    assert_eq!(conn.peer_addr(), &ip("192.0.2.1:1"));
    let mut ok = [0u8; 2];
    conn.read_exact(&mut ok).await.expect("data");
    assert_eq!(&ok, b"ok");
}

#[tokio::test]
async fn untrusted_senders_are_rejected_or_served_plain() {
    // 127.0.0.2 is trusted; we connect from 127.0.0.1.
    let l = listen("haproxy:trusted=127.0.0.2:tcp:0:interface=127.0.0.1").await;
    let addr = addr_of(&*l);
    let _accepted = accept_loop(l);
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&encode(1, &ip("192.0.2.1:1"), &ip("192.0.2.2:2")))
        .await
        .expect("write");
    let mut b = [0u8; 1];
    assert!(
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        ),
        "rejected"
    );

    let mut l2 =
        listen("haproxy:trusted=127.0.0.2:untrusted=accept:tcp:0:interface=127.0.0.1").await;
    let (conn, data) = deliver(&mut l2, vec![(b"plain bytes".to_vec(), Duration::ZERO)])
        .await
        .expect("served plain");
    assert_eq!(
        data, b"plain bytes",
        "no header is read from an untrusted peer"
    );
    assert!(conn.extensions().get::<ProxyHeader>().is_none());
}

#[tokio::test]
async fn unix_peers_are_untrusted_unless_the_list_names_them() {
    // issue 20 item 2: with `trusted=10.0.0.0/8` over a unix socket, any local user could
    // send a header claiming any address.
    let dir = std::env::temp_dir().join(format!("endpoints-proxy-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (trusted, taken) in [("10.0.0.0/8", false), ("[10.0.0.0/8,unix]", true)] {
        let path = dir.join(format!("{taken}.sock"));
        let _ = std::fs::remove_file(&path);
        let l = listen(&format!(
            "haproxy:trusted={trusted}:unix:{}",
            path.display()
        ))
        .await;
        let mut accepted = accept_loop(l);
        let mut s = tokio::net::UnixStream::connect(&path)
            .await
            .expect("connect");
        s.write_all(&encode(1, &ip("192.0.2.1:1"), &ip("192.0.2.2:2")))
            .await
            .expect("write");
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                c = accepted.recv() => c.map(|c| c.peer_addr().clone()),
                _ = async { let mut b = [0u8; 1]; let _ = s.read(&mut b).await; } => None,
            }
        })
        .await
        .expect("decided in time");
        assert_eq!(got, taken.then(|| ip("192.0.2.1:1")), "trusted={trusted}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn proxy_header_comes_before_tls_for_haproxy_ssl() {
    let dir = std::env::temp_dir().join(format!("endpoints-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let pem = dir.join("server.pem");
    std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");
    let mut l = listen(&format!(
        "haproxy:ssl:0:privateKey={}:interface=127.0.0.1",
        pem.display()
    ))
    .await;
    let shown = l.to_string();
    assert!(
        shown.starts_with("haproxy:timeout=5:maxHeader=4096:untrusted=reject:ssl:port="),
        "{shown}"
    );
    let addr = addr_of(&*l);

    assert!(
        !shown.contains("port=0:"),
        "the real port is shown: {shown}"
    );

    // Cleartext PROXY header, then a TLS client (the haproxy `ssl send-proxy` order).
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&encode(1, &ip("192.0.2.44:4444"), &ip("127.0.0.1:443")))
            .await
            .expect("header");
        // The TLS part is driven by hand, over the same socket, as haproxy does.
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates([cert.der().clone()]);
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").expect("name"),
                s,
            )
            .await
            .expect("TLS after the PROXY header");
        tls.write_all(b"secret").await.expect("write");
        tls.shutdown().await.expect("shutdown");
    });
    let mut conn = l.accept().await.expect("accept");
    assert_eq!(conn.peer_addr(), &ip("192.0.2.44:4444"));
    assert!(
        conn.extensions().get::<endpoints_tls::TlsInfo>().is_some(),
        "TLS ran after the header"
    );
    assert!(
        conn.extensions().get::<ProxyHeader>().is_some(),
        "the header survives the TLS wrapping"
    );
    let mut data = Vec::new();
    conn.read_to_end(&mut data).await.expect("read");
    assert_eq!(data, b"secret");
    client.await.expect("client");
}
