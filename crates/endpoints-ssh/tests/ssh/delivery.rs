//! Nothing lost at the end (issue 33): every byte written before the shutdown reaches the
//! far end before it sees a clean end, also when the stream (and the endpoint, and so the
//! session's last user) is dropped at once; and a far end that resets mid-upload fails the
//! writer instead of leaving it waiting for a window that never opens.

use std::time::Duration;

use endpoints_core::Delivery;
use endpoints_test_support::sshd::{self, Sshd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{client, described};

/// The matrix's transfer size: more than sshd's channel window (2 MiB) and the socket
/// buffers, so that its last bytes are still in sshd when the client is done.
const SIZE: usize = 6 * 1024 * 1024;

/// A sink on 127.0.0.1 for one connection: waits `pause` before reading (so sshd holds what
/// it cannot write yet), reads to the end, then closes; returns the count and how it ended.
async fn sink(pause: Duration) -> (u16, tokio::task::JoinHandle<(usize, std::io::Result<()>)>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        tokio::time::sleep(pause).await;
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0;
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return (n, Ok(())),
                Ok(k) => n += k,
                Err(e) => return (n, Err(e)),
            }
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_dropped_at_once_reaches_the_far_end_whole() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("deliver");
    let data = vec![0x5au8; SIZE];
    // A few rounds: with the old code every one lost the bytes sshd still held (the session,
    // its last user gone, closed its TCP connection and sshd's process died with them).
    for round in 0..4 {
        let (port, far) = sink(Duration::from_millis(300)).await;
        let c = client(&described(&s, &format!("forward=127.0.0.1\\:{port}")));
        let mut conn = c.connect().await.expect("connects");
        // As `endpoints::connect` does: the endpoint (and its session slot) goes at once.
        drop(c);
        conn.write_all(&data).await.expect("writes");
        conn.shutdown().await.expect("shuts down");
        let delivery = conn.extensions().get::<Delivery>().cloned();
        drop(conn);
        // Bounded by the test harness's own bound on the sink: it ends when sshd closes it
        // (a clean end only after every byte, or a truncation the test reports).
        let (got, how) = far.await.expect("sink");
        how.expect("the far end ends cleanly");
        assert_eq!(
            got, SIZE,
            "round {round}: the far end got {got} of {SIZE} bytes"
        );
        // The close handshake confirms it (well within the linger bound).
        let d = delivery.expect("an ssh: connection declares its Delivery");
        d.wait().await.expect("the SSH server confirmed the end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_end_reset_mid_upload_fails_the_writer() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("resetup");
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let far = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut buf = vec![0u8; 1024 * 1024];
        s.read_exact(&mut buf).await.expect("reads 1 MiB");
        // A crashing peer's kernel: a reset, with unread bytes.
        s.set_zero_linger().expect("SO_LINGER 0");
        drop(s);
    });
    let c = client(&described(&s, &format!("forward=127.0.0.1\\:{port}")));
    let conn = c.connect().await.expect("connects");
    let (mut r, mut w) = tokio::io::split(conn);
    let chunk = vec![0xa5u8; 64 * 1024];
    let writing = async {
        // 256 MiB offered: far more than every buffer on the way can hold.
        for _ in 0..4096 {
            w.write_all(&chunk).await?;
        }
        w.shutdown().await
    };
    let mut got = Vec::new();
    // The bound only stops a hang (the old code waited for a window that never opened);
    // the failure comes within a round trip or two of the reset.
    let (wrote, read) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(writing, r.read_to_end(&mut got))
    })
    .await
    .expect("the writer learns of the reset instead of waiting forever");
    far.await.expect("far end");
    let e = wrote.expect_err("a writer whose far end reset must fail, not end cleanly");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("SSH server closed the forward"),
        "{e}"
    );
    // The read side: sshd sends the far end's end (eof) before its close; either an end or a
    // reset-like error, never a hang.
    let _ = read;
}
