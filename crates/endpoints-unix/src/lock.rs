//! `<address>.lock`: an `flock(2)` lock held for the listener's lifetime.
//!
//! The kernel releases it when the owner exits, however it exits, so a reused PID can never
//! look like a live owner (Twisted's symlink lock can, twisted#3851), and only one of any
//! number of racing starters can hold it (twisted#8440).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

impl LockFile {
    /// Take the exclusive lock on `path` without waiting for another owner.
    pub(crate) async fn acquire(path: &Path) -> Result<Self, LockError> {
        for attempt in 0..TRIES {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(LockError::Io)?;
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
            match std::fs::metadata(path) {
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

/// Whether a live process holds the lock at `path` (for the client's `lockfile=1`).
/// A missing lock file means no.
pub(crate) fn is_held(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}
