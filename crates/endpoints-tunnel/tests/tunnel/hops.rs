//! issue 24 item 9: what a tunnel says about itself and how it holds the connection to its
//! proxy (the proxy's TLS is not the target's; the socket stays reachable through the
//! declared layer), and hostile proxies: an endless run of `100 Continue`, SOCKS5 bytes the
//! protocol fixes sent with other values.

use crate::common;
use std::io;
use std::time::Duration;

use common::*;
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Connection, escape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use endpoints_tcp as _;
use endpoints_tls as _;
use endpoints_tunnel as _;

async fn connect(text: &str) -> io::Result<Connection> {
    let client = build_client(&text.parse().expect("parse")).expect("build");
    client.connect().await
}

async fn ping(conn: &mut Connection) {
    conn.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"ping");
}

/// The TCP socket under `conn`, found as `endpoints relay` finds it: down through the
/// layers the wrappers declared, without naming their types.
fn socket_under(conn: &Connection) -> Option<&TcpStream> {
    match conn.stream_ref::<TcpStream>() {
        Some(t) => Some(t),
        None => socket_under(conn.beneath()?),
    }
}

/// Our `ssl:` server on loopback in front of the TCP port `to`: a SOCKS5 proxy reached
/// over TLS.
async fn tls_front(pki: &std::path::Path, to: u16) -> u16 {
    let d = format!(
        "ssl:0:interface=127.0.0.1:privateKey={}",
        escape(&pki.join("server.pem").display().to_string())
    );
    let mut l = build_server(&d.parse().expect("parse"))
        .expect("ssl server")
        .listen()
        .await
        .expect("listen");
    let port = l.local_addr().expect("addr").ip().expect("ip").port();
    tokio::spawn(async move {
        while let Ok(mut conn) = l.accept().await {
            tokio::spawn(async move {
                let mut up = TcpStream::connect(("127.0.0.1", to)).await?;
                tokio::io::copy_bidirectional(&mut conn, &mut up).await?;
                Ok::<(), io::Error>(())
            });
        }
    });
    port
}

#[tokio::test]
async fn a_socks5_hop_over_tls_does_not_make_the_target_link_tls() {
    if !peer_startable("microsocks", "-h", "microsocks") {
        return;
    }
    let echo = echo_server().await;
    let proxy = microsocks("alice", "s3cret").await;
    let dir = pki("hop-tls");
    let front = tls_front(&dir, proxy.port).await;
    let hop = format!(
        "tls:localhost:{front}:trustRoots={}",
        dir.join("ca.pem").display()
    );
    let mut conn = connect(&format!(
        "socks5:127.0.0.1:{echo}:proxy={}:user=alice:password=s3cret",
        escape(&hop)
    ))
    .await
    .expect("socks5 through microsocks over TLS");
    ping(&mut conn).await;
    assert!(
        conn.extensions().get::<endpoints_tls::TlsInfo>().is_none(),
        "the link to the target is not TLS: only the hop to the proxy is"
    );
    assert!(
        conn.extensions()
            .get::<endpoints_tunnel::TunnelInfo>()
            .is_some()
    );
    let hop = conn
        .beneath()
        .expect("the connection to the proxy, beneath");
    assert!(
        hop.extensions().get::<endpoints_tls::TlsInfo>().is_some(),
        "the hop's TLS is the hop's"
    );
    assert!(!conn.transforms(), "the tunnel passes bytes through");
    assert!(
        socket_under(&conn).is_some(),
        "the socket beneath TLS is reachable"
    );
}

