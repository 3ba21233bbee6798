//! The parameter tables of `ws:` and `wss:` (client) and `ws:` (server), and how the clients
//! declare their transport to the registry. The builders are in `client.rs` and `server.rs`.

use endpoints_core::params::{Param, ParamKind};
use endpoints_core::registry::Transport;

/// Largest message accepted by default (16 MiB): a peer cannot make a connection hold more.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;
/// Largest frame accepted by default (16 MiB), checked on the frame's header, before its
/// payload is read.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// The stream options both sides take.
const STREAM: [Param; 4] = [
    Param::optional("maxMessage", ParamKind::UInt)
        .default("16777216")
        .help("largest message accepted, in bytes (fragments included); a larger one ends the connection with Close 1009"),
    Param::optional("maxFrame", ParamKind::UInt)
        .default("16777216")
        .help("largest frame accepted, in bytes, checked on its header before the payload is read"),
    Param::optional("ping", ParamKind::Duration)
        .default("0")
        .help("send a ping after this many seconds without one, while the connection is read (0: never)"),
    Param::optional("pongTimeout", ParamKind::Duration)
        .default("30")
        .help("with ping=: a pong must arrive within this many seconds, or reading fails"),
];

/// The client options both `ws:` and `wss:` take, after `host` and `port`.
const CLIENT: [Param; 14] = [
    Param::optional("path", ParamKind::Text)
        .default("/")
        .help("request target: path and query (`/chat?room=1`)"),
    Param::optional("hostHeader", ParamKind::Text)
        .help("`Host` header (default: host, and port unless it is the scheme's default)"),
    Param::optional("origin", ParamKind::Text).help("`Origin` header to send (`https://app.example`)"),
    Param::optional("subprotocols", ParamKind::List)
        .help("subprotocols to offer, in preference order (`Sec-WebSocket-Protocol`)"),
    Param::optional("headers", ParamKind::List)
        .help("extra request headers, `Name=value` comma-separated (`X-Team=a,X-Trace=1`)"),
    Param::optional("user", ParamKind::Text)
        .help("user name for `Authorization: Basic` (with password=, passwordFile= or passwordEnv=)"),
    Param::optional("password", ParamKind::Text).secret()
        .help("password for Basic authentication (visible in `ps` and logs: prefer passwordFile= or passwordEnv=); shown as ***"),
    Param::optional("passwordFile", ParamKind::Path)
        .help("read the Basic password from this file (one trailing newline is dropped)"),
    Param::optional("passwordEnv", ParamKind::Text)
        .help("read the Basic password from this environment variable"),
    Param::optional("token", ParamKind::Text).secret()
        .help("bearer token for `Authorization: Bearer` (visible in `ps` and logs: prefer tokenFile= or tokenEnv=); shown as ***"),
    Param::optional("tokenFile", ParamKind::Path)
        .help("read the bearer token from this file (one trailing newline is dropped)"),
    Param::optional("tokenEnv", ParamKind::Text)
        .help("read the bearer token from this environment variable"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("deadline for connecting and the upgrade together, in seconds (0: none)"),
    Param::optional("endpoint", ParamKind::Description).help(
        "connect through this client description instead of happy eyeballs (host and port then name the server in `Host`)",
    ),
];

/// Parameters of the `ws:` client.
pub static WS_CLIENT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("server host name or IP address"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("80")
        .help("server port"),
    CLIENT[0],
    CLIENT[1],
    CLIENT[2],
    CLIENT[3],
    CLIENT[4],
    CLIENT[5],
    CLIENT[6],
    CLIENT[7],
    CLIENT[8],
    CLIENT[9],
    CLIENT[10],
    CLIENT[11],
    CLIENT[12],
    CLIENT[13],
    Param::optional("bindAddress", ParamKind::Host)
        .help("local IP for connection attempts of its family"),
    STREAM[0],
    STREAM[1],
    STREAM[2],
    STREAM[3],
];

/// The `tls:` client parameters `wss:` passes on, under the same names (its trust, identity
/// and version options). A test checks that `tls:` still declares each of them.
pub const TLS_PASSED: &[&str] = &[
    "trustRoots",
    "pin",
    "certificate",
    "privateKey",
    "sni",
    "minVersion",
];

/// Parameters of the `wss:` client: `ws:`'s, then `tls:`'s trust options ([`TLS_PASSED`]).
pub static WSS_CLIENT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("server host name or IP address; verified against its certificate"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("443")
        .help("server port"),
    CLIENT[0], CLIENT[1], CLIENT[2], CLIENT[3], CLIENT[4], CLIENT[5], CLIENT[6],
    CLIENT[7], CLIENT[8], CLIENT[9], CLIENT[10], CLIENT[11], CLIENT[12], CLIENT[13],
    Param::optional("bindAddress", ParamKind::Host)
        .help("local IP for connection attempts of its family"),
    Param::optional("trustRoots", ParamKind::Path).help(
        "as tls:'s: CA certificates (directory or PEM file), `mozilla`, `system`, or `none` (with pin=); default: the platform's store, else Mozilla's roots",
    ),
    Param::optional("pin", ParamKind::List)
        .help("as tls:'s: sha256/<base64> of the server's public key, comma-separated"),
    Param::optional("certificate", ParamKind::Path)
        .help("as tls:'s: client certificate chain (PEM)"),
    Param::optional("privateKey", ParamKind::Path)
        .help("as tls:'s: client key (PEM); default: the key in the certificate file"),
    Param::optional("sni", ParamKind::Host)
        .help("as tls:'s: server name to send and verify (default: host)"),
    Param::optional("minVersion", ParamKind::Choice(&["1.2", "1.3"]))
        .help("as tls:'s: lowest TLS version"),
    STREAM[0], STREAM[1], STREAM[2], STREAM[3],
];

/// Options of the `ws:` server wrapper, written before the inner server description
/// (`ws:path=/tunnel:tcp:8080`).
pub static SERVER_PARAMS: &[Param] = &[
    Param::optional("path", ParamKind::Text)
        .help("accept upgrades for this path only (the query is ignored); others get 404 (default: any path)"),
    Param::optional("origins", ParamKind::List)
        .help("allowed `Origin` values, comma-separated (`https://app.example`); another Origin gets 403, a request without one (not a browser) passes"),
    Param::optional("subprotocols", ParamKind::List)
        .help("subprotocols served, in preference order: a client must offer one (else 400); the first it offers is chosen"),
    Param::optional("token", ParamKind::Text).secret()
        .help("require `Authorization: Bearer <token>` (else 401; visible in `ps`: prefer tokenFile= or tokenEnv=); shown as ***"),
    Param::optional("tokenFile", ParamKind::Path)
        .help("read the required bearer token from this file (one trailing newline is dropped)"),
    Param::optional("tokenEnv", ParamKind::Text)
        .help("read the required bearer token from this environment variable"),
    Param::optional("timeout", ParamKind::Duration)
        .default("10")
        .help("deadline for a client's whole upgrade request, in seconds"),
    Param::optional("maxRequest", ParamKind::UInt)
        .default("16384")
        .help("largest upgrade request head, in bytes (larger: 431)"),
    endpoints_util::upgrade::MAX_PENDING_PER_SOURCE_PARAM,
    STREAM[0], STREAM[1], STREAM[2], STREAM[3],
];

/// How the clients carry their transport: `endpoint=`, by default happy eyeballs to `host`
/// and `port` from `bindAddress` (which only the transport reads). `haproxy:ws:...` reads
/// this to send its header on the transport, before the upgrade (and before TLS for `wss:`).
pub const CLIENT_TRANSPORT: Transport = Transport::new(
    "endpoint",
    "hostname",
    &["host", "port", "bindAddress"],
    &["bindAddress"],
);
