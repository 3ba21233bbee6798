//! Unix socket addresses: a filesystem path, or a Linux abstract name written `@name`.

use std::fmt;
use std::path::PathBuf;

use endpoints_core::Address;
use endpoints_core::ParseError;
use endpoints_core::params::Value;

/// `sun_path` holds 108 bytes including the terminating NUL.
pub const MAX_PATH_LEN: usize = 107;

/// Where a unix socket lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddress {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract name (no file; reachable from the same network namespace).
    Abstract(Vec<u8>),
}

impl UnixAddress {
    /// Parse a description value: `@name` is abstract, anything else a path.
    pub fn from_value(v: &Value<'_>) -> Result<Self, ParseError> {
        let text = v.as_str();
        if let Some(name) = text.strip_prefix('@') {
            if !cfg!(any(target_os = "linux", target_os = "android")) {
                return Err(v.invalid(
                    "abstract unix names (`@name`) exist only on Linux: use a socket path here, as in `unix:/tmp/app.sock`",
                ));
            }
            if name.len() + 1 > MAX_PATH_LEN {
                return Err(v.invalid(format_args!(
                    "an abstract name has at most {} bytes",
                    MAX_PATH_LEN - 1
                )));
            }
            return Ok(Self::Abstract(name.as_bytes().to_vec()));
        }
        let path = v.path()?;
        if text.len() > MAX_PATH_LEN {
            return Err(v.invalid(format_args!(
                "a unix socket path has at most {MAX_PATH_LEN} bytes (this one has {})",
                text.len()
            )));
        }
        Ok(Self::Path(path))
    }

    /// The core address type.
    pub fn to_address(&self) -> Address {
        match self {
            Self::Path(p) => Address::Unix(p.clone()),
            Self::Abstract(n) => Address::AbstractUnix(n.clone()),
        }
    }

    /// The path tokio and mio understand: abstract names start with a NUL byte.
    pub(crate) fn os_path(&self) -> PathBuf {
        match self {
            Self::Path(p) => p.clone(),
            Self::Abstract(n) => {
                use std::os::unix::ffi::OsStrExt;
                let mut bytes = vec![0u8];
                bytes.extend_from_slice(n);
                PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
            }
        }
    }
}

impl fmt::Display for UnixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(p) => write!(f, "{}", p.display()),
            Self::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}

/// Credentials of the process at the other end of a unix connection, read with
/// `SO_PEERCRED` when the connection was made. Found in [`Connection::extensions`].
///
/// [`Connection::extensions`]: endpoints_core::Connection::extensions
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// Process id (when the system reports it).
    pub pid: Option<i32>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl PeerCredentials {
    pub(crate) fn of(stream: &tokio::net::UnixStream) -> Option<Self> {
        let c = stream.peer_cred().ok()?;
        Some(Self {
            pid: c.pid(),
            uid: c.uid(),
            gid: c.gid(),
        })
    }
}
