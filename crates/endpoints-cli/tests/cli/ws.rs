//! The command as the websocat/wstunnel replacement (issue 26 item 5): `relay tcp: ws:` and
//! `relay ws:...:tcp: tcp:`, chained; `connect ws:` and `listen ws:... --echo`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

/// Each step takes milliseconds on loopback; 30 s is over 10x a 16 MiB transfer through two
/// debug-built relays on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(30);

/// Start `endpoints ARGS`, wait for its `listening on ...` line; the child and the port.
async fn start(args: &[&str]) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line");
    assert!(line.starts_with("listening on "), "{line}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let d: endpoints::Description = line["listening on ".len()..].parse().expect("description");
    let port = d.get("port").and_then(|p| p.parse().ok()).expect("a port");
    (child, port)
}

fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = offset + i as u64;
        *b = (x ^ (x >> 8) ^ (x >> 17)).wrapping_mul(31) as u8;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_carry_a_tcp_stream_over_websocket_both_ways() {
    const TOTAL: u64 = 16 << 20;
    // tcp echo <- relay (ws server -> tcp) <- relay (tcp -> ws client) <- tcp client
    let (_echo, echo) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let (_exit, exit) = start(&[
        "relay",
        "ws:path=/tunnel:tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{echo}"),
    ])
    .await;
    let (_entry, entry) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("ws:127.0.0.1:{exit}:path=/tunnel"),
    ])
    .await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", entry))
        .await
        .expect("connect");
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut sent = 0u64;
        while sent < TOTAL {
            pattern(sent, &mut buf);
            w.write_all(&buf).await.expect("write");
            sent += buf.len() as u64;
        }
        w
    });
    let (mut got, mut want) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut received = 0u64;
    while received < TOTAL {
        let n = tokio::time::timeout(STEP, r.read(&mut got))
            .await
            .expect("progress")
            .expect("read");
        assert_ne!(n, 0, "EOF after {received} bytes");
        pattern(received, &mut want[..n]);
        assert!(got[..n] == want[..n], "corruption at byte {received}");
        received += n as u64;
    }
    // Every byte back; now the client's half-close becomes a Close, which the far relay
    // passes on to the echo server; the near relay's end reaches the client as EOF.
    let mut w = writer.await.expect("writer");
    w.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, r.read_to_end(&mut rest))
        .await
        .expect("EOF in time")
        .expect("a clean end");
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
}

#[tokio::test]
async fn connect_and_listen_speak_websocket() {
    let (_server, port) = start(&["listen", "ws:tcp:0:interface=127.0.0.1", "--echo"]).await;
    let mut client = Command::new(BIN)
        .args(["connect", &format!("ws:127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connect");
    let mut stdin = client.stdin.take().expect("stdin");
    let mut data = vec![0u8; 1 << 20];
    pattern(0, &mut data);
    let feed = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&feed).await.expect("write");
        // EOF: connect sends Close once stdin ends; the echo came back before the server's
        // Close (it echoes each message before it reads the next frame).
    });
    let out = tokio::time::timeout(STEP, client.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    writer.await.expect("writer");
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        out.stdout == data,
        "{} of {} bytes back",
        out.stdout.len(),
        data.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_to_wss_with_tls_trust_options() {
    let dir = std::env::temp_dir().join(format!("endpoints-cli-wss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (ca, key, cert) = crate::data_paths::pki(&dir);
    let esc = |p: &std::path::Path| endpoints::escape(&p.display().to_string());
    let (_server, port) = start(&[
        "listen",
        &format!(
            "ws:path=/s:ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
            esc(&key),
            esc(&cert)
        ),
        "--echo",
    ])
    .await;
    let (_relay, entry) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("wss:localhost:{port}:path=/s:trustRoots={}", esc(&ca)),
    ])
    .await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", entry))
        .await
        .expect("connect");
    let mut data = vec![0u8; 1 << 20];
    pattern(0, &mut data);
    let (mut r, mut w) = s.split();
    let back = async {
        let mut back = vec![0u8; data.len()];
        r.read_exact(&mut back).await.map(|_| back)
    };
    let (sent, back) = tokio::time::timeout(STEP, async { tokio::join!(w.write_all(&data), back) })
        .await
        .expect("in time");
    sent.expect("write");
    assert!(back.expect("read") == data, "the echo through wss differs");
    w.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, r.read_to_end(&mut rest))
        .await
        .expect("EOF in time")
        .expect("a clean end");
    assert!(rest.is_empty());
}

