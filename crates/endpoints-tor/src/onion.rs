//! The `onion:` server: a v3 onion service added through Tor's control port (`ADD_ONION`),
//! forwarding to a listener of ours.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Listener, Operation, ParseError,
    ServerEndpoint, async_trait, io_error,
};
use tokio::sync::broadcast::error::RecvError;

use crate::client::port_description;
use crate::control::Control;
use crate::launch::{Launch, LaunchStage, LaunchedTor};

/// Parameters of the `onion:` server (txtorcon's names where it has them).
pub static ONION_PARAMS: &[Param] = &[
    Param::required("port", ParamKind::Port)
        .at(0)
        .help("the onion service's port (what clients connect to at NAME.onion)"),
    Param::optional("controlPort", ParamKind::Text)
        .help("Tor's control port: a port on 127.0.0.1, a socket path (`/run/tor/control`), or a client description, escaped (without it a Tor of our own is launched, as txtorcon does; with `launch=0`, 9051)"),
    Param::optional("controlPasswordFile", ParamKind::Path)
        .help("the control port's password, read from this file (otherwise cookie authentication)"),
    Param::optional("privateKeyFile", ParamKind::Path)
        .help("keep the service key in this file (created mode 600; refused if group or others can read it): the address stays the same across restarts"),
    Param::optional("hiddenServiceDir", ParamKind::Path)
        .help("keep the key in this directory as Tor does (`hs_ed25519_secret_key`, and `hostname`), created mode 700"),
    Param::optional("version", ParamKind::Choice(&["3"]))
        .default("3")
        .help("onion service version (only v3 exists)"),
    Param::optional("clientAuth", ParamKind::List)
        .help("v3 client authorization: the clients' x25519 public keys (base32, 52 characters), comma-separated"),
    Param::optional("local", ParamKind::Choice(&["unix", "tcp"]))
        .default("unix")
        .help("where Tor hands us the streams: `unix` (a socket in a private directory) or `tcp` (127.0.0.1, a random port; use it when Tor runs as another user)"),
    Param::optional("localPort", ParamKind::Port)
        .help("the port on 127.0.0.1 Tor forwards to (txtorcon's name; implies `local=tcp`; default a random one)"),
    Param::optional("waitPublished", ParamKind::Bool)
        .default("1")
        .help("listen() returns once Tor has uploaded the descriptor (HS_DESC UPLOADED)"),
    Param::optional("timeout", ParamKind::Duration)
        .default("180")
        .help("deadline for reaching Tor (or launching it), adding the service and publishing its descriptor, in seconds (0: none)"),
    Param::optional("halfClose", ParamKind::Choice(&["tor", "inband"]))
        .default("tor")
        .help("`inband`: each side's end of data travels inside the stream (see `tor:`'s `halfClose=`); every client must be our `tor:` with `halfClose=inband`"),
    Param::optional("launch", ParamKind::Bool)
        .help("start a `tor` of our own for this listener (a private data directory, bootstrap progress in the log), stopped by `close()`; the default when `controlPort=` is not given, as in txtorcon"),
    Param::optional("torBinary", ParamKind::Path)
        .help("with a launched Tor: the `tor` program to run (txtorcon's `tor_binary`; default `tor` from PATH)"),
    Param::optional("dataDirectory", ParamKind::Path)
        .help("with a launched Tor: its data directory, kept (created mode 700; a symlink or a directory group or others can reach is refused; txtorcon's `data_directory`; default a new one, removed after)"),
];

/// The key of a v3 service, as ADD_ONION takes it (`ED25519-V3:` and the base64 of the
/// 64-byte expanded secret key).
#[derive(Clone, PartialEq, Eq)]
struct Key(String);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(***)")
    }
}

#[derive(Clone, Debug)]
enum KeyStore {
    Ephemeral,
    File(PathBuf),
    Dir(PathBuf),
}

const TOR_KEY_HEADER: &[u8; 32] = b"== ed25519v1-secret: type0 ==\0\0\0";

