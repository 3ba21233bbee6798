//! [`UnixServerEndpoint`]: bind a unix socket that is never more open than its mode.

use std::fmt;
use std::fs::{File, Permissions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use endpoints_core::{Description, Listener, Operation, ServerEndpoint, async_trait, io_error};
use endpoints_util::handover;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::address::UnixAddress;
use crate::listener::{OwnedPath, UnixListener};
use crate::lock::{LockError, LockFile, lock_path};

/// Settings of a unix listener.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixServerConfig {
    /// Where to listen.
    pub address: UnixAddress,
    /// Permission bits of the socket file (ignored for abstract names).
    pub mode: u32,
    /// Accept queue length.
    pub backlog: u32,
    /// Hold `<address>.lock` while listening, and take over a stale socket (paths only).
    pub lockfile: bool,
    /// Owner to give the socket file.
    pub owner: Option<u32>,
    /// Group to give the socket file.
    pub group: Option<u32>,
}

impl UnixServerConfig {
    /// Defaults for `address`: mode 666, backlog 1024, lock file on.
    pub fn new(address: UnixAddress) -> Self {
        Self {
            address,
            mode: 0o666,
            backlog: 1024,
            lockfile: true,
            owner: None,
            group: None,
        }
    }
}

/// A unix socket server endpoint (`unix:`).
#[derive(Clone, Debug)]
pub struct UnixServerEndpoint {
    config: UnixServerConfig,
    canonical: Description,
}

impl UnixServerEndpoint {
    /// An endpoint for `config`, shown as `canonical`.
    pub fn new(config: UnixServerConfig, canonical: Description) -> Self {
        Self { config, canonical }
    }

    /// The settings.
    pub fn config(&self) -> &UnixServerConfig {
        &self.config
    }

    /// Bind, or adopt the socket a previous process handed over; either way registered for
    /// the next handover.
    async fn listen_or_adopt(&self) -> io::Result<UnixListener> {
        let claim = handover::claim(&self.canonical);
        let mut listener = match claim.inherited {
            Some(fd) => self.adopt(fd, &claim.name)?,
            None => self.bind().await?,
        };
        let lock = listener.lock().map(|l| ("lock", l.file().as_fd()));
        let extra: Vec<_> = lock.into_iter().collect();
        match handover::register(&claim.name, listener.get_ref().as_fd(), &extra) {
            Ok(r) => listener.handover = Some(r),
            Err(e) => {
                tracing::warn!(endpoint = %self.canonical, error = %e, "this listener cannot be handed over to a successor");
            }
        }
        Ok(listener)
    }

