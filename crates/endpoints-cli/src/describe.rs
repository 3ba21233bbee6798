//! `check` and `types`: descriptions and the registry as text and JSON.

use endpoints::registry::{self, Plugin, Side};
use endpoints::{Description, ParamKind, ParseError};
use serde_json::{Map, Value, json};

/// What `check` read: the side shown, its canonical form, and how the other side read it.
pub(crate) struct Checked {
    pub(crate) side: Side,
    pub(crate) canonical: Description,
    pub(crate) other: Other,
}

/// How the side that is not shown read the description.
pub(crate) enum Other {
    /// A side was given (`--client`/`--server`): the other was not tried.
    NotTried,
    /// The type has no endpoint type on the other side (`stdio:` is a server only).
    NoType,
    /// The other side's type rejects it (the first line of its error).
    Rejected(String),
    /// It builds on the other side too: that side's canonical form.
    Builds(Description),
}

impl Checked {
    /// Every side the description builds on, the shown one first.
    pub(crate) fn sides(&self) -> Vec<Side> {
        match self.other {
            Other::Builds(_) => vec![self.side, self.side.other()],
            _ => vec![self.side],
        }
    }

    /// One line saying how the description was read (`read as a server (--server)`).
    pub(crate) fn how_read(&self, prefix: &str) -> String {
        let (side, other) = (self.side, self.side.other());
        match &self.other {
            Other::NotTried => format!("read as a {side} (--{side})"),
            Other::NoType => format!("read as a {side} (`{prefix}` has no {other} type)"),
            Other::Rejected(why) => format!("read as a {side} (not a {other} description: {why})"),
            Other::Builds(c) => format!(
                "read as both: a {side} (shown) and a {other}, {c}; give --server or --client \
                 to choose"
            ),
        }
    }
}

/// Build `text` on `side` (or, without one, as a server if the type has a server, else as a
/// client), and say how the other side reads it.
pub(crate) fn check(text: &str, side: Option<Side>) -> Result<Checked, ParseError> {
    let d: Description = text.parse()?;
    let build = |side: Side| -> Result<Description, ParseError> {
        let shown = match side {
            Side::Server => registry::build_server(&d)?.to_string(),
            Side::Client => registry::build_client(&d)?.to_string(),
        };
        shown.parse()
    };
    if let Some(side) = side {
        return build(side).map(|canonical| Checked {
            side,
            canonical,
            other: Other::NotTried,
        });
    }
    let first_line = |e: &ParseError| e.message().to_owned();
    // No side given: the side that builds (the server when both do, as `tcp:8080` is most
    // often a port to listen on).
    match (
        registry::lookup(Side::Server, &d),
        registry::lookup(Side::Client, &d),
    ) {
        (Ok(_), Ok(_)) => match (build(Side::Server), build(Side::Client)) {
            (Ok(canonical), Ok(client)) => Ok(Checked {
                side: Side::Server,
                canonical,
                other: Other::Builds(client),
            }),
            (Ok(canonical), Err(e)) => Ok(Checked {
                side: Side::Server,
                canonical,
                other: Other::Rejected(first_line(&e)),
            }),
            (Err(e), Ok(canonical)) => Ok(Checked {
                side: Side::Client,
                canonical,
                other: Other::Rejected(first_line(&e)),
            }),
            (Err(e), Err(_)) => Err(e),
        },
        (Ok(_), Err(_)) => build(Side::Server).map(|canonical| Checked {
            side: Side::Server,
            canonical,
            other: Other::NoType,
        }),
        (Err(_), Ok(_)) => build(Side::Client).map(|canonical| Checked {
            side: Side::Client,
            canonical,
            other: Other::NoType,
        }),
        (Err(e), Err(_)) => Err(e),
    }
}

/// The plugin registered for `d`'s prefix on `side`, if any.
fn plugin_of(side: Side, d: &Description) -> Option<&'static Plugin> {
    registry::lookup(side, d).ok()
}

/// A parameter value typed as its declaration says (numbers as numbers, 0/1 as booleans).
fn typed(kind: Option<ParamKind>, text: &str) -> Value {
    match kind {
        Some(ParamKind::Port | ParamKind::UInt) => text
            .parse::<u64>()
            .map_or_else(|_| json!(text), |n| json!(n)),
        Some(ParamKind::Duration) => text.parse::<f64>().map_or_else(
            |_| json!(text),
            |n| {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    json!(n as i64)
                } else {
                    json!(n)
                }
            },
        ),
        Some(ParamKind::Bool) => json!(text != "0"),
        _ => json!(text),
    }
}

