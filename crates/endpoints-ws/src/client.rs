//! The `ws:` and `wss:` clients: connect with the transport beneath (happy eyeballs, `tls:`,
//! or any client description), send the upgrade request, check the answer, then frame.

use std::fmt;
use std::io;
use std::time::Duration;

use endpoints_core::params::Args;
use endpoints_core::registry::build_client;
use endpoints_core::{
    ClientEndpoint, Connection, Description, EndpointIoError, Field, Operation, ParseError,
    async_trait, io_error,
};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::common::{
    at_users_text, header_text, is_token, path, secret, stream_settings, subprotocols,
};
use crate::http::{HeadError, WsInfo, accept_for, base64, new_key, read_head};
use crate::params::TLS_PASSED;
use crate::stream::{HALF_CLOSE, LAYER, StreamSettings, WsStream};

/// Largest response head a client reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The `Authorization` a client sends. `Debug` shows neither password nor token.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Basic` with a user name and password.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// `Bearer` with a token.
    Bearer(String),
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"***")
                .finish(),
            Self::Bearer(_) => f.debug_tuple("Bearer").field(&"***").finish(),
        }
    }
}

impl Authorization {
    fn header_value(&self) -> String {
        match self {
            Self::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
            Self::Bearer(t) => format!("Bearer {t}"),
        }
    }
}

/// What a client sends in its upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The request target (`/chat?room=1`).
    pub path: String,
    /// The `Host` header.
    pub host: String,
    /// The `Origin` header.
    pub origin: Option<String>,
    /// Subprotocols offered, in preference order.
    pub subprotocols: Vec<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The `Authorization` header.
    pub authorization: Option<Authorization>,
}

impl Request {
    fn text(&self, key: &str) -> String {
        let mut t = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            self.path, self.host
        );
        if let Some(o) = &self.origin {
            t.push_str(&format!("Origin: {o}\r\n"));
        }
        if !self.subprotocols.is_empty() {
            t.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.subprotocols.join(", ")
            ));
        }
        if let Some(a) = &self.authorization {
            t.push_str(&format!("Authorization: {}\r\n", a.header_value()));
        }
        // Our in-band half-close, which a server that is not ours ignores (RFC 6455 §9.1: a
        // server answers only the extensions it supports).
        t.push_str(&format!("Sec-WebSocket-Extensions: {HALF_CLOSE}\r\n"));
        for (n, v) in &self.headers {
            t.push_str(&format!("{n}: {v}\r\n"));
        }
        t.push_str("\r\n");
        t
    }
}

/// A `ws:` or `wss:` client endpoint.
pub struct WsClientEndpoint {
    inner: Box<dyn ClientEndpoint>,
    request: Request,
    settings: StreamSettings,
    timeout: Option<Duration>,
    canonical: Description,
    /// The endpoint beneath is the user's `endpoint=` (its name is kept in errors), not one
    /// built here (`hostname:`, `tls:`, whose names are replaced by ours).
    inner_named: bool,
}

/// An error in words (so that `io_error` names our endpoint before them).
#[derive(Debug)]
struct Worded(String);

impl fmt::Display for Worded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Worded {}

fn names_an_endpoint(e: &io::Error) -> Option<&EndpointIoError> {
    e.get_ref()
        .and_then(|r| r.downcast_ref::<EndpointIoError>())
}

/// The transport's error under our name: the name of a transport built here is dropped, the
/// name of the user's own `endpoint=` kept after ours.
fn reworded(e: io::Error, keep_name: bool) -> io::Error {
    let kind = e.kind();
    match names_an_endpoint(&e) {
        Some(named) if keep_name => io::Error::new(kind, Worded(named.to_string())),
        Some(named) => io::Error::new(kind, Worded(named.cause().to_string())),
        None => e,
    }
}

