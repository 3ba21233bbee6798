//! Test helpers: a loopback echo server, real proxies (microsocks, tinyproxy) run as child
//! processes, small in-process proxies, and a throw-away PKI.
#![allow(dead_code)] // each test binary uses part of it

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use endpoints_core::escape;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// A fresh directory for this test's files.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("endpoints-tunnel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A loopback port nothing listens on (bound, then released).
pub(crate) async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

/// A loopback echo server: every connection gets its bytes back, then a half-close.
pub(crate) async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// Whether `program` can be started; like `endpoints_conformance::peer_program`, for peers
/// with no option that exits successfully (`microsocks` has no `--version`; `-h` exits 1):
/// prints why the test skips, and fails under CI=true.
pub(crate) fn peer_startable(program: &str, probe_arg: &str, package: &str) -> bool {
    endpoints_test_support::peers::startable(program, probe_arg, package)
}

/// A running proxy process, killed when dropped.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    _child: Child,
}

async fn wait_listening(port: u16, child: &mut Child, what: &str) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 5 s");
}

/// microsocks on loopback, requiring `user`/`password`.
pub(crate) async fn microsocks(user: &str, password: &str) -> Proxy {
    let port = free_port().await;
    let mut child = Command::new("microsocks")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-P",
            password,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start microsocks");
    wait_listening(port, &mut child, "microsocks").await;
    Proxy {
        port,
        _child: child,
    }
}

/// tinyproxy on loopback with `BasicAuth user password`, CONNECT allowed to `ports` only.
pub(crate) async fn tinyproxy(name: &str, user: &str, password: &str, ports: &[u16]) -> Proxy {
    let port = free_port().await;
    let dir = temp_dir(&format!("tinyproxy-{name}"));
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nBasicAuth {user} {password}\nLogLevel Critical\nMaxClients 64\n"
    );
    for p in ports {
        conf.push_str(&format!("ConnectPort {p}\n"));
    }
    let path = dir.join("tinyproxy.conf");
    std::fs::write(&path, conf).expect("write tinyproxy.conf");
    let mut child = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tinyproxy");
    wait_listening(port, &mut child, "tinyproxy").await;
    Proxy {
        port,
        _child: child,
    }
}

/// `tcp:127.0.0.1:<port>`, escaped for a `proxy=` value.
pub(crate) fn tcp_proxy(port: u16) -> String {
    escape(&format!("tcp:127.0.0.1:{port}"))
}

/// 16 MiB sent through `conn` while reading the echo back; the SHA-256 of both must match.
pub(crate) async fn round_trip_16mib(conn: endpoints_core::Connection) {
    const LEN: usize = 16 * 1024 * 1024;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let payload: Vec<u8> = (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let sent = ring::digest::digest(&ring::digest::SHA256, &payload);
    // In lockstep, 64 KiB at a time: microsocks relays with blocking writes, one direction
    // at a time, so a relay of an echo that writes everything before reading deadlocks.
    let mut conn = conn;
    let mut back = Vec::with_capacity(LEN);
    let mut chunk = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(60), async {
        for piece in payload.chunks(64 * 1024) {
            conn.write_all(piece).await.expect("write");
            conn.read_exact(&mut chunk[..piece.len()])
                .await
                .expect("read back");
            back.extend_from_slice(&chunk[..piece.len()]);
        }
    })
    .await
    .expect("16 MiB round trip within 60 s");
    let got = ring::digest::digest(&ring::digest::SHA256, &back);
    assert_eq!(
        sent.as_ref(),
        got.as_ref(),
        "SHA-256 of the echoed 16 MiB differs"
    );
}

/// The open descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// A CA and a `localhost`/127.0.0.1 server certificate: `ca.pem`, `server.pem` (cert + key).
pub(crate) fn pki(name: &str) -> PathBuf {
    let dir = temp_dir(&format!("pki-{name}"));
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tunnel test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    std::fs::write(
        dir.join("server.pem"),
        format!("{}{}", cert.pem(), key.serialize_pem()),
    )
    .expect("write");
    dir
}

/// An `ssl:` server on loopback that echoes; returns its port.
pub(crate) async fn tls_echo_server(pki: &std::path::Path) -> u16 {
    let d = format!(
        "ssl:0:interface=127.0.0.1:privateKey={}",
        escape(&pki.join("server.pem").display().to_string())
    );
    let server =
        endpoints_core::registry::build_server(&d.parse().expect("parse")).expect("ssl server");
    let mut listener = server.listen().await.expect("listen");
    let port = listener
        .local_addr()
        .expect("addr")
        .ip()
        .map(|a| a.port())
        .expect("ip listener");
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// A proxy that accepts connections and never answers; returns its port and the accepted
/// connections (so a test can drop them).
pub(crate) async fn silent_proxy() -> (u16, tokio::sync::mpsc::Receiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            if tx.send(s).await.is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// An in-process SOCKS5 proxy (no authentication) that records each CONNECT request's
/// address bytes (ATYP onwards) and answers with `reply` (0: relays, half-closes included).
pub(crate) async fn fake_socks5(reply: u8) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 2];
                s.read_exact(&mut head).await?;
                let mut methods = vec![0u8; usize::from(head[1])];
                s.read_exact(&mut methods).await?;
                s.write_all(&[5, 0]).await?;
                let mut req = [0u8; 4];
                s.read_exact(&mut req).await?;
                let mut addr = vec![req[3]];
                let target: Option<SocketAddr> = match req[3] {
                    1 => {
                        let mut a = [0u8; 6];
                        s.read_exact(&mut a).await?;
                        addr.extend(a);
                        Some(SocketAddr::from((
                            [a[0], a[1], a[2], a[3]],
                            u16::from_be_bytes([a[4], a[5]]),
                        )))
                    }
                    4 => {
                        let mut a = [0u8; 18];
                        s.read_exact(&mut a).await?;
                        addr.extend(a);
                        let mut o = [0u8; 16];
                        o.copy_from_slice(&a[..16]);
                        Some(SocketAddr::from((o, u16::from_be_bytes([a[16], a[17]]))))
                    }
                    _ => {
                        let mut n = [0u8; 1];
                        s.read_exact(&mut n).await?;
                        let mut a = vec![0u8; usize::from(n[0]) + 2];
                        s.read_exact(&mut a).await?;
                        addr.push(n[0]);
                        addr.extend(&a);
                        let port = u16::from_be_bytes([a[a.len() - 2], a[a.len() - 1]]);
                        Some(SocketAddr::from(([127, 0, 0, 1], port)))
                    }
                };
                let _ = tx.send(addr);
                s.write_all(&[5, reply, 0, 1, 127, 0, 0, 1, 0x12, 0x34])
                    .await?;
                if let (0, Some(t)) = (reply, target) {
                    let mut up = TcpStream::connect(t).await?;
                    tokio::io::copy_bidirectional(&mut s, &mut up).await?;
                }
                Ok::<(), std::io::Error>(())
            });
        }
    });
    (port, rx)
}

/// An in-process HTTP CONNECT proxy that answers `answer` (then relays, half-closes
/// included, when it starts with `HTTP/1.1 200`), after reading the request head.
pub(crate) async fn fake_http(
    answer: &'static [u8],
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    s.read_exact(&mut b).await?;
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let _ = tx.send(text.clone());
                s.write_all(answer).await?;
                if answer.starts_with(b"HTTP/1.1 200") {
                    let authority = text
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    let mut up = TcpStream::connect(authority).await?;
                    tokio::io::copy_bidirectional(&mut s, &mut up).await?;
                }
                Ok::<(), std::io::Error>(())
            });
        }
    });
    (port, rx)
}
