//! The handshakes against small in-process proxies: what goes on the wire (remote and local
//! resolution, IPv6, Basic credentials), every SOCKS5 reply code in words, bytes after the
//! CONNECT answer, chains, and the timeout covering the handshake.

use crate::common;
use std::io;
use std::time::{Duration, Instant};

use common::*;
use endpoints_core::escape;
use endpoints_core::registry::build_client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;
use endpoints_tunnel as _;

async fn connect(text: &str) -> io::Result<endpoints_core::Connection> {
    let client = build_client(&text.parse().expect("parse")).expect("build");
    client.connect().await
}

async fn ping(conn: &mut endpoints_core::Connection) {
    conn.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"ping");
}

#[tokio::test]
async fn host_names_go_to_the_socks5_proxy_by_default() {
    let echo = echo_server().await;
    let (proxy, mut requests) = fake_socks5(0).await;
    let mut conn = connect(&format!(
        "socks5:target.example:{echo}:proxy={}",
        tcp_proxy(proxy)
    ))
    .await
    .expect("connect");
    ping(&mut conn).await;
    let mut expected = vec![3, 14];
    expected.extend(b"target.example");
    expected.extend(echo.to_be_bytes());
    assert_eq!(requests.recv().await.expect("request"), expected);
    assert_eq!(conn.peer_addr(), &endpoints_core::Address::Unnamed);
    let info = conn
        .extensions()
        .get::<endpoints_tunnel::TunnelInfo>()
        .expect("info");
    assert_eq!(info.bound, Some("127.0.0.1:4660".parse().expect("literal")));
}

#[tokio::test]
async fn resolve_local_sends_an_address() {
    let (proxy, mut requests) = fake_socks5(0).await;
    let _conn = connect(&format!(
        "socks5:localhost:9:proxy={}:resolve=local",
        tcp_proxy(proxy)
    ))
    .await
    .expect("connect");
    let sent = requests.recv().await.expect("request");
    match sent[0] {
        1 => assert_eq!(&sent[1..], &[127, 0, 0, 1, 0, 9]),
        4 => assert_eq!(sent[1..17], std::net::Ipv6Addr::LOCALHOST.octets()),
        t => panic!("address type {t} for a locally resolved name: {sent:?}"),
    }
}

#[tokio::test]
async fn ipv6_and_ipv4_targets_are_sent_as_addresses() {
    let (proxy, mut requests) = fake_socks5(0).await;
    let _c = connect(&format!(
        "socks5:[2001:db8::7]:443:proxy={}",
        tcp_proxy(proxy)
    ))
    .await
    .expect("connect v6");
    let mut v6 = vec![4];
    v6.extend(
        "2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .expect("v6")
            .octets(),
    );
    v6.extend(443u16.to_be_bytes());
    assert_eq!(requests.recv().await.expect("request"), v6);
    let _c = connect(&format!("socks5:192.0.2.1:80:proxy={}", tcp_proxy(proxy)))
        .await
        .expect("connect v4");
    assert_eq!(
        requests.recv().await.expect("request"),
        vec![1, 192, 0, 2, 1, 0, 80]
    );
}

#[tokio::test]
async fn every_socks5_reply_code_in_words() {
    let cases = [
        (1, "general SOCKS server failure", io::ErrorKind::Other),
        (
            2,
            "connection not allowed by ruleset",
            io::ErrorKind::PermissionDenied,
        ),
        (3, "network unreachable", io::ErrorKind::NetworkUnreachable),
        (4, "host unreachable", io::ErrorKind::HostUnreachable),
        (5, "connection refused", io::ErrorKind::ConnectionRefused),
        (6, "TTL expired", io::ErrorKind::TimedOut),
        (7, "command not supported", io::ErrorKind::Unsupported),
        (8, "address type not supported", io::ErrorKind::Unsupported),
    ];
    for (code, words, kind) in cases {
        let (proxy, _requests) = fake_socks5(code).await;
        let e = connect(&format!(
            "socks5:db.internal:5432:proxy={}",
            tcp_proxy(proxy)
        ))
        .await
        .expect_err("refused");
        let text = e.to_string();
        assert_eq!(e.kind(), kind, "{text}");
        assert!(
            text.starts_with("cannot connect to `socks5:host=db.internal:port=5432"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "could not connect to db.internal:5432: {words} (reply code {code})"
            )),
            "{text}"
        );
    }
}