/// Where the Tor of an `onion:` server is.
#[derive(Debug)]
enum TorAt {
    /// A running Tor's control port.
    Control(Box<dyn ClientEndpoint>),
    /// A Tor launched by each `listen()`, stopped by the listener's `close()`.
    Launch(Launch),
}

/// An `onion:` server endpoint.
#[derive(Debug)]
pub struct OnionEndpoint {
    port: u16,
    tor: TorAt,
    password_file: Option<PathBuf>,
    keys: KeyStore,
    client_auth: Vec<String>,
    local_tcp: bool,
    local_port: u16,
    wait_published: bool,
    timeout: Option<Duration>,
    /// `halfClose=inband`: accepted streams are [`InBand`](crate::inband::InBand)-framed.
    inband: bool,
    canonical: Description,
}

impl fmt::Display for OnionEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

pub(crate) fn build(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    Ok(Box::new(OnionEndpoint::from_description(d)?))
}

impl OnionEndpoint {
    /// Build from an `onion:` description (the registry does this for `build_server`).
    pub fn from_description(d: &Description) -> Result<Self, ParseError> {
        build_onion(d)
    }

    /// [`ServerEndpoint::listen`], with the listener's own type.
    pub async fn listen_onion(&self) -> io::Result<OnionListener> {
        let mut stage = Stage::Local;
        let mut launch = (LaunchStage::DataDirectory, None);
        let result = match self.timeout {
            Some(t) => match tokio::time::timeout(t, self.start(&mut stage, &mut launch)).await {
                Ok(r) => r,
                Err(_) if matches!(stage, Stage::Launch) => {
                    Err(crate::launch::stalled(&launch.0, t, launch.1.as_deref()))
                }
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the onion service was not ready within {:.0}s: stalled at {}{} (raise `timeout=`)",
                        t.as_secs_f64(),
                        stage.words(),
                        match stage {
                            Stage::Publish =>
                                "; is Tor connected to the network (DisableNetwork, bootstrap)? `waitPublished=0` returns before publication",
                            _ => "",
                        }
                    ),
                )),
            },
            None => self.start(&mut stage, &mut launch).await,
        };
        result.map_err(|e| {
            // A launch's error names its own stage (and stays a typed `LaunchError`).
            let e = if crate::launch::launch_error(&e).is_some() {
                e
            } else {
                io::Error::new(e.kind(), format!("while {}: {e}", stage.words()))
            };
            io_error(Operation::Listen, self, e)
        })
    }
}

