//! The `tor:` client: a stream to `host:port` (or `NAME.onion:port`) through Tor's SOCKS port,
//! the name sent to Tor (ATYP 3), never resolved here.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use endpoints_core::params::{Args, Param, ParamKind, Value};
use endpoints_core::registry::build_client;
use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Operation, ParseError, async_trait, io_error,
};
use endpoints_tunnel::{Credentials, Target};

use crate::control::{Control, unquote};
use crate::launch::{Launch, LaunchedTor};

/// Parameters of the `tor:` client (txtorcon's names where it has them).
pub static TOR_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("target host name, `NAME.onion` or IP address; names are resolved by Tor, never here"),
    Param::required("port", ParamKind::Port).at(1).help("target port"),
    Param::optional("socksPort", ParamKind::Text)
        .default("9050")
        .help("Tor's SOCKS port: a port on 127.0.0.1, a unix socket path (`/run/tor/socks`), or a client description, escaped"),
    Param::optional("socksHostname", ParamKind::Host)
        .help("the host of Tor's SOCKS port, with a port number in `socksPort=` (txtorcon's name; default 127.0.0.1)"),
    Param::optional("control", ParamKind::Text)
        .help("read the SOCKS port from this control port (`GETINFO net/listeners/socks`): a port on 127.0.0.1, a socket path, or a client description, escaped; instead of `socksPort=`"),
    Param::optional("controlPasswordFile", ParamKind::Path)
        .help("the control port's password, read from this file (otherwise cookie authentication)"),
    Param::optional("socksUsername", ParamKind::Text)
        .help("SOCKS user name: streams with different names use different circuits (default: one name per endpoint, so each description gets its own circuits)"),
    Param::optional("socksPassword", ParamKind::Text).secret()
        .help("SOCKS password, for isolation only (Tor checks none); shown as ***"),
    Param::optional("timeout", ParamKind::Duration)
        .default("120")
        .help("deadline for reaching Tor and its answer (building a circuit, reaching an onion service), in seconds (0: none); with `launch=1`, also for the launched Tor's bootstrap"),
    Param::optional("halfClose", ParamKind::Choice(&["tor", "inband"]))
        .default("tor")
        .help("`inband`: each side's end of data travels inside the stream, so this side's end does not end the answer (Tor itself ends the whole stream at one side's end, cutting what is still on its way back); the onion service must be ours with `halfClose=inband` too; a stream cut without its end marker is then a reset, never a clean end"),
    Param::optional("launch", ParamKind::Bool)
        .help("`1`: start a `tor` of our own (a private data directory, bootstrap progress in the log), shared by this endpoint's connections and stopped after the last one ends; instead of `socksPort=`/`control=`"),
    Param::optional("torBinary", ParamKind::Path)
        .help("with `launch=1`: the `tor` program to run (txtorcon's `tor_binary`; default `tor` from PATH)"),
    Param::optional("dataDirectory", ParamKind::Path)
        .help("with `launch=1`: Tor's data directory, kept (created mode 700; a symlink or a directory group or others can reach is refused; txtorcon's `data_directory`; default a new one, removed after)"),
];

/// What Tor answered when it could not make the stream: the SOCKS5 reply code, with Tor's
/// extended codes (`ExtendedErrors`, 0xF0..0xF7) for onion services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorRefusal {
    /// 1: general failure (Tor could not build a circuit, or the onion service refused).
    GeneralFailure,
    /// 2: the exit relays' policies refuse this address and port.
    ExitRefused,
    /// 3: network unreachable.
    NetworkUnreachable,
    /// 4: host unreachable (the exit could not resolve or reach it).
    HostUnreachable,
    /// 5: the target refused the connection.
    ConnectionRefused,
    /// 6: TTL expired (Tor gave up waiting: a timeout on the way).
    TtlExpired,
    /// 7: command not supported.
    CommandNotSupported,
    /// 8: address type not supported.
    AddressTypeNotSupported,
    /// 0xF0: the onion service's descriptor cannot be found (the service is not up, or not yet published).
    OnionDescriptorNotFound,
    /// 0xF1: the onion service's descriptor is invalid.
    OnionDescriptorInvalid,
    /// 0xF2: introduction to the onion service failed.
    OnionIntroductionFailed,
    /// 0xF3: the rendezvous with the onion service failed.
    OnionRendezvousFailed,
    /// 0xF4: the onion service needs client authorization, none was given.
    OnionMissingClientAuth,
    /// 0xF5: the client authorization given is wrong.
    OnionWrongClientAuth,
    /// 0xF6: the onion address is invalid.
    OnionBadAddress,
    /// 0xF7: introduction to the onion service timed out.
    OnionIntroductionTimedOut,
    /// Any other code.
    Other(u8),
}

