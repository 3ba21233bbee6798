//! `tls:`/`ssl:` clients and servers against each other on loopback.

use crate::common;
use std::time::{Duration, Instant};

use common::Pki;
use endpoints_conformance::{Suite, echo};
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, ErrorKind, Listener};
use endpoints_tls::TlsInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;
use endpoints_tcp6 as _;
use endpoints_unix as _;

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

/// Serve `listener` in the background: echo every connection.
fn serve_echo(mut listener: Box<dyn Listener>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}

async fn connect(desc: &str) -> std::io::Result<endpoints_core::Connection> {
    build_client(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
}

async fn round_trip(desc: &str) -> std::io::Result<TlsInfo> {
    let mut c = connect(desc).await?;
    c.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(c.extensions()
        .get::<TlsInfo>()
        .cloned()
        .expect("TlsInfo on the client connection"))
}

#[tokio::test]
async fn echo_ssl_server_with_tls_client() {
    let pki = Pki::new("echo");
    let (key, ca) = (pki.path("server.pem"), pki.path("ca.pem"));
    echo(
        &format!("ssl:0:privateKey={key}:interface=127.0.0.1"),
        |a| format!("tls:localhost:{}:trustRoots={ca}", port_of(a)),
    )
    .await;
}

#[tokio::test]
async fn verification_failures_are_errors() {
    let pki = Pki::new("verify");
    let l = listen(&format!(
        "ssl:0:privateKey={}:interface=127.0.0.1",
        pki.path("server.pem")
    ))
    .await;
    let port = port_of(&l.local_addr().expect("bound"));
    let _server = serve_echo(l);
    let ca = pki.path("ca.pem");

    let info = round_trip(&format!("tls:localhost:{port}:trustRoots={ca}"))
        .await
        .expect("good certificate");
    assert_eq!(info.sni.as_deref(), Some("localhost"));

    // An IP host is verified against the IP SAN, and sends no SNI.
    let info = round_trip(&format!("tls:127.0.0.1:{port}:trustRoots={ca}"))
        .await
        .expect("IP SAN");
    assert_eq!(info.sni, None);

    let wrong = format!("tls:localhost:{port}:trustRoots={ca}:sni=wrong.example");
    let e = connect(&wrong).await.expect_err("wrong name");
    assert!(
        e.to_string().contains(
            "the server's certificate is for `localhost`, `127.0.0.1`, `::1`, not `wrong.example`"
        ),
        "{e}"
    );

    let e = connect(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("other-ca.pem")
    ))
    .await
    .expect_err("unknown CA");
    assert!(
        e.to_string().contains(&format!(
            "was issued by `endpoints test CA`, which is not in `{}`: give the CA that issued it in `trustRoots=`",
            pki.path("other-ca.pem")
        )),
        "{e}"
    );

    // Default trust is the platform's (or Mozilla's roots): our test CA is not among them.
    let e = connect(&format!("tls:localhost:{port}"))
        .await
        .expect_err("not publicly trusted");
    assert!(
        e.to_string()
            .contains("to trust a private CA, give its certificate with `trustRoots=ca.pem`"),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(&format!(
            "cannot connect to `tls:host=localhost:port={port}"
        )),
        "{e}"
    );

    // The legacy ssl: client verifies by default too (Twisted's did not).
    let e = connect(&format!("ssl:localhost:{port}"))
        .await
        .expect_err("ssl: verifies");
    assert!(
        e.to_string()
            .contains("was issued by `endpoints test CA`, which is not in"),
        "{e}"
    );
    round_trip(&format!(
        "ssl:localhost:{port}:caCertsDir={}",
        pki.dir.display()
    ))
    .await
    .expect("ssl: with its CA");
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let pki = Pki::new("expired");
    let l = listen(&format!(
        "ssl:0:privateKey={}:interface=127.0.0.1",
        pki.path("expired.pem")
    ))
    .await;
    let port = port_of(&l.local_addr().expect("bound"));
    let _server = serve_echo(l);
    let e = connect(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("ca.pem")
    ))
    .await
    .expect_err("expired");
    assert!(
        e.to_string()
            .contains("expired on 2002-01-01 00:00:00 UTC (it is now 2"),
        "{e}"
    );
}

