//! Issue 23, items 1-4: nc-style transfers deliver everything. Each direction runs to its own
//! end: what stdin holds is sent until stdin ends, whatever the other direction did, and the
//! command exits when both directions have ended. Upload (`nc -l > out` / `nc host < file`)
//! and download (`nc -l < file` / `nc host > out`), in all four shapes (listen/connect x
//! sending/receiving, the other side's stdin at /dev/null), on `tcp:`, `unix:` and
//! `ssl:`/`tls:`, 50 MB compared byte for byte, with `endpoints` on both ends and with socat on
//! the other end. A peer that resets half-way is loud; a terminal's stdin stops when the peer
//! has closed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::data_paths::{BIN, pki, port_in, start_with, temp_dir};

/// The size: 50 MB.
const SIZE: usize = 50_000_000;

/// A transfer of 50 MB on loopback takes well under 5 s even in a debug build under TLS; 120 s
/// is more than 20x that, for a loaded 2-core machine.
const TRANSFER_BOUND: Duration = Duration::from_secs(120);

/// 50 MB of bytes that are not all the same (a shifted byte would show), written once per
/// directory.
fn big_file(dir: &Path) -> PathBuf {
    let path = dir.join("big.bin");
    let mut data = Vec::with_capacity(SIZE);
    let mut x: u32 = 0x1234_5678;
    while data.len() < SIZE {
        // xorshift32: cheap, deterministic, no repeating 64 KiB pattern.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(SIZE);
    std::fs::write(&path, &data).expect("big file");
    path
}

fn same_bytes(got: &Path, want: &Path) {
    let (g, w) = (
        std::fs::read(got).expect("received file"),
        std::fs::read(want).expect("sent file"),
    );
    assert_eq!(g.len(), w.len(), "{} holds every byte", got.display());
    assert!(g == w, "{} holds the same bytes", got.display());
}

/// A transport to test on: the server and client descriptions, and socat's addresses for the
/// same (as a listener, as a client).
struct Transport {
    name: &'static str,
    server: String,
    /// `None` until the listener has said where it is.
    client: fn(&str, &Tls) -> String,
    socat_listen: fn(&Path, &Tls) -> (String, String),
    socat_connect: fn(&str, &Tls) -> String,
}

/// The TLS material of one test: CA directory, key, certificate.
struct Tls {
    ca: PathBuf,
    key: PathBuf,
    cert: PathBuf,
}

fn esc(p: &Path) -> String {
    endpoints::escape(&p.display().to_string())
}

fn transports(dir: &Path, tls: &Tls) -> Vec<Transport> {
    vec![
        Transport {
            name: "tcp",
            server: "tcp:0:interface=127.0.0.1".into(),
            client: |shown, _| format!("tcp:127.0.0.1:{}", port_in(shown)),
            socat_listen: |_, _| {
                let port = free_port();
                (
                    format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
                    format!("tcp:127.0.0.1:{port}"),
                )
            },
            socat_connect: |shown, _| format!("TCP:127.0.0.1:{}", port_in(shown)),
        },
        Transport {
            name: "unix",
            server: format!("unix:{}", esc(&dir.join("s.sock"))),
            client: |shown, _| {
                let d: endpoints::Description = shown.parse().expect("description");
                format!(
                    "unix:{}",
                    endpoints::escape(d.get("address").expect("address"))
                )
            },
            socat_listen: |dir, _| {
                let path = dir.join("socat.sock");
                let _ = std::fs::remove_file(&path);
                (
                    format!("UNIX-LISTEN:{}", path.display()),
                    format!("unix:{}", esc(&path)),
                )
            },
            socat_connect: |shown, _| {
                let d: endpoints::Description = shown.parse().expect("description");
                format!("UNIX-CONNECT:{}", d.get("address").expect("address"))
            },
        },
        Transport {
            name: "tls",
            server: format!(
                "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
                esc(&tls.key),
                esc(&tls.cert)
            ),
            client: |shown, tls| {
                format!(
                    "tls:localhost:{}:trustRoots={}",
                    port_in(shown),
                    esc(&tls.ca)
                )
            },
            socat_listen: |_, tls| {
                let port = free_port();
                (
                    format!(
                        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={},key={},verify=0",
                        tls.cert.display(),
                        tls.key.display()
                    ),
                    format!("tls:localhost:{port}:trustRoots={}", esc(&tls.ca)),
                )
            },
            socat_connect: |shown, tls| {
                format!(
                    "OPENSSL:localhost:{},cafile={}",
                    port_in(shown),
                    tls.ca.join("ca.pem").display()
                )
            },
        },
    ]
}

/// A port nothing listens on now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn socat() -> bool {
    endpoints_test_support::peers::program("socat", "-V", "socat")
}

