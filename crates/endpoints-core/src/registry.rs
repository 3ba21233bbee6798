//! The registry of endpoint types: plugins register themselves by being linked.
//!
//! A transport crate declares each prefix once with [`register_client!`](crate::register_client)
//! or [`register_server!`](crate::register_server). Registration uses the `inventory` crate
//! behind these macros, so a plugin only needs a dependency on `endpoints-core`, and the
//! backend can change without touching any plugin.
//!
//! Lookups are case-insensitive on both sides. Two plugins with one prefix on one side are
//! an [`Ambiguous`](ErrorKind::Ambiguous) error at lookup time, never silent shadowing.
//!
//! A crate's registrations are only present if the crate is linked into the final binary:
//! name it in code (`use endpoints_vsock as _;`). The `endpoints` umbrella does this for the
//! transports enabled by its features.

use std::fmt;

use crate::description::Description;
use crate::endpoint::{ClientEndpoint, ServerEndpoint};
use crate::error::{ErrorKind, ParseError};
use crate::params::{Param, closest, explain_build_error, watch_build};

/// Builds a client endpoint from a description whose prefix is the plugin's.
pub type BuildClient = fn(&Description) -> Result<Box<dyn ClientEndpoint>, ParseError>;
/// Builds a server endpoint from a description whose prefix is the plugin's.
pub type BuildServer = fn(&Description) -> Result<Box<dyn ServerEndpoint>, ParseError>;

/// Which side an endpoint type is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Connecting (`ClientEndpoint`).
    Client,
    /// Listening (`ServerEndpoint`).
    Server,
}

impl Side {
    /// `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }

    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy)]
enum Build {
    Client(BuildClient),
    Server(BuildServer),
}

/// How a plugin that runs over another transport (TLS over TCP) carries it, declared at
/// registration (`transport: ...` in [`register_client!`](crate::register_client) /
/// [`register_server!`](crate::register_server)). A wrapper that must go *beneath* such a
/// plugin (`haproxy:ssl:...` sends the PROXY header in cleartext, before the TLS handshake)
/// asks the registry for it instead of naming the plugin's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transport {
    /// The parameter (kind [`Description`](crate::ParamKind::Description)) that holds the
    /// transport's description (`endpoint`).
    pub param: &'static str,
    /// The endpoint type used when `param` is not given (`tcp`, `hostname`).
    pub default_type: &'static str,
    /// The plugin's parameters that describe that default transport, passed to it under the
    /// same names (`port`, `interface`, `backlog`).
    pub passed: &'static [&'static str],
    /// Of `passed`, those that describe the transport only: left out of the plugin's own
    /// description once its transport is given through `param` (a client's `bindAddress`;
    /// not its `host`, which also names the server).
    pub transport_only: &'static [&'static str],
}

impl Transport {
    /// The transport is in `param`; by default a `default_type` built from `passed`.
    pub const fn new(
        param: &'static str,
        default_type: &'static str,
        passed: &'static [&'static str],
        transport_only: &'static [&'static str],
    ) -> Self {
        Self {
            param,
            default_type,
            passed,
            transport_only,
        }
    }

    /// What is wrong with this declaration against the plugin's `params`: a name that is
    /// not declared, a `param` that is not a description, a `transport_only` name not in
    /// `passed`. Empty when it is right. The conformance suite and the plugin's tests call
    /// it, so a renamed parameter fails a test.
    pub fn problems(&self, params: &[Param]) -> Vec<String> {
        let mut bad = Vec::new();
        let find = |name: &str| params.iter().find(|p| p.name == name);
        match find(self.param) {
            Some(p) if p.kind == crate::params::ParamKind::Description => {}
            Some(p) => bad.push(format!(
                "the transport parameter `{}` is a {}, not a description",
                self.param, p.kind
            )),
            None => bad.push(format!(
                "the transport parameter `{}` is not declared",
                self.param
            )),
        }
        for name in self.passed {
            if find(name).is_none() {
                bad.push(format!(
                    "`{name}`, passed to the default transport, is not declared"
                ));
            }
        }
        for name in self.transport_only {
            if !self.passed.contains(name) {
                bad.push(format!(
                    "`{name}` is transport-only but not passed to the transport"
                ));
            }
        }
        bad
    }
}

