//! Start a `tor` of our own (txtorcon's `launch`): a private data directory, a control port
//! and a SOCKS port chosen by Tor, bootstrap progress in the log, the process stopped when the
//! handle is dropped (and by Tor itself if this process dies: `__OwningControllerProcess`).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use endpoints_core::registry::build_client;

use crate::client::socks_from_getinfo;
use crate::control::Control;

/// How to start Tor.
#[derive(Clone, Debug)]
pub struct Launch {
    binary: PathBuf,
    data_dir: Option<PathBuf>,
    torrc: Vec<String>,
    timeout: Duration,
}

impl Default for Launch {
    fn default() -> Self {
        Self::new()
    }
}

impl Launch {
    /// `tor` from `PATH`, a new private data directory (removed when the handle is dropped),
    /// 180 s to bootstrap.
    pub fn new() -> Self {
        Self {
            binary: PathBuf::from("tor"),
            data_dir: None,
            torrc: Vec::new(),
            timeout: Duration::from_secs(180),
        }
    }

    /// The `tor` program to run.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// Keep Tor's state in this directory (created mode 700; kept after the handle is
    /// dropped: the next start bootstraps faster).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// One more torrc line (`ExitNodes {de}`, a test network's `DirAuthority` lines, ...).
    pub fn torrc_line(mut self, line: impl Into<String>) -> Self {
        self.torrc.push(line.into());
        self
    }

    /// Deadline for Tor to start and bootstrap (default 180 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Start Tor and wait until it has bootstrapped, logging its progress.
    pub async fn start(self) -> io::Result<LaunchedTor> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.run()).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the launched tor did not bootstrap within {:.0}s (is the network reachable?)",
                    timeout.as_secs_f64()
                ),
            )),
        }
    }

    async fn run(self) -> io::Result<LaunchedTor> {
        use std::os::unix::fs::DirBuilderExt;
        let (dir, owned) = match &self.data_dir {
            Some(d) => (d.clone(), false),
            None => {
                let mut b = [0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                    .map_err(|_| io::Error::other("no random numbers"))?;
                let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
                (
                    std::env::temp_dir().join(format!("endpoints-tor-{name}")),
                    true,
                )
            }
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists || owned => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create tor's data directory `{}`: {e}",
                        dir.display()
                    ),
                ));
            }
            _ => {}
        }
        let guard = DirGuard(owned.then(|| dir.clone()));
        let port_file = dir.join("endpoints-control-port");
        let _ = std::fs::remove_file(&port_file);
        let mut torrc = format!(
            "DataDirectory {d}\nControlPort auto\nControlPortWriteToFile {p}\nCookieAuthentication 1\nSocksPort auto\n__OwningControllerProcess {pid}\nLog notice file {d}/notice.log\n",
            d = dir.display(),
            p = port_file.display(),
            pid = std::process::id()
        );
        for l in &self.torrc {
            if l.contains(['\n', '\r']) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a torrc line cannot contain a line break",
                ));
            }
            torrc.push_str(l);
            torrc.push('\n');
        }
        let torrc_path = dir.join("endpoints-torrc");
        std::fs::write(&torrc_path, torrc)?;
        let child = tokio::process::Command::new(&self.binary)
            .arg("-f")
            .arg(&torrc_path)
            .arg("--defaults-torrc")
            .arg("/dev/null")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start `{}`: {e} (install Tor: Debian's package `tor`)",
                        self.binary.display()
                    ),
                )
            })?;
        let mut tor = LaunchedTor {
            child,
            control: None,
            socks: None,
            dir,
            _guard: guard,
        };
        let port = tor.control_port(&port_file).await?;
        let ep = build_client(
            &format!("tcp:127.0.0.1:{port}")
                .parse()
                .map_err(|e| io::Error::other(format!("{e}")))?,
        )
        .map_err(|e| io::Error::other(format!("{e} (link endpoints-tcp)")))?;
        let control = Control::connect(ep.as_ref(), None).await?;
        let mut last = String::new();
        loop {
            let r = control
                .ok(
                    "GETINFO status/bootstrap-phase",
                    "GETINFO status/bootstrap-phase",
                )
                .await?;
            let phase = r.value("status/bootstrap-phase").unwrap_or_default();
            let progress = phase
                .split(' ')
                .find_map(|w| w.strip_prefix("PROGRESS="))
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(0);
            if phase != last {
                tracing::info!(progress, phase = %phase, "tor bootstrapping");
                last = phase;
            }
            if progress >= 100 {
                break;
            }
            if let Ok(Some(status)) = tor.child.try_wait() {
                return Err(io::Error::other(format!(
                    "the launched tor exited ({status}) while bootstrapping: see {}",
                    tor.dir.join("notice.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let r = control
            .ok("GETINFO net/listeners/socks", "GETINFO net/listeners/socks")
            .await?;
        let raw = r
            .lines
            .iter()
            .find_map(|l| l.text.strip_prefix("net/listeners/socks="))
            .unwrap_or_default()
            .to_owned();
        tor.socks = socks_from_getinfo(&raw).and_then(|d| {
            let addr = d.strip_prefix("tcp:")?.replace('\\', "");
            let (host, port) = addr.rsplit_once(':')?;
            format!("{host}:{port}").parse().ok()
        });
        tor.control = Some((control, port));
        Ok(tor)
    }
}

#[derive(Debug)]
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A running Tor of ours; dropping it stops the process (and removes a data directory it
/// created).
#[derive(Debug)]
pub struct LaunchedTor {
    child: tokio::process::Child,
    control: Option<(Control, u16)>,
    socks: Option<SocketAddr>,
    dir: PathBuf,
    // Dropped after `child` (fields drop in order): the directory goes once Tor is killed.
    _guard: DirGuard,
}

impl LaunchedTor {
    async fn control_port(&mut self, file: &Path) -> io::Result<u16> {
        // Tor writes it 30-60 ms after start (measured); the caller's timeout bounds this.
        loop {
            if let Ok(text) = std::fs::read_to_string(file)
                && let Some(port) = text
                    .trim()
                    .strip_prefix("PORT=")
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
            {
                return Ok(port);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(io::Error::other(format!(
                    "the launched tor exited ({status}) before opening its control port: see {}",
                    self.dir.join("notice.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Tor's control port on 127.0.0.1 (for `onion:...:controlPort=`, `tor:...:control=`).
    pub fn control_port_number(&self) -> Option<u16> {
        self.control.as_ref().map(|(_, p)| *p)
    }

    /// The authenticated control connection.
    pub fn control(&self) -> Option<&Control> {
        self.control.as_ref().map(|(c, _)| c)
    }

    /// Tor's SOCKS port (for `tor:...:socksPort=`).
    pub fn socks_addr(&self) -> Option<SocketAddr> {
        self.socks
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Stop Tor now and wait for it.
    pub async fn stop(mut self) -> io::Result<()> {
        self.control.take();
        self.child.kill().await
    }
}
