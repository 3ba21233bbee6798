//! One SSH session per endpoint, shared by its connections: opened on first use (transport,
//! handshake, the server's key checked, authentication), kept while channels use it, closed
//! after `idleTimeout` without any, replaced when found dead (keepalives unanswered).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints_core::ClientEndpoint;
use russh::client::{self, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{MethodKind, MethodSet};
use tokio::sync::watch;

use crate::trust::{self, Trust};

/// Where the passphrase of encrypted keys comes from.
#[derive(Clone, Debug)]
pub(crate) enum Passphrase {
    /// A file's content (one trailing newline removed).
    File(PathBuf),
    /// An environment variable, read when a key is loaded.
    Env(String),
}

/// ssh-agent.
#[derive(Clone, Debug)]
pub(crate) enum Agent {
    /// No agent.
    No,
    /// The socket in `SSH_AUTH_SOCK` when the session opens, if set.
    FromEnv,
    /// This socket.
    Path(PathBuf),
}

/// Everything a session needs, from the description.
pub(crate) struct SessionConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) keys: Vec<PathBuf>,
    pub(crate) keys_given: bool,
    pub(crate) passphrase: Option<Passphrase>,
    pub(crate) agent: Agent,
    pub(crate) trust: Trust,
    pub(crate) transport: Box<dyn ClientEndpoint>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) keepalive_max: usize,
    pub(crate) idle: Duration,
}

/// Counts a session's live connections: each holds one; the last one dropped starts the
/// idle clock.
#[derive(Debug)]
pub(crate) struct InUse {
    count: watch::Sender<usize>,
    /// Keeps the session's handle alive while a channel is open.
    _session: Arc<Live>,
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// An open session.
pub(crate) struct Live {
    pub(crate) handle: Handle<Checker>,
    count: watch::Sender<usize>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    pub(crate) fn new(handle: Handle<Checker>) -> Arc<Self> {
        let (count, _) = watch::channel(0usize);
        Arc::new(Self { handle, count })
    }

    /// How many connections use the session (channels open, or in their close handshake).
    pub(crate) fn users(&self) -> usize {
        *self.count.borrow()
    }

    pub(crate) fn in_use(self: &Arc<Self>) -> Arc<InUse> {
        self.count.send_modify(|n| *n += 1);
        Arc::new(InUse {
            count: self.count.clone(),
            _session: self.clone(),
        })
    }
}

/// The shared slot: the session of one endpoint.
#[derive(Default)]
pub(crate) struct Shared {
    live: tokio::sync::Mutex<Option<Arc<Live>>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The open session, or a new one. A session whose connection ended is replaced.
    pub(crate) async fn get(
        self: &Arc<Self>,
        config: &SessionConfig,
        fresh: bool,
    ) -> io::Result<Arc<Live>> {
        let mut slot = self.live.lock().await;
        if let Some(live) = slot.as_ref()
            && !live.handle.is_closed()
            && !fresh
        {
            return Ok(live.clone());
        }
        *slot = None;
        let handle = open(config, None).await?;
        let (count, mut watching) = watch::channel(0usize);
        let live = Arc::new(Live { handle, count });
        *slot = Some(live.clone());
        // The idle clock: once no connection uses the session for `idle`, close it. The task
        // holds only a weak reference, so a session no one holds ends with its last user.
        let weak = Arc::downgrade(&live);
        let shared = Arc::downgrade(self);
        let idle = config.idle;
        tokio::spawn(async move {
            loop {
                if watching.wait_for(|n| *n == 0).await.is_err() {
                    return;
                }
                let busy = tokio::time::timeout(idle, watching.wait_for(|n| *n > 0)).await;
                match busy {
                    Ok(Ok(_)) => continue,
                    Ok(Err(_)) => return,
                    Err(_) => break,
                }
            }
            let (Some(live), Some(shared)) = (weak.upgrade(), shared.upgrade()) else {
                return;
            };
            let mut slot = shared.live.lock().await;
            if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, &live)) && *live.count.borrow() == 0 {
                *slot = None;
                drop(slot);
                tracing::debug!("ssh: closing the idle session");
                let _ = live
                    .handle
                    .disconnect(russh::Disconnect::ByApplication, "idle", "en")
                    .await;
            }
        });
        Ok(live)
    }
}

/// A channel the server opened for a forward it listens for (`ssh -R`), with the
/// originator's address.
pub(crate) type Forwarded = (russh::Channel<client::Msg>, endpoints_core::Address);

