//! Listen and connect from one-line descriptions, as in Twisted's endpoints:
//!
//! ```text
//! tcp:port=8080:interface=127.0.0.1     tcp6:443:interface=[::1]     hostname:db.internal:5432
//! ```
//!
//! Give your program one `--listen` or `--connect` flag and let the user choose the
//! transport. This crate provides:
//!
//! * the front doors: [`server`] and [`client`] (parse and build, no I/O; [`server_with`] and
//!   [`client_with`] under a [`TypePolicy`](registry::TypePolicy)), [`listen`] and
//!   [`connect`] (build and go), [`types`] (what is linked in);
//! * the transports, one cargo feature each, re-exported as modules ([`tcp`], [`tcp6`],
//!   [`hostname`], [`unix`], [`systemd`], [`tls`], [`proxy`], [`stdio`], [`tunnel`], [`acme`],
//!   [`exec`], [`ws`], [`tor`], [`ssh`]), so their
//!   registrations are linked;
//! * [`ServerDescription`] / [`ClientDescription`]: checked descriptions for argument parsers
//!   and config files;
//! * [`builders`]: the same endpoints built in code (`TcpServer::new(8080).interface(ip)`,
//!   `Hostname::new(host, port)`, `tls::wrap_client(TlsOptions::new(host), inner)`,
//!   `proxy::wrap_server(inner)`, `proxy::wrap_client(inner)`; a builder for every type),
//!   whose `Display` is the description;
//! * [`service`]: a reconnecting [`service::ClientService`] with Twisted's backoff (failures
//!   logged at WARN once per series, [`last_error`](service::ClientService::last_error),
//!   [`on_failure`](service::ClientService::on_failure)), a [`service::ServerService`] that
//!   takes text, [`ServerDescription`]s or endpoints and shuts down gracefully (handlers get a
//!   [`service::Shutdown`] signal), and axum / hyper-util integration (handlers see the whole
//!   connection through `ConnectInfo<ConnectionInfo>`);
//! * everything from [`endpoints_core`]: [`Description`], [`Connection`], [`Listener`],
//!   [`ParseError`], ...
//!
//! Applications depend on this crate. Transport authors depend on `endpoints-core` only.
//!
//! # Endpoint types
//!
//! <!-- types -->
//! | prefix | side | what | parameters (positional ones first; defaults) | crate |
//! |---|---|---|---|---|
//! | `acme` | server | TLS with certificates obtained and renewed by ACME (Let's Encrypt), TLS-ALPN-01 on the same socket, over any server endpoint | `domains`, `cache`, `contact`, `directory` (`letsencrypt`), `trustRoots`, `alpn`, `minVersion` (`1.2`), `clientCA`, `requireClientCert` (`1`), `handshakeTimeout` (`10`), `retry` (`60`), `maxPendingPerSource` | `endpoints-acme` |
//! | `exec` | client | run a program: the connection is its stdin and stdout, its exit status ends the stream (no shell) | `program`, `env`, `unsetEnv`, `clearEnv` (`0`), `cwd`, `stderr` (`log`), `grace` (`5`) | `endpoints-exec` |
//! | `fd` | server | adopt an inherited listening socket (TCP or unix) by descriptor number or name | `fd`, `name` | `endpoints-systemd` |
//! | `haproxy` | client | send a PROXY protocol header first on every connection of any client endpoint | `version` (`1`) | `endpoints-proxy` |
//! | `haproxy` | server | read a PROXY protocol v1/v2 header on every connection of any server endpoint | `timeout` (`5`), `maxHeader` (`4096`), `trusted`, `untrusted` (`reject`), `maxPendingPerSource` | `endpoints-proxy` |
//! | `hostname` | client | connect to a host name with happy eyeballs (RFC 8305) | `host`, `port`, `timeout` (`30`), `attemptDelay` (`0.25`), `attemptTimeout`, `bindAddress` | `endpoints-hostname` |
//! | `httpconnect` | client | connect through an HTTP proxy's CONNECT method (Basic authentication) reached by any client description | `host`, `port`, `proxy`, `user`, `password`, `passwordFile`, `passwordEnv`, `timeout` (`30`) | `endpoints-tunnel` |
//! | `onion` | server | a v3 onion service added through Tor's control port, forwarding to a private local listener | `port`, `controlPort`, `controlPasswordFile`, `privateKeyFile`, `hiddenServiceDir`, `version` (`3`), `clientAuth`, `local` (`unix`), `localPort`, `waitPublished` (`1`), `timeout` (`180`), `halfClose` (`tor`), `launch`, `torBinary`, `dataDirectory` | `endpoints-tor` |
//! | `socks5` | client | connect through a SOCKS5 proxy (RFC 1928/1929) reached by any client description; host names resolved by the proxy | `host`, `port`, `proxy`, `user`, `password`, `passwordFile`, `passwordEnv`, `resolve` (`remote`), `timeout` (`30`) | `endpoints-tunnel` |
//! | `ssh` | client | a forward (host:port or unix socket) or a command through an SSH server, over happy eyeballs or any client endpoint | `host`, `port` (`22`), `forward`, `command`, `username`, `keys`, `passphraseFile`, `passphraseEnv`, `agent` (`yes`), `knownHosts`, `fingerprint`, `endpoint`, `bindAddress`, `timeout` (`30`), `keepalive` (`15`), `keepaliveMax` (`3`), `idleTimeout` (`60`) | `endpoints-ssh` |
//! | `ssh` | server | listen through an SSH server (ssh -R: tcpip-forward or a unix socket), each forwarded channel a connection | `host`, `port` (`22`), `listen`, `username`, `keys`, `passphraseFile`, `passphraseEnv`, `agent` (`yes`), `knownHosts`, `fingerprint`, `endpoint`, `bindAddress`, `timeout` (`30`), `keepalive` (`15`), `keepaliveMax` (`3`) | `endpoints-ssh` |
//! | `ssl` | client | legacy Twisted TLS client; verifies certificates by default (Twisted did not) | `host`, `port`, `timeout` (`30`), `bindAddress`, `certKey`, `privateKey`, `caCertsDir`, `hostname`, `endpoint` | `endpoints-tls` |
//! | `ssl` | server | TLS server from a key and certificate chain (PEM), over TCP or any server endpoint | `port`, `privateKey` (`server.pem`), `certKey`, `sslmethod`, `interface` (`""`), `backlog` (`1024`), `extraCertChain`, `dhParameters`, `clientCA`, `requireClientCert`, `alpn`, `minVersion`, `handshakeTimeout` (`10`), `endpoint`, `maxPendingPerSource` | `endpoints-tls` |
//! | `stdio` | server | one connection made of stdin and stdout (inetd, ssh ProxyCommand, Accept=yes) | none | `endpoints-stdio` |
//! | `systemd` | server | adopt a listening socket passed by systemd socket activation | `domain`, `index`, `name` | `endpoints-systemd` |
//! | `tcp` | client | connect over TCP; host names use happy eyeballs (RFC 8305) | `host`, `port`, `timeout` (`30`), `attemptDelay` (`0.25`), `attemptTimeout`, `bindAddress` | `endpoints-tcp` |
//! | `tcp` | server | listen on a TCP port (IPv4 by default; any IP literal as interface) | `port`, `interface` (`""`), `backlog` (`1024`), `reuseport` (`0`), `v6only`, `nodelay` (`0`), `keepalive`, `recvbuf`, `sendbuf` | `endpoints-tcp` |
//! | `tcp6` | server | listen on a TCP port over IPv6 (dual stack unless v6only=1) | `port`, `backlog` (`1024`), `interface` (`::`), `reuseport` (`0`), `v6only` (`0`), `nodelay` (`0`), `keepalive`, `recvbuf`, `sendbuf` | `endpoints-tcp6` |
//! | `tls` | client | TLS over happy eyeballs or any client endpoint; certificates always verified | `host`, `port`, `timeout` (`30`), `bindAddress`, `certificate`, `privateKey`, `trustRoots`, `pin`, `endpoint`, `alpn`, `sni`, `minVersion` | `endpoints-tls` |
//! | `tls` | server | TLS server choosing its certificate by SNI from a directory of PEM files | `path`, `port` (`443`), `backlog` (`1024`), `interface` (`::`), `clientCA`, `requireClientCert`, `alpn`, `minVersion`, `handshakeTimeout` (`10`), `endpoint`, `maxPendingPerSource` | `endpoints-tls` |
//! | `tor` | client | connect through Tor's SOCKS port; names (and NAME.onion) resolved by Tor, never here | `host`, `port`, `socksPort` (`9050`), `socksHostname`, `control`, `controlPasswordFile`, `socksUsername`, `socksPassword`, `timeout` (`120`), `halfClose` (`tor`), `launch`, `torBinary`, `dataDirectory` | `endpoints-tor` |
//! | `unix` | client | connect to a unix socket | `path`, `timeout` (`30`), `lockfile` (`0`), `checkPID` | `endpoints-unix` |
//! | `unix` | server | listen on a unix socket (mode set before the file exists; flock-guarded) | `address`, `mode` (`666`), `backlog` (`1024`), `lockfile` (`1`), `owner`, `group` | `endpoints-unix` |
//! | `ws` | client | WebSocket client (binary messages) over happy eyeballs or any client endpoint | `host`, `port` (`80`), `path` (`/`), `hostHeader`, `origin`, `subprotocols`, `headers`, `user`, `password`, `passwordFile`, `passwordEnv`, `token`, `tokenFile`, `tokenEnv`, `timeout` (`30`), `endpoint`, `bindAddress`, `maxMessage` (`16777216`), `maxFrame` (`16777216`), `ping` (`0`), `pongTimeout` (`30`) | `endpoints-ws` |
//! | `ws` | server | WebSocket server (binary messages) over any server endpoint; the upgrade read off the accept loop | `path`, `origins`, `subprotocols`, `token`, `tokenFile`, `tokenEnv`, `timeout` (`10`), `maxRequest` (`16384`), `maxPendingPerSource`, `maxMessage` (`16777216`), `maxFrame` (`16777216`), `ping` (`0`), `pongTimeout` (`30`) | `endpoints-ws` |
//! | `wss` | client | WebSocket client over TLS (tls:'s trust options) over happy eyeballs or any client endpoint | `host`, `port` (`443`), `path` (`/`), `hostHeader`, `origin`, `subprotocols`, `headers`, `user`, `password`, `passwordFile`, `passwordEnv`, `token`, `tokenFile`, `tokenEnv`, `timeout` (`30`), `endpoint`, `bindAddress`, `trustRoots`, `pin`, `certificate`, `privateKey`, `sni`, `minVersion`, `maxMessage` (`16777216`), `maxFrame` (`16777216`), `ping` (`0`), `pongTimeout` (`30`) | `endpoints-ws` |
//! <!-- /types -->
//!
//! Each transport crate's documentation has the full table. `endpoints types` lists what a
//! build contains, with help for every parameter (see [`types`]).
//!
//! # Example
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), endpoints::Error> {
//! let mut listener = endpoints::listen("tcp:0:interface=127.0.0.1").await?;
//! println!("listening on {listener}"); // tcp:port=40123:interface=127.0.0.1:...
//! let port = listener.local_addr()?.ip().map_or(0, |a| a.port());
//!
//! let target = format!("tcp:localhost:{port}");
//! let (client, server) = tokio::join!(endpoints::connect(&target), listener.accept());
//! client?.write_all(b"hello").await?;
//! let mut buf = [0; 5];
//! server?.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//!
//! // Mistakes are reported precisely:
//! let err = endpoints::server("tcp:prot=80").unwrap_err();
//! assert_eq!(err.to_string(), "\
//! unknown parameter `prot` for `tcp`; did you mean `port`?
//!   tcp:prot=80
//!       ^^^^");
//! # Ok(()) }
//! ```
//!
//! # Built in code or from text
//!
//! The first way of Twisted's howto is to construct an endpoint; strings are the flexible
//! second way. Both give the same endpoint:
//!
//! ```
//! # #[cfg(all(feature = "tcp", feature = "proxy"))] {
//! use endpoints::builders::{ServerBuilder, TcpServer, proxy};
//!
//! let in_code = proxy::wrap_server(TcpServer::new(8080).interface([127, 0, 0, 1].into()))
//!     .trusted(["10.0.0.0/8"]);
//! let as_text = endpoints::server("haproxy:trusted=10.0.0.0/8:tcp:8080:interface=127.0.0.1")
//!     .expect("builds");
//! assert_eq!(in_code.build().expect("builds").to_string(), as_text.to_string());
//! # }
//! ```
//!
//! # Crate feature flags
//!
//! * `full` (default): every transport that builds on Linux.
//! * `tcp`: `tcp:` server and client (enables `hostname`).
//! * `tcp6`: `tcp6:` server (enables `tcp`).
//! * `hostname`: `hostname:` client, RFC 8305 happy eyeballs.
//! * `unix`: `unix:` server and client (peer credentials, flock-guarded socket files).
//! * `tls`: `tls:` and `ssl:` clients and servers with rustls (ring); enables `tcp`.
//! * `proxy`: the `haproxy:` PROXY protocol wrapper (v1/v2) and sender.
//! * `tunnel`: the `socks5:` and `httpconnect:` clients (through a proxy).
//! * `tor`: the `tor:` client and `onion:` server, through a Tor daemon's SOCKS and control
//!   ports (enables `tcp` and `unix`).
//! * `acme`: the `acme:` server, certificates from Let's Encrypt or any ACME CA, obtained
//!   and renewed by the listener (TLS-ALPN-01); enables `tls`.
//! * `ws`: the `ws:`/`wss:` WebSocket clients and the `ws:` server over any description
//!   (bytes as binary messages); `wss:` also needs `tls`.
//! * `ssh`: the `ssh:` client: a forward (host and port, or a unix socket) or a command through
//!   an SSH server, connections sharing one session; enables `hostname`.
//! * `axum` (not in `full`): `service::AxumListener`, so `axum::serve` runs on any listener;
//!   `service::ConnectionInfo` as connect info; `service::serve_axum` for several listeners, `service::serve_axum_with_shutdown` to
//!   stop on a signal and drain.
//! * `tonic` (not in `full`): `service::tonic_incoming`, for `Server::serve_with_incoming`.
//! * `stdio`: the `stdio:` server (one connection of stdin and stdout).
//! * `exec`: the `exec:` client (a program per connection, its stdin and stdout; Unix). A
//!   description can then run programs: refuse `exec` in descriptions from someone you do
//!   not trust (`registry::TypePolicy`, docs/security.md).
//! * `clap` (not in `full`): [`ServerDescription`] and [`ClientDescription`] as clap argument
//!   types, validated while arguments are parsed (`#[arg(long)] listen: ServerDescription`).
//! * `serde` (not in `full`): the same types (de)serialized as strings, for config files.
//! * `systemd`: `systemd:` server (socket activation; enables `tcp` and `unix`). Call
//!   `endpoints::systemd::init()` first thing in `main`.
//!
//! # Third-party endpoint types
//!
//! A crate that registers a prefix with `endpoints_core::register_server!` is usable from
//! [`server`] as soon as it is linked: name it once (`use endpoints_vsock as _;`).
//!
//! # Supported Rust versions
//!
//! The minimum is the workspace `rust-version` (1.89). Raising it is not a breaking change.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod builders;
mod descriptions;
pub mod service;

// The README's Rust blocks, compiled as doctests (`cargo test -p endpoints --doc --features
// axum,tonic`), so that a renamed or changed function breaks the build rather than the README.
#[cfg(all(
    doctest,
    feature = "tcp6",
    feature = "unix",
    feature = "tls",
    feature = "proxy",
    feature = "axum",
    feature = "tonic"
))]
#[doc = include_str!("../../../README.md")]
mod readme {}