#[tokio::test]
async fn mutual_tls_alpn_and_versions() {
    let pki = Pki::new("mtls");
    let (srv, ca, client) = (
        pki.path("server.pem"),
        pki.path("ca.pem"),
        pki.path("client.pem"),
    );
    let l = listen(&format!(
        "ssl:0:privateKey={srv}:interface=127.0.0.1:clientCA={ca}:alpn=h2,http/1.1"
    ))
    .await;
    let port = port_of(&l.local_addr().expect("bound"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<TlsInfo>(4);
    let mut l = l;
    let server = tokio::spawn(async move {
        while let Ok(mut conn) = l.accept().await {
            let info = conn
                .extensions()
                .get::<TlsInfo>()
                .cloned()
                .expect("server TlsInfo");
            let _ = tx.send(info).await;
            let mut buf = [0u8; 4];
            if conn.read_exact(&mut buf).await.is_ok() {
                let _ = conn.write_all(&buf).await;
            }
        }
    });
    let base = format!("tls:localhost:{port}:trustRoots={ca}");
    let info = round_trip(&format!("{base}:certificate={client}:alpn=h2"))
        .await
        .expect("mTLS with a certificate");
    assert_eq!(info.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(info.version, Some("TLSv1.3"));
    let seen = rx.recv().await.expect("server saw it");
    assert_eq!(
        seen.peer_certificates.len(),
        1,
        "the server sees the client certificate"
    );
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(seen.sni.as_deref(), Some("localhost"));

    // Without a client certificate the server refuses (in TLS 1.3, on the first read).
    let refused = round_trip(&base).await;
    assert!(
        refused.is_err(),
        "a client without a certificate was served"
    );

    // TLS 1.2 only, when asked for.
    let info = round_trip(&format!("{base}:certificate={client}"))
        .await
        .expect("1.3");
    assert_eq!(info.version, Some("TLSv1.3"));
    server.abort();

    let l12 = listen(&format!(
        "ssl:0:privateKey={srv}:interface=127.0.0.1:sslmethod=TLSv1_2_METHOD"
    ))
    .await;
    let port12 = port_of(&l12.local_addr().expect("bound"));
    let _s = serve_echo(l12);
    let info = round_trip(&format!("tls:localhost:{port12}:trustRoots={ca}"))
        .await
        .expect("1.2");
    assert_eq!(info.version, Some("TLSv1.2"));
    let e = connect(&format!(
        "tls:localhost:{port12}:trustRoots={ca}:minVersion=1.3"
    ))
    .await
    .expect_err("no common version");
    assert!(
        e.to_string().to_lowercase().contains("version") || e.to_string().contains("alert"),
        "{e}"
    );
}

#[tokio::test]
async fn silent_clients_delay_nobody_and_are_closed_at_the_deadline() {
    let pki = Pki::new("silent");
    // Every client here is 127.0.0.1: lift the per-source cap (64 by default; tested in
    // endpoints-proxy's per_source.rs) so that all 200 silent ones hold slots.
    let l = listen(&format!(
        "ssl:0:privateKey={}:interface=127.0.0.1:handshakeTimeout=2:maxPendingPerSource=1024",
        pki.path("server.pem")
    ))
    .await;
    let port = port_of(&l.local_addr().expect("bound"));
    let _server = serve_echo(l);
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    let started = Instant::now();
    round_trip(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("ca.pem")
    ))
    .await
    .expect("served");
    let took = started.elapsed();
    // The order of events, not a stopwatch: the normal client was served while every silent
    // connection was still open, i.e. before any of them reached its 2 s handshake deadline
    // (a server that handled them one by one would only get to it after those deadlines).
    let mut b = [0u8; 1];
    let open = silent
        .iter()
        .filter(
            |s| matches!(s.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        )
        .count();
    assert_eq!(
        open, 200,
        "a normal client was served only after {took:?}, once silent ones had been closed"
    );

    // At the 2 s deadline the silent connections are closed by the server.
    let mut closed = 0;
    for s in &mut silent {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 200);
}

#[tokio::test]
async fn tls_server_picks_certificates_by_sni_and_loads_new_files() {
    let pki = Pki::new("sni");
    let l = listen(&format!("tls:{}:0:interface=[::1]", pki.path("sni"))).await;
    let port = port_of(&l.local_addr().expect("bound"));
    let _server = serve_echo(l);
    let ca = pki.path("ca.pem");
    let inner = endpoints_core::escape(&format!("tcp:[::1]:{port}"));
    let via = |name: &str| format!("tls:{name}:{port}:trustRoots={ca}:endpoint={inner}");
    round_trip(&via("a.test")).await.expect("exact name");
    round_trip(&via("x.wild.test")).await.expect("wildcard");
    assert!(round_trip(&via("b.test")).await.is_err(), "unknown name");
    pki.add_sni("b.pem", "b.test");
    // The directory is looked at every second and a change loaded once it has held for a
    // poll: bounded at 20 s (10x and more what it takes) so a slow machine does not fail.
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = round_trip(&via("b.test")).await {
        assert!(
            Instant::now() < deadline,
            "b.test not served after 20 s: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tls_over_a_unix_socket_both_ways() {
    let pki = Pki::new("unix");
    let sock = pki.dir.join("tls.sock");
    let inner = endpoints_core::escape(&format!("unix:{}", sock.display()));
    let l = listen(&format!(
        "ssl:privateKey={}:endpoint={inner}",
        pki.path("server.pem")
    ))
    .await;
    assert_eq!(l.local_addr().expect("addr"), Address::Unix(sock.clone()));
    let _server = serve_echo(l);
    round_trip(&format!(
        "tls:localhost:0:trustRoots={}:endpoint={inner}",
        pki.path("ca.pem")
    ))
    .await
    .expect("TLS over unix");
}

#[test]
fn file_errors_name_the_file() {
    let e = build_server(
        &"ssl:443:privateKey=/nonexistent/key.pem"
            .parse()
            .expect("parse"),
    )
    .expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert!(e.message().contains("/nonexistent/key.pem"), "{e}");
    let pki = Pki::new("files");
    let empty = pki.dir.join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let d = format!(
        "ssl:443:privateKey={}:extraCertChain={}",
        pki.path("server.pem"),
        empty.display()
    );
    let e = build_server(&d.parse().expect("parse")).expect_err("empty chain");
    assert!(
        e.message()
            .contains("doesn't contain any valid certificates"),
        "{e}"
    );
    let d = format!(
        "ssl:443:privateKey={}:certKey={}",
        pki.path("server-key.pem"),
        pki.path("other-server.pem")
    );
    let e = build_server(&d.parse().expect("parse")).expect_err("key of another certificate");
    assert!(e.message().contains("does not fit"), "{e}");
}

#[test]
fn conformance() {
    let pki = Pki::new("suite");
    let (srv, ca, dir) = (pki.path("server.pem"), pki.path("ca.pem"), pki.path("sni"));
    Suite::server("ssl")
        .valid(&format!("ssl:443:privateKey={srv}"))
        .valid(&format!("ssl:0:{}:{}:TLSv1_2_METHOD:127.0.0.1:16", pki.path("server-key.pem"), pki.path("server-cert.pem")))
        .valid(&format!("ssl:443:privateKey={srv}:clientCA={ca}:requireClientCert=0:alpn=h2:handshakeTimeout=3:dhParameters=x"))
        .invalid(&format!("ssl:443:privateKey={srv}:sslmethod=SSLv3_METHOD"), ErrorKind::InvalidValue)
        .invalid(&format!("ssl:443:privateKey={srv}:sslmethod=TLSv1_METHOD"), ErrorKind::InvalidValue)
        .invalid(&format!("ssl:443:privateKey={srv}:sslmethod=TLS_METHD"), ErrorKind::InvalidValue)
        .invalid(&format!("ssl:443:privateKey={srv}:minVersion=1.1"), ErrorKind::InvalidValue)
        .invalid(&format!("ssl:privateKey={srv}"), ErrorKind::MissingParameter)
        .random_cases(500)
        .run();
    Suite::server("tls")
        .valid(&format!("tls:{dir}"))
        .valid(&format!("tls:{dir}:8443:16:[::1]:minVersion=1.3"))
        .invalid("tls:/nonexistent-dir", ErrorKind::InvalidValue)
        .random_cases(500)
        .run();
    Suite::client("tls")
        .valid("tls:example.com:443")
        .valid(&format!(
            "tls:127.0.0.1:443:trustRoots={ca}:alpn=h2,http/1.1:minVersion=1.3:timeout=5"
        ))
        .valid("tls:example.com:443:endpoint=tcp\\:7.6.5.4\\:443")
        .valid("tls:example.com:443:trustRoots=system")
        .valid("tls:example.com:443:trustRoots=mozilla")
        .valid("tls:example.com:443:trustRoots=none:pin=sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        .valid("tls:example.com:443:pin=sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=,sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        .invalid("tls:example.com:443:trustRoots=none", ErrorKind::InvalidValue)
        .invalid("tls:example.com:443:pin=sha256/abc", ErrorKind::InvalidValue)
        .invalid("tls:example.com", ErrorKind::MissingParameter)
        .invalid("tls:example.com:443:bogus=1", ErrorKind::UnknownParameter)
        .invalid(
            "tls:example.com:443:trustRoots=/nonexistent-dir",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "tls:example.com:443:endpoint=nope\\:1",
            ErrorKind::UnknownType,
        )
        .random_cases(500)
        .run();
    Suite::client("ssl")
        .valid("ssl:example.net:4321")
        .valid(&format!(
            "ssl:host=example.net:port=4321:caCertsDir={}:hostname=other.example",
            pki.dir.display()
        ))
        .invalid(
            "ssl:example.net:4321:certKey=/nonexistent.pem",
            ErrorKind::InvalidValue,
        )
        .random_cases(500)
        .run();
    let e = build_server(
        &format!("ssl:443:privateKey={srv}:sslmethod=SSLv3_METHOD")
            .parse()
            .expect("parse"),
    )
    .expect_err("ssl3");
    assert!(e.message().contains("only TLS 1.2 and 1.3 are"), "{e}");
    let e = build_server(
        &format!("ssl:443:privateKey={srv}:sslmethod=TLS_METHD")
            .parse()
            .expect("parse"),
    )
    .expect_err("typo");
    assert_eq!(e.suggestion(), Some("TLS_METHOD"));
}
