//! `tcp6:` on real loopback sockets.

use std::net::SocketAddr;

use endpoints_conformance::{Suite, echo};
use endpoints_core::registry::build_server;
use endpoints_core::{Address, ErrorKind};
use endpoints_tcp as _;
use endpoints_tcp6 as _;

fn port_of(a: &Address) -> u16 {
    a.ip().map(|s| s.port()).expect("an IP listener")
}

#[test]
fn conformance() {
    Suite::server("tcp6")
        .valid("tcp6:8080")
        .valid("tcp6:0:16:[::1]")
        .valid(r"tcp6:port=0:interface=\:\:1:v6only=1:reuseport=1:nodelay=1")
        .valid("tcp6:0:interface=127.0.0.1")
        .invalid("tcp6:8080:interface=::1", ErrorKind::Duplicate)
        .invalid("tcp6:8080:bogus=1", ErrorKind::UnknownParameter)
        .invalid("tcp6:8080:backlog=x", ErrorKind::InvalidValue)
        .invalid(
            "tcp6:0:interface=127.0.0.1:v6only=1",
            ErrorKind::InvalidValue,
        )
        .run();
}

#[test]
fn positional_order_is_port_backlog_interface() {
    let e = build_server(&"tcp6:80:10".parse().expect("parse")).expect("builds");
    assert_eq!(
        e.to_string(),
        r"tcp6:port=80:backlog=10:interface=\:\::reuseport=0:v6only=0:nodelay=0"
    );
}

#[tokio::test]
async fn echo_on_ipv6_loopback() {
    echo("tcp6:0:interface=[::1]", |a| {
        format!("tcp:[::1]:{}", port_of(a))
    })
    .await;
}

#[tokio::test]
async fn dual_stack_by_default_and_v6only_on_request() {
    let dual = build_server(&"tcp6:0".parse().expect("parse"))
        .expect("build")
        .listen()
        .await
        .expect("listen");
    let port = port_of(&dual.local_addr().expect("bound"));
    let v4 = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await;
    assert!(
        v4.is_ok(),
        "an IPv4 client reaches `tcp6:` on `::` by default: {v4:?}"
    );
    dual.close().await.expect("close");

    let only = build_server(&"tcp6:0:v6only=1".parse().expect("parse"))
        .expect("build")
        .listen()
        .await
        .expect("listen");
    let port = port_of(&only.local_addr().expect("bound"));
    let v4 = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await;
    assert!(v4.is_err(), "v6only=1 must refuse IPv4 clients");
    let v6 =
        tokio::net::TcpStream::connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
            .await;
    assert!(v6.is_ok(), "{v6:?}");
    only.close().await.expect("close");
}

/// Issue 23 item 6: the loopback address `tcp6:` suggests is IPv6's.
#[test]
fn localhost_suggests_the_ipv6_loopback() {
    let error = |s: &str| {
        build_server(&s.parse().unwrap_or_else(|e| panic!("{e}")))
            .map(|_| ())
            .expect_err(s)
    };
    let e = error("tcp6:8080:interface=localhost");
    assert_eq!(
        (e.kind(), e.parameter()),
        (ErrorKind::InvalidValue, Some("interface"))
    );
    assert_eq!(e.span(), 20..29);
    assert_eq!(e.suggestion(), Some("[::1]"));
    assert!(
        e.message().contains("`[::1]`, or `127.0.0.1` for IPv4"),
        "{e}"
    );
    let e = error("tcp6:localhost:8080");
    assert_eq!(e.suggestion(), Some("tcp6:8080:interface=[::1]"));
    assert!(build_server(&"tcp6:0:interface=[::1]".parse().expect("parses")).is_ok());
}
