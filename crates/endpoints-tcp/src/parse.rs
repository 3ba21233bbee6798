//! Parsers for the `tcp:` server and client descriptions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{ClientEndpoint, Description, ParseError, ServerEndpoint};
use endpoints_hostname::{CLIENT_PARAMS, HostnameEndpoint, host_port_args, ip_value};

use crate::server::{TcpServerConfig, TcpServerEndpoint};

/// Parameters of the `tcp:` server: Twisted's `port`, `interface`, `backlog` (in that
/// positional order), then the socket options.
pub static SERVER_PARAMS: &[Param] = &[
    Param::required("port", ParamKind::Port)
        .at(0)
        .help("port to listen on (0: any free port)"),
    Param::optional("interface", ParamKind::Host)
        .at(1)
        .default("")
        .help("IP address to bind (empty: every IPv4 address)"),
    Param::optional("backlog", ParamKind::UInt)
        .at(2)
        .default("1024")
        .help("accept queue length"),
    OPT_REUSEPORT,
    OPT_V6ONLY,
    OPT_NODELAY,
    OPT_KEEPALIVE,
    OPT_RECVBUF,
    OPT_SENDBUF,
];

/// `reuseport=`: shared with `tcp6:`.
pub const OPT_REUSEPORT: Param = Param::optional("reuseport", ParamKind::Bool)
    .default("0")
    .help("SO_REUSEPORT: let several listeners share the port");
/// `v6only=`: shared with `tcp6:`.
pub const OPT_V6ONLY: Param = Param::optional("v6only", ParamKind::Bool)
    .help("for an IPv6 interface: 1 accepts IPv6 only, 0 also IPv4 (default 0)");
/// `nodelay=`: shared with `tcp6:`.
pub const OPT_NODELAY: Param = Param::optional("nodelay", ParamKind::Bool)
    .default("0")
    .help("TCP_NODELAY on accepted connections");
/// `keepalive=`: shared with `tcp6:`.
pub const OPT_KEEPALIVE: Param = Param::optional("keepalive", ParamKind::Duration)
    .help("TCP keepalive idle time on accepted connections, in seconds");
/// `recvbuf=`: shared with `tcp6:`.
pub const OPT_RECVBUF: Param =
    Param::optional("recvbuf", ParamKind::UInt).help("SO_RCVBUF in bytes");
/// `sendbuf=`: shared with `tcp6:`.
pub const OPT_SENDBUF: Param =
    Param::optional("sendbuf", ParamKind::UInt).help("SO_SNDBUF in bytes");

/// Build a TCP server endpoint from checked arguments; an empty `interface` means
/// `unspecified` (`0.0.0.0` for `tcp:`, `::` for `tcp6:`). Used by `tcp:` and `tcp6:`.
pub fn server_from_args(
    args: &Args<'_>,
    unspecified: IpAddr,
) -> Result<TcpServerEndpoint, ParseError> {
    let port = args
        .required("port")?
        .port()
        .map_err(|e| client_form(args.description(), unspecified).unwrap_or(e))?;
    let iface = args.required("interface")?;
    let ip = if iface.as_str().is_empty() {
        unspecified
    } else if unspecified.is_ipv6() && iface.as_str().eq_ignore_ascii_case("localhost") {
        // `tcp6:`: the IPv6 loopback first (`ip_value` suggests IPv4's).
        return Err(iface
            .invalid(format_args!(
                "`{}` is a host name, and `interface` takes an IP address: `[::1]`, or \
                 `127.0.0.1` for IPv4",
                iface.as_str()
            ))
            .with_suggestion("[::1]"));
    } else {
        ip_value(&iface)?
    };
    let mut config = TcpServerConfig::new(SocketAddr::new(ip, port));
    config.backlog = args.required("backlog")?.u32()?;
    config.reuseport = args
        .get("reuseport")
        .map(|v| v.flag())
        .transpose()?
        .unwrap_or(false);
    if let Some(v) = args.get("v6only") {
        let only = v.flag()?;
        if only && ip.is_ipv4() {
            return Err(v.invalid("`v6only=1` needs an IPv6 interface"));
        }
        config.v6only = only;
    }
    config.nodelay = args
        .get("nodelay")
        .map(|v| v.flag())
        .transpose()?
        .unwrap_or(false);
    config.keepalive = args.get("keepalive").map(|v| v.duration()).transpose()?;
    config.recvbuf = args.get("recvbuf").map(|v| v.u32()).transpose()?;
    config.sendbuf = args.get("sendbuf").map(|v| v.u32()).transpose()?;
    let mut canonical = args.canonical();
    if !iface.as_str().is_empty() {
        canonical.set("interface", ip.to_string());
    }
    Ok(TcpServerEndpoint::new(config, canonical))
}

/// `tcp:localhost:8080` as a server: the client form (a host, then a port). The error points
/// at both and suggests the server form, `tcp:8080:interface=127.0.0.1` (`localhost` is the
/// loopback address of `unspecified`'s family; a host name gets no suggestion).
fn client_form(d: &Description, unspecified: IpAddr) -> Option<ParseError> {
    let positionals: Vec<_> = d.positionals().collect();
    let [host, port] = positionals.as_slice() else {
        return None;
    };
    let (host_text, port_text) = (host.value(), port.value());
    if d.get_field("interface").is_some()
        || host_text.is_empty()
        || port_text.parse::<u16>().is_err()
        || host_text.parse::<u16>().is_ok()
    {
        return None;
    }
    let bare = host_text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host_text);
    let interface = match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => Some(format!("[{a}]")),
        Ok(a) => Some(a.to_string()),
        Err(_) if bare.eq_ignore_ascii_case("localhost") => Some(match unspecified {
            IpAddr::V4(_) => "127.0.0.1".to_owned(),
            IpAddr::V6(_) => "[::1]".to_owned(),
        }),
        Err(_) => None,
    };
    let span = host.span().start..port.span().end;
    let e = d
        .error(
            endpoints_core::ErrorKind::InvalidValue,
            span.clone(),
            format!(
                "`{host_text}:{port_text}` is the client form (host, then port): a server takes \
                 the port first, and the address to listen on as `interface=`"
            ),
        )
        .with_parameter("port");
    let fixed = interface.and_then(|i| {
        let input = d.input()?;
        Some(format!(
            "{}{port_text}:interface={i}{}",
            input.get(..span.start)?,
            input.get(span.end..)?
        ))
    });
    Some(match fixed {
        Some(f) => e.with_suggestion(f),
        None => e,
    })
}

pub(crate) fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, SERVER_PARAMS)?;
    Ok(Box::new(server_from_args(
        &args,
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    )?))
}

pub(crate) fn build_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = host_port_args(d, CLIENT_PARAMS)?;
    Ok(Box::new(HostnameEndpoint::from_args(&args)?))
}

endpoints_core::register_server! {
    prefix: "tcp",
    summary: "listen on a TCP port (IPv4 by default; any IP literal as interface)",
    params: SERVER_PARAMS,
    build: build_server,
}

endpoints_core::register_client! {
    prefix: "tcp",
    summary: "connect over TCP; host names use happy eyeballs (RFC 8305)",
    params: CLIENT_PARAMS,
    build: build_client,
}