/// One registered endpoint type. Made by the registration macros; read through
/// [`plugins`].
pub struct Plugin {
    prefix: &'static str,
    summary: &'static str,
    params: &'static [Param],
    crate_name: &'static str,
    build: Build,
    transport: Option<Transport>,
}

impl Plugin {
    #[doc(hidden)]
    pub const fn __client(
        prefix: &'static str,
        summary: &'static str,
        params: &'static [Param],
        build: BuildClient,
        crate_name: &'static str,
    ) -> Self {
        Self {
            prefix,
            summary,
            params,
            crate_name,
            build: Build::Client(build),
            transport: None,
        }
    }

    #[doc(hidden)]
    pub const fn __server(
        prefix: &'static str,
        summary: &'static str,
        params: &'static [Param],
        build: BuildServer,
        crate_name: &'static str,
    ) -> Self {
        Self {
            prefix,
            summary,
            params,
            crate_name,
            build: Build::Server(build),
            transport: None,
        }
    }

    #[doc(hidden)]
    pub const fn __with_transport(self, transport: Transport) -> Self {
        Self {
            transport: Some(transport),
            ..self
        }
    }

    /// How this plugin carries the transport it runs over, if it declared one (TLS: in
    /// `endpoint=`, by default TCP or happy eyeballs built from its own parameters).
    pub fn transport(&self) -> Option<&Transport> {
        self.transport.as_ref()
    }

    /// The type prefix, as registered.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// Client or server.
    pub fn side(&self) -> Side {
        match self.build {
            Build::Client(_) => Side::Client,
            Build::Server(_) => Side::Server,
        }
    }

    /// One line describing the endpoint type.
    pub fn summary(&self) -> &'static str {
        self.summary
    }

    /// The declared parameters.
    pub fn params(&self) -> &'static [Param] {
        self.params
    }

    /// The crate that registered it (`CARGO_PKG_NAME` where the macro was used).
    pub fn crate_name(&self) -> &'static str {
        self.crate_name
    }

    /// Build a client endpoint; `None` if this is a server plugin. A plugin that asks
    /// [`Args`](crate::params::Args) for a parameter it did not declare gets a
    /// [`PluginBug`](ErrorKind::PluginBug) error here, naming it and the parameter.
    pub fn build_client(
        &self,
        d: &Description,
    ) -> Option<Result<Box<dyn ClientEndpoint>, ParseError>> {
        match self.build {
            Build::Client(f) => Some(watch_build(self.prefix, self.crate_name, || f(d))),
            Build::Server(_) => None,
        }
    }

    /// Build a server endpoint; `None` if this is a client plugin (plugin bugs as for
    /// [`build_client`](Self::build_client)).
    pub fn build_server(
        &self,
        d: &Description,
    ) -> Option<Result<Box<dyn ServerEndpoint>, ParseError>> {
        match self.build {
            Build::Server(f) => Some(watch_build(self.prefix, self.crate_name, || f(d))),
            Build::Client(_) => None,
        }
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("prefix", &self.prefix)
            .field("side", &self.side())
            .field("crate_name", &self.crate_name)
            .finish()
    }
}

inventory::collect!(Plugin);

/// Every registered plugin, both sides, in no particular order.
pub fn plugins() -> impl Iterator<Item = &'static Plugin> {
    inventory::iter::<Plugin>.into_iter()
}

/// The registered prefixes of one side, sorted and without duplicates.
pub fn prefixes(side: Side) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = plugins()
        .filter(|p| p.side() == side)
        .map(|p| p.prefix)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The plugin for `prefix` on `side` (case-insensitive).
