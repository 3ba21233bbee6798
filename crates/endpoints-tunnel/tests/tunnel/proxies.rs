//! `socks5:` through microsocks and `httpconnect:` through tinyproxy (real proxies, Debian
//! packages `microsocks` and `tinyproxy`): 16 MiB round trips, wrong password, target
//! refused, proxy down, and TLS over the tunnel to our own `ssl:` server, verified.

use crate::common;
use std::io;

use common::*;
use endpoints_core::escape;
use endpoints_core::registry::build_client;

use endpoints_tcp as _;
use endpoints_tls as _;
use endpoints_tunnel as _;

fn have_microsocks() -> bool {
    peer_startable("microsocks", "-h", "microsocks")
}

fn have_tinyproxy() -> bool {
    endpoints_conformance::peer_program("tinyproxy", "-v", "tinyproxy")
}

async fn connect(text: &str) -> io::Result<endpoints_core::Connection> {
    let client = build_client(&text.parse().expect("parse")).expect("build");
    client.connect().await
}

fn password_file(name: &str, password: &str) -> String {
    let dir = temp_dir(name);
    let path = dir.join("password");
    std::fs::write(&path, format!("{password}\n")).expect("write");
    escape(&path.display().to_string())
}

#[tokio::test]
async fn socks5_round_trip_16mib_through_microsocks() {
    if !have_microsocks() {
        return;
    }
    let echo = echo_server().await;
    let proxy = microsocks("alice", "s3cret").await;
    let pw = password_file("socks-rt", "s3cret");
    let d = format!(
        "socks5:127.0.0.1:{echo}:proxy={}:user=alice:passwordFile={pw}",
        tcp_proxy(proxy.port)
    );
    let conn = connect(&d).await.expect("connect through microsocks");
    let info = conn
        .extensions()
        .get::<endpoints_tunnel::TunnelInfo>()
        .expect("tunnel info");
    assert_eq!(info.proxy.ip().map(|a| a.port()), Some(proxy.port));
    assert_eq!(conn.peer_addr().ip().map(|a| a.port()), Some(echo));
    round_trip_16mib(conn).await;
}

#[tokio::test]
async fn socks5_name_target_is_resolved_by_microsocks() {
    if !have_microsocks() {
        return;
    }
    let echo = echo_server().await;
    let proxy = microsocks("alice", "s3cret").await;
    // `localhost` goes to the proxy as a name (remote DNS); microsocks may connect to ::1
    // first: the echo server answers there too, on the same port, where the machine has ::1.
    if let Ok(l) = tokio::net::TcpListener::bind(("::1", echo)).await {
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
    }
    let d = format!(
        "socks5:localhost:{echo}:proxy={}:user=alice:password=s3cret",
        tcp_proxy(proxy.port)
    );
    let conn = connect(&d).await.expect("a name target through microsocks");
    assert_eq!(conn.peer_addr(), &endpoints_core::Address::Unnamed);
    round_trip_16mib(conn).await;
}

