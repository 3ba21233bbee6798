//! Registry behaviour with plugins registered by this test binary.

use std::fmt;
use std::io;

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::registry::{self, Side};
use endpoints_core::{
    ClientEndpoint, Connection, Description, ErrorKind, Listener, ParseError, ServerEndpoint,
    async_trait,
};

static PARAMS: &[Param] = &[Param::required("port", ParamKind::Port)
    .at(0)
    .help("a port")];

#[derive(Debug)]
struct Fake(Description);

impl fmt::Display for Fake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for Fake {
    async fn connect(&self) -> io::Result<Connection> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "fake endpoint"))
    }
}

#[async_trait]
impl ServerEndpoint for Fake {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "fake endpoint"))
    }
}

fn client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    Ok(Box::new(Fake(Args::parse(d, PARAMS)?.canonical())))
}

fn server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, PARAMS)?;
    args.required("port")?.port()?;
    Ok(Box::new(Fake(args.canonical())))
}

endpoints_core::register_client! { prefix: "fakeclient", summary: "a client", params: PARAMS, build: client }
endpoints_core::register_server! { prefix: "FakeServer", summary: "a server", params: PARAMS, build: server }
endpoints_core::register_server! { prefix: "twice", summary: "first", params: PARAMS, build: server }
endpoints_core::register_server! { prefix: "TWICE", summary: "second", params: PARAMS, build: server }

fn parse(s: &str) -> Description {
    s.parse().expect("valid description")
}

#[test]
fn lookup_is_case_insensitive_on_both_sides() -> Result<(), ParseError> {
    let e = registry::build_server(&parse("fakeserver:80"))?;
    assert_eq!(e.to_string(), "fakeserver:port=80");
    let e = registry::build_client(&parse("FAKECLIENT:81"))?;
    assert_eq!(e.to_string(), "fakeclient:port=81");
    Ok(())
}

#[test]
fn listing_reports_side_params_and_crate() {
    let p = registry::plugins()
        .find(|p| p.prefix() == "fakeclient")
        .expect("registered");
    assert_eq!(p.side(), Side::Client);
    assert_eq!(p.summary(), "a client");
    assert_eq!(p.params()[0].name, "port");
    assert_eq!(p.crate_name(), "endpoints-core");
    assert!(registry::prefixes(Side::Server).contains(&"FakeServer"));
    assert!(!registry::prefixes(Side::Server).contains(&"fakeclient"));
}

#[test]
fn two_plugins_with_one_prefix_are_ambiguous() {
    let e = registry::build_server(&parse("twice:80")).expect_err("ambiguous");
    assert_eq!(e.kind(), ErrorKind::Ambiguous);
    assert_eq!(e.span(), 0..5);
    assert!(e.message().contains("registered more than once"), "{e}");
}

#[test]
fn unknown_type_lists_known_and_suggests() {
    let e = registry::build_server(&parse("fakeservr:80")).expect_err("unknown");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert_eq!(e.span(), 0..9);
    assert_eq!(e.suggestion(), Some("FakeServer"));
    assert!(
        e.message()
            .contains("known server types: FakeServer, TWICE, twice"),
        "{e}"
    );
}

#[test]
fn wrong_side_says_so() {
    let e = registry::build_server(&parse("fakeclient:80")).expect_err("client only");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert!(
        e.message()
            .starts_with("`fakeclient` is a client endpoint type"),
        "{e}"
    );
}

#[test]
fn bare_port_says_to_name_the_type() {
    let e = registry::build_server(&parse("8080")).expect_err("bare port");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert_eq!(e.suggestion(), Some("tcp:8080"));
    assert!(
        e.message()
            .ends_with("name the type; did you mean `tcp:8080`?"),
        "{e}"
    );
}

#[test]
fn missing_type() {
    let e = registry::build_server(&parse("port=80")).expect_err("no type");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert!(e.message().contains("`tcp:port=80`"), "{e}");
    let e = registry::build_server(&parse(":80")).expect_err("empty type");
    assert!(e.message().starts_with("missing endpoint type"), "{e}");
    assert_eq!(e.span(), 0..0);
}

