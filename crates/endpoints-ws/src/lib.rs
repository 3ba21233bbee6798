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
//!   reading goes on until the peer's Close, or, between our own ends, sends an in-band end
//!   of data (below); a Close with another code than 1000, or an end
//!   without Close (1006), is a read error, not a clean end; pings are answered (one pong
//!   pending at most, so a ping flood queues nothing); `ping=` sends keepalive pings and
//!   fails reading when no pong comes within `pongTimeout=` (after our Close, when the
//!   peer's Close, or a message, does not come within it either); `maxMessage=` and `maxFrame=`
//!   (16 MiB each by default) bound what a peer can make us hold, fragments included, and a
//!   frame's declared length is checked before its payload is read; a read that fails sends
//!   the Close it calls for first (1009 past the limits, 1002 for a protocol error, 1007 for
//!   text that is not UTF-8, 1011 at `pongTimeout=`);
//! * Twisted `autobahn:` interop: when the subprotocol agreed on is `base64`, each write is
//!   one text message of Base64 and each message read is decoded (a binary message or bad
//!   Base64 is a read error); `binary` is the default mode. autobahn offers both and refuses
//!   a peer that offers neither: write `subprotocols=binary` (or `base64`) on either side.
//!
//! WebSocket has no half-close: a peer that receives Close answers with Close and sends
//! nothing more, so after our `shutdown()` only what the peer sent before its Close arrives.
//! Between our own ends there is one: our clients offer the extension
//! [`HALF_CLOSE`](stream::HALF_CLOSE) (`x-endpoints-half-close`) and our servers answer it
//! (other peers ignore it); then `shutdown()` sends an empty message, our end of data, the
//! peer's reads return 0 and its writes go on, as on a TCP socket; the second end is a
//! Close (1000). As on TLS, a clean end is a `shutdown()`: a stream dropped without one
//! (a failed relay, a reset) ends without Close, which the peer reads as an error (1006),
//! never as a complete transfer. [`WsInfo::half_close`] says whether it was agreed on.
//! Behind a proxy that sends a PROXY header, write `ws:haproxy:tcp:...` (the header comes
//! first on the socket); `haproxy:ws:` would read it after the upgrade. On the client side
//! `haproxy:ws:`/`haproxy:wss:` send the header first, through the declared transport.
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
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | server host name or IP address |
//! | `port` | 2 | port | `80` | server port |
//! | `path` |  | text | `/` | request target: path and query (`/chat?room=1`) |
//! | `hostHeader` |  | text |  | `Host` header (default: host, and port unless it is the scheme's default) |
//! | `origin` |  | text |  | `Origin` header to send (`https://app.example`) |
//! | `subprotocols` |  | list |  | subprotocols to offer, in preference order (`Sec-WebSocket-Protocol`) |
//! | `headers` |  | list |  | extra request headers, `Name=value` comma-separated (`X-Team=a,X-Trace=1`) |
//! | `user` |  | text |  | user name for `Authorization: Basic` (with password=, passwordFile= or passwordEnv=) |
//! | `password` |  | text |  | password for Basic authentication (visible in `ps` and logs: prefer passwordFile= or passwordEnv=); shown as \*\*\* |
//! | `passwordFile` |  | path |  | read the Basic password from this file (one trailing newline is dropped) |
//! | `passwordEnv` |  | text |  | read the Basic password from this environment variable |
//! | `token` |  | text |  | bearer token for `Authorization: Bearer` (visible in `ps` and logs: prefer tokenFile= or tokenEnv=); shown as \*\*\* |
//! | `tokenFile` |  | path |  | read the bearer token from this file (one trailing newline is dropped) |
//! | `tokenEnv` |  | text |  | read the bearer token from this environment variable |
//! | `timeout` |  | seconds | `30` | deadline for connecting and the upgrade together, in seconds (0: none) |
//! | `endpoint` |  | description |  | connect through this client description instead of happy eyeballs (host and port then name the server in `Host`) |
//! | `bindAddress` |  | host |  | local IP for connection attempts of its family |
//! | `maxMessage` |  | integer | `16777216` | largest message accepted, in bytes (fragments included); a larger one ends the connection with Close 1009 |
//! | `maxFrame` |  | integer | `16777216` | largest frame accepted, in bytes, checked on its header before the payload is read |
//! | `ping` |  | seconds | `0` | send a ping after this many seconds without one, while the connection is read (0: never) |
//! | `pongTimeout` |  | seconds | `30` | with ping=: a pong must arrive within this many seconds, or reading fails |
//! <!-- /params -->
//!
//! `wss:` client:
//!
//! <!-- params: wss client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | server host name or IP address; verified against its certificate |
//! | `port` | 2 | port | `443` | server port |
//! | `path` |  | text | `/` | request target: path and query (`/chat?room=1`) |
//! | `hostHeader` |  | text |  | `Host` header (default: host, and port unless it is the scheme's default) |
//! | `origin` |  | text |  | `Origin` header to send (`https://app.example`) |
//! | `subprotocols` |  | list |  | subprotocols to offer, in preference order (`Sec-WebSocket-Protocol`) |
//! | `headers` |  | list |  | extra request headers, `Name=value` comma-separated (`X-Team=a,X-Trace=1`) |
//! | `user` |  | text |  | user name for `Authorization: Basic` (with password=, passwordFile= or passwordEnv=) |
//! | `password` |  | text |  | password for Basic authentication (visible in `ps` and logs: prefer passwordFile= or passwordEnv=); shown as \*\*\* |
//! | `passwordFile` |  | path |  | read the Basic password from this file (one trailing newline is dropped) |
//! | `passwordEnv` |  | text |  | read the Basic password from this environment variable |
//! | `token` |  | text |  | bearer token for `Authorization: Bearer` (visible in `ps` and logs: prefer tokenFile= or tokenEnv=); shown as \*\*\* |
//! | `tokenFile` |  | path |  | read the bearer token from this file (one trailing newline is dropped) |
//! | `tokenEnv` |  | text |  | read the bearer token from this environment variable |
//! | `timeout` |  | seconds | `30` | deadline for connecting and the upgrade together, in seconds (0: none) |
//! | `endpoint` |  | description |  | connect through this client description instead of happy eyeballs (host and port then name the server in `Host`) |
//! | `bindAddress` |  | host |  | local IP for connection attempts of its family |
//! | `trustRoots` |  | path |  | as tls:'s: CA certificates (directory or PEM file), `mozilla`, `system`, or `none` (with pin=); default: the platform's store, else Mozilla's roots |
//! | `pin` |  | list |  | as tls:'s: sha256/&lt;base64&gt; of the server's public key, comma-separated |
//! | `certificate` |  | path |  | as tls:'s: client certificate chain (PEM) |
//! | `privateKey` |  | path |  | as tls:'s: client key (PEM); default: the key in the certificate file |
//! | `sni` |  | host |  | as tls:'s: server name to send and verify (default: host) |
//! | `minVersion` |  | one of 1.2\|1.3 |  | as tls:'s: lowest TLS version |
//! | `maxMessage` |  | integer | `16777216` | largest message accepted, in bytes (fragments included); a larger one ends the connection with Close 1009 |
//! | `maxFrame` |  | integer | `16777216` | largest frame accepted, in bytes, checked on its header before the payload is read |
//! | `ping` |  | seconds | `0` | send a ping after this many seconds without one, while the connection is read (0: never) |
//! | `pongTimeout` |  | seconds | `30` | with ping=: a pong must arrive within this many seconds, or reading fails |
//! <!-- /params -->
//!
//! `ws:` server:
//!
//! <!-- params: ws server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `path` |  | text |  | accept upgrades for this path only (the query is ignored); others get 404 (default: any path) |
//! | `origins` |  | list |  | allowed `Origin` values, comma-separated (`https://app.example`); another Origin gets 403, a request without one (not a browser) passes |
//! | `subprotocols` |  | list |  | subprotocols served, in preference order: a client must offer one (else 400); the first it offers is chosen |
//! | `token` |  | text |  | require `Authorization: Bearer <token>` (else 401; visible in `ps`: prefer tokenFile= or tokenEnv=); shown as \*\*\* |
//! | `tokenFile` |  | path |  | read the required bearer token from this file (one trailing newline is dropped) |
//! | `tokenEnv` |  | text |  | read the required bearer token from this environment variable |
//! | `timeout` |  | seconds | `10` | deadline for a client's whole upgrade request, in seconds |
//! | `maxRequest` |  | integer | `16384` | largest upgrade request head, in bytes (larger: 431) |
//! | `maxPendingPerSource` |  | integer |  | upgrades (header read, handshake) in progress at once from one IP address once the pool is half full, 1-1024 (default 64); more wait (as many, within the deadline), then are closed |
//! | `maxMessage` |  | integer | `16777216` | largest message accepted, in bytes (fragments included); a larger one ends the connection with Close 1009 |
//! | `maxFrame` |  | integer | `16777216` | largest frame accepted, in bytes, checked on its header before the payload is read |
//! | `ping` |  | seconds | `0` | send a ping after this many seconds without one, while the connection is read (0: never) |
//! | `pongTimeout` |  | seconds | `30` | with ping=: a pong must arrive within this many seconds, or reading fails |
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
//! conn.shutdown().await?; // our end of data (a server of ours), else Close
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?; // ends cleanly at the server's end or Close (1000)
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