/// The client's handler: checks the server's key, keeps the refusal's words, and hands on
/// the channels of remote forwards (a listen-through session; refused otherwise).
pub(crate) struct Checker {
    host: String,
    port: u16,
    trust: Trust,
    refusal: Arc<Mutex<Option<String>>>,
    forwarded: Option<tokio::sync::mpsc::Sender<Forwarded>>,
}

impl Checker {
    async fn hand_on(
        &self,
        channel: russh::Channel<client::Msg>,
        peer: endpoints_core::Address,
        reply: client::ChannelOpenHandle,
    ) {
        let Some(tx) = &self.forwarded else {
            // A client session asked for no forward: refuse (dropping `reply` rejects).
            return;
        };
        // Bounded: when the application does not accept, the server's channels wait here
        // (the session's reading waits too, as a full accept queue does).
        if let Ok(permit) = tx.reserve().await {
            reply.accept().await;
            permit.send((channel, peer));
        }
    }
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match trust::check(&self.trust, &self.host, self.port, key) {
            Ok(()) => Ok(true),
            Err(words) => {
                if let Ok(mut r) = self.refusal.lock() {
                    *r = Some(words);
                }
                Ok(false)
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        _connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let peer = match (
            originator_address.parse::<std::net::IpAddr>(),
            u16::try_from(originator_port),
        ) {
            (Ok(ip), Ok(port)) => endpoints_core::Address::Ip(std::net::SocketAddr::new(ip, port)),
            _ => endpoints_core::Address::Unnamed,
        };
        self.hand_on(channel, peer, reply).await;
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.hand_on(channel, endpoints_core::Address::Unnamed, reply)
            .await;
        Ok(())
    }
}

async fn bounded<T>(
    timeout: Option<Duration>,
    what: &'static str,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    {
        match timeout {
            None => f.await,
            Some(t) => tokio::time::timeout(t, f).await.unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no {what} within {:.3}s (raise `timeout=`)",
                        t.as_secs_f64()
                    ),
                ))
            }),
        }
    }
}

/// Open a session: the transport, the handshake with the key checked, authentication.
pub(crate) async fn open(
    config: &SessionConfig,
    forwarded: Option<tokio::sync::mpsc::Sender<Forwarded>>,
) -> io::Result<Handle<Checker>> {
    bounded(
        config.timeout,
        "SSH session (transport, handshake and authentication)",
        async {
            let stream = config.transport.connect().await?;
            let mut c = client::Config {
                keepalive_interval: config.keepalive,
                keepalive_max: config.keepalive_max,
                // Read only by russh's own `connect`, not by `connect_stream`: the session's
                // socket keeps Nagle's algorithm, as OpenSSH's non-interactive client does.
                // TCP_NODELAY on it was measured (docs/benchmarks.md): 1.08× the throughput,
                // but a stall of about 40 ms on every new forward (0.7× OpenSSH's rate).
                nodelay: true,
                ..Default::default()
            };
            // One window is what a channel has in flight towards us: 2 MiB, as OpenSSH. The
            // largest data packet the server may send us: 64 KiB (less one byte, russh's
            // ceiling), twice OpenSSH's 32 KiB: half the packets for the same bytes, so half
            // the per-packet work (a turn of the session's loop, a hand-over to the channel's
            // reader); the measured context switches per GiB fell by a fifth. The server's
            // own maximum still bounds what we send (32 KiB for OpenSSH's forwards).
            c.window_size = 2 * 1024 * 1024;
            // Host key algorithms: known_hosts' types first, host certificates when a
            // `@cert-authority` line names the host, never `ssh-rsa` (SHA-1).
            c.preferred = trust::preferred(&config.trust, &config.host, config.port);
            c.maximum_packet_size = 65535;
            c.preferred.cipher = std::borrow::Cow::Borrowed(cipher_order());
            let refusal = Arc::new(Mutex::new(None));
            let checker = Checker {
                host: config.host.clone(),
                port: config.port,
                trust: config.trust.clone(),
                refusal: refusal.clone(),
                forwarded,
            };
            let mut handle = match client::connect_stream(Arc::new(c), stream, checker).await {
                Ok(h) => h,
                Err(e) => {
                    if let Some(words) = refusal.lock().ok().and_then(|mut r| r.take()) {
                        return Err(io::Error::new(io::ErrorKind::PermissionDenied, words));
                    }
                    return Err(words(e, "the SSH handshake failed"));
                }
            };
            authenticate(&mut handle, config).await?;
            Ok(handle)
        },
    )
    .await
}

