//! `unix:` on real sockets in a private temporary directory.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use endpoints_conformance::{Suite, echo};
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, ErrorKind, Listener};
use endpoints_unix::PeerCredentials;

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("endpoints-unix-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

async fn listen(desc: &str) -> std::io::Result<Box<dyn Listener>> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
}

fn lock_of(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", p.display()))
}

#[test]
fn server_conformance() {
    let long = format!("unix:/{}", "x".repeat(120));
    Suite::server("unix")
        .valid("unix:/tmp/endpoints-suite.sock")
        .valid("unix:address=/tmp/e.sock:mode=0600:backlog=5:lockfile=0")
        .valid("unix:/tmp/e.sock:0o640:7:1:owner=root:group=root")
        .valid("unix:@endpoints-suite")
        .invalid("unix:/p:mode=9", ErrorKind::InvalidValue)
        .invalid("unix:", ErrorKind::InvalidValue)
        .invalid("unix:@x:mode=600", ErrorKind::InvalidValue)
        .invalid("unix:/p:owner=no-such-user-here", ErrorKind::InvalidValue)
        .invalid("unix:/p:bogus=1", ErrorKind::UnknownParameter)
        .invalid(&long, ErrorKind::InvalidValue)
        .run();
}

#[test]
fn client_conformance() {
    Suite::client("unix")
        .valid("unix:/tmp/e.sock")
        .valid("unix:path=/tmp/e.sock:timeout=9:lockfile=1")
        .valid("UNIX:@endpoints-suite:checkPID=0")
        .invalid("unix:/a:/b", ErrorKind::UnknownParameter)
        .invalid("unix:/p:mode=600", ErrorKind::UnknownParameter)
        .invalid("unix:/p:timeout=x", ErrorKind::InvalidValue)
        .invalid("unix:/p:lockfile=1:checkPID=0", ErrorKind::InvalidValue)
        .run();
    let shown = build_client(&"unix:path=/a:/b".parse().expect("parse"))
        .expect("builds")
        .to_string();
    assert_eq!(
        shown, "unix:path=/b:timeout=30:lockfile=0",
        "one positional overrides path=, as in Twisted"
    );
}

#[tokio::test]
async fn echo_on_a_path_and_an_abstract_name() {
    let d = dir("echo");
    let path = d.join("echo.sock");
    echo(&format!("unix:{}", path.display()), |_| {
        format!("unix:{}", path.display())
    })
    .await;
    assert!(
        !path.exists() && !lock_of(&path).exists(),
        "close() removes the socket and lock files"
    );
    let name = format!("@endpoints-echo-{}", std::process::id());
    echo(&format!("unix:{name}"), |_| format!("unix:{name}")).await;
}

#[tokio::test]
async fn mode_is_exact_and_connections_carry_credentials() {
    let d = dir("mode");
    let path = d.join("m.sock");
    let mut l = listen(&format!("unix:{}:mode=640", path.display()))
        .await
        .expect("listen");
    let meta = std::fs::symlink_metadata(&path).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(l.local_addr().expect("addr"), Address::Unix(path.clone()));

    let client =
        build_client(&format!("unix:{}", path.display()).parse().expect("parse")).expect("builds");
    let (c, s) = tokio::join!(client.connect(), l.accept());
    let (c, s) = (c.expect("connect"), s.expect("accept"));
    let me = PeerCredentials {
        pid: Some(std::process::id() as i32),
        uid: uid(),
        gid: gid(),
    };
    assert_eq!(s.extensions().get::<PeerCredentials>(), Some(&me));
    assert_eq!(c.extensions().get::<PeerCredentials>(), Some(&me));
    assert_eq!(s.local_addr(), &Address::Unix(path.clone()));
    l.close().await.expect("close");
}

fn uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .expect("uid")
}

fn gid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .expect("gid")
}

#[tokio::test]
async fn stale_socket_is_taken_over_but_other_files_are_not() {
    let d = dir("stale");
    let path = d.join("s.sock");
    // A socket file left behind by a dead owner (std does not unlink on drop), and its lock
    // file, unlocked.
    super::stale_socket(&path);
    std::fs::write(lock_of(&path), b"").expect("lock file");
    assert!(path.exists());
    let l = listen(&format!("unix:{}", path.display()))
        .await
        .expect("stale socket taken over");
    l.close().await.expect("close");

    std::fs::write(&path, b"precious").expect("regular file");
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("not a socket");
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).expect("still there"), b"precious");
}