fn build_onion(d: &Description) -> Result<OnionEndpoint, ParseError> {
    let args = Args::parse(d, ONION_PARAMS)?;
    let port = args.required("port")?.port()?;
    if port == 0 {
        return Err(args
            .required("port")?
            .invalid("an onion service port is 1 to 65535"));
    }
    args.required("version")?.choice(&["3"])?;
    let mut canonical = args.canonical();
    // txtorcon's `onion:` launches a Tor when no `controlPort=` is given.
    let launch = match args.get("launch") {
        Some(v) => v.flag()?,
        None => !args.is_given("controlPort"),
    };
    let tor = if launch {
        if let Some(cv) = args.get("controlPort") {
            return Err(
                cv.invalid("`controlPort=` names a running Tor: give it or `launch=1`, not both")
            );
        }
        if let Some(v) = args.get("controlPasswordFile") {
            return Err(v.invalid("`controlPasswordFile=` goes with `controlPort=`"));
        }
        canonical.set("launch", "1");
        let mut l = Launch::new().wait_for_bootstrap(args.required("waitPublished")?.flag()?);
        if let Some(b) = args.get("torBinary") {
            l = l.binary(b.path()?);
        }
        if let Some(dir) = args.get("dataDirectory") {
            l = l.data_dir(dir.path()?);
        }
        TorAt::Launch(l)
    } else {
        for other in ["torBinary", "dataDirectory"] {
            if let Some(v) = args.get(other) {
                return Err(v.invalid(format_args!(
                    "`{other}=` goes with a launched Tor (`launch=1`, or no `controlPort=`)"
                )));
            }
        }
        let desc = match args.get("controlPort") {
            Some(cv) => {
                let desc = port_description(&cv)?;
                build_client(&desc)
                    .map_err(|e| e.nested_in(d.input().cloned(), cv.span(), cv.param()))?
            }
            None => build_client(&"tcp:127.0.0.1:9051".parse().map_err(|_| {
                args.required("port")
                    .map(|v| v.invalid("cannot build the default control port"))
                    .unwrap_or_else(|e| e)
            })?)
            .map_err(|e| e.nested_in(d.input().cloned(), 0..0, "controlPort"))?,
        };
        canonical.set("controlPort", desc.to_string());
        TorAt::Control(desc)
    };
    let keys = match (args.get("privateKeyFile"), args.get("hiddenServiceDir")) {
        (Some(_), Some(b)) => {
            return Err(b.invalid("give `privateKeyFile=` or `hiddenServiceDir=`, not both"));
        }
        (Some(f), None) => KeyStore::File(f.path()?),
        (None, Some(dir)) => KeyStore::Dir(dir.path()?),
        (None, None) => KeyStore::Ephemeral,
    };
    let mut client_auth = Vec::new();
    if let Some(v) = args.get("clientAuth") {
        for k in v.as_str().split(',').filter(|k| !k.is_empty()) {
            let k = k.trim().trim_start_matches("descriptor:x25519:");
            if k.len() != 52
                || !k
                    .bytes()
                    .all(|b| matches!(b.to_ascii_uppercase(), b'A'..=b'Z' | b'2'..=b'7'))
            {
                return Err(v.invalid(format_args!(
                    "`{}` is not an x25519 public key in base32 (52 characters of A-Z, 2-7)",
                    k.escape_default()
                )));
            }
            client_auth.push(k.to_ascii_uppercase());
        }
    }
    let local = args.required("local")?;
    let mut local_tcp = local.choice(&["unix", "tcp"])? == "tcp";
    let local_port = match args.get("localPort") {
        // txtorcon's `localPort=` alone means a TCP listener on that port.
        Some(v) if !local_tcp && args.is_given("local") => {
            return Err(v.invalid("`localPort=` is a TCP port: it goes with `local=tcp`"));
        }
        Some(v) => {
            local_tcp = true;
            canonical.set("local", "tcp");
            v.port()?
        }
        None => 0,
    };
    // In the declared order, so that the canonical form reads back the same.
    let mut ordered = Description::new("onion");
    for p in ONION_PARAMS {
        if let Some(v) = canonical.get(p.name) {
            ordered.push(endpoints_core::Field::keyword(p.name, v));
        }
    }
    let canonical = ordered;
    Ok(OnionEndpoint {
        port,
        tor,
        password_file: args
            .get("controlPasswordFile")
            .map(|v| v.path())
            .transpose()?,
        keys,
        client_auth,
        local_tcp,
        local_port,
        wait_published: args.required("waitPublished")?.flag()?,
        timeout: Some(args.required("timeout")?.duration()?).filter(|t| !t.is_zero()),
        inband: args.required("halfClose")?.choice(&["tor", "inband"])? == "inband",
        canonical,
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn expanded_key(key: &Key) -> Option<Vec<u8>> {
    let raw = b64_decode(key.0.strip_prefix("ED25519-V3:")?)?;
    (raw.len() == 64).then_some(raw)
}

/// A key file must be ours alone: a regular file (not a symlink) that group and others cannot
/// read or write.
fn check_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the onion service key `{}` is not a regular file (a symlink is refused)",
                path.display()
            ),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the onion service key `{}` can be read or written by group or others (mode {mode:03o}): `chmod 600` it (anyone who reads it can be this onion service)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Write `bytes` to a new file `path`, mode 600, never through a symlink or over a file.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn bad_key(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the onion service key `{}` {why}", path.display()),
    )
}

impl KeyStore {
    /// The stored key, if there is one.
    fn load(&self) -> io::Result<Option<Key>> {
        let path = match self {
            Self::Ephemeral => return Ok(None),
            Self::File(p) => p.clone(),
            Self::Dir(d) => d.join("hs_ed25519_secret_key"),
        };
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        check_private(&path)?;
        let mut bytes = Vec::new();
        {
            use std::io::Read;
            std::fs::File::open(&path)?
                .take(4096)
                .read_to_end(&mut bytes)?;
        }
        // A file as Tor writes it (`hs_ed25519_secret_key`) works in `privateKeyFile=` too,
        // as in txtorcon.
        let key = match self {
            _ if bytes.starts_with(TOR_KEY_HEADER) || matches!(self, Self::Dir(_)) => {
                let raw = bytes
                    .strip_prefix(&TOR_KEY_HEADER[..])
                    .filter(|k| k.len() == 64)
                    .ok_or_else(|| {
                        bad_key(&path, "is not a Tor v3 secret key (header and 64 bytes)")
                    })?;
                Key(format!("ED25519-V3:{}", b64_encode(raw)))
            }
            _ => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| bad_key(&path, "is not text (`ED25519-V3:` and base64)"))?;
                let key = Key(text.trim().to_owned());
                if expanded_key(&key).is_none() {
                    return Err(bad_key(
                        &path,
                        "is not `ED25519-V3:` and the base64 of a 64-byte key",
                    ));
                }
                key
            }
        };
        Ok(Some(key))
    }

    /// Keep the key Tor made for a new service.
    fn store(&self, key: &Key, service_id: &str) -> io::Result<()> {
        match self {
            Self::Ephemeral => Ok(()),
            Self::File(p) => write_new(p, format!("{}\n", key.0).as_bytes()),
            Self::Dir(d) => {
                use std::os::unix::fs::DirBuilderExt;
                match std::fs::DirBuilder::new().mode(0o700).create(d) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                let raw = expanded_key(key)
                    .ok_or_else(|| bad_key(d, "from Tor is not an ED25519-V3 key"))?;
                let mut bytes = TOR_KEY_HEADER.to_vec();
                bytes.extend(raw);
                write_new(&d.join("hs_ed25519_secret_key"), &bytes)?;
                let hostname = d.join("hostname");
                let _ = std::fs::remove_file(&hostname);
                write_new(&hostname, format!("{service_id}.onion\n").as_bytes())
            }
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Self::Ephemeral => None,
            Self::File(p) | Self::Dir(p) => Some(p),
        }
    }
}

