//! `endpoints run FILE`: the file of named tunnels (TOML), read and checked whole before
//! anything listens.
//!
//! ```toml
//! metrics = "tcp:9100:interface=127.0.0.1"
//!
//! [tunnel.web]
//! listen = "haproxy:tls:/etc/letsencrypt/live:443"
//! connect = "unix:/run/app.sock"
//! max-connections = 2000
//! ```
//!
//! Every error names `FILE:LINE:COL`, shows the line with a caret under the place (inside a
//! description: the parameter the description's own error points at) and says the fix. All
//! errors are collected, not only the first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use endpoints::ParseError;
use endpoints::registry::{self, TypePolicy};
use serde::Deserialize;
use toml::Spanned;

use crate::flags::{MAX_CONNECTIONS, MAX_SECONDS};
use crate::pump::HalfClose;

/// The file as TOML gives it (spans kept for the errors).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    metrics: Option<Spanned<String>>,
    log_level: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
    pid_file: Option<Spanned<String>>,
    allow_types: Option<Spanned<Vec<String>>>,
    deny_types: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    tunnel: BTreeMap<Spanned<String>, Spanned<RawTunnel>>,
}

/// One `[tunnel.NAME]` table as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTunnel {
    listen: Option<Spanned<String>>,
    connect: Option<Spanned<String>>,
    echo: Option<Spanned<bool>>,
    exec: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<f64>>,
    drain_timeout: Option<Spanned<f64>>,
    linger: Option<Spanned<f64>>,
    half_close: Option<Spanned<String>>,
    allow_types: Option<Spanned<Vec<String>>>,
    deny_types: Option<Spanned<Vec<String>>>,
}

/// What a tunnel does with each connection.
#[derive(Clone, Debug)]
pub(crate) enum Does {
    /// Relay to this client description (`connect`, or `exec` as `exec:` + its value).
    Connect(String),
    /// Echo every byte back.
    Echo,
}

/// One tunnel, checked.
#[derive(Debug)]
pub(crate) struct Tunnel {
    pub(crate) name: String,
    /// The listen description as written.
    pub(crate) listen: String,
    /// Its canonical form (what `--check` prints).
    pub(crate) listen_canonical: String,
    pub(crate) does: Does,
    /// The target's canonical form, for `Does::Connect`.
    pub(crate) connect_canonical: Option<String>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) drain_timeout: Option<Duration>,
    pub(crate) linger: Option<Duration>,
    pub(crate) half_close: HalfClose,
    pub(crate) policy: TypePolicy,
}

/// The whole file, checked.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) metrics: Option<(String, String)>,
    pub(crate) pid_file: Option<String>,
    pub(crate) tunnels: Vec<Tunnel>,
}

/// The log settings only, read leniently before the log starts (the full check reports
/// any error later, in the log).
pub(crate) fn log_settings(path: &str) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Log {
        log_level: Option<String>,
        log_format: Option<String>,
    }
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| toml::from_str::<Log>(&t).ok())
        .map(|l| (l.log_level, l.log_format))
        .unwrap_or_default()
}

/// The errors of one file, rendered.
struct Errors<'a> {
    path: &'a str,
    text: &'a str,
    all: Vec<String>,
}

impl Errors<'_> {
    /// `FILE:LINE:COL: what`, the line with carets under `span` (bytes of the file), `fix`.
    fn at(&mut self, span: Range<usize>, what: &str, fix: &str) {
        let start = span.start.min(self.text.len());
        let end = span.end.clamp(start, self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line_no = self.text[..start].matches('\n').count() + 1;
        // The line as shown: secret values (`password=`, `env=NAME=`) as `***`.
        let shown = endpoints::Redacted::new(&self.text[line_start..line_end]);
        let line = shown.text();
        let (from, to) = (
            shown.map(start - line_start, false),
            shown.map(end.min(line_end) - line_start, true),
        );
        // The column is the file's (for an editor); the caret is under the line as shown.
        let col = self.text[line_start..start].chars().count() + 1;
        let pad = line[..from].chars().count();
        let width = line[from..to.max(from)].chars().count().max(1);
        let mut m = format!(
            "{}:{line_no}:{col}: {what}\n  {line}\n  {}{}",
            self.path,
            " ".repeat(pad),
            "^".repeat(width)
        );
        if !fix.is_empty() {
            m.push_str("\n  fix: ");
            m.push_str(fix);
        }
        self.all.push(m);
    }

    /// A description's error: placed inside the string in the file when the string is
    /// written without escapes (its bytes are the description's), else at the string with
    /// the description's own caret lines.
    fn description(&mut self, value: &Spanned<String>, what: &str, e: &ParseError) {
        let span = value.span();
        let written = self.text.get(span.clone()).unwrap_or("");
        let inner = written
            .get(1..written.len().saturating_sub(1))
            .unwrap_or("");
        let fix = e
            .suggestion()
            .map(str::to_owned)
            .unwrap_or_else(|| "`endpoints types` lists the types and their parameters; `endpoints check DESC` checks one description".to_owned());
        let message = e.message();
        if inner == value.get_ref()
            && (written.starts_with('"') || written.starts_with('\''))
            && e.input().is_none_or(|i| i == value.get_ref())
        {
            let s = e.span();
            let start = span.start + 1 + s.start.min(inner.len());
            let end = span.start + 1 + s.end.min(inner.len());
            self.at(start..end.max(start), &format!("{what}: {message}"), &fix);
        } else {
            let carets = e
                .caret_lines()
                .map(|l| format!("\n{l}"))
                .unwrap_or_default();
            self.at(span, &format!("{what}: {message}{carets}"), &fix);
        }
    }
}

