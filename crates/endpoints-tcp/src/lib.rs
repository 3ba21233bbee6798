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
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `port` | 1 | port | required | `0` picks a free port; the listener's description shows it |
//! | `interface` | 2 | IP | `""` (all IPv4) | IPv6 in brackets (`[::1]`) or escaped (`\:\:1`) |
//! | `backlog` | 3 | integer | `1024` | accept queue (Twisted: 50, which drops SYNs under load) |
//! | `reuseport` | | 0/1 | `0` | `SO_REUSEPORT` |
//! | `v6only` | | 0/1 | `0` | IPv6 interfaces only: `1` refuses IPv4-mapped clients |
//! | `nodelay` | | 0/1 | `0` | `TCP_NODELAY` on accepted connections |
//! | `keepalive` | | seconds | off | keepalive idle time on accepted connections |
//! | `recvbuf`, `sendbuf` | | bytes | system | socket buffer sizes |
//!
//! # `tcp:` client parameters
//!
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | name or IP literal |
//! | `port` | 2 | port | required | |
//! | `timeout` | | seconds | `30` | deadline for the whole connect |
//! | `attemptDelay` | | seconds | `0.25` | happy-eyeballs stagger |
//! | `attemptTimeout` | | seconds | none | deadline per attempt |
//! | `bindAddress` | | IP | none | local address for attempts of its family |
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
