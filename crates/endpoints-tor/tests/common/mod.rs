//! A `tor` process for tests: its torrc written here, a private data directory, killed and
//! removed when dropped.
#![allow(dead_code, unreachable_pub)]

pub mod testnet;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `tor` can run here (skips with a reason, fails under CI=true).
pub fn tor_available() -> bool {
    endpoints_test_support::peers::program("tor", "--version", "tor")
}

/// A directory of our own (mode 700, as tor wants its data directory), removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::os::unix::fs::DirBuilderExt;
        let mut b = [0u8; 6];
        let _ = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
        let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("endpoints-tor-{tag}-{name}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `tor` with its network disabled and a control port (the fast tier: no network at all).
pub struct Tor {
    child: Option<Child>,
    pub dir: TempDir,
    pub control_port: u16,
}

impl Tor {
    /// Start tor with `DisableNetwork 1`, `ControlPort auto`, cookie authentication, and
    /// `extra` torrc lines; wait until it has written its control port.
    pub fn start(tag: &str, extra: &str) -> Self {
        let dir = TempDir::new(tag);
        let data = dir.0.join("data");
        let torrc = dir.0.join("torrc");
        let port_file = dir.0.join("control-port");
        std::fs::write(
            &torrc,
            format!(
                "DataDirectory {data}\nDisableNetwork 1\nSocksPort 0\nControlPort auto\nControlPortWriteToFile {port}\nLog notice file {log}\nSandbox 0\nAvoidDiskWrites 1\n{extra}\n",
                data = data.display(),
                port = port_file.display(),
                log = dir.0.join("log").display(),
            ),
        )
        .expect("torrc");
        let child = Command::new("tor")
            .arg("-f")
            .arg(&torrc)
            .arg("--defaults-torrc")
            .arg("/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tor starts");
        let mut tor = Self {
            child: Some(child),
            dir,
            control_port: 0,
        };
        // The control port answers 30-60 ms after launch (measured); 30 s is a bound for a
        // loaded machine, not an expectation.
        for _ in 0..600 {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some(port) = text
                    .trim()
                    .strip_prefix("PORT=")
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
            {
                tor.control_port = port;
                return tor;
            }
            if let Some(c) = tor.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("tor exited ({status}): {}", tor.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tor wrote no control port within 30 s: {}", tor.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
    }

    pub fn cookie(&self) -> PathBuf {
        self.dir.0.join("data").join("control_auth_cookie")
    }

    /// Stop tor now (SIGKILL) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn data(&self) -> &Path {
        &self.dir.0
    }
}

impl Drop for Tor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `tor` program for `torBinary=`: the real tor with its network disabled (the fast tier),
/// recording each process id it becomes in `pids` (it `exec`s: the id is tor's).
pub struct OfflineTor {
    pub dir: TempDir,
}

impl OfflineTor {
    pub fn new(tag: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new(tag);
        let script = dir.0.join("tor-offline");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho $$ >> {pids}\nexec tor \"$@\" --DisableNetwork 1 --Sandbox 0 --AvoidDiskWrites 1\n",
                pids = dir.0.join("pids").display()
            ),
        )
        .expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Self { dir }
    }

    pub fn program(&self) -> PathBuf {
        self.dir.0.join("tor-offline")
    }

    /// The process ids started so far.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.0.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// Whether process `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The command line of process `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Wait (bounded) until `pid` has ended; whether it did. The bound (20 s) is for a loaded
/// machine: a killed process ends in milliseconds.
pub async fn ended(pid: u32) -> bool {
    for _ in 0..400 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