    /// An inherited socket (and its lock): the path is neither unlinked nor re-created.
    fn adopt(&self, fd: OwnedFd, name: &str) -> io::Result<UnixListener> {
        let c = &self.config;
        let socket = Socket::from(fd);
        let wrong = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the inherited socket for this description {why}; start the new process \
                     with the same descriptions"
                ),
            )
        };
        if socket.r#type()? != Type::STREAM {
            return Err(wrong("is not a stream socket".into()));
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !socket.is_listener()? {
            return Err(wrong("is not listening".into()));
        }
        let local = socket.local_addr()?;
        let want = sock_addr(&c.address)?;
        if local.as_pathname() != want.as_pathname()
            || local.as_abstract_namespace() != want.as_abstract_namespace()
        {
            return Err(wrong(format!(
                "is bound to {:?}, not {}",
                local.as_pathname(),
                c.address.to_address()
            )));
        }
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let (owned, lock) = match &c.address {
            UnixAddress::Abstract(_) => (None, None),
            UnixAddress::Path(path) => {
                let lock = if c.lockfile {
                    let Some(file) = handover::take_extra(name, "lock") else {
                        return Err(wrong(format!(
                            "came without its lock {}",
                            lock_path(path).display()
                        )));
                    };
                    Some(LockFile::inherited(File::from(file), &lock_path(path))?)
                } else {
                    None
                };
                (Some(OwnedPath::of(path)?), lock)
            }
        };
        let mut listener = UnixListener::new(
            into_tokio(socket)?,
            self.canonical.clone(),
            c.address.to_address(),
            owned,
            lock,
        );
        listener.inherited = true;
        Ok(listener)
    }

    async fn bind(&self) -> io::Result<UnixListener> {
        let c = &self.config;
        match &c.address {
            UnixAddress::Abstract(_) => {
                let socket = new_socket()?;
                socket.bind(&sock_addr(&c.address)?)?;
                socket.listen(backlog(c.backlog))?;
                Ok(UnixListener::new(
                    into_tokio(socket)?,
                    self.canonical.clone(),
                    c.address.to_address(),
                    None,
                    None,
                ))
            }
            UnixAddress::Path(path) => {
                let lock = if c.lockfile {
                    Some(take_lock(path).await?)
                } else {
                    None
                };
                match self.bind_path(path) {
                    Ok((socket, owned)) => Ok(UnixListener::new(
                        into_tokio(socket)?,
                        self.canonical.clone(),
                        c.address.to_address(),
                        Some(owned),
                        lock,
                    )),
                    Err(e) => {
                        // Nothing was taken: give the lock (and its file) back.
                        if let Some(lock) = lock {
                            let _ = lock.release();
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Remove a stale socket (with the lock held), then bind and listen at `path`.
    fn bind_path(&self, path: &Path) -> io::Result<(Socket, OwnedPath)> {
        let c = &self.config;
        if c.lockfile {
            remove_stale_socket(path)?;
        }
        let socket = new_socket()?;
        // The socket file is created with the socket's own mode (masked by the umask): set it
        // before bind so the file is never more open than `mode`, not even for an instant.
        // With an owner or group to set, start owner-only and widen after the chown.
        let first = if c.owner.is_some() || c.group.is_some() {
            c.mode & 0o700
        } else {
            c.mode
        };
        let socket = set_mode(socket, first)?;
        if let Err(e) = socket.bind(&sock_addr(&c.address)?) {
            if e.kind() == io::ErrorKind::AddrInUse {
                let why = if c.lockfile {
                    "appeared while this listener started; it was left alone"
                } else {
                    "already exists; with lockfile=0 an existing file is never removed"
                };
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} {why}", path.display()),
                ));
            }
            return Err(missing_directory(path, &e).unwrap_or(e));
        }
        socket.listen(backlog(c.backlog))?;
        let owned = OwnedPath::of(path)?;
        // Every change below is made without following a symbolic link: if the socket file
        // was replaced by a link meanwhile, the link's target is never chown-ed or chmod-ed.
        let finish = || -> io::Result<()> {
            if c.owner.is_some() || c.group.is_some() {
                std::os::unix::fs::lchown(path, c.owner, c.group)?;
            }
            if std::fs::symlink_metadata(path)?.mode() & 0o7777 != c.mode {
                // Undo the umask's narrowing (this only ever widens to `mode`).
                crate::sys::chmod_nofollow(path, c.mode).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot set mode {:o} on {}: {e}", c.mode, path.display()),
                    )
                })?;
            }
            Ok(())
        };
        if let Err(e) = finish() {
            drop(owned.remove());
            return Err(e);
        }
        Ok((socket, owned))
    }
}

/// Take `<path>.lock`, or say who holds it.
async fn take_lock(path: &Path) -> io::Result<LockFile> {
    let lock = lock_path(path);
    match LockFile::acquire(&lock).await {
        Ok(l) => Ok(l),
        Err(LockError::Held) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "in use by another process (it holds {}); its socket was left alone",
                lock.display()
            ),
        )),
        Err(LockError::HeldByPid(pid)) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "in use by process {pid} (Twisted's lock {} -> {pid}); its socket was left alone. \
                 If process {pid} is not that server, remove {}",
                lock.display(),
                lock.display()
            ),
        )),
        Err(LockError::NotALock(target)) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is a symbolic link to {}, not a lock; it was not followed and was left alone: remove it",
                lock.display(),
                target.display()
            ),
        )),
        Err(LockError::Io(e)) => Err(missing_directory(path, &e).unwrap_or_else(|| {
            io::Error::new(e.kind(), format!("cannot lock {}: {e}", lock.display()))
        })),
    }
}

