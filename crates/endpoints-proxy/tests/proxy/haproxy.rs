//! Real haproxy (Debian package `haproxy`) in front of `haproxy:` listeners: `send-proxy`,
//! `send-proxy-v2`, `send-proxy-v2` with `proxy-v2-options crc32c,unique-id`, and
//! `ssl ... send-proxy` to an `haproxy:ssl:` listener; and haproxy as the receiver of our
//! `haproxy:` client (`accept-proxy`, with and without `ssl crt`). Without haproxy the test prints why and
//! passes, except under `CI=true`.

use std::process::Stdio;
use std::time::Duration;

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, Listener};
use endpoints_proxy::{ProxyHeader, TLV_CRC32C, connect_announcing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use endpoints_tcp as _;
use endpoints_tls as _;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Start haproxy forwarding 127.0.0.1:`front` to 127.0.0.1:`back` with `server_opts`.
async fn haproxy(name: &str, front: u16, back: u16, server_opts: &str) -> tokio::process::Child {
    haproxy_with(name, front, "", back, server_opts).await
}

/// Start haproxy: `bind 127.0.0.1:front bind_opts`, `server 127.0.0.1:back server_opts`.
async fn haproxy_with(
    name: &str,
    front: u16,
    bind_opts: &str,
    back: u16,
    server_opts: &str,
) -> tokio::process::Child {
    let cfg = std::env::temp_dir().join(format!(
        "endpoints-haproxy-{}-{name}.cfg",
        std::process::id()
    ));
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
             frontend fe\n  bind 127.0.0.1:{front} {bind_opts}\n  unique-id-format %[uuid()]\n  default_backend be\n\
             backend be\n  server s1 127.0.0.1:{back} {server_opts}\n"
        ),
    )
    .expect("config");
    let child = tokio::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start haproxy");
    // Ready when the port is taken (probing with a connection would send it to the backend).
    for _ in 0..200 {
        if std::net::TcpListener::bind(("127.0.0.1", front))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("haproxy did not start listening on {front}");
}

/// Connect through haproxy, send `payload`, expect it echoed; return what our listener saw.
async fn through(
    front: u16,
    listener: &mut Box<dyn Listener>,
    payload: &[u8],
) -> (ProxyHeader, std::net::SocketAddr) {
    let mut client = TcpStream::connect(("127.0.0.1", front))
        .await
        .expect("connect to haproxy");
    let me = client.local_addr().expect("local");
    client.write_all(payload).await.expect("write");
    let mut conn = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("accepted")
        .expect("ok");
    let peer = conn.peer_addr().ip().expect("an IP peer");
    let header = conn
        .extensions()
        .get::<ProxyHeader>()
        .cloned()
        .expect("a header");
    let mut got = vec![0u8; payload.len()];
    conn.read_exact(&mut got).await.expect("read");
    assert_eq!(got, payload, "bytes arrive intact");
    conn.write_all(&got).await.expect("echo");
    let mut back = vec![0u8; payload.len()];
    client.read_exact(&mut back).await.expect("echoed");
    assert_eq!(back, payload);
    assert_eq!(
        peer, me,
        "the application sees the real client, not haproxy"
    );
    (header, me)
}

async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .expect("build")
        .listen()
        .await
        .expect("listen")
}

#[tokio::test]
async fn behind_real_haproxy() {
    if !endpoints_conformance::peer_program("haproxy", "-v", "haproxy") {
        return;
    }
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for (name, opts, version) in [
        ("v1", "send-proxy", 1),
        ("v2", "send-proxy-v2", 2),
        (
            "v2tlv",
            "send-proxy-v2 proxy-v2-options crc32c,unique-id",
            2,
        ),
    ] {
        let back = free_port();
        let mut l = listen(&format!("haproxy:tcp:{back}:interface=127.0.0.1")).await;
        let front = free_port();
        let _hp = haproxy(name, front, back, opts).await;
        let (header, _) = through(front, &mut l, &payload).await;
        assert_eq!(header.version, version, "{name}");
        if name == "v2tlv" {
            assert!(
                header.tlv(TLV_CRC32C).is_some(),
                "CRC32C TLV present (and verified)"
            );
            assert!(
                header.unique_id().is_some_and(|id| id.len() == 36),
                "a UUID unique id"
            );
        }
        l.close().await.expect("close");
    }
}

