//! Issue 24, item 7: a connection still open at the relay's drain deadline is cut loudly:
//! reset on both sides, logged with its byte counts, and counted in a non-zero exit status.
//! The numbers: `--drain-timeout 1`, a backend streaming 100,000 bytes; at SIGTERM
//! the client used to get a clean end after 25,000 and the command exited 0.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::data_paths::{cmd, line_with, port_in, start};

#[tokio::test]
async fn a_connection_cut_at_the_drain_deadline_is_reset_logged_and_counted() {
    // The backend: 100,000 bytes at 25,000 a second (2,500 every 100 ms), 4 s in all: still
    // streaming 1 s after the SIGTERM below.
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up = backend.local_addr().expect("addr").port();
    let streamer = tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.expect("accept");
        let mut sent = 0usize;
        for _ in 0..40 {
            if s.write_all(&[7u8; 2500]).await.is_err() {
                break;
            }
            sent += 2500;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut sink = Vec::new();
        let after = s.read_to_end(&mut sink).await;
        (sent, after)
    });
    let (mut relay, shown, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{up}"),
        "--drain-timeout",
        "1",
    ]))
    .await;
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port_in(&shown)))
        .await
        .expect("connect");
    let mut got = vec![0u8; 10_000];
    client.read_exact(&mut got).await.expect("the first bytes");
    let pid = relay.id().expect("pid");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    // The cut comes 1 s after the signal; 20 s is for a loaded machine.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut rest))
        .await
        .expect("the relay ended the connection in time");
    let received = 10_000 + rest.len();
    assert!(received < 100_000, "cut before the end: {received}");
    assert_eq!(
        end.expect_err("a reset, not a clean end").kind(),
        std::io::ErrorKind::ConnectionReset,
        "after {received} bytes"
    );
    let status = tokio::time::timeout(Duration::from_secs(20), relay.wait())
        .await
        .expect("the relay exits")
        .expect("status");
    assert_eq!(status.code(), Some(1), "a cut connection is a failure");
    let line = line_with(&mut rx, "drain deadline").await;
    assert!(line.contains("cut"), "{line}");
    let line = line_with(&mut rx, "bytes down").await;
    assert!(
        line.contains("cut") && line.contains("both sides reset"),
        "{line}"
    );
    let (sent, after) = streamer.await.expect("backend");
    assert!(
        sent < 100_000 || after.is_err(),
        "the backend saw the cut too"
    );
}
