//! Start a `tor` of our own (txtorcon's `launch`): a private data directory, a control port
//! and a SOCKS port chosen by Tor, bootstrap progress in the log, the process stopped when the
//! handle is dropped or [stopped](LaunchedTor::stop) (and by Tor itself when our control
//! connection closes, `TAKEOWNERSHIP`, or this process dies, `__OwningControllerProcess`).
//!
//! The descriptions use it with `launch=1` (`tor:` and `onion:`; an `onion:` without
//! `controlPort=` launches, as txtorcon's does), `torBinary=` and `dataDirectory=`
//! (txtorcon's `launch(tor_binary=, data_directory=)`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use endpoints_core::registry::build_client;

use crate::client::socks_from_getinfo;
use crate::control::{Control, pairs};

/// How to start Tor.
#[derive(Clone, Debug)]
pub struct Launch {
    binary: PathBuf,
    data_dir: Option<PathBuf>,
    torrc: Vec<String>,
    timeout: Duration,
    wait_bootstrap: bool,
}

impl Default for Launch {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a launch was when it failed or stalled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchStage {
    /// Making (or checking) the private data directory.
    DataDirectory,
    /// Starting the `tor` program.
    Start,
    /// Waiting for Tor to open its control port.
    ControlPort,
    /// Authenticating to the control port.
    Authenticate,
    /// Waiting for the bootstrap: the last progress Tor reported.
    Bootstrap {
        /// Percent, 0 to 100.
        progress: u8,
        /// Tor's words for the phase (`Loading relay descriptors`).
        summary: String,
    },
}

impl fmt::Display for LaunchStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DataDirectory => f.write_str("making its private data directory"),
            Self::Start => f.write_str("starting the tor program"),
            Self::ControlPort => f.write_str("waiting for its control port"),
            Self::Authenticate => f.write_str("authenticating to its control port"),
            Self::Bootstrap { progress, summary } => {
                write!(f, "bootstrapping (at {progress}%: {summary})")
            }
        }
    }
}

/// The error of a launch that failed or stalled: find it with [`launch_error`].
#[derive(Debug)]
pub struct LaunchError {
    /// Where it was.
    pub stage: LaunchStage,
    /// What happened and what to do.
    pub message: String,
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "launching tor, {}: {}", self.stage, self.message)
    }
}

impl std::error::Error for LaunchError {}

/// The [`LaunchError`] anywhere in an error's chain.
pub fn launch_error(e: &io::Error) -> Option<&LaunchError> {
    crate::client::find_in_chain(e)
}

fn failed(stage: &LaunchStage, e: io::Error) -> io::Error {
    if launch_error(&e).is_some() {
        return e;
    }
    io::Error::new(
        e.kind(),
        LaunchError {
            stage: stage.clone(),
            message: e.to_string(),
        },
    )
}

/// The error of a launch that did not finish within `timeout`, naming where it stalled.
pub(crate) fn stalled(stage: &LaunchStage, timeout: Duration, dir: Option<&Path>) -> io::Error {
    let hint = match stage {
        LaunchStage::Bootstrap { .. } => {
            "Tor could not reach the Tor network: is the network reachable (a firewall, DisableNetwork, a censored network needing bridges)?"
        }
        _ => "is the machine overloaded?",
    };
    let log = dir.map(|d| last_warnings(&d.join("notice.log")));
    io::Error::new(
        io::ErrorKind::TimedOut,
        LaunchError {
            stage: stage.clone(),
            message: format!(
                "stalled there for {:.0}s; {hint}{}",
                timeout.as_secs_f64(),
                log.filter(|l| !l.is_empty())
                    .map(|l| format!(" Tor's last warnings: {l}"))
                    .unwrap_or_default()
            ),
        },
    )
}

/// The last `[warn]`/`[err]` lines of Tor's log (bounded: the last 8 KiB, two lines).
fn last_warnings(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut bytes = Vec::new();
    let _ = f.take(8192).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.contains("[warn]") || l.contains("[err]"))
                && !l.contains("You are running Tor as root")
        })
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" | ")
}