#[tokio::test]
async fn haproxy_ssl_send_proxy_to_haproxy_ssl_listener() {
    if !endpoints_conformance::peer_program("haproxy", "-v", "haproxy") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("endpoints-haproxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let pem = dir.join("server.pem");
    std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");

    let back = free_port();
    let mut l = listen(&format!(
        "haproxy:ssl:{back}:privateKey={}:interface=127.0.0.1",
        pem.display()
    ))
    .await;
    let front = free_port();
    let _hp = haproxy("ssl", front, back, "ssl verify none send-proxy").await;
    let payload = b"over TLS, after a cleartext PROXY header".to_vec();
    let (header, _) = through(front, &mut l, &payload).await;
    assert_eq!(header.version, 1);
}

/// issue 20 item 1: real haproxy receives our client's header (`accept-proxy`), in
/// cleartext, and for `ssl crt` before the TLS handshake; it passes the announced client on
/// (`send-proxy`) to our listener, which must see the address our client announced.
#[tokio::test]
async fn our_client_to_real_haproxy_accept_proxy_plain_and_ssl() {
    if !endpoints_conformance::peer_program("haproxy", "-v", "haproxy") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("endpoints-haproxy-recv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (ca, both) = (dir.join("ca.pem"), dir.join("server.pem"));
    std::fs::write(&ca, cert.pem()).expect("write");
    std::fs::write(&both, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");

    for (version, tls) in [(1, false), (2, false), (1, true), (2, true)] {
        let name = format!("recv-v{version}-{tls}");
        let back = free_port();
        let mut l = listen(&format!(
            "haproxy:trusted=127.0.0.1:tcp:{back}:interface=127.0.0.1"
        ))
        .await;
        let front = free_port();
        let bind = if tls {
            format!("accept-proxy ssl crt {}", both.display())
        } else {
            "accept-proxy".to_owned()
        };
        let _hp = haproxy_with(&name, front, &bind, back, "send-proxy").await;
        let client = if tls {
            format!(
                "haproxy:version={version}:tls:localhost:{front}:trustRoots={}",
                ca.display()
            )
        } else {
            format!("haproxy:version={version}:tcp:127.0.0.1:{front}")
        };
        let client =
            build_client(&client.parse().expect("parse")).unwrap_or_else(|e| panic!("{e}"));
        let announced = Address::Ip("192.0.2.55:5555".parse().expect("addr"));
        let to = Address::Ip("198.51.100.5:443".parse().expect("addr"));
        let talk = tokio::spawn(async move {
            let mut c = connect_announcing(&*client, announced, to)
                .await
                .unwrap_or_else(|e| panic!("{name}: connect: {e}"));
            c.write_all(b"hello").await.expect("write");
            let mut b = [0u8; 5];
            c.read_exact(&mut b).await.expect("echo");
            assert_eq!(&b, b"hello");
        });
        let mut conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("haproxy passed the connection on in time")
            .expect("accepted");
        assert_eq!(
            conn.peer_addr(),
            &Address::Ip("192.0.2.55:5555".parse().expect("addr")),
            "haproxy took the client from our header (v{version}, tls {tls})"
        );
        let mut b = [0u8; 5];
        conn.read_exact(&mut b).await.expect("read");
        conn.write_all(&b).await.expect("echo");
        tokio::time::timeout(Duration::from_secs(10), talk)
            .await
            .expect("client done")
            .expect("client");
        l.close().await.expect("close");
    }
}
