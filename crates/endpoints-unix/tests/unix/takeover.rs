//! `unix:` listen never takes a socket or a lock that belongs to a live server (issue 13,
//! items 7 and 8): a live socket without our lock, a Twisted-style symlink lock, and a symlink
//! planted at the lock path.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use endpoints_core::Listener;
use endpoints_core::registry::build_server;
use endpoints_unix as _;

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("endpoints-takeover-{}-{name}", std::process::id()));
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

/// Connect to `path` and read what the server there says before it closes.
fn greeting(path: &Path) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap_or_else(|e| {
        panic!(
            "the other server no longer accepts on {}: {e}",
            path.display()
        )
    });
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the greeting");
    out
}

fn assert_in_use(err: &std::io::Error, names: &Path) {
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(
        err.to_string().contains(&names.display().to_string()),
        "the error names {}: {err}",
        names.display()
    );
}

#[tokio::test]
async fn a_live_socket_without_our_lock_is_left_alone() {
    let d = dir("live-std");
    let path = d.join("s.sock");
    // Another server (std, no lock file) serves at the path.
    let other = std::os::unix::net::UnixListener::bind(&path).expect("other server");
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("the path is served by another process");
    assert_in_use(&err, &path);
    assert!(
        std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()),
        "the other server's socket file is still there"
    );
    // It still accepts.
    let _c = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    other.accept().expect("the other server still accepts");
    assert!(
        !lock_of(&path).exists(),
        "a failed listen leaves no lock file behind"
    );
}

#[tokio::test]
async fn a_lockfile_0_instance_of_ours_is_left_alone() {
    let d = dir("live-ours");
    let path = d.join("s.sock");
    let mut first = listen(&format!("unix:{}:lockfile=0", path.display()))
        .await
        .expect("first, without a lock");
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("second, with a lock");
    assert_in_use(&err, &path);
    let _c = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    first.accept().await.expect("the first still accepts");
    first.close().await.expect("close");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_regular_file_is_not_removed() {
    let d = dir("stale");
    let path = d.join("s.sock");
    super::stale_socket(&path);
    let l = listen(&format!("unix:{}", path.display()))
        .await
        .expect("a socket that refuses connections is stale");
    l.close().await.expect("close");

    std::fs::write(&path, b"precious").expect("regular file");
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("not a socket");
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).expect("still there"), b"precious");
}

/// A Python `socket.bind()` server: answers "python" to each connection until stdin closes.
const PYTHON_SERVER: &str = r#"
import select, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
print("ready", flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin], [], [], 30)
    if not r or sys.stdin in r:
        break
    c, _ = s.accept()
    try:
        c.sendall(b"python")  # the probe's connection is already closed
    except OSError:
        pass
    c.close()
"#;

/// A Twisted server on `unix:<path>:lockfile=1`: answers "twisted" to each connection until
/// stdin closes.
const TWISTED_SERVER: &str = r#"
import sys
from twisted.internet import endpoints, protocol, reactor, stdio

class Hello(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"twisted")
        self.transport.loseConnection()

class Stop(protocol.Protocol):
    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()

def failed(e):
    print("error", e.getErrorMessage(), flush=True)
    reactor.stop()

d = endpoints.serverFromString(reactor, "unix:%s:lockfile=1" % sys.argv[1]).listen(
    protocol.Factory.forProtocol(Hello))
d.addCallbacks(lambda _: print("ready", flush=True), failed)
stdio.StandardIO(Stop())
reactor.callLater(30, reactor.stop)
reactor.run()
"#;