/// Make `dir` ours, mode 700, or check the one there: a real directory (a symbolic link is
/// refused, never followed) that group and others cannot reach.
fn private_dir(dir: &Path, must_be_new: bool) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists || must_be_new => {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot create tor's data directory `{}`: {e}",
                    dir.display()
                ),
            ));
        }
        Err(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "tor's data directory `{}` is a symbolic link: refused (a link is never followed there; give the directory itself)",
                dir.display()
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "tor's data directory `{}` is not a directory",
                dir.display()
            ),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "tor's data directory `{}` can be reached by group or others (mode {mode:03o}): `chmod 700` it (it holds Tor's keys and state)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Write a file of ours anew (mode 600), never through a link planted at its name.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
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
            wait_bootstrap: true,
        }
    }

    /// The `tor` program to run.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// Keep Tor's state in this directory (created mode 700; one already there must be a
    /// directory, not a symbolic link, that group and others cannot reach; kept after the
    /// handle is dropped: the next start bootstraps faster).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// One more torrc line (`ExitNodes {de}`, a test network's `DirAuthority` lines, ...).
    pub fn torrc_line(mut self, line: impl Into<String>) -> Self {
        self.torrc.push(line.into());
        self
    }

    /// Deadline for Tor to start and bootstrap (default 180 s; zero: none).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Whether [`start`](Self::start) waits for the bootstrap (default yes). Without it,
    /// `start` returns once the control port answers (an onion service can be added then;
    /// streams need the bootstrap).
    pub fn wait_for_bootstrap(mut self, wait: bool) -> Self {
        self.wait_bootstrap = wait;
        self
    }

    /// The program this launch runs.
    pub fn program(&self) -> &Path {
        &self.binary
    }

    /// Start Tor and wait until it has bootstrapped, logging its progress. An error carries a
    /// [`LaunchError`] naming the stage ([`launch_error`]); a missing program is
    /// `ErrorKind::NotFound`, saying what to install.
    pub async fn start(self) -> io::Result<LaunchedTor> {
        let timeout = self.timeout;
        let mut stage = LaunchStage::DataDirectory;
        let mut dir = None;
        if timeout.is_zero() {
            return self.run(&mut stage, &mut dir).await;
        }
        match tokio::time::timeout(timeout, self.run(&mut stage, &mut dir)).await {
            Ok(r) => r,
            Err(_) => Err(stalled(&stage, timeout, dir.as_deref())),
        }
    }

    /// [`start`](Self::start) without its deadline: `stage` says where it is (for a caller's
    /// own deadline), `dir` the data directory once known.
    pub(crate) async fn run(
        self,
        stage: &mut LaunchStage,
        dir_out: &mut Option<PathBuf>,
    ) -> io::Result<LaunchedTor> {
        *stage = LaunchStage::DataDirectory;
        let (dir, owned) = match &self.data_dir {
            Some(d) => (d.clone(), false),
            None => {
                let mut b = [0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                    .map_err(|_| failed(stage, io::Error::other("no random numbers")))?;
                let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
                (
                    std::env::temp_dir().join(format!("endpoints-tor-{name}")),
                    true,
                )
            }
        };
        private_dir(&dir, owned).map_err(|e| failed(stage, e))?;
        let guard = DirGuard(owned.then(|| dir.clone()));
        let port_file = dir.join("endpoints-control-port");
        let mut torrc = format!(
            "DataDirectory {d}\nControlPort auto\nControlPortWriteToFile {p}\nCookieAuthentication 1\nSocksPort auto\n__OwningControllerProcess {pid}\nLog notice file {d}/notice.log\n",
            d = dir.display(),
            p = port_file.display(),
            pid = std::process::id()
        );
        for l in &self.torrc {
            if l.contains(['\n', '\r']) {
                return Err(failed(
                    stage,
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a torrc line cannot contain a line break",
                    ),
                ));
            }
            torrc.push_str(l);
            torrc.push('\n');
        }
        let torrc_path = dir.join("endpoints-torrc");
        match std::fs::remove_file(&port_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
        .and_then(|()| write_private(&torrc_path, torrc.as_bytes()))
        .map_err(|e| {
            failed(
                stage,
                io::Error::new(
                    e.kind(),
                    format!("cannot write in `{}`: {e}", dir.display()),
                ),
            )
        })?;
        *dir_out = Some(dir.clone());

        *stage = LaunchStage::Start;
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
                let hint = if e.kind() == io::ErrorKind::NotFound {
                    "install Tor (Debian and Ubuntu: `apt install tor`; Fedora: `dnf install tor`; macOS: `brew install tor`), or name the program with `torBinary=`"
                } else {
                    "check `torBinary=`"
                };
                failed(
                    stage,
                    io::Error::new(
                        e.kind(),
                        format!("cannot run `{}`: {e}; {hint}", self.binary.display()),
                    ),
                )
            })?;
        let pid = child.id();
        let mut tor = LaunchedTor {
            child: std::sync::Mutex::new(Some(child)),
            pid,
            control: None,
            socks: None,
            dir,
            guard: Some(guard),
        };
        tracing::info!(pid, program = %self.binary.display(), data = %tor.dir.display(), "tor launched");

        *stage = LaunchStage::ControlPort;
        let port = tor
            .control_port(&port_file)
            .await
            .map_err(|e| failed(stage, e))?;
        *stage = LaunchStage::Authenticate;
        let ep = build_client(
            &format!("tcp:127.0.0.1:{port}")
                .parse()
                .map_err(|e| failed(stage, io::Error::other(format!("{e}"))))?,
        )
        .map_err(|e| failed(stage, io::Error::other(format!("{e} (link endpoints-tcp)"))))?;
        let control = Control::connect(ep.as_ref(), None)
            .await
            .map_err(|e| failed(stage, e))?;
        // Tor exits when this connection closes (txtorcon does the same).
        control
            .ok("TAKEOWNERSHIP", "TAKEOWNERSHIP")
            .await
            .map_err(|e| failed(stage, e))?;
        if self.wait_bootstrap {
            tor.bootstrap(&control, stage).await?;
            let r = control
                .ok("GETINFO net/listeners/socks", "GETINFO net/listeners/socks")
                .await
                .map_err(|e| failed(stage, e))?;
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
        }
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
    child: std::sync::Mutex<Option<tokio::process::Child>>,
    pid: Option<u32>,
    control: Option<(Control, u16)>,
    socks: Option<SocketAddr>,
    dir: PathBuf,
    guard: Option<DirGuard>,
}

