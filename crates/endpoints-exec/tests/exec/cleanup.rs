//! issue 27 item 3: dropping the connection sends SIGTERM to the child's process group,
//! SIGKILL after `grace=`, and reaps it; the child gets descriptors 0, 1 and 2 only.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Read one line from the connection (bounded).
async fn line(conn: &mut endpoints_core::Connection) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    tokio::time::timeout(PATIENCE, async {
        while !got.ends_with(b"\n") {
            let n = conn.read(&mut b).await.expect("read a line");
            assert!(n > 0, "end of stream before a line: {got:?}");
            got.push(b[0]);
        }
    })
    .await
    .expect("a line within the patience bound");
    String::from_utf8(got).expect("utf-8").trim().to_owned()
}

#[tokio::test]
async fn dropping_the_connection_terminates_and_reaps_the_child() {
    let conn = connect("exec:sleep:1000").await.expect("start");
    let pid = pid_of(&conn);
    assert!(state(pid).is_some(), "running");
    drop(conn);
    wait_gone(pid).await;
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_gets_sigkill_after_the_grace_period() {
    // The whole group ignores SIGTERM (an ignored signal stays ignored across exec).
    let mut conn =
        connect(r#"exec:sh:-c:trap "" TERM; echo ready; while \:; do sleep 1; done:grace=0.5"#)
            .await
            .expect("start");
    let pid = pid_of(&conn);
    assert_eq!(line(&mut conn).await, "ready");
    let start = Instant::now();
    drop(conn);
    wait_gone(pid).await;
    let took = start.elapsed();
    // SIGKILL is sent only once the grace period is over: a lower bound, never flaky.
    assert!(
        took >= Duration::from_millis(500),
        "gone after {took:?}, before grace=0.5"
    );
}

#[tokio::test]
async fn what_the_child_started_in_its_group_is_ended_too() {
    let mut conn = connect("exec:sh:-c:sleep 1000 & echo $!; wait")
        .await
        .expect("start");
    let leader = pid_of(&conn);
    let background: u32 = line(&mut conn).await.parse().expect("a pid");
    assert!(state(background).is_some());
    drop(conn);
    wait_gone(leader).await;
    // The background sleep is not our child: once killed, its new parent reaps it.
    let start = Instant::now();
    while state(background).is_some_and(|s| s != 'Z') {
        assert!(
            start.elapsed() < PATIENCE,
            "the group's other process survived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_child_that_closed_stdout_and_runs_on_is_ended_by_the_drop() {
    let mut conn = connect("exec:sh:-c:exec >&-; exec sleep 1000")
        .await
        .expect("start");
    let pid = pid_of(&conn);
    let mut buf = [0u8; 8];
    // Its stdout ended, it runs on: no end of stream (a pending read; 300 ms is how long we look).
    let early = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
    assert!(early.is_err(), "ended while running: {early:?}");
    drop(conn);
    wait_gone(pid).await;
}

#[tokio::test]
async fn a_child_that_exits_by_itself_is_reaped_while_the_connection_is_kept() {
    let mut conn = connect("exec:echo:bye").await.expect("start");
    let pid = pid_of(&conn);
    let mut out = String::new();
    conn.read_to_string(&mut out).await.expect("clean end");
    assert_eq!(out, "bye\n");
    // Reaped without waiting for the drop: no zombie while the connection lives on.
    wait_gone(pid).await;
    drop(conn);
}

/// Make a descriptor without close-on-exec, as an application might have inherited one.
#[allow(unsafe_code)]
mod leaky {
    use std::os::fd::{AsRawFd, OwnedFd};

    pub(crate) fn without_cloexec(fd: &OwnedFd) {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own and keep open for the call; it changes its
        // flags only.
        let r = unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
        assert_eq!(r, 0, "fcntl(F_SETFD, 0)");
    }
}

#[tokio::test]
async fn the_child_gets_descriptors_0_1_and_2_only() {
    if !have("python3", "--version", "python3") {
        return;
    }
    let file = std::fs::File::open("/proc/self/stat").expect("open");
    let fd: std::os::fd::OwnedFd = file.into();
    leaky::without_cloexec(&fd);
    use std::os::fd::AsRawFd;
    let leaked = fd.as_raw_fd();
    // Every descriptor number the child has open (lexists opens nothing).
    let prog = "exec:python3:-c:import os; print([n for n in range(4096) if os.path.lexists('/proc/self/fd/' + str(n))])";
    let mut conn = connect(prog).await.expect("start");
    conn.shutdown().await.expect("close stdin");
    let mut out = String::new();
    tokio::time::timeout(PATIENCE, conn.read_to_string(&mut out))
        .await
        .expect("bounded")
        .expect("python");
    assert_eq!(
        out.trim(),
        "[0, 1, 2]",
        "fd {leaked} of ours (no close-on-exec) must not reach it"
    );
    drop(fd);
}

#[tokio::test]
async fn a_connection_dropped_in_the_middle_of_a_read_leaves_nothing() {
    let mut conn = connect("exec:cat").await.expect("start");
    let pid = pid_of(&conn);
    conn.write_all(b"x").await.expect("write");
    let mut buf = [0u8; 1];
    conn.read_exact(&mut buf).await.expect("echo");
    {
        // A read cancelled by its timeout, then the connection dropped.
        let r = tokio::time::timeout(Duration::from_millis(50), conn.read(&mut buf)).await;
        assert!(r.is_err(), "cat has nothing more to say");
    }
    drop(conn);
    wait_gone(pid).await;
}