#[tokio::test]
async fn a_tunnel_declares_its_layer_and_the_bytes_it_holds() {
    if !peer_startable("microsocks", "-h", "microsocks") {
        return;
    }
    let echo = echo_server().await;
    let proxy = microsocks("alice", "s3cret").await;
    let mut conn = connect(&format!(
        "socks5:127.0.0.1:{echo}:proxy={}:user=alice:password=s3cret",
        tcp_proxy(proxy.port)
    ))
    .await
    .expect("socks5 through microsocks");
    ping(&mut conn).await;
    assert!(
        conn.beneath().is_some(),
        "a layer over the proxy connection"
    );
    assert_eq!(conn.buffered_above(), 0);
    let socket = socket_under(&conn).expect("the socket to the proxy");
    assert_eq!(
        socket.peer_addr().expect("peer").port(),
        proxy.port,
        "the socket is the one to the proxy"
    );

    // HTTP CONNECT whose answer came with the tunnel's first bytes: they are held above the
    // socket, and the socket is still reachable.
    let (http, _requests) = fake_http(b"HTTP/1.1 200 OK\r\n\r\nearly").await;
    let mut conn = connect(&format!(
        "httpconnect:127.0.0.1:{echo}:proxy={}",
        tcp_proxy(http)
    ))
    .await
    .expect("httpconnect");
    assert_eq!(conn.buffered_above(), 5, "`early` is held above the socket");
    assert!(socket_under(&conn).is_some(), "the socket is reachable");
    let mut early = [0u8; 5];
    conn.read_exact(&mut early).await.expect("read");
    assert_eq!(&early, b"early");
    ping(&mut conn).await;
}

/// A proxy that answers CONNECT with `100 Continue` again and again (at most `max` times,
/// so the test ends even if the client never gives up), until the client hangs up.
async fn continue_forever(max: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b).await?;
                for _ in 0..max {
                    s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                }
                Ok::<(), io::Error>(())
            });
        }
    });
    port
}

#[tokio::test]
async fn an_endless_run_of_100_continue_is_an_error_even_without_a_timeout() {
    // 10 million answers (250 MB) would take the old loop minutes; the bound is 10 s, far
    // above the milliseconds the check takes, for a loaded machine.
    let port = continue_forever(10_000_000).await;
    let d = format!(
        "httpconnect:example.com:443:proxy={}:timeout=0",
        tcp_proxy(port)
    );
    let e = tokio::time::timeout(Duration::from_secs(10), connect(&d))
        .await
        .expect("gave up on its own, not at the test's bound")
        .expect_err("no tunnel");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{text}");
    assert!(text.contains("interim (1xx) answers"), "{text}");
    assert!(text.contains("httpconnect:"), "names the endpoint: {text}");
}

/// A SOCKS5 proxy that speaks `script`: it reads the greeting, answers `choice`; reads what
/// follows (authentication or the request) and answers `then`, and stays open.
async fn scripted_socks5(choice: &'static [u8], then: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await?;
                s.write_all(choice).await?;
                let _ = s.read(&mut b).await?;
                s.write_all(then).await?;
                // Held open, bounded: the client decides from what it has.
                let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
                Ok::<(), io::Error>(())
            });
        }
    });
    port
}

#[tokio::test]
async fn socks5_bytes_the_protocol_fixes_are_checked_and_named() {
    // RSV, byte 2 of the CONNECT reply, must be 0.
    let port = scripted_socks5(&[5, 0], &[5, 0, 7, 1, 127, 0, 0, 1, 0, 80]).await;
    let e = connect(&format!("socks5:example.com:80:proxy={}", tcp_proxy(port)))
        .await
        .expect_err("RSV 7");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{text}");
    assert!(
        text.contains("byte 2 of its CONNECT reply (RSV, reserved) is 0x07, not 0x00"),
        "{text}"
    );

    // The user name and password reply's version, byte 0, must be 1 (RFC 1929).
    let port = scripted_socks5(&[5, 2], &[5, 0]).await;
    let e = connect(&format!(
        "socks5:example.com:80:proxy={}:user=alice:password=s3cret",
        tcp_proxy(port)
    ))
    .await
    .expect_err("auth version 5");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{text}");
    assert!(
        text.contains(
            "byte 0 of its authentication reply (the RFC 1929 version) is 0x05, not 0x01"
        ),
        "{text}"
    );
}
