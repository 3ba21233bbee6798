//! Suggestions: what to say when a description does not fit (an unbracketed IPv6 address, a
//! wrapper's option after the inner description, a misspelt parameter), and the hints that
//! need the registry, which `registry::build_client`/`build_server` add to every plugin's
//! errors (a URL, a parameter of the type's other side).

use std::ops::Range;

use super::{Param, ParamKind};
use crate::description::{Description, Field};
use crate::error::{ErrorKind, ParseError};
use crate::registry::{Plugin, Side, plugins};

/// An IPv6 address (or IPv6 CIDR) that the grammar split into several fields at its
/// unescaped colons: `tcp:::1:7000` is the fields `tcp`, ``, ``, `1`, `7000`, and
/// `interface=::1` is `interface=`, ``, `1`. Wrappers use it to explain such errors.
///
/// ```
/// use endpoints_core::params::SplitAddress;
/// use endpoints_core::{Description, ErrorKind};
///
/// let d: Description = "tcp:host=::1:port=7000".parse()?;
/// let split = &SplitAddress::find(&d)[0];
/// assert_eq!(split.address(), "::1");
/// let e = split.error(&d, ErrorKind::InvalidValue);
/// assert_eq!(e.span(), 9..12);
/// assert_eq!(e.suggestion(), Some("tcp:host=[::1]:port=7000"));
/// # Ok::<(), endpoints_core::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitAddress {
    pub(super) first: usize,
    pub(super) last: usize,
    address: String,
    /// The address's text in the input.
    span: Range<usize>,
    /// The value text to bracket (for a list, the whole value).
    bracket: Range<usize>,
    /// Where the address starts in the first field's (unescaped) value.
    offset: usize,
}

impl SplitAddress {
    /// The runs of fields that join (with `:`) into an IPv6 address or CIDR, in field order,
    /// the longest first for each starting field. A run starts in a field after the type
    /// prefix, positional or keyword; in a comma-separated list it starts after the last `,`.
    pub fn find(d: &Description) -> Vec<Self> {
        let fields = d.fields();
        let prefix_at = fields.iter().position(Field::is_positional);
        let mut found = Vec::new();
        for (i, first) in fields.iter().enumerate() {
            if Some(i) == prefix_at || first.value().starts_with('[') {
                continue;
            }
            let offset = first.value().rfind(',').map_or(0, |c| c + 1);
            let mut joined = first.value()[offset..].to_owned();
            let mut runs = Vec::new();
            for (j, next) in fields.iter().enumerate().skip(i + 1) {
                // The longest IPv6 CIDR text is 49 characters.
                if !next.is_positional() || joined.len() > 49 {
                    break;
                }
                joined.push(':');
                joined.push_str(next.value());
                if is_ipv6_or_cidr(&joined) {
                    runs.push((j, joined.clone()));
                }
            }
            let value = first.value_span();
            let raw_offset = d
                .input()
                .and_then(|input| input.get(value.clone()))
                .and_then(|raw| raw.rfind(','))
                .map_or(0, |c| c + 1);
            for (j, address) in runs.into_iter().rev() {
                let end = fields[j].value_span().end;
                found.push(Self {
                    first: i,
                    last: j,
                    address,
                    span: value.start + raw_offset..end,
                    bracket: value.start..end,
                    offset,
                });
            }
        }
        found
    }

    /// The address as the user meant it (`::1`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The indexes of the first and last fields it was split into.
    pub fn fields(&self) -> std::ops::RangeInclusive<usize> {
        self.first..=self.last
    }

    /// The address's byte span in the input.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// `d` with the split fields joined again into one bracketed field (`[::1]`, or for a
    /// list value `[10.0.0.0/8,::1]`), to check that the bracketed form fits.
    pub fn rejoined(&self, d: &Description) -> Description {
        let fields = d.fields();
        let first = &fields[self.first];
        let mut value = format!("[{}", first.value());
        for f in &fields[self.first + 1..=self.last] {
            value.push(':');
            value.push_str(f.value());
        }
        value.push(']');
        let mut out: Vec<Field> = fields[..self.first].to_vec();
        out.push(match first.key() {
            Some(key) => Field::keyword(key, value),
            None => Field::positional(value),
        });
        out.extend_from_slice(&fields[self.last + 1..]);
        Description::from_fields(out).unwrap_or_else(|| d.clone())
    }