///
/// Errors: [`UnknownType`](ErrorKind::UnknownType) (with the known prefixes and the closest
/// one), or [`Ambiguous`](ErrorKind::Ambiguous) when two plugins claim the prefix. The error's
/// span is the prefix field of `d`.
pub fn lookup(side: Side, d: &Description) -> Result<&'static Plugin, ParseError> {
    let whole = 0..d.input().map_or(0, |s| s.len());
    let Some(field) = d.prefix_field() else {
        return Err(d.error(
            ErrorKind::UnknownType,
            whole,
            format!("the description has no endpoint type; start it with one, as in `tcp:{d}`"),
        ));
    };
    let prefix = field.value();
    let span = field.span();
    let matches: Vec<&'static Plugin> = plugins()
        .filter(|p| p.side() == side && p.prefix.eq_ignore_ascii_case(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(unknown_type(side, d, prefix, span)),
        many => {
            let crates: Vec<String> = many.iter().map(|p| format!("`{}`", p.crate_name)).collect();
            Err(d.error(
                ErrorKind::Ambiguous,
                span,
                format!(
                    "{side} endpoint type `{}` is registered more than once (by {}); link only one of them",
                    prefix.to_ascii_lowercase(),
                    crates.join(" and ")
                ),
            ))
        }
    }
}

fn unknown_type(
    side: Side,
    d: &Description,
    prefix: &str,
    span: std::ops::Range<usize>,
) -> ParseError {
    let known = prefixes(side);
    let listing = if known.is_empty() {
        "no endpoint types are linked into this program".to_owned()
    } else {
        format!("known {side} types: {}", known.join(", "))
    };
    if let Some(e) = host_and_port(side, d, span.clone()) {
        return e;
    }
    if prefix.is_empty() {
        return d.error(
            ErrorKind::UnknownType,
            span,
            format!("missing endpoint type before `:` ({listing})"),
        );
    }
    if prefix.bytes().all(|b| b.is_ascii_digit()) {
        // In a wrapper (`haproxy:8080`), keep the wrapper: insert the type before the port.
        let fixed = match d
            .input()
            .and_then(|i| Some((i.get(..span.start)?, i.get(span.start..)?)))
        {
            Some((before, after)) => format!("{before}tcp:{after}"),
            None => format!("tcp:{d}"),
        };
        return d
            .error(
                ErrorKind::UnknownType,
                span,
                format!(
                    "`{prefix}` is not an endpoint type: a bare port is not accepted, name the type"
                ),
            )
            .with_suggestion(fixed);
    }
    let lower = prefix.to_ascii_lowercase();
    if plugins().any(|p| p.side() == side.other() && p.prefix.eq_ignore_ascii_case(prefix)) {
        if side == Side::Server
            && let Some(e) = crate::params::secure_server_form(d, span.clone(), prefix, &listing)
        {
            return e;
        }
        return d.error(
            ErrorKind::UnknownType,
            span,
            format!(
                "`{lower}` is a {} endpoint type and cannot be used as a {side} ({listing})",
                side.other()
            ),
        );
    }
    if let Some(p) = PROVIDERS.iter().find(|p| p.prefix == lower) {
        let how = format!(
            "it is provided by the `{krate}` crate, which is not linked into this program: add \
             it and name it in code (`use {module} as _;`), or enable the `{feature}` feature \
             of `endpoints`",
            krate = p.krate,
            module = p.krate.replace('-', "_"),
            feature = p.feature,
        );
        let msg = if p.sides.contains(&side) {
            format!("unknown {side} endpoint type `{lower}`: {how} ({listing})")
        } else {
            format!(
                "`{lower}` is a {} endpoint type, not a {side} one ({listing})",
                side.other()
            )
        };
        return d.error(ErrorKind::UnknownType, span, msg);
    }
    let e = d.error(
        ErrorKind::UnknownType,
        span,
        format!("unknown {side} endpoint type `{lower}` ({listing})"),
    );
    match closest(prefix, known.iter().copied()) {
        Some(s) => e.with_suggestion(s),
        None => e,
    }
}

