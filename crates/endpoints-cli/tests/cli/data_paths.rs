//! The command's data paths lose nothing silently: stdin at its end, a linger that cuts, TLS
//! peers that close on `close_notify`, exit statuses, hostile flag values, default limits, and
//! a relay that passes its client's address on.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

/// Start `cmd`, wait for its `listening on ...` line; returns the child, the real description,
/// and a channel with every later stderr line.
pub(crate) async fn start(
    cmd: Command,
) -> (Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    start_with(cmd, Stdio::null()).await
}

/// [`start`] with `stdin` as the child's standard input.
pub(crate) async fn start_with(
    mut cmd: Command,
    stdin: Stdio,
) -> (Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut child = cmd
        .stdin(stdin)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line");
    assert!(line.starts_with("listening on "), "{line}");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            eprintln!("child: {l}");
            let _ = tx.send(l);
        }
    });
    (child, line["listening on ".len()..].to_owned(), rx)
}

pub(crate) fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).stdout(Stdio::null());
    c
}

pub(crate) fn port_in(desc: &str) -> u16 {
    let d: endpoints::Description = desc.parse().expect("description");
    d.get("port").and_then(|p| p.parse().ok()).expect("a port")
}

/// The next stderr line containing `needle`, within 20 s.
pub(crate) async fn line_with(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
) -> String {
    let wait = async {
        while let Some(l) = rx.recv().await {
            if l.contains(needle) {
                return l;
            }
        }
        panic!("stderr ended without a line containing {needle:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no line containing {needle:?} in 20 s"))
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("endpoints-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// Issue 13, item 1: `listen --once </dev/null >dump` while a client sends 100,000 bytes a
/// second for 8 s: every byte reaches `dump`, the client sees no error, the exit status is 0.
#[tokio::test]
async fn listen_with_stdin_at_its_end_receives_everything() {
    let dir = temp_dir("dump");
    let dump = dir.join("dump");
    let mut c = Command::new(BIN);
    c.args(["listen", "tcp:0:interface=127.0.0.1", "--once"])
        .stdout(std::fs::File::create(&dump).expect("dump"));
    let (mut child, shown, _rx) = start(c).await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port_in(&shown)))
        .await
        .expect("connect");
    let chunk = vec![b'x'; 10_000];
    for _ in 0..80 {
        // 10,000 bytes every 100 ms: 100,000 a second for 8 s.
        s.write_all(&chunk)
            .await
            .expect("the listener still receives");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await.expect("close");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.expect("a clean end");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::metadata(&dump).expect("dump").len(),
        800_000,
        "every byte reached stdout"
    );
}