/// Read and check `path`: every error, rendered, or the tunnels.
pub(crate) fn load(path: &str, default_policy: &TypePolicy) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("{path}: cannot read the tunnels file: {e}; give the path of a TOML file (`endpoints run --help`)")
    })?;
    check(path, &text, default_policy)
}

/// Check the file's text (see [`load`]).
pub(crate) fn check(path: &str, text: &str, default_policy: &TypePolicy) -> Result<Config, String> {
    let mut errors = Errors {
        path,
        text,
        all: Vec::new(),
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let fix = if e.message().contains("unknown field") {
                "remove or correct the key (the keys are listed in the README's `endpoints run` section)"
            } else if e.message().contains("duplicate key") {
                "give each tunnel its own name, and each key once"
            } else {
                "see the TOML syntax at toml.io and the README's `endpoints run` section"
            };
            errors.at(e.span().unwrap_or(0..0), e.message().trim_end(), fix);
            return Err(errors.all.join("\n"));
        }
    };
    let file_policy = match policy_of(
        &mut errors,
        default_policy,
        raw.allow_types.as_ref(),
        raw.deny_types.as_ref(),
    ) {
        Some(p) => p,
        None => default_policy.clone(),
    };
    let metrics = raw.metrics.as_ref().and_then(|m| {
        match endpoints::server_with(m.get_ref(), &file_policy) {
            Ok(s) => Some((m.get_ref().clone(), s.to_string())),
            Err(e) => {
                errors.description(m, "metrics (a server description)", &e);
                None
            }
        }
    });
    if let Some(l) = &raw.log_level
        && !["off", "error", "warn", "info", "debug", "trace"]
            .contains(&l.get_ref().to_ascii_lowercase().as_str())
    {
        errors.at(
            l.span(),
            &format!("log-level: `{}` is not a level", l.get_ref().escape_debug()),
            "one of off, error, warn, info, debug, trace",
        );
    }
    if let Some(f) = &raw.log_format
        && !["text", "json"].contains(&f.get_ref().as_str())
    {
        errors.at(
            f.span(),
            &format!(
                "log-format: `{}` is not a format",
                f.get_ref().escape_debug()
            ),
            "text or json",
        );
    }
    let mut entries: Vec<_> = raw.tunnel.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    if entries.is_empty() {
        errors.at(
            text.len()..text.len(),
            "no tunnel: the file names none",
            "add one: [tunnel.NAME] with listen = \"DESC\" and connect = \"DESC\" (or echo = true)",
        );
    }
    let mut tunnels = Vec::new();
    // The address each tunnel listens on, to refuse two on one.
    let mut addresses: Vec<(Address, String)> = Vec::new();
    if let Some((_, canonical)) = &metrics
        && let Some(a) = address_of(canonical)
    {
        addresses.push((a, "metrics".to_owned()));
    }
    for (name, table) in entries {
        if let Some(t) = tunnel(&mut errors, name, table, &file_policy) {
            if let Some(a) = address_of(&t.listen_canonical) {
                if let Some((_, other)) = addresses.iter().find(|(b, _)| a.clashes(b)) {
                    let span = table
                        .get_ref()
                        .listen
                        .as_ref()
                        .map_or(name.span(), Spanned::span);
                    errors.at(
                        span,
                        &format!(
                            "tunnel `{}`: listens on the address {other} listens on ({a})",
                            t.name
                        ),
                        "give each tunnel its own port or socket path",
                    );
                } else {
                    addresses.push((a, format!("tunnel `{}`", t.name)));
                }
            }
            tunnels.push(t);
        }
    }
    if !errors.all.is_empty() {
        return Err(errors.all.join("\n"));
    }
    Ok(Config {
        metrics,
        pid_file: raw.pid_file.map(Spanned::into_inner),
        tunnels,
    })
}

