//! `ws:` and `wss:`: WebSocket clients and servers over any description, carrying a byte
//! stream as binary messages.
//!
//! This crate provides:
//!
//! * the `ws:` client, over happy eyeballs (`ws:example.com:8080:path=/tunnel`) or any client
//!   description (`endpoint=`: a unix socket, a `socks5:`/`httpconnect:` hop); the `wss:`
//!   client, over `tls:` built through the registry with every trust option of `tls:`
//!   (`trustRoots`, `pin`, `certificate`, `privateKey`, `sni`, `minVersion`); both send the
//!   path, `Host` (`hostHeader=`), `Origin`, subprotocols, extra headers and an
//!   `Authorization` header (Basic from `user=` and `password=`/`passwordFile=`/`passwordEnv=`,
//!   or Bearer from `token=`/`tokenFile=`/`tokenEnv=`; `Display` shows `***`, `Debug` hides
//!   them);
//! * the `ws:` server wrapper over any server description (`ws:tcp:8080`,
//!   `ws:path=/tunnel:unix:/run/ws.sock`, `ws:tls:/etc/certs:443` for `wss`, `ws:haproxy:tcp:80`
//!   behind a proxy): the upgrade is read before `accept` returns, off the accept loop (the
//!   upgrade pool of `endpoints-util`: `timeout=` deadline, `maxPendingPerSource=` per-address
//!   cap, `maxRequest=` bytes); `path=`, an `origins=` allow-list, required `subprotocols=`,
//!   a required bearer `token=`; a request that fails them is answered at once with a short
//!   HTTP error (404, 426, 403, 401, 400, 431) and closed;
//! * [`WsInfo`] in every connection's extensions: the path, the subprotocol chosen and the
//!   peer's headers (the request's on a server; `Debug` hides credentials and cookies);
//! * stream semantics ([`WsStream`]): each write is one binary message of at most
//!   [`MAX_WRITE`](stream::MAX_WRITE) bytes, no text or newline conversion; binary and text
//!   payloads read are concatenated; shutting down the write side sends Close (1000) and
//!   reading goes on until the peer's Close; a Close with another code than 1000, or an end
//!   without Close (1006), is a read error, not a clean end; pings are answered (one pong
//!   pending at most, so a ping flood queues nothing); `ping=` sends keepalive pings and
//!   fails reading when no pong comes within `pongTimeout=`; `maxMessage=` and `maxFrame=`
//!   (16 MiB each by default) bound what a peer can make us hold, fragments included, and a
//!   frame's declared length is checked before its payload is read.
//!
//! The framing is `tokio-tungstenite`'s; the HTTP upgrade heads are read here (`httparse`),
//! with a size bound and our own answers.
//!
//! # Grammar
//!
//! Client: `ws:<host>[:<port>][:option=value...]`, `wss:` alike (ports 80 and 443 by
//! default). Server: `ws:[option=value:...]<inner server description>`.
//!
//! `ws:` client:
//!
//! <!-- params: ws client -->
//! <!-- /params -->
//!
//! `wss:` client:
//!
//! <!-- params: wss client -->
//! <!-- /params -->
//!
//! `ws:` server:
//!
//! <!-- params: ws server -->
//! <!-- /params -->
//!
//! ```text
//! ws:example.com:8080:path=/tunnel
//! wss:example.com:path=/chat:subprotocols=chat.v2:tokenEnv=CHAT_TOKEN
//! wss:internal:8443:trustRoots=/etc/ca.pem:endpoint=unix\:/run/front.sock
//! ws:path=/tunnel:origins=https\://app.example:tcp:8080
//! ws:tokenFile=/run/secrets/ws:tls:/etc/letsencrypt/live:443
//! ```
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let d = "ws:127.0.0.1:8080:path=/echo".parse()?;
//! let mut conn = endpoints_core::registry::build_client(&d)?.connect().await?;
//! conn.write_all(b"hello").await?; // one binary message
//! conn.shutdown().await?; // Close; the echo still arrives
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?; // ends cleanly at the server's Close (1000)
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None. `wss:` needs the `tls:` client linked (`endpoints-tls`; the umbrella's feature `tls`).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod common;
mod http;
pub mod params;
mod server;
pub mod stream;

// Linked for the default transport, built through the registry.
use endpoints_hostname as _;

pub use client::{Authorization, Request, WsClientEndpoint};
pub use http::WsInfo;
pub use server::{Policy, WsServerEndpoint};
pub use stream::{StreamSettings, WsStream};
