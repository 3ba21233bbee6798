//! The `ws:` server wrapper: every connection of the inner server upgrades to WebSocket off
//! the accept loop (the upgrade pool: deadline, per-source cap), or is refused at once with a
//! short HTTP answer.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::params::{Args, misplaced_wrapper_option};
use endpoints_core::registry;
use endpoints_core::{
    Connection, Description, ErrorKind, Listener, Operation, ParseError, ServerEndpoint,
    async_trait, io_error,
};
use endpoints_util::metrics::{Layer, Reason};
use endpoints_util::upgrade::{UpgradeListener, UpgradeSettings};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::common::{path, secret, stream_settings, subprotocols};
use crate::http::{Head, HeadError, WsInfo, accept_for, read_head, refuse};
use crate::params::SERVER_PARAMS;
use crate::stream::{HALF_CLOSE, LAYER, StreamSettings, WsStream};

/// What a `ws:` server accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct Policy {
    /// Only this path (the query ignored); `None`: any.
    pub path: Option<String>,
    /// Allowed `Origin` values; `None`: any. Requests without `Origin` pass.
    pub origins: Option<Vec<String>>,
    /// Subprotocols served, in preference order; when not empty a client must offer one.
    pub subprotocols: Vec<String>,
    /// Required bearer token.
    pub token: Option<String>,
    /// Deadline for the whole request.
    pub timeout: Duration,
    /// Largest request head.
    pub max_request: usize,
    /// Upgrades in progress at once from one address.
    pub max_pending_per_source: usize,
    /// The stream's limits and keepalive.
    pub stream: StreamSettings,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("path", &self.path)
            .field("origins", &self.origins)
            .field("subprotocols", &self.subprotocols)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("max_request", &self.max_request)
            .field("max_pending_per_source", &self.max_pending_per_source)
            .field("stream", &self.stream)
            .finish()
    }
}

/// Compare without an early exit, so the time taken does not tell how much of a token matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a request is refused: the status, its reason phrase, extra headers, a line of text.
struct Refusal {
    status: u16,
    reason: &'static str,
    extra: Vec<(&'static str, String)>,
    why: String,
}

fn refusal(status: u16, reason: &'static str, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason,
        extra: Vec::new(),
        why: why.into(),
    }
}

/// Check `head` against `policy`: the subprotocol to choose, or the refusal.
fn check(head: &Head, policy: &Policy) -> Result<Option<String>, Refusal> {
    let target_path = head.target.split('?').next().unwrap_or("");
    if let Some(p) = &policy.path
        && target_path != p
    {
        return Err(refusal(
            404,
            "Not Found",
            format!("no WebSocket at `{target_path}`"),
        ));
    }
    if !head.has_token("upgrade", "websocket") {
        let mut r = refusal(
            426,
            "Upgrade Required",
            "this is a WebSocket endpoint: send an upgrade (Upgrade: websocket)",
        );
        r.extra.push(("Upgrade", "websocket".into()));
        r.extra.push(("Connection", "Upgrade".into()));
        return Err(r);
    }
    if head.method != "GET" || head.version != 1 {
        return Err(refusal(
            400,
            "Bad Request",
            "a WebSocket upgrade is a GET over HTTP/1.1",
        ));
    }
    if !head.has_token("connection", "upgrade") {
        return Err(refusal(
            400,
            "Bad Request",
            "the upgrade lacks `Connection: Upgrade`",
        ));
    }
    if head.header("sec-websocket-version") != Some("13") {
        let mut r = refusal(
            426,
            "Upgrade Required",
            "this server speaks WebSocket version 13",
        );
        r.extra.push(("Sec-WebSocket-Version", "13".into()));
        return Err(r);
    }
    match head.header("sec-websocket-key") {
        Some(k) if k.len() == 24 && k.ends_with("==") => {}
        _ => {
            return Err(refusal(
                400,
                "Bad Request",
                "missing or malformed Sec-WebSocket-Key",
            ));
        }
    }
    if let (Some(allowed), Some(origin)) = (&policy.origins, head.header("origin"))
        && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    {
        return Err(refusal(
            403,
            "Forbidden",
            format!("the origin `{origin}` is not allowed"),
        ));
    }
    if let Some(token) = &policy.token {
        let given = head
            .header("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
            let mut r = refusal(401, "Unauthorized", "a valid bearer token is required");
            r.extra.push(("WWW-Authenticate", "Bearer".into()));
            return Err(r);
        }
    }
    if policy.subprotocols.is_empty() {
        return Ok(None);
    }
    let offered = head.list("sec-websocket-protocol");
    match policy
        .subprotocols
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
    {
        Some(p) => Ok(Some(p.clone())),
        None => Err(refusal(
            400,
            "Bad Request",
            format!(
                "offer one of the subprotocols {}",
                policy.subprotocols.join(", ")
            ),
        )),
    }
}

