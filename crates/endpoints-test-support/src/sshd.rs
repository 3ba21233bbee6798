//! A real OpenSSH server on loopback for `ssh:` tests: `sshd -D` with a temporary config,
//! host and user keys made with `ssh-keygen`, an authorized key, a pid file; killed on drop.
//! Runs as root (as the tests and CI do): `PermitRootLogin prohibit-password`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `sshd` and its files.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// Whether sshd, ssh-keygen and ssh-agent are here (else skipped, or a failure under CI).
pub fn available() -> bool {
    crate::peers::startable("/usr/sbin/sshd", "-V", "openssh-server")
        && crate::peers::startable("ssh-keygen", "-?", "openssh-client")
}

fn keygen(path: &Path, kind: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success(), "ssh-keygen -f {}", path.display());
}

/// What an sshd starts with beyond the defaults (ed25519 keys, no certificate).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The type of its one host key, as `ssh-keygen -t` takes it (`rsa`: an sshd with only
    /// an RSA host key); default ed25519.
    pub host_key: Option<&'static str>,
    /// The type of the authorized `user_key`; default ed25519.
    pub user_key: Option<&'static str>,
    /// A host certificate for its host key, signed by the authority `ca` (`ca.pub`; an
    /// unrelated authority is `other_ca`), and served with `HostCertificate`.
    pub certificate: Option<HostCertificate>,
    /// More sshd_config lines, each ending in a newline.
    pub config: Option<&'static str>,
    /// Lines before the usual config lines (sshd takes a keyword's first value:
    /// `LogLevel DEBUG1\n`, `Ciphers aes128-ctr\n`), each ending in a newline.
    pub first: String,
    /// Its log goes to the file that [`Sshd::log`] reads instead of stderr.
    pub log: bool,
}

/// How the host certificate is made: `ssh-keygen -s ca -h -n PRINCIPALS -V VALIDITY`.
#[derive(Clone, Debug)]
pub struct HostCertificate {
    /// `-n`: the host names it is for, comma-separated.
    pub principals: String,
    /// `-V`: its validity window, e.g. `-5m:+1h`, or `20200101:20200102` (expired).
    pub validity: String,
}

impl Sshd {
    /// Start one; `tag` names its directory.
    pub fn start(tag: &str) -> Self {
        Self::start_with(tag, &Options::default())
    }

    /// Start one with `options`; `tag` names its directory.
    pub fn start_with(tag: &str, options: &Options) -> Self {
        let first = options.first.as_str();
        let log = options.log;
        let dir = std::env::temp_dir().join(format!("endpoints-sshd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let host_type = options.host_key.unwrap_or("ed25519");
        let user_type = options.user_key.unwrap_or("ed25519");
        for (k, kind) in [
            ("host_key", host_type),
            ("user_key", user_type),
            ("other_key", "ed25519"),
            ("other_host_key", host_type),
        ] {
            keygen(&dir.join(k), kind);
        }
        let mut certificate = String::new();
        if let Some(c) = &options.certificate {
            keygen(&dir.join("ca"), "ed25519");
            keygen(&dir.join("other_ca"), "ed25519");
            let st = Command::new("ssh-keygen")
                .args(["-q", "-s"])
                .arg(dir.join("ca"))
                .args(["-h", "-I", "endpoints-test-host", "-n", &c.principals, "-V"])
                .arg(&c.validity)
                .arg(dir.join("host_key.pub"))
                .stdin(Stdio::null())
                .status()
                .expect("ssh-keygen -s runs");
            assert!(st.success(), "ssh-keygen -s (host certificate)");
            certificate = format!(
                "HostCertificate {}\n",
                dir.join("host_key-cert.pub").display()
            );
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).expect("copy");
        // sshd needs its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let d = dir.display();
        let config = format!(
            "{first}Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AllowTcpForwarding yes\nAllowStreamLocalForwarding yes\nGatewayPorts no\n\
             MaxSessions 200\nMaxStartups 200\nLogLevel ERROR\nStreamLocalBindUnlink yes\n\
             {certificate}{}",
            options.config.unwrap_or("")
        );
        std::fs::write(dir.join("sshd_config"), config).expect("config");
        let mut sshd = Command::new("/usr/sbin/sshd");
        sshd.arg("-D");
        if log {
            sshd.arg("-E").arg(dir.join("sshd.log"));
        } else {
            sshd.arg("-e");
        }
        let child = sshd
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .spawn()
            .expect("sshd starts");
        // Bounded: 200 tries of 50 ms, far above sshd's start-up of a few ms.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
        let mut parts = host_pub.split_whitespace();
        let (t, k) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {t} {k}\n"),
        )
        .expect("known_hosts");
        let other = std::fs::read_to_string(dir.join("other_host_key.pub")).expect("key");
        let mut parts = other.split_whitespace();
        let (t2, k2) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        std::fs::write(
            dir.join("changed_known_hosts"),
            format!("# an old key\n[127.0.0.1]:{port} {t2} {k2}\n"),
        )
        .expect("known_hosts");
        std::fs::write(dir.join("empty_known_hosts"), "").expect("known_hosts");
        Self { child, dir, port }
    }

    /// A file in its directory (`user_key`, `other_key`, `known_hosts`, `changed_known_hosts`,
    /// `empty_known_hosts`, `host_key.pub`; with a certificate `ca.pub`, `other_ca.pub`).
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// Its log so far (started with `log`; empty otherwise).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of the listening sshd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pids of the per-session sshd processes (children of the listener).
    pub fn session_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let me = self.child.id() as i32;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: the comm may hold spaces, so parse after ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let ppid = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(me) {
                out.push(pid);
            }
        }
        out
    }

    /// Established TCP connections to its port (`ss`).
    pub fn established(&self) -> usize {
        let out = Command::new("ss")
            .args(["-tnH", "state", "established"])
            .arg(format!("( sport = :{} )", self.port))
            .output()
            .expect("ss runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