#[tokio::test]
async fn socks5_to_an_http_proxy_says_so() {
    // A server that answers like HTTP as soon as anything arrives.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let e = connect(&format!("socks5:h.example:1:proxy={}", tcp_proxy(port)))
        .await
        .expect_err("not socks");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{text}");
    assert!(text.contains("is not a SOCKS5 proxy"), "{text}");
    assert!(text.contains("use `httpconnect:`?"), "{text}");
}

#[tokio::test]
async fn httpconnect_keeps_bytes_after_the_answer_and_sends_basic_credentials() {
    let echo = echo_server().await;
    let (proxy, mut requests) =
        fake_http(b"HTTP/1.1 200 Connection established\r\nProxy-Agent: fake\r\n\r\nearly").await;
    // passwordEnv= with a variable every test run has (setting one needs `unsafe`).
    let path_value = std::env::var("PATH").expect("PATH is set");
    let mut conn = connect(&format!(
        "httpconnect:127.0.0.1:{echo}:proxy={}:user=me:passwordEnv=PATH",
        tcp_proxy(proxy)
    ))
    .await
    .expect("connect");
    let mut early = [0u8; 5];
    conn.read_exact(&mut early).await.expect("early bytes");
    assert_eq!(&early, b"early");
    ping(&mut conn).await;
    let head = requests.recv().await.expect("request");
    assert!(
        head.starts_with(&format!(
            "CONNECT 127.0.0.1:{echo} HTTP/1.1\r\nHost: 127.0.0.1:{echo}\r\n"
        )),
        "{head}"
    );
    let line = head
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization: Basic "))
        .expect("credentials sent");
    assert_eq!(decode_base64(line), format!("me:{path_value}"));
}

fn decode_base64(s: &str) -> String {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        bits = (bits << 6) | A.find(c).expect("base64 alphabet") as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn httpconnect_refusal_shows_status_and_reason() {
    let (proxy, _r) = fake_http(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n").await;
    let e = connect(&format!(
        "httpconnect:db.internal:5432:proxy={}",
        tcp_proxy(proxy)
    ))
    .await
    .expect_err("refused");
    let text = e.to_string();
    assert!(
        text.starts_with("cannot connect to `httpconnect:host=db.internal"),
        "{text}"
    );
    assert!(
        text.contains("refused CONNECT db.internal:5432: 502 Bad Gateway"),
        "{text}"
    );
}

#[tokio::test]
async fn socks5_over_httpconnect_chain() {
    let echo = echo_server().await;
    let (socks, mut requests) = fake_socks5(0).await;
    let (http, _r) = fake_http(b"HTTP/1.1 200 OK\r\n\r\n").await;
    let to_socks = format!("httpconnect:127.0.0.1:{socks}:proxy={}", tcp_proxy(http));
    let d = format!("socks5:chained.example:{echo}:proxy={}", escape(&to_socks));
    let mut conn = connect(&d).await.expect("chain");
    ping(&mut conn).await;
    assert_eq!(requests.recv().await.expect("request")[0], 3);
}

#[tokio::test]
async fn timeout_covers_the_proxy_handshake() {
    for prefix in ["socks5", "httpconnect"] {
        let (proxy, _held) = silent_proxy().await;
        let started = Instant::now();
        let e = connect(&format!(
            "{prefix}:h.example:1:proxy={}:timeout=0.2",
            tcp_proxy(proxy)
        ))
        .await
        .expect_err("silent proxy");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("no tunnel within 0.200s"), "{e}");
        // 0.2 s expected; 10x that and more for a loaded 2-core machine.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