#[test]
fn plugin_errors_pass_through_with_spans() {
    let e = registry::build_server(&parse("fakeserver:99999")).expect_err("range");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 11..16);
    assert_eq!(e.parameter(), Some("port"));
}

/// A wrapper in the style of `haproxy:`: `wrap:<inner description>`.
fn wrap_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let inner = d.tail(1).ok_or_else(|| {
        d.error(
            ErrorKind::MissingParameter,
            0..0,
            "wrap needs an inner description",
        )
    })?;
    registry::build_server(&inner)
}

fn wrap_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let inner = d.tail(1).ok_or_else(|| {
        d.error(
            ErrorKind::MissingParameter,
            0..0,
            "wrap needs an inner description",
        )
    })?;
    registry::build_client(&inner)
}

endpoints_core::register_server! { prefix: "wrap", summary: "a wrapper", params: &[], build: wrap_server }
endpoints_core::register_client! { prefix: "wrap", summary: "a wrapper", params: &[], build: wrap_client }

#[test]
fn nesting_is_bounded_and_the_error_names_the_first_level_too_deep() {
    // issue 20 item 6: 15,000 levels must be a parse error, not a stack overflow.
    let text = format!("{}FakeServer:80", "wrap:".repeat(15_000));
    let e = registry::build_server(&parse(&text))
        .map(|_| ())
        .expect_err("too deep");
    assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
    assert!(e.message().contains("nested"), "{e}");
    let depth = registry::MAX_DEPTH;
    let at = depth * "wrap:".len();
    assert_eq!(e.span(), at..at + 4, "{e}");
    let text = format!("{}fakeclient:80", "wrap:".repeat(15_000));
    let e = registry::build_client(&parse(&text))
        .map(|_| ())
        .expect_err("too deep");
    assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");

    // Up to the limit, wrappers build; the counter is back to zero after an error.
    let ok = format!("{}FakeServer:80", "wrap:".repeat(depth - 1));
    assert!(registry::build_server(&parse(&ok)).is_ok());
    let too_deep = format!("{}FakeServer:80", "wrap:".repeat(depth));
    assert!(registry::build_server(&parse(&too_deep)).is_err());
    assert!(registry::build_server(&parse(&ok)).is_ok());
}

#[test]
fn host_and_port_without_a_type_suggest_tcp() {
    // issue 18 item 6: `--connect localhost:7000`.
    let e = registry::build_client(&parse("localhost:7000"))
        .map(|_| ())
        .expect_err("no type");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert_eq!(e.span(), 0..14);
    assert_eq!(e.suggestion(), Some("tcp:localhost:7000"));
    assert_eq!(
        e.message(),
        "`localhost:7000` is a host and port without an endpoint type: name the type; did you \
         mean `tcp:localhost:7000`?"
    );
    for (text, fixed) in [
        ("127.0.0.1:7000", "tcp:127.0.0.1:7000"),
        ("db.example.com:5432", "tcp:db.example.com:5432"),
        ("[::1]:7000", "tcp:[::1]:7000"),
        ("::1:7000", "tcp:[::1]:7000"),
    ] {
        let e = registry::build_client(&parse(text))
            .map(|_| ())
            .expect_err(text);
        assert_eq!(e.suggestion(), Some(fixed), "{text}");
    }
    let e = registry::build_server(&parse("localhost:7000"))
        .map(|_| ())
        .expect_err("no type");
    assert_eq!(e.suggestion(), Some("tcp:7000:interface=127.0.0.1"));
    let e = registry::build_server(&parse("[::1]:7000"))
        .map(|_| ())
        .expect_err("no type");
    assert_eq!(e.suggestion(), Some("tcp:7000:interface=[::1]"));
}

