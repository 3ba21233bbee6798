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
