//! What the cells share: the data files, the PKI, the proxies (started once per test, when a
//! row needs them), and reading a listener's description.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use endpoints_test_support::{Pki, peers};
use tokio::sync::OnceCell;

use crate::table::{HALF_CLOSE_SIZE, Needs, SIZE};

/// A proxy running in this process, stopped when dropped.
struct Proxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct Fixture {
    pub(crate) dir: PathBuf,
    /// [`SIZE`] bytes, and the file holding them.
    pub(crate) data: Vec<u8>,
    pub(crate) data_file: PathBuf,
    /// The half-close request (or greeting) and answer, and their files.
    pub(crate) first: Vec<u8>,
    pub(crate) first_file: PathBuf,
    pub(crate) second: Vec<u8>,
    pub(crate) second_file: PathBuf,
    pki: OnceCell<Pki>,
    socks: OnceCell<Proxy>,
    http: OnceCell<Proxy>,
    sshd: OnceCell<endpoints_test_support::sshd::Sshd>,
    cells: AtomicUsize,
}

/// `len` bytes that are not all the same (a shifted byte would show).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(len + 4);
    let mut x = seed;
    while data.len() < len {
        // xorshift32: cheap, deterministic, no repeating 64 KiB pattern.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

impl Fixture {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("endpoints-matrix-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let data = pattern(SIZE, 0x1234_5678);
        let first = pattern(HALF_CLOSE_SIZE, 0x0bad_cafe);
        let second = pattern(HALF_CLOSE_SIZE, 0x5eed_f00d);
        let (data_file, first_file, second_file) =
            (dir.join("data"), dir.join("first"), dir.join("second"));
        std::fs::write(&data_file, &data).expect("write");
        std::fs::write(&first_file, &first).expect("write");
        std::fs::write(&second_file, &second).expect("write");
        Self {
            dir,
            data,
            data_file,
            first,
            first_file,
            second,
            second_file,
            pki: OnceCell::new(),
            socks: OnceCell::new(),
            http: OnceCell::new(),
            sshd: OnceCell::new(),
            cells: AtomicUsize::new(0),
        }
    }

    /// A fresh directory for one cell.
    pub(crate) fn cell_dir(&self) -> PathBuf {
        let n = self.cells.fetch_add(1, Ordering::Relaxed);
        let d = self.dir.join(format!("c{n}"));
        std::fs::create_dir_all(&d).expect("cell dir");
        d
    }

    /// Set up what a row needs; `Err` says why the row is skipped (a missing peer program:
    /// under `CI=true` that panics instead).
    pub(crate) async fn prepare(&self, needs: &[Needs]) -> Result<(), String> {
        for need in needs {
            match need {
                Needs::Pki => {
                    self.pki
                        .get_or_init(|| async {
                            let pki = Pki::new(&format!(
                                "matrix-{}",
                                self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("m")
                            ));
                            // The tls: server reads every *.pem of a directory: only the leaf.
                            std::fs::create_dir_all(pki.dir.join("server")).expect("dir");
                            std::fs::copy(
                                pki.dir.join("server.pem"),
                                pki.dir.join("server/server.pem"),
                            )
                            .expect("copy");
                            // The ssl: client's caCertsDir: only the CA.
                            std::fs::create_dir_all(pki.dir.join("ca")).expect("dir");
                            std::fs::copy(pki.dir.join("ca.pem"), pki.dir.join("ca/ca.pem"))
                                .expect("copy");
                            pki
                        })
                        .await;
                }
                Needs::Socks => {
                    self.socks.get_or_init(|| proxy(Kind::Socks5)).await;
                }
                Needs::HttpProxy => {
                    self.http.get_or_init(|| proxy(Kind::HttpConnect)).await;
                }
                Needs::Sshd => {
                    if !endpoints_test_support::sshd::available() {
                        // Under CI=true, `available` has already failed the test.
                        return Err("sshd or ssh-keygen is not installed".into());
                    }
                    let tag = format!(
                        "matrix-{}",
                        self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("m")
                    );
                    self.sshd
                        .get_or_init(|| async move {
                            tokio::task::spawn_blocking(move || {
                                endpoints_test_support::sshd::Sshd::start(&tag)
                            })
                            .await
                            .expect("sshd starts")
                        })
                        .await;
                }
                Needs::Activator => {
                    let found = std::process::Command::new("systemd-socket-activate")
                        .arg("--help")
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .is_ok();
                    if !found {
                        assert!(
                            !peers::under_ci(),
                            "systemd-socket-activate is missing and CI=true: install the \
                             Debian package `systemd`"
                        );
                        return Err("systemd-socket-activate is not installed".into());
                    }
                }
            }
        }
        Ok(())
    }

    fn pki(&self) -> &Pki {
        self.pki.get().expect("the row needs Needs::Pki")
    }
    /// A directory holding only the server's certificate and key (for `tls:`).
    pub(crate) fn tls_dir(&self) -> PathBuf {
        self.pki().dir.join("server")
    }
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.pki().dir.join("ca.pem")
    }
    /// A directory holding only the CA (for `ssl:`'s `caCertsDir=`).
    pub(crate) fn ca_dir(&self) -> PathBuf {
        self.pki().dir.join("ca")
    }
    pub(crate) fn key_file(&self) -> PathBuf {
        self.pki().dir.join("server-key.pem")
    }
    pub(crate) fn cert_file(&self) -> PathBuf {
        self.pki().dir.join("server-cert.pem")
    }
    pub(crate) fn socks_port(&self) -> u16 {
        self.socks.get().expect("the row needs Needs::Socks").port
    }
    /// The real `sshd` on loopback, with its keys and known_hosts.
    pub(crate) fn sshd(&self) -> &endpoints_test_support::sshd::Sshd {
        self.sshd.get().expect("the row needs Needs::Sshd")
    }
    pub(crate) fn http_port(&self) -> u16 {
        self.http
            .get()
            .expect("the row needs Needs::HttpProxy")
            .port
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(p) = self.pki.get() {
            let _ = std::fs::remove_dir_all(&p.dir);
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Socks5,
    HttpConnect,
}

/// A SOCKS5 (no authentication, CONNECT) or HTTP CONNECT proxy on loopback that passes each
/// direction's end on (a half-close) and a failure on as a reset, as a proxy that loses
/// nothing does. microsocks and tinyproxy end both directions when either ends, so no
/// transfer with one input at its end gets through them; their interop with our clients is
/// tested in crates/endpoints-tunnel/tests/tunnel/proxies.rs.
async fn proxy(kind: Kind) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tunnel(kind, client).await;
            });
        }
    });
    Proxy { port, task }
}