impl TorRefusal {
    /// From a SOCKS5 reply code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::GeneralFailure,
            2 => Self::ExitRefused,
            3 => Self::NetworkUnreachable,
            4 => Self::HostUnreachable,
            5 => Self::ConnectionRefused,
            6 => Self::TtlExpired,
            7 => Self::CommandNotSupported,
            8 => Self::AddressTypeNotSupported,
            0xF0 => Self::OnionDescriptorNotFound,
            0xF1 => Self::OnionDescriptorInvalid,
            0xF2 => Self::OnionIntroductionFailed,
            0xF3 => Self::OnionRendezvousFailed,
            0xF4 => Self::OnionMissingClientAuth,
            0xF5 => Self::OnionWrongClientAuth,
            0xF6 => Self::OnionBadAddress,
            0xF7 => Self::OnionIntroductionTimedOut,
            c => Self::Other(c),
        }
    }

    /// What happened, in words, and what to do.
    pub fn words(self) -> &'static str {
        match self {
            Self::GeneralFailure => {
                "general failure (Tor could not build a circuit, or the onion service is gone)"
            }
            Self::ExitRefused => "the exit relays' policies refuse this address and port",
            Self::NetworkUnreachable => "network unreachable",
            Self::HostUnreachable => "host unreachable (the exit could not resolve or reach it)",
            Self::ConnectionRefused => "the target refused the connection",
            Self::TtlExpired => "TTL expired (Tor timed out on the way; try again)",
            Self::CommandNotSupported => "command not supported",
            Self::AddressTypeNotSupported => "address type not supported",
            Self::OnionDescriptorNotFound => {
                "onion service descriptor not found (the service is not running, or not published yet)"
            }
            Self::OnionDescriptorInvalid => "the onion service's descriptor is invalid",
            Self::OnionIntroductionFailed => "introduction to the onion service failed",
            Self::OnionRendezvousFailed => "the rendezvous with the onion service failed",
            Self::OnionMissingClientAuth => {
                "the onion service requires client authorization (ClientOnionAuthDir)"
            }
            Self::OnionWrongClientAuth => "the onion service refused our client authorization",
            Self::OnionBadAddress => "invalid onion address",
            Self::OnionIntroductionTimedOut => "introduction to the onion service timed out",
            Self::Other(_) => "unknown SOCKS5 reply code",
        }
    }

    fn kind(self) -> io::ErrorKind {
        match self {
            Self::ExitRefused | Self::OnionMissingClientAuth | Self::OnionWrongClientAuth => {
                io::ErrorKind::PermissionDenied
            }
            Self::NetworkUnreachable => io::ErrorKind::NetworkUnreachable,
            Self::HostUnreachable
            | Self::OnionDescriptorNotFound
            | Self::OnionIntroductionFailed
            | Self::OnionRendezvousFailed => io::ErrorKind::HostUnreachable,
            Self::ConnectionRefused => io::ErrorKind::ConnectionRefused,
            Self::TtlExpired | Self::OnionIntroductionTimedOut => io::ErrorKind::TimedOut,
            Self::CommandNotSupported | Self::AddressTypeNotSupported => io::ErrorKind::Unsupported,
            Self::OnionBadAddress | Self::OnionDescriptorInvalid => io::ErrorKind::InvalidInput,
            Self::GeneralFailure | Self::Other(_) => io::ErrorKind::Other,
        }
    }
}

/// The error of a stream Tor could not make: find it with `get_ref()`/`source()` and
/// `downcast_ref::<TorStreamError>()`, or with [`refusal`].
#[derive(Debug)]
pub struct TorStreamError {
    /// What Tor answered.
    pub refusal: TorRefusal,
    /// The SOCKS5 reply code.
    pub code: u8,
    /// The target.
    pub target: String,
}

impl fmt::Display for TorStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tor could not reach {}: {} (SOCKS5 reply {:#04x})",
            self.target,
            self.refusal.words(),
            self.code
        )
    }
}

impl std::error::Error for TorStreamError {}

/// The [`TorRefusal`] anywhere in an error's chain.
pub fn refusal(e: &io::Error) -> Option<TorRefusal> {
    find_in_chain::<TorStreamError>(e).map(|t| t.refusal)
}