impl fmt::Debug for WsClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsClientEndpoint")
            .field("inner", &self.inner.to_string())
            .field("request", &self.request)
            .field("settings", &self.settings)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Display for WsClientEndpoint {
    /// The canonical description, with `password=***` and `token=***` in place of secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

fn refused_kind(status: u16) -> io::ErrorKind {
    match status {
        401 | 403 => io::ErrorKind::PermissionDenied,
        404 => io::ErrorKind::NotFound,
        _ => io::ErrorKind::ConnectionRefused,
    }
}

impl WsClientEndpoint {
    async fn open(&self) -> io::Result<Connection> {
        let mut conn = self
            .inner
            .connect()
            .await
            .map_err(|e| reworded(e, self.inner_named))?;
        let key = new_key();
        conn.write_all(self.request.text(&key).as_bytes()).await?;
        conn.flush().await?;
        let (head, rest) = match read_head(&mut conn, MAX_RESPONSE_HEAD, false).await {
            Ok(h) => h,
            Err(HeadError::TooLarge) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server's answer to the upgrade is over {MAX_RESPONSE_HEAD} bytes"),
                ));
            }
            Err(HeadError::Malformed(m)) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, m));
            }
            Err(HeadError::Io(e)) => return Err(e),
        };
        if head.status != 101 {
            return Err(io::Error::new(
                refused_kind(head.status),
                format!(
                    "the server answered `{} {}` to the WebSocket upgrade of `{}`",
                    head.status, head.reason, self.request.path
                ),
            ));
        }
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        if !head.has_token("upgrade", "websocket") || !head.has_token("connection", "upgrade") {
            return Err(bad(
                "the server's 101 answer lacks `Upgrade: websocket` and `Connection: Upgrade`"
                    .into(),
            ));
        }
        let expected = accept_for(&key);
        match head.header("sec-websocket-accept") {
            Some(a) if a == expected => {}
            Some(a) => {
                return Err(bad(format!(
                    "the server's Sec-WebSocket-Accept `{a}` does not match our key"
                )));
            }
            None => {
                return Err(bad(
                    "the server's 101 answer lacks Sec-WebSocket-Accept".into()
                ));
            }
        }
        // The only extension we offer is our half-close; a server that chose another breaks
        // RFC 6455 §9.1, and the connection fails.
        let chosen = head.list("sec-websocket-extensions");
        if let Some(x) = chosen
            .iter()
            .find(|x| !x.trim().eq_ignore_ascii_case(HALF_CLOSE))
        {
            return Err(bad(format!(
                "the server chose extensions we did not offer: `{x}` (we offered only {HALF_CLOSE})"
            )));
        }
        let half_close = !chosen.is_empty();
        let subprotocol = head.header("sec-websocket-protocol").map(str::to_owned);
        if let Some(p) = &subprotocol
            && !self.request.subprotocols.iter().any(|s| s == p)
        {
            return Err(bad(format!(
                "the server chose the subprotocol `{p}`, which we did not offer ({})",
                if self.request.subprotocols.is_empty() {
                    "we offered none".to_owned()
                } else {
                    self.request.subprotocols.join(", ")
                }
            )));
        }
        let (local, peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
        let carried = std::mem::take(conn.extensions_mut());
        let ws = WebSocketStream::from_partially_read(
            conn,
            rest,
            Role::Client,
            Some(self.settings.config()),
        )
        .await;
        let mut out = Connection::new(
            WsStream::new(ws, &self.settings, subprotocol.as_deref(), half_close),
            local,
            peer,
        )
        .with_layer(&LAYER);
        out.extensions_mut().extend(carried);
        out.extensions_mut().insert(WsInfo {
            path: self.request.path.clone(),
            subprotocol,
            headers: head.headers,
            half_close,
        });
        Ok(out)
    }
}