pub use descriptions::{ClientDescription, ServerDescription};

use std::fmt;
use std::io;

#[cfg(unix)]
pub use endpoints_core::Descriptors;
/// Secret values hidden in description text shown to people (a caret line, a log line).
pub use endpoints_core::params::{Redacted, Secrecy, redact};
pub use endpoints_core::{
    Address, Args, ClientEndpoint, Connection, Delivery, Description, EndpointIoError,
    EndsByItself, ErrorKind, Extensions, Layer, Listener, Param, ParamKind, ParseError,
    ServerEndpoint, Side, Stream, async_trait, escape, register_client, register_server, registry,
};

/// The `acme:` server: TLS with ACME certificates (feature `acme`).
#[cfg(feature = "acme")]
pub use endpoints_acme as acme;

/// The `exec:` client: a program's stdin and stdout as a connection (feature `exec`).
#[cfg(feature = "exec")]
pub use endpoints_exec as exec;

/// The `hostname:` client and the happy-eyeballs connector (feature `hostname`).
#[cfg(feature = "hostname")]
pub use endpoints_hostname as hostname;
/// The `haproxy:` PROXY protocol wrapper and sender (feature `proxy`).
#[cfg(feature = "proxy")]
pub use endpoints_proxy as proxy;
/// The `ssh:` client (feature `ssh`).
#[cfg(feature = "ssh")]
pub use endpoints_ssh as ssh;
/// The `stdio:` server (feature `stdio`).
#[cfg(feature = "stdio")]
pub use endpoints_stdio as stdio;
/// The `systemd:` server, [`systemd::init`] and `sd_notify` (feature `systemd`).
#[cfg(feature = "systemd")]
pub use endpoints_systemd as systemd;
/// The `tcp:` server and client (feature `tcp`).
#[cfg(feature = "tcp")]
pub use endpoints_tcp as tcp;
/// The `tcp6:` server (feature `tcp6`).
#[cfg(feature = "tcp6")]
pub use endpoints_tcp6 as tcp6;
/// The `tls:` and `ssl:` clients and servers (feature `tls`).
#[cfg(feature = "tls")]
pub use endpoints_tls as tls;
/// The `tor:` client and `onion:` server (feature `tor`).
#[cfg(feature = "tor")]
pub use endpoints_tor as tor;
/// The `socks5:` and `httpconnect:` clients (feature `tunnel`).
#[cfg(feature = "tunnel")]
pub use endpoints_tunnel as tunnel;
/// The runtime machinery transports share: the accept-loop policy
/// ([`util::AcceptBackoff`]) and the upgrade pool ([`util::UpgradeListener`]), for writing a
/// transport or a wrapper of your own.
pub use endpoints_util as util;
/// The `ws:`/`wss:` WebSocket clients and the `ws:` server (feature `ws`).
#[cfg(feature = "ws")]
pub use endpoints_ws as ws;

