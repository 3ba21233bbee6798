//! Parsing `haproxy:[options:]<inner description>`.

use endpoints_core::params::{Args, Param, ParamKind, SplitAddress, misplaced_wrapper_option};
use endpoints_core::registry::{self, Plugin, Side, Transport};
use endpoints_core::{ClientEndpoint, Description, ErrorKind, Field, ParseError, ServerEndpoint};

use crate::client::{ProxyClientEndpoint, RenamedClient};
use crate::server::{ProxyServerEndpoint, ProxySettings, Renamed, Trusted, TrustedPeer, Untrusted};

/// Options of the `haproxy:` server wrapper, written before the inner type
/// (`haproxy:timeout=3:tcp:80`).
pub static SERVER_PARAMS: &[Param] = &[
    Param::optional("timeout", ParamKind::Duration)
        .default("5")
        .help("deadline for the whole PROXY header, in seconds"),
    Param::optional("maxHeader", ParamKind::UInt)
        .default("4096")
        .help("largest v2 header accepted, in bytes"),
    Param::optional("trusted", ParamKind::List)
        .help("peers allowed to send headers: CIDRs, addresses, `unix` (peers without an IP), or `any` (default: any peer, with a warning)"),
    Param::optional("untrusted", ParamKind::Choice(&["reject", "accept"]))
        .default("reject")
        .help("other peers: reject (close), or accept as plain connections without a header"),
    endpoints_util::upgrade::MAX_PENDING_PER_SOURCE_PARAM,
];

/// Options of the `haproxy:` client wrapper.
pub static CLIENT_PARAMS: &[Param] = &[Param::optional("version", ParamKind::Choice(&["1", "2"]))
    .default("1")
    .help("PROXY protocol version to send")];

/// Split `d` into the wrapper's head (prefix and options) and the inner description.
fn split(d: &Description) -> Result<(Description, Description), ParseError> {
    let fields = d.fields();
    let positions: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_positional())
        .map(|(i, _)| i)
        .collect();
    let end = d.input().map_or(0, |s| s.len());
    // `trusted=10.0.0.0/8,::1:tcp:80`: the option's IPv6 address runs into what would be read
    // as the inner description; say so before it is read as `` (the empty type).
    if let Some(&inner_at) = positions.get(1)
        && let Some(split) = SplitAddress::find(d).into_iter().find(|s| {
            let fields = s.fields();
            *fields.start() < inner_at
                && *fields.end() >= inner_at
                && fields_after(d, *fields.end()).is_some_and(|f| f.is_positional())
        })
    {
        let key = d.fields()[*split.fields().start()].key().unwrap_or("");
        return Err(split
            .error(d, ErrorKind::InvalidValue)
            .with_parameter(key.to_owned()));
    }
    let Some(&inner_at) = positions.get(1) else {
        return Err(d
            .error(
                ErrorKind::MissingParameter,
                end..end,
                "`haproxy` wraps another endpoint: write `haproxy:tcp:8080`",
            )
            .with_parameter("endpoint"));
    };
    match (d.slice(0..inner_at), d.tail(inner_at)) {
        (Some(head), Some(inner)) => Ok((head, inner)),
        _ => Err(d.error(
            ErrorKind::Syntax,
            0..end,
            "cannot split the wrapper from its inner description",
        )),
    }
}

fn fields_after(d: &Description, i: usize) -> Option<&Field> {
    d.fields().get(i + 1)
}

/// Errors of the inner description: an unknown inner parameter that is one of `haproxy:`'s
/// own options says that they go before the inner description.
fn inner_error(params: &'static [Param], inner: &Description) -> impl Fn(ParseError) -> ParseError {
    move |e| misplaced_wrapper_option(e, "haproxy", params, inner)
}

fn settings(args: &Args<'_>) -> Result<ProxySettings, ParseError> {
    let mut s = ProxySettings {
        timeout: args.required("timeout")?.duration()?,
        ..ProxySettings::default()
    };
    if s.timeout.is_zero() {
        return Err(args.required("timeout")?.invalid(
            "must be above 0: a header that never ends would hold a slot forever (the default is 5)",
        ));
    }
    s.max_pending_per_source = endpoints_util::upgrade::max_pending_per_source(args)?;
    let max = args.required("maxHeader")?;
    s.v2_max = max.u32()? as usize;
    if !(16 + 216..=65_551).contains(&s.v2_max) {
        return Err(max.invalid("expected 232 to 65551 (16 bytes plus the largest address block, up to the protocol's limit)"));
    }
    if let Some(v) = args.get("trusted") {
        // A list holding IPv6 is bracketed so that its `:` stay in the value.
        let raw = v.as_str().trim();
        let raw = raw
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(raw);
        let items: Vec<&str> = raw.split(',').map(str::trim).collect();
        s.trusted = if items == ["any"] {
            Trusted::Any
        } else {
            let mut list = Vec::new();
            for item in items {
                if item == "any" {
                    return Err(v.invalid("`any` stands alone: `trusted=any`"));
                }
                list.push(TrustedPeer::parse(item).ok_or_else(|| {
                    v.invalid(format_args!(
                        "`{item}` is not an address, a CIDR, `unix` or `any`"
                    ))
                })?);
            }
            Trusted::Only(list)
        };
    }
    s.untrusted = match args.required("untrusted")?.choice(&["reject", "accept"])? {
        "accept" => Untrusted::Accept,
        _ => Untrusted::Reject,
    };
    if s.untrusted == Untrusted::Accept && !matches!(s.trusted, Trusted::Only(_)) {
        return Err(args
            .required("untrusted")?
            .invalid("`accept` needs a `trusted=` list (the senders that must send a header)"));
    }
    Ok(s)
}

fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let (head, inner) = split(d)?;
    let args = Args::parse(&head, SERVER_PARAMS)?;
    let settings = settings(&args)?;
    let options = args.canonical();
    if let Some((plugin, transport)) = carrier(Side::Server, &inner) {
        return under_server(&options, &inner, plugin, transport)
            .map_err(inner_error(SERVER_PARAMS, &inner));
    }
    let inner_endpoint =
        registry::build_server(&inner).map_err(inner_error(SERVER_PARAMS, &inner))?;
    Ok(Box::new(ProxyServerEndpoint::new(
        inner_endpoint,
        settings,
        options,
    )))
}

/// The inner description's plugin, if it runs over a transport it declared (TLS): the PROXY
/// header then goes beneath it, on that transport.
fn carrier(side: Side, inner: &Description) -> Option<(&'static Plugin, &'static Transport)> {
    let plugin = registry::lookup(side, inner).ok()?;
    Some((plugin, plugin.transport()?))
}

/// `<plugin>` rebuilt over `haproxy:<options>:<its transport>`: the transport in its
/// declared parameter (`endpoint=`), or else its default type built from the parameters it
/// declared for it. The result and the description to show it as.
fn rebuilt_over_haproxy(
    options: &Description,
    inner: &Description,
    plugin: &'static Plugin,
    transport: &Transport,
) -> Result<(Description, Description), ParseError> {
    let stale = transport.problems(plugin.params());
    if !stale.is_empty() {
        return Err(inner.error(
            ErrorKind::InvalidValue,
            inner.prefix_field().map_or(0..0, |f| f.span()),
            format!(
                "`haproxy:` cannot go beneath `{}`: its transport declaration is wrong ({}); \
                 report this to the crate `{}`",
                plugin.prefix(),
                stale.join("; "),
                plugin.crate_name()
            ),
        ));
    }
    let args = Args::parse(inner, plugin.params())?;
    let mut wrapped = options.clone();
    let mut rebuilt = args.canonical();
    match args.get(transport.param) {
        Some(v) => {
            for f in v.nested()?.fields() {
                wrapped.push(f.clone());
            }
        }
        None => {
            wrapped.push(Field::positional(transport.default_type));
            for key in transport.passed {
                if let Some(v) = args.get(key) {
                    wrapped.push(Field::keyword(*key, v.as_str()));
                }
            }
            for key in transport.transport_only {
                rebuilt.remove(key);
            }
        }
    }
    rebuilt.set(transport.param, wrapped.to_string());
    let mut shown = options.clone();
    for f in args.canonical().fields() {
        shown.push(f.clone());
    }
    Ok((rebuilt, shown))
}

/// An error from building the rebuilt description, pointed at the inner type.
fn at_inner_type(inner: &Description) -> impl Fn(ParseError) -> ParseError + '_ {
    move |e| {
        ParseError::new(
            e.kind(),
            inner.prefix_field().map_or(0..0, |f| f.span()),
            e.message(),
        )
    }
}

/// `haproxy:ssl:...`: real haproxy sends the PROXY header in cleartext, before the TLS
/// handshake. So build TLS over `haproxy:<options>:<TLS's transport>` (as TLS declared it in
/// the registry: `tcp:<port, interface, backlog>` or its `endpoint=`), and show it as written.
fn under_server(
    options: &Description,
    inner: &Description,
    plugin: &'static Plugin,
    transport: &Transport,
) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let (rebuilt, shown) = rebuilt_over_haproxy(options, inner, plugin, transport)?;
    let built = registry::build_server(&rebuilt).map_err(at_inner_type(inner))?;
    Ok(Box::new(Renamed {
        inner: built,
        canonical: shown,
    }))
}

fn build_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let (head, inner) = split(d)?;
    let args = Args::parse(&head, CLIENT_PARAMS)?;
    let version: u8 = if args.required("version")?.choice(&["1", "2"])? == "2" {
        2
    } else {
        1
    };
    let options = args.canonical();
    if let Some((plugin, transport)) = carrier(Side::Client, &inner) {
        return under_client(&options, &inner, plugin, transport)
            .map_err(inner_error(CLIENT_PARAMS, &inner));
    }
    let inner_endpoint =
        registry::build_client(&inner).map_err(inner_error(CLIENT_PARAMS, &inner))?;
    Ok(Box::new(ProxyClientEndpoint::new(
        inner_endpoint,
        version,
        options,
    )))
}

/// `haproxy:tls:...`, `haproxy:ssl:...` (client): the header goes on the raw connection,
/// before TLS, as real haproxy's `send-proxy` on an `ssl` server line and our `haproxy:ssl:`
/// listener expect. So build TLS over `haproxy:<options>:<TLS's transport>` (as the TLS
/// plugin declared it in the registry: its `endpoint=`, or else
/// `hostname:<host, port, bindAddress>`), and show it as written.
fn under_client(
    options: &Description,
    inner: &Description,
    plugin: &'static Plugin,
    transport: &Transport,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    // Built once as written, so that errors point into the user's text.
    registry::build_client(inner)?;
    let (rebuilt, shown) = rebuilt_over_haproxy(options, inner, plugin, transport)?;
    let built = registry::build_client(&rebuilt).map_err(at_inner_type(inner))?;
    Ok(Box::new(RenamedClient {
        inner: built,
        canonical: shown,
    }))
}

endpoints_core::register_server! {
    prefix: "haproxy",
    summary: "read a PROXY protocol v1/v2 header on every connection of any server endpoint",
    params: SERVER_PARAMS,
    build: build_server,
}

endpoints_core::register_client! {
    prefix: "haproxy",
    summary: "send a PROXY protocol header first on every connection of any client endpoint",
    params: CLIENT_PARAMS,
    build: build_client,
}