/// When creating a file next to `path` failed with `NotFound` or `NotADirectory` because its
/// directory is missing (or is not a directory), an error that names the directory.
fn missing_directory(path: &Path, cause: &io::Error) -> Option<io::Error> {
    if !matches!(
        cause.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) {
        return None;
    }
    let dir = match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Path::new("."),
        Some(d) => d,
        None => return None,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!(
                "{} is not a directory, so the socket {} cannot be created in it",
                dir.display(),
                path.display()
            ),
        )),
        Err(_) => Some(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the directory {} does not exist: create it first (`mkdir -p {}`), or choose \
                 another path for the socket",
                dir.display(),
                dir.display()
            ),
        )),
    }
}

fn new_socket() -> io::Result<Socket> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn backlog(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) fn sock_addr(a: &UnixAddress) -> io::Result<SockAddr> {
    // An abstract name is a path starting with NUL; socket2 sizes the address accordingly.
    SockAddr::unix(a.os_path())
}

/// `fchmod` on the socket, through `File` (which is `fchmod` on any descriptor).
fn set_mode(socket: Socket, mode: u32) -> io::Result<Socket> {
    let file = File::from(OwnedFd::from(socket));
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(Socket::from(OwnedFd::from(file)))
}

fn into_tokio(socket: Socket) -> io::Result<tokio::net::UnixListener> {
    let std_listener = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
    tokio::net::UnixListener::from_std(std_listener)
}

/// With the lock held, a socket file at `path` may be a leftover of a dead owner, or the live
/// socket of a server that does not use the lock (Python's `socket.bind()`, nginx, a systemd
/// socket unit, a `lockfile=0` listener). Connect to it first: only a socket that refuses
/// connections is stale and removed. Never remove anything that is not a socket.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; it was left alone",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match probe(path) {
        Probe::Refused => {
            tracing::info!(path = %path.display(), "removing a stale socket (it refuses connections)");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Probe::Gone => Ok(()),
        Probe::Accepts => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} is in use: a server that does not hold {} accepts connections on it; it was left alone",
                path.display(),
                lock_path(path).display()
            ),
        )),
        Probe::Unknown(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "cannot tell whether {} is in use (connecting to it failed: {e}); it was left alone",
                path.display()
            ),
        )),
    }
}

/// What a connection attempt to an existing socket file says about it.
enum Probe {
    /// Something listens (it accepted, or its queue is full).
    Accepts,
    /// Nothing listens: stale.
    Refused,
    /// The file went away meanwhile.
    Gone,
    /// Anything else (no permission to connect, ...): not known to be stale.
    Unknown(io::Error),
}

fn probe(path: &Path) -> Probe {
    let attempt = || -> io::Result<()> {
        let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        // Non-blocking: a listener with a full queue answers EAGAIN at once instead of
        // making this connect wait.
        s.set_nonblocking(true)?;
        s.connect(&SockAddr::unix(path)?)
    };
    match attempt() {
        Ok(()) => Probe::Accepts,
        Err(e) => match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EINPROGRESS) => Probe::Accepts,
            Some(libc::ECONNREFUSED) => Probe::Refused,
            Some(libc::ENOENT) => Probe::Gone,
            _ => Probe::Unknown(e),
        },
    }
}

impl fmt::Display for UnixServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ServerEndpoint for UnixServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let listener = self
            .listen_or_adopt()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        tracing::debug!(endpoint = %self.canonical, "listening");
        Ok(Box::new(listener))
    }
}