#[test]
fn a_known_but_unlinked_prefix_names_its_crate() {
    // issue 18 item 6: this test binary links no transport crate.
    let e = registry::build_client(&parse("tls:example.com:443"))
        .map(|_| ())
        .expect_err("unlinked");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert_eq!(e.span(), 0..3);
    assert!(
        e.message().starts_with(
            "unknown client endpoint type `tls`: it is provided by the `endpoints-tls` crate, \
             which is not linked into this program: add it and name it in code \
             (`use endpoints_tls as _;`), or enable the `tls` feature of `endpoints`"
        ),
        "{e}"
    );
    for (prefix, module) in [
        ("ssl", "endpoints_tls"),
        ("haproxy", "endpoints_proxy"),
        ("unix", "endpoints_unix"),
        ("systemd", "endpoints_systemd"),
        ("tcp6", "endpoints_tcp6"),
    ] {
        let e = registry::build_server(&parse(&format!("{prefix}:x")))
            .map(|_| ())
            .expect_err(prefix);
        assert!(
            e.message().contains(&format!("`use {module} as _;`")),
            "{e}"
        );
    }
    let e = registry::build_client(&parse("systemd:0"))
        .map(|_| ())
        .expect_err("server only");
    assert!(
        e.message()
            .starts_with("`systemd` is a server endpoint type, not a client one"),
        "{e}"
    );
}

static LAYERED: &[Param] = &[
    Param::required("port", ParamKind::Port)
        .at(0)
        .help("a port"),
    Param::optional("bindAddress", ParamKind::Host).help("local address"),
    Param::optional("endpoint", ParamKind::Description).help("the transport"),
];

fn layered(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    Ok(Box::new(Fake(Args::parse(d, LAYERED)?.canonical())))
}

endpoints_core::register_client! {
    prefix: "layered",
    summary: "runs over another transport",
    params: LAYERED,
    transport: registry::Transport::new("endpoint", "fakeclient", &["port", "bindAddress"], &["bindAddress"]),
    build: layered,
}

/// Issue 15: a plugin declares how it carries its transport; wrappers read it from the
/// registry, and a declaration naming a parameter that does not exist is caught.
#[test]
fn a_plugin_declares_its_transport_through_the_registry() -> Result<(), ParseError> {
    let p = registry::lookup(Side::Client, &parse("layered:80"))?;
    let t = p.transport().expect("declared");
    assert_eq!((t.param, t.default_type), ("endpoint", "fakeclient"));
    assert!(
        t.problems(p.params()).is_empty(),
        "{:?}",
        t.problems(p.params())
    );
    let plain = registry::lookup(Side::Client, &parse("fakeclient:80"))?;
    assert!(plain.transport().is_none());

    // A renamed parameter: every stale name is reported.
    let stale = registry::Transport::new("inner", "tcp", &["port", "bind"], &["bind", "host"]);
    let bad = stale.problems(LAYERED);
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].contains("`inner` is not declared"), "{bad:?}");
    assert!(bad[1].contains("`bind`"), "{bad:?}");
    assert!(bad[2].contains("`host` is transport-only"), "{bad:?}");
    let not_a_description = registry::Transport::new("port", "tcp", &[], &[]);
    assert!(not_a_description.problems(LAYERED)[0].contains("not a description"));
    Ok(())
}

/// Issue 23 item 6: `haproxy:8080` suggested `tcp:8080`, dropping the wrapper.
#[test]
fn a_bare_port_inside_a_wrapper_keeps_the_wrapper() {
    let e = registry::build_server(&parse("wrap:8080"))
        .map(|_| ())
        .expect_err("bare port");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert_eq!(e.span(), 5..9);
    assert_eq!(e.suggestion(), Some("wrap:tcp:8080"));
    let e = registry::build_server(&parse("wrap:wrap:8080:x=1"))
        .map(|_| ())
        .expect_err("bare port");
    assert_eq!(e.suggestion(), Some("wrap:wrap:tcp:8080:x=1"));
}

/// A type with different parameters on each side, like `unix:` (a server's `address` is a
/// client's `path`).
static SIDED_SERVER: &[Param] = &[
    Param::required("address", ParamKind::Path)
        .at(0)
        .help("where"),
    Param::optional("mode", ParamKind::Mode).help("bits"),
];
static SIDED_CLIENT: &[Param] = &[
    Param::required("path", ParamKind::Path).at(0).help("where"),
    Param::optional("timeout", ParamKind::Duration).help("deadline"),
];

