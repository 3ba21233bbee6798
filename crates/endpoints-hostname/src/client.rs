//! The `hostname:` client endpoint, and the host/port parsing shared with `tcp:`.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::params::{Args, Conflict, Param, ParamKind, Value};
use endpoints_core::{
    Address, ClientEndpoint, Connection, Description, Operation, ParseError, async_trait, io_error,
};

use crate::connector::HappyEyeballs;
use crate::resolve::Resolver;

/// Parameters of the `hostname:` client (and of the `tcp:` client, which uses the same
/// connector).
pub static CLIENT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("host name or IP address to connect to"),
    Param::required("port", ParamKind::Port)
        .at(1)
        .help("port to connect to"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("deadline for the whole connect, resolution included, in seconds"),
    Param::optional("attemptDelay", ParamKind::Duration)
        .default("0.25")
        .help("stagger between connection attempts (clamped to 0.01-2 s)"),
    Param::optional("attemptTimeout", ParamKind::Duration)
        .help("deadline for each attempt (default: only the overall timeout)"),
    Param::optional("bindAddress", ParamKind::Host).help("local IP for attempts of its own family"),
];

/// Check a client description's host and port with Twisted's positional rules: two
/// positional fields are host and port and override `host=`/`port=`; one positional field is
/// the port if `host=` was given, else the host.
pub fn host_port_args<'a>(
    d: &'a Description,
    params: &'static [Param],
) -> Result<Args<'a>, ParseError> {
    let names: &[&'static str] = match d.positionals().count() {
        0 => &[],
        1 if d.get_field("host").is_some() => &["port"],
        1 => &["host"],
        _ => &["host", "port"],
    };
    Args::parse_mapped(d, params, names, Conflict::PositionalWins)
        .map_err(|e| port_taken_as_host(d, e))
}

/// `tcp:8080` as a client: the one positional field is the host, so `port` is missing. Say
/// so, pointing at the field, and suggest `tcp:HOST:8080`. Any other error of `d`'s
/// arguments is returned unchanged (for clients that check host and port their own way,
/// like `tls:`).
pub fn port_taken_as_host(d: &Description, e: ParseError) -> ParseError {
    let mut positionals = d.positionals();
    let (Some(field), None) = (positionals.next(), positionals.next()) else {
        return e;
    };
    let text = field.value();
    if e.kind() != endpoints_core::ErrorKind::MissingParameter
        || e.parameter() != Some("port")
        || d.get_field("host").is_some()
        || text.is_empty()
        || text.len() > 5
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return e;
    }
    let prefix = d.prefix().unwrap_or("");
    let span = field.span();
    let err = d
        .error(
            endpoints_core::ErrorKind::MissingParameter,
            span.clone(),
            format!(
                "`{prefix}` needs `port`: the one positional field, `{text}`, was taken as the \
                 host; a client takes the host, then the port"
            ),
        )
        .with_parameter("port");
    let fixed = d.input().and_then(|input| {
        Some(format!(
            "{}HOST:{}",
            input.get(..span.start)?,
            input.get(span.start..)?
        ))
    });
    match fixed {
        Some(f) => err.with_suggestion(f),
        None => err,
    }
}