/// Read the upgrade from `conn` (the pool applies the deadline) and answer it.
pub(crate) async fn upgrade(mut conn: Connection, policy: &Policy) -> io::Result<Connection> {
    let (head, rest) = match read_head(&mut conn, policy.max_request, true).await {
        Ok(h) => h,
        Err(HeadError::TooLarge) => {
            refuse(
                &mut conn,
                431,
                "Request Header Fields Too Large",
                &[],
                "the upgrade request is too large\n",
            )
            .await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "upgrade request over {} bytes (maxRequest=)",
                    policy.max_request
                ),
            ));
        }
        Err(HeadError::Malformed(m)) => {
            refuse(&mut conn, 400, "Bad Request", &[], "not an HTTP request\n").await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, m));
        }
        Err(HeadError::Io(e)) => return Err(e),
    };
    let subprotocol = match check(&head, policy) {
        Ok(s) => s,
        Err(r) => {
            let extra: Vec<(&str, &str)> = r.extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            refuse(
                &mut conn,
                r.status,
                r.reason,
                &extra,
                &format!("{}\n", r.why),
            )
            .await;
            // Refused by the policy (path, origin, token) or for not being an upgrade.
            let reason = match r.status {
                401 | 403 | 404 => Reason::Refused,
                _ => Reason::Protocol,
            };
            return Err(reason.tag(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "refused `{} {}` with {}: {}",
                    head.method, head.target, r.status, r.why
                ),
            )));
        }
    };
    let key = head.header("sec-websocket-key").unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_for(key)
    );
    if let Some(p) = &subprotocol {
        answer.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    // Our in-band half-close, only when the client offered it (RFC 6455 §9.1).
    let half_close = head.offers_extension(HALF_CLOSE);
    if half_close {
        answer.push_str(&format!("Sec-WebSocket-Extensions: {HALF_CLOSE}\r\n"));
    }
    answer.push_str("\r\n");
    conn.write_all(answer.as_bytes()).await?;
    conn.flush().await?;
    let (local, peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
    let carried = std::mem::take(conn.extensions_mut());
    let ws = WebSocketStream::from_partially_read(
        conn,
        rest,
        Role::Server,
        Some(policy.stream.config()),
    )
    .await;
    let mut out = Connection::new(
        WsStream::new(ws, &policy.stream, subprotocol.as_deref(), half_close),
        local,
        peer,
    )
    .with_layer(&LAYER);
    out.extensions_mut().extend(carried);
    out.extensions_mut().insert(WsInfo {
        path: head.target,
        subprotocol,
        headers: head.headers,
        half_close,
    });
    Ok(out)
}

/// A `ws:` server: a WebSocket upgrade on every connection of the inner server.
pub struct WsServerEndpoint {
    inner: Box<dyn ServerEndpoint>,
    policy: Arc<Policy>,
    options: Description,
}

impl fmt::Debug for WsServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsServerEndpoint")
            .field("inner", &self.inner.to_string())
            .field("policy", &self.policy)
            .finish()
    }
}

/// `options` followed by the fields of `inner` (a displayed description).
fn joined(options: &Description, inner: &dyn fmt::Display) -> Description {
    let mut d = options.clone();
    if let Ok(i) = Description::parse(&inner.to_string()) {
        for f in i.fields() {
            d.push(f.clone());
        }
    }
    d
}

impl fmt::Display for WsServerEndpoint {
    /// `ws:<options>:<inner>`, with `token=***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        joined(&self.options, &self.inner).fmt(f)
    }
}