fn random_hex(n: usize) -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = vec![0u8; n];
    let _ = SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A private directory (mode 700) for the local socket, removed when dropped.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("endpoints-onion-{}", random_hex(8)));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where it stalled, for the error of a listen() that did not finish.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Local,
    Launch,
    Control,
    Add,
    Publish,
}

impl Stage {
    fn words(self) -> &'static str {
        match self {
            Self::Local => "opening the local listener",
            Self::Launch => "launching tor",
            Self::Control => "reaching and authenticating to the control port",
            Self::Add => "adding the onion service (ADD_ONION)",
            Self::Publish => "publishing the descriptor (waiting for HS_DESC UPLOADED)",
        }
    }
}

impl OnionEndpoint {
    async fn start(
        &self,
        stage: &mut Stage,
        launch: &mut (LaunchStage, Option<PathBuf>),
    ) -> io::Result<OnionListener> {
        *stage = Stage::Local;
        let (dir, local_desc) = if self.local_tcp {
            (None, format!("tcp:{}:interface=127.0.0.1", self.local_port))
        } else {
            let dir = PrivateDir::new()?;
            let path = dir.0.join("s");
            let d = format!(
                "unix:{}:mode=600",
                endpoints_core::escape(&path.to_string_lossy())
            );
            (Some(dir), d)
        };
        let d: Description = local_desc
            .parse()
            .map_err(|e| io::Error::other(format!("{e}")))?;
        let inner = build_server(&d)
            .map_err(|e| io::Error::other(format!("{e}")))?
            .listen()
            .await?;
        let target = match inner.local_addr()? {
            Address::Ip(a) => a.to_string(),
            Address::Unix(p) => {
                let p = p.to_string_lossy().into_owned();
                if p.contains([' ', ',', '"', '\\']) {
                    return Err(io::Error::other(format!(
                        "the local socket path `{p}` has a character Tor's ADD_ONION cannot carry; use `local=tcp`"
                    )));
                }
                format!("unix:{p}")
            }
            other => {
                return Err(io::Error::other(format!(
                    "the local listener has no address Tor can reach ({other})"
                )));
            }
        };

        let (control, tor) = match &self.tor {
            TorAt::Control(ep) => {
                *stage = Stage::Control;
                let c = Control::connect(ep.as_ref(), self.password_file.as_deref()).await?;
                (c, None)
            }
            TorAt::Launch(l) => {
                *stage = Stage::Launch;
                let tor = l.clone().run(&mut launch.0, &mut launch.1).await?;
                *stage = Stage::Control;
                let port = tor.control_port_number().unwrap_or_default();
                let ep = build_client(
                    &format!("tcp:127.0.0.1:{port}")
                        .parse()
                        .map_err(|e| io::Error::other(format!("{e}")))?,
                )
                .map_err(|e| io::Error::other(format!("{e}")))?;
                (Control::connect(ep.as_ref(), None).await?, Some(tor))
            }
        };
        let mut events = control.events();
        if self.wait_published {
            control.ok("SETEVENTS HS_DESC", "SETEVENTS HS_DESC").await?;
        }

        *stage = Stage::Add;
        let stored = self.keys.load()?;
        let key_spec = match &stored {
            Some(k) => k.0.clone(),
            None => "NEW:ED25519-V3".to_owned(),
        };
        let mut line = format!("ADD_ONION {key_spec}");
        let mut flags = Vec::new();
        if stored.is_some() || matches!(self.keys, KeyStore::Ephemeral) {
            flags.push("DiscardPK");
        }
        if !self.client_auth.is_empty() {
            // Tor answers `512 No auth type specified` to ClientAuthV3 without it.
            flags.push("V3Auth");
        }
        if !flags.is_empty() {
            line.push_str(&format!(" Flags={}", flags.join(",")));
        }
        line.push_str(&format!(" Port={},{}", self.port, target));
        for k in &self.client_auth {
            line.push_str(&format!(" ClientAuthV3={k}"));
        }
        let reply = control.ok(&line, "ADD_ONION").await?;
        let service_id = reply.value("ServiceID").filter(|id| {
            id.len() == 56 && id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'))
        });
        let Some(service_id) = service_id else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "Tor's ADD_ONION answer has no v3 ServiceID: {}",
                    reply.summary()
                ),
            ));
        };
        let listener = OnionListener {
            inner: Some(inner),
            control,
            service_id: service_id.clone(),
            port: self.port,
            dir,
            tor,
            inband: self.inband,
        };
        if stored.is_none()
            && let (Some(k), Some(path)) = (reply.value("PrivateKey"), self.keys.path())
        {
            self.keys.store(&Key(k), &service_id).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot keep the onion service key in `{}`: {e}",
                        path.display()
                    ),
                )
            })?;
        }

        *stage = Stage::Publish;
        if self.wait_published {
            let mut failures = Vec::new();
            loop {
                match events.recv().await {
                    Ok(ev) => {
                        let text = &ev.lines.last().map(|l| l.text.clone()).unwrap_or_default();
                        let words: Vec<&str> = text.split(' ').collect();
                        if words.first() != Some(&"HS_DESC") || words.get(2) != Some(&&*service_id)
                        {
                            continue;
                        }
                        match words.get(1) {
                            Some(&"UPLOADED") => break,
                            Some(&"FAILED") => {
                                let reason = words
                                    .iter()
                                    .find_map(|w| w.strip_prefix("REASON="))
                                    .unwrap_or("no reason given");
                                failures.push(reason.to_owned());
                                tracing::info!(service = %service_id, reason, "a descriptor upload failed; waiting for another");
                            }
                            _ => {}
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => {
                        return Err(listener.control.lost_error());
                    }
                }
            }
        }
        tracing::info!(address = %listener.onion_address(), "onion service published");
        Ok(listener)
    }
}

