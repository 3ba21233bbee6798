//! 500 silent connections and a slow-trickle client do not delay a normal client; the silent
//! ones are closed at the deadline and the descriptor count returns to its baseline. Its own
//! binary: it counts this process's descriptors.

use std::time::{Duration, Instant};

use endpoints_core::Address;
use endpoints_core::registry::build_server;
use endpoints_proxy::encode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use endpoints_tcp as _;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_clients_delay_nobody() {
    let baseline = open_fds();
    let mut l = build_server(
        // Every connection here comes from 127.0.0.1: lift the per-source cap (tested in
        // per_source.rs) so that all 500 silent ones hold slots until the deadline.
        &"haproxy:trusted=any:timeout=2:maxPendingPerSource=1024:tcp:0:interface=127.0.0.1"
            .parse()
            .expect("parse"),
    )
    .expect("build")
    .listen()
    .await
    .expect("listen");
    let addr = l.local_addr().expect("bound").ip().expect("ip");
    let with_listener = open_fds();
    // The application's accept loop; stopping it closes the listener.
    let (tx, mut accepted) = tokio::sync::mpsc::channel(4);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut stopped = stopped;
        loop {
            tokio::select! {
                c = l.accept() => match c {
                    Ok(c) => { let _ = tx.send(c).await; }
                    Err(e) => panic!("accept: {e}"),
                },
                _ = &mut stopped => break,
            }
        }
        l.close().await.expect("close");
    });

    let mut silent = Vec::new();
    for _ in 0..500 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // One byte a second: never completes within the 2 s deadline.
    let trickle = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        for b in b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" {
            if s.write_all(&[*b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        false
    });

    let src = Address::Ip("192.0.2.9:999".parse().expect("addr"));
    let dst = Address::Ip(addr);
    let started = Instant::now();
    let mut normal = TcpStream::connect(addr).await.expect("connect");
    normal
        .write_all(&[&encode(1, &src, &dst)[..], b"hi"].concat())
        .await
        .expect("write");
    let mut conn = tokio::time::timeout(Duration::from_secs(5), accepted.recv())
        .await
        .expect("accepted")
        .expect("ok");
    let waited = started.elapsed();
    assert_eq!(conn.peer_addr(), &src);
    let mut hi = [0u8; 2];
    conn.read_exact(&mut hi).await.expect("data");
    // Order of events: served while the silent ones still hold their slots (none has reached
    // the 2 s deadline yet). The clock bound, 1 s, is over 10x the few ms this takes.
    let mut b = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::ZERO, silent[0].peek(&mut b))
            .await
            .is_err(),
        "the silent connections are still pending"
    );
    assert!(
        waited < Duration::from_secs(1),
        "a normal client waited {waited:?} behind 500 silent ones"
    );

    // At the 2 s deadline every silent connection is closed by the server. The waits below
    // only bound a failing test: 30 s is 15x the deadline, and a passing test returns as
    // soon as the server closes.
    let mut closed = 0;
    for s in &mut silent {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(30), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 500);
    assert!(
        tokio::time::timeout(Duration::from_secs(30), trickle)
            .await
            .expect("trickler ends")
            .expect("task"),
        "the trickler was cut off"
    );

    drop((silent, normal, conn));
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > with_listener && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open_fds(), with_listener, "descriptors leaked");
    stop.send(()).expect("server running");
    server.await.expect("server");
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > baseline && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open_fds(), baseline, "descriptors leaked after close");
}