/// The error of type `T` anywhere in an error's chain.
pub(crate) fn find_in_chain<T: std::error::Error + 'static>(e: &io::Error) -> Option<&T> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
    while let Some(err) = next {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
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

/// A port number, a socket path, `unix:PATH`/`tcp:...` (a whole client description, escaped)
/// as a client description.
pub(crate) fn port_description(v: &Value<'_>) -> Result<Description, ParseError> {
    let text = v.as_str();
    let owned = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let port = v.port()?;
        if port == 0 {
            return Err(v.invalid("port 0 is not a port Tor listens on"));
        }
        format!("tcp:127.0.0.1:{port}")
    } else if text.starts_with('/') {
        format!("unix:{}", endpoints_core::escape(text))
    } else {
        return v.nested();
    };
    owned
        .parse()
        .map_err(|_| v.invalid("cannot read this as a port, a path or a description"))
}

/// Attached to every `tor:` connection: how it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TorInfo {
    /// Tor's SOCKS port (the peer of the connection to Tor).
    pub socks: Address,
    /// The target as sent to Tor (a name stays a name).
    pub target: Target,
    /// The address Tor reported as bound, when an IP address.
    pub bound: Option<SocketAddr>,
    /// The SOCKS user name: the isolation group of the stream.
    pub isolation: String,
}

/// Where Tor's SOCKS port is.
#[derive(Debug)]
enum Socks {
    At(Box<dyn ClientEndpoint>),
    FromControl(Box<dyn ClientEndpoint>, Option<PathBuf>),
    /// A Tor of our own, launched at the first connect and shared by the connections made
    /// while it runs; it stops when the last of them (and any connect under way) ends.
    Launched(Launch, tokio::sync::Mutex<Weak<LaunchedTor>>),
}

/// A `tor:` client endpoint.
#[derive(Debug)]
pub struct TorEndpoint {
    socks: Socks,
    target: Target,
    credentials: Credentials,
    timeout: Option<Duration>,
    /// `halfClose=inband`: the stream is [`InBand`]-framed.
    inband: bool,
    canonical: Description,
}

impl fmt::Display for TorEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

fn random_name() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 12];
    // On failure the name is still per-endpoint through its address.
    let _ = SystemRandom::new().fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("endpoints-{hex}")
}