fn sided_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    Ok(Box::new(Fake(Args::parse(d, SIDED_SERVER)?.canonical())))
}

fn sided_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    Ok(Box::new(Fake(Args::parse(d, SIDED_CLIENT)?.canonical())))
}

endpoints_core::register_server! { prefix: "unixish", summary: "a server", params: SIDED_SERVER, build: sided_server }
endpoints_core::register_client! { prefix: "unixish", summary: "a client", params: SIDED_CLIENT, build: sided_client }

/// Issue 23 item 6: `unix:address=...` as a client; a server-only parameter on a client. The
/// registry knows the other side's parameters, so this works for any plugin.
#[test]
fn a_parameter_of_the_other_side_says_so() {
    let text = "unixish:address=/run/a.sock";
    let e = registry::build_client(&parse(text))
        .map(|_| ())
        .expect_err("server parameter");
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(e.span(), 8..15);
    assert_eq!(e.parameter(), Some("address"));
    // The server's `address` (first positional, a path) is the client's `path`.
    assert_eq!(e.suggestion(), Some("path"));
    assert_eq!(
        e.message(),
        "unknown parameter `address` for a `unixish` client: `address` is a parameter of \
         `unixish` servers; did you mean `path`?"
    );
    // No counterpart: it says server-only and lists what the client takes.
    let e = registry::build_client(&parse("unixish:/run/a.sock:mode=600"))
        .map(|_| ())
        .expect_err("server only");
    assert_eq!((e.span(), e.parameter()), (20..24, Some("mode")));
    assert_eq!(e.suggestion(), None);
    assert_eq!(
        e.message(),
        "unknown parameter `mode` for a `unixish` client: `mode` is a parameter of `unixish` \
         servers only (a client takes: path, timeout)"
    );
    // And the other way round.
    let e = registry::build_server(&parse("unixish:path=/run/a.sock"))
        .map(|_| ())
        .expect_err("client parameter");
    assert_eq!(e.suggestion(), Some("address"));
    assert!(e.message().contains("of `unixish` clients"), "{e}");
    // Inside a wrapper the hint is made once, by the inner type.
    let e = registry::build_client(&parse("wrap:unixish:/a:mode=1"))
        .map(|_| ())
        .expect_err("server only");
    assert_eq!(e.message().matches("servers only").count(), 1, "{e}");
    // A parameter neither side declares keeps the plain message.
    let e = registry::build_client(&parse("unixish:/a:nope=1"))
        .map(|_| ())
        .expect_err("unknown");
    assert!(
        e.message()
            .starts_with("unknown parameter `nope` for `unixish`"),
        "{e}"
    );
}

/// A type with a network address on each side, like `tcp:`.
static NET_SERVER: &[Param] = &[
    Param::required("port", ParamKind::Port).at(0).help("port"),
    Param::optional("interface", ParamKind::Host)
        .at(1)
        .help("address"),
];
static NET_CLIENT: &[Param] = &[
    Param::required("host", ParamKind::Host).at(0).help("host"),
    Param::required("port", ParamKind::Port).at(1).help("port"),
];
/// A type whose server needs a path first, like `tls:`.
static CERTS_SERVER: &[Param] = &[
    Param::required("path", ParamKind::Path).at(0).help("certs"),
    Param::optional("port", ParamKind::Port).at(1).help("port"),
    Param::optional("interface", ParamKind::Host).help("address"),
];

fn net_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, NET_SERVER)?;
    args.required("port")?.port()?;
    Ok(Box::new(Fake(args.canonical())))
}

fn net_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, NET_CLIENT)?;
    let host = args.required("host")?;
    if host.as_str().contains('/') {
        return Err(host.invalid("a host name cannot contain '/'"));
    }
    args.required("port")?.port()?;
    Ok(Box::new(Fake(args.canonical())))
}