/// An endpoint type that a crate of this project provides.
struct Provider {
    prefix: &'static str,
    krate: &'static str,
    /// The feature of the `endpoints` umbrella that links it.
    feature: &'static str,
    sides: &'static [Side],
}

const BOTH: &[Side] = &[Side::Client, Side::Server];

/// The prefixes this project's crates provide, so that an unknown one that is merely not
/// linked says which crate to link.
const PROVIDERS: &[Provider] = &[
    Provider {
        prefix: "tcp",
        krate: "endpoints-tcp",
        feature: "tcp",
        sides: BOTH,
    },
    Provider {
        prefix: "tcp6",
        krate: "endpoints-tcp6",
        feature: "tcp6",
        sides: &[Side::Server],
    },
    Provider {
        prefix: "hostname",
        krate: "endpoints-hostname",
        feature: "hostname",
        sides: &[Side::Client],
    },
    Provider {
        prefix: "unix",
        krate: "endpoints-unix",
        feature: "unix",
        sides: BOTH,
    },
    Provider {
        prefix: "systemd",
        krate: "endpoints-systemd",
        feature: "systemd",
        sides: &[Side::Server],
    },
    Provider {
        prefix: "tls",
        krate: "endpoints-tls",
        feature: "tls",
        sides: BOTH,
    },
    Provider {
        prefix: "ssl",
        krate: "endpoints-tls",
        feature: "tls",
        sides: BOTH,
    },
    Provider {
        prefix: "haproxy",
        krate: "endpoints-proxy",
        feature: "proxy",
        sides: BOTH,
    },
    Provider {
        prefix: "exec",
        krate: "endpoints-exec",
        feature: "exec",
        sides: &[Side::Client],
    },
    Provider {
        prefix: "stdio",
        krate: "endpoints-stdio",
        feature: "stdio",
        sides: &[Side::Server],
    },
];

/// `localhost:7000`, `127.0.0.1:7000`, `[::1]:7000`, `::1:7000`: a host and a port with no
/// type. Suggest the `tcp:` description (for a server, the host is the `interface`).
fn host_and_port(side: Side, d: &Description, span: std::ops::Range<usize>) -> Option<ParseError> {
    let fields = d.fields();
    if fields.len() < 2 || fields.iter().any(|f| !f.is_positional()) {
        return None;
    }
    let (last, rest) = fields.split_last()?;
    let port = last.value();
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host: Vec<&str> = rest.iter().map(|f| f.value()).collect();
    let host = host.join(":");
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host);
    let ip = bare.parse::<std::net::IpAddr>().ok();
    let is_name = rest.len() == 1
        && !host.is_empty()
        && host.len() <= 253
        && (host.eq_ignore_ascii_case("localhost") || host.contains('.'))
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ip.is_none() && !is_name {
        return None;
    }
    let shown = match ip {
        Some(std::net::IpAddr::V6(a)) => format!("[{a}]"),
        Some(a) => a.to_string(),
        None => host.clone(),
    };
    let fixed = match side {
        Side::Client => format!("tcp:{shown}:{port}"),
        Side::Server => {
            let interface = match ip {
                Some(_) => shown.clone(),
                None if host.eq_ignore_ascii_case("localhost") => "127.0.0.1".to_owned(),
                None => return None,
            };
            format!("tcp:{port}:interface={interface}")
        }
    };
    // In a wrapper (`haproxy:localhost:7000`), keep the text around the inner description.
    let fixed = match (d.input(), fields.first(), fields.last()) {
        (Some(input), Some(first), Some(last)) if first.span().start <= last.span().end => {
            let (start, end) = (first.span().start, last.span().end);
            match (input.get(..start), input.get(end..)) {
                (Some(before), Some(after)) => format!("{before}{fixed}{after}"),
                _ => fixed,
            }
        }
        _ => fixed,
    };
    let what = match side {
        Side::Client => "a host and port",
        Side::Server => "an address and port",
    };
    let whole = span.start..fields.last().map_or(span.end, |f| f.span().end);
    Some(
        d.error(
            ErrorKind::UnknownType,
            whole,
            format!("`{host}:{port}` is {what} without an endpoint type: name the type"),
        )
        .with_suggestion(fixed),
    )
}

