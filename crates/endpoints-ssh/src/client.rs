//! The `ssh:` client endpoint: its description checked and built, and `connect`: a channel
//! on the shared session (a forward to a host and port, to a unix socket, or a command).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::params::{Args, Value};
use endpoints_core::registry::build_client;
use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Field, Operation, ParseError, async_trait,
    io_error,
};

use crate::params::CLIENT_PARAMS;
use crate::session::{Agent, Passphrase, SessionConfig, Shared, words};
use crate::stream::SshStream;
use crate::trust::Trust;

/// What a connection is on the server's side.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `direct-tcpip` to this host and port (`ssh -W host:port`).
    Tcp(String, u16),
    /// `direct-streamlocal@openssh.com` to this unix socket path on the server.
    Unix(String),
    /// This command's stdin and stdout (`exec`).
    Command(String),
}

/// Attached to every `ssh:` connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SshInfo {
    /// The SSH server, as known_hosts names it.
    pub server: String,
    /// What the connection reaches on the server's side.
    pub target: Target,
}

/// The `ssh:` client endpoint. Its connections share one SSH session.
pub struct SshClientEndpoint {
    config: SessionConfig,
    target: Target,
    shared: Arc<Shared>,
    canonical: Description,
}

impl fmt::Debug for SshClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshClientEndpoint")
            .field("description", &self.canonical.to_string())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SshClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

impl SshClientEndpoint {
    async fn open(&self) -> io::Result<Connection> {
        // A session found dead when its channel is refused for that reason is replaced once.
        let mut fresh = false;
        loop {
            let live = self.shared.get(&self.config, fresh).await?;
            let opened = self.open_channel(&live.handle).await;
            match opened {
                Ok(channel) => {
                    let command = match &self.target {
                        Target::Command(c) => Some(c.clone()),
                        _ => None,
                    };
                    let stream = SshStream::new(channel, command, live.in_use());
                    let delivery = stream.delivery();
                    let peer = match &self.target {
                        Target::Tcp(h, p) => h
                            .parse::<IpAddr>()
                            .map_or(Address::Unnamed, |ip| Address::Ip(SocketAddr::new(ip, *p))),
                        Target::Unix(p) => Address::Unix(PathBuf::from(p)),
                        Target::Command(_) => Address::Unnamed,
                    };
                    let mut conn = Connection::new(stream, Address::Unnamed, peer);
                    conn.extensions_mut().insert(SshInfo {
                        server: crate::trust::known_hosts_name(&self.config.host, self.config.port),
                        target: self.target.clone(),
                    });
                    conn.extensions_mut().insert(delivery);
                    if matches!(self.target, Target::Command(_)) {
                        conn.extensions_mut()
                            .insert(endpoints_core::EndsByItself::new(
                                "the remote command's exit",
                            ));
                    }
                    return Ok(conn);
                }
                Err(e)
                    if !fresh
                        && matches!(
                            e,
                            russh::Error::Disconnect
                                | russh::Error::SendError
                                | russh::Error::HUP
                                | russh::Error::KeepaliveTimeout
                        ) =>
                {
                    tracing::info!("ssh: the shared session ended ({e}); opening a new one");
                    fresh = true;
                }
                Err(e) => {
                    return Err(words(
                        e,
                        &match &self.target {
                            Target::Tcp(h, p) => {
                                format!("the SSH server did not open the forward to {h}:{p}")
                            }
                            Target::Unix(p) => format!(
                                "the SSH server did not open the forward to the unix socket `{p}`"
                            ),
                            Target::Command(_) => {
                                "the SSH server did not open a session channel".to_owned()
                            }
                        },
                    ));
                }
            }
        }
    }

    async fn open_channel(
        &self,
        handle: &russh::client::Handle<crate::session::Checker>,
    ) -> Result<russh::Channel<russh::client::Msg>, russh::Error> {
        match &self.target {
            Target::Tcp(h, p) => {
                handle
                    .channel_open_direct_tcpip(h.as_str(), u32::from(*p), "127.0.0.1", 0)
                    .await
            }
            Target::Unix(p) => handle.channel_open_direct_streamlocal(p.as_str()).await,
            Target::Command(c) => {
                let ch = handle.channel_open_session().await?;
                ch.exec(true, c.as_bytes()).await?;
                Ok(ch)
            }
        }
    }
}