/// Start a Python server script on `path`; `None` (skipped) when Python (or the module the
/// script needs) is missing, except under `CI=true`.
fn python_server(script: &str, path: &Path, module: &str) -> Option<Child> {
    if !endpoints_test_support::peers::python_modules(
        &[module],
        "install python3 (and `pip install twisted`)",
    ) {
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read readiness");
    assert_eq!(line.trim(), "ready", "the python server did not start");
    Some(child)
}

fn stop(mut child: Child) {
    drop(child.stdin.take()); // the server stops when its stdin closes
    let _ = child.wait();
}

#[tokio::test]
async fn a_python_socket_server_is_left_alone() {
    let d = dir("python");
    let path = d.join("p.sock");
    let Some(server) = python_server(PYTHON_SERVER, &path, "socket") else {
        return;
    };
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("python serves there");
    assert_in_use(&err, &path);
    assert_eq!(greeting(&path), "python", "python still serves");
    stop(server);
}

#[tokio::test]
async fn a_twisted_server_and_its_lock_are_left_alone() {
    let d = dir("twisted");
    let path = d.join("t.sock");
    let Some(server) = python_server(TWISTED_SERVER, &path, "twisted") else {
        return;
    };
    let lock = lock_of(&path);
    let target = std::fs::read_link(&lock).expect("Twisted's lock is a symlink");
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("Twisted serves there");
    assert_in_use(&err, &lock);
    assert_eq!(
        std::fs::read_link(&lock).expect("Twisted's lock survives"),
        target
    );
    assert_eq!(greeting(&path), "twisted", "Twisted still serves");
    stop(server);
}

/// Twisted's lock: a symlink `<address>.lock -> "<pid>"`.
fn twisted_lock(path: &Path, pid: u32) {
    std::os::unix::fs::symlink(pid.to_string(), lock_of(path)).expect("symlink lock");
}

#[tokio::test]
async fn a_twisted_lock_with_a_live_pid_means_in_use() {
    let d = dir("tw-live");
    let path = d.join("s.sock");
    // A live process: a `sleep` we started (and end below).
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    twisted_lock(&path, sleeper.id());
    drop(std::os::unix::net::UnixListener::bind(&path).expect("socket"));
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("the lock's owner is alive");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_in_use(&err, &lock_of(&path));
    assert!(err.to_string().contains(&sleeper.id().to_string()), "{err}");
    assert_eq!(
        std::fs::read_link(lock_of(&path)).expect("lock kept"),
        PathBuf::from(sleeper.id().to_string())
    );
    assert!(
        !d.join(sleeper.id().to_string()).exists(),
        "the dangling link was not followed"
    );
    assert!(path.exists(), "the socket was left alone");
}

#[tokio::test]
async fn a_twisted_lock_with_a_dead_pid_is_stale() {
    let d = dir("tw-dead");
    let path = d.join("s.sock");
    let mut gone = Command::new("true").spawn().expect("true");
    let pid = gone.id();
    gone.wait().expect("reaped");
    twisted_lock(&path, pid);
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    let mut l = listen(&format!("unix:{}", path.display()))
        .await
        .expect("a dead owner's lock is stale");
    assert!(
        !d.join(pid.to_string()).exists(),
        "the dangling link was not followed (no file named after the pid)"
    );
    let lock_meta = std::fs::symlink_metadata(lock_of(&path)).expect("our lock");
    assert!(
        lock_meta.file_type().is_file(),
        "our lock is a regular file"
    );
    let _c = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    l.accept().await.expect("ours serves");
    l.close().await.expect("close");
}

#[tokio::test]
async fn a_symlink_planted_at_the_lock_path_is_not_followed() {
    let d = dir("planted");
    let path = d.join("s.sock");
    // To an existing file: neither truncated nor chmod-ed nor locked through the link.
    let victim = d.join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    std::os::unix::fs::symlink(&victim, lock_of(&path)).expect("plant");
    let err = listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("a symlink that is not a lock");
    assert!(
        err.to_string()
            .contains(&lock_of(&path).display().to_string()),
        "the error names the lock path: {err}"
    );
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    let m = std::fs::metadata(&victim).expect("victim");
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    assert_eq!(
        std::fs::read_link(lock_of(&path)).expect("left alone"),
        victim
    );

    // To a missing file: not created.
    std::fs::remove_file(lock_of(&path)).expect("unplant");
    let missing = d.join("created-through-the-link");
    std::os::unix::fs::symlink(&missing, lock_of(&path)).expect("plant");
    listen(&format!("unix:{}", path.display()))
        .await
        .expect_err("a symlink that is not a lock");
    assert!(!missing.exists(), "the link was followed with O_CREAT");
}

#[tokio::test]
async fn the_client_lock_check_understands_twisted_locks() {
    use endpoints_core::registry::build_client;
    let d = dir("client");
    let path = d.join("s.sock");
    let server = std::os::unix::net::UnixListener::bind(&path).expect("server");
    let client = build_client(
        &format!("unix:{}:lockfile=1", path.display())
            .parse()
            .expect("parse"),
    )
    .expect("builds");
    // Twisted's lock naming a live process (this one): a live server.
    twisted_lock(&path, std::process::id());
    client.connect().await.expect("a live Twisted lock");
    server.accept().expect("accepted");
    // Naming a dead process: no live server.
    std::fs::remove_file(lock_of(&path)).expect("unlock");
    let mut gone = Command::new("true").spawn().expect("true");
    let pid = gone.id();
    gone.wait().expect("reaped");
    twisted_lock(&path, pid);
    let err = client.connect().await.expect_err("a dead Twisted lock");
    assert!(err.to_string().contains("no live server holds"), "{err}");
    assert!(
        !d.join(pid.to_string()).exists(),
        "the dangling link was not followed"
    );
}