    /// The whole input with the address bracketed, when `d` was parsed from text.
    pub fn fixed_input(&self, d: &Description) -> Option<String> {
        let input = d.input()?;
        let inside = input.get(self.bracket.clone())?;
        Some(format!(
            "{}[{inside}]{}",
            &input[..self.bracket.start],
            &input[self.bracket.end..]
        ))
    }

    /// An error of `kind` pointing at the address, that says it was split and suggests the
    /// input with the address in brackets.
    pub fn error(&self, d: &Description, kind: ErrorKind) -> ParseError {
        let addr = &self.address;
        let list = if self.offset > 0 {
            " (bracket the whole list)"
        } else {
            ""
        };
        let e = d.error(
            kind,
            self.span(),
            format!(
                "`{addr}` is an IPv6 address split at its colons (`:` separates fields): \
                 write it in brackets, `[{addr}]`{list}, or escape its colons"
            ),
        );
        let fixed = self.fixed_input(d).unwrap_or_else(|| format!("[{addr}]"));
        e.with_suggestion(fixed)
    }
}

/// An IPv6 address, or an IPv6 address with a `/prefix` of 0 to 128.
fn is_ipv6_or_cidr(text: &str) -> bool {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    addr.parse::<std::net::Ipv6Addr>().is_ok()
        && bits.is_none_or(|b| {
            !b.is_empty()
                && b.len() <= 3
                && b.bytes().all(|c| c.is_ascii_digit())
                && b.parse::<u8>().is_ok_and(|n| n <= 128)
        })
}

/// For wrappers (`haproxy:[options:]<inner>`): if `error`, from building `inner`, is an
/// unknown parameter of the inner type that is one of the wrapper's own `params`, say that
/// the wrapper's options go before the inner description and suggest the input with the
/// option moved there (`haproxy:tcp:7000:timeout=3` becomes `haproxy:timeout=3:tcp:7000`).
/// Any other error is returned unchanged.
///
/// ```
/// use endpoints_core::params::{Param, ParamKind, misplaced_wrapper_option};
/// use endpoints_core::{Description, ErrorKind, ParseError};
///
/// static WRAPPER: &[Param] = &[Param::optional("timeout", ParamKind::Duration)];
/// let d: Description = "haproxy:tcp:7000:timeout=3".parse()?;
/// let inner = d.tail(1).expect("inner");
/// let e = ParseError::new(ErrorKind::UnknownParameter, 17..24, "unknown parameter `timeout` for `tcp`")
///     .with_parameter("timeout");
/// let e = misplaced_wrapper_option(e, "haproxy", WRAPPER, &inner);
/// assert_eq!(e.suggestion(), Some("haproxy:timeout=3:tcp:7000"));
/// # Ok::<(), ParseError>(())
/// ```
pub fn misplaced_wrapper_option(
    error: ParseError,
    wrapper: &str,
    params: &[Param],
    inner: &Description,
) -> ParseError {
    // Not for a kind that cannot be misplaced, nor twice (the innermost wrapper said it).
    if error.kind() != ErrorKind::UnknownParameter || error.message().contains("options go before")
    {
        return error;
    }
    let Some(key) = error
        .parameter()
        .filter(|k| params.iter().any(|p| p.name == *k))
    else {
        return error;
    };
    let Some(field) = inner
        .fields()
        .iter()
        .find(|f| f.key() == Some(key) && f.key_span() == Some(error.span()))
    else {
        return error;
    };
    let inner_type = inner.prefix().unwrap_or("").to_ascii_lowercase();
    let e = inner
        .error(
            ErrorKind::UnknownParameter,
            error.span(),
            format!(
                "`{key}` is an option of `{wrapper}:`, not of `{inner_type}`: `{wrapper}:`'s \
                 options go before the inner description"
            ),
        )
        .with_parameter(key.to_owned());
    // Move the field's text (and the `:` before it) in front of the inner description.
    let fixed = inner
        .input()
        .zip(inner.fields().first())
        .and_then(|(input, first)| {
            let span = field.span();
            let text = input.get(span.clone())?;
            let at = first.span().start;
            let cut = span.start.checked_sub(1)?..span.end;
            if input.get(cut.clone()) != Some(&format!(":{text}")[..]) {
                return None;
            }
            Some(format!(
                "{}{text}:{}{}",
                input.get(..at)?,
                input.get(at..cut.start)?,
                input.get(cut.end..)?
            ))
        });
    match fixed {
        Some(f) => e.with_suggestion(f),
        None => e,
    }
}