#[async_trait]
impl ClientEndpoint for SshClientEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        let opened = match self.config.timeout {
            // The session has its own bound; this one covers a channel on an open session.
            Some(t) => tokio::time::timeout(t * 2, self.open())
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no SSH channel within {:.3}s (raise `timeout=`)",
                            (t * 2).as_secs_f64()
                        ),
                    ))
                }),
            None => self.open().await,
        };
        opened.map_err(|e| io_error(Operation::Connect, self, e))
    }
}

fn target(args: &Args<'_>) -> Result<Target, ParseError> {
    match (args.get("forward"), args.get("command")) {
        (Some(_), Some(c)) => Err(c.invalid("give one of `forward=` and `command=`, not both")),
        (None, None) => Err(args.description().error(
            endpoints_core::ErrorKind::MissingParameter,
            args.description().prefix_field().map_or(0..0, |f| f.span()),
            "`ssh:` needs what to connect to: `forward=HOST:PORT` (as `ssh -W`), `forward=/unix/socket`, or `command=...`",
        )),
        (None, Some(c)) if c.as_str().trim().is_empty() => Err(c.invalid("the command is empty")),
        (None, Some(c)) => Ok(Target::Command(c.as_str().to_owned())),
        (Some(f), None) => forward(&f),
    }
}

fn forward(v: &Value<'_>) -> Result<Target, ParseError> {
    let text = v.as_str();
    if text.starts_with('/') {
        return Ok(Target::Unix(text.to_owned()));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(v.invalid(
            "write `HOST:PORT` (escape the colon: `forward=db\\:5432`) or an absolute unix socket path",
        ));
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(v.invalid("the host before the port is empty"));
    }
    if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(v.invalid("the host has a space or a control character"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| v.invalid(format_args!("`{port}` is not a port (0 to 65535)")))?;
    if port == 0 {
        return Err(v.invalid("port 0 cannot be reached"));
    }
    Ok(Target::Tcp(host.to_owned(), port))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn optional_duration(args: &Args<'_>, name: &str) -> Result<Option<Duration>, ParseError> {
    Ok(Some(args.required(name)?.duration()?).filter(|d| !d.is_zero()))
}

/// Build an `ssh:` client from its description.
pub(crate) fn build(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, CLIENT_PARAMS)?;
    let host_v = args.required("host")?;
    let host = host_v
        .as_str()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(host_v.invalid("the host is empty"));
    }
    let port = args.required("port")?.port()?;
    let target = target(&args)?;
    let idle = args.required("idleTimeout")?.duration()?;
    let (config, canonical) = session_config(d, &args, host, port, idle)?;
    Ok(Box::new(SshClientEndpoint {
        config,
        target,
        shared: Arc::new(Shared::default()),
        canonical,
    }))
}

