//! [`UnixClientEndpoint`]: connect to a unix socket, optionally only if a live server holds
//! its lock.

use std::fmt;
use std::io;
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
                })?,
            None => connecting.await?,
        };
        let creds = PeerCredentials::of(&stream);
        let mut conn = Connection::new(stream, Address::Unnamed, self.address.to_address());
        if let Some(c) = creds {
            conn.extensions_mut().insert(c);
        }
        Ok(conn)
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
