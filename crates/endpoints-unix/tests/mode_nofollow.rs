//! The mode is never set through a symbolic link (issue 13, item 8). With umask 077 the socket
//! file is created narrower than `mode=666` and has to be widened after `bind`; a racer that
//! replaces the fresh socket with a link to a victim file must never get the victim chmod-ed.
//! Its own binary: it changes the process umask.
#![allow(unsafe_code)] // umask(2), with a SAFETY note.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use endpoints_core::registry::build_server;
use endpoints_unix as _;

#[test]
fn the_mode_is_never_set_through_a_symlink() {
    // SAFETY: umask only swaps the process's file mode mask; no memory is involved.
    let old = unsafe { libc::umask(0o077) };
    let dir = std::env::temp_dir().join(format!("endpoints-nofollow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.sock");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // The racer: as soon as a socket appears at the path, atomically replace it with a link
    // to the victim (what a local attacker with write access to the directory can do).
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let racer = {
        let (path, victim, stop, swaps) =
            (path.clone(), victim.clone(), stop.clone(), swaps.clone());
        std::thread::spawn(move || {
            let link = path.with_extension("link");
            while !stop.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
                    let _ = std::fs::remove_file(&link);
                    if std::os::unix::fs::symlink(&victim, &link).is_ok()
                        && std::fs::rename(&link, &path).is_ok()
                    {
                        swaps.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let desc = format!("unix:{}:mode=666", path.display());
    let endpoint = build_server(&desc.parse().expect("parse")).expect("build");
    let mut victim_mode = 0o600;
    rt.block_on(async {
        for _ in 0..5000 {
            if let Ok(l) = endpoint.listen().await {
                let _ = l.close().await;
            }
            // Clean up whatever the racer left (a link where the socket was).
            let _ = std::fs::remove_file(&path);
            victim_mode = std::fs::metadata(&victim)
                .expect("victim")
                .permissions()
                .mode()
                & 0o777;
            if victim_mode != 0o600 {
                break;
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    racer.join().expect("racer");
    // SAFETY: as above.
    unsafe { libc::umask(old) };

    assert_eq!(
        victim_mode, 0o600,
        "the victim was chmod-ed to {victim_mode:o} through a link planted at the socket path"
    );
    println!(
        "the racer replaced the socket {} time(s)",
        swaps.load(Ordering::Relaxed)
    );
    assert!(
        swaps.load(Ordering::Relaxed) > 0,
        "the racer never replaced the socket; the test proves nothing"
    );
}
