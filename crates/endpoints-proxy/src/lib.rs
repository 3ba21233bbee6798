//! `haproxy:` PROXY protocol (v1 and v2) wrapper for any server endpoint, and a client-side
//! sender.
//!
//! This crate provides:
//!
//! * the `haproxy:` server wrapper: every accepted connection must start with a PROXY header
//!   (v1 or v2, told apart by the first byte); the connection then reports the header's source
//!   as its peer and its destination as its local address (LOCAL, UNKNOWN and UNSPEC keep the
//!   real addresses), carries the whole [`ProxyHeader`] (TLVs: ALPN, authority, unique id,
//!   SSL; CRC32C and the unique id's length checked, for LOCAL and UNSPEC headers too) and
//!   delivers the bytes after the header unchanged; addresses from a header are escaped when
//!   displayed (`endpoints_core::Address`'s `Display`);
//! * headers read off the accept loop with a deadline (default 5 s), a v2 cap (4096 bytes,
//!   checked as soon as the 16 fixed bytes arrive) and the v1 limit (107 bytes); a header split
//!   across many writes is fine if it completes in time; anything malformed is closed at once
//!   and logged at debug level;
//! * a trusted-sender policy: `trusted=` addresses, CIDRs and `unix` (peers without an IP),
//!   and for others `untrusted=reject|accept`; without `trusted=` any peer may send a header,
//!   and listening logs a warning saying so unless the description states `trusted=any`;
//! * `haproxy:ssl:...` in real haproxy's order: the header arrives in cleartext, before the
//!   TLS handshake (Twisted expected it inside TLS);
//! * the `haproxy:` client wrapper, sending a v1 or v2 header ([`ProxyClientEndpoint`]);
//!   `haproxy:tls:...` and `haproxy:ssl:...` send it in cleartext before the TLS handshake, as haproxy's
//!   `send-proxy` on an `ssl` server line does; [`connect_announcing`] (through any wrapper) lets
//!   a relay pass its client's address on (`endpoints relay` does).
//!
//! The codec is the `ppp` crate (its v1 and v2 parsers); the limits, checks and policy are
//! this crate's.
//!
//! # Grammar
//!
//! Options come first, then the inner description: `haproxy:[option=value:...]<inner>`.
//!
//! `haproxy:` server:
//!
//! <!-- params: haproxy server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `timeout` |  | seconds | `5` | deadline for the whole PROXY header, in seconds |
//! | `maxHeader` |  | integer | `4096` | largest v2 header accepted, in bytes |
//! | `trusted` |  | list |  | peers allowed to send headers: CIDRs, addresses, `unix` (peers without an IP), or `any` (default: any peer, with a warning) |
//! | `untrusted` |  | one of reject\|accept | `reject` | other peers: reject (close), or accept as plain connections without a header |
//! | `maxPendingPerSource` |  | integer |  | upgrades (header read, handshake) in progress at once from one IP address once the pool is half full, 1-1024 (default 64); more wait (as many, within the deadline), then are closed |
//! <!-- /params -->
//!
//! `haproxy:` client:
//!
//! <!-- params: haproxy client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `version` |  | one of 1\|2 | `1` | PROXY protocol version to send |
//! <!-- /params -->
//!
//! ```text
//! haproxy:tcp:8080
//! haproxy:timeout=3:trusted=[10.0.0.0/8,::1]:tcp6:443   (IPv6 in a list: bracket the list)
//! haproxy:ssl:443:privateKey=key.pem            header in cleartext, then TLS
//! haproxy:version=2:tcp:backend:9000             (client) send a v2 header
//! haproxy:tls:backend:443:trustRoots=ca.pem      (client) header in cleartext, then TLS
//! ```
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_proxy::ProxyHeader;
//!
//! let mut listener = endpoints_core::registry::build_server(&"haproxy:tcp:8080".parse()?)?.listen().await?;
//! let conn = listener.accept().await?;
//! println!("client {} (via {:?})", conn.peer_addr(), conn.extensions().get::<ProxyHeader>().map(|h| h.version));
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod header;
mod parse;
mod server;
mod stream;

pub use client::{ProxyClientEndpoint, connect_announcing, encode};
pub use header::{
    Command, DEFAULT_V2_MAX, HeaderError, Progress, ProxyHeader, SslInfo, TLV_ALPN, TLV_AUTHORITY,
    TLV_CRC32C, TLV_NOOP, TLV_SSL, TLV_UNIQUE_ID, Tlv, V1_MAX, V2_SIGNATURE, crc32c, parse,
};
pub use parse::{CLIENT_PARAMS, SERVER_PARAMS};
pub use server::{Cidr, ProxyServerEndpoint, ProxySettings, Trusted, TrustedPeer, Untrusted};
pub use stream::Prefixed;
