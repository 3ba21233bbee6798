//! issue 27 item 3: 1,000 connections that each start and end a child leave this process's
//! descriptor and child-process counts where they were, whichever way each one ends (read
//! to the end, dropped unread, dropped in the middle of a cancelled read, a failed exit).
//! Alone in its test binary: it counts this process's descriptors and children.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::*;
use endpoints_core::registry::build_client;

use endpoints_exec as _;

/// Wait (bounded) until `now()` is back to at most `before`: children are reaped by their
/// supervisor tasks just after the drop. A leak stays.
async fn settled(before: usize, now: impl Fn() -> usize) -> usize {
    let start = Instant::now();
    while now() > before && start.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_leave_descriptors_and_processes_as_they_were() {
    let cat = build_client(&"exec:cat:grace=1".parse().expect("parse")).expect("build");
    let failing = build_client(&"exec:sh:-c:exit 1".parse().expect("parse")).expect("build");
    // Warm up: the runtime's signal driver and the blocking pool open descriptors once.
    drop(cat.connect().await.expect("warm-up"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fds_before = open_fds();
    let children_before = children().len();

    let start = Instant::now();
    for i in 0..1000 {
        match i % 4 {
            0 => {
                let mut conn = cat.connect().await.expect("start cat");
                conn.write_all(b"ping").await.expect("write");
                conn.shutdown().await.expect("close stdin");
                let mut out = Vec::new();
                tokio::time::timeout(PATIENCE, conn.read_to_end(&mut out))
                    .await
                    .expect("bounded")
                    .expect("cat exits 0");
                assert_eq!(out, b"ping");
            }
            1 => drop(cat.connect().await.expect("start cat")),
            2 => {
                let mut conn = cat.connect().await.expect("start cat");
                let mut b = [0u8; 1];
                // A read cancelled by its timeout (cat has nothing to say), then the drop.
                let r = tokio::time::timeout(Duration::from_millis(1), conn.read(&mut b)).await;
                assert!(r.is_err(), "cat said something unasked");
            }
            _ => {
                let mut conn = failing.connect().await.expect("start sh");
                let e = tokio::time::timeout(PATIENCE, conn.read_to_end(&mut Vec::new()))
                    .await
                    .expect("bounded")
                    .expect_err("exit 1");
                assert!(e.to_string().contains("exited with status 1"), "{e}");
            }
        }
    }
    let took = start.elapsed();
    let fds_after = settled(fds_before, open_fds).await;
    let children_after = settled(children_before, || children().len()).await;
    println!("1000 connections in {took:?}");
    assert_eq!(fds_before, fds_after, "descriptors left open");
    assert_eq!(
        children_before,
        children_after,
        "children left behind (zombies count): {:?}",
        children()
    );
}