#[async_trait]
impl ClientEndpoint for WsClientEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, self.open()).await.unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no WebSocket within {:.3}s (connecting and the upgrade; raise `timeout=`)",
                        t.as_secs_f64()
                    ),
                ))
            }),
            None => self.open().await,
        };
        result.map_err(|e| io_error(Operation::Connect, self, e))
    }
}

/// The extra headers of `headers=`: `Name=value`, comma-separated; not the ones the upgrade
/// sets itself.
fn extra_headers(args: &Args<'_>) -> Result<Vec<(String, String)>, ParseError> {
    let Some(v) = args.get("headers") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in v.as_str().split(',') {
        let Some((name, value)) = item.split_once('=') else {
            return Err(v.invalid(format_args!("`{item}` is not `Name=value`")));
        };
        let name = name.trim();
        if !is_token(name) {
            return Err(v.invalid(format_args!("`{name}` is not a header name")));
        }
        let lower = name.to_ascii_lowercase();
        if matches!(lower.as_str(), "host" | "upgrade" | "connection" | "origin")
            || lower.starts_with("sec-websocket-")
        {
            return Err(v.invalid(format_args!(
                "`{name}` is set by the upgrade itself{}",
                match lower.as_str() {
                    "host" => ": use hostHeader=",
                    "origin" => ": use origin=",
                    "sec-websocket-protocol" => ": use subprotocols=",
                    _ => "",
                }
            )));
        }
        if lower == "authorization" {
            return Err(v.invalid(
                "give credentials with token=/tokenFile=/tokenEnv= or user= and password=/passwordFile=/passwordEnv=, which are hidden from Display",
            ));
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(v.invalid(format_args!(
                "`{}` cannot be in a header value",
                c.escape_default()
            )));
        }
        out.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

fn authorization(args: &Args<'_>) -> Result<Option<Authorization>, ParseError> {
    let password = secret(args, ["password", "passwordFile", "passwordEnv"])?;
    let token = secret(args, ["token", "tokenFile", "tokenEnv"])?;
    let user = args.get("user");
    match (user, password, token) {
        (_, Some(_), Some((t, _))) | (Some(_), None, Some((t, _))) => {
            Err(t.invalid("give either a bearer token or a user and password (Basic), not both"))
        }
        (None, Some((p, _)), None) => Err(p.invalid("a password needs `user=` too")),
        (Some(u), p, None) => {
            let name = u.as_str();
            if name.contains(':') || name.chars().any(char::is_control) {
                return Err(u.invalid("a Basic user name cannot contain `:` or control characters"));
            }
            Ok(Some(Authorization::Basic {
                user: name.to_owned(),
                password: p.map(|(_, s)| s).unwrap_or_default(),
            }))
        }
        (None, None, Some((_, t))) => Ok(Some(Authorization::Bearer(t))),
        (None, None, None) => Ok(None),
    }
}

/// `host` as it goes into `Host` and the transport: an IPv6 address bracketed in `Host`.
fn host_header(host: &str, port: u16, default_port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let shown = if bare.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{bare}]")
    } else {
        bare.to_owned()
    };
    if port == default_port {
        shown
    } else {
        format!("{shown}:{port}")
    }
}

/// The nested `endpoint=` client, its errors pointing into the user's text.
fn nested(args: &Args<'_>) -> Result<Option<Box<dyn ClientEndpoint>>, ParseError> {
    let Some(v) = args.get("endpoint") else {
        return Ok(None);
    };
    let inner = v.nested()?;
    let d = args.description();
    build_client(&inner)
        .map(Some)
        .map_err(|e| e.nested_in(d.input().cloned(), v.span(), v.param()))
}