/// A host value: an IP literal (IPv6 with or without brackets) or a plausible DNS name.
/// Returns the canonical text (IPv6 without brackets).
pub fn host_value(v: &Value<'_>) -> Result<String, ParseError> {
    let text = v.as_str();
    if let Some(ip) = crate::ip_literal(text) {
        return Ok(ip.to_string());
    }
    if text.starts_with('[') {
        return Err(v.invalid(format_args!("`{text}` is not a bracketed IPv6 address")));
    }
    if text.is_empty() {
        return Err(v.invalid("the host is empty"));
    }
    if text.len() > 253 {
        return Err(v.invalid("a host name has at most 253 characters"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '[' | ']'))
    {
        return Err(v.invalid(format_args!("a host name cannot contain {c:?}")));
    }
    if text.contains(':') {
        return Err(v.invalid(format_args!(
            "`{text}` is neither an IP address nor a host name"
        )));
    }
    Ok(text.to_owned())
}

/// An IP address value (for `bindAddress`, `interface`): IPv6 with or without brackets.
/// `localhost` is an error that suggests `127.0.0.1` and names `[::1]`.
pub fn ip_value(v: &Value<'_>) -> Result<IpAddr, ParseError> {
    let text = v.as_str();
    if let Some(ip) = crate::ip_literal(text) {
        return Ok(ip);
    }
    if text.eq_ignore_ascii_case("localhost") {
        return Err(v
            .invalid(format_args!(
                "`{text}` is a host name, and `{}` takes an IP address: `127.0.0.1`, or \
                 `[::1]` for IPv6",
                v.param()
            ))
            .with_suggestion("127.0.0.1"));
    }
    Err(v.invalid(format_args!("`{text}` is not an IP address")))
}

/// A client endpoint that connects to a host name (or IP) with [`HappyEyeballs`].
///
/// Built from `hostname:example.com:443`, or directly with [`HostnameEndpoint::new`].
#[derive(Debug)]
pub struct HostnameEndpoint {
    host: String,
    port: u16,
    connector: HappyEyeballs,
    canonical: Description,
}

impl HostnameEndpoint {
    /// Connect to `host:port` with default settings (30 s overall deadline).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let canonical = Description::new("hostname")
            .with("host", host.clone())
            .with("port", port.to_string());
        Self {
            host,
            port,
            connector: HappyEyeballs::new().timeout(Some(Duration::from_secs(30))),
            canonical,
        }
    }

    /// An endpoint for `host:port` with `connector`, shown as `canonical` (for transports
    /// that connect through happy eyeballs under their own description, such as `tls:`).
    pub fn from_parts(
        host: impl Into<String>,
        port: u16,
        connector: HappyEyeballs,
        canonical: Description,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            connector,
            canonical,
        }
    }

    /// Build from checked arguments (for `hostname:` and `tcp:` parsers).
    pub fn from_args(args: &Args<'_>) -> Result<Self, ParseError> {
        let host_v = args.required("host")?;
        let host = host_value(&host_v)?;
        let port = args.required("port")?.port()?;
        let timeout = args.get("timeout").map(|v| v.duration()).transpose()?;
        let delay = args.get("attemptDelay").map(|v| v.duration()).transpose()?;
        let attempt_timeout = args
            .get("attemptTimeout")
            .map(|v| v.duration())
            .transpose()?;
        let bind = args.get("bindAddress").map(|v| ip_value(&v)).transpose()?;
        let mut connector = HappyEyeballs::new()
            .timeout(timeout.filter(|t| !t.is_zero()))
            .attempt_timeout(attempt_timeout.filter(|t| !t.is_zero()))
            .bind_address(bind);
        if let Some(d) = delay {
            connector = connector.attempt_delay(d);
        }
        let mut canonical = args.canonical();
        canonical.set("host", host.clone());
        if let Some(b) = bind {
            canonical.set("bindAddress", b.to_string());
        }
        Ok(Self {
            host,
            port,
            connector,
            canonical,
        })
    }

    /// Replace the resolver (tests, pinned names).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.connector = self.connector.resolver(resolver);
        self
    }

    /// The connector, for inspection.
    pub fn connector(&self) -> &HappyEyeballs {
        &self.connector
    }
}

impl fmt::Display for HostnameEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for HostnameEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        let (stream, peer) = self
            .connector
            .connect_to(&self.host, self.port)
            .await
            .map_err(|e| io_error(Operation::Connect, self, e))?;
        let local = Address::Ip(stream.local_addr()?);
        let peer = Address::Ip(peer);
        Ok(Connection::new(stream, local, peer))
    }
}

fn build(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = host_port_args(d, CLIENT_PARAMS)?;
    Ok(Box::new(HostnameEndpoint::from_args(&args)?))
}

endpoints_core::register_client! {
    prefix: "hostname",
    summary: "connect to a host name with happy eyeballs (RFC 8305)",
    params: CLIENT_PARAMS,
    build: build,
}
