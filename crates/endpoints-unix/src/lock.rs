//! `<address>.lock`: an `flock(2)` lock held for the listener's lifetime.
//!
//! The kernel releases it when the owner exits, however it exits, so a reused PID can never
//! look like a live owner (Twisted's symlink lock can, twisted#3851), and only one of any
//! number of racing starters can hold it (twisted#8440).
//!
//! Twisted's own lock, a symbolic link `<address>.lock -> "<pid>"`, is recognised: a live pid
//! means in use, a dead one is stale and the link (never its target) is removed. The lock path
//! is opened with `O_NOFOLLOW`: a symbolic link there is never followed, created through or
//! truncated, and one that is not Twisted's lock is an error.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys;

/// How often to retry a busy lock before reporting it held, and how long to wait between
/// tries: a client's `lockfile=1` probe holds a shared lock for microseconds.
const TRIES: u32 = 5;
const PAUSE: Duration = Duration::from_millis(10);

/// The lock path for a socket path.
pub(crate) fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// A held lock. Dropping it releases the lock without removing the file; [`release`] removes
/// the file first.
#[derive(Debug)]
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another live process holds it.
    Held,
    /// A Twisted-style lock (a symlink `<address>.lock -> "<pid>"`) names a live process.
    HeldByPid(i32),
    /// A symbolic link that is not a Twisted lock sits at the lock path (never followed).
    NotALock(PathBuf),
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

/// What a symbolic link at the lock path is.
enum Symlink {
    /// Twisted's lock, its process alive (or its pid reused: twisted#3851).
    Live(i32),
    /// Twisted's lock, its process gone.
    Dead(i32),
    /// Anything else: where it points.
    Foreign(PathBuf),
    /// No longer a symlink (removed or replaced meanwhile): look again.
    Gone,
}

/// Read the symbolic link at `path` (never following it).
fn read_symlink(path: &Path) -> io::Result<Symlink> {
    let target = match std::fs::read_link(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Symlink::Gone),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Ok(Symlink::Gone),
        Err(e) => return Err(e),
    };
    // Twisted writes `str(os.getpid())`: decimal digits only.
    let pid = target
        .to_str()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i32>().ok())
        .filter(|&p| p > 0);
    Ok(match pid {
        Some(p) if sys::process_exists(p) => Symlink::Live(p),
        Some(p) => Symlink::Dead(p),
        None => Symlink::Foreign(target),
    })
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Open options that never follow a symbolic link at the last component, and never block on
/// a FIFO.
fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    o
}

impl LockFile {
    /// Take the exclusive lock on `path` without waiting for another owner.
    pub(crate) async fn acquire(path: &Path) -> Result<Self, LockError> {
        for attempt in 0..TRIES {
            let opened = no_follow()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path);
            let file = match opened {
                Ok(f) => f,
                Err(_) if is_symlink(path) => match read_symlink(path).map_err(LockError::Io)? {
                    Symlink::Live(pid) => return Err(LockError::HeldByPid(pid)),
                    Symlink::Dead(pid) => {
                        tracing::info!(lock = %path.display(), pid, "removing a stale Twisted lock whose process is gone");
                        match std::fs::remove_file(path) {
                            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                                return Err(LockError::Io(e));
                            }
                            _ => continue,
                        }
                    }
                    Symlink::Foreign(target) => return Err(LockError::NotALock(target)),
                    Symlink::Gone => continue,
                },
                Err(e) => return Err(LockError::Io(e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    if attempt + 1 < TRIES {
                        tokio::time::sleep(PAUSE).await;
                        continue;
                    }
                    return Err(LockError::Held);
                }
                Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
            }
            // A previous owner may have removed the file between our open and our lock: then
            // we hold a lock on a file nobody else can see. Only a lock on the file at `path`
            // counts.
            let ours = file.metadata().map_err(LockError::Io)?;
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
                    return Ok(Self {
                        file,
                        path: path.to_owned(),
                    });
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LockError::Io(e)),
            }
        }
        Err(LockError::Held)
    }

    /// A lock handed over by the previous process (the same open file, so the same `flock`):
    /// accepted only when it is the file at `path` now.
    pub(crate) fn inherited(file: File, path: &Path) -> io::Result<Self> {
        let ours = file.metadata()?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => Ok(Self {
                file,
                path: path.to_owned(),
            }),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the inherited lock is not the file at {} any more; start the new process \
                     with the same descriptions",
                    path.display()
                ),
            )),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("the inherited lock {} is gone: {e}", path.display()),
            )),
        }
    }

    /// The open lock file (passed on by a handover).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Remove the lock file, then release the lock.
    pub(crate) fn release(self) -> io::Result<()> {
        let removed = std::fs::remove_file(&self.path);
        drop(self.file);
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether a live process holds the lock at `path` (for the client's `lockfile=1`): our
/// `flock`, or Twisted's symlink naming a live pid. A missing lock file means no.
pub(crate) fn is_held(path: &Path) -> io::Result<bool> {
    let file = match no_follow().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        // Twisted's lock: held while its process lives.
        Err(_) if is_symlink(path) => return Ok(matches!(read_symlink(path)?, Symlink::Live(_))),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}
