//! `hostname:` client endpoint and the RFC 8305 ("happy eyeballs v2") connector that the
//! `tcp:` and `tls:` clients use for host names.
//!
//! This crate provides:
//!
//! * [`HappyEyeballs`]: resolve AAAA and A separately, interleave the families, stagger
//!   attempts, first success wins, every other attempt closed, an error that lists every
//!   address tried;
//! * [`Resolver`] (injectable), [`SystemResolver`] (getaddrinfo per family) and
//!   [`StaticResolver`] (a fixed table);
//! * [`HostnameEndpoint`], registered as the `hostname:` client prefix;
//! * helpers shared with other transports: [`ip_literal`], [`host_port_args`].
//!
//! # `hostname:` parameters
//!
//! <!-- params: hostname client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | host name or IP address to connect to |
//! | `port` | 2 | port | required | port to connect to |
//! | `timeout` |  | seconds | `30` | deadline for the whole connect, resolution included, in seconds |
//! | `attemptDelay` |  | seconds | `0.25` | stagger between connection attempts (clamped to 0.01-2 s) |
//! | `attemptTimeout` |  | seconds |  | deadline for each attempt (default: only the overall timeout) |
//! | `bindAddress` |  | host |  | local IP for attempts of its own family |
//! <!-- /params -->
//!
//! Positional rules follow Twisted's `tcp:` client: two positional fields are host and port
//! and override `host=`/`port=`; one positional field is the port when `host=` is given.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use endpoints_hostname::HostnameEndpoint;
//! use endpoints_core::ClientEndpoint;
//!
//! let conn = HostnameEndpoint::new("example.com", 80).connect().await?;
//! println!("connected to {}", conn.peer_addr());
//! # Ok(()) }
//! ```
//!
//! Differences from Twisted's `HostnameEndpoint`: families are interleaved, a failed
//! attempt starts the next at once, `timeout` is an overall deadline (Twisted: per
//! attempt), the error lists every address, and cancelling is dropping the future.
//! Host names are passed to the resolver as given (no IDNA encoding).
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod connector;
mod resolve;

use std::net::IpAddr;

pub use client::{
    CLIENT_PARAMS, HostnameEndpoint, host_port_args, host_value, ip_value, port_taken_as_host,
};
pub use connector::{
    DEFAULT_ATTEMPT_DELAY, HappyEyeballs, HappyEyeballsError, MAX_ATTEMPT_DELAY, MIN_ATTEMPT_DELAY,
    RESOLUTION_DELAY,
};
pub use resolve::{Family, Resolver, StaticResolver, SystemResolver};

/// Parse an IP literal: IPv4, IPv6, or IPv6 in brackets (`[::1]`).
///
/// ```
/// use endpoints_hostname::ip_literal;
/// assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
/// assert_eq!(ip_literal("127.0.0.1"), Some([127, 0, 0, 1].into()));
/// assert_eq!(ip_literal("[127.0.0.1]"), None);
/// assert_eq!(ip_literal("localhost"), None);
/// ```
pub fn ip_literal(text: &str) -> Option<IpAddr> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    text.parse().ok()
}
