//! Issue 30, item 4: `listen --echo` (the unit file's example server) does not grow with the
//! connections it has finished, counts only open connections when it drains, and a drain that
//! cuts after a `SIGHUP` handover says so, resets the cut connections and exits non-zero.
//!
//! Every wait is bounded (20 s for a line, 60 s for a process to end), far above what each
//! step takes here (the drain deadline itself is 10 s for `listen --echo`, 1 s for the relay's
//! `--drain-timeout 1`), so a loaded CI machine is not a failure.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::data_paths::{cmd, line_with, port_in, start, temp_dir};

/// The resident set of `pid`, in KiB (`VmRSS` in `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `count` connections to the echo server at `sock`, `threads` at a time, each a one-byte
/// round trip that ends with the client's half-close; panics on the first that fails.
fn round_trips(sock: &Path, count: usize, threads: usize) {
    let each = count / threads;
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..each {
                    let mut c = UnixStream::connect(sock)
                        .unwrap_or_else(|e| panic!("thread {t}, connection {i}: connect: {e}"));
                    c.set_read_timeout(Some(Duration::from_secs(20)))
                        .expect("timeout");
                    c.write_all(b"x").expect("write");
                    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
                    let mut back = Vec::new();
                    c.read_to_end(&mut back).expect("read");
                    assert_eq!(back, b"x", "thread {t}, connection {i}: the echo");
                }
            });
        }
    });
}

/// Send `signal` to `pid` with kill(1).
fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Kills the process a pid file names when the test ends (a successor is not the test's
/// child, so `kill_on_drop` does not reach it).
struct KillNamed(std::path::PathBuf);

impl Drop for KillNamed {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", text.trim()])
                .status();
        }
    }
}

/// 100,000 connections, one after another on four threads: the echo server's memory after
/// them is what it was after the first 10,000 (the old code kept every finished task: about
/// 0.8 KiB a connection, 70 MiB here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_echo_stays_flat_over_100000_connections() {
    let dir = temp_dir("echo-flat");
    let sock = dir.join("echo.sock");
    let desc = format!("unix:{}", sock.display());
    let (child, _shown, _rx) =
        start(cmd(&["listen", &desc, "--echo", "--log-level", "warn"])).await;
    let pid = child.id().expect("pid");
    let s = sock.clone();
    tokio::task::spawn_blocking(move || round_trips(&s, 10_000, 4))
        .await
        .expect("warm-up");
    let warm = rss_kib(pid);
    let s = sock.clone();
    tokio::task::spawn_blocking(move || round_trips(&s, 90_000, 4))
        .await
        .expect("load");
    let after = rss_kib(pid);
    // Allocator noise is well under a MiB; 8 MiB is room for it, a tenth of the old growth.
    assert!(
        after < warm + 8 * 1024,
        "the echo server grew from {warm} KiB to {after} KiB over 90,000 finished connections"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A handover with three connections open after 2,000 finished ones: the drain count is 3;
/// at the echo drain deadline (10 s) the three are cut: each sees a reset, not an end of
/// data, the warning names the SIGHUP handover, and the old process exits 1. (TCP: a unix
/// stream has no reset; there the cut is the warning and the exit status.)
#[tokio::test]
async fn an_echo_drain_counts_open_connections_and_a_cut_after_sighup_says_so() {
    let dir = temp_dir("echo-drain");
    let pid_file = dir.join("pid");
    let _kill = KillNamed(pid_file.clone());
    let (mut child, shown, mut rx) = start(cmd(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]))
    .await;
    let first = child.id().expect("pid");
    let port = port_in(&shown);
    // Off the runtime: the task that reads the child's log must keep running meanwhile.
    tokio::task::spawn_blocking(move || {
        for i in 0..2_000 {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            c.write_all(b"x").expect("write");
            c.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut back = Vec::new();
            c.read_to_end(&mut back).expect("read");
            assert_eq!(back, b"x", "connection {i}");
        }
    })
    .await
    .expect("load");
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut c, b"held")
            .await
            .expect("write");
        let mut back = [0u8; 4];
        c.read_exact(&mut back).await.expect("the echo");
        open.push(c);
    }
    kill(first, "HUP");
    let line = line_with(&mut rx, "is ready; no longer accepting").await;
    assert!(line.contains("draining 3 connection(s)"), "{line}");
    let cut = line_with(&mut rx, "still open").await;
    assert!(
        cut.contains("SIGHUP"),
        "the drain cut names the handover: {cut}"
    );
    assert!(!cut.contains("SIGINT"), "{cut}");
    for mut c in open {
        let mut rest = Vec::new();
        let got = tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut rest))
            .await
            .expect("the cut reaches the client");
        assert!(
            got.is_err(),
            "a cut connection is reset, not ended cleanly: {got:?}"
        );
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the old process exits after its drain")
        .expect("status");
    assert_eq!(status.code(), Some(1), "a cut is a failure: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The relay's drain cut after a SIGHUP handover names the handover, not SIGINT/SIGTERM.
#[tokio::test]
async fn a_relay_drain_cut_after_sighup_names_the_handover() {
    let dir = temp_dir("relay-drain-hup");
    let pid_file = dir.join("pid");
    let _kill = KillNamed(pid_file.clone());
    // A target that takes connections and never answers nor closes.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target_port = target.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((s, _)) = target.accept().await {
            kept.push(s);
        }
    });
    let (mut child, shown, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{target_port}"),
        "--drain-timeout",
        "1",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]))
    .await;
    let port = port_in(&shown);
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut c, b"hello")
        .await
        .expect("write");
    // The relay has connected to the target once the connection is accepted and the bytes
    // forwarded; give it the moment it takes (a second is far more than it needs).
    tokio::time::sleep(Duration::from_secs(1)).await;
    kill(child.id().expect("pid"), "HUP");
    let line = line_with(&mut rx, "is ready; no longer accepting").await;
    assert!(line.contains("draining 1 connection(s)"), "{line}");
    let cut = line_with(&mut rx, "still open").await;
    assert!(
        cut.contains("SIGHUP"),
        "the drain cut names the handover: {cut}"
    );
    assert!(!cut.contains("SIGINT"), "{cut}");
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the old process exits after its drain")
        .expect("status");
    assert_eq!(status.code(), Some(1), "{status}");
    held.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
