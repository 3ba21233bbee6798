//! Helpers: an echo application on a `ws:` server, raw loopback peers, Python `websockets`
//! peers run as child processes, a throw-away PKI, hashing.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Connection, Description, Listener};
use endpoints_ws::WsInfo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The bound on any one step of a test: the steps take milliseconds on loopback, so 10 s
/// is far beyond 10x what they need, even on a loaded 2-core machine.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// The bound on a whole transfer in [`round_trip`]: 16 MiB both ways takes under 2 s here
/// (debug build, loaded 2-core machine); 60 s is over 30x that.
pub(crate) const TRANSFER: Duration = Duration::from_secs(60);

/// `f` within [`STEP`], or a panic naming `what`.
pub(crate) async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no progress within {STEP:?}"))
}

pub(crate) fn desc(text: &str) -> Description {
    text.parse()
        .unwrap_or_else(|e| panic!("`{text}` does not parse:\n{e}"))
}

pub(crate) async fn listen(text: &str) -> Box<dyn Listener> {
    within(
        "listen",
        build_server(&desc(text))
            .unwrap_or_else(|e| panic!("`{text}`:\n{e}"))
            .listen(),
    )
    .await
    .unwrap_or_else(|e| panic!("listen `{text}`: {e}"))
}

pub(crate) async fn connect(text: &str) -> Connection {
    within(
        "connect",
        build_client(&desc(text))
            .unwrap_or_else(|e| panic!("`{text}`:\n{e}"))
            .connect(),
    )
    .await
    .unwrap_or_else(|e| panic!("connect `{text}`: {e}"))
}

/// What the echo application saw of one connection.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) info: Option<WsInfo>,
    /// How its read side ended: `Ok(bytes read)` or the error's text.
    pub(crate) end: Result<usize, String>,
}

/// Serve `listener` with an echo application: every connection's bytes are written back
/// (each read one write, so one message each way), and its write side shut when its read
/// side ends. Reports each connection's [`Seen`].
pub(crate) fn echo(mut listener: Box<dyn Listener>) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let info = conn.extensions().get::<WsInfo>().cloned();
                let (mut r, mut w) = tokio::io::split(conn);
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0usize;
                let end = loop {
                    match r.read(&mut buf).await {
                        Ok(0) => break Ok(total),
                        Ok(n) => {
                            total += n;
                            if let Err(e) = w.write_all(&buf[..n]).await {
                                break Err(format!("write: {e}"));
                            }
                        }
                        Err(e) => break Err(e.to_string()),
                    }
                };
                let _ = w.shutdown().await;
                let _ = tx.send(Seen { info, end });
            });
        }
    });
    rx
}

/// The TCP port of a listener.
pub(crate) fn port_of(l: &dyn Listener) -> u16 {
    l.local_addr().expect("bound").ip().expect("ip").port()
}

/// Deterministic bytes, different at every offset for a long while.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// Write `data` and read as many bytes back at once; then shut down (Close) and read to the
/// peer's Close. The bytes read back.
pub(crate) async fn round_trip(conn: Connection, data: &[u8]) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(conn);
    let writer = async {
        w.write_all(data).await.expect("write");
        w.flush().await.expect("flush");
    };
    let reader = async {
        let mut back = vec![0u8; data.len()];
        r.read_exact(&mut back).await.expect("read the echo");
        back
    };
    let ((), back) = tokio::time::timeout(TRANSFER, async { tokio::join!(writer, reader) })
        .await
        .unwrap_or_else(|_| panic!("round trip: not within {TRANSFER:?}"));
    w.shutdown().await.expect("shutdown (Close)");
    let mut rest = Vec::new();
    within("read to the peer's Close", r.read_to_end(&mut rest))
        .await
        .expect("a clean end after the peer's Close");
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
    back
}

/// A fresh directory for this test's files.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("endpoints-ws-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A CA and a `localhost`/127.0.0.1 server certificate: `ca.pem`, `server.pem` (cert +
/// key), and `certs/` holding `server.pem` for a `tls:` server.
pub(crate) fn pki(name: &str) -> PathBuf {
    let dir = temp_dir(&format!("pki-{name}"));
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "ws test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    std::fs::write(dir.join("server.pem"), &pem).expect("write");
    std::fs::create_dir_all(dir.join("certs")).expect("dir");
    std::fs::write(dir.join("certs").join("server.pem"), &pem).expect("write");
    dir
}

/// Whether Python's `websockets` is importable: skip with a reason if not, fail under
/// CI=true.
pub(crate) fn websockets() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import websockets.asyncio.server"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "Python websockets is missing and CI=true: pip install websockets"
        );
        println!("skipping: Python websockets not importable (pip install websockets)");
    }
    ok
}

/// A Python child process, killed when dropped, and its stdout lines.
pub(crate) struct Py {
    pub(crate) child: Child,
    pub(crate) lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Py {
    /// Run `script` with `args`.
    pub(crate) fn run(script: &str, args: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    /// The next line of its output.
    pub(crate) async fn line(&mut self) -> String {
        within("a line from python", self.lines.next_line())
            .await
            .expect("read python's output")
            .expect("python ended without the line")
    }

    /// Wait for it to exit successfully.
    pub(crate) async fn success(mut self) {
        let status = within("python to exit", self.child.wait())
            .await
            .expect("wait");
        assert!(status.success(), "python failed: {status}");
    }
}
