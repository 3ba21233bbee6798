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
    /// A host name and port, for a listener reached by name only: an onion service's
    /// `NAME.onion:PORT` (`onion:`).
    Name {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
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

/// Write `bytes` (a path or abstract name: any bytes but NUL, possibly from a peer, such as a
/// PROXY v2 header) so that it cannot forge a log line: control characters, `\` and bytes
/// that are not UTF-8 are written as escapes (`\n`, `\x1b`, `\\`, `\xff`).
fn write_escaped(f: &mut fmt::Formatter<'_>, mut bytes: &[u8]) -> fmt::Result {
    while !bytes.is_empty() {
        let (good, bad) = match std::str::from_utf8(bytes) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                let n = e.error_len().unwrap_or(rest.len());
                (std::str::from_utf8(good).unwrap_or_default(), &rest[..n])
            }
        };
        for c in good.chars() {
            if c.is_control() || c == '\\' {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        for b in bad {
            write!(f, "\\x{b:02x}")?;
        }
        bytes = &bytes[good.len() + bad.len()..];
    }
    Ok(())
}

impl fmt::Display for Address {
    /// Paths and abstract names are escaped (see `write_escaped`): a peer's address cannot
    /// add lines to a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Unix(p) => {
                use std::os::unix::ffi::OsStrExt;
                write_escaped(f, p.as_os_str().as_bytes())
            }
            Self::AbstractUnix(name) => {
                f.write_str("@")?;
                write_escaped(f, name)
            }
            Self::Unnamed => f.write_str("(unnamed)"),
            Self::Name { host, port } => {
                write_escaped(f, host.as_bytes())?;
                write!(f, ":{port}")
            }
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
        let onion = Address::Name {
            host: "abc.onion".into(),
            port: 80,
        };
        assert_eq!(onion.to_string(), "abc.onion:80");
    }

    #[test]
    fn display_escapes_what_could_forge_a_log_line() {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::OsStr::from_bytes(b"/run/a\nINFO forged\x1b[0m\xff\\b.sock");
        assert_eq!(
            Address::Unix(path.into()).to_string(),
            r"/run/a\nINFO forged\u{1b}[0m\xff\\b.sock"
        );
        assert_eq!(
            Address::AbstractUnix(b"x\r\ny\xc3".to_vec()).to_string(),
            r"@x\r\ny\xc3"
        );
        assert_eq!(
            Address::Unix("/run/ünïcode.sock".into()).to_string(),
            "/run/ünïcode.sock"
        );
    }
}
