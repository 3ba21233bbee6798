//! A private Tor network on 127.0.0.1 (docs: /work/shared/reference/tor-testnet.md, chutney's
//! templates): 3 directory authorities, 3 exit relays, a client (SocksPort, ControlPort) and
//! a Tor for onion services (ControlPort). The torrc files are written here; every wait is
//! bounded; dropping the network kills every process and removes its directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// A free port on 127.0.0.1 (bound, then released), below the kernel's ephemeral range:
/// a port the kernel picked (`bind(0)`) can be taken again as the source port of one of the
/// relays' own outgoing connections before Tor binds it (seen in CI: "Could not bind to
/// 127.0.0.1:41333: Address already in use"); ports below 32768 are never handed out so.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    // Bounded: 2,000 tries over 12,000 ports.
    for _ in 0..2_000 {
        let n = NEXT.fetch_add(7_919, Ordering::Relaxed).wrapping_add(seed);
        let port = 20_000 + (n % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 32000");
}

struct Node {
    name: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// The running network.
pub struct TestNet {
    nodes: Vec<Node>,
    pub socks_port: u16,
    pub client_control: u16,
    pub hs_control: u16,
    pub base: TempDir,
    /// The torrc lines a further client of this network needs (its authorities, testing
    /// options), for a Tor started by `endpoints_tor::launch`.
    pub client_torrc: Vec<String>,
}

const VOTING: &str = "TestingV3AuthInitialVotingInterval 10
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
";

fn common(name: &str, dir: &Path, dir_authorities: &str) -> String {
    format!(
        "TestingTorNetwork 1
DataDirectory {dir}
Nickname {name}
RunAsDaemon 0
ShutdownWaitLength 0
Log notice file {dir}/notice.log
SafeLogging 0
Sandbox 0
AvoidDiskWrites 1
CookieAuthentication 1
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
AssumeReachable 1
{VOTING}{dir_authorities}",
        dir = dir.display()
    )
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestNet {
    fn spawn(&mut self, name: &str, dir: &Path, torrc: String) {
        let path = dir.join("torrc");
        std::fs::write(&path, torrc).expect("torrc");
        let child = Command::new("tor")
            .arg("-f")
            .arg(&path)
            .arg("--defaults-torrc")
            .arg("/dev/null")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("tor starts");
        self.nodes.push(Node {
            name: name.to_owned(),
            dir: dir.to_owned(),
            child: Some(child),
        });
    }

    /// Every node's log tail, for a failed wait.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.dir.join("notice.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(6).collect();
            s.push_str(&format!("--- {}\n", n.name));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    fn wait(&mut self, what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            for n in &mut self.nodes {
                if let Some(c) = n.child.as_mut()
                    && let Ok(Some(status)) = c.try_wait()
                {
                    panic!(
                        "the test network: {} exited ({status}): {}",
                        n.name,
                        std::fs::read_to_string(n.dir.join("stdout.log")).unwrap_or_default()
                    );
                }
            }
            assert!(
                start.elapsed() < bound,
                "the test network: no {what} within {}s\n{}",
                bound.as_secs(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        println!(
            "test network: {what} after {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }

    /// Start the whole network and wait until the client has bootstrapped.
    pub fn start() -> Self {
        let t0 = Instant::now();
        let base = TempDir::new("net");
        let mut net = Self {
            nodes: Vec::new(),
            socks_port: free_port(),
            client_control: free_port(),
            hs_control: free_port(),
            base,
            client_torrc: Vec::new(),
        };
        let root = net.base.0.clone();
        // Authorities: keys and fingerprints first.
        let mut auths = Vec::new();
        let mut lines = String::new();
        for i in 0..3 {
            let name = format!("auth{i}");
            let dir = root.join(&name);
            let keys = dir.join("keys");
            std::fs::create_dir_all(&keys).expect("keys dir");
            let (or, dirport) = (free_port(), free_port());
            let mut gencert = Command::new("tor-gencert");
            gencert
                .current_dir(&keys)
                .args([
                    "--create-identity-key",
                    "--passphrase-fd",
                    "0",
                    "-m",
                    "12",
                    "-a",
                ])
                .arg(format!("127.0.0.1:{dirport}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = gencert.spawn().expect("tor-gencert");
            drop(child.stdin.take()); // an empty passphrase
            let out = child.wait_with_output().expect("tor-gencert");
            assert!(
                out.status.success(),
                "tor-gencert: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let cert = std::fs::read_to_string(keys.join("authority_certificate")).expect("cert");
            let v3ident = cert
                .lines()
                .find_map(|l| l.strip_prefix("fingerprint "))
                .expect("fingerprint line")
                .trim()
                .to_owned();
            let empty = dir.join("empty-torrc");
            std::fs::write(&empty, "").expect("empty torrc");
            run(
                Command::new("tor")
                    .arg("--list-fingerprint")
                    .args(["--orport", "1", "--nickname", &name, "--datadirectory"])
                    .arg(&dir)
                    .arg("-f")
                    .arg(&empty)
                    .args(["--defaults-torrc", "/dev/null", "--quiet"]),
                "tor --list-fingerprint",
            );
            let fp = std::fs::read_to_string(dir.join("fingerprint")).expect("fingerprint");
            let fp = fp
                .split_whitespace()
                .nth(1)
                .expect("fingerprint")
                .to_owned();
            lines.push_str(&format!(
                "DirAuthority {name} orport={or} no-v2 v3ident={v3ident} 127.0.0.1:{dirport} {fp}\n"
            ));
            auths.push((name, dir, or, dirport));
        }
        net.client_torrc = common("x", Path::new("/nonexistent"), &lines)
            .lines()
            .filter(|l| {
                ![
                    "DataDirectory",
                    "Nickname",
                    "Log ",
                    "RunAsDaemon",
                    "AvoidDiskWrites",
                ]
                .iter()
                .any(|p| l.starts_with(p))
            })
            .map(str::to_owned)
            .collect();
        // Start just after a voting-interval boundary (10 s), as measured.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let into = now.as_millis() % 10_000;
        std::thread::sleep(Duration::from_millis(((10_500 - into) % 10_000) as u64));
        for (name, dir, or, dirport) in &auths {
            let torrc = format!(
                "{}AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\nContactInfo {name}@test.invalid\nSocksPort 0\nORPort 127.0.0.1:{or}\nDirPort 127.0.0.1:{dirport}\nAddress 127.0.0.1\nExitPolicy reject *:*\n",
                common(name, dir, &lines)
            );
            net.spawn(name, dir, torrc);
        }
        for i in 0..3 {
            let name = format!("exit{i}");
            let dir = root.join(&name);
            std::fs::create_dir_all(&dir).expect("dir");
            let torrc = format!(
                "{}SocksPort 0\nORPort 127.0.0.1:{}\nDirPort 127.0.0.1:{}\nAddress 127.0.0.1\nExitRelay 1\nExitPolicy accept 127.0.0.0/8:*\nExitPolicyRejectPrivate 0\nExitPolicyRejectLocalInterfaces 0\n",
                common(&name, &dir, &lines),
                free_port(),
                free_port()
            );
            net.spawn(&name, &dir, torrc);
        }
        // The client and the onion-service Tor once a consensus lists all 6 relays.
        let consensus = root.join("auth0").join("cached-consensus");
        net.wait("consensus with 6 relays", Duration::from_secs(180), || {
            std::fs::read_to_string(&consensus)
                .is_ok_and(|c| c.lines().filter(|l| l.starts_with("r ")).count() >= 6)
        });
        let dir = root.join("client");
        std::fs::create_dir_all(&dir).expect("dir");
        let torrc = format!(
            "{}SocksPort 127.0.0.1:{} ExtendedErrors\nSocksTimeout 15\nControlPort {}\n",
            common("client", &dir, &lines),
            net.socks_port,
            net.client_control
        );
        net.spawn("client", &dir, torrc);
        let dir = root.join("hs");
        std::fs::create_dir_all(&dir).expect("dir");
        let torrc = format!(
            "{}SocksPort 0\nControlPort {}\n",
            common("hs", &dir, &lines),
            net.hs_control
        );
        net.spawn("hs", &dir, torrc);
        for node in ["client", "hs"] {
            let log = root.join(node).join("notice.log");
            net.wait(
                &format!("{node} bootstrapped"),
                Duration::from_secs(180),
                || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Bootstrapped 100%")),
            );
        }
        println!("test network up in {:.1}s", t0.elapsed().as_secs_f64());
        net
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