/// `socat ARGS` with the given stdin and stdout, its stderr kept for [`finish`].
fn socat_child(args: &[&str], stdin: Stdio, stdout: Stdio) -> tokio::process::Child {
    Command::new("socat")
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("socat")
}

fn file_in(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::open(path).expect("open"))
}

fn file_out(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).expect("create"))
}

/// Wait for a child, bounded; its exit status and stderr.
async fn finish(mut child: tokio::process::Child, what: &str) -> (Option<i32>, String) {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = tokio::time::timeout(TRANSFER_BOUND, e.read_to_string(&mut err)).await;
    }
    let status = tokio::time::timeout(TRANSFER_BOUND, child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} ended in time"))
        .expect("status");
    (status.code(), err)
}

/// `endpoints listen SERVER --once` with the given stdin and stdout; returns the child and
/// where it listens.
async fn listen_once(server: &str, stdin: Stdio, stdout: Stdio) -> (tokio::process::Child, String) {
    let mut c = Command::new(BIN);
    c.args(["listen", server, "--once"]).stdout(stdout);
    let (child, shown, mut rx) = start_with(c, stdin).await;
    // Keep the stderr lines flowing (start() forwards them); drop the receiver's end later.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    (child, shown)
}

fn connect(client: &str, stdin: Stdio, stdout: Stdio) -> tokio::process::Child {
    Command::new(BIN)
        .args(["connect", client])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connect")
}