#[async_trait]
impl ServerEndpoint for WsServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let inner = self
            .inner
            .listen()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        let canonical = joined(&self.options, &inner);
        let policy = self.policy.clone();
        // The request usually comes with the connection, and answering it is cheap: poll it
        // in accept first.
        let settings = UpgradeSettings::new(policy.timeout)
            .inline_first_poll(true)
            .max_pending_per_source(policy.max_pending_per_source);
        let listener = UpgradeListener::spawn(inner, canonical, settings, move |conn| {
            let policy = policy.clone();
            async move { upgrade(conn, &policy).await }
        })
        .layer(Layer::Ws);
        Ok(Box::new(listener))
    }
}

/// Split `ws:[options:]<inner>` at the second positional field.
fn split(d: &Description) -> Result<(Description, Description), ParseError> {
    let end = d.input().map_or(0, |s| s.len());
    let inner_at = d
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_positional())
        .map(|(i, _)| i)
        .nth(1)
        .ok_or_else(|| {
            d.error(
                ErrorKind::MissingParameter,
                end..end,
                "a `ws` server wraps another server: write `ws:tcp:8080` (or `ws:path=/x:tls:/etc/certs:443` for wss)",
            )
            .with_parameter("endpoint")
        })?;
    match (d.slice(0..inner_at), d.tail(inner_at)) {
        (Some(head), Some(inner)) => Ok((head, inner)),
        _ => Err(d.error(
            ErrorKind::Syntax,
            0..end,
            "cannot split the wrapper from its inner description",
        )),
    }
}

fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let (head, inner) = split(d)?;
    let args = Args::parse(&head, SERVER_PARAMS)?;
    let path = args.get("path").map(|v| path(&v)).transpose()?;
    if let Some(p) = &path
        && p.contains('?')
    {
        return Err(args
            .required("path")?
            .invalid("the query is not matched: give the path alone"));
    }
    let origins = match args.get("origins") {
        Some(v) => {
            let mut list = Vec::new();
            for item in v.as_str().split(',').map(str::trim) {
                if item.is_empty() || item.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(v.invalid(format_args!(
                        "`{item}` is not an origin (`https://app.example`)"
                    )));
                }
                list.push(item.trim_end_matches('/').to_owned());
            }
            Some(list)
        }
        None => None,
    };
    let subprotocols = args
        .get("subprotocols")
        .map(|v| subprotocols(&v))
        .transpose()?
        .unwrap_or_default();
    let token = secret(&args, ["token", "tokenFile", "tokenEnv"])?.map(|(_, t)| t);
    if let Some(t) = &token {
        // Checked as the header value; a token with spaces could never match.
        if t.contains(char::is_whitespace) {
            let v = args
                .get("token")
                .or(args.get("tokenFile"))
                .or(args.get("tokenEnv"));
            if let Some(v) = v {
                return Err(v.invalid("a bearer token has no spaces"));
            }
        }
    }
    let timeout_v = args.required("timeout")?;
    let timeout = timeout_v.duration()?;
    if timeout.is_zero() {
        return Err(timeout_v.invalid(
            "must be above 0: a request that never ends would hold a slot forever (the default is 10)",
        ));
    }
    let max_v = args.required("maxRequest")?;
    let max_request = max_v.u32()? as usize;
    if !(256..=1 << 20).contains(&max_request) {
        return Err(max_v.invalid("expected 256 to 1048576 bytes"));
    }
    let policy = Policy {
        path,
        origins,
        subprotocols,
        token,
        timeout,
        max_request,
        max_pending_per_source: endpoints_util::upgrade::max_pending_per_source(&args)?,
        stream: stream_settings(&args)?,
    };
    let mut options = args.canonical();
    if args.is_given("token") {
        options.set("token", "***");
    }
    let inner_endpoint = registry::build_server(&inner)
        .map_err(|e| misplaced_wrapper_option(e, "ws", SERVER_PARAMS, &inner))?;
    Ok(Box::new(WsServerEndpoint {
        inner: inner_endpoint,
        policy: Arc::new(policy),
        options,
    }))
}

endpoints_core::register_server! {
    prefix: "ws",
    summary: "WebSocket server (binary messages) over any server endpoint; the upgrade read off the accept loop",
    params: SERVER_PARAMS,
    build: build_server,
}
