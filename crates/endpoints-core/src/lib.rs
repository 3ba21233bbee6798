//! The small, stable core of the `endpoints` framework: one-line descriptions such as
//! `tcp:port=8080:interface=127.0.0.1` turned into listeners and connections.
//!
//! This crate provides:
//!
//! * the description grammar: [`Description`] (parse, inspect, display) and [`escape`];
//! * the endpoint traits: [`ClientEndpoint`] (`connect`), [`ServerEndpoint`] (`listen`) and
//!   [`Listener`] (`accept`, `local_addr`, `close`);
//! * the connection types: [`Connection`], [`Address`], [`Extensions`], and [`Layer`], with
//!   which a wrapper lets callers reach the connection (and socket) beneath its stream;
//! * the errors: [`ParseError`] with an [`ErrorKind`] and a byte span, and
//!   [`EndpointIoError`] for I/O errors that name their endpoint;
//! * the plugin side: declared [`params`], the parameter extraction helper [`Args`], and the
//!   [`registry`] with the [`register_client!`] and [`register_server!`] macros;
//! * the [`TypePolicy`](registry::TypePolicy): which endpoint types a description may use,
//!   enforced at every nesting level (`registry::with_policy`, `registry::build_client_with`).
//!
//! It has no transport code, and nothing in it sleeps, spawns or logs: the runtime machinery
//! transports share (the accept-loop policy, the upgrade pool) is in `endpoints-util`.
//! Applications depend on the `endpoints` umbrella crate instead, which links the transports
//! and offers `endpoints::server("tcp:8080")` and friends. Depend on this crate to write a
//! transport of your own.
//!
//! # The grammar
//!
//! | rule | example | result |
//! |---|---|---|
//! | `:` separates fields; the first positional field is the type | `tcp:80` | type `tcp`, positional `80` |
//! | the first unescaped `=` in a field makes it a keyword | `a=b=c` | key `a`, value `b=c` |
//! | `\` makes the next character literal | `interface=\:\:1` | `::1` |
//! | empty fields are kept | `tcp:80:` | positionals `80` and `` |
//! | a repeated key: the last one counts | `y=1:y=2` | `y` is `2` |
//! | a trailing lone `\` | `a\` | [`ErrorKind::Syntax`] error |
//!
//! Nest a description inside a value by escaping it with [`escape`]:
//! `tls:host=db:port=5432:endpoint=unix\:/run/tunnel.sock`.
//!
//! # Writing a plugin
//!
//! A plugin declares its parameters, parses them with [`Args`], and registers a build
//! function. This one is a complete `tcpraw:` client type:
//!
//! ```
//! use std::io;
//! use std::fmt;
//! use endpoints_core::async_trait;
//! use endpoints_core::params::{Args, Param, ParamKind};
//! use endpoints_core::{ClientEndpoint, Connection, Description, ParseError, Operation, io_error};
//!
//! static PARAMS: &[Param] = &[
//!     Param::required("host", ParamKind::Host).at(0).help("IP address to connect to"),
//!     Param::required("port", ParamKind::Port).at(1).help("port to connect to"),
//! ];
//!
//! #[derive(Debug)]
//! struct TcpRaw { addr: std::net::SocketAddr, canonical: Description }
//!
//! impl fmt::Display for TcpRaw {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.canonical.fmt(f) }
//! }
//!
//! #[async_trait]
//! impl ClientEndpoint for TcpRaw {
//!     async fn connect(&self) -> io::Result<Connection> {
//!         let s = tokio::net::TcpStream::connect(self.addr)
//!             .await
//!             .map_err(|e| io_error(Operation::Connect, self, e))?;
//!         let (local, peer) = (s.local_addr()?.into(), s.peer_addr()?.into());
//!         Ok(Connection::new(s, local, peer))
//!     }
//! }
//!
//! fn build(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
//!     let args = Args::parse(d, PARAMS)?;
//!     let host = args.required("host")?;
//!     let ip: std::net::IpAddr = host.as_str().parse().map_err(|_| host.invalid("not an IP address"))?;
//!     let port = args.required("port")?.port()?;
//!     Ok(Box::new(TcpRaw { addr: (ip, port).into(), canonical: args.canonical() }))
//! }
//!
//! endpoints_core::register_client! {
//!     prefix: "tcpraw",
//!     summary: "connect to an IP address over TCP",
//!     params: PARAMS,
//!     build: build,
//! }
//!
//! # fn main() -> Result<(), ParseError> {
//! let d: Description = "TCPRAW:127.0.0.1:port=80".parse()?;
//! let endpoint = endpoints_core::registry::build_client(&d)?;
//! assert_eq!(endpoint.to_string(), "tcpraw:host=127.0.0.1:port=80");
//!
//! let e = endpoints_core::registry::build_client(&"tcpraw:127.0.0.1:prot=80".parse()?).unwrap_err();
//! assert_eq!(e.to_string(), "\
//! unknown parameter `prot` for `tcpraw`; did you mean `port`?
//!   tcpraw:127.0.0.1:prot=80
//!                    ^^^^");
//! # Ok(()) }
//! ```
//!
//! See `docs/writing-a-plugin.md` in the repository for the whole recipe, and the
//! `endpoints-conformance` crate for the checks every plugin should pass.
//!
//! # Crate feature flags
//!
//! None. The crate depends on `tokio` (the I/O traits only), `async-trait` and `inventory`.
//!
//! # Supported Rust versions
//!
//! The minimum is the workspace `rust-version` (1.89). Raising it is not a breaking change.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod address;
pub mod connection;
pub mod description;
pub mod endpoint;
pub mod error;
pub mod params;
pub mod registry;

pub use address::Address;
#[cfg(unix)]
pub use connection::Descriptors;
pub use connection::{
    Connection, Delivery, DeliveryFuture, EndsByItself, Extensions, Layer, Parts, Stream,
};
pub use description::{Description, Field, escape};
pub use endpoint::{ClientEndpoint, Listener, ServerEndpoint};
pub use error::{BoxError, EndpointIoError, ErrorKind, Operation, ParseError, io_error};
pub use params::{Args, Param, ParamKind, SplitAddress};
pub use registry::Side;

/// Re-exported so plugins implement the traits without depending on `async-trait` themselves.
pub use async_trait::async_trait;

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
