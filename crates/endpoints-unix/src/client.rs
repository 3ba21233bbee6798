//! [`UnixClientEndpoint`]: connect to a unix socket, optionally only if a live server holds
//! its lock.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Operation, async_trait, io_error,
};

use crate::address::{PeerCredentials, UnixAddress};
use crate::lock::{is_held, lock_path};

/// A unix socket client endpoint (`unix:`).
#[derive(Clone, Debug)]
pub struct UnixClientEndpoint {
    address: UnixAddress,
    timeout: Option<Duration>,
    check_lock: bool,
    canonical: Description,
}

impl UnixClientEndpoint {
    /// Connect to `address`; `check_lock` first checks that a live server holds
    /// `<address>.lock` (paths only).
    pub fn new(
        address: UnixAddress,
        timeout: Option<Duration>,
        check_lock: bool,
        canonical: Description,
    ) -> Self {
        Self {
            address,
            timeout,
            check_lock,
            canonical,
        }
    }

    async fn open(&self) -> io::Result<Connection> {
        if let (true, UnixAddress::Path(path)) = (self.check_lock, &self.address) {
            let lock = lock_path(path);
            if !is_held(&lock)? {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("no live server holds {} (lockfile=1)", lock.display()),
                ));
            }
        }
        let connecting = tokio::net::UnixStream::connect(self.address.os_path());
        let stream = match self.timeout {
            Some(t) => tokio::time::timeout(t, connecting)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {:.3}s", t.as_secs_f64()),
                    ))
                })
                .map_err(|e| self.explain(e))?,
            None => connecting.await.map_err(|e| self.explain(e))?,
        };
        let creds = PeerCredentials::of(&stream);
        let mut conn = Connection::new(stream, Address::Unnamed, self.address.to_address());
        if let Some(c) = creds {
            conn.extensions_mut().insert(c);
        }
        Ok(conn)
    }
}

impl UnixClientEndpoint {
    /// A connect error in words where the OS's are a bare code: `ENOENT` is a missing
    /// directory or a missing socket, and says which (the kind is kept).
    fn explain(&self, e: io::Error) -> io::Error {
        let UnixAddress::Path(path) = &self.address else {
            return e;
        };
        if !matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ) {
            return e;
        }
        let dir = match path.parent() {
            Some(d) if d.as_os_str().is_empty() => Path::new("."),
            Some(d) => d,
            None => return e,
        };
        let message = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => format!(
                "no socket at {}: nothing listens there (the directory exists); start the \
                 server first, or check the path",
                path.display()
            ),
            Ok(_) => format!(
                "{} is not a directory, so there is no socket {}: check the path",
                dir.display(),
                path.display()
            ),
            Err(_) => format!(
                "the directory {} does not exist, so there is no socket {}: check the path, \
                 or start the server that creates it",
                dir.display(),
                path.display()
            ),
        };
        io::Error::new(e.kind(), message)
    }
}

impl fmt::Display for UnixClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for UnixClientEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        self.open()
            .await
            .map_err(|e| io_error(Operation::Connect, self, e))
    }
}
