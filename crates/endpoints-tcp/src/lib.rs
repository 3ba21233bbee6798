//! `tcp:` server and client endpoints.
//!
//! This crate provides:
//!
//! * [`TcpServerEndpoint`] and [`TcpListener`]: listen with explicit socket options and an
//!   accept loop that never spins and never goes deaf (see `endpoints_util::accept`);
//! * the `tcp:` server and client prefixes, registered when the crate is linked;
//! * [`server_from_args`] and the shared option declarations, used by `tcp6:`.
//!
//! The `tcp:` client is the `hostname:` client of `endpoints-hostname` under Twisted's name:
//! IP literals connect directly, host names go through happy eyeballs (Twisted issue 7387).
//!
//! # `tcp:` server parameters
//!
//! <!-- params: tcp server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `port` | 1 | port | required | port to listen on (0: any free port) |
//! | `interface` | 2 | host | `""` | IP address to bind (empty: every IPv4 address) |
//! | `backlog` | 3 | integer | `1024` | accept queue length |
//! | `reuseport` |  | 0/1 | `0` | SO\_REUSEPORT: let several listeners share the port |
//! | `v6only` |  | 0/1 |  | for an IPv6 interface: 1 accepts IPv6 only, 0 also IPv4 (default 0) |
//! | `nodelay` |  | 0/1 | `0` | TCP\_NODELAY on accepted connections |
//! | `keepalive` |  | seconds |  | TCP keepalive idle time on accepted connections, in seconds |
//! | `recvbuf` |  | integer |  | SO\_RCVBUF in bytes |
//! | `sendbuf` |  | integer |  | SO\_SNDBUF in bytes |
//! <!-- /params -->
//!
//! # `tcp:` client parameters
//!
//! <!-- params: tcp client -->
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
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_core::registry::{build_client, build_server};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use endpoints_tcp as _; // link the registrations
//!
//! let mut listener = build_server(&"tcp:0:interface=127.0.0.1".parse()?)?.listen().await?;
//! let port = listener.local_addr()?.ip().map(|a| a.port()).unwrap_or_default();
//! assert_eq!(listener.to_string(), format!("tcp:port={port}:interface=127.0.0.1:backlog=1024:reuseport=0:nodelay=0"));
//!
//! let client = build_client(&format!("tcp:127.0.0.1:{port}").parse()?)?;
//! let (mut a, b) = tokio::join!(client.connect(), listener.accept());
//! a.as_mut().map_err(|e| e.to_string())?.write_all(b"hi").await?;
//! let mut buf = [0; 2];
//! b?.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hi");
//! listener.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod listener;
mod parse;
mod server;

pub use listener::TcpListener;
pub use parse::{
    OPT_KEEPALIVE, OPT_NODELAY, OPT_RECVBUF, OPT_REUSEPORT, OPT_SENDBUF, OPT_V6ONLY, SERVER_PARAMS,
    server_from_args,
};
pub use server::{DEFAULT_BACKLOG, TcpServerConfig, TcpServerEndpoint};