/// A type policy from `allow-types`/`deny-types` over `base`; `None` (and an error) if bad.
fn policy_of(
    errors: &mut Errors<'_>,
    base: &TypePolicy,
    allow: Option<&Spanned<Vec<String>>>,
    deny: Option<&Spanned<Vec<String>>>,
) -> Option<TypePolicy> {
    if allow.is_none() && deny.is_none() {
        return Some(base.clone());
    }
    let allow_list: Vec<String> = allow.map(|a| a.get_ref().join(",")).into_iter().collect();
    let deny_list: Vec<String> = deny.map(|d| d.get_ref().join(",")).into_iter().collect();
    match crate::flags::type_policy(&allow_list, &deny_list) {
        Ok(Some(p)) => Some(base.clone().and(&p)),
        Ok(None) => Some(base.clone()),
        Err(e) => {
            let span = allow.or(deny).map_or(0..0, Spanned::span);
            errors.at(
                span,
                &e.replace("--allow-types", "allow-types")
                    .replace("--deny-types", "deny-types"),
                "name registered types (`endpoints types` lists them)",
            );
            None
        }
    }
}

/// Check one `[tunnel.NAME]`.
fn tunnel(
    errors: &mut Errors<'_>,
    name: &Spanned<String>,
    table: &Spanned<RawTunnel>,
    file_policy: &TypePolicy,
) -> Option<Tunnel> {
    let n = name.get_ref();
    let t = table.get_ref();
    let before = errors.all.len();
    if n.is_empty()
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errors.at(
            name.span(),
            &format!("tunnel `{}`: not a usable name", n.escape_debug()),
            "letters, digits, `-`, `_` and `.` only (the name is a metrics label and a log prefix)",
        );
    }
    let policy = policy_of(
        errors,
        file_policy,
        t.allow_types.as_ref(),
        t.deny_types.as_ref(),
    )
    .unwrap_or_else(|| file_policy.clone());
    let Some(listen) = &t.listen else {
        errors.at(
            table.span(),
            &format!("tunnel `{n}`: no `listen`"),
            "add listen = \"DESC\" (a server description, e.g. \"tcp:8080:interface=127.0.0.1\")",
        );
        return None;
    };
    let listen_canonical = match registry::build_server_with(
        &match listen.get_ref().parse() {
            Ok(d) => d,
            Err(e) => {
                errors.description(listen, &format!("tunnel `{n}`: listen"), &e);
                return None;
            }
        },
        &policy,
    ) {
        Ok(s) => s.to_string(),
        Err(e) => {
            errors.description(listen, &format!("tunnel `{n}`: listen"), &e);
            return None;
        }
    };
    let chosen: Vec<&str> = [
        t.connect.as_ref().map(|_| "connect"),
        t.echo.as_ref().filter(|e| *e.get_ref()).map(|_| "echo"),
        t.exec.as_ref().map(|_| "exec"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if chosen.len() != 1 {
        errors.at(
            name.span(),
            &format!(
                "tunnel `{n}`: {}",
                if chosen.is_empty() {
                    "says nothing to do with a connection".to_owned()
                } else {
                    format!("has both {}", chosen.join(" and "))
                }
            ),
            "give exactly one of connect = \"DESC\", echo = true, exec = \"PROGRAM\"",
        );
        return None;
    }
    let (does, connect_canonical) = if let Some(c) = &t.connect {
        match endpoints::client_with(c.get_ref(), &policy) {
            Ok(e) => (Does::Connect(c.get_ref().clone()), Some(e.to_string())),
            Err(e) => {
                errors.description(c, &format!("tunnel `{n}`: connect"), &e);
                return None;
            }
        }
    } else if let Some(x) = &t.exec {
        let desc = format!("exec:{}", x.get_ref());
        match endpoints::client_with(&desc, &policy) {
            Ok(e) => (Does::Connect(desc), Some(e.to_string())),
            Err(e) => {
                errors.at(
                    x.span(),
                    &format!(
                        "tunnel `{n}`: exec: {}",
                        e.to_string().replace('\n', "\n  ")
                    ),
                    e.suggestion().unwrap_or(
                        "the rest of an `exec:` description: a program and its arguments",
                    ),
                );
                return None;
            }
        }
    } else {
        (Does::Echo, None)
    };
    let max_connections =
        t.max_connections
            .as_ref()
            .and_then(|m| match usize::try_from(*m.get_ref()) {
                Ok(v) if (1..=MAX_CONNECTIONS).contains(&v) => Some(v),
                _ => {
                    errors.at(
                        m.span(),
                        &format!(
                            "tunnel `{n}`: max-connections: {} is out of range",
                            m.get_ref()
                        ),
                        &format!("a whole number from 1 to {MAX_CONNECTIONS}"),
                    );
                    None
                }
            });
    let mut secs = |v: &Option<Spanned<f64>>, key: &str, zero_ok: bool| {
        let v = v.as_ref()?;
        let s = *v.get_ref();
        let ok = s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) && (zero_ok || s > 0.0);
        match Duration::try_from_secs_f64(s) {
            Ok(d) if ok && (zero_ok || !d.is_zero()) => Some(d),
            _ => {
                errors.at(
                    v.span(),
                    &format!("tunnel `{n}`: {key}: {s} is out of range"),
                    &format!(
                        "seconds, {} to {MAX_SECONDS} (decimals allowed)",
                        if zero_ok { "0" } else { "more than 0" }
                    ),
                );
                None
            }
        }
    };
    let idle_timeout = secs(&t.idle_timeout, "idle-timeout", false);
    let drain_timeout = secs(&t.drain_timeout, "drain-timeout", true);
    let linger = secs(&t.linger, "linger", true);
    let half_close = match &t.half_close {
        None => HalfClose::Auto,
        Some(h) => match h.get_ref().parse() {
            Ok(h) => h,
            Err(e) => {
                errors.at(
                    h.span(),
                    &format!("tunnel `{n}`: half-close: {e}"),
                    "auto, always or never",
                );
                HalfClose::Auto
            }
        },
    };
    if errors.all.len() != before {
        return None;
    }
    Some(Tunnel {
        name: n.clone(),
        listen: listen.get_ref().clone(),
        listen_canonical,
        does,
        connect_canonical,
        max_connections,
        idle_timeout,
        drain_timeout,
        linger,
        half_close,
        policy,
    })
}