fn certs_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, CERTS_SERVER)?;
    // Like `tls:`, the path is a directory that must exist.
    let path = args.required("path")?;
    if !std::path::Path::new(path.as_str()).is_dir() {
        return Err(path.invalid("not a directory"));
    }
    if let Some(p) = args.get("port") {
        p.port()?;
    }
    Ok(Box::new(Fake(args.canonical())))
}

endpoints_core::register_server! { prefix: "webnet", summary: "a server", params: NET_SERVER, build: net_server }
endpoints_core::register_client! { prefix: "webnet", summary: "a client", params: NET_CLIENT, build: net_client }
endpoints_core::register_server! { prefix: "webcerts", summary: "a server", params: CERTS_SERVER, build: certs_server }

/// Issue 23 item 6: `tcp://0.0.0.0:8080` is a URL; the error gives the description, built
/// from the type's declared parameters (so for any plugin).
#[test]
fn a_url_gives_the_description() {
    let text = "webnet://0.0.0.0:8080";
    let e = registry::build_server(&parse(text))
        .map(|_| ())
        .expect_err("url");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 0..21);
    assert_eq!(e.parameter(), Some("port"));
    assert_eq!(e.suggestion(), Some("webnet:8080:interface=0.0.0.0"));
    assert!(
        e.message().starts_with(
            "`webnet://0.0.0.0:8080` is a URL, not an endpoint description (fields are separated \
             by `:`, with no `//`)"
        ),
        "{e}"
    );
    for (side, text, fixed) in [
        (
            Side::Client,
            "webnet://localhost:8080",
            "webnet:localhost:8080",
        ),
        (Side::Client, "webnet://[::1]:8080", "webnet:[::1]:8080"),
        (
            Side::Server,
            "webnet://[::1]:8080",
            "webnet:8080:interface=[::1]",
        ),
        (Side::Server, "webnet://:8080", "webnet:8080"),
        (
            Side::Server,
            "wrap:webnet://0.0.0.0:8080",
            "wrap:webnet:8080:interface=0.0.0.0",
        ),
        (
            Side::Server,
            "webcerts://0.0.0.0:8443",
            "webcerts:path=/path:port=8443:interface=0.0.0.0",
        ),
    ] {
        let e = match side {
            Side::Server => registry::build_server(&parse(text)).map(|_| ()),
            Side::Client => registry::build_client(&parse(text)).map(|_| ()),
        }
        .expect_err(text);
        assert_eq!(e.suggestion(), Some(fixed), "{text}: {e}");
    }
    // The type's own error is kept when the input is not a URL.
    let e = registry::build_server(&parse("webnet:x8080"))
        .map(|_| ())
        .expect_err("not a port");
    assert!(!e.message().contains("URL"), "{e}");
}

/// issue 27 item 5: a type policy applies at every nesting level, through any wrapper that
/// builds its inner description with the registry (like this test's `wrap:`), and the error
/// names the refused type and points at it.
#[test]
fn a_type_policy_is_applied_at_every_nesting_level() {
    use registry::{TypePolicy, build_client_with, build_server_with, with_policy};

    let deny = TypePolicy::deny(["FakeServer"]);
    let text = "wrap:wrap:fakeserver:80";
    let e = build_server_with(&parse(text), &deny)
        .map(|_| ())
        .expect_err("refused two levels down");
    assert_eq!(e.kind(), ErrorKind::NotAllowed, "{e}");
    assert_eq!(&text[e.span()], "fakeserver", "{e}");
    assert_eq!(
        e.message(),
        "endpoint type `fakeserver` is not allowed here (this program refuses: fakeserver)"
    );
    // The wrapper itself may be refused too, and an allow-list refuses what it does not name.
    let allow = TypePolicy::allow(["fakeserver"]);
    let e = build_server_with(&parse(text), &allow)
        .map(|_| ())
        .expect_err("wrap is not allowed");
    assert_eq!(e.span(), 0..4, "{e}");
    assert!(e.message().contains("allows only: fakeserver"), "{e}");
    let both = TypePolicy::allow(["wrap", "fakeserver"]);
    assert!(build_server_with(&parse(text), &both).is_ok());
    // Client side, case-insensitively.
    let e = build_client_with(
        &parse("WRAP:FakeClient:80"),
        &TypePolicy::deny(["fakeclient"]),
    )
    .map(|_| ())
    .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::NotAllowed);

    // Scopes nest and only narrow; outside them, everything is allowed again (even after a
    // panic inside one).
    with_policy(&TypePolicy::allow(["wrap", "fakeserver"]), || {
        with_policy(&TypePolicy::deny(["wrap"]), || {
            assert!(registry::build_server(&parse(text)).is_err());
            assert_eq!(
                registry::current_policy().to_string(),
                "allow fakeserver,wrap and deny wrap"
            );
        });
        assert!(registry::build_server(&parse(text)).is_ok());
    });
    let _ = std::panic::catch_unwind(|| {
        with_policy(&TypePolicy::deny(["wrap"]), || panic!("inside a scope"))
    });
    assert!(registry::current_policy().is_any());
    assert!(registry::build_server(&parse(text)).is_ok());

    // A refused type is refused before lookup: unknown or not, the policy says so first,
    // and a missing type is still reported as missing.
    let e = build_client_with(&parse("exec:cat"), &deny.and(&TypePolicy::deny(["exec"])))
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::NotAllowed);
    let e = build_client_with(&parse(":80"), &allow)
        .map(|_| ())
        .expect_err("no type");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
}