/// The `unix:` server and client (feature `unix`).
#[cfg(feature = "unix")]
pub use endpoints_unix as unix;

/// Parse `description` and build a server endpoint (no I/O yet).
pub fn server(description: &str) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    registry::build_server(&description.parse()?)
}

/// Parse `description` and build a client endpoint (no I/O yet).
pub fn client(description: &str) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    registry::build_client(&description.parse()?)
}

/// [`server`] with `policy` in force: a type it refuses, at any nesting level, is a
/// [`NotAllowed`](ErrorKind::NotAllowed) error naming it (`TypePolicy::deny(["exec"])` for a
/// description from someone you do not trust).
pub fn server_with(
    description: &str,
    policy: &registry::TypePolicy,
) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    registry::build_server_with(&description.parse()?, policy)
}

/// [`client`] with `policy` in force (see [`server_with`]).
pub fn client_with(
    description: &str,
    policy: &registry::TypePolicy,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    registry::build_client_with(&description.parse()?, policy)
}

/// Build a server endpoint from `description` and start listening.
pub async fn listen(description: &str) -> Result<Box<dyn Listener>, Error> {
    Ok(server(description)?.listen().await?)
}

/// Build a client endpoint from `description` and connect.
pub async fn connect(description: &str) -> Result<Connection, Error> {
    Ok(client(description)?.connect().await?)
}

/// Every endpoint type linked into this program, sorted by prefix then side.
pub fn types() -> Vec<&'static registry::Plugin> {
    let mut v: Vec<_> = registry::plugins().collect();
    v.sort_by_key(|p| (p.prefix().to_ascii_lowercase(), p.side().as_str()));
    v
}

/// A description that does not build, or I/O that failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The description is wrong.
    Parse(ParseError),
    /// Listening or connecting failed; the message names the endpoint.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => e.fmt(f),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Parse(e) => e.source(),
            Self::Io(e) => e.source(),
        }
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}