/// `{"side", "type", "params", "canonical"}`, with a wrapped endpoint (the rest of a
/// `haproxy:` description, or an `endpoint=` value) under `"wrapped"`.
pub(crate) fn to_json(side: Side, d: &Description) -> Value {
    let prefix = d.prefix().unwrap_or("").to_owned();
    let plugin = plugin_of(side, d);
    let kind_of = |name: &str| {
        plugin
            .and_then(|p| p.params().iter().find(|q| q.name == name))
            .map(|q| q.kind)
    };
    let fields = d.fields();
    let inner_at = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_positional())
        .nth(1)
        .map(|(i, _)| i);
    let own = &fields[..inner_at.unwrap_or(fields.len())];
    let mut params = Map::new();
    let mut wrapped = inner_at
        .and_then(|i| d.tail(i))
        .map(|inner| to_json(side, &inner));
    for f in own {
        let Some(key) = f.key() else { continue };
        if key == "endpoint"
            && let Ok(inner) = check(f.value(), Some(side))
        {
            wrapped = Some(to_json(inner.side, &inner.canonical));
        }
        params.insert(key.to_owned(), typed(kind_of(key), f.value()));
    }
    let mut out = Map::new();
    out.insert("side".into(), json!(side.as_str()));
    out.insert("type".into(), json!(prefix));
    out.insert("params".into(), Value::Object(params));
    out.insert("canonical".into(), json!(d.to_string()));
    if let Some(w) = wrapped {
        out.insert("wrapped".into(), w);
    }
    Value::Object(out)
}

/// `{"error": {"kind", "message", "span"}}`.
pub(crate) fn error_json(e: &ParseError) -> Value {
    let span = e.span();
    json!({"error": {"kind": e.kind().as_str(), "message": e.message(), "span": [span.start, span.end], "parameter": e.parameter(), "suggestion": e.suggestion()}})
}

