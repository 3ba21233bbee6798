//! `tcp:` server and client on real loopback sockets.

use std::net::SocketAddr;

use endpoints_conformance::{Suite, echo};
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, Description, ErrorKind, Listener};
use endpoints_tcp as _;
use socket2::SockRef;

fn parse(s: &str) -> Description {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn port_of(a: &Address) -> u16 {
    a.ip().map(|s| s.port()).expect("an IP listener")
}

async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&parse(desc))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn server_conformance() {
    Suite::server("tcp")
        .valid("tcp:0:interface=127.0.0.1")
        .valid("tcp:8080")
        .valid("TCP:port=0:interface=[::1]:backlog=16:reuseport=1:nodelay=1:keepalive=30:recvbuf=65536:sendbuf=65536")
        .valid(r"tcp:0:interface=\:\:1:v6only=1")
        .invalid("tcp:70000", ErrorKind::InvalidValue)
        .invalid("tcp: 80 ", ErrorKind::InvalidValue)
        .invalid("tcp", ErrorKind::MissingParameter)
        .invalid("tcp:80:prot=1", ErrorKind::UnknownParameter)
        .invalid("tcp:80:port=81", ErrorKind::Duplicate)
        .invalid("tcp:80:127.0.0.1:10:extra", ErrorKind::UnknownParameter)
        .invalid("tcp:80:interface=localhost", ErrorKind::InvalidValue)
        .invalid("tcp:80:v6only=1", ErrorKind::InvalidValue)
        .invalid("tcp:80:keepalive=-1", ErrorKind::InvalidValue)
        .run();
}

#[test]
fn client_conformance() {
    Suite::client("tcp")
        .valid("tcp:example.com:80")
        .valid(r"tcp:host=\:\:1:port=80:timeout=7.5:bindAddress=127.0.0.1")
        .valid("tcp:[::1]:80:attemptDelay=0.1:attemptTimeout=2")
        .invalid("tcp:example.com", ErrorKind::MissingParameter)
        .invalid("tcp:port=80", ErrorKind::MissingParameter)
        .invalid("tcp:a:1:2", ErrorKind::UnknownParameter)
        .invalid("tcp:h:80:timeout=x", ErrorKind::InvalidValue)
        .invalid("tcp:h:80:bogus=1", ErrorKind::UnknownParameter)
        .invalid("tcp:h:80:bindAddress=localhost", ErrorKind::InvalidValue)
        .invalid("tcp:[127.0.0.1]:80", ErrorKind::InvalidValue)
        .run();
}

