//! What both tunnel types share: the target, credentials, the endpoint and its parser, and
//! the stream that yields bytes read past a handshake first.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use endpoints_core::params::{Args, Param, Value};
use endpoints_core::registry::build_client;
use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Layer, Operation, ParseError, async_trait,
    io_error,
};
pub use endpoints_util::Prefixed;

/// Where the tunnel goes: a host name or an IP address, and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An IP address (sent as such; IPv6 in brackets in HTTP).
    Ip(SocketAddr),
    /// A host name (ASCII letters, digits, `-`, `.`, `_`; at most 255 bytes) and a port.
    Name(String, u16),
}

impl Target {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Self::Ip(a) => a.port(),
            Self::Name(_, p) => *p,
        }
    }

    /// `host:port` as HTTP writes an authority (`[::1]:443` for IPv6).
    pub fn authority(&self) -> String {
        match self {
            Self::Ip(a) => a.to_string(),
            Self::Name(n, p) => format!("{n}:{p}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority())
    }
}

/// A user name and password for the proxy. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Which protocol a [`TunnelEndpoint`] speaks to its proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// SOCKS5 (RFC 1928), user name and password per RFC 1929.
    Socks5 {
        /// Resolve host names here and send the address (`resolve=local`) instead of sending
        /// the name to the proxy (`resolve=remote`, the default).
        resolve_local: bool,
    },
    /// HTTP CONNECT (RFC 9110 §9.3.6), Basic proxy authentication.
    HttpConnect,
}

/// Attached to every tunnelled connection: how it was made. The extensions of the connection
/// to the proxy (a `tls:` hop's TLS details) stay on that connection, `Connection::beneath`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TunnelInfo {
    /// The proxy's address (the peer of the connection to the proxy).
    pub proxy: Address,
    /// The target as sent to the proxy.
    pub target: Target,
    /// The address the SOCKS5 proxy reported for its side of the connection to the target
    /// (`BND.ADDR`/`BND.PORT`), when it gave an IP address; `None` for HTTP CONNECT.
    pub bound: Option<SocketAddr>,
}

/// A client endpoint that connects through a proxy (`socks5:` and `httpconnect:`).
///
/// The proxy is reached with any client endpoint (`proxy=`); `connect` opens that connection,
/// runs the proxy handshake, and returns the tunnel. The timeout covers both; dropping the
/// future closes the connection to the proxy.
pub struct TunnelEndpoint {
    protocol: Protocol,
    proxy: Box<dyn ClientEndpoint>,
    target: Target,
    credentials: Option<Credentials>,
    timeout: Option<Duration>,
    canonical: Description,
}

