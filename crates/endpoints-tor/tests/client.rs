//! `tor:` against a stand-in Tor (a SOCKS5 server and a control port written here, recording
//! what they are sent): names go to Tor unresolved, isolation by SOCKS user name, Tor's
//! refusals as typed errors, the SOCKS port read from `GETINFO net/listeners/socks`.

use std::io;
use std::sync::{Arc, Mutex};

use endpoints_core::registry::build_client;
use endpoints_tor::{TorRefusal, refusal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use endpoints_tcp as _;
use endpoints_tor as _;

/// One CONNECT as the stand-in saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    atyp: u8,
    host: String,
    port: u16,
    user: String,
}

/// A SOCKS5 server asking for a user name and password (as Tor accepts them for isolation),
/// answering each CONNECT with `reply`; on 0 it echoes.
async fn fake_socks(reply: u8) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 2];
                s.read_exact(&mut head).await?;
                let mut methods = vec![0u8; usize::from(head[1])];
                s.read_exact(&mut methods).await?;
                assert!(methods.contains(&2), "user/password offered: {methods:?}");
                s.write_all(&[5, 2]).await?;
                let mut v = [0u8; 2];
                s.read_exact(&mut v).await?;
                let mut user = vec![0u8; usize::from(v[1])];
                s.read_exact(&mut user).await?;
                let mut plen = [0u8; 1];
                s.read_exact(&mut plen).await?;
                let mut pass = vec![0u8; usize::from(plen[0])];
                s.read_exact(&mut pass).await?;
                s.write_all(&[1, 0]).await?;
                let mut req = [0u8; 4];
                s.read_exact(&mut req).await?;
                let host = match req[3] {
                    3 => {
                        let mut n = [0u8; 1];
                        s.read_exact(&mut n).await?;
                        let mut name = vec![0u8; usize::from(n[0])];
                        s.read_exact(&mut name).await?;
                        String::from_utf8_lossy(&name).into_owned()
                    }
                    1 => {
                        let mut a = [0u8; 4];
                        s.read_exact(&mut a).await?;
                        std::net::Ipv4Addr::from(a).to_string()
                    }
                    _ => {
                        let mut a = [0u8; 16];
                        s.read_exact(&mut a).await?;
                        std::net::Ipv6Addr::from(a).to_string()
                    }
                };
                let mut p = [0u8; 2];
                s.read_exact(&mut p).await?;
                record.lock().expect("lock").push(Seen {
                    atyp: req[3],
                    host,
                    port: u16::from_be_bytes(p),
                    user: String::from_utf8_lossy(&user).into_owned(),
                });
                s.write_all(&[5, reply, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
                if reply == 0 {
                    let (mut r, mut w) = s.split();
                    tokio::io::copy(&mut r, &mut w).await?;
                    w.shutdown().await?;
                }
                Ok::<_, io::Error>(())
            });
        }
    });
    (port, seen)
}

fn client(text: &str) -> Box<dyn endpoints_core::ClientEndpoint> {
    build_client(&text.parse().expect("parse")).expect("build")
}

#[tokio::test]
async fn names_are_sent_to_tor_never_resolved_here() {
    let (port, seen) = fake_socks(0).await;
    // `localhost` resolves locally (to 127.0.0.1) with no network: had we resolved it, the
    // request would carry address type 1 and 127.0.0.1.
    let mut c = client(&format!("tor:host=localhost:port=7:socksPort={port}"))
        .connect()
        .await
        .expect("stream");
    c.write_all(b"ping").await.expect("write");
    c.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, b"ping", "echo, and the half-close passed through");
    let onion = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    client(&format!("tor:{onion}:443:socksPort={port}"))
        .connect()
        .await
        .expect("stream");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].atyp, seen[0].host.as_str(), seen[0].port),
        (3, "localhost", 7)
    );
    assert_eq!(
        (seen[1].atyp, seen[1].host.as_str(), seen[1].port),
        (3, onion, 443)
    );
}

