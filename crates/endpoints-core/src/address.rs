//! Addresses of connection ends and listeners.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where one end of a connection, or a listener, is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// An IPv4 or IPv6 socket address.
    Ip(SocketAddr),
    /// A unix socket bound to a filesystem path.
    Unix(PathBuf),
    /// A Linux abstract unix socket name (without the leading NUL).
    AbstractUnix(Vec<u8>),
    /// An end with no name (an unbound unix client, a pipe, stdio).
    Unnamed,
}

impl Address {
    /// The IP socket address, if this is one.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            Self::Ip(a) => Some(*a),
            _ => None,
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Self::Ip(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "{}", p.display()),
            Self::AbstractUnix(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Self::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let v6: SocketAddr = "[::1]:80".parse().expect("literal");
        assert_eq!(Address::from(v6).to_string(), "[::1]:80");
        assert_eq!(Address::AbstractUnix(b"app".to_vec()).to_string(), "@app");
        assert_eq!(
            Address::Unix("/run/a.sock".into()).to_string(),
            "/run/a.sock"
        );
        assert_eq!(Address::Unnamed.to_string(), "(unnamed)");
    }
}