fn target(v: &Value<'_>, port: u16) -> Result<(Target, String), ParseError> {
    let text = v.as_str();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = inner.parse::<IpAddr>() {
        return Ok((Target::Ip(SocketAddr::new(ip, port)), ip.to_string()));
    }
    if text.is_empty() || text.len() > 255 {
        return Err(v.invalid("a host name is 1 to 255 bytes"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(v.invalid(format_args!(
            "`{}` cannot be in a host name (ASCII letters, digits, `-`, `.`, `_`)",
            c.escape_default()
        )));
    }
    let name = text.to_ascii_lowercase();
    if let Some(label) = name.strip_suffix(".onion") {
        let id = label.rsplit('.').next().unwrap_or(label);
        if id.len() != 56 || !id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
            return Err(
                v.invalid("a v3 onion address is 56 characters of a-z and 2-7 before `.onion`")
            );
        }
    }
    Ok((Target::Name(name.clone(), port), name))
}

pub(crate) fn build(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, TOR_PARAMS)?;
    let port = args.required("port")?.port()?;
    let (target, host) = target(&args.required("host")?, port)?;
    let mut canonical = args.canonical();
    canonical.set("host", host);
    let launch = args.get("launch").map(|v| v.flag()).transpose()? == Some(true);
    let socks = match args.get("control") {
        _ if launch => {
            for other in [
                "socksPort",
                "control",
                "socksHostname",
                "controlPasswordFile",
            ] {
                if let Some(v) = args.get(other).filter(|_| args.is_given(other)) {
                    return Err(v.invalid(format_args!(
                        "`{other}=` names a running Tor: give it or `launch=1`, not both"
                    )));
                }
            }
            canonical.remove("socksPort");
            let mut l = Launch::new();
            if let Some(b) = args.get("torBinary") {
                l = l.binary(b.path()?);
            }
            if let Some(d) = args.get("dataDirectory") {
                l = l.data_dir(d.path()?);
            }
            Socks::Launched(l, tokio::sync::Mutex::new(Weak::new()))
        }
        Some(c) => {
            // The canonical form spells out the default `socksPort=9050`: only another
            // value conflicts.
            if let Some(s) = args.get("socksPort").filter(|s| s.as_str() != "9050") {
                return Err(s.invalid("give `control=` or `socksPort=`, not both"));
            }
            canonical.remove("socksPort");
            let desc = port_description(&c)?;
            let ep = build_client(&desc)
                .map_err(|e| e.nested_in(d.input().cloned(), c.span(), c.param()))?;
            canonical.set("control", ep.to_string());
            let pw = args
                .get("controlPasswordFile")
                .map(|v| v.path())
                .transpose()?;
            Socks::FromControl(ep, pw)
        }
        None => {
            if let Some(v) = args.get("controlPasswordFile") {
                return Err(v.invalid("`controlPasswordFile=` goes with `control=`"));
            }
            let v = args.required("socksPort")?;
            let desc = match args.get("socksHostname") {
                Some(h) => {
                    if !v.as_str().bytes().all(|b| b.is_ascii_digit()) {
                        return Err(
                            h.invalid("`socksHostname=` goes with a port number in `socksPort=`")
                        );
                    }
                    canonical.remove("socksHostname");
                    let host = h.as_str().trim_start_matches('[').trim_end_matches(']');
                    format!("tcp:{}:{}", endpoints_core::escape(host), v.port()?)
                        .parse()
                        .map_err(|_| h.invalid("not a host name or IP address"))?
                }
                None => port_description(&v)?,
            };
            let ep = build_client(&desc)
                .map_err(|e| e.nested_in(d.input().cloned(), v.span(), v.param()))?;
            canonical.set("socksPort", ep.to_string());
            Socks::At(ep)
        }
    };
    if !launch {
        for other in ["torBinary", "dataDirectory"] {
            if let Some(v) = args.get(other) {
                return Err(v.invalid(format_args!("`{other}=` goes with `launch=1`")));
            }
        }
    }
    let user = match args.get("socksUsername") {
        Some(u) => u.as_str().to_owned(),
        None => random_name(),
    };
    let password = args
        .get("socksPassword")
        .map_or_else(|| "x".to_owned(), |p| p.as_str().to_owned());
    for (what, s) in [("socksUsername", &user), ("socksPassword", &password)] {
        if s.is_empty() || s.len() > 255 {
            let v = args.get(what).unwrap_or(args.required("host")?);
            return Err(v.invalid(format_args!("`{what}=` is 1 to 255 bytes (RFC 1929)")));
        }
    }
    if args.is_given("socksPassword") {
        canonical.set("socksPassword", "***");
    }
    let timeout = Some(args.required("timeout")?.duration()?).filter(|t| !t.is_zero());
    let inband = args.required("halfClose")?.choice(&["tor", "inband"])? == "inband";
    Ok(Box::new(TorEndpoint {
        socks,
        target,
        credentials: Credentials { user, password },
        timeout,
        inband,
        canonical,
    }))
}

/// The first SOCKS listener in a `GETINFO net/listeners/socks` reply, as a description.
pub fn socks_from_getinfo(value: &str) -> Option<String> {
    let first = match value.trim().strip_prefix('"') {
        Some(_) => {
            let end = value.trim()[1..].find('"')? + 2;
            unquote(&value.trim()[..end])?
        }
        None => value.split_whitespace().next()?.to_owned(),
    };
    if let Some(path) = first.strip_prefix("unix:") {
        return Some(format!("unix:{}", endpoints_core::escape(path)));
    }
    let addr: SocketAddr = first.parse().ok()?;
    Some(format!(
        "tcp:{}:{}",
        endpoints_core::escape(&addr.ip().to_string()),
        addr.port()
    ))
}