#[async_trait]
impl ServerEndpoint for OnionEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        Ok(Box::new(self.listen_onion().await?))
    }
}

/// Attached to every connection an `onion:` listener accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnionInfo {
    /// `NAME.onion:PORT`.
    pub address: String,
}

/// The listener of an `onion:` server.
pub struct OnionListener {
    inner: Option<Box<dyn Listener>>,
    control: Control,
    service_id: String,
    port: u16,
    dir: Option<PrivateDir>,
    /// The Tor launched for this listener, stopped by `close()` (or when dropped).
    tor: Option<LaunchedTor>,
    /// `halfClose=inband`.
    inband: bool,
}

impl fmt::Debug for OnionListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnionListener")
            .field("address", &self.onion_address())
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OnionListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "onion:{}", self.onion_address())
    }
}

impl Control {
    fn lost_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!(
                "the control connection to Tor `{}` is lost: {}",
                self.name(),
                self.closed_reason().unwrap_or_else(|| "closed".into())
            ),
        )
    }
}

impl OnionListener {
    /// `NAME.onion:PORT`.
    pub fn onion_address(&self) -> String {
        format!("{}.onion:{}", self.service_id, self.port)
    }

    /// The service id (the address without `.onion`).
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The local listener's address (where Tor hands us the streams).
    pub fn forward_addr(&self) -> io::Result<Address> {
        match &self.inner {
            Some(l) => l.local_addr(),
            None => Err(io::Error::other("closed")),
        }
    }
}

