//! Server certificates that follow their files: a renewed, added or deleted certificate is
//! served without a restart.
//!
//! While a listener is open, a background task looks at the files every [`POLL_EVERY`]
//! (`stat` only: paths, sizes, modification times, inodes; symlinks followed, so certbot
//! retargeting `live/` links counts). A change is loaded once it has stayed the same for one
//! more poll (a file still being written is not read half-way), on the blocking pool, never
//! in a handshake. A set that loads and validates replaces the old one in one step
//! (handshakes in flight keep the set they started with); one that does not (a half-written
//! or invalid file, a key that fits no certificate) is logged and the old set kept serving
//! until the files change again. The task ends when the listener is closed or dropped.
//!
//! A poll rather than inotify (the `notify` crate): one `stat` per file per second is cheap
//! for the few files a server has, works the same on every platform and file system
//! (network mounts, containers with bind-mounted secrets, where inotify sees nothing),
//! follows symlink retargeting, and needs no new dependency. The swap is an
//! `RwLock<Arc<..>>`: a handshake holds the read lock only to clone the `Arc`, so `arc-swap`
//! would buy nothing measurable.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use endpoints_core::{Address, Connection, Listener, async_trait};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::certdir::{self, Stamp};
use crate::config::provider;
use crate::sni::Loaded;

/// How often the files are looked at.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(1);

/// Where the certificates come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// `tls:`: a directory (see [`certdir`]).
    Dir(PathBuf),
    /// `ssl:`: `privateKey`, `certKey`, `extraCertChain`.
    Files {
        key: PathBuf,
        cert: PathBuf,
        extra: Option<PathBuf>,
    },
}

/// What the files looked like (an error if they could not be looked at).
type Snapshot = Result<Vec<Stamp>, String>;

impl Source {
    fn snapshot(&self) -> Snapshot {
        match self {
            Source::Dir(dir) => certdir::walk(dir, false).map_err(|e| e.to_string()),
            Source::Files { key, cert, extra } => [Some(key), Some(cert), extra.as_ref()]
                .into_iter()
                .flatten()
                .map(|p| {
                    std::fs::metadata(p)
                        .map(|m| Stamp::of(p, &m))
                        .map_err(|e| format!("`{}`: {e}", p.display()))
                })
                .collect(),
        }
    }

    fn load(&self) -> Result<(Loaded, Snapshot), String> {
        match self {
            Source::Dir(dir) => certdir::load(dir).map(|(l, s)| (l, Ok(s))),
            Source::Files { key, cert, extra } => {
                let before = self.snapshot();
                let ck = load_files(key, cert, extra.as_ref())?;
                Ok((Loaded::single(Arc::new(ck)), before))
            }
        }
    }
}

/// `ssl:`'s key and chain: the key in `key` (or else in `cert`), the certificates in `cert`
/// (or else in `key`), then those of `extra`; the key must fit the first certificate.
fn load_files(
    key: &PathBuf,
    cert: &PathBuf,
    extra: Option<&PathBuf>,
) -> Result<CertifiedKey, String> {
    let (key_certs, key_keys) = certdir::read_pem(key)?;
    let (mut chain, cert_keys) = if cert == key {
        (key_certs.clone(), Vec::new())
    } else {
        certdir::read_pem(cert)?
    };
    if chain.is_empty() {
        chain = key_certs;
    }
    if chain.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", cert.display()));
    }
    let Some(private) = key_keys.into_iter().chain(cert_keys).next() else {
        return Err(format!("no private key in `{}`", key.display()));
    };
    if let Some(extra) = extra {
        let (more, _) = certdir::read_pem(extra)?;
        if more.is_empty() {
            return Err(format!(
                "`{}` doesn't contain any valid certificates in PEM format",
                extra.display()
            ));
        }
        chain.extend(more);
    }
    CertifiedKey::from_der(chain, private, &provider())
        .map_err(|e| format!("the key does not fit the certificate: {e}"))
}

#[derive(Debug)]
struct PollState {
    /// The files as they were when the current set was loaded (or last failed to load).
    loaded: Snapshot,
    /// A change seen at the last poll, loaded if it is still the same at the next one.
    pending: Option<Snapshot>,
}

/// The certificates a server serves now, and where they come from.
pub(crate) struct Store {
    source: Source,
    current: RwLock<Arc<Loaded>>,
    state: Mutex<PollState>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Load `source` now: an error says what is wrong with which file.
    pub(crate) fn new(source: Source) -> Result<Arc<Self>, String> {
        let (loaded, snapshot) = source.load()?;
        Ok(Arc::new(Self {
            source,
            current: RwLock::new(Arc::new(loaded)),
            state: Mutex::new(PollState {
                loaded: snapshot,
                pending: None,
            }),
        }))
    }

    /// The set served now.
    pub(crate) fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Look at the files once; load them if they changed and then stayed the same.
    fn poll(&self) {
        let now = self.source.snapshot();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now == st.loaded {
            st.pending = None;
            return;
        }
        if st.pending.as_ref() != Some(&now) {
            st.pending = Some(now);
            return;
        }
        st.pending = None;
        match self.source.load() {
            Ok((fresh, snapshot)) => {
                st.loaded = snapshot;
                tracing::info!(source = ?self.source, names = ?fresh.names, "server certificates reloaded");
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
            }
            Err(e) => {
                st.loaded = now;
                tracing::warn!(source = ?self.source, error = %e, "server certificates changed but cannot be loaded: {e}; still serving the ones loaded before");
            }
        }
    }
}

impl ResolvesServerCert for Store {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name();
        let found = self.current().lookup(name);
        if found.is_none() {
            tracing::debug!(source = ?self.source, name, "no server certificate for this name");
        }
        found
    }
}

/// Aborts the watching task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A listener whose certificates are watched while it is open.
#[derive(Debug)]
pub(crate) struct Watched {
    inner: Box<dyn Listener>,
    _watch: AbortOnDrop,
}

impl Watched {
    /// Watch `store` every [`POLL_EVERY`] until `inner` is closed or dropped.
    pub(crate) fn new(inner: Box<dyn Listener>, store: Arc<Store>) -> Self {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate: the set was just loaded
            loop {
                tick.tick().await;
                let s = store.clone();
                if tokio::task::spawn_blocking(move || s.poll()).await.is_err() {
                    tracing::warn!("the certificate watcher failed; retrying at the next poll");
                }
            }
        });
        Self {
            inner,
            _watch: AbortOnDrop(task),
        }
    }
}

impl fmt::Display for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl Listener for Watched {
    async fn accept(&mut self) -> io::Result<Connection> {
        self.inner.accept().await
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.inner.local_addr()
    }

    async fn close(self: Box<Self>) -> io::Result<()> {
        let Watched { inner, _watch } = *self;
        drop(_watch);
        inner.close().await
    }
}