/// How deeply descriptions may nest (`haproxy:haproxy:tcp:80` is 3 levels; a TLS endpoint
/// built over `endpoint=` counts one more per level). Deeper is a
/// [`Syntax`](ErrorKind::Syntax) error, so a hostile description cannot exhaust the stack.
pub const MAX_DEPTH: usize = 16;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One level of [`build_client`]/[`build_server`] on this thread; the depth goes back down
/// when dropped (on errors and panics too).
struct Level;

impl Level {
    fn enter(d: &Description) -> Result<Self, ParseError> {
        let depth = DEPTH.with(|c| c.get()) + 1;
        if depth > MAX_DEPTH {
            let span = d
                .prefix_field()
                .map_or(0..d.input().map_or(0, |s| s.len()), |f| f.span());
            return Err(d.error(
                ErrorKind::Syntax,
                span,
                format!("descriptions nested more than {MAX_DEPTH} levels deep; remove wrappers"),
            ));
        }
        DEPTH.with(|c| c.set(depth));
        Ok(Self)
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// Which endpoint types a description may use, checked at every nesting level: a wrapper's
/// inner description (`tls:...:endpoint=exec\:...`, `haproxy:exec:...`) is built through
/// [`build_client`]/[`build_server`] like the outer one, so a third-party wrapper is covered
/// without doing anything.
///
/// Give descriptions from someone you do not trust a policy: `exec:` runs programs, `unix:`
/// reaches local sockets, `tcp:` any host your network can reach.
///
/// ```
/// use endpoints_core::registry::{TypePolicy, build_client_with};
/// use endpoints_core::{Description, ErrorKind};
///
/// let untrusted = TypePolicy::deny(["exec"]);
/// let d: Description = "EXEC:sh:-c:rm -rf ~".parse()?;
/// let e = build_client_with(&d, &untrusted).unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::NotAllowed);
/// assert_eq!(e.span(), 0..4); // the prefix
/// assert_eq!(e.message(), "endpoint type `exec` is not allowed here (this program refuses: exec)");
/// // Nested in a wrapper (`tls:...:endpoint=exec\:...`), the error is the wrapper's, in the
/// // parameter that holds it: "in `endpoint=`: endpoint type `exec` is not allowed here ...".
///
/// assert!(TypePolicy::allow(["tcp", "tls"]).permits("TLS"));
/// assert!(!TypePolicy::allow(["tcp", "tls"]).and(&untrusted).permits("exec"));
/// # Ok::<(), endpoints_core::ParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TypePolicy {
    /// Every rule must permit a type (policies in scope combine this way).
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Rule {
    /// Only these (lower case).
    Allow(Vec<String>),
    /// All but these (lower case).
    Deny(Vec<String>),
}

fn lowered<I, S>(prefixes: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut v: Vec<String> = prefixes
        .into_iter()
        .map(|p| p.as_ref().to_ascii_lowercase())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl TypePolicy {
    /// Every type (no rule).
    pub fn any() -> Self {
        Self::default()
    }

    /// Only the types `prefixes` (case-insensitive), at every level: `allow(["tls", "tcp"])`
    /// accepts `tls:db:5432` and refuses `tls:...:endpoint=unix\:...`.
    pub fn allow<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            rules: vec![Rule::Allow(lowered(prefixes))],
        }
    }

    /// Every type but `prefixes` (case-insensitive), at every level.
    pub fn deny<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            rules: vec![Rule::Deny(lowered(prefixes))],
        }
    }

    /// Both this policy and `other`: a type must be permitted by each.
    pub fn and(mut self, other: &TypePolicy) -> Self {
        self.rules.extend(other.rules.iter().cloned());
        self
    }

    /// Whether this policy lets `prefix` be used (case-insensitive).
    pub fn permits(&self, prefix: &str) -> bool {
        let p = prefix.to_ascii_lowercase();
        self.rules.iter().all(|r| match r {
            Rule::Allow(list) => list.contains(&p),
            Rule::Deny(list) => !list.contains(&p),
        })
    }

    /// Whether it permits every type.
    pub fn is_any(&self) -> bool {
        self.rules
            .iter()
            .all(|r| matches!(r, Rule::Deny(list) if list.is_empty()))
    }

    /// The types named by its rules (allowed or denied), for checking them against the
    /// registered ones.
    pub fn named(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| match r {
            Rule::Allow(l) | Rule::Deny(l) => l.iter().map(String::as_str),
        })
    }

    /// The error for `d`, whose type this policy refuses.
    fn refusal(&self, d: &Description, field: &crate::description::Field) -> ParseError {
        let prefix = field.value().to_ascii_lowercase();
        let mut allowed: Option<Vec<&str>> = None;
        let mut denied: Vec<&str> = Vec::new();
        for r in &self.rules {
            match r {
                Rule::Allow(list) => {
                    let l: Vec<&str> = list.iter().map(String::as_str).collect();
                    allowed = Some(match allowed {
                        None => l,
                        Some(prev) => prev.into_iter().filter(|p| l.contains(p)).collect(),
                    });
                }
                Rule::Deny(list) => denied.extend(list.iter().map(String::as_str)),
            }
        }
        let why = match allowed {
            Some(a) => {
                let a: Vec<&str> = a.into_iter().filter(|p| !denied.contains(p)).collect();
                if a.is_empty() {
                    "this program allows no endpoint type here".to_owned()
                } else {
                    format!("this program allows only: {}", a.join(", "))
                }
            }
            None => format!("this program refuses: {}", denied.join(", ")),
        };
        d.error(
            ErrorKind::NotAllowed,
            field.span(),
            format!("endpoint type `{prefix}` is not allowed here ({why})"),
        )
    }
}

