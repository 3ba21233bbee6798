//! Issue 25: `SIGHUP` hands the listeners to a successor (the command itself), which adopts
//! them by description; a failing successor changes nothing.
//!
//! Every wait is bounded (20 s for a line, the `line_with` helper; 30 s for a process to end),
//! far above the fraction of a second each step takes on an idle machine, so a loaded CI
//! machine is not a failure.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::data_paths::{cmd, line_with, port_in, start, temp_dir};

/// Send `signal` (`HUP`, `TERM`, `KILL`) to `pid`, with kill(1).
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether `/proc/{pid}` exists at all (a zombie too).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Wait until `pid` is gone (30 s at most; it takes milliseconds).
async fn gone(pid: u32) {
    for _ in 0..300 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("process {pid} still runs after 30 s");
}

/// How many descriptors `pid` has open, once two counts 200 ms apart agree (a closed
/// connection's socket goes just after its log line). At most 10 s.
async fn open_fds_settled(pid: u32) -> usize {
    let count = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fds")
            .count()
    };
    let mut last = count();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the descriptor count of {pid} kept changing for 10 s");
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid")
}

/// The pid in the pid file, once it is written (just after the `listening on` line; 20 s at
/// most).
async fn written_pid(path: &Path) -> u32 {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no pid in {} after 20 s", path.display());
}

/// Wait until the pid file names someone other than `old` (20 s at most).
async fn pid_changes(path: &Path, old: u32) -> u32 {
    for _ in 0..200 {
        let now = read_pid(path);
        if now != old {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the pid file still names {old} after 20 s");
}

/// Kills whatever the pid file names when the test ends, passed or not: a successor is not
/// the test's child, so `kill_on_drop` does not reach it.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0)
            && let Ok(pid) = text.trim().parse::<u32>()
            && alive(pid)
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// One echo round trip on a new TCP connection; the error says which step failed.
async fn echo_tcp(port: u16, n: u64) -> Result<(), String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    echo_on(&mut s, n).await
}

async fn echo_on<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    n: u64,
) -> Result<(), String> {
    let msg = format!("ping {n}\n");
    s.write_all(msg.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    s.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut back))
        .await
        .map_err(|_| "no echo in 20 s".to_owned())?
        .map_err(|e| format!("read: {e}"))?;
    if back == msg.as_bytes() {
        Ok(())
    } else {
        Err(format!("wrong echo {:?}", String::from_utf8_lossy(&back)))
    }
}

