//! issue 30 item 9: an `exec:` connection changes no descriptor flag of the application that
//! makes it (a pipe it passes to its own children keeps working), and what the child must not
//! have is closed in the child, so a descriptor another thread opens without close-on-exec
//! while children start never reaches one. Alone in its test binary: it opens descriptors
//! without close-on-exec, which would reach the children other tests start.
#![allow(unsafe_code)] // pipe(2), dup(2), fcntl(2) and close(2) on descriptors this file owns.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::AsyncReadExt;

use common::*;
use endpoints_exec as _;

/// A pipe made as an application inherits one or makes one for its children: no
/// close-on-exec on either end.
fn inheritable_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is an array of two descriptors for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe(2) succeeded: both are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn has_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: fcntl(F_GETFD) on a descriptor we hold open; it reads its flags only.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0, "F_GETFD");
    flags & libc::FD_CLOEXEC != 0
}

/// The issue's reproduction: a child writing to a pipe its parent passed it got "Bad file
/// descriptor" after one `exec:true` connection, because the library marked every descriptor
/// of the process close-on-exec.
#[tokio::test]
async fn a_pipe_the_application_passes_to_its_children_still_works_after_an_exec_connection() {
    let (read, write) = inheritable_pipe();
    let mut conn = connect("exec:true").await.expect("start true");
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, conn.read_to_end(&mut out))
        .await
        .expect("bounded")
        .expect("true exits 0");
    drop(conn);
    assert!(
        !has_cloexec(&write),
        "the library changed the flags of the application's descriptor {}",
        write.as_raw_fd()
    );
    // The application's own child, started the ordinary way, writes to the inherited pipe.
    // bash: dash takes one-digit descriptor numbers only.
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("echo through-the-pipe >&{}", write.as_raw_fd()))
        .stdin(std::process::Stdio::null())
        .status()
        .expect("run bash");
    assert!(
        status.success(),
        "the application's child could not write to descriptor {} it inherited: {status}",
        write.as_raw_fd()
    );
    drop(write);
    let mut got = String::new();
    std::fs::File::from(read)
        .read_to_string(&mut got)
        .expect("read the pipe");
    assert_eq!(got, "through-the-pipe\n");
}

/// Another thread keeps opening descriptors without close-on-exec while children start (a
/// library that uses `dup`, or `open` without `O_CLOEXEC`): none reaches a child. With the
/// whole process marked before each spawn, one opened between the marking and the spawn did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_another_thread_opens_meanwhile_does_not_reach_the_child() {
    let devnull = std::fs::File::open("/dev/null").expect("open /dev/null");
    let stop = Arc::new(AtomicBool::new(false));
    let opener = {
        let stop = stop.clone();
        let base = devnull.as_raw_fd();
        std::thread::spawn(move || {
            // A ring of 8 duplicates (dup(2) never sets close-on-exec): the newest ones are
            // always open. Bounded by `stop`, and by a count in case the test fails first.
            let mut ring: std::collections::VecDeque<RawFd> = Default::default();
            let mut made = 0u64;
            while !stop.load(Ordering::Relaxed) && made < 200_000_000 {
                // SAFETY: dup of a descriptor the test keeps open until this thread is joined.
                let fd = unsafe { libc::dup(base) };
                if fd >= 0 {
                    ring.push_back(fd);
                    made += 1;
                }
                if ring.len() > 8
                    && let Some(old) = ring.pop_front()
                {
                    // SAFETY: a duplicate this thread made and nobody else knows of.
                    unsafe { libc::close(old) };
                }
            }
            for fd in ring {
                // SAFETY: as above.
                unsafe { libc::close(fd) };
            }
        })
    };
    let mut leaks = Vec::new();
    for _ in 0..50 {
        // `ls` lists its own descriptors: 0, 1, 2 and the directory it reads.
        let mut conn = connect("exec:ls:/proc/self/fd").await.expect("start ls");
        let mut out = String::new();
        let r = tokio::time::timeout(PATIENCE, conn.read_to_string(&mut out)).await;
        let listed: Vec<&str> = out.split_whitespace().collect();
        if listed.len() != 4 {
            leaks.push(listed.join(" "));
        }
        r.expect("bounded").expect("ls exits 0");
    }
    stop.store(true, Ordering::Relaxed);
    opener.join().expect("the opener thread");
    drop(devnull);
    assert!(
        leaks.is_empty(),
        "children had more than 0, 1, 2 and ls's own directory open: {leaks:?}"
    );
}