/// Items 1 and 2 with `endpoints` on both ends, on every transport: upload (listen receives,
/// connect sends) and download (listen sends, connect receives), the receiving side's stdin
/// at /dev/null. Every byte arrives and both exit 0.
#[tokio::test]
async fn uploads_and_downloads_deliver_everything_between_two_commands() {
    let dir = temp_dir("transfers");
    let (ca, key, cert) = pki(&dir);
    let tls = Tls { ca, key, cert };
    let big = big_file(&dir);
    for t in transports(&dir, &tls) {
        // Upload: `nc -l > out` / `nc host < file`.
        let out = dir.join(format!("{}-up.out", t.name));
        let (server, shown) = listen_once(&t.server, Stdio::null(), file_out(&out)).await;
        let client = connect(&(t.client)(&shown, &tls), file_in(&big), Stdio::null());
        let (cc, ce) = finish(client, "connect (upload)").await;
        let (sc, _) = finish(server, "listen (upload)").await;
        assert_eq!((cc, sc), (Some(0), Some(0)), "{} upload: {ce}", t.name);
        same_bytes(&out, &big);

        // Download: `nc -l < file` / `nc host > out`.
        let dl = dir.join(format!("{}-down.out", t.name));
        let (server, shown) = listen_once(&t.server, file_in(&big), Stdio::null()).await;
        let client = connect(&(t.client)(&shown, &tls), Stdio::null(), file_out(&dl));
        let (cc, ce) = finish(client, "connect (download)").await;
        let (sc, _) = finish(server, "listen (download)").await;
        assert_eq!((cc, sc), (Some(0), Some(0)), "{} download: {ce}", t.name);
        same_bytes(&dl, &big);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Items 1, 2 and 4 with socat on the other end, in the four shapes: our `listen` receiving
/// from and sending to a socat client, our `connect` sending to and receiving from a socat
/// listener; socat's stdin at /dev/null when it is the receiving side.
#[tokio::test]
async fn every_shape_delivers_everything_with_socat_on_the_other_end() {
    if !socat() {
        return;
    }
    let dir = temp_dir("transfers-socat");
    let (ca, key, cert) = pki(&dir);
    let tls = Tls { ca, key, cert };
    let big = big_file(&dir);
    // socat's own timeout after one direction ended (-t, 0.5 s by default) would cut what
    // we still send: give it the transfer bound, as a user would with `-t`.
    let t_flag = TRANSFER_BOUND.as_secs().to_string();
    for t in transports(&dir, &tls) {
        // listen receives; socat sends.
        let out = dir.join(format!("{}-listen-recv", t.name));
        let (server, shown) = listen_once(&t.server, Stdio::null(), file_out(&out)).await;
        let sender = socat_child(
            &["-t", &t_flag, "-", &(t.socat_connect)(&shown, &tls)],
            file_in(&big),
            Stdio::null(),
        );
        let (xc, xe) = finish(sender, "socat (sending)").await;
        let (sc, se) = finish(server, "listen (receiving)").await;
        assert_eq!((xc, sc), (Some(0), Some(0)), "{}: {xe} {se}", t.name);
        same_bytes(&out, &big);

        // listen sends; socat receives with stdin at /dev/null.
        let out = dir.join(format!("{}-listen-send", t.name));
        let (server, shown) = listen_once(&t.server, file_in(&big), Stdio::null()).await;
        let receiver = socat_child(
            &["-t", &t_flag, "-", &(t.socat_connect)(&shown, &tls)],
            Stdio::null(),
            file_out(&out),
        );
        let (xc, xe) = finish(receiver, "socat (receiving)").await;
        let (sc, se) = finish(server, "listen (sending)").await;
        assert_eq!((xc, sc), (Some(0), Some(0)), "{}: {xe} {se}", t.name);
        same_bytes(&out, &big);

        // connect sends; a socat listener receives with stdin at /dev/null.
        let out = dir.join(format!("{}-connect-send", t.name));
        let (socat_addr, ours) = (t.socat_listen)(&dir, &tls);
        let receiver = socat_child(
            &["-t", &t_flag, &socat_addr, "-"],
            Stdio::null(),
            file_out(&out),
        );
        let client = connect_when_up(&ours, file_in(&big), Stdio::null()).await;
        let (cc, ce) = finish(client, "connect (sending)").await;
        let (xc, xe) = finish(receiver, "socat (receiving)").await;
        assert_eq!((cc, xc), (Some(0), Some(0)), "{}: {ce} {xe}", t.name);
        same_bytes(&out, &big);

        // connect receives with stdin at /dev/null; a socat listener sends.
        let out = dir.join(format!("{}-connect-recv", t.name));
        let (socat_addr, ours) = (t.socat_listen)(&dir, &tls);
        let sender = socat_child(
            &["-t", &t_flag, &socat_addr, "-"],
            file_in(&big),
            Stdio::null(),
        );
        let client = connect_when_up(&ours, Stdio::null(), file_out(&out)).await;
        let (cc, ce) = finish(client, "connect (receiving)").await;
        let (xc, xe) = finish(sender, "socat (sending)").await;
        assert_eq!((cc, xc), (Some(0), Some(0)), "{}: {ce} {xe}", t.name);
        same_bytes(&out, &big);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `endpoints connect` once socat's listener is up (socat binds a moment after it starts),
/// without connecting to it first (a socat listener without `fork` serves one connection):
/// the port in LISTEN state in /proc/net/tcp, or the socket file present. Checked at most 100
/// times 100 ms apart (socat is up within milliseconds; 10 s is for a loaded machine).
async fn connect_when_up(client: &str, stdin: Stdio, stdout: Stdio) -> tokio::process::Child {
    let d: endpoints::Description = client.parse().expect("description");
    let port = d
        .get("port")
        .map(|p| p.parse::<u16>().expect("port"))
        .or_else(|| d.positionals().nth(1).and_then(|f| f.value().parse().ok()));
    for _ in 0..100 {
        let up = match port {
            Some(port) => std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
                // local_address is `0100007F:PORT` in hex; state 0A is LISTEN.
                t.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&format!(":{port:04X}")) && f[3] == "0A"
                })
            }),
            None => {
                let path = d
                    .positionals()
                    .next()
                    .map(|f| f.value().to_owned())
                    .or_else(|| d.get("path").map(str::to_owned))
                    .expect("path");
                std::path::Path::new(&path).exists()
            }
        };
        if up {
            return connect(client, stdin, stdout);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("socat did not listen within 10 s");
}

/// Item 3: a peer that refuses the rest (it resets half-way) while stdin still had data is a
/// truncation: a warning with the byte counts and a non-zero exit, for `connect` uploading and
/// for `listen` serving a download.
#[tokio::test]
async fn a_peer_that_resets_half_way_is_loud() {
    let dir = temp_dir("transfers-reset");
    let big = big_file(&dir);

    // connect uploads to a server that reads 1 MB, then resets.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = server.local_addr().expect("addr").port();
    let resetter = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.expect("accept");
        let mut buf = vec![0u8; 1_000_000];
        s.read_exact(&mut buf).await.expect("1 MB");
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("linger 0");
        drop(s);
    });
    let client = connect(
        &format!("tcp:127.0.0.1:{port}"),
        file_in(&big),
        Stdio::null(),
    );
    let (code, err) = finish(client, "connect").await;
    resetter.await.expect("server");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("warning"), "{err}");
    assert!(err.contains("bytes sent"), "{err}");
    assert!(err.contains("truncat"), "{err}");

    // listen serves a download to a client that reads 1 MB, then resets.
    let (server, shown) =
        listen_once("tcp:0:interface=127.0.0.1", file_in(&big), Stdio::null()).await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port_in(&shown)))
        .await
        .expect("connect");
    let mut buf = vec![0u8; 1_000_000];
    s.read_exact(&mut buf).await.expect("1 MB");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger 0");
    drop(s);
    let (code, _) = finish(server, "listen").await;
    assert_eq!(code, Some(1), "a cut download is a failure");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 3, the terminal exception: with a terminal as stdin (a pty here), `connect` stops when