/// Connections made one after another while `stop` is false; returns (made, failures).
fn steady_load(
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(u64, Vec<String>)> {
    tokio::spawn(async move {
        let (mut made, mut failures) = (0u64, Vec::new());
        // Bounded: at most 100,000 connections (a few seconds' worth at most here).
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && made < 100_000 {
            if let Err(e) = echo_tcp(port, made).await {
                failures.push(e);
            }
            made += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (made, failures)
    })
}

/// Items 1 and 3: two SIGHUPs in a row under a steady load; each successor (the command
/// itself, the same arguments) adopts the TCP listener by its description (port 0: the same
/// port), the pid file names it once it is ready, the old process drains and exits 0, and no
/// connection is refused, reset or answered wrongly.
#[tokio::test]
async fn sighup_hands_a_tcp_listener_to_the_successor_and_loses_nothing() {
    let dir = temp_dir("handover-tcp");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let pf = pid_file.to_str().expect("utf-8");
    let (mut child, shown, mut rx) = start(cmd(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "--pid-file",
        pf,
    ]))
    .await;
    let port = port_in(&shown);
    let first = child.id().expect("pid");
    assert_eq!(
        written_pid(&pid_file).await,
        first,
        "the pid file names the first process"
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = steady_load(port, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    signal(first, "HUP");
    let line = line_with(&mut rx, "is ready; no longer accepting").await;
    let second = pid_changes(&pid_file, first).await;
    assert!(line.contains(&format!("successor pid {second} ")), "{line}");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old process exits after its drain")
        .expect("status");
    assert!(status.success(), "{status}");
    assert!(alive(second), "the successor serves");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The successor hands over in turn.
    signal(second, "HUP");
    let third = pid_changes(&pid_file, second).await;
    gone(second).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (made, failures) = load.await.expect("load");
    assert!(made > 0, "the load ran");
    assert!(
        failures.is_empty(),
        "{} of {made} connections failed: {failures:?}",
        failures.len()
    );
    echo_tcp(port, 0)
        .await
        .expect("the third process serves the same port");
    signal(third, "TERM");
    gone(third).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 1: a `unix:` socket is handed over as it is: the same inode, never unlinked or
/// re-created, its lock held by the successor throughout; the last process removes both.
#[tokio::test]
async fn a_unix_socket_and_its_lock_survive_the_handover() {
    let dir = temp_dir("handover-unix");
    let sock = dir.join("echo.sock");
    let lock = dir.join("echo.sock.lock");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let desc = format!("unix:{}", sock.display());
    let (mut child, _shown, mut rx) = start(cmd(&[
        "listen",
        &desc,
        "--echo",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]))
    .await;
    let first = child.id().expect("pid");
    assert_eq!(written_pid(&pid_file).await, first);
    let inode = std::fs::symlink_metadata(&sock).expect("socket").ino();
    let lock_inode = std::fs::symlink_metadata(&lock).expect("lock").ino();
    signal(first, "HUP");
    line_with(&mut rx, "is ready; no longer accepting").await;
    let second = pid_changes(&pid_file, first).await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old process exits")
        .expect("status");
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::symlink_metadata(&sock).expect("socket").ino(),
        inode,
        "the same socket file"
    );
    assert_eq!(
        std::fs::symlink_metadata(&lock).expect("lock").ino(),
        lock_inode,
        "the same lock file"
    );
    let probe = std::fs::File::open(&lock).expect("lock");
    assert!(
        matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "the successor holds the lock"
    );
    drop(probe);
    let mut s = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    echo_on(&mut s, 1).await.expect("the successor echoes");
    signal(second, "TERM");
    gone(second).await;
    assert!(!sock.exists(), "the last process removes the socket");
    assert!(!lock.exists(), "and the lock");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 4: a successor that cannot start, one that exits at once, and one that never becomes ready (killed at the
/// `--ready-timeout` and reaped), change nothing: the old process logs why, keeps serving,
/// keeps its pid file and opens no descriptor for good; a SIGHUP during a handover is refused.
#[tokio::test]
async fn a_failing_successor_is_stopped_and_the_old_process_keeps_serving() {
    let dir = temp_dir("handover-fail");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    // A successor that starts, says where it is, and never signals readiness.
    let script = dir.join("hang.sh");
    let hung_pid = dir.join("hung.pid");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            hung_pid.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let exits = dir.join("exits.sh");
    std::fs::write(&exits, "#!/bin/sh\nexit 3\n").expect("script");
    std::fs::set_permissions(&exits, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");

    let missing = dir.join("no-such-program");
    for (program, timeout, expect) in [
        (&missing, "60", "cannot start the successor"),
        (&exits, "60", "exited (exit status: 3) before it was ready"),
        (&script, "1", "was not ready within 1s"),
    ] {
        let _ = std::fs::remove_file(&pid_file);
        let (mut child, shown, mut rx) = start(cmd(&[
            "listen",
            "tcp:0:interface=127.0.0.1",
            "--echo",
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            "--handover-exec",
            program.to_str().expect("utf-8"),
            "--ready-timeout",
            timeout,
        ]))
        .await;
        let port = port_in(&shown);
        let pid = child.id().expect("pid");
        assert_eq!(written_pid(&pid_file).await, pid);
        echo_tcp(port, 1).await.expect("serves");
        // Counted once that connection is closed on both sides.
        line_with(&mut rx, "ended cleanly").await;
        // The connection's socket closes just after its line: counted once it has.
        let fds = open_fds_settled(pid).await;
        let _ = std::fs::remove_file(&hung_pid);
        signal(pid, "HUP");
        if program == &script {
            // The successor runs (it wrote its pid): a second SIGHUP now is refused.
            for _ in 0..200 {
                if hung_pid.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            signal(pid, "HUP");
            line_with(&mut rx, "SIGHUP refused: a handover is already in progress").await;
        }
        let line = line_with(&mut rx, "handover failed").await;
        assert!(line.contains(expect), "{line}");
        assert!(line.contains("keeps serving"), "{line}");
        if program == &script {
            let hung: u32 = std::fs::read_to_string(&hung_pid)
                .expect("hung pid")
                .trim()
                .parse()
                .expect("pid");
            assert!(!exists(hung), "the hung successor was killed and reaped");
        }
        assert_eq!(read_pid(&pid_file), pid, "the pid file is unchanged");
        echo_tcp(port, 2)
            .await
            .expect("the old process still serves");
        line_with(&mut rx, "ended cleanly").await;
        assert!(alive(pid));
        let after = open_fds_settled(pid).await;
        assert_eq!(after, fds, "no descriptor leaked");
        signal(pid, "TERM");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("exits")
            .expect("status");
        assert!(status.success(), "{status}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 3 for `relay`: a SIGHUP hands the relay's listener over; relayed connections go on
/// without a failure, through the old process and then the new one.
#[tokio::test]
async fn relay_hands_its_listener_over_on_sighup() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up_port = upstream.local_addr().expect("addr").port();
    let echo = tokio::spawn(async move {
        // Bounded by the test: aborted at its end.
        loop {
            let Ok((mut s, _)) = upstream.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let dir = temp_dir("handover-relay");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let target = format!("tcp:127.0.0.1:{up_port}");
    let (mut child, shown, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &target,
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]))
    .await;
    let port = port_in(&shown);
    let first = child.id().expect("pid");
    assert_eq!(written_pid(&pid_file).await, first);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = steady_load(port, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(first, "HUP");
    line_with(&mut rx, "is ready; no longer accepting").await;
    let second = pid_changes(&pid_file, first).await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old relay exits")
        .expect("status");
    assert!(status.success(), "{status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (made, failures) = load.await.expect("load");
    assert!(
        failures.is_empty(),
        "{} of {made} failed: {failures:?}",
        failures.len()
    );
    signal(second, "TERM");
    gone(second).await;
    echo.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 5: under a service manager (a notify socket of the test's, as systemd's), the command
/// says READY=1 once listening and stores its listener (`--fd-store`: FDSTORE=1 with the
/// socket attached, named by its key); a SIGHUP says RELOADING=1 (with MONOTONIC_USEC), and
/// once the successor is ready, MAINPID= the successor with READY=1.
#[tokio::test]
async fn under_a_service_manager_the_handover_is_reported_and_listeners_stored() {
    let dir = temp_dir("handover-notify");
    let notify = dir.join("notify");
    let rx_socket = tokio::net::UnixDatagram::bind(&notify).expect("bind the notify socket");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let mut c = cmd(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "--fd-store",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]);
    c.env("NOTIFY_SOCKET", &notify);
    let (mut child, shown, _rx) = start(c).await;
    let port = port_in(&shown);
    let first = child.id().expect("pid");
    let mut buf = vec![0u8; 4096];
    // Each message within 20 s (they come within milliseconds).
    let mut next = async || {
        let n = tokio::time::timeout(Duration::from_secs(20), rx_socket.recv(&mut buf))
            .await
            .expect("a notification in 20 s")
            .expect("recv");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let name = "FDNAME=ep.tcp%3Aport=0%3Ainterface=127.0.0.1";
    let m = next().await;
    assert!(m.starts_with("FDSTORE=1\n") && m.contains(name), "{m}");
    assert_eq!(next().await, "READY=1");
    signal(first, "HUP");
    let m = next().await;
    assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
    // The successor stores the same listener (systemd keeps one copy), then the old process
    // hands the service over.
    let m = next().await;
    assert!(m.starts_with("FDSTORE=1\n") && m.contains(name), "{m}");
    let second = pid_changes(&pid_file, first).await;
    assert_eq!(next().await, format!("MAINPID={second}\nREADY=1"));
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    echo_tcp(port, 7).await.expect("the successor serves");
    signal(second, "TERM");
    gone(second).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 1: wrappers are unchanged (`haproxy:` over `tcp:` adopts its inner socket), and `tcp6:`
/// is adopted too: the successor shows the same description (the same port), and serves.
#[tokio::test]
async fn wrapped_and_tcp6_listeners_are_handed_over_too() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    for desc in [
        "haproxy:trusted=127.0.0.0/8:tcp:0:interface=127.0.0.1",
        r"tcp6:0:interface=\:\:1",
    ] {
        if desc.starts_with("tcp6") && !ipv6 {
            eprintln!("skipping {desc}: this machine has no IPv6 loopback");
            continue;
        }
        let dir = temp_dir("handover-wrapped");
        let pid_file = dir.join("pid");
        let _reaper = Reaper(pid_file.clone());
        let (mut child, shown, mut rx) = start(cmd(&[
            "listen",
            desc,
            "--echo",
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
        ]))
        .await;
        let first = child.id().expect("pid");
        assert_eq!(written_pid(&pid_file).await, first);
        signal(first, "HUP");
        let again = line_with(&mut rx, "listening on ").await;
        assert_eq!(
            again,
            format!("listening on {shown}"),
            "the same description"
        );
        let second = pid_changes(&pid_file, first).await;
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the old process exits")
            .expect("status");
        assert!(status.success(), "{status}");
        let port = port_in(&shown);
        if desc.starts_with("haproxy") {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            s.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n")
                .await
                .expect("header");
            echo_on(&mut s, 3)
                .await
                .expect("the successor reads PROXY and echoes");
        } else {
            let mut s = tokio::net::TcpStream::connect(("::1", port))
                .await
                .expect("connect");
            echo_on(&mut s, 4).await.expect("the successor echoes");
        }
        signal(second, "TERM");
        gone(second).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Item 3: connections waiting in the accept queue at the handover are served by the
/// successor. `relay --max-connections 1` holding one connection accepts nothing more, so a
/// second client waits in the queue; after SIGHUP the successor accepts and relays it, while
/// the old process keeps its own connection until that one ends.
#[tokio::test]
async fn connections_in_the_accept_queue_are_served_by_the_successor() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up_port = upstream.local_addr().expect("addr").port();
    let echo = tokio::spawn(async move {
        // Bounded by the test: aborted at its end.
        loop {
            let Ok((mut s, _)) = upstream.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let dir = temp_dir("handover-queue");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let target = format!("tcp:127.0.0.1:{up_port}");
    let (mut child, shown, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &target,
        "--max-connections",
        "1",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]))
    .await;
    let port = port_in(&shown);
    let first = child.id().expect("pid");
    assert_eq!(written_pid(&pid_file).await, first);
    // The old process's only slot: a connection that stays open.
    let mut held = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    held.write_all(b"held\n").await.expect("write");
    let mut got = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(20), held.read_exact(&mut got))
        .await
        .expect("echo in 20 s")
        .expect("read");
    assert_eq!(&got, b"held\n");
    // Connected by the kernel, never accepted by the old process: it waits in the queue.
    let mut queued = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    queued.write_all(b"queued\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(first, "HUP");
    let second = pid_changes(&pid_file, first).await;
    let mut got = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(20), queued.read_exact(&mut got))
        .await
        .expect("the successor relays the queued connection within 20 s")
        .expect("read");
    assert_eq!(&got, b"queued\n");
    line_with(
        &mut rx,
        "is ready; no longer accepting, draining 1 connection(s)",
    )
    .await;
    // The old process still relays its own connection, then exits once it ends.
    held.write_all(b"more\n").await.expect("write");
    let mut got = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(20), held.read_exact(&mut got))
        .await
        .expect("echo in 20 s")
        .expect("read");
    assert_eq!(&got, b"more\n");
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old relay exits once its connection ended")
        .expect("status");
    assert!(status.success(), "{status}");
    // Closed first, so the successor's drain has nothing to wait for.
    drop(queued);
    signal(second, "TERM");
    gone(second).await;
    echo.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 4, the other way round: an old process killed (SIGKILL) while its successor starts
/// leaves the successor with the listener: it cannot signal readiness, says so, and serves.
/// The successor here is a wrapper script that waits, then execs the command (the same pid, so
/// `LISTEN_PID` still names it).
#[tokio::test]
async fn a_successor_whose_predecessor_died_serves_anyway() {
    let dir = temp_dir("handover-orphan");
    let pid_file = dir.join("pid");
    let succ_pid = dir.join("successor.pid");
    let _reaper = Reaper(succ_pid.clone());
    let script = dir.join("slow.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nsleep 1\nexec {} \"$@\"\n",
            succ_pid.display(),
            crate::data_paths::BIN
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (mut child, shown, mut rx) = start(cmd(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        "--handover-exec",
        script.to_str().expect("utf-8"),
    ]))
    .await;
    let port = port_in(&shown);
    let first = child.id().expect("pid");
    assert_eq!(written_pid(&pid_file).await, first);
    signal(first, "HUP");
    let successor = written_pid(&succ_pid).await;
    signal(first, "KILL");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("killed");
    let line = line_with(&mut rx, "serving the listeners anyway").await;
    assert!(line.contains("readiness pipe"), "{line}");
    echo_tcp(port, 9)
        .await
        .expect("the orphaned successor serves");
    signal(successor, "TERM");
    gone(successor).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 30 item 8: `ln -s victim pf/echo.pid.tmpP` (P the running process) then SIGHUP:
/// the pid file is written without following the planted link: `victim` is unchanged, the
/// link is left alone, and the pid file names the successor.
#[tokio::test]
async fn the_pid_file_is_never_written_through_a_planted_symlink() {
    let dir = temp_dir("handover-pidfile");
    let pid_file = dir.join("echo.pid");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let _reaper = Reaper(pid_file.clone());
    let (mut child, shown, mut rx) = start(cmd(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
    ]))
    .await;
    let first = child.id().expect("pid");
    assert_eq!(written_pid(&pid_file).await, first);
    let planted = dir.join(format!("echo.pid.tmp{first}"));
    std::os::unix::fs::symlink(&victim, &planted).expect("plant the link");
    signal(first, "HUP");
    line_with(&mut rx, "is ready; no longer accepting").await;
    let second = pid_changes(&pid_file, first).await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old process exits")
        .expect("status");
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n",
        "the link's target is untouched"
    );
    assert!(
        std::fs::symlink_metadata(&planted)
            .expect("the link")
            .file_type()
            .is_symlink(),
        "the planted link is left alone"
    );
    let meta = std::fs::symlink_metadata(&pid_file).expect("pid file");
    assert!(meta.file_type().is_file(), "a regular file");
    assert_eq!(meta.mode() & 0o022, 0, "writable by its owner only");
    echo_tcp(port_in(&shown), 4)
        .await
        .expect("the successor serves");
    signal(second, "TERM");
    gone(second).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Make `path` an executable shell script with `body`.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
}

/// Issue 30 item 5: `listen unix:PATH --echo --handover-exec succ.sh`, where succ.sh execs
/// `endpoints listen unix:PATH` (which adopts the socket and never signals readiness); SIGHUP,
/// then SIGTERM the successor before it is ready. The old process says it keeps serving, and
/// it does: the successor left the socket file and its lock in place (the same inodes, the
/// lock still held), so a new client connects and is echoed; the old process removes both
/// when it stops.
#[tokio::test]
async fn a_successor_stopped_before_ready_leaves_the_unix_socket_to_the_old_process() {
    let dir = temp_dir("handover-unix-fail");
    let sock = dir.join("echo.sock");
    let lock = dir.join("echo.sock.lock");
    let pid_file = dir.join("pid");
    let succ_pid = dir.join("succ.pid");
    let _reaper = Reaper(pid_file.clone());
    let _reaper2 = Reaper(succ_pid.clone());
    let desc = format!("unix:{}", sock.display());
    let succ = dir.join("succ.sh");
    script(
        &succ,
        &format!(
            "echo $$ > {}\nexec {} listen {desc}",
            succ_pid.display(),
            crate::data_paths::BIN
        ),
    );
    let (mut child, _shown, mut rx) = start(cmd(&[
        "listen",
        &desc,
        "--echo",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        "--handover-exec",
        succ.to_str().expect("utf-8"),
    ]))
    .await;
    let first = child.id().expect("pid");
    assert_eq!(written_pid(&pid_file).await, first);
    let inode = std::fs::symlink_metadata(&sock).expect("socket").ino();
    let lock_inode = std::fs::symlink_metadata(&lock).expect("lock").ino();
    signal(first, "HUP");
    // The successor shares the old process's stderr: it has adopted the socket once it says
    // it listens.
    let again = line_with(&mut rx, "listening on ").await;
    assert!(again.contains("echo.sock"), "{again}");
    let successor = written_pid(&succ_pid).await;
    signal(successor, "TERM");
    let line = line_with(&mut rx, "handover failed").await;
    assert!(line.contains("keeps serving"), "{line}");
    gone(successor).await;
    assert_eq!(read_pid(&pid_file), first, "the pid file is unchanged");
    assert_eq!(
        std::fs::symlink_metadata(&sock)
            .expect("the socket file is still there")
            .ino(),
        inode,
        "the same socket file"
    );
    assert_eq!(
        std::fs::symlink_metadata(&lock)
            .expect("the lock file is still there")
            .ino(),
        lock_inode,
        "the same lock file"
    );
    let probe = std::fs::File::open(&lock).expect("lock");
    assert!(
        matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "the old process still holds the lock"
    );
    drop(probe);
    let mut s = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("a new client connects to the old process");
    echo_on(&mut s, 5).await.expect("the old process echoes");
    signal(first, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "the owner removes its socket when it stops");
    assert!(!lock.exists(), "and its lock");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 30 item 6: descriptions that name a passed descriptor (`fd:name=web`,
/// `systemd:UNIX:name=web`, `fd:5` and `systemd:UNIX:index=2` out of three) served under
/// `systemd-socket-activate`: after SIGHUP the successor resolves them against the
/// handed-over keys (not against the names and count it was given), adopts the socket, and
/// serves it; the old process exits 0.
#[tokio::test]
async fn named_and_numbered_descriptors_survive_a_handover() {
    if !endpoints_test_support::peers::startable("systemd-socket-activate", "--version", "systemd")
    {
        return;
    }
    for (desc, sockets) in [
        ("fd:name=web", 1),
        ("systemd:UNIX:name=web", 1),
        ("fd:5", 3),
        ("systemd:UNIX:index=2", 3),
    ] {
        let dir = temp_dir("handover-named");
        let pid_file = dir.join("pid");
        let _reaper = Reaper(pid_file.clone());
        let paths: Vec<PathBuf> = (0..sockets)
            .map(|i| dir.join(format!("s{i}.sock")))
            .collect();
        let mut c = tokio::process::Command::new("systemd-socket-activate");
        for p in &paths {
            c.arg("-l").arg(p);
        }
        let names = vec!["web"; sockets].join(":");
        c.arg(format!("--fdname={names}"))
            .args([
                crate::data_paths::BIN,
                "listen",
                desc,
                "--echo",
                "--pid-file",
                pid_file.to_str().expect("utf-8"),
            ])
            // Its own "Listening on ..." lines are info: only the command's lines come.
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .stdout(std::process::Stdio::null());
        // systemd-socket-activate starts the command on the first connection: make it.
        let served = paths.last().expect("a socket").clone();
        let first_client = tokio::spawn({
            let served = served.clone();
            async move {
                // The socket appears within milliseconds; 20 s at most.
                for _ in 0..400 {
                    if let Ok(mut s) = tokio::net::UnixStream::connect(&served).await {
                        return echo_on(&mut s, 1).await;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err("the activator did not listen in 20 s".to_owned())
            }
        });
        let (mut child, _shown, mut rx) = start(c).await;
        first_client
            .await
            .expect("client")
            .expect("the first process serves");
        let first = child.id().expect("pid");
        assert_eq!(written_pid(&pid_file).await, first, "{desc}");
        signal(first, "HUP");
        let line = line_with(&mut rx, "handover").await;
        assert!(line.contains("starting the successor"), "{desc}: {line}");
        let line = line_with(&mut rx, "handover").await;
        assert!(
            line.contains("ready, serving the listeners of the previous process"),
            "{desc}: the successor adopts the socket: {line}"
        );
        let second = pid_changes(&pid_file, first).await;
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the old process exits")
            .expect("status");
        assert!(status.success(), "{desc}: {status}");
        let mut s = tokio::net::UnixStream::connect(&served)
            .await
            .expect("connect");
        echo_on(&mut s, 2)
            .await
            .unwrap_or_else(|e| panic!("{desc}: the successor serves: {e}"));
        signal(second, "TERM");
        gone(second).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The command with `args`, started as systemd starts a service with one stored descriptor:
/// a TCP listener at fd 3 named `ep.tcp%3Aport=P%3Ainterface=127.0.0.1#0` (a description the
/// command no longer has), by a shell that moves it there from its stdin and sets
/// `LISTEN_PID` (its own pid, kept by `exec`), `LISTEN_FDS` and `LISTEN_FDNAMES`. Returns the
/// command, the stdin to start it with (the listener: once started, the child's is the only
/// copy), P and the name.
fn with_a_stale_descriptor(
    args: &[&str],
) -> (tokio::process::Command, std::process::Stdio, u16, String) {
    let stale = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = stale.local_addr().expect("addr").port();
    let name = format!("ep.tcp%3Aport={port}%3Ainterface=127.0.0.1#0");
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "exec 3<&0 0</dev/null; export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES='{name}'; \
             exec {} \"$@\"",
            crate::data_paths::BIN
        ))
        .arg("sh")
        .args(args)
        .stdout(std::process::Stdio::null());
    let stdin = std::process::Stdio::from(std::os::fd::OwnedFd::from(stale));
    (c, stdin, port, name)
}

/// Issue 30 item 7, every case: a one-shot `listen` (no handover, no store) closes a stale
/// descriptor too, with the warning: a client of the old port is refused, not left waiting.
#[tokio::test]
async fn a_one_shot_listen_closes_stale_descriptors_too() {
    let (c, stale, port, name) = with_a_stale_descriptor(&["listen", "tcp:0:interface=127.0.0.1"]);
    let (mut child, _shown, mut rx) = crate::data_paths::start_with(c, stale).await;
    let line = line_with(&mut rx, "matched no description").await;
    assert!(line.contains(&name), "{line}");
    // Closed just after that line is logged: refused from then on. 20 s at most; it takes
    // microseconds.
    let mut refused = None;
    for _ in 0..200 {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Err(e) => {
                refused = Some(e);
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let e = refused.expect("the stale socket is closed within 20 s");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    signal(child.id().expect("pid"), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
}

/// Issue 30 item 7: a restart from the descriptor store after the description changed (the
/// store passes `ep.tcp%3Aport=P%3Ainterface=127.0.0.1#0`, the command now listens on
/// `tcp:0`): the stale descriptor is closed with a warning naming it, so a client is refused
/// instead of waiting forever in its queue, and with `--fd-store` the store is told to drop it
/// (`FDSTOREREMOVE=1`, `FDNAME=` its name). The descriptor is passed as systemd does (fd 3,
/// `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`) by a shell that moves it from its stdin.
#[tokio::test]
async fn stale_store_descriptors_are_closed_loudly_and_removed_from_the_store() {
    let dir = temp_dir("handover-stale");
    let notify = dir.join("notify");
    let rx_socket = tokio::net::UnixDatagram::bind(&notify).expect("bind the notify socket");
    let (mut c, stale, port, name) = with_a_stale_descriptor(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "--fd-store",
    ]);
    c.env("NOTIFY_SOCKET", &notify);
    let (mut child, shown, mut rx) = crate::data_paths::start_with(c, stale).await;
    let line = line_with(&mut rx, "matched no description").await;
    assert!(line.contains(&name), "{line}");
    let mut buf = vec![0u8; 4096];
    let mut messages = Vec::new();
    // Each message within 20 s (they come within milliseconds); READY=1 comes last.
    while messages.last().is_none_or(|m: &String| m != "READY=1") {
        let n = tokio::time::timeout(Duration::from_secs(20), rx_socket.recv(&mut buf))
            .await
            .expect("a notification in 20 s")
            .expect("recv");
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        assert!(messages.len() < 10, "{messages:?}");
    }
    assert!(
        messages.contains(&format!("FDSTOREREMOVE=1\nFDNAME={name}")),
        "{messages:?}"
    );
    let e = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect_err("the stale socket is closed: refused, not queued");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    echo_tcp(port_in(&shown), 3)
        .await
        .expect("the new listener serves");
    let pid = child.id().expect("pid");
    signal(pid, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One datagram from a notify socket and the descriptors attached to it (`SCM_RIGHTS`, as
/// systemd receives `FDSTORE=1`); 20 s at most (they come within milliseconds).
#[allow(unsafe_code)] // recvmsg(2) with SCM_RIGHTS, with SAFETY notes.
fn receive_with_fds(
    socket: &std::os::unix::net::UnixDatagram,
) -> (String, Vec<std::os::fd::OwnedFd>) {
    use std::os::fd::{AsRawFd, FromRawFd};
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    let mut control = vec![0u64; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero bytes are a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = (control.len() * 8) as _;
    // SAFETY: msg points to `buf`, `iov` and `control`, owned here and alive during the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(
        n >= 0,
        "no notification in 20 s: {}",
        std::io::Error::last_os_error()
    );
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` with msg_controllen bytes of headers; the CMSG_*
    // walk stays inside them, and each SCM_RIGHTS descriptor is new and ours to own.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / std::mem::size_of::<libc::c_int>() {
                    fds.push(std::os::fd::OwnedFd::from_raw_fd(
                        data.add(i).read_unaligned(),
                    ));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    (
        String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
        fds,
    )
}

/// `--fd-store` with `unix:` across a restart, as systemd does it (stop, then start with the
/// stored descriptors): the stopping process leaves the socket file and its lock in place,
/// since the store keeps the socket for the next start, which adopts both (the same inode)
/// and serves; that one, not storing, removes both when it stops. Before, the stopping
/// process removed them, so the stored socket had no path and the next start failed on its
/// lock.
#[tokio::test]
async fn a_stored_unix_socket_keeps_its_files_for_the_restart() {
    let dir = temp_dir("handover-store-unix");
    let sock = dir.join("echo.sock");
    let lock = dir.join("echo.sock.lock");
    let notify = dir.join("notify");
    let store = std::os::unix::net::UnixDatagram::bind(&notify).expect("notify socket");
    let desc = format!("unix:{}", sock.display());
    let mut c = cmd(&["listen", &desc, "--echo", "--fd-store"]);
    c.env("NOTIFY_SOCKET", &notify);
    let (mut child, _shown, _rx) = start(c).await;
    let mut stored = Vec::new();
    // Bounded: READY=1 follows the FDSTORE messages (at most 10 messages).
    for _ in 0..10 {
        let (text, mut fds) = receive_with_fds(&store);
        if text == "READY=1" {
            break;
        }
        let name = text
            .strip_prefix("FDSTORE=1\nFDNAME=")
            .unwrap_or_else(|| panic!("{text:?}"))
            .to_owned();
        assert_eq!(fds.len(), 1, "{text}");
        stored.push((name, fds.remove(0)));
    }
    let names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "the socket and its lock: {names:?}");
    assert!(names[1].ends_with("+lock"), "{names:?}");
    let inode = std::fs::symlink_metadata(&sock).expect("socket").ino();
    let mut s = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    echo_on(&mut s, 1).await.expect("the first process serves");
    // The stop of a restart.
    signal(child.id().expect("pid"), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::symlink_metadata(&sock)
            .expect("the stored socket keeps its file")
            .ino(),
        inode
    );
    assert!(lock.exists(), "and its lock file");
    // The start: the stored descriptors at 3 and 4, as systemd passes them.
    let (lock_name, lock_fd) = stored.pop().expect("lock");
    let (sock_name, sock_fd) = stored.pop().expect("socket");
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "exec 3<&0 4>&1 0</dev/null 1>/dev/null; export LISTEN_PID=$$ LISTEN_FDS=2 \
             LISTEN_FDNAMES='{sock_name}:{lock_name}'; exec {} \"$@\"",
            crate::data_paths::BIN
        ))
        .args(["sh", "listen", &desc, "--echo"])
        .stdout(std::process::Stdio::from(lock_fd));
    let (mut child, shown, mut rx) =
        crate::data_paths::start_with(c, std::process::Stdio::from(sock_fd)).await;
    assert!(shown.contains("echo.sock"), "{shown}");
    let mut s = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    echo_on(&mut s, 2)
        .await
        .expect("the restarted process serves the stored socket");
    assert_eq!(
        std::fs::symlink_metadata(&sock).expect("socket").ino(),
        inode,
        "the same socket file"
    );
    signal(child.id().expect("pid"), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    while let Ok(l) = rx.try_recv() {
        assert!(!l.contains("matched no description"), "{l}");
    }
    assert!(!sock.exists(), "not storing, it removes its socket");
    assert!(!lock.exists(), "and its lock");
    let _ = std::fs::remove_dir_all(&dir);
}