impl fmt::Debug for TunnelEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelEndpoint")
            .field("protocol", &self.protocol)
            .field("proxy", &self.proxy.to_string())
            .field("target", &self.target)
            .field("credentials", &self.credentials)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Display for TunnelEndpoint {
    /// The canonical description, with `password=***` in place of a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

impl TunnelEndpoint {
    /// Tunnel to `target` through the proxy reached by `proxy`. `timeout` bounds the
    /// connection to the proxy and the handshake together; `canonical` is what `Display`
    /// shows (keep passwords out of it).
    pub fn new(
        protocol: Protocol,
        proxy: Box<dyn ClientEndpoint>,
        target: Target,
        credentials: Option<Credentials>,
        timeout: Option<Duration>,
        canonical: Description,
    ) -> Self {
        Self {
            protocol,
            proxy,
            target,
            credentials,
            timeout,
            canonical,
        }
    }

    async fn open(&self) -> io::Result<Connection> {
        match (&self.target, self.protocol) {
            (
                Target::Name(name, port),
                Protocol::Socks5 {
                    resolve_local: true,
                },
            ) => {
                let addrs = resolve(name, *port).await?;
                self.open_each(name, addrs).await
            }
            (t, _) => self.open_to(t.clone()).await,
        }
    }

    /// `resolve=local`: each address of `name` in turn, through the proxy, until one is
    /// reached. Only the proxy's refusal to reach an address moves on to the next; anything
    /// else (the proxy is down, refuses the password) is the answer for every address.
    async fn open_each(&self, name: &str, addrs: Vec<SocketAddr>) -> io::Result<Connection> {
        let mut refused = Vec::new();
        for addr in &addrs {
            match self.open_to(Target::Ip(*addr)).await {
                Err(e) if is_target_refusal(&e) => refused.push(e),
                done => return done,
            }
        }
        let tried: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
        Err(match refused.pop() {
            Some(last) if tried.len() > 1 => worded(
                last.kind(),
                format!(
                    "{last} (the last of the {} addresses of `{name}` tried: {})",
                    tried.len(),
                    tried.join(", ")
                ),
                Some(last),
            ),
            Some(last) => last,
            None => io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{name}` has no address (resolve=local)"),
            ),
        })
    }

    /// Reach the proxy, run the handshake for `target`, and return the tunnel.
    async fn open_to(&self, target: Target) -> io::Result<Connection> {
        let mut conn = self
            .proxy
            .connect()
            .await
            .map_err(|e| worded(e.kind(), format!("cannot reach the proxy: {}", e), Some(e)))?;
        let proxy = self.proxy.to_string();
        let (bound, leftover) = match self.protocol {
            Protocol::Socks5 { .. } => {
                let bound =
                    crate::socks5::handshake(&mut conn, &target, self.credentials.as_ref(), &proxy)
                        .await?;
                (bound, Vec::new())
            }
            Protocol::HttpConnect => {
                let rest =
                    crate::http::handshake(&mut conn, &target, self.credentials.as_ref(), &proxy)
                        .await?;
                (None, rest)
            }
        };
        let peer = match &target {
            Target::Ip(a) => Address::Ip(*a),
            Target::Name(..) => Address::Unnamed,
        };
        let local = conn.local_addr().clone();
        let proxy_addr = conn.peer_addr().clone();
        // The connection to the proxy stays whole beneath the tunnel, with its extensions
        // (its TLS, when the proxy is reached over `tls:`): they describe the link to the
        // proxy, not the one to the target, so the tunnel carries only its own.
        let mut out =
            Connection::new(Prefixed::new(leftover, conn), local, peer).with_layer(&LAYER);
        out.extensions_mut().insert(TunnelInfo {
            proxy: proxy_addr,
            target,
            bound,
        });
        Ok(out)
    }
}

/// How a tunnel sits over the connection to its proxy: the bytes that came after the
/// proxy's answer (HTTP CONNECT), then that connection's bytes unchanged. Callers reach the
/// socket through [`Connection::beneath`] (`endpoints relay` resets or splices it).
static LAYER: Layer<Prefixed<Connection>> =
    Layer::<Prefixed<Connection>>::new(Prefixed::get_ref, Prefixed::get_mut)
        .passing_bytes_through(|p| p.buffered().len(), Prefixed::take_buffered);

#[async_trait]
impl ClientEndpoint for TunnelEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, self.open())
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no tunnel within {:.3}s (connecting to the proxy and its handshake; raise `timeout=`)",
                            t.as_secs_f64()
                        ),
                    ))
                }),
            None => self.open().await,
        };
        result.map_err(|e| io_error(Operation::Connect, self, e))
    }
}

/// Every address of `name` (`resolve=local`), in the resolver's order.
async fn resolve(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| {
            worded(
                e.kind(),
                format!("cannot resolve `{name}` here (resolve=local): {e}"),
                Some(e),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{name}` has no address (resolve=local)"),
        ));
    }
    Ok(addrs)
}

/// An error in words, keeping the original as its source (and, unlike an error that already
/// names an endpoint, still named after the tunnel by `io_error`).
#[derive(Debug)]
struct Worded {
    words: String,
    cause: Option<io::Error>,
    /// The proxy was reached and answered that it could not reach the target.
    target_refused: bool,
    /// The SOCKS5 reply code of that answer.
    reply: Option<u8>,
}

impl fmt::Display for Worded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words)
    }
}

impl std::error::Error for Worded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

pub(crate) fn worded(kind: io::ErrorKind, words: String, cause: Option<io::Error>) -> io::Error {
    io::Error::new(
        kind,
        Worded {
            words,
            cause,
            target_refused: false,
            reply: None,
        },
    )
}