/// the peer has closed, as people expect of an interactive session, and exits 0.
#[tokio::test]
async fn a_terminal_stdin_stops_when_the_peer_closes() {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = server.local_addr().expect("addr").port();
    let greeter = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.expect("accept");
        s.write_all(b"bye\n").await.expect("write");
        s.shutdown().await.expect("close");
        // Read until the client goes (it must, though its terminal stays open).
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let (_master, slave) = pty();
    let mut child = Command::new(BIN)
        .args(["connect", &format!("tcp:127.0.0.1:{port}")])
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connect");
    let mut out = Vec::new();
    // The peer closes at once; 20 s is far beyond the milliseconds this takes.
    tokio::time::timeout(
        Duration::from_secs(20),
        child.stdout.take().expect("stdout").read_to_end(&mut out),
    )
    .await
    .expect("connect ended although its terminal stays open")
    .expect("read");
    let (code, err) = finish(child, "connect on a terminal").await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, b"bye\n");
    greeter.await.expect("server");
}

/// A pseudo-terminal pair: (master, slave), both owned.
#[allow(unsafe_code)] // openpty(3), with SAFETY notes.
fn pty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the two ints; null name, termios and
    // winsize are allowed. On success each descriptor is owned by exactly one OwnedFd.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors from openpty, owned by nothing else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// Item 1 through `relay` (the issue saw "458752 bytes up"): an upload from `connect` through
/// a relay to `listen`, whose stdin is at /dev/null, delivers all 50 MB, and the relay's line
/// says so.
#[tokio::test]
async fn an_upload_through_the_relay_delivers_everything() {
    let dir = temp_dir("transfers-relay");
    let big = big_file(&dir);
    let out = dir.join("out");
    let (server, shown) =
        listen_once("tcp:0:interface=127.0.0.1", Stdio::null(), file_out(&out)).await;
    let mut relay_cmd = Command::new(BIN);
    relay_cmd
        .args([
            "relay",
            "tcp:0:interface=127.0.0.1",
            &format!("tcp:127.0.0.1:{}", port_in(&shown)),
        ])
        .stdout(Stdio::null());
    let (_relay, relay_at, mut rx) = start_with(relay_cmd, Stdio::null()).await;
    let client = connect(
        &format!("tcp:127.0.0.1:{}", port_in(&relay_at)),
        file_in(&big),
        Stdio::null(),
    );
    let (cc, ce) = finish(client, "connect").await;
    let (sc, _) = finish(server, "listen").await;
    assert_eq!((cc, sc), (Some(0), Some(0)), "{ce}");
    same_bytes(&out, &big);
    let line = tokio::time::timeout(TRANSFER_BOUND, async {
        while let Some(l) = rx.recv().await {
            if l.starts_with("relay 127.0.0.1:") {
                return l;
            }
        }
        panic!("the relay's stderr ended");
    })
    .await
    .expect("the relay's line");
    assert!(line.contains(&format!("{SIZE} bytes up")), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}