#[async_trait]
impl Listener for OnionListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        let address = self.onion_address();
        let Some(inner) = self.inner.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the onion listener is closed",
            ));
        };
        tokio::select! {
            c = inner.accept() => {
                let mut c = c?;
                if self.inband {
                    c = crate::inband::wrap(c).await?;
                }
                c.extensions_mut().insert(OnionInfo { address });
                Ok(c)
            }
            why = self.control.closed() => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!(
                    "the control connection to Tor `{}` is lost ({why}): the onion service {address} is gone; listen again once Tor is back",
                    self.control.name()
                ),
            )),
        }
    }

    /// `NAME.onion:PORT` ([`Address::Name`]); the local listener Tor forwards to is
    /// [`OnionListener::forward_addr`].
    fn local_addr(&self) -> io::Result<Address> {
        Ok(Address::Name {
            host: format!("{}.onion", self.service_id),
            port: self.port,
        })
    }

    async fn close(mut self: Box<Self>) -> io::Result<()> {
        // Bounded: a Tor that stopped answering cannot hold close() (it answers in under a
        // millisecond, measured). A control connection already lost took the service with it.
        let del = if self.control.closed_reason().is_some() {
            Ok(())
        } else {
            match tokio::time::timeout(
                Duration::from_secs(30),
                self.control
                    .ok(&format!("DEL_ONION {}", self.service_id), "DEL_ONION"),
            )
            .await
            {
                Ok(r) => r.map(|_| ()),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Tor did not answer DEL_ONION within 30s",
                )),
            }
        };
        if let Some(inner) = self.inner.take() {
            inner.close().await?;
        }
        self.dir.take();
        if let Some(tor) = self.tor.take() {
            tor.stop().await?;
        }
        del.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("onion:{}: removing the service: {e}", self.onion_address()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for n in 0..70 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64_decode(&b64_encode(&data)).as_deref(), Some(&data[..]));
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
    }
}