/// The ciphers offered, first choice first. With the CPU's AES instructions (AES-NI and
/// carry-less multiply on x86-64, the AES and PMULL extensions on AArch64) AES-256-GCM comes
/// first: ring runs it several times faster than chacha20-poly1305, on this side and on the
/// server's (OpenSSH's libcrypto), and it is as safe (an AEAD, 256-bit key, in OpenSSH's own
/// list). Without them chacha20-poly1305 comes first, as in russh's and OpenSSH's defaults.
/// The AES-CTR ciphers (with an HMAC) follow for servers that offer nothing else.
fn cipher_order() -> &'static [russh::cipher::Name] {
    use russh::cipher::{AES_128_CTR, AES_192_CTR, AES_256_CTR, AES_256_GCM, CHACHA20_POLY1305};
    const AES_FIRST: &[russh::cipher::Name] = &[
        AES_256_GCM,
        CHACHA20_POLY1305,
        AES_256_CTR,
        AES_192_CTR,
        AES_128_CTR,
    ];
    const CHACHA_FIRST: &[russh::cipher::Name] = &[
        CHACHA20_POLY1305,
        AES_256_GCM,
        AES_256_CTR,
        AES_192_CTR,
        AES_128_CTR,
    ];
    if aes_in_hardware() {
        AES_FIRST
    } else {
        CHACHA_FIRST
    }
}

/// Whether the CPU has AES and carry-less multiply instructions (what makes AES-GCM fast and
/// constant-time).
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// russh's error in words, under `what`.
pub(crate) fn words(e: russh::Error, what: &str) -> io::Error {
    let kind = match &e {
        russh::Error::IO(io) => io.kind(),
        russh::Error::ChannelOpenFailure(_) => io::ErrorKind::ConnectionRefused,
        russh::Error::Disconnect | russh::Error::SendError | russh::Error::HUP => {
            io::ErrorKind::ConnectionAborted
        }
        russh::Error::ConnectionTimeout | russh::Error::KeepaliveTimeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{what}: {e}"))
}

fn methods(set: &MethodSet) -> String {
    let names: Vec<&str> = set.iter().map(<&str>::from).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Agent keys, then key files, as OpenSSH tries them; nothing prompts. The error names what
/// was tried and what the server offers.
async fn authenticate(handle: &mut Handle<Checker>, config: &SessionConfig) -> io::Result<()> {
    let user = config.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let mut offered: Option<MethodSet> = None;
    let note = |r: russh::client::AuthResult, offered: &mut Option<MethodSet>| match r {
        russh::client::AuthResult::Success => true,
        russh::client::AuthResult::Failure {
            remaining_methods, ..
        } => {
            *offered = Some(remaining_methods);
            false
        }
    };
    let agent_path = match &config.agent {
        Agent::No => None,
        Agent::FromEnv => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
        Agent::Path(p) => Some(p.clone()),
    };
    if let Some(path) = agent_path {
        match AgentClient::connect_uds(&path).await {
            Err(e) => tried.push(format!(
                "the agent at `{}` (cannot reach it: {e})",
                path.display()
            )),
            Ok(mut agent) => {
                let ids = agent.request_identities().await.map_err(|e| {
                    io::Error::other(format!(
                        "the agent at `{}` did not list its keys: {e}",
                        path.display()
                    ))
                })?;
                if ids.is_empty() {
                    tried.push(format!(
                        "the agent at `{}` (it holds no keys)",
                        path.display()
                    ));
                }
                for id in ids {
                    let key = id.public_key().into_owned();
                    let fp = key.fingerprint(HashAlg::Sha256);
                    let hash = match rsa_hash(handle, &key).await {
                        Ok(h) => h,
                        Err(why) => {
                            tried.push(format!("the agent's key {fp} ({why})"));
                            continue;
                        }
                    };
                    match handle
                        .authenticate_publickey_with(user, key, hash, &mut agent)
                        .await
                    {
                        Ok(r) => {
                            if note(r, &mut offered) {
                                return Ok(());
                            }
                            tried.push(format!("the agent's key {fp} (refused)"));
                        }
                        Err(e) => tried.push(format!(
                            "the agent's key {fp} (the agent did not sign: {e})"
                        )),
                    }
                }
            }
        }
    }
    for path in &config.keys {
        let key = match load_key(path, config.passphrase.as_ref()) {
            Ok(Some(k)) => k,
            Ok(None) => continue,
            Err(why) => {
                tried.push(format!("the key file `{}` ({why})", path.display()));
                continue;
            }
        };
        let fp = key.public_key().fingerprint(HashAlg::Sha256);
        let hash = match rsa_hash(handle, key.public_key()).await {
            Ok(h) => h,
            Err(why) => {
                tried.push(format!("the key file `{}` ({fp}, {why})", path.display()));
                continue;
            }
        };
        let r = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(|e| words(e, "authentication failed"))?;
        if note(r, &mut offered) {
            return Ok(());
        }
        tried.push(format!("the key file `{}` ({fp}, refused)", path.display()));
    }
    if offered.is_none() {
        // Nothing was offered to the server: ask it which methods it takes.
        if let Ok(r) = handle.authenticate_none(user).await
            && note(r, &mut offered)
        {
            return Ok(());
        }
    }
    let offered = offered
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), methods);
    let tried = if tried.is_empty() {
        if config.keys_given {
            "nothing".to_owned()
        } else {
            "nothing (no agent, no ~/.ssh/id_ed25519, id_ecdsa or id_rsa; give `keys=`)".to_owned()
        }
    } else {
        tried.join("; ")
    };
    let password_hint = if offered.contains(<&str>::from(&MethodKind::Password)) {
        " (passwords are not supported: nothing prompts)"
    } else {
        ""
    };
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "the SSH server refused `{user}`: tried {tried}; the server offers: {offered}{password_hint}"
        ),
    ))
}