/// Issue 13, item 2: a relay that gives up on a half-closed connection at the linger deadline
/// warns, naming the connection and the bytes, and resets both sides.
#[tokio::test]
async fn a_linger_cut_warns_and_resets_both_sides() {
    // An upstream that reads everything but never answers and never closes.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up_port = upstream.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let (mut s, _) = upstream.accept().await.expect("accept");
        let mut sink = Vec::new();
        s.read_to_end(&mut sink)
            .await
            .expect("the request, then EOF");
        // Keep the connection open until the relay's reset ends it (bounded: 20 s, 40x the
        // linger, so a slow machine still sees the cut).
        for _ in 0..400 {
            if let Some(e) = s.take_error().expect("SO_ERROR") {
                return (sink.len(), e);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no reset from the relay in 20 s");
    });
    let (_relay, shown, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{up_port}"),
        "--linger",
        "0.5",
    ]))
    .await;
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port_in(&shown)))
        .await
        .expect("connect");
    client.write_all(&[1u8; 5000]).await.expect("write");
    client.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut rest))
        .await
        .expect("the relay ended it in time");
    assert_eq!(
        got.expect_err("a reset, not a clean end").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let (received, upstream_error) = holder.await.expect("upstream");
    assert_eq!(
        received, 5000,
        "the upstream got the request before the cut"
    );
    // A reset that arrives after the relay's FIN: EPIPE on Linux (CLOSE_WAIT), else ECONNRESET.
    assert!(
        matches!(
            upstream_error.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "the upstream sees a reset too: {upstream_error}"
    );
    let line = line_with(&mut rx, "relay 127.0.0.1:").await;
    assert!(line.contains("warning: cut"), "{line}");
    assert!(line.contains("the down direction was still open"), "{line}");
    assert!(line.contains("0 bytes had gone down"), "{line}");
    assert!(line.contains("5000 bytes up"), "{line}");
}

/// Issue 13, item 2 for `connect`: a `--linger` that passes is a warning and exit status 1.
#[tokio::test]
async fn connect_with_a_linger_that_passes_fails_loudly() {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = server.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.expect("accept");
        s.write_all(b"partial reply").await.expect("write");
        // Never finishes the reply, never closes (the test aborts it).
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args([
                "connect",
                &format!("tcp:127.0.0.1:{port}"),
                "--linger",
                "0.5",
            ])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("exits")
    .expect("run");
    holder.abort();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout, b"partial reply");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: `tcp:host=127.0.0.1")
            && err.contains("gave up receiving")
            && err.contains("13 bytes had gone through"),
        "{err}"
    );
}

/// A throw-away CA and a `localhost` leaf signed by it: (ca dir, key+cert file).
pub(crate) fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "cli test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let ca_dir = dir.join("ca");
    std::fs::create_dir_all(&ca_dir).expect("dir");
    std::fs::write(ca_dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let key_file = dir.join("key.pem");
    let cert_file = dir.join("cert.pem");
    std::fs::write(&key_file, key.serialize_pem()).expect("write");
    std::fs::write(&cert_file, leaf.pem()).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600));
    }
    (ca_dir, key_file, cert_file)
}

/// Whether Twisted (with TLS) is importable: skip with a reason if not, fail under CI=true.
fn twisted() -> bool {
    endpoints_test_support::peers::twisted()
}

const TWISTED_SERVER: &str = r#"
import sys
from twisted.internet import reactor, endpoints, protocol

class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

class Peer(protocol.Protocol):
    # After the header: Twisted's wrapper knows the proxied peer from the first data on.
    def dataReceived(self, data):
        p = self.transport.getPeer()
        print("peer %s:%d" % (p.host, p.port), flush=True)
        self.transport.loseConnection()

kind = {"echo": Echo, "peer": Peer}[sys.argv[1]]
ep = endpoints.serverFromString(reactor, sys.argv[2])
def ok(port):
    print(port.getHost().port, flush=True)
def failed(f):
    print("error", f.getErrorMessage(), flush=True)
    reactor.stop()
ep.listen(protocol.Factory.forProtocol(kind)).addCallbacks(ok, failed)
reactor.run()
"#;

/// Run a Twisted server (`kind`: `echo` or `peer`) on `desc`; returns it, its port, and its
/// stdout lines after the port.
async fn twisted_server(
    dir: &Path,
    kind: &str,
    desc: &str,
) -> (
    Child,
    u16,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let script = dir.join("server.py");
    std::fs::write(&script, TWISTED_SERVER).expect("script");
    let mut child = Command::new("python3")
        .arg(&script)
        .args([kind, desc])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("Twisted started in time")
        .expect("read")
        .expect("a line");
    let port = first
        .parse()
        .unwrap_or_else(|_| panic!("Twisted said {first:?}"));
    (child, port, lines)
}

/// `echo req | endpoints connect tls:...` against `port`: the reply, and the exit status.
async fn tls_request(port: u16, ca: &Path, extra: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let mut c = Command::new(BIN);
    c.arg("connect")
        .arg(format!(
            "tls:localhost:{port}:trustRoots={}",
            endpoints::escape(&ca.display().to_string())
        ))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = c.spawn().expect("connect");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"req\n").await.expect("write");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits in time")
        .expect("output");
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 13, item 3: against a Twisted `ssl:` echo server (which closes at once on
/// `close_notify`), the default half-close policy loses no reply: 20 runs out of 20.
#[tokio::test]
async fn tls_half_close_auto_keeps_the_reply_of_a_twisted_server() {
    if !twisted() {
        return;
    }
    let dir = temp_dir("twisted-tls");
    let (ca, key, cert) = pki(&dir);
    let (_server, port, _) = twisted_server(
        &dir,
        "echo",
        &format!(
            "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
            key.display(),
            cert.display()
        ),
    )
    .await;
    for run in 0..20 {
        let (code, out, err) = tls_request(port, &ca, &[]).await;
        assert_eq!(
            (code, out.as_slice()),
            (Some(0), &b"req\n"[..]),
            "run {run}: {err}"
        );
    }
}

/// Issue 13, item 3: the default works with our own `ssl:` echo server too, and `never`
/// and `always` behave as documented against it.
#[tokio::test]
async fn tls_half_close_policies_against_our_own_server() {
    let dir = temp_dir("own-tls");
    let (ca, key, cert) = pki(&dir);
    let (_server, shown, _rx) = start(cmd(&[
        "listen",
        &format!(
            "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
            key.display(),
            cert.display()
        ),
        "--echo",
    ]))
    .await;
    let port = port_in(&shown);
    for policy in ["auto", "always"] {
        let (code, out, err) = tls_request(port, &ca, &["--half-close", policy]).await;
        assert_eq!(
            (code, out.as_slice()),
            (Some(0), &b"req\n"[..]),
            "{policy}: {err}"
        );
    }
    let (code, _, err) = tls_request(port, &ca, &["--half-close", "sideways"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--half-close: expected `auto`, `always` or `never`"));
}

/// Issue 13, item 3: a TLS 1.3 server that answers only after our end of data (it reads to
/// `close_notify`) still gets it under `auto`, once it has been quiet.
#[tokio::test]
async fn tls_half_close_auto_still_ends_for_a_server_that_waits_for_it() {
    let dir = temp_dir("eof-tls");
    let (ca, key, cert) = pki(&dir);
    // `listen` with stdin from a file: it sends the file, and copies what it receives to
    // stdout until our close_notify, then closes.
    let reply = dir.join("reply");
    std::fs::write(&reply, b"").expect("reply");
    let mut c = Command::new(BIN);
    c.args([
        "listen",
        &format!(
            "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
            key.display(),
            cert.display()
        ),
        "--half-close",
        "never",
    ])
    .stdout(Stdio::piped());
    let (mut server, shown, _rx) = start(c).await;
    let port = port_in(&shown);
    let (code, _, err) = tls_request(port, &ca, &[]).await;
    assert_eq!(code, Some(0), "{err}");
    let mut got = Vec::new();
    server
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut got)
        .await
        .expect("read");
    assert_eq!(got, b"req\n", "the server saw our data, then our end");
    let status = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .expect("server exits")
        .expect("status");
    assert!(status.success(), "{status}");
}

/// Issue 13, item 4: a fatal accept error ends `relay` with status 1. The listening socket
/// comes through socket activation; the test shuts it down under the relay.
#[tokio::test]
async fn a_fatal_accept_error_exits_non_zero() {
    if !endpoints_conformance::peer_program("python3", "--version", "python3") {
        return;
    }
    let script = r#"
import os, socket, subprocess, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
os.dup2(s.fileno(), 3)
p = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" relay systemd:domain=INET:index=0 tcp:127.0.0.1:9', sys.argv[1]], pass_fds=(3,), stderr=subprocess.PIPE, text=True)
line = p.stderr.readline()
assert line.startswith("listening on"), line
s.shutdown(socket.SHUT_RD)
try:
    err = p.stderr.read()
    code = p.wait(timeout=20)
except subprocess.TimeoutExpired:
    p.kill()
    print("still running")
    sys.exit(0)
print("exit", code)
print(err)
"#;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("python3").args(["-c", script, BIN]).output(),
    )
    .await
    .expect("in time")
    .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("exit 1\n"), "{text}");
    assert!(text.contains("no longer accepting"), "{text}");
}

/// Issue 13, item 4: a relayed connection that failed makes the relay's exit status 1.
#[tokio::test]
async fn a_failed_relayed_connection_exits_non_zero() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = closed.local_addr().expect("addr").port();
    drop(closed);
    let (mut relay, shown, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{dead}"),
    ]))
    .await;
    // The reset may come before tokio's connect has looked at the socket, or after.
    let got = match tokio::net::TcpStream::connect(("127.0.0.1", port_in(&shown))).await {
        Ok(mut s) => {
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest))
                .await
                .expect("in time")
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    assert_eq!(
        got.expect_err("the client is reset").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    line_with(&mut rx, "the client is reset").await;
    let pid = relay.id().expect("pid");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(20), relay.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(1));
    line_with(&mut rx, "1 of 1 relayed connection(s) failed").await;
}

/// Issue 13, item 5: hostile values for every numeric flag are usage errors (status 2) that
/// name the flag; never a panic.
#[test]
fn hostile_flag_values_are_usage_errors() {
    let hostile = [
        "",
        " ",
        "-1",
        "1e20",
        "1e400",
        "NaN",
        "inf",
        "-inf",
        "18446744073709551615",
        "18446744073709551616",
        "abc",
        "0x10",
        "\u{1F4A5}",
        "\n",
    ];
    let cases: [(&[&str], &str); 8] = [
        (&["relay", "tcp:0", "tcp:127.0.0.1:9"], "--linger"),
        (&["relay", "tcp:0", "tcp:127.0.0.1:9"], "--idle-timeout"),
        (&["relay", "tcp:0", "tcp:127.0.0.1:9"], "--drain-timeout"),
        (&["relay", "tcp:0", "tcp:127.0.0.1:9"], "--max-connections"),
        (&["relay", "tcp:0", "tcp:127.0.0.1:9"], "--half-close"),
        (&["listen", "tcp:0"], "--linger"),
        (&["connect", "tcp:127.0.0.1:9"], "--linger"),
        (&["connect", "tcp:127.0.0.1:9"], "--half-close"),
    ];
    for (args, flag) in cases {
        for v in hostile {
            let out = std::process::Command::new(BIN)
                .args(args)
                .args([flag, v])
                .stdin(Stdio::null())
                .output()
                .expect("run");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {v:?}: {err}");
            assert!(
                err.starts_with(&format!("{flag}: expected")),
                "{flag} {v:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    // Zero: a usage error where it makes no sense.
    for (flag, v) in [
        ("--idle-timeout", "0"),
        ("--max-connections", "0"),
        ("--idle-timeout", "0.0000000001"),
        ("--max-connections", "1048577"),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["relay", "tcp:0", "tcp:127.0.0.1:9", flag, v])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{flag} {v}");
    }
    // A flag without its value.
    let out = std::process::Command::new(BIN)
        .args(["relay", "tcp:0", "tcp:127.0.0.1:9", "--linger"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// Issue 13, item 6: with no flags the relay is bounded by what its open-files limit fits,
/// says so at start, and a flood of connections waits instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_is_bounded_by_default_and_a_flood_waits() {
    const CONNS: usize = 30;
    let (_echo, echo_at, _erx) =
        start(cmd(&["listen", "tcp:0:interface=127.0.0.1", "--echo"])).await;
    let mut c = Command::new("bash");
    c.args([
        "-c",
        "ulimit -n 64 && exec \"$0\" \"$@\"",
        BIN,
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{}", port_in(&echo_at)),
    ]);
    let (_relay, front_at, mut rx) = start(c).await;
    let limit = line_with(&mut rx, "relay: at most").await;
    assert!(
        limit.contains("at most 5 connections at once (the open-files limit 64"),
        "{limit}"
    );
    let front = port_in(&front_at);
    let mut tasks = Vec::new();
    for i in 0..CONNS {
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", front))
                .await
                .expect("connect");
            let msg = vec![i as u8; 100_000];
            s.write_all(&msg).await.expect("write");
            s.shutdown().await.expect("half-close");
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.expect("no reset");
            assert_eq!(back, msg, "connection {i}");
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        for t in tasks {
            t.await.expect("connection");
        }
    })
    .await
    .expect("every connection of the flood was served");
}

/// Issue 20, item 7: a relay to a `haproxy:` target announces its client's address, not its
/// own; through a `haproxy:` listener, the address from the header it received. The receiver
/// is real Twisted (`haproxy:` server endpoint) where available, and our own relay log.
#[tokio::test]
async fn a_relay_passes_its_clients_address_on() {
    // Our own receiver: a second relay behind a haproxy: listener logs the client it was told.
    let (_echo, echo_at, _erx) =
        start(cmd(&["listen", "tcp:0:interface=127.0.0.1", "--echo"])).await;
    let (_back, back_at, mut back_rx) = start(cmd(&[
        "relay",
        "haproxy:tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{}", port_in(&echo_at)),
    ]))
    .await;
    let (_mid, mid_at, _mrx) = start(cmd(&[
        "relay",
        "haproxy:tcp:0:interface=127.0.0.1",
        &format!("haproxy:tcp:127.0.0.1:{}", port_in(&back_at)),
    ]))
    .await;
    let (_front, front_at, _frx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("haproxy:tcp:127.0.0.1:{}", port_in(&mid_at)),
    ]))
    .await;
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind("127.0.0.3:0".parse().expect("addr"))
        .expect("bind 127.0.0.3");
    let client_port = sock.local_addr().expect("addr").port();
    let mut s = sock
        .connect(
            format!("127.0.0.1:{}", port_in(&front_at))
                .parse()
                .expect("addr"),
        )
        .await
        .expect("connect");
    s.write_all(b"hi").await.expect("write");
    s.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, b"hi");
    let line = line_with(&mut back_rx, "relay ").await;
    assert!(
        line.starts_with(&format!("relay 127.0.0.3:{client_port} -> ")),
        "two relays later, the first client: {line}"
    );

    if !twisted() {
        return;
    }
    let dir = temp_dir("twisted-haproxy");
    let (_tw, tw_port, mut tw_lines) =
        twisted_server(&dir, "peer", "haproxy:tcp:0:interface=127.0.0.1").await;
    let (_relay, relay_at, _rrx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("haproxy:tcp:127.0.0.1:{tw_port}"),
    ]))
    .await;
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind("127.0.0.3:0".parse().expect("addr"))
        .expect("bind 127.0.0.3");
    let client_port = sock.local_addr().expect("addr").port();
    let mut s = sock
        .connect(
            format!("127.0.0.1:{}", port_in(&relay_at))
                .parse()
                .expect("addr"),
        )
        .await
        .expect("connect");
    s.write_all(b"hi").await.expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
    let seen = tokio::time::timeout(Duration::from_secs(20), tw_lines.next_line())
        .await
        .expect("Twisted saw a connection in time")
        .expect("read")
        .expect("a line");
    assert_eq!(seen, format!("peer 127.0.0.3:{client_port}"));
}

/// No panic on a closed output: `endpoints types | head -1` and a relay whose stderr reader
/// went away (its log lines are lost; it goes on serving).
#[tokio::test]
async fn closed_stdout_or_stderr_is_no_panic() {
    for args in [&["types"][..], &["help"], &["types", "--json"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("exits")
            .expect("output");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    let (_echo, echo_at, _erx) =
        start(cmd(&["listen", "tcp:0:interface=127.0.0.1", "--echo"])).await;
    let mut relay = Command::new(BIN)
        .args([
            "relay",
            "tcp:0:interface=127.0.0.1",
            &format!("tcp:127.0.0.1:{}", port_in(&echo_at)),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("relay");
    let mut lines = BufReader::new(relay.stderr.take().expect("stderr")).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    let front = port_in(first.trim_start_matches("listening on "));
    drop(lines);
    for round in 0..3 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", front))
            .await
            .expect("the relay still accepts");
        s.write_all(b"still here").await.expect("write");
        s.shutdown().await.expect("half-close");
        let mut back = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut back))
            .await
            .expect("in time")
            .expect("read");
        assert_eq!(back, b"still here", "round {round}");
    }
    assert!(
        relay.try_wait().expect("status").is_none(),
        "the relay is still running"
    );
}

/// SIGTERM is caught from the start: a relay signalled at once still stops gracefully (status
/// 0, port released), and `connect` ends on SIGINT instead of ignoring it.
#[tokio::test]
async fn signals_are_caught_from_the_start_and_end_every_command() {
    let (mut relay, shown, _rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        "tcp:127.0.0.1:9",
    ]))
    .await;
    let port = port_in(&shown);
    std::process::Command::new("kill")
        .args(["-TERM", &relay.id().expect("pid").to_string()])
        .status()
        .expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(20), relay.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());

    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = server.local_addr().expect("addr").port();
    let mut client = Command::new(BIN)
        .args(["connect", &format!("tcp:127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("connect");
    let (_conn, _) = server.accept().await.expect("accept");
    std::process::Command::new("kill")
        .args(["-INT", &client.id().expect("pid").to_string()])
        .status()
        .expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(20), client.wait())
        .await
        .expect("connect ends on SIGINT")
        .expect("status");
    assert_eq!(status.code(), Some(130), "{status}");
}
