//! With umask 000, a watcher that stats the socket path as fast as it can never sees a mode
//! broader than requested. Its own binary: it changes the process umask.
#![allow(unsafe_code)] // umask(2), with a SAFETY note.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use endpoints_core::registry::build_server;
use endpoints_unix as _;

#[test]
fn the_socket_file_is_never_broader_than_its_mode() {
    // SAFETY: umask only swaps the process's file mode mask; no memory is involved.
    let old = unsafe { libc::umask(0) };
    let dir = std::env::temp_dir().join(format!("endpoints-perm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("p.sock");

    let stop = Arc::new(AtomicBool::new(false));
    let broadest = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (path, stop, broadest, seen) =
            (path.clone(), stop.clone(), broadest.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    broadest.fetch_or(m.permissions().mode() & 0o777, Ordering::Relaxed);
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        for desc in [
            format!("unix:{}:mode=600", path.display()),
            format!("unix:{}:mode=600:owner=0", path.display()),
        ] {
            let endpoint = build_server(&desc.parse().expect("parse")).expect("build");
            for _ in 0..300 {
                let l = endpoint.listen().await.expect("listen");
                l.close().await.expect("close");
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    // SAFETY: as above.
    unsafe { libc::umask(old) };

    assert!(
        seen.load(Ordering::Relaxed) > 0,
        "the watcher never saw the socket; the test proves nothing"
    );
    let mode = broadest.load(Ordering::Relaxed);
    assert_eq!(
        mode & !0o600,
        0,
        "the watcher saw mode {mode:o}, broader than 600"
    );
}