impl fmt::Display for TypePolicy {
    /// `any`, or the rules: `allow exec,tcp`, `deny exec`, joined by ` and `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("any");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            match r {
                Rule::Allow(l) => write!(f, "allow {}", l.join(","))?,
                Rule::Deny(l) => write!(f, "deny {}", l.join(","))?,
            }
        }
        Ok(())
    }
}

thread_local! {
    /// The policies in scope on this thread ([`with_policy`]); all of them apply.
    static POLICIES: std::cell::RefCell<Vec<TypePolicy>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Pops the policy [`with_policy`] pushed (on panics too).
struct InScope;

impl Drop for InScope {
    fn drop(&mut self) {
        POLICIES.with(|p| {
            p.borrow_mut().pop();
        });
    }
}

/// Run `f` with `policy` in force for every description built on this thread meanwhile
/// ([`build_client`], [`build_server`], and so the description types of the `endpoints`
/// crate parsed by clap or serde inside `f`). Scopes nest: the inner one can only narrow.
pub fn with_policy<R>(policy: &TypePolicy, f: impl FnOnce() -> R) -> R {
    POLICIES.with(|p| p.borrow_mut().push(policy.clone()));
    let _scope = InScope;
    f()
}

/// The policy in force on this thread: those of every enclosing [`with_policy`] together
/// ([`TypePolicy::any`] outside any).
pub fn current_policy() -> TypePolicy {
    POLICIES.with(|p| {
        p.borrow()
            .iter()
            .fold(TypePolicy::any(), |acc, x| acc.and(x))
    })
}

/// An error when the policy in force refuses `d`'s type (a missing type is left to
/// [`lookup`], which says so).
fn check_policy(d: &Description) -> Result<(), ParseError> {
    let Some(field) = d.prefix_field().filter(|f| !f.value().is_empty()) else {
        return Ok(());
    };
    let policy = current_policy();
    if policy.permits(field.value()) {
        Ok(())
    } else {
        Err(policy.refusal(d, field))
    }
}

/// [`build_client`] with `policy` in force at every level (see [`with_policy`]).
pub fn build_client_with(
    d: &Description,
    policy: &TypePolicy,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    with_policy(policy, || build_client(d))
}

/// [`build_server`] with `policy` in force at every level (see [`with_policy`]).
pub fn build_server_with(
    d: &Description,
    policy: &TypePolicy,
) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    with_policy(policy, || build_server(d))
}