impl TorEndpoint {
    async fn socks_from(
        control_ep: &dyn ClientEndpoint,
        pw: Option<&std::path::Path>,
    ) -> io::Result<Box<dyn ClientEndpoint>> {
        let control = Control::connect(control_ep, pw).await?;
        let r = control
            .ok("GETINFO net/listeners/socks", "GETINFO net/listeners/socks")
            .await?;
        let value = r.value("net/listeners/socks").unwrap_or_default();
        let raw = r
            .lines
            .iter()
            .find_map(|l| {
                l.text
                    .strip_prefix("net/listeners/socks=")
                    .map(str::to_owned)
            })
            .unwrap_or(value);
        let desc = socks_from_getinfo(&raw).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "Tor at `{}` has no SOCKS listener (GETINFO net/listeners/socks: {raw:?}); set `SocksPort` in its torrc",
                    control.name()
                ),
            )
        })?;
        let d: Description = desc
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))?;
        build_client(&d).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))
    }

    /// The Tor of `launch=1`: the one running, or a new one (one launch at a time: the
    /// connects that wait for it then share it).
    async fn launched(&self) -> io::Result<Option<Arc<LaunchedTor>>> {
        let Socks::Launched(launch, current) = &self.socks else {
            return Ok(None);
        };
        let mut current = current.lock().await;
        if let Some(tor) = current.upgrade().filter(|t| t.is_running()) {
            return Ok(Some(tor));
        }
        let tor = Arc::new(
            launch
                .clone()
                .timeout(self.timeout.unwrap_or(Duration::ZERO))
                .start()
                .await?,
        );
        *current = Arc::downgrade(&tor);
        Ok(Some(tor))
    }

    async fn open(&self, tor: Option<Arc<LaunchedTor>>) -> io::Result<Connection> {
        let found;
        let socks: &dyn ClientEndpoint = match (&self.socks, &tor) {
            (Socks::At(ep), _) => ep.as_ref(),
            (Socks::FromControl(c, pw), _) => {
                found = Self::socks_from(c.as_ref(), pw.as_deref()).await?;
                found.as_ref()
            }
            (Socks::Launched(..), Some(t)) => {
                let addr = t.socks_addr().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "the launched tor has no SOCKS listener",
                    )
                })?;
                found = build_client(
                    &format!(
                        "tcp:{}:{}",
                        endpoints_core::escape(&addr.ip().to_string()),
                        addr.port()
                    )
                    .parse()
                    .map_err(|e| io::Error::other(format!("{e}")))?,
                )
                .map_err(|e| io::Error::other(format!("{e} (link endpoints-tcp)")))?;
                found.as_ref()
            }
            (Socks::Launched(..), None) => {
                return Err(io::Error::other("no launched tor"));
            }
        };
        let name = socks.to_string();
        let mut conn = socks.connect().await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reach Tor's SOCKS port `{name}`: {e} (is Tor running?)"),
            )
        })?;
        let bound = endpoints_tunnel::socks5::handshake(
            &mut conn,
            &self.target,
            Some(&self.credentials),
            &name,
        )
        .await
        .map_err(|e| match endpoints_tunnel::socks5_reply_code(&e) {
            Some(code) => {
                let refusal = TorRefusal::from_code(code);
                io::Error::new(
                    refusal.kind(),
                    TorStreamError {
                        refusal,
                        code,
                        target: self.target.to_string(),
                    },
                )
            }
            None => e,
        })?;
        let peer = match &self.target {
            Target::Ip(a) => Address::Ip(*a),
            Target::Name(..) => Address::Unnamed,
        };
        let local = conn.local_addr().clone();
        let proxy = conn.peer_addr().clone();
        let stream = TorStream {
            inner: conn,
            _tor: tor,
        };
        let mut out = Connection::new(stream, local, peer).with_layer(&LAYER);
        if self.inband {
            out = crate::inband::wrap(out).await?;
        }
        out.extensions_mut().insert(TorInfo {
            socks: proxy,
            target: self.target.clone(),
            bound,
            isolation: self.credentials.user.clone(),
        });
        Ok(out)
    }
}

/// The stream of a `tor:` connection: the connection to Tor's SOCKS port after the
/// handshake, holding the launched Tor (if any) while it lives.
#[derive(Debug)]
struct TorStream {
    inner: Connection,
    _tor: Option<Arc<LaunchedTor>>,
}

impl tokio::io::AsyncRead for TorStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TorStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        tokio::io::AsyncWrite::is_write_vectored(&self.inner)
    }
}

/// The tunnel over the connection to Tor: the bytes pass through unchanged.
static LAYER: endpoints_core::Layer<TorStream> =
    endpoints_core::Layer::<TorStream>::new(|c| &c.inner, |c| &mut c.inner)
        .passing_bytes_through(|_| 0, |_| Vec::new());

#[async_trait]
impl ClientEndpoint for TorEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        // The launch has its own deadline, naming the stage that stalled.
        let tor = match self.launched().await {
            Ok(t) => t,
            Err(e) => return Err(io_error(Operation::Connect, self, e)),
        };
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, self.open(tor))
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "Tor made no stream to {} within {:.0}s (raise `timeout=`)",
                            self.target,
                            t.as_secs_f64()
                        ),
                    ))
                }),
            None => self.open(tor).await,
        };
        result.map_err(|e| io_error(Operation::Connect, self, e))
    }
}