pub(super) fn example_for(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Port => "8080",
        ParamKind::UInt => "1",
        ParamKind::Duration => "30",
        ParamKind::Mode => "660",
        ParamKind::Bool => "1",
        ParamKind::Path => "/path",
        ParamKind::Host => "example.com",
        ParamKind::Description => "tcp\\:host\\:port",
        ParamKind::Choice(words) => match words.first() {
            Some(w) => w,
            None => "...",
        },
        ParamKind::Text | ParamKind::List => "...",
    }
}

pub(super) fn unknown_parameter(
    description: &Description,
    prefix: &str,
    params: &'static [Param],
    field: &Field,
    key: &str,
) -> ParseError {
    let span = field.key_span().unwrap_or_else(|| field.span());
    let e = description
        .error(
            ErrorKind::UnknownParameter,
            span.clone(),
            format!("unknown parameter `{key}` for `{prefix}`"),
        )
        .with_parameter(key);
    match closest(key, params.iter().map(|p| p.name)) {
        Some(s) => e.with_suggestion(s),
        None => {
            let names: Vec<&str> = params.iter().map(|p| p.name).collect();
            if names.is_empty() {
                e
            } else {
                let msg = format!("{} (it takes: {})", e.message(), names.join(", "));
                description
                    .error(ErrorKind::UnknownParameter, span, msg)
                    .with_parameter(key)
            }
        }
    }
}