#[tokio::test]
async fn socks5_wrong_password_is_authentication_failed() {
    if !have_microsocks() {
        return;
    }
    let echo = echo_server().await;
    let proxy = microsocks("alice", "s3cret").await;
    let d = format!(
        "socks5:127.0.0.1:{echo}:proxy={}:user=alice:password=wrong-one",
        tcp_proxy(proxy.port)
    );
    let e = connect(&d).await.expect_err("wrong password");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{text}");
    assert!(
        text.starts_with("cannot connect to `socks5:host=127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("user `alice`"), "{text}");
    assert!(!text.contains("wrong-one"), "the password leaked: {text}");
    assert!(text.contains("password=***"), "{text}");
}

#[tokio::test]
async fn socks5_target_refused_is_reply_code_5_in_words() {
    if !have_microsocks() {
        return;
    }
    let closed = free_port().await;
    let proxy = microsocks("alice", "s3cret").await;
    let d = format!(
        "socks5:127.0.0.1:{closed}:proxy={}:user=alice:password=s3cret",
        tcp_proxy(proxy.port)
    );
    let e = connect(&d).await.expect_err("refused");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{text}");
    assert!(
        text.contains(&format!(
            "could not connect to 127.0.0.1:{closed}: connection refused (reply code 5)"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn socks5_proxy_down_names_the_proxy() {
    let down = free_port().await;
    let d = format!("socks5:127.0.0.1:80:proxy={}", tcp_proxy(down));
    let e = connect(&d).await.expect_err("proxy down");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{text}");
    assert!(text.starts_with("cannot connect to `socks5:"), "{text}");
    assert!(
        text.contains("cannot reach the proxy: cannot connect to `tcp:"),
        "{text}"
    );
    assert!(text.contains(&down.to_string()), "{text}");
}

#[tokio::test]
async fn tls_over_socks5_to_our_ssl_server_verified() {
    if !have_microsocks() {
        return;
    }
    let dir = pki("socks-tls");
    let port = tls_echo_server(&dir).await;
    let proxy = microsocks("alice", "s3cret").await;
    let tunnel = format!(
        "socks5:127.0.0.1:{port}:proxy={}:user=alice:password=s3cret",
        tcp_proxy(proxy.port)
    );
    let ca = escape(&dir.join("ca.pem").display().to_string());
    let d = format!(
        "tls:localhost:{port}:trustRoots={ca}:endpoint={}",
        escape(&tunnel)
    );
    let conn = connect(&d).await.expect("TLS through microsocks");
    assert!(
        conn.extensions()
            .get::<endpoints_tunnel::TunnelInfo>()
            .is_some()
    );
    round_trip_16mib(conn).await;

    // Verification is on: a CA that did not sign the server's certificate is refused.
    let other = pki("socks-tls-other");
    let other_ca = escape(&other.join("ca.pem").display().to_string());
    let d = format!(
        "tls:localhost:{port}:trustRoots={other_ca}:endpoint={}",
        escape(&tunnel)
    );
    let e = connect(&d).await.expect_err("unknown CA");
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn httpconnect_round_trip_16mib_through_tinyproxy() {
    if !have_tinyproxy() {
        return;
    }
    let echo = echo_server().await;
    let proxy = tinyproxy("rt", "bob", "hunter2", &[echo]).await;
    let d = format!(
        "httpconnect:127.0.0.1:{echo}:proxy={}:user=bob:passwordFile={}",
        tcp_proxy(proxy.port),
        password_file("http-rt", "hunter2")
    );
    let conn = connect(&d).await.expect("connect through tinyproxy");
    round_trip_16mib(conn).await;
}

#[tokio::test]
async fn httpconnect_wrong_password_is_407_in_words() {
    if !have_tinyproxy() {
        return;
    }
    let echo = echo_server().await;
    let proxy = tinyproxy("wrong", "bob", "hunter2", &[echo]).await;
    let d = format!(
        "httpconnect:127.0.0.1:{echo}:proxy={}:user=bob:password=nope-nope",
        tcp_proxy(proxy.port)
    );
    let e = connect(&d).await.expect_err("wrong password");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{text}");
    assert!(
        text.starts_with("cannot connect to `httpconnect:host=127.0.0.1"),
        "{text}"
    );
    // tinyproxy says 401 Unauthorized where RFC 9110 has 407 Proxy Authentication Required.
    assert!(
        text.contains("401 Unauthorized") || text.contains("407 Proxy Authentication Required"),
        "{text}"
    );
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains("nope-nope"), "the password leaked: {text}");

    let d = format!(
        "httpconnect:127.0.0.1:{echo}:proxy={}",
        tcp_proxy(proxy.port)
    );
    let e = connect(&d).await.expect_err("no credentials");
    assert!(e.to_string().contains("requires authentication"), "{e}");
}

#[tokio::test]
async fn httpconnect_target_refused_is_status_and_reason() {
    if !have_tinyproxy() {
        return;
    }
    let closed = free_port().await;
    let proxy = tinyproxy("refused", "bob", "hunter2", &[closed]).await;
    let d = format!(
        "httpconnect:127.0.0.1:{closed}:proxy={}:user=bob:password=hunter2",
        tcp_proxy(proxy.port)
    );
    let e = connect(&d).await.expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains(&format!("refused CONNECT 127.0.0.1:{closed}: 5")),
        "the status is shown: {text}"
    );
}

#[tokio::test]
async fn httpconnect_port_not_allowed_is_403() {
    if !have_tinyproxy() {
        return;
    }
    let echo = echo_server().await;
    let other = free_port().await;
    let proxy = tinyproxy("forbidden", "bob", "hunter2", &[other]).await;
    let d = format!(
        "httpconnect:127.0.0.1:{echo}:proxy={}:user=bob:password=hunter2",
        tcp_proxy(proxy.port)
    );
    let e = connect(&d).await.expect_err("port not allowed");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains(": 403 "), "{e}");
}

#[tokio::test]
async fn httpconnect_proxy_down_names_the_proxy() {
    let down = free_port().await;
    let d = format!("httpconnect:127.0.0.1:80:proxy={}", tcp_proxy(down));
    let e = connect(&d).await.expect_err("proxy down");
    let text = e.to_string();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{text}");
    assert!(
        text.contains("cannot reach the proxy: cannot connect to `tcp:"),
        "{text}"
    );
}

#[tokio::test]
async fn tls_over_httpconnect_to_our_ssl_server_verified() {
    if !have_tinyproxy() {
        return;
    }
    let pki = pki("http-tls");
    let port = tls_echo_server(&pki).await;
    let proxy = tinyproxy("tls", "bob", "hunter2", &[port]).await;
    let tunnel = format!(
        "httpconnect:127.0.0.1:{port}:proxy={}:user=bob:password=hunter2",
        tcp_proxy(proxy.port)
    );
    let ca = escape(&pki.join("ca.pem").display().to_string());
    let d = format!(
        "tls:localhost:{port}:trustRoots={ca}:endpoint={}",
        escape(&tunnel)
    );
    let conn = connect(&d).await.expect("TLS through tinyproxy");
    round_trip_16mib(conn).await;
}

/// An IPv6 echo server on ::1, or `None` (printed) where the machine has no IPv6 loopback.
async fn echo_server_v6() -> Option<u16> {
    let l = match tokio::net::TcpListener::bind("[::1]:0").await {
        Ok(l) => l,
        Err(e) => {
            println!("skipping the IPv6 part: cannot bind [::1]: {e}");
            return None;
        }
    };
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Some(port)
}

async fn ping(mut conn: endpoints_core::Connection) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(b"ping over IPv6").await.expect("write");
    let mut back = [0u8; 14];
    conn.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"ping over IPv6");
}

#[tokio::test]
async fn ipv6_targets_through_both_proxies() {
    let Some(echo) = echo_server_v6().await else {
        return;
    };
    if have_microsocks() {
        let proxy = microsocks("alice", "s3cret").await;
        let d = format!(
            "socks5:[::1]:{echo}:proxy={}:user=alice:password=s3cret",
            tcp_proxy(proxy.port)
        );
        let conn = connect(&d).await.expect("IPv6 target through microsocks");
        assert_eq!(conn.peer_addr().to_string(), format!("[::1]:{echo}"));
        ping(conn).await;
    }
    if have_tinyproxy() {
        let proxy = tinyproxy("v6", "bob", "hunter2", &[echo]).await;
        let d = format!(
            "httpconnect:[::1]:{echo}:proxy={}:user=bob:password=hunter2",
            tcp_proxy(proxy.port)
        );
        ping(connect(&d).await.expect("IPv6 target through tinyproxy")).await;
    }
}