// Issue 30, items 1 and 2: nothing cut through a WebSocket is reported as complete.

/// Bytes that are not all the same (a shifted byte would show).
fn issue_bytes(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    pattern(7, &mut data);
    data
}

/// `endpoints connect CLIENT < data`: its exit code, stdout and stderr, bounded by [`STEP`].
async fn connect_with(client: &str, data: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    connect_with_flags(client, &[], data).await
}

/// [`connect_with`], with more flags (`--half-close always`).
async fn connect_with_flags(
    client: &str,
    flags: &[&str],
    data: &[u8],
) -> (Option<i32>, Vec<u8>, String) {
    // One directory per call: tests run at once.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = super::data_paths::temp_dir(&format!("ws-connect-{call}"));
    let input = dir.join("big.bin");
    std::fs::write(&input, data).expect("input");
    let child = Command::new(BIN)
        .args(["connect", client])
        .args(flags)
        .stdin(Stdio::from(std::fs::File::open(&input).expect("open")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connect");
    let out = tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .expect("connect exits in time")
        .expect("output");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Item 2, the issue's commands: `socat TCP-LISTEN:...,fork EXEC:cat`, `relay
/// 'ws:tcp:...' 'tcp:...'`, `connect 'ws:...' < big.bin > back.bin`: every byte comes back
/// (100 KB and 5,000,000 bytes) and connect exits 0. The half-close is carried in-band
/// between our two ends, so `cat` sees its end of input and the tail comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_hop_to_socat_cat_returns_every_byte() {
    if !endpoints_test_support::peers::program("socat", "-V", "socat") {
        return;
    }
    let socat_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _socat = Command::new("socat")
        .args([
            &format!("TCP-LISTEN:{socat_port},bind=127.0.0.1,reuseaddr,fork"),
            "EXEC:cat",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("socat");
    let (_relay, relay) = start(&[
        "relay",
        "ws:tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{socat_port}"),
    ])
    .await;
    // socat listens within milliseconds; wait for it (bounded).
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", socat_port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // `--half-close always` was short too: the end is in-band, at once either way.
    for (size, flags) in [
        (100_000, &[][..]),
        (5_000_000, &[][..]),
        (5_000_000, &["--half-close", "always"][..]),
    ] {
        let data = issue_bytes(size);
        let (code, back, err) =
            connect_with_flags(&format!("ws:127.0.0.1:{relay}"), flags, &data).await;
        assert!(
            back == data,
            "{flags:?}: {} of {size} bytes back; stderr: {err}",
            back.len()
        );
        assert_eq!(code, Some(0), "{flags:?}: {err}");
    }
}

/// A Python `websockets` echo server that takes a moment per message (so it is still
/// echoing when our input ends); its process and port. `None` (skipped) without python3's
/// `websockets`.
async fn python_echo() -> Option<(Child, u16)> {
    if !endpoints_test_support::peers::python_modules(
        &["websockets"],
        "install the Debian package `python3-websockets`",
    ) {
        return None;
    }
    const ECHO: &str = r#"
import asyncio
from websockets.asyncio.server import serve

async def handler(ws):
    async for m in ws:
        await asyncio.sleep(0.005)
        await ws.send(m)

async def main():
    async with serve(handler, "127.0.0.1", 0, max_size=2**24) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"#;
    let mut py = Command::new("python3")
        .args(["-c", ECHO])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(py.stdout.take().expect("stdout")).lines();
    let port: u16 = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("the port in time")
        .expect("read")
        .expect("a line")
        .trim()
        .parse()
        .expect("a port");
    Some((py, port))
}

/// Item 2 with a foreign peer: Python `websockets` echoes 4 MiB; `connect ws:` holds its Close
/// after stdin ends until the server has been quiet (1 s without `--linger`), so the echo
/// comes back whole, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_python_echo_gets_every_byte_back() {
    let Some((_py, port)) = python_echo().await else {
        return;
    };
    let data = issue_bytes(4 << 20);
    for run in 0..2 {
        let (code, back, err) = connect_with(&format!("ws:127.0.0.1:{port}"), &data).await;
        assert!(
            back == data,
            "run {run}: {} of {} bytes back; stderr: {err}",
            back.len(),
            data.len()
        );
        assert_eq!(code, Some(0), "run {run}: {err}");
    }
}

/// Item 1: a `ws:` target that sends one message and then goes silent (no pong) under
/// `ping=1:pongTimeout=1` is a truncation: the relay's client gets a reset after the message,
/// not an end of data, and the relay logs a warning and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_websocket_target_is_a_truncation_not_an_end() {
    use endpoints_test_support::serve::{listen, port_of};
    let mut silent = listen("ws:tcp:0:interface=127.0.0.1").await;
    let silent_port = port_of(&*silent);
    let server = tokio::spawn(async move {
        let mut conn = silent.accept().await.expect("accept");
        conn.write_all(b"first message").await.expect("write");
        conn.flush().await.expect("flush");
        // Silent: never read again, so no pong goes out; held open past the test's end.
        tokio::time::sleep(STEP).await;
        drop(conn);
    });
    let mut relay = Command::new(BIN)
        .args([
            "relay",
            "tcp:0:interface=127.0.0.1",
            &format!("ws:127.0.0.1:{silent_port}:ping=1:pongTimeout=1"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("relay");
    let mut lines = BufReader::new(relay.stderr.take().expect("stderr")).lines();
    let mut port = None;
    while port.is_none() {
        let line = tokio::time::timeout(STEP, lines.next_line())
            .await
            .expect("in time")
            .expect("read")
            .expect("a line");
        if let Some(d) = line.strip_prefix("listening on ") {
            let d: endpoints::Description = d.parse().expect("description");
            port = d.get("port").and_then(|p| p.parse().ok());
        }
    }
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port.expect("port")))
        .await
        .expect("connect");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    // The keepalive fails within about 2 s; STEP bounds it.
    let end = loop {
        match tokio::time::timeout(STEP, client.read(&mut buf))
            .await
            .expect("the relay ends the connection in time")
        {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(got, b"first message");
    let e = end.expect_err("a reset, not an end of data");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    // SIGTERM: the relay drains (nothing open) and exits 1 for the truncated connection.
    let pid = relay.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -TERM {pid}");
    let mut log = String::new();
    while let Ok(Some(l)) = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("the log ends in time")
    {
        log.push_str(&l);
        log.push('\n');
    }
    let status = tokio::time::timeout(STEP, relay.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(
        log.contains("warning: the transfer was truncated") && log.contains("pong"),
        "a warning naming the keepalive: {log}"
    );
    assert_eq!(status.code(), Some(1), "{log}");
    server.abort();
}

/// `endpoints listen ws:... --once` with `stdin` and `stdout`; its child and port.
async fn listen_once_ws(stdin: Stdio, stdout: Stdio) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["listen", "ws:tcp:0:interface=127.0.0.1", "--once"])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("a line");
    assert!(line.starts_with("listening on "), "{line}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let d: endpoints::Description = line["listening on ".len()..].parse().expect("description");
    (
        child,
        d.get("port").and_then(|p| p.parse().ok()).expect("a port"),
    )
}

/// Item 2, as `tcp:` does it (issue 23's nc-style transfers): upload and download of
/// 5,000,000 bytes between `listen ws: --once` and `connect ws:`, the receiving side's stdin
/// at /dev/null. Its end of data goes first (in-band) and the other way goes on: every byte
/// arrives and both exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_over_websocket_deliver_everything() {
    let dir = super::data_paths::temp_dir("ws-updown");
    let big = dir.join("big.bin");
    let data = issue_bytes(5_000_000);
    std::fs::write(&big, &data).expect("big");
    let file_in = |p: &std::path::Path| Stdio::from(std::fs::File::open(p).expect("open"));
    let file_out = |p: &std::path::Path| Stdio::from(std::fs::File::create(p).expect("create"));
    for (way, listen_in, listen_out, connect_in, connect_out) in [
        ("upload", None, Some("up.out"), Some(&big), None),
        ("download", Some(&big), None, None, Some("down.out")),
    ] {
        let out = dir.join(listen_out.or(connect_out).expect("an output"));
        let (server, port) = listen_once_ws(
            listen_in.map_or_else(Stdio::null, |p| file_in(p)),
            listen_out.map_or_else(Stdio::null, |_| file_out(&out)),
        )
        .await;
        let client = Command::new(BIN)
            .args(["connect", &format!("ws:127.0.0.1:{port}")])
            .stdin(connect_in.map_or_else(Stdio::null, |p| file_in(p)))
            .stdout(connect_out.map_or_else(Stdio::null, |_| file_out(&out)))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("connect");
        let c = tokio::time::timeout(STEP, client.wait_with_output())
            .await
            .expect("connect exits in time")
            .expect("output");
        let s = tokio::time::timeout(STEP, server.wait_with_output())
            .await
            .expect("listen exits in time")
            .expect("output");
        let got = std::fs::read(&out).expect("output file");
        assert!(
            got == data,
            "{way}: {} of {} bytes; connect: {}",
            got.len(),
            data.len(),
            String::from_utf8_lossy(&c.stderr)
        );
        assert_eq!(
            (c.status.code(), s.status.code()),
            (Some(0), Some(0)),
            "{way}: {}",
            String::from_utf8_lossy(&c.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 2, "never ended cleanly after a reset": the relay's client has sent its end of data
/// (in-band), then the relay's target resets after a partial answer. The reset reaches
/// `connect ws:` as a failure (no Close 1000 after the cut): a warning and exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_our_end_of_data_is_not_a_clean_end() {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target_port = target.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut s, _) = target.accept().await.expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("the client's end");
        s.write_all(b"partial answer").await.expect("write");
        // Let it reach the relay before the reset.
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.set_zero_linger().expect("SO_LINGER 0");
        drop(s);
        got.len()
    });
    let (_relay, relay) = start(&[
        "relay",
        "ws:tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{target_port}"),
    ])
    .await;
    let data = issue_bytes(100_000);
    let (code, back, err) = connect_with(&format!("ws:127.0.0.1:{relay}"), &data).await;
    assert_eq!(
        server.await.expect("target"),
        data.len(),
        "the upload arrived"
    );
    assert_eq!(back, b"partial answer");
    assert_eq!(code, Some(1), "a cut is not a clean end: {err}");
    assert!(err.contains("warning"), "{err}");
}

/// Item 2 through the relay, with a foreign target: `relay tcp: ws:` to a Python echo. The
/// client half-closes (a FIN); the relay holds its Close until the echo has been quiet for
/// `--linger` (1 s here), so the client gets every byte back, then the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_to_a_python_echo_holds_its_close_until_the_echo_is_done() {
    let Some((_py, port)) = python_echo().await else {
        return;
    };
    let (_relay, relay) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("ws:127.0.0.1:{port}"),
        "--linger",
        "1",
    ])
    .await;
    let data = issue_bytes(4 << 20);
    let s = tokio::net::TcpStream::connect(("127.0.0.1", relay))
        .await
        .expect("connect");
    let (mut r, mut w) = s.into_split();
    let feed = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&feed).await.expect("write");
        w.shutdown().await.expect("FIN");
        w
    });
    let mut back = Vec::new();
    tokio::time::timeout(STEP, r.read_to_end(&mut back))
        .await
        .expect("the end in time")
        .expect("every byte, then a clean end");
    drop(writer.await.expect("writer"));
    assert!(back == data, "{} of {} bytes back", back.len(), data.len());
}