/// A client type with a path and a default port, and its secure sibling (`ws:`/`wss:`).
static WEB_CLIENT: &[Param] = &[
    Param::required("host", ParamKind::Host).at(0).help("host"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("80")
        .help("port"),
    Param::optional("path", ParamKind::Text).help("path"),
];
static WEBS_CLIENT: &[Param] = &[
    Param::required("host", ParamKind::Host).at(0).help("host"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("443")
        .help("port"),
    Param::optional("path", ParamKind::Text).help("path"),
    Param::optional("roots", ParamKind::Path).help("trust roots"),
];

fn web_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, WEB_CLIENT)?;
    let host = args.required("host")?;
    if host.as_str().contains('/') {
        return Err(host.invalid("a host name cannot contain '/'"));
    }
    Ok(Box::new(Fake(args.canonical())))
}

fn webs_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, WEBS_CLIENT)?;
    let host = args.required("host")?;
    if host.as_str().contains('/') {
        return Err(host.invalid("a host name cannot contain '/'"));
    }
    Ok(Box::new(Fake(args.canonical())))
}

endpoints_core::register_client! { prefix: "webby", summary: "a client", params: WEB_CLIENT, build: web_client }
endpoints_core::register_client! { prefix: "webbys", summary: "a client", params: WEBS_CLIENT, build: webs_client }

/// Issue 31 item 4, for any plugin: a URL's path is kept as the type's `path=` (a client
/// without a port gets the type's default), a path with no place is said to be dropped, and
/// a parameter of a sibling type one letter away points at that type.
#[test]
fn url_hints_keep_the_path_and_siblings_are_named() {
    for (text, fixed) in [
        (
            "webby://127.0.0.1:17002/ssh",
            "webby:127.0.0.1:17002:path=/ssh",
        ),
        (
            "webby://example.com/a:b?q=1",
            "webby:example.com:path=/a\\:b?q=1",
        ),
        ("webby://example.com/", "webby:example.com"),
        (
            "webby:localhost:17004:roots=/ca.pem",
            "webbys:localhost:17004:roots=/ca.pem",
        ),
    ] {
        let e = registry::build_client(&parse(text))
            .map(|_| ())
            .expect_err(text);
        assert_eq!(e.suggestion(), Some(fixed), "{text}: {e}");
    }
    let e = registry::build_client(&parse("webnet://db:5432/x"))
        .map(|_| ())
        .expect_err("url");
    assert_eq!(e.suggestion(), Some("webnet:db:5432"), "{e}");
    assert!(e.message().contains("no place for the path `/x`"), "{e}");
    let e = registry::build_client(&parse("webby:localhost:roots=/ca.pem"))
        .map(|_| ())
        .expect_err("sibling");
    assert!(
        e.message().contains("`roots` is a parameter of `webbys`"),
        "{e}"
    );
}