/// The proxy's answer that it could not reach the target (a SOCKS5 reply code): with
/// `resolve=local`, the next address is tried.
pub(crate) fn target_refusal(kind: io::ErrorKind, words: String, reply: Option<u8>) -> io::Error {
    io::Error::new(
        kind,
        Worded {
            words,
            cause: None,
            target_refused: true,
            reply,
        },
    )
}

/// The SOCKS5 reply code of a proxy's refusal to reach the target, found anywhere in the
/// error's chain of sources (a caller that maps codes a proxy adds, as Tor's `0xF0`..).
pub fn socks5_reply_code(e: &io::Error) -> Option<u8> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
    while let Some(err) = next {
        if let Some(w) = err.downcast_ref::<Worded>()
            && w.reply.is_some()
        {
            return w.reply;
        }
        next = if let Some(io) = err.downcast_ref::<io::Error>() {
            io.get_ref().map(|e| e as _)
        } else if let Some(named) = err.downcast_ref::<endpoints_core::EndpointIoError>() {
            // Its `source()` skips the cause itself: go through it.
            named.cause().get_ref().map(|e| e as _)
        } else {
            err.source()
        };
    }
    None
}

fn is_target_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<Worded>())
        .is_some_and(|w| w.target_refused)
}

/// The target from `host` and `port`: an IP address (IPv6 bare or in brackets) or a host
/// name of ASCII letters, digits, `-`, `.` and `_` (no spaces or control characters: it goes
/// into a request line), at most 255 bytes.
pub(crate) fn target(host: &Value<'_>, port: u16) -> Result<(Target, String), ParseError> {
    let text = host.as_str();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = inner.parse::<IpAddr>() {
        if text.starts_with('[') && ip.is_ipv4() {
            return Err(host.invalid("only IPv6 addresses go in brackets"));
        }
        return Ok((Target::Ip(SocketAddr::new(ip, port)), ip.to_string()));
    }
    if text.starts_with('[') {
        return Err(host.invalid(format_args!("`{text}` is not an IPv6 address in brackets")));
    }
    if text.is_empty() {
        return Err(host.invalid("the host is empty"));
    }
    if text.len() > 255 {
        return Err(host.invalid("a host name is at most 255 bytes (the SOCKS5 limit)"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(host.invalid(format_args!(
            "`{}` cannot be in a host name (ASCII letters, digits, `-`, `.`, `_`; write international names in their xn-- form)",
            c.escape_default()
        )));
    }
    let name = text.to_ascii_lowercase();
    Ok((Target::Name(name.clone(), port), name))
}

/// The proxy's client endpoint, built from the nested description in `proxy=`.
pub(crate) fn proxy_client(
    v: &Value<'_>,
    d: &Description,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let inner = v.nested()?;
    build_client(&inner).map_err(|e| e.nested_in(d.input().cloned(), v.span(), v.param()))
}

/// The credentials from `user=` and one of `password=`, `passwordFile=` or `passwordEnv=`;
/// `max` is the longest user name or password the protocol carries.
pub(crate) fn credentials(
    args: &Args<'_>,
    max: Option<usize>,
) -> Result<Option<Credentials>, ParseError> {
    let sources: Vec<Value<'_>> = ["password", "passwordFile", "passwordEnv"]
        .iter()
        .filter_map(|n| args.get(n))
        .collect();
    if let [_, second, ..] = sources.as_slice() {
        return Err(second
            .invalid("give one of `password=`, `passwordFile=` and `passwordEnv=`, not several"));
    }
    let user = args.get("user");
    let (user, source) = match (user, sources.into_iter().next()) {
        (None, None) => return Ok(None),
        (None, Some(s)) => {
            return Err(s.invalid("a password needs `user=` too"));
        }
        (Some(u), s) => (u, s),
    };
    let password = match &source {
        None => String::new(),
        Some(v) if v.param() == "password" => v.as_str().to_owned(),
        Some(v) if v.param() == "passwordFile" => {
            let path = v.path()?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                v.invalid(format_args!("cannot read `{}`: {e}", path.display()))
                    .with_source(e)
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.strip_suffix('\r').unwrap_or(text).to_owned()
        }
        Some(v) => {
            let name = v.as_str();
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(v.invalid("expected the name of an environment variable"));
            }
            std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => {
                    v.invalid(format_args!("the environment variable `{name}` is not set"))
                }
                std::env::VarError::NotUnicode(_) => v.invalid(format_args!(
                    "the environment variable `{name}` is not UTF-8"
                )),
            })?
        }
    };
    if user.as_str().contains(['\r', '\n', '\0']) {
        return Err(user.invalid("a user name cannot contain line breaks or NUL"));
    }
    if let Some(max) = max {
        if user.as_str().is_empty() || user.as_str().len() > max {
            return Err(user.invalid(format_args!(
                "a SOCKS5 user name is 1 to {max} bytes (RFC 1929)"
            )));
        }
        if password.is_empty() || password.len() > max {
            let why = format!("a SOCKS5 password is 1 to {max} bytes (RFC 1929)");
            return Err(match &source {
                Some(v) => v.invalid(why),
                None => user.invalid(format!(
                    "{why}: give `password=`, `passwordFile=` or `passwordEnv=`"
                )),
            });
        }
    } else if user.as_str().contains(':') {
        return Err(user.invalid("an HTTP Basic user name cannot contain `:`"));
    }
    Ok(Some(Credentials {
        user: user.as_str().to_owned(),
        password,
    }))
}