/// Look up the prefix of `d` and build a client endpoint from it. Wrappers build their
/// inner description with this too; past [`MAX_DEPTH`] levels it is an error, and so is a
/// type the [`TypePolicy`] in force refuses ([`with_policy`]).
///
/// A plugin's error gets the hints that need the registry: a URL (`tcp://db:5432`) gets the
/// description it means, and a parameter that only the type's server declares says so.
pub fn build_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let _level = Level::enter(d)?;
    check_policy(d)?;
    let plugin = lookup(Side::Client, d)?;
    match plugin.build_client(d) {
        Some(r) => r.map_err(|e| explain_build_error(Side::Client, plugin, d, e)),
        None => unreachable!("lookup(Client) returned a server plugin"),
    }
}

/// Look up the prefix of `d` and build a server endpoint from it. Wrappers build their
/// inner description with this too; past [`MAX_DEPTH`] levels it is an error, and so is a
/// type the [`TypePolicy`] in force refuses ([`with_policy`]).
///
/// A plugin's error gets the hints that need the registry: a URL (`tcp://0.0.0.0:8080`) gets
/// the description it means, and a parameter that only the type's client declares says so.
pub fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let _level = Level::enter(d)?;
    check_policy(d)?;
    let plugin = lookup(Side::Server, d)?;
    match plugin.build_server(d) {
        Some(r) => r.map_err(|e| explain_build_error(Side::Server, plugin, d, e)),
        None => unreachable!("lookup(Server) returned a client plugin"),
    }
}

/// Register a client endpoint type. Use once per prefix, at module level:
///
/// ```text
/// endpoints_core::register_client! {
///     prefix: "vsock",
///     summary: "connect to a VM socket",
///     params: PARAMS,
///     build: build_client,
/// }
/// ```
///
/// A plugin that runs over another transport (TLS over TCP) also says how it carries it, so
/// that wrappers can go beneath it (see [`Transport`](crate::registry::Transport)):
///
/// ```text
/// endpoints_core::register_client! {
///     prefix: "tls",
///     summary: "TLS over happy eyeballs or any client endpoint",
///     params: PARAMS,
///     transport: Transport::new("endpoint", "hostname", &["host", "port", "bindAddress"], &["bindAddress"]),
///     build: build_client,
/// }
/// ```
///
/// `build` is a `fn(&Description) -> Result<Box<dyn ClientEndpoint>, ParseError>`.
#[macro_export]
macro_rules! register_client {
    (prefix: $prefix:expr, summary: $summary:expr, params: $params:expr, build: $build:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::registry::Plugin::__client($prefix, $summary, $params, $build, ::core::env!("CARGO_PKG_NAME"))
        }
    };
    (prefix: $prefix:expr, summary: $summary:expr, params: $params:expr, transport: $transport:expr, build: $build:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::registry::Plugin::__client($prefix, $summary, $params, $build, ::core::env!("CARGO_PKG_NAME"))
                .__with_transport($transport)
        }
    };
}

/// Register a server endpoint type. Same form as [`register_client!`](crate::register_client);
/// `build` is a `fn(&Description) -> Result<Box<dyn ServerEndpoint>, ParseError>`.
#[macro_export]
macro_rules! register_server {
    (prefix: $prefix:expr, summary: $summary:expr, params: $params:expr, build: $build:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::registry::Plugin::__server($prefix, $summary, $params, $build, ::core::env!("CARGO_PKG_NAME"))
        }
    };
    (prefix: $prefix:expr, summary: $summary:expr, params: $params:expr, transport: $transport:expr, build: $build:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::registry::Plugin::__server($prefix, $summary, $params, $build, ::core::env!("CARGO_PKG_NAME"))
                .__with_transport($transport)
        }
    };
}