async fn tunnel(kind: Kind, mut client: tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = match kind {
        Kind::Socks5 => {
            let mut head = [0u8; 2];
            client.read_exact(&mut head).await?;
            let mut methods = vec![0u8; usize::from(head[1])];
            client.read_exact(&mut methods).await?;
            if methods.contains(&2) {
                // User name and password (RFC 1929), any accepted: `tor:` isolates its
                // streams with them.
                client.write_all(&[5, 2]).await?;
                let _version = client.read_u8().await?;
                let mut user = vec![0u8; usize::from(client.read_u8().await?)];
                client.read_exact(&mut user).await?;
                let mut password = vec![0u8; usize::from(client.read_u8().await?)];
                client.read_exact(&mut password).await?;
                client.write_all(&[1, 0]).await?;
            } else {
                client.write_all(&[5, 0]).await?;
            }
            let mut req = [0u8; 4];
            client.read_exact(&mut req).await?;
            let host = match req[3] {
                1 => {
                    let mut a = [0u8; 4];
                    client.read_exact(&mut a).await?;
                    std::net::Ipv4Addr::from(a).to_string()
                }
                3 => {
                    let n = client.read_u8().await?;
                    let mut name = vec![0u8; usize::from(n)];
                    client.read_exact(&mut name).await?;
                    String::from_utf8_lossy(&name).into_owned()
                }
                _ => {
                    let mut a = [0u8; 16];
                    client.read_exact(&mut a).await?;
                    std::net::Ipv6Addr::from(a).to_string()
                }
            };
            let port = client.read_u16().await?;
            let upstream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
            upstream
        }
        Kind::HttpConnect => {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(client.read_u8().await?);
                if head.len() > 16384 {
                    return Ok(());
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let authority = text
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let upstream = tokio::net::TcpStream::connect(authority.as_str()).await?;
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            upstream
        }
    };
    let mut upstream = target;
    if tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .is_err()
    {
        // A failure on one side reaches the other as a reset, never as a clean end.
        for s in [&client, &upstream] {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
    }
    Ok(())
}

/// A port nothing listens on now (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The port in a listener's canonical description, at whatever depth (`tcp:port=N`,
/// `ws:...:tcp:port=N:...`, `tls:path=...:port=N`).
pub(crate) fn port_of(shown: &str) -> u16 {
    let at = if shown.starts_with("port=") {
        0
    } else {
        shown
            .find(":port=")
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no port in `{shown}`"))
    };
    let digits: String = shown[at + "port=".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in `{shown}`"))
}

/// The socket path in a `unix:` listener's canonical description.
pub(crate) fn unix_path_of(shown: &str) -> String {
    let d: endpoints::Description = shown.parse().expect("description");
    d.get("address").expect("address").to_owned()
}

/// Whether `got` is `want`, in words when it is not.
pub(crate) fn same(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    Err(match at {
        Some(i) if got.len() >= want.len() || i < got.len() => format!(
            "{what}: {} bytes of {}, differing from byte {i}",
            got.len(),
            want.len()
        ),
        _ => format!("{what}: {} bytes of {} (cut short)", got.len(), want.len()),
    })
}

/// `path`'s bytes, or an empty vector (a file a program never wrote).
pub(crate) fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}