/// The signature hash for an RSA key (`None` for other keys): SHA-512 or SHA-256 as the
/// server's `server-sig-algs` lists them, SHA-256 (RFC 8332) when it lists none; never SHA-1
/// (`ssh-rsa`, refused by OpenSSH since 8.8): a server taking only that is an `Err` in words.
async fn rsa_hash(
    handle: &Handle<Checker>,
    key: &russh::keys::PublicKey,
) -> Result<Option<HashAlg>, String> {
    if !key.algorithm().is_rsa() {
        return Ok(None);
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(Some(hash))) => Ok(Some(hash)),
        Ok(Some(None)) => Err(
            "not offered: the server takes RSA signatures only with SHA-1 (`ssh-rsa`), which this client never makes; use an ed25519 or ECDSA key, or have the server accept rsa-sha2-256".to_owned(),
        ),
        Ok(None) | Err(_) => Ok(Some(HashAlg::Sha256)),
    }
}

/// A key file: `Ok(None)` when a default key file does not exist.
fn load_key(path: &PathBuf, passphrase: Option<&Passphrase>) -> Result<Option<PrivateKey>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err("no such file".to_owned()),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let secret = match passphrase {
        None => None,
        Some(Passphrase::File(f)) => {
            let t = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read the passphrase file `{}`: {e}", f.display()))?;
            let t = t.strip_suffix('\n').unwrap_or(&t);
            Some(t.strip_suffix('\r').unwrap_or(t).to_owned())
        }
        Some(Passphrase::Env(name)) => Some(std::env::var(name).map_err(|_| {
            format!("the passphrase variable `{name}` (passphraseEnv=) is not set")
        })?),
    };
    match russh::keys::decode_secret_key(&text, secret.as_deref()) {
        Ok(k) => Ok(Some(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(
            "it is encrypted: give its passphrase with `passphraseFile=` or `passphraseEnv=`, or load it into ssh-agent".to_owned(),
        ),
        Err(e) if secret.is_some() => Err(format!("cannot decrypt or read it (wrong passphrase?): {e}")),
        Err(e) => Err(format!("not an OpenSSH private key this client reads: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cipher_order_is_aes_gcm_first_only_with_aes_instructions() {
        let order = cipher_order();
        let first = if aes_in_hardware() {
            russh::cipher::AES_256_GCM
        } else {
            russh::cipher::CHACHA20_POLY1305
        };
        assert_eq!(order.first(), Some(&first), "{order:?}");
        // Every one is a cipher russh has, and both AEADs are offered whatever the CPU.
        for c in order {
            assert!(russh::cipher::ALL_CIPHERS.contains(&c), "{c:?}");
        }
        assert!(order.contains(&russh::cipher::AES_256_GCM));
        assert!(order.contains(&russh::cipher::CHACHA20_POLY1305));
    }
}