impl LaunchedTor {
    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(status),
            _ => None,
        }
    }

    fn exited_error(&self, status: std::process::ExitStatus, when: &str) -> io::Error {
        let warnings = last_warnings(&self.dir.join("notice.log"));
        io::Error::other(format!(
            "the launched tor exited ({status}) {when}{}",
            if warnings.is_empty() {
                String::new()
            } else {
                format!(": {warnings}")
            }
        ))
    }

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
            if let Some(status) = self.exited() {
                return Err(self.exited_error(status, "before opening its control port"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Poll the bootstrap phase until 100%, logging each new phase; `stage` follows it.
    async fn bootstrap(&self, control: &Control, stage: &mut LaunchStage) -> io::Result<()> {
        *stage = LaunchStage::Bootstrap {
            progress: 0,
            summary: "starting".into(),
        };
        loop {
            let r = control
                .ok(
                    "GETINFO status/bootstrap-phase",
                    "GETINFO status/bootstrap-phase",
                )
                .await
                .map_err(|e| failed(stage, e))?;
            let phase = r
                .lines
                .iter()
                .find_map(|l| l.text.strip_prefix("status/bootstrap-phase="))
                .unwrap_or_default()
                .to_owned();
            let mut progress = 0u8;
            let mut summary = String::new();
            for (k, v) in pairs(&phase) {
                match k.as_str() {
                    "PROGRESS" => progress = v.parse::<u8>().unwrap_or(0).min(100),
                    "SUMMARY" => summary = v.chars().take(200).collect(),
                    _ => {}
                }
            }
            let now = LaunchStage::Bootstrap { progress, summary };
            if now != *stage {
                tracing::info!(pid = self.pid, progress, phase = %phase, "tor bootstrapping");
                *stage = now;
            }
            if progress >= 100 {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(failed(
                    stage,
                    self.exited_error(status, "while bootstrapping"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Tor's control port on 127.0.0.1 (for `onion:...:controlPort=`, `tor:...:control=`).
    pub fn control_port_number(&self) -> Option<u16> {
        self.control.as_ref().map(|(_, p)| *p)
    }

    /// The authenticated control connection (Tor exits when it closes).
    pub fn control(&self) -> Option<&Control> {
        self.control.as_ref().map(|(c, _)| c)
    }

    /// Tor's SOCKS port (for `tor:...:socksPort=`), once bootstrapped.
    pub fn socks_addr(&self) -> Option<SocketAddr> {
        self.socks
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the `tor` process.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the process still runs.
    pub fn is_running(&self) -> bool {
        self.exited().is_none()
            && self
                .child
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }

    /// Stop Tor now and wait for it: `SIGNAL HALT` (a clean exit), then, after 10 s, a kill.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some((control, _)) = self.control.take() {
            // Tor closes the connection as it exits: no answer is fine.
            let _ =
                tokio::time::timeout(Duration::from_secs(5), control.command("SIGNAL HALT")).await;
        }
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut child) = child {
            // A clean exit takes milliseconds; 10 s is a bound for a loaded machine.
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(r) => {
                    r?;
                }
                Err(_) => child.kill().await?,
            }
        }
        tracing::info!(pid = self.pid, "launched tor stopped");
        self.guard.take();
        Ok(())
    }
}

impl Drop for LaunchedTor {
    fn drop(&mut self) {
        self.control.take();
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let guard = self.guard.take();
        let Some(mut child) = child else { return };
        let _ = child.start_kill();
        tracing::info!(pid = self.pid, "launched tor stopped");
        // Reap it (and only then remove its directory) where a runtime runs; otherwise
        // tokio's orphan reaping does it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = child.wait().await;
                drop(guard);
            });
        }
    }
}