/// `proxy=tcp:127.0.0.1:1080` (not escaped) reads as `proxy=tcp` and positional fields
/// `127.0.0.1`, `1080`: say so, and suggest the escaped form.
pub(crate) fn unescaped_proxy(d: &Description) -> Result<(), ParseError> {
    let fields = d.fields();
    let Some(at) = fields.iter().position(|f| f.key() == Some("proxy")) else {
        return Ok(());
    };
    let rest: Vec<&endpoints_core::Field> = fields[at + 1..]
        .iter()
        .take_while(|f| f.is_positional())
        .collect();
    let Some(last) = rest.last() else {
        return Ok(());
    };
    let mut nested = fields[at].value().to_owned();
    for f in &rest {
        nested.push(':');
        nested.push_str(f.value());
    }
    let prefix = d.prefix().unwrap_or_default();
    Err(d
        .error(
            endpoints_core::ErrorKind::UnknownParameter,
            fields[at].span().start..last.span().end,
            format!(
                "`proxy=` of `{prefix}` ends at the first unescaped `:`, so `{nested}` was split; escape the nested description's `:` and `\\` with `\\`"
            ),
        )
        .with_parameter("proxy")
        .with_suggestion(format!("proxy={}", endpoints_core::escape(&nested))))
}

/// Build either tunnel type from its checked arguments.
pub(crate) fn build(
    args: &Args<'_>,
    protocol: Protocol,
    params_max: Option<usize>,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let d = args.description();
    let port = args.required("port")?.port()?;
    let (target, host) = target(&args.required("host")?, port)?;
    let proxy_v = args.required("proxy")?;
    let proxy = proxy_client(&proxy_v, d)?;
    let credentials = credentials(args, params_max)?;
    let timeout = Some(args.required("timeout")?.duration()?).filter(|t| !t.is_zero());
    let mut canonical = args.canonical();
    canonical.set("host", host);
    canonical.set("proxy", proxy.to_string());
    if args.is_given("password") {
        canonical.set("password", "***");
    }
    Ok(Box::new(TunnelEndpoint::new(
        protocol,
        proxy,
        target,
        credentials,
        timeout,
        canonical,
    )))
}

