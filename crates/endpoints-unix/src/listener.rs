//! [`UnixListener`]: accepts with peer credentials; `close()` removes what it created.

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use endpoints_core::{
    Address, Connection, Description, Listener, Operation, async_trait, io_error,
};
use endpoints_util::accept::AcceptBackoff;

use crate::address::PeerCredentials;
use crate::lock::LockFile;

/// The socket file a listener created: removed on close only if it is still that file.
#[derive(Debug)]
pub(crate) struct OwnedPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl OwnedPath {
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        let m = std::fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    pub(crate) fn remove(self) -> io::Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => std::fs::remove_file(&self.path),
            Ok(_) => Ok(()), // someone else's file now: leave it
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A listening unix socket. Made by [`UnixServerEndpoint`](crate::UnixServerEndpoint), or by
/// [`UnixListener::adopt`] for an inherited socket (systemd).
#[derive(Debug)]
pub struct UnixListener {
    inner: tokio::net::UnixListener,
    canonical: Description,
    local: Address,
    backoff: AcceptBackoff,
    owned: Option<OwnedPath>,
    lock: Option<LockFile>,
    /// Passed on by a handover while this listener lives.
    pub(crate) handover: Option<endpoints_util::handover::Registration>,
    /// Handed over by a previous process: its files are removed only once this process owns
    /// them ([`owns_inherited_files`](endpoints_util::handover::owns_inherited_files)).
    pub(crate) inherited: bool,
}

impl UnixListener {
    pub(crate) fn new(
        inner: tokio::net::UnixListener,
        canonical: Description,
        local: Address,
        owned: Option<OwnedPath>,
        lock: Option<LockFile>,
    ) -> Self {
        Self {
            inner,
            canonical,
            local,
            backoff: AcceptBackoff::new(),
            owned,
            lock,
            handover: None,
            inherited: false,
        }
    }

    /// The lock held, if any (a handover passes it on with the socket).
    pub(crate) fn lock(&self) -> Option<&LockFile> {
        self.lock.as_ref()
    }

    /// Keep a handover registration for as long as this listener lives (an adopted socket
    /// that the next process should get too: `systemd:`, `fd:`).
    pub fn keep_registration(
        &mut self,
        registration: Option<endpoints_util::handover::Registration>,
    ) {
        self.handover = registration;
    }

    /// The tokio listener underneath.
    pub fn get_ref(&self) -> &tokio::net::UnixListener {
        &self.inner
    }

    /// Wrap a listening socket this process did not create (for example one inherited from
    /// systemd): it is never chmod-ed, and `close()` does not remove its file.
    pub fn adopt(inner: tokio::net::UnixListener, canonical: Description) -> io::Result<Self> {
        let local = match inner.local_addr()?.as_pathname() {
            Some(p) => Address::Unix(p.to_owned()),
            None => Address::Unnamed,
        };
        Ok(Self::new(inner, canonical, local, None, None))
    }

    fn cleanup(&mut self) -> io::Result<()> {
        self.handover = None;
        if endpoints_util::handover::handed_over() || endpoints_util::handover::stored() {
            // A successor serves this socket now, or systemd's descriptor store keeps it for
            // the next start (the same socket: the path and the lock pass with it): leave both
            // files in place; the lock stays held through its copy.
            self.owned = None;
            self.lock = None;
            return Ok(());
        }
        if self.inherited && !endpoints_util::handover::owns_inherited_files() {
            // A successor that never became ready: the previous process still serves this
            // socket and holds the same lock (the same open file, so the same `flock`).
            // Removing either would cut it off, so both stay; closing this copy of the lock
            // leaves the previous process's lock held.
            self.owned = None;
            self.lock = None;
            return Ok(());
        }
        let removed = self.owned.take().map_or(Ok(()), OwnedPath::remove);
        let released = self.lock.take().map_or(Ok(()), LockFile::release);
        removed.and(released)
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(listener = %self.canonical, error = %e, "could not remove the socket or lock file");
        }
    }
}

impl fmt::Display for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl Listener for UnixListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    self.backoff.success();
                    let creds = PeerCredentials::of(&stream);
                    let peer = match peer.as_pathname() {
                        Some(p) => Address::Unix(p.to_owned()),
                        None => Address::Unnamed,
                    };
                    let mut conn = Connection::new(stream, self.local.clone(), peer);
                    if let Some(c) = creds {
                        conn.extensions_mut().insert(c);
                    }
                    return Ok(conn);
                }
                Err(e) => {
                    let canonical = &self.canonical;
                    self.backoff
                        .handle(e, canonical)
                        .await
                        .map_err(|e| io_error(Operation::Accept, canonical, e))?;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Address> {
        Ok(self.local.clone())
    }

    async fn close(mut self: Box<Self>) -> io::Result<()> {
        // Remove the path first: once it is gone (or replaced), a new listener can bind it.
        let result = self
            .cleanup()
            .map_err(|e| io_error(Operation::Close, &self.canonical, e));
        drop(self);
        result
    }
}