/// The candidate closest to `word` (case-insensitive optimal-string-alignment distance),
/// if it is close enough to be a plausible typo; else the shortest candidate that starts
/// with `word` when `word` has four characters or more (`caCerts` for `caCertsDir`).
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let w = word.to_lowercase();
    let count = w.chars().count();
    let limit = match count {
        0 => return None,
        1..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    let candidates: Vec<&'c str> = candidates.into_iter().collect();
    candidates
        .iter()
        .map(|&c| (distance(&w, &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .filter(|c| count >= 4 && c.to_lowercase().starts_with(&w))
                .min_by_key(|c| c.len())
        })
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The hints that need the registry, for the error `error` of `plugin` building `d` on
/// `side` (called by [`registry::build_client`](crate::registry::build_client) and
/// [`build_server`](crate::registry::build_server), so every plugin gets them): a URL gets
/// the description it means, and a parameter that the same prefix declares on the other side
/// says so. Any other error is returned unchanged.
pub(crate) fn explain_build_error(
    side: Side,
    plugin: &'static Plugin,
    d: &Description,
    error: ParseError,
) -> ParseError {
    if let Some(e) = url_form(side, plugin, d, &error) {
        return e;
    }
    let error = other_side_parameter(side, plugin, d, error);
    sibling_type_parameter(side, plugin, d, error)
}

/// `ws:localhost:17004:trustRoots=ca.pem`: `trustRoots` is a parameter of `wss`, a type of
/// the same side whose name is one edit away and that takes every parameter the description
/// names. The suggestion is the input with the type replaced. Any other error is returned
/// unchanged.
fn sibling_type_parameter(
    side: Side,
    plugin: &'static Plugin,
    d: &Description,
    error: ParseError,
) -> ParseError {
    if error.kind() != ErrorKind::UnknownParameter {
        return error;
    }
    let Some(key) = error.parameter().map(str::to_owned) else {
        return error;
    };
    let typed = d.prefix().unwrap_or("");
    if !error
        .message()
        .starts_with(&format!("unknown parameter `{key}` for `{typed}`"))
    {
        return error;
    }
    let fields = d.fields();
    let Some(at) = fields.iter().position(Field::is_positional) else {
        return error;
    };
    let keys: Vec<&str> = fields[at + 1..].iter().filter_map(Field::key).collect();
    let own = plugin.prefix().to_ascii_lowercase();
    let sibling = plugins()
        .filter(|p| p.side() == side && !p.prefix().eq_ignore_ascii_case(&own))
        .filter(|p| distance(&own, &p.prefix().to_ascii_lowercase()) == 1)
        .find(|p| keys.iter().all(|k| p.params().iter().any(|q| q.name == *k)));
    let (Some(sibling), Some(input)) = (sibling, d.input()) else {
        return error;
    };
    let prefix_span = fields[at].span();
    let (Some(before), Some(after)) =
        (input.get(..prefix_span.start), input.get(prefix_span.end..))
    else {
        return error;
    };
    let other = sibling.prefix().to_ascii_lowercase();
    d.error(
        ErrorKind::UnknownParameter,
        error.span(),
        format!("unknown parameter `{key}` for `{own}`: `{key}` is a parameter of `{other}`"),
    )
    .with_parameter(key)
    .with_suggestion(format!("{before}{other}{after}"))
}

/// `wss:tcp:17051` as a server: `wss` is a client type only, but `ws` serves over a `tls`
/// server. For a client-only type `Xs` whose `X` has a server type, when a `tls` server type
/// is linked: the error with the suggestion `X:tls:...` (the inner description, if any, as
/// the `tls` server's description parameter, a placeholder for each required parameter).
pub(crate) fn secure_server_form(
    d: &Description,
    span: Range<usize>,
    prefix: &str,
    listing: &str,
) -> Option<ParseError> {
    let lower = prefix.to_ascii_lowercase();
    let base = lower.strip_suffix('s')?;
    let server = |name: &str| {
        plugins().find(|p| p.side() == Side::Server && p.prefix().eq_ignore_ascii_case(name))
    };
    server(base)?;
    let tls = server("tls")?;
    let input = d.input()?;
    let before = input.get(..span.start)?;
    let inner = input.get(span.end..)?.strip_prefix(':').unwrap_or("");
    let mut text = format!("{before}{base}:tls");
    let mut placeholders = Vec::new();
    for q in tls.params().iter().filter(|q| q.required) {
        placeholders.push(format!("`{}`", q.name));
        text.push_str(&format!(":{}={}", q.name, example_for(q.kind)));
    }
    if !inner.is_empty() {
        let q = tls
            .params()
            .iter()
            .find(|q| q.kind == ParamKind::Description)?;
        text.push_str(&format!(
            ":{}={}",
            q.name,
            crate::description::escape(inner)
        ));
    }
    let mut message = format!(
        "`{lower}` is a client endpoint type and cannot be used as a server: a `{lower}` server \
         is `{base}` over a `tls` server (`{base}:tls:...`)"
    );
    if !placeholders.is_empty() {
        message.push_str(&format!(": give your own {}", placeholders.join(", ")));
    }
    message.push_str(&format!(" ({listing})"));
    Some(
        d.error(ErrorKind::UnknownType, span, message)
            .with_suggestion(text),
    )
}

/// `unix:address=/run/a.sock` as a client: `address` is a parameter of `unix` servers. The
/// suggestion is the parameter of this side at the same position with the same kind (the
/// client's `path`), else the closest name.
fn other_side_parameter(
    side: Side,
    plugin: &'static Plugin,
    d: &Description,
    error: ParseError,
) -> ParseError {
    if error.kind() != ErrorKind::UnknownParameter {
        return error;
    }
    let Some(key) = error.parameter().map(str::to_owned) else {
        return error;
    };
    let typed = d.prefix().unwrap_or("");
    // Only the plain error of this type's own check: not one a wrapper or an inner type has
    // already explained.
    if !error
        .message()
        .starts_with(&format!("unknown parameter `{key}` for `{typed}`"))
        || !d
            .fields()
            .iter()
            .any(|f| f.key() == Some(&key) && f.key_span() == Some(error.span()))
    {
        return error;
    }
    let Some(theirs) = plugins()
        .filter(|p| p.side() == side.other() && p.prefix().eq_ignore_ascii_case(plugin.prefix()))
        .find_map(|p| p.params().iter().find(|q| q.name == key))
    else {
        return error;
    };
    let own = plugin.params();
    let counterpart = own
        .iter()
        .find(|q| q.position.is_some() && q.position == theirs.position && q.kind == theirs.kind)
        .map(|q| q.name)
        .or_else(|| closest(&key, own.iter().map(|q| q.name)));
    let prefix = plugin.prefix().to_ascii_lowercase();
    let other = side.other();
    let head = format!(
        "unknown parameter `{key}` for a `{prefix}` {side}: `{key}` is a parameter of `{prefix}` {other}s"
    );
    match counterpart {
        Some(name) => d
            .error(ErrorKind::UnknownParameter, error.span(), head)
            .with_parameter(key)
            .with_suggestion(name),
        None => {
            let names: Vec<&str> = own.iter().map(|q| q.name).collect();
            let takes = if names.is_empty() {
                format!("a {side} takes no parameters")
            } else {
                format!("a {side} takes: {}", names.join(", "))
            };
            d.error(
                ErrorKind::UnknownParameter,
                error.span(),
                format!("{head} only ({takes})"),
            )
            .with_parameter(key)
        }
    }
}

/// The parts of a URL written where a description was expected (`tcp://0.0.0.0:8080`).
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
}

/// `//host[:port][/path]`, `//[v6]:port`, `///path` (the text after `scheme:`).
fn split_url(rest: &str) -> Option<Url<'_>> {
    let rest = rest.strip_prefix("//")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, after) = authority.split_at(close + 1);
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
        || host.contains(['@', '?', '#'])
    {
        return None;
    }
    Some(Url { host, port, path })
}