/// What both sides read: the user, keys, passphrase, agent, trust, the transport and the
/// bounds; the canonical description (no secret in it: passphrases are never inline).
pub(crate) fn session_config(
    d: &Description,
    args: &Args<'_>,
    host: String,
    port: u16,
    idle: Duration,
) -> Result<(SessionConfig, Description), ParseError> {
    let host_v = args.required("host")?;
    let user = match args.get("username") {
        Some(u) if u.as_str().is_empty() => return Err(u.invalid("the user name is empty")),
        Some(u) => u.as_str().to_owned(),
        None => std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| host_v.invalid("no user: $USER is not set; give `username=`"))?,
    };
    let (keys, keys_given) = match args.get("keys") {
        Some(v) => {
            let mut keys = Vec::new();
            for k in v.as_str().split(',') {
                if k.is_empty() {
                    return Err(v.invalid("an empty key file name in the list"));
                }
                let p = PathBuf::from(k);
                if !p.is_file() {
                    return Err(v.invalid(format_args!("`{k}` is not a readable file")));
                }
                keys.push(p);
            }
            (keys, true)
        }
        None => (
            home()
                .map(|h| {
                    ["id_ed25519", "id_ecdsa", "id_rsa"]
                        .iter()
                        .map(|n| h.join(".ssh").join(n))
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default(),
            false,
        ),
    };
    let passphrase = match (args.get("passphraseFile"), args.get("passphraseEnv")) {
        (Some(_), Some(e)) => {
            return Err(e.invalid("give one of `passphraseFile=` and `passphraseEnv=`, not both"));
        }
        (Some(f), None) => {
            let p = f.path()?;
            if !p.is_file() {
                return Err(f.invalid(format_args!("`{}` is not a readable file", p.display())));
            }
            Some(Passphrase::File(p))
        }
        (None, Some(e)) => {
            let name = e.as_str();
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(e.invalid("the name of an environment variable (not the passphrase)"));
            }
            Some(Passphrase::Env(name.to_owned()))
        }
        (None, None) => None,
    };
    let agent_v = args.required("agent")?;
    let agent = match agent_v.as_str() {
        a if ["yes", "true", "1"].contains(&a.to_ascii_lowercase().as_str()) => Agent::FromEnv,
        a if ["no", "false", "0"].contains(&a.to_ascii_lowercase().as_str()) => Agent::No,
        a if a.starts_with('/') => Agent::Path(PathBuf::from(a)),
        _ => return Err(agent_v.invalid("`yes`, `no`, or the agent socket's absolute path")),
    };
    let trust = match (args.get("fingerprint"), args.get("knownHosts")) {
        (Some(_), Some(k)) => {
            return Err(k.invalid("give one of `fingerprint=` and `knownHosts=`, not both"));
        }
        (Some(f), None) => {
            let t = f.as_str();
            // `SHA256\:...` (the colon escaped) or the 43 characters alone.
            let b64 = t.strip_prefix("SHA256:").unwrap_or(t);
            if b64.contains(':') {
                return Err(f.invalid("a SHA-256 fingerprint as `ssh-keygen -l` prints it, its colon escaped: `SHA256\\:` then 43 base64 characters"));
            }
            if b64.len() != 43
                || !b64
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
            {
                return Err(f.invalid("after `SHA256:`, 43 base64 characters (no `=` padding)"));
            }
            Trust::Fingerprint(format!("SHA256:{b64}"))
        }
        (None, Some(k)) => {
            let p = k.path()?;
            if p.is_dir() || std::fs::File::open(&p).is_err() {
                return Err(k.invalid(format_args!(
                    "`{}` is not a readable file (create it with the server's key: `ssh-keyscan -p {port} {host} >> {}`)",
                    p.display(),
                    p.display()
                )));
            }
            Trust::KnownHosts(p)
        }
        (None, None) => Trust::KnownHosts(
            home()
                .map(|h| h.join(".ssh").join("known_hosts"))
                .ok_or_else(|| {
                    host_v.invalid(
                        "no $HOME for ~/.ssh/known_hosts: give `knownHosts=` or `fingerprint=`",
                    )
                })?,
        ),
    };
    let timeout = optional_duration(args, "timeout")?;
    let keepalive = optional_duration(args, "keepalive")?;
    let keepalive_max = args.required("keepaliveMax")?.u32()?.max(1) as usize;
    let mut canonical = args.canonical();
    let transport = match args.get("endpoint") {
        Some(v) => {
            if let Some(b) = args.get("bindAddress") {
                return Err(b.invalid(
                    "`bindAddress` is for the default transport: give it inside `endpoint=`",
                ));
            }
            let inner = v.nested()?;
            let e = build_client(&inner)
                .map_err(|e| e.nested_in(d.input().cloned(), v.span(), v.param()))?;
            canonical.set("endpoint", e.to_string());
            e
        }
        None => {
            let mut h = Description::new("hostname")
                .with("host", host.as_str())
                .with("port", port.to_string());
            if let Some(v) = args.get("bindAddress") {
                h.push(Field::keyword("bindAddress", v.as_str()));
            }
            h.push(Field::keyword("timeout", "0"));
            build_client(&h).map_err(|e| {
                ParseError::new(
                    e.kind(),
                    host_v.span(),
                    format!("the transport `hostname:`: {}", e.message()),
                )
            })?
        }
    };
    Ok((
        SessionConfig {
            host,
            port,
            user,
            keys,
            keys_given,
            passphrase,
            agent,
            trust,
            transport,
            timeout,
            keepalive,
            keepalive_max,
            idle,
        },
        canonical,
    ))
}

endpoints_core::register_client! {
    prefix: "ssh",
    summary: "a forward (host:port or unix socket) or a command through an SSH server, over happy eyeballs or any client endpoint",
    params: CLIENT_PARAMS,
    transport: crate::params::CLIENT_TRANSPORT,
    build: build,
}
