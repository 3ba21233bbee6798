//! `tcp6:` server endpoint: TCP on IPv6, dual stack by default.
//!
//! This crate provides the `tcp6:` server prefix (registered when the crate is linked). The
//! listener is `endpoints-tcp`'s; only the parameter order and defaults differ, as in
//! Twisted (`tcp6:` is port, **backlog**, interface; `tcp:` is port, interface, backlog).
//!
//! # `tcp6:` parameters
//!
//! <!-- params: tcp6 server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `port` | 1 | port | required | port to listen on (0: any free port) |
//! | `backlog` | 2 | integer | `1024` | accept queue length |
//! | `interface` | 3 | host | `::` | IP address to bind (default: every IPv6 address, and IPv4 unless v6only=1) |
//! | `reuseport` |  | 0/1 | `0` | SO\_REUSEPORT: let several listeners share the port |
//! | `v6only` |  | 0/1 | `0` | 1 accepts IPv6 only; 0 also accepts IPv4 on `::` (dual stack) |
//! | `nodelay` |  | 0/1 | `0` | TCP\_NODELAY on accepted connections |
//! | `keepalive` |  | seconds |  | TCP keepalive idle time on accepted connections, in seconds |
//! | `recvbuf` |  | integer |  | SO\_RCVBUF in bytes |
//! | `sendbuf` |  | integer |  | SO\_SNDBUF in bytes |
//! <!-- /params -->
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_core::registry::build_server;
//! use endpoints_tcp6 as _;
//!
//! let endpoint = build_server(&"tcp6:0:interface=[::1]".parse()?)?;
//! assert_eq!(endpoint.to_string(), r"tcp6:port=0:backlog=1024:interface=\:\:1:reuseport=0:v6only=0:nodelay=0");
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

use std::net::{IpAddr, Ipv6Addr};

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{Description, ParseError, ServerEndpoint};
use endpoints_tcp::{
    OPT_KEEPALIVE, OPT_NODELAY, OPT_RECVBUF, OPT_REUSEPORT, OPT_SENDBUF, server_from_args,
};

/// Parameters of the `tcp6:` server.
pub static SERVER_PARAMS: &[Param] = &[
    Param::required("port", ParamKind::Port)
        .at(0)
        .help("port to listen on (0: any free port)"),
    Param::optional("backlog", ParamKind::UInt)
        .at(1)
        .default("1024")
        .help("accept queue length"),
    Param::optional("interface", ParamKind::Host)
        .at(2)
        .default("::")
        .help("IP address to bind (default: every IPv6 address, and IPv4 unless v6only=1)"),
    OPT_REUSEPORT,
    Param::optional("v6only", ParamKind::Bool)
        .default("0")
        .help("1 accepts IPv6 only; 0 also accepts IPv4 on `::` (dual stack)"),
    OPT_NODELAY,
    OPT_KEEPALIVE,
    OPT_RECVBUF,
    OPT_SENDBUF,
];

fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, SERVER_PARAMS)?;
    Ok(Box::new(server_from_args(
        &args,
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    )?))
}

endpoints_core::register_server! {
    prefix: "tcp6",
    summary: "listen on a TCP port over IPv6 (dual stack unless v6only=1)",
    params: SERVER_PARAMS,
    build: build_server,
}