/// `tcp://0.0.0.0:8080` (server) is `tcp:8080:interface=0.0.0.0`, `tcp://db:5432` (client) is
/// `tcp:db:5432`, `unix:///run/a.sock` is `unix:/run/a.sock`: the description is made from the
/// declared parameters (`host`, `port`, `interface`, a positional path), preferring the
/// positional form when it builds, else every parameter by name with a placeholder for each
/// required one the URL does not give.
fn url_form(
    side: Side,
    plugin: &'static Plugin,
    d: &Description,
    error: &ParseError,
) -> Option<ParseError> {
    let input = d.input()?;
    let fields = d.fields();
    let at = fields.iter().position(Field::is_positional)?;
    let prefix = &fields[at];
    if !fields.get(at + 1)?.value().starts_with("//") {
        return None;
    }
    let (start, end) = (prefix.span().start, fields.last()?.span().end);
    let url = split_url(input.get(prefix.span().end..end)?.strip_prefix(':')?)?;
    let own = plugin.params();
    let find = |name: &str| own.iter().find(|q| q.name == name);
    let position = |name: &str| find(name).and_then(|q| q.position);
    let typed = prefix.value();
    let host = match (side, url.host) {
        (Side::Server, h) if h.eq_ignore_ascii_case("localhost") => "127.0.0.1",
        (_, h) => h,
    };
    let mut named: Vec<(&'static str, String)> = Vec::new();
    // The URL's path (and, for a client, its query), kept as the type's `path` parameter where
    // it has one. A server matches paths only.
    let path = match side {
        Side::Server => url.path.split_once('?').map_or(url.path, |(p, _)| p),
        Side::Client => url.path,
    };
    let url_path = (!path.is_empty() && path != "/" && !url.host.is_empty()).then_some(path);
    let path_param = url_path.and_then(|_| {
        own.iter()
            .find(|q| q.name == "path" && q.position.is_none() && q.kind == ParamKind::Text)
    });
    let path_field = match (url_path, path_param) {
        (Some(p), Some(q)) => format!(":{}={}", q.name, crate::description::escape(p)),
        _ => String::new(),
    };
    if let (Some(p), Some(q)) = (url_path, path_param) {
        named.push((q.name, p.to_owned()));
    }
    let positional = match (side, url.port) {
        (Side::Client, Some(port)) if !host.is_empty() => {
            named.push((find("host")?.name, host.to_owned()));
            named.push((find("port")?.name, port.to_owned()));
            (position("host") == Some(0) && position("port") == Some(1))
                .then(|| format!("{typed}:{host}:{port}{path_field}"))
        }
        // `wss://example.com/chat`: the type's default port.
        (Side::Client, None) if !host.is_empty() && find("port").is_some_and(|q| !q.required) => {
            named.push((find("host")?.name, host.to_owned()));
            (position("host") == Some(0)).then(|| format!("{typed}:{host}{path_field}"))
        }
        // A wrapper server without a port of its own (`ws://0.0.0.0:8080` is `ws:` over
        // `tcp:8080:interface=0.0.0.0`); kept only if it builds.
        (Side::Server, Some(port)) if find("port").is_none() => {
            let interface = if host.is_empty() {
                String::new()
            } else {
                format!(":interface={host}")
            };
            let options = path_field
                .strip_prefix(':')
                .map_or(String::new(), |f| format!("{f}:"));
            let fixed = format!("{typed}:{options}tcp:{port}{interface}");
            let builds = fixed
                .parse::<Description>()
                .is_ok_and(|c| plugin.build_server(&c).is_some_and(|r| r.is_ok()));
            if !builds {
                return None;
            }
            return Some(url_error(d, error, start, end, &fixed, &[], None));
        }
        (Side::Server, Some(port)) => {
            named.push((find("port")?.name, port.to_owned()));
            let interface = match (host.is_empty(), find("interface")) {
                (true, _) => String::new(),
                (false, Some(q)) => {
                    named.push((q.name, host.to_owned()));
                    format!(":interface={host}")
                }
                (false, None) => return None,
            };
            (position("port") == Some(0)).then(|| format!("{typed}:{port}{interface}{path_field}"))
        }
        (_, None) if url.host.is_empty() && !url.path.is_empty() => {
            let q = own
                .iter()
                .find(|q| q.position == Some(0) && q.kind == ParamKind::Path)?;
            named.push((q.name, url.path.to_owned()));
            Some(format!("{typed}:{}", crate::description::escape(url.path)))
        }
        _ => return None,
    };
    let builds = |text: &str| {
        text.parse::<Description>().is_ok_and(|c| match side {
            Side::Client => plugin.build_client(&c).is_some_and(|r| r.is_ok()),
            Side::Server => plugin.build_server(&c).is_some_and(|r| r.is_ok()),
        })
    };
    let mut placeholders = Vec::new();
    let fixed = match positional {
        Some(t) if builds(&t) => t,
        positional => {
            let mut text = typed.to_owned();
            for q in own {
                let value = match named.iter().find(|(n, _)| *n == q.name) {
                    Some((_, v)) => v.clone(),
                    None if q.required => {
                        placeholders.push(q.name);
                        example_for(q.kind).to_owned()
                    }
                    None => continue,
                };
                let value = if value.starts_with('[') {
                    value
                } else {
                    crate::description::escape(&value)
                };
                text.push_str(&format!(":{}={value}", q.name));
            }
            // Neither builds (a file it names is missing, say): the shorter form, unless the
            // named one shows a required parameter the URL lacks.
            match positional {
                Some(p) if placeholders.is_empty() => p,
                _ => text,
            }
        }
    };
    let dropped = url_path.filter(|_| path_param.is_none());
    Some(url_error(
        d,
        error,
        start,
        end,
        &fixed,
        &placeholders,
        dropped,
    ))
}

/// The error for a URL at `start..end` of `d`'s input whose description is `fixed`.
fn url_error(
    d: &Description,
    error: &ParseError,
    start: usize,
    end: usize,
    fixed: &str,
    placeholders: &[&str],
    dropped_path: Option<&str>,
) -> ParseError {
    let input: &str = d.input().map_or("", |i| i);
    let whole = format!(
        "{}{fixed}{}",
        input.get(..start).unwrap_or_default(),
        input.get(end..).unwrap_or_default()
    );
    let mut message = format!(
        "`{}` is a URL, not an endpoint description (fields are separated by `:`, with no `//`)",
        input.get(start..end).unwrap_or_default()
    );
    if !placeholders.is_empty() {
        let names: Vec<String> = placeholders.iter().map(|n| format!("`{n}`")).collect();
        message.push_str(&format!(": give your own {}", names.join(", ")));
    }
    if let Some(path) = dropped_path {
        let typed = fixed.split(':').next().unwrap_or_default();
        message.push_str(&format!(
            "; a `{typed}` description has no place for the path `{path}`"
        ));
    }
    let e = d.error(error.kind(), start..end, message);
    let e = match error.parameter() {
        Some(p) => e.with_parameter(p.to_owned()),
        None => e,
    };
    e.with_suggestion(whole)
}