/// Parameters both types take, in order after `host` and `port`.
pub(crate) const fn common_params() -> [Param; 6] {
    use endpoints_core::params::ParamKind;
    [
        Param::required("proxy", ParamKind::Description).help(
            "how to reach the proxy: a client description, its `:` and `\\` escaped (`tcp\\:127.0.0.1\\:1080`)",
        ),
        Param::optional("user", ParamKind::Text).help("user name for the proxy"),
        Param::optional("password", ParamKind::Text).secret().help(
            "password for the proxy (visible in `ps` and logs: prefer passwordFile= or passwordEnv=); shown as ***",
        ),
        Param::optional("passwordFile", ParamKind::Path)
            .help("read the password from this file (one trailing newline is dropped)"),
        Param::optional("passwordEnv", ParamKind::Text)
            .help("read the password from this environment variable"),
        Param::optional("timeout", ParamKind::Duration)
            .default("30")
            .help("deadline for reaching the proxy and its handshake together, in seconds (0: none)"),
    ]
}

#[cfg(test)]
mod tests {
    //! `resolve=local` tries each address through the proxy (issue 24 item 9). The name's
    //! addresses are given here: the test machine's resolver has one address for
    //! `localhost`, and resolving is tokio's `lookup_host`.
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use endpoints_tcp as _;

    /// A SOCKS5 proxy (no authentication) that answers the n-th CONNECT with `replies[n]`
    /// (0xFF as the method choice: no acceptable method) and records the requested ports.
    async fn proxy(replies: &'static [u8]) -> (u16, Arc<Mutex<Vec<u16>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            for &reply in replies {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut greeting = [0u8; 3];
                    s.read_exact(&mut greeting).await?;
                    if reply == 0xFF {
                        return s.write_all(&[5, 0xFF]).await;
                    }
                    s.write_all(&[5, 0]).await?;
                    let mut req = [0u8; 10]; // IPv4 target: 4 + 4 + 2
                    s.read_exact(&mut req).await?;
                    record
                        .lock()
                        .expect("lock")
                        .push(u16::from_be_bytes([req[8], req[9]]));
                    s.write_all(&[5, reply, 0, 1, 127, 0, 0, 1, 0, 1]).await?;
                    let mut b = [0u8; 1];
                    let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
                    Ok(())
                });
            }
        });
        (port, seen)
    }

    fn through(port: u16) -> TunnelEndpoint {
        let d: Description = format!("tcp:127.0.0.1:{port}").parse().expect("parse");
        TunnelEndpoint::new(
            Protocol::Socks5 {
                resolve_local: true,
            },
            build_client(&d).expect("tcp client"),
            Target::Name("svc.example".into(), 80),
            None,
            Some(Duration::from_secs(10)),
            "socks5:svc.example:80".parse().expect("parse"),
        )
    }

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    #[tokio::test]
    async fn resolve_local_tries_each_address_until_the_proxy_reaches_one() {
        // The first address refused (reply 5), the second unreachable (4), the third reached.
        let (port, seen) = proxy(&[5, 4, 0]).await;
        let conn = through(port)
            .open_each("svc.example", addrs(&[1001, 1002, 1003]))
            .await
            .expect("the third address");
        assert_eq!(*seen.lock().expect("lock"), [1001, 1002, 1003]);
        let info = conn.extensions().get::<TunnelInfo>().expect("info");
        assert_eq!(info.target, Target::Ip(addrs(&[1003])[0]));
        assert_eq!(conn.peer_addr(), &Address::Ip(addrs(&[1003])[0]));
    }

    #[tokio::test]
    async fn resolve_local_names_every_address_when_none_is_reached() {
        let (port, seen) = proxy(&[5, 5]).await;
        let e = through(port)
            .open_each("svc.example", addrs(&[1001, 1002]))
            .await
            .expect_err("both refused");
        assert_eq!(*seen.lock().expect("lock"), [1001, 1002]);
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let text = e.to_string();
        assert!(
            text.contains(
                "the last of the 2 addresses of `svc.example` tried: 127.0.0.1:1001, 127.0.0.1:1002"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn resolve_local_stops_at_a_failure_that_is_not_the_target() {
        // The proxy refuses us (no acceptable method): the same for every address.
        let (port, seen) = proxy(&[0xFF, 0]).await;
        let e = through(port)
            .open_each("svc.example", addrs(&[1001, 1002]))
            .await
            .expect_err("refused by the proxy");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(seen.lock().expect("lock").is_empty(), "no second attempt");
    }
}