/// The registered types `filter` selects (`types unix`, `types unix server`; the prefix
/// case-insensitive), or a message saying what exists.
pub(crate) fn select(filter: &[String]) -> Result<Vec<&'static Plugin>, String> {
    let all = endpoints::types();
    let (prefix, side) = match filter {
        [] => return Ok(all),
        [p] => (p, None),
        [p, s] => (p, Some(s)),
        _ => return Err("types takes at most a PREFIX and a SIDE".to_owned()),
    };
    let side = match side.map(String::as_str) {
        None => None,
        Some("server") => Some(Side::Server),
        Some("client") => Some(Side::Client),
        Some(other) => {
            return Err(format!(
                "SIDE is `client` or `server`, not `{}`",
                other.escape_debug()
            ));
        }
    };
    let of_prefix: Vec<_> = all
        .iter()
        .copied()
        .filter(|p| p.prefix().eq_ignore_ascii_case(prefix))
        .collect();
    if of_prefix.is_empty() {
        let mut prefixes: Vec<&str> = all.iter().map(|p| p.prefix()).collect();
        prefixes.dedup();
        // The registry's lookup error has the closest prefix as its suggestion.
        let hint = prefix
            .parse::<Description>()
            .ok()
            .and_then(|d| {
                [Side::Server, Side::Client].into_iter().find_map(|s| {
                    registry::lookup(s, &d)
                        .err()?
                        .suggestion()
                        .map(str::to_owned)
                })
            })
            .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
        return Err(format!(
            "no `{}` endpoint type is registered{hint} (known: {})",
            prefix.escape_debug(),
            prefixes.join(", ")
        ));
    }
    let chosen: Vec<_> = of_prefix
        .iter()
        .copied()
        .filter(|p| side.is_none_or(|s| p.side() == s))
        .collect();
    match (chosen.is_empty(), side) {
        (true, Some(s)) => Err(format!(
            "`{}` has no {s} type (it has: {})",
            prefix.escape_debug(),
            of_prefix
                .iter()
                .map(|p| p.side().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => Ok(chosen),
    }
}

/// `types` as JSON: every type of `plugins`.
pub(crate) fn types_json(plugins: &[&'static Plugin]) -> Value {
    let list: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let params: Vec<Value> = p
                .params()
                .iter()
                .map(|q| {
                    json!({
                        "name": q.name,
                        "position": q.position,
                        "type": q.kind.to_string(),
                        "default": q.default,
                        "required": q.required,
                        "help": q.help,
                    })
                })
                .collect();
            json!({"prefix": p.prefix(), "side": p.side().as_str(), "crate": p.crate_name(), "summary": p.summary(), "params": params})
        })
        .collect();
    Value::Array(list)
}

/// `types` as text: for each type its prefix, side and crate, its summary, then one line
/// per parameter with name, type, position, default and help in columns that line up over
/// every type listed.
pub(crate) fn types_text(plugins: &[&'static Plugin]) -> String {
    let rows: Vec<Vec<[String; 5]>> = plugins
        .iter()
        .map(|p| {
            p.params()
                .iter()
                .map(|q| {
                    let pos = q.position.map_or(String::new(), |i| format!("#{}", i + 1));
                    let default = match (q.required, q.default) {
                        (true, _) => "required".to_owned(),
                        (false, Some(d)) => format!("default `{d}`"),
                        (false, None) => String::new(),
                    };
                    [
                        q.name.to_owned(),
                        q.kind.to_string(),
                        pos,
                        default,
                        q.help.to_owned(),
                    ]
                })
                .collect()
        })
        .collect();
    let mut widths = [0usize; 4];
    for row in rows.iter().flatten() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (p, params) in plugins.iter().zip(&rows) {
        out.push_str(&format!(
            "{}  ({}, {})\n    {}\n",
            p.prefix(),
            p.side().as_str(),
            p.crate_name(),
            p.summary()
        ));
        for row in params {
            let mut line = String::from("    ");
            for (cell, w) in row.iter().zip(widths) {
                line.push_str(&format!("{cell:<w$}  "));
            }
            line.push_str(&row[4]);
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// `text` safe in a Markdown table cell, on GitHub and in rustdoc: `|` would end the cell,
/// `<...>` would be an HTML tag, `*` emphasis.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => in_code = !in_code,
            // Even inside a code span, a table needs `\|` (it shows as `|`).
            '|' => out.push('\\'),
            '<' if !in_code => {
                out.push_str("&lt;");
                continue;
            }
            '>' if !in_code => {
                out.push_str("&gt;");
                continue;
            }
            '*' | '_' if !in_code => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// The parameter table of `prefix` on `side`, as Markdown (`endpoints types --markdown PREFIX
/// SIDE`): the generated blocks of the README, `docs/grammar.md` and each crate's docs.
pub(crate) fn params_markdown(prefix: &str, side: &str) -> Option<String> {
    let p = endpoints::types()
        .into_iter()
        .find(|p| p.prefix() == prefix && p.side().as_str() == side)?;
    if p.params().is_empty() {
        return Some("No parameters.\n".to_owned());
    }
    let mut out = String::from(
        "| parameter | position | type | default | meaning |\n|---|---|---|---|---|\n",
    );
    for q in p.params() {
        let pos = q.position.map_or(String::new(), |i| (i + 1).to_string());
        let default = match (q.required, q.default) {
            (true, _) => "required".to_owned(),
            (false, Some("")) => "`\"\"`".to_owned(),
            (false, Some(d)) => format!("`{d}`"),
            (false, None) => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {pos} | {} | {default} | {} |\n",
            q.name,
            cell(&q.kind.to_string()),
            cell(q.help)
        ));
    }
    Some(out)
}

/// Every registered type in one table (`endpoints types --markdown`): the README's.
pub(crate) fn types_markdown() -> String {
    let mut out = String::from(
        "| prefix | side | what | parameters (positional ones first; defaults) | crate |\n|---|---|---|---|---|\n",
    );
    for p in endpoints::types() {
        let mut params: Vec<_> = p.params().iter().collect();
        params.sort_by_key(|q| q.position.unwrap_or(usize::MAX));
        let list = if params.is_empty() {
            "none".to_owned()
        } else {
            params
                .iter()
                .map(|q| match q.default {
                    Some("") => format!("`{}` (`\"\"`)", q.name),
                    Some(d) if !q.required => format!("`{}` (`{d}`)", q.name),
                    _ => format!("`{}`", q.name),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {list} | `{}` |\n",
            p.prefix(),
            p.side().as_str(),
            cell(p.summary()),
            p.crate_name()
        ));
    }
    out
}