#[tokio::test]
async fn each_endpoint_is_its_own_isolation_group() {
    let (port, seen) = fake_socks(0).await;
    let text = format!("tor:example.com:80:socksPort={port}");
    let a = client(&text);
    let b = client(&text);
    a.connect().await.expect("a");
    a.connect().await.expect("a again");
    b.connect().await.expect("b");
    client(&format!(
        "tor:example.com:80:socksPort={port}:socksUsername=alice:socksPassword=pw"
    ))
    .connect()
    .await
    .expect("alice");
    let users: Vec<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.user.clone())
        .collect();
    assert_eq!(users[0], users[1], "one endpoint, one circuit group");
    assert_ne!(users[0], users[2], "two endpoints, two groups");
    assert_eq!(users[3], "alice");
}

#[tokio::test]
async fn tor_refusals_are_typed_errors_in_words() {
    let cases = [
        (
            0xF0,
            TorRefusal::OnionDescriptorNotFound,
            "onion service descriptor not found",
        ),
        (
            0xF2,
            TorRefusal::OnionIntroductionFailed,
            "introduction to the onion service failed",
        ),
        (
            0xF4,
            TorRefusal::OnionMissingClientAuth,
            "requires client authorization",
        ),
        (
            0xF7,
            TorRefusal::OnionIntroductionTimedOut,
            "introduction to the onion service timed out",
        ),
        (6, TorRefusal::TtlExpired, "TTL expired"),
        (2, TorRefusal::ExitRefused, "exit relays' policies refuse"),
        (1, TorRefusal::GeneralFailure, "general failure"),
    ];
    for (code, want, words) in cases {
        let (port, _) = fake_socks(code).await;
        let e = client(&format!(
            "tor:2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion:80:socksPort={port}"
        ))
        .connect()
        .await
        .expect_err("refused");
        assert_eq!(refusal(&e), Some(want), "{e}");
        let text = e.to_string();
        assert!(text.contains(words), "{text}");
        assert!(text.contains(&format!("{code:#04x}")), "{text}");
        assert!(
            text.starts_with("cannot connect to `tor:"),
            "names the endpoint: {text}"
        );
    }
}

/// A control port with no authentication that answers GETINFO net/listeners/socks.
async fn fake_control(socks: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let socks = socks.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = tokio::io::BufReader::new(r);
                let mut line = String::new();
                while tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await? > 0 {
                    let answer = match line.trim_end() {
                        "PROTOCOLINFO 1" => "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n".to_owned(),
                        "AUTHENTICATE" => "250 OK\r\n".to_owned(),
                        "GETINFO net/listeners/socks" => format!("250-net/listeners/socks={socks}\r\n250 OK\r\n"),
                        _ => "510 Unrecognized command\r\n".to_owned(),
                    };
                    w.write_all(answer.as_bytes()).await?;
                    line.clear();
                }
                Ok::<_, io::Error>(())
            });
        }
    });
    port
}

#[tokio::test]
async fn control_reads_the_socks_port() {
    let (socks, seen) = fake_socks(0).await;
    let control = fake_control(format!("\"127.0.0.1:{socks}\" \"unix:/nonexistent/socks\"")).await;
    client(&format!("tor:example.com:80:control={control}"))
        .connect()
        .await
        .expect("through the SOCKS port GETINFO named");
    assert_eq!(seen.lock().expect("lock")[0].host, "example.com");

    let control = fake_control(String::new()).await;
    let e = client(&format!("tor:example.com:80:control={control}"))
        .connect()
        .await
        .expect_err("no SOCKS listener");
    assert!(e.to_string().contains("has no SOCKS listener"), "{e}");
}

#[test]
fn no_secret_in_the_description() {
    let c = client("tor:example.com:80:socksUsername=u:socksPassword=hunter2");
    let shown = c.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("socksPassword=***"), "{shown}");
}