/// The socket a server description listens on, read from its canonical form: the last
/// `tcp`/`tcp6`/`tls` (port, interface) or `unix` (path) in it. Port 0 (any free port) is none.
#[derive(Debug, PartialEq, Eq)]
enum Address {
    Tcp { port: String, interface: String },
    Unix(String),
}

impl Address {
    /// Two listeners cannot both have it: the same path, or the same port where either
    /// interface is the wildcard or both are the same.
    fn clashes(&self, other: &Address) -> bool {
        match (self, other) {
            (Self::Unix(a), Self::Unix(b)) => a == b,
            (
                Self::Tcp {
                    port: p,
                    interface: i,
                },
                Self::Tcp {
                    port: q,
                    interface: j,
                },
            ) => {
                let any = |i: &str| matches!(i, "" | "0.0.0.0" | "::" | "\\:\\:");
                p == q && (i == j || any(i) || any(j))
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { port, interface } if interface.is_empty() => write!(f, "port {port}"),
            Self::Tcp { port, interface } => write!(f, "port {port} on {interface}"),
            Self::Unix(p) => write!(f, "the socket {p}"),
        }
    }
}

fn address_of(canonical: &str) -> Option<Address> {
    // Split on the unescaped colons.
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = canonical.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    let at = fields
        .iter()
        .rposition(|f| matches!(f.as_str(), "tcp" | "tcp6" | "unix" | "tls" | "ssl"))?;
    let kind = fields[at].as_str();
    let get = |key: &str| {
        fields[at + 1..]
            .iter()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    match kind {
        "unix" => get("address").or_else(|| get("path")).map(Address::Unix),
        _ => {
            let port = get("port")?;
            if port == "0" {
                return None;
            }
            Some(Address::Tcp {
                port,
                interface: get("interface").unwrap_or_default(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_clash_on_the_same_port() {
        let a = address_of("ws:path=/x:tcp:port=8080:interface=:backlog=1").expect("an address");
        let b = address_of("tcp:port=8080:interface=127.0.0.1:backlog=1").expect("an address");
        assert!(a.clashes(&b));
        assert!(address_of("tcp:port=0:interface=").is_none());
    }
}