#[tokio::test]
async fn live_owner_is_refused_and_left_alone() {
    let d = dir("live");
    let path = d.join("l.sock");
    let desc = format!("unix:{}", path.display());
    let mut first = listen(&desc).await.expect("first");
    let err = listen(&desc).await.expect_err("second");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot listen on `unix:address={}",
            path.display()
        )),
        "{err}"
    );
    // The first listener still serves.
    let client = build_client(&desc.parse().expect("parse")).expect("builds");
    let (c, s) = tokio::join!(client.connect(), first.accept());
    assert!(c.is_ok() && s.is_ok());
    first.close().await.expect("close");
}

#[test]
fn racing_starters_exactly_one_wins() {
    let d = dir("race");
    let path = d.join("r.sock");
    // A stale socket and lock to fight over.
    super::stale_socket(&path);
    let desc = format!("unix:{}", path.display());
    const STARTERS: usize = 8;
    let barrier = Arc::new(std::sync::Barrier::new(STARTERS));
    let winners = Arc::new(AtomicUsize::new(0));
    let hold = Arc::new(std::sync::Barrier::new(STARTERS));
    let threads: Vec<_> = (0..STARTERS)
        .map(|_| {
            let (desc, barrier, winners, hold) =
                (desc.clone(), barrier.clone(), winners.clone(), hold.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("rt");
                rt.block_on(async {
                    barrier.wait();
                    let r = listen(&desc).await;
                    if r.is_ok() {
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                    hold.wait(); // the winner keeps listening until everyone has tried
                    if let Ok(l) = r {
                        l.close().await.expect("close");
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().expect("starter");
    }
    assert_eq!(winners.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_lockfile_checks_for_a_live_server() {
    let d = dir("check");
    let path = d.join("c.sock");
    let checked = format!("unix:{}:lockfile=1", path.display());
    let mut l = listen(&format!("unix:{}", path.display()))
        .await
        .expect("listen");
    let client = build_client(&checked.parse().expect("parse")).expect("builds");
    let (c, s) = tokio::join!(client.connect(), l.accept());
    assert!(c.is_ok() && s.is_ok(), "a live server holds the lock");
    // The server goes away; what a crashed one leaves behind: a socket file and an unlocked
    // lock file.
    l.close().await.expect("close");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("rebind stale"));
    std::fs::write(lock_of(&path), b"").expect("stale lock");
    let err = client.connect().await.expect_err("no live server");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(err.to_string().contains("no live server holds"), "{err}");
    // Without the check, the stale socket just refuses.
    let plain =
        build_client(&format!("unix:{}", path.display()).parse().expect("parse")).expect("builds");
    assert_eq!(
        plain.connect().await.expect_err("stale").kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[tokio::test]
async fn without_lockfile_an_existing_file_is_address_in_use() {
    let d = dir("nolock");
    let path = d.join("n.sock");
    super::stale_socket(&path);
    let err = listen(&format!("unix:{}:lockfile=0", path.display()))
        .await
        .expect_err("in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn close_leaves_a_file_that_replaced_the_socket() {
    let d = dir("replaced");
    let path = d.join("p.sock");
    let l = listen(&format!("unix:{}", path.display()))
        .await
        .expect("listen");
    std::fs::remove_file(&path).expect("remove");
    std::fs::write(&path, b"someone else's").expect("replace");
    l.close().await.expect("close");
    assert_eq!(std::fs::read(&path).expect("kept"), b"someone else's");
}

#[tokio::test]
async fn owner_and_group_are_applied() {
    let d = dir("owner");
    let path = d.join("o.sock");
    let (u, g) = (uid(), gid());
    let l = listen(&format!(
        "unix:{}:mode=660:owner={u}:group={g}",
        path.display()
    ))
    .await
    .expect("listen");
    let m = std::fs::symlink_metadata(&path).expect("socket");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (u, g, 0o660));
    l.close().await.expect("close");
}

#[tokio::test]
async fn a_missing_directory_is_named() {
    // issue 18 item 9: "cannot lock /nonexistent/dir/x.sock.lock" did not say why.
    let d = dir("nodir");
    let missing = d.join("nonexistent").join("dir");
    for extra in ["", ":lockfile=0"] {
        let desc = format!("unix:{}{extra}", missing.join("x.sock").display());
        let err = listen(&desc).await.map(|_| ()).expect_err("no directory");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        assert!(
            err.to_string().ends_with(&format!(
                "the directory {} does not exist: create it first (`mkdir -p {}`), or choose \
                 another path for the socket",
                missing.display(),
                missing.display()
            )),
            "{err}"
        );
    }
    let file = d.join("plain");
    std::fs::write(&file, b"").expect("file");
    let err = listen(&format!("unix:{}", file.join("x.sock").display()))
        .await
        .map(|_| ())
        .expect_err("not a directory");
    assert!(err.to_string().contains("is not a directory"), "{err}");
}
