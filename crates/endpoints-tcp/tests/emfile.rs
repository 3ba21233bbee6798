//! The accept loop under descriptor exhaustion (its own test binary: it lowers the process's
//! descriptor limit).
#![allow(unsafe_code)] // getrlimit/setrlimit/getrusage; each call has a SAFETY note.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use endpoints_core::registry::build_server;
use endpoints_tcp as _;

const CLIENTS: usize = 40;
const HEADROOM: u64 = 4;

fn nofile() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    (r.rlim_cur, r.rlim_max)
}

fn set_nofile(soft: u64, hard: u64) {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `r` is a valid rlimit; lowering the soft limit below the hard one is allowed.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) },
        0,
        "setrlimit"
    );
}

/// CPU time (user + system) used by this process so far.
fn cpu_time() -> Duration {
    // SAFETY: all-zero is a valid rusage; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as u64
}

#[test]
fn accept_loop_backs_off_under_emfile_and_recovers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let endpoint =
            build_server(&"tcp:0:interface=127.0.0.1".parse().expect("parse")).expect("build");
        let mut listener = endpoint.listen().await.expect("listen");
        let addr = listener.local_addr().expect("bound").ip().expect("ip");

        // Every client is connected (queued in the backlog) before the limit is lowered.
        let clients: Vec<std::net::TcpStream> = (0..CLIENTS)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();

        let (soft, hard) = nofile();
        set_nofile(open_fds() + HEADROOM, hard);

        let accepted = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let server = {
            let (accepted, release) = (accepted.clone(), release.clone());
            tokio::spawn(async move {
                let mut held = Vec::new();
                while accepted.load(Ordering::SeqCst) < CLIENTS {
                    let conn = tokio::select! {
                        c = listener.accept() => c.expect("accept never fails on EMFILE"),
                        () = tokio::time::sleep(Duration::from_millis(20)) => {
                            if release.load(Ordering::SeqCst) { held.clear(); }
                            continue;
                        }
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if !release.load(Ordering::SeqCst) {
                        held.push(conn); // keep descriptors in use until released
                    }
                }
                listener
            })
        };

        // Let the server exhaust its descriptors and settle into backoff.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let stuck_at = accepted.load(Ordering::SeqCst);
        assert!(
            stuck_at < CLIENTS,
            "the limit did not bite: all {stuck_at} accepted"
        );

        let before = cpu_time();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = cpu_time() - before;
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            stuck_at,
            "accepted while out of descriptors"
        );
        assert!(
            used < Duration::from_millis(100),
            "the accept loop spun while out of descriptors: {used:?} CPU in 1 s"
        );

        // Free the descriptors: every queued client is accepted without outside help.
        release.store(true, Ordering::SeqCst);
        let listener = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("all clients accepted within 10 s of descriptors freeing up")
            .expect("server task");
        assert_eq!(accepted.load(Ordering::SeqCst), CLIENTS);

        set_nofile(soft, hard);
        drop(clients);
        listener.close().await.expect("close");
    });
}