#[test]
fn client_positional_rules_follow_twisted() {
    let shown = |s: &str| {
        build_client(&parse(s))
            .map(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(
        shown("tcp:host=a:port=1:b:2"),
        "tcp:host=b:port=2:timeout=30:attemptDelay=0.25"
    );
    assert_eq!(
        shown("tcp:host=example.com:1234"),
        "tcp:host=example.com:port=1234:timeout=30:attemptDelay=0.25"
    );
    assert_eq!(
        shown("tcp:example.com:port=1234"),
        "tcp:host=example.com:port=1234:timeout=30:attemptDelay=0.25"
    );
    assert_eq!(
        shown(r"tcp:\:\:1:80"),
        r"tcp:host=\:\:1:port=80:timeout=30:attemptDelay=0.25"
    );
    assert_eq!(
        shown("tcp:[::1]:80"),
        r"tcp:host=\:\:1:port=80:timeout=30:attemptDelay=0.25"
    );
}

#[tokio::test]
async fn echo_ipv4_and_ipv6() {
    echo("tcp:0:interface=127.0.0.1", |a| {
        format!("tcp:127.0.0.1:{}", port_of(a))
    })
    .await;
    echo("tcp:0:interface=[::1]", |a| {
        format!("tcp:[::1]:{}", port_of(a))
    })
    .await;
}

#[tokio::test]
async fn port_zero_reports_the_real_port() {
    let listener = listen("tcp:0:interface=127.0.0.1:backlog=8").await;
    let port = port_of(&listener.local_addr().expect("bound"));
    assert_ne!(port, 0);
    assert_eq!(
        listener.to_string(),
        format!("tcp:port={port}:interface=127.0.0.1:backlog=8:reuseport=0:nodelay=0")
    );
    listener.close().await.expect("close");
}

#[tokio::test]
async fn close_releases_the_port_at_once() {
    for _ in 0..20 {
        let listener = listen("tcp:0:interface=127.0.0.1").await;
        let addr = listener.local_addr().expect("bound").ip().expect("ip");
        // Leave a connection behind to make the port busier than a bare listener.
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        listener.close().await.expect("close");
        std::net::TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("port {addr} still busy after close(): {e}"));
    }
}

#[tokio::test]
async fn accepted_connections_get_the_socket_options() {
    let mut listener =
        listen("tcp:0:interface=127.0.0.1:nodelay=1:keepalive=42:recvbuf=131072").await;
    let addr = listener.local_addr().expect("bound").ip().expect("ip");
    let (_client, conn) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let conn = conn.expect("accepted");
    let stream = conn
        .stream_ref::<tokio::net::TcpStream>()
        .expect("a TcpStream");
    assert!(stream.nodelay().expect("nodelay"));
    let sock = SockRef::from(stream);
    assert!(sock.keepalive().expect("keepalive"));
    assert_eq!(
        sock.tcp_keepalive_time().expect("keepalive time").as_secs(),
        42
    );
    assert!(sock.recv_buffer_size().expect("rcvbuf") >= 131_072);
    assert_eq!(
        conn.peer_addr(),
        &Address::Ip(_client.expect("client").local_addr().expect("addr"))
    );
}

#[tokio::test]
async fn reuseport_shares_a_port_and_its_absence_names_the_endpoint() {
    let first = listen("tcp:0:interface=127.0.0.1:reuseport=1").await;
    let port = port_of(&first.local_addr().expect("bound"));
    let second = listen(&format!("tcp:{port}:interface=127.0.0.1:reuseport=1")).await;
    second.close().await.expect("close");

    let busy = format!("tcp:{port}:interface=127.0.0.1");
    let err = build_server(&parse(&busy))
        .expect("builds")
        .listen()
        .await
        .expect_err("port in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot listen on `tcp:port={port}:interface=127.0.0.1"
        )),
        "{text}"
    );
    first.close().await.expect("close");
}

#[tokio::test]
async fn connect_errors_name_the_endpoint_and_the_address() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let client = build_client(&parse(&format!("tcp:127.0.0.1:{port}"))).expect("builds");
    let err = client.connect().await.expect_err("nothing listens");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot connect to `tcp:host=127.0.0.1:port={port}"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}: ")), "{text}");
}

#[tokio::test]
async fn a_host_name_connects_through_the_resolver() {
    let mut listener = listen("tcp:0:interface=127.0.0.1").await;
    let port = port_of(&listener.local_addr().expect("bound"));
    let client = build_client(&parse(&format!("tcp:localhost:{port}"))).expect("builds");
    let (c, s) = tokio::join!(client.connect(), listener.accept());
    let (c, s) = (c.expect("connect"), s.expect("accept"));
    assert_eq!(
        c.peer_addr(),
        &Address::Ip(SocketAddr::from(([127, 0, 0, 1], port)))
    );
    assert_eq!(s.peer_addr(), c.local_addr());
}

#[tokio::test]
async fn accepted_connections_report_their_real_local_address() {
    for desc in ["tcp:0:interface=127.0.0.1", "tcp:0", "tcp6:0"] {
        let desc = desc.replace("tcp6:0", "tcp:0:interface=[::]");
        let mut listener = listen(&desc).await;
        let port = port_of(&listener.local_addr().expect("bound"));
        let (client, conn) = tokio::join!(
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
            listener.accept()
        );
        let (client, conn) = (client.expect("connect"), conn.expect("accept"));
        let seen_by_client = client.peer_addr().expect("peer");
        let local = conn.local_addr().ip().expect("ip");
        assert_eq!(local.port(), seen_by_client.port(), "{desc}");
        assert!(
            !local.ip().is_unspecified(),
            "{desc}: local address {local} is the wildcard"
        );
        listener.close().await.expect("close");
    }
}