fn build(d: &Description, tls: bool) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let params = if tls {
        crate::params::WSS_CLIENT_PARAMS
    } else {
        crate::params::WS_CLIENT_PARAMS
    };
    let args = Args::parse(d, params)?;
    let default_port = if tls { 443 } else { 80 };
    let host_v = args.required("host")?;
    let host = host_v
        .as_str()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(host_v.invalid("the host is empty"));
    }
    let port = args.required("port")?.port()?;
    let path = path(&args.required("path")?)?;
    let host_hdr = match args.get("hostHeader") {
        Some(v) => header_text(&v)?,
        None => host_header(&host, port, default_port),
    };
    let origin = args.get("origin").map(|v| header_text(&v)).transpose()?;
    let subprotocols = args
        .get("subprotocols")
        .map(|v| subprotocols(&v))
        .transpose()?
        .unwrap_or_default();
    let headers = extra_headers(&args)?;
    let authorization = authorization(&args)?;
    let timeout = Some(args.required("timeout")?.duration()?).filter(|t| !t.is_zero());
    let settings = stream_settings(&args)?;
    let endpoint = nested(&args)?;
    let inner_named = endpoint.is_some() && !tls;
    if let (Some(b), true) = (args.get("bindAddress"), endpoint.is_some()) {
        return Err(
            b.invalid("`bindAddress` is for the default transport: give it inside `endpoint=`")
        );
    }
    let mut canonical = args.canonical();
    for secret in ["password", "token"] {
        if args.is_given(secret) {
            canonical.set(secret, "***");
        }
    }
    if let Some(e) = &endpoint {
        // The inner endpoint as it shows itself: its secrets hidden.
        canonical.set("endpoint", e.to_string());
    }
    let inner = if tls {
        let mut t = Description::new("tls")
            .with("host", host.as_str())
            .with("port", port.to_string());
        for name in TLS_PASSED {
            if let Some(v) = args.get(name) {
                t.push(Field::keyword(*name, v.as_str()));
            }
        }
        if let Some(v) = args.get("bindAddress") {
            t.push(Field::keyword("bindAddress", v.as_str()));
        }
        if let Some(v) = args.get("endpoint") {
            t.push(Field::keyword("endpoint", v.as_str()));
        }
        // Our `timeout=` covers TLS too; browsers offer http/1.1 for WebSocket over TLS.
        t.push(Field::keyword("timeout", "0"));
        t.push(Field::keyword("alpn", "http/1.1"));
        build_client(&t).map_err(|e| {
            if e.message().contains("no client plugin") {
                ParseError::new(
                    e.kind(),
                    d.prefix_field().map_or(0..0, |f| f.span()),
                    "`wss:` needs the `tls:` client: link the crate `endpoints-tls` (the umbrella's feature `tls`)",
                )
            } else {
                at_users_text(&args, e)
            }
        })?
    } else {
        match endpoint {
            Some(e) => e,
            None => {
                let mut h = Description::new("hostname")
                    .with("host", host.as_str())
                    .with("port", port.to_string());
                if let Some(v) = args.get("bindAddress") {
                    h.push(Field::keyword("bindAddress", v.as_str()));
                }
                h.push(Field::keyword("timeout", "0"));
                build_client(&h).map_err(|e| at_users_text(&args, e))?
            }
        }
    };
    Ok(Box::new(WsClientEndpoint {
        inner,
        request: Request {
            path,
            host: host_hdr,
            origin,
            subprotocols,
            headers,
            authorization,
        },
        settings,
        timeout,
        canonical,
        inner_named,
    }))
}

fn build_ws(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    build(d, false)
}

fn build_wss(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    build(d, true)
}

endpoints_core::register_client! {
    prefix: "ws",
    summary: "WebSocket client (binary messages) over happy eyeballs or any client endpoint",
    params: crate::params::WS_CLIENT_PARAMS,
    transport: crate::params::CLIENT_TRANSPORT,
    build: build_ws,
}

endpoints_core::register_client! {
    prefix: "wss",
    summary: "WebSocket client over TLS (tls:'s trust options) over happy eyeballs or any client endpoint",
    params: crate::params::WSS_CLIENT_PARAMS,
    transport: crate::params::CLIENT_TRANSPORT,
    build: build_wss,
}
