//! `socks5:` and `httpconnect:` clients: connect through a SOCKS5 or HTTP CONNECT proxy, the
//! proxy itself reached by any client description.
//!
//! This crate provides:
//!
//! * the `socks5:` client (RFC 1928 CONNECT; user name and password per RFC 1929). Host names
//!   are sent to the proxy by default (remote DNS, curl's `socks5h`); `resolve=local`
//!   resolves them here and sends each address in turn until the proxy reaches one. IPv4,
//!   IPv6 and name targets; the bytes RFC 1928/1929 fix (versions, the reserved byte) are
//!   checked, and a wrong one is named in the error;
//! * the `httpconnect:` client (RFC 9110 §9.3.6 CONNECT, Basic proxy authentication). Bytes the
//!   proxy sends after its response head belong to the tunnel and are delivered first;
//!   interim (1xx) answers are skipped, at most 8 and within the 16 KiB head limit, so a proxy
//!   that answers `100 Continue` forever is an error even with `timeout=0`;
//! * the way to the proxy is itself a description (`proxy=`, escaped): `tcp:`, `unix:`,
//!   `tls:` (TLS to the proxy), another tunnel (chains); and anything that takes a client
//!   description (`tls:`'s `endpoint=`, `haproxy:`) runs over a tunnel;
//! * credentials from `password=`, or, kept out of `ps` and logs, `passwordFile=` or
//!   `passwordEnv=` (read when the description is built); `Display` shows `password=***`;
//! * failures in words, naming the endpoint: the SOCKS5 reply code ("host unreachable",
//!   "connection refused", "connection not allowed by ruleset", ...) or "authentication
//!   failed"; the HTTP status and reason ("407 Proxy Authentication Required"); a proxy that
//!   cannot be reached names the proxy's description too;
//! * `timeout=` (default 30 s) covers reaching the proxy and its handshake together, and
//!   dropping `connect()`'s future closes the connection to the proxy at once.
//!
//! The connection's peer address is the target when it is an IP address (or was resolved
//! here), otherwise unnamed; [`TunnelInfo`] in its extensions names the proxy, the target and
//! the SOCKS5 bound address. The connection to the proxy stays whole beneath the tunnel,
//! declared as a pass-through `Layer` ([`Connection::beneath`](endpoints_core::Connection::beneath)):
//! its extensions (a `tls:` hop's TLS details) are the hop's, not the tunnel's, and the
//! socket stays reachable (`endpoints relay` resets or splices it). The handshakes are written here (a few dozen lines each, errors
//! in our words); `httparse` reads the CONNECT response head.
//!
//! # Grammar
//!
//! `socks5:<host>:<port>:proxy=<client description>[:option=value...]`, and the same for
//! `httpconnect:`. The nested description's `:` and `\` are escaped with `\`.
//!
//! `socks5:` client:
//!
//! <!-- params: socks5 client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | target host name or IP address, as the proxy should reach it |
//! | `port` | 2 | port | required | target port |
//! | `proxy` |  | description | required | how to reach the proxy: a client description, its `:` and `\` escaped (`tcp\:127.0.0.1\:1080`) |
//! | `user` |  | text |  | user name for the proxy |
//! | `password` |  | text |  | password for the proxy (visible in `ps` and logs: prefer passwordFile= or passwordEnv=); shown as \*\*\* |
//! | `passwordFile` |  | path |  | read the password from this file (one trailing newline is dropped) |
//! | `passwordEnv` |  | text |  | read the password from this environment variable |
//! | `resolve` |  | one of remote\|local | `remote` | `remote`: send host names to the proxy (curl's socks5h); `local`: resolve them here and send the address |
//! | `timeout` |  | seconds | `30` | deadline for reaching the proxy and its handshake together, in seconds (0: none) |
//! <!-- /params -->
//!
//! `httpconnect:` client:
//!
//! <!-- params: httpconnect client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | target host name or IP address, sent to the proxy in the CONNECT request |
//! | `port` | 2 | port | required | target port |
//! | `proxy` |  | description | required | how to reach the proxy: a client description, its `:` and `\` escaped (`tcp\:127.0.0.1\:1080`) |
//! | `user` |  | text |  | user name for the proxy |
//! | `password` |  | text |  | password for the proxy (visible in `ps` and logs: prefer passwordFile= or passwordEnv=); shown as \*\*\* |
//! | `passwordFile` |  | path |  | read the password from this file (one trailing newline is dropped) |
//! | `passwordEnv` |  | text |  | read the password from this environment variable |
//! | `timeout` |  | seconds | `30` | deadline for reaching the proxy and its handshake together, in seconds (0: none) |
//! <!-- /params -->
//!
//! ```text
//! socks5:example.com:443:proxy=tcp\:127.0.0.1\:1080
//! socks5:example.com:443:proxy=unix\:/run/tor.sock:resolve=remote
//! socks5:[2001:db8::1]:22:proxy=tcp\:proxy\:1080:user=me:passwordFile=/run/secrets/socks
//! httpconnect:example.com:443:proxy=tcp\:proxy.corp\:3128:user=me:passwordEnv=PROXY_PASSWORD
//! tls:example.com:443:endpoint=socks5\:example.com\:443\:proxy=tcp\\\:127.0.0.1\\\:1080
//! ```
//!
//! The last line is TLS (verified against `example.com`) through a SOCKS5 tunnel: each level
//! of nesting escapes the level below once more (`\:` becomes `\\\:`).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::AsyncWriteExt;
//!
//! let d = r"socks5:example.com:80:proxy=tcp\:127.0.0.1\:1080".parse()?;
//! let mut conn = endpoints_core::registry::build_client(&d)?.connect().await?;
//! conn.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
//! let info = conn.extensions().get::<endpoints_tunnel::TunnelInfo>();
//! println!("through {:?}", info.map(|i| &i.proxy));
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod common;
pub mod http;
pub mod socks5;

pub use common::{
    Credentials, Prefixed, Protocol, Target, TunnelEndpoint, TunnelInfo, socks5_reply_code,
};
pub use http::HTTPCONNECT_PARAMS;
pub use socks5::SOCKS5_PARAMS;
