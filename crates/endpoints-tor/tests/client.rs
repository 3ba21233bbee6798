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

// No DNS leak, counted: a resolver of ours on a loopback address counts the queries it is
// sent; the test binary runs itself again as a child in a mount namespace of its own
// (`unshare -m`, as root) whose /etc/resolv.conf (bind-mounted over, in that namespace only)
// names that resolver, and the child connects one description. `tor:` must send the resolver
// nothing; `tcp:` with the same name (the control case) must send it a query, proving the
// child's lookups reach it. Nothing of the test process (its resolver configuration,
// environment, the other tests) changes: only the child's namespace sees the other file.

/// Set in the child: the description to connect.
const DNS_CHILD: &str = "ENDPOINTS_TOR_DNS_CHILD";

/// The child's part (does nothing in a normal run).
#[tokio::test]
async fn dns_leak_child() {
    let Ok(text) = std::env::var(DNS_CHILD) else {
        return;
    };
    match client(&text).connect().await {
        Ok(_) => println!("child: connected"),
        Err(e) => println!("child: error: {e}"),
    }
}

/// A DNS server on UDP `addr`:53 that answers every query NXDOMAIN and records its name.
async fn counting_resolver(ip: std::net::Ipv4Addr) -> Arc<Mutex<Vec<String>>> {
    let sock = tokio::net::UdpSocket::bind((ip, 53))
        .await
        .expect("bind the resolver (port 53: root)");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if n < 12 {
                continue;
            }
            let q = &buf[..n];
            // The question's name: length-prefixed labels from byte 12.
            let (mut name, mut i) = (Vec::new(), 12);
            while i < q.len() && q[i] != 0 && name.len() < 64 {
                let len = usize::from(q[i]);
                let end = (i + 1 + len).min(q.len());
                name.push(String::from_utf8_lossy(&q[i + 1..end]).into_owned());
                i = end;
            }
            let question_end = (i + 5).min(q.len());
            record.lock().expect("lock").push(name.join("."));
            // The header with QR, RD, RA and rcode 3 (NXDOMAIN), one question, no answers.
            let mut answer = vec![q[0], q[1], 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
            answer.extend_from_slice(&q[12..question_end]);
            let _ = sock.send_to(&answer, from).await;
        }
    });
    seen
}

/// Run this test binary's `dns_leak_child` with `description`, in a mount namespace whose
/// /etc/resolv.conf is `resolv`; its output.
async fn child_connects(resolv: &std::path::Path, description: &str) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = tokio::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/resolv.conf && shift && exec \"$@\"")
        .arg("sh")
        .arg(resolv)
        .arg(exe)
        .args([
            "--exact",
            "dns_leak_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DNS_CHILD, description)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    // The child resolves once (1 s per try, 1 try) and connects on loopback: 60 s is a bound
    // for a loaded machine, not an expectation.
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("the child ends")
        .expect("unshare runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed: {text}");
    text
}

#[tokio::test]
async fn no_dns_query_leaves_for_a_tor_name_counted() {
    // A mount namespace of our own needs root (CAP_SYS_ADMIN).
    let can = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        assert!(
            !endpoints_test_support::peers::under_ci(),
            "`unshare --mount` failed and CI=true: run as root with util-linux's unshare"
        );
        println!("skipping: `unshare --mount` failed (needs root and util-linux)");
        return;
    }
    // A loopback address of our own (all of 127/8 is local on Linux), so that port 53 is
    // free whatever else runs here.
    let mut b = [0u8; 3];
    let _ =
        std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut b));
    let ip = std::net::Ipv4Addr::new(127, 53, b[1] | 1, b[2].max(2));
    let queries = counting_resolver(ip).await;
    let dir = std::env::temp_dir().join(format!(
        "endpoints-tor-dns-{:02x}{:02x}{:02x}",
        b[0], b[1], b[2]
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {ip}\noptions timeout:1 attempts:1\n"),
    )
    .expect("resolv.conf");
    let (socks, seen) = fake_socks(0).await;

    // tor: the name goes to the SOCKS port, and not one query to the resolver.
    let out = child_connects(
        &resolv,
        &format!("tor:host=some-name.example:port=80:socksPort={socks}"),
    )
    .await;
    assert!(out.contains("child: connected"), "{out}");
    let sent = seen.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].atyp, sent[0].host.as_str()),
        (3, "some-name.example")
    );
    assert_eq!(
        queries.lock().expect("lock").clone(),
        Vec::<String>::new(),
        "tor: sent DNS queries"
    );

    // The control case: tcp: resolves the same name here, and the resolver sees it, so the
    // zero above is a count that could have been more.
    let out = child_connects(&resolv, "tcp:some-name.example:80").await;
    assert!(out.contains("child: error"), "{out}");
    let asked = queries.lock().expect("lock").clone();
    assert!(
        asked.iter().any(|q| q == "some-name.example"),
        "the resolver saw no query from tcp: ({asked:?}); {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
