//! Declared parameters and the extraction helper plugin parsers use.
//!
//! A plugin declares its parameters once, as a `static` slice of [`Param`]. The same
//! declaration drives parsing ([`Args`]), the registry listing (`endpoints types`), the
//! canonical form of a built endpoint ([`Args::canonical`]) and the docs.
//!
//! ```
//! use endpoints_core::params::{Args, Param, ParamKind};
//! use endpoints_core::Description;
//!
//! static PARAMS: &[Param] = &[
//!     Param::required("port", ParamKind::Port).at(0).help("port to listen on"),
//!     Param::optional("backlog", ParamKind::UInt).at(1).default("1024").help("accept queue length"),
//! ];
//!
//! let d: Description = "demo:8080".parse()?;
//! let args = Args::parse(&d, PARAMS)?;
//! assert_eq!(args.required("port")?.port()?, 8080);
//! assert_eq!(args.get("backlog").map(|v| v.u32()).transpose()?, Some(1024));
//!
//! let e = Args::parse(&"demo:8080:prot=1".parse()?, PARAMS).unwrap_err();
//! assert_eq!(e.message(), "unknown parameter `prot` for `demo`; did you mean `port`?");
//! # Ok::<(), endpoints_core::ParseError>(())
//! ```

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use crate::description::{Description, Field};
use crate::error::{ErrorKind, ParseError};

/// The type of a parameter's value, as shown in listings and enforced by [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamKind {
    /// A TCP/UDP port, 0 to 65535.
    Port,
    /// A non-negative integer (u32).
    UInt,
    /// Seconds, possibly fractional (`7.5`), or with a unit (`250ms`, `2s`).
    Duration,
    /// An octal file mode (`660`, `0660`, `0o660`).
    Mode,
    /// A boolean: `0`/`1` (any other integer is true), `true`/`false`, `yes`/`no`.
    Bool,
    /// A filesystem path.
    Path,
    /// A host name or IP address (IPv6 may be bracketed: `[::1]`).
    Host,
    /// Free text.
    Text,
    /// A nested endpoint description (escape its `:` and `\`).
    Description,
    /// One of a fixed set of words (compared case-insensitively).
    Choice(&'static [&'static str]),
    /// A comma-separated list.
    List,
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Port => f.write_str("port"),
            Self::UInt => f.write_str("integer"),
            Self::Duration => f.write_str("seconds"),
            Self::Mode => f.write_str("octal mode"),
            Self::Bool => f.write_str("0/1"),
            Self::Path => f.write_str("path"),
            Self::Host => f.write_str("host"),
            Self::Text => f.write_str("text"),
            Self::Description => f.write_str("description"),
            Self::Choice(words) => write!(f, "one of {}", words.join("|")),
            Self::List => f.write_str("list"),
        }
    }
}

/// One declared parameter of an endpoint type.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Param {
    /// The keyword name (case-sensitive, as in Twisted: `bindAddress`).
    pub name: &'static str,
    /// Position among the positional fields after the prefix (0-based), if it may be given
    /// positionally.
    pub position: Option<usize>,
    /// The value type.
    pub kind: ParamKind,
    /// The default, as description text; used by [`Args::get`] when the parameter is absent.
    pub default: Option<&'static str>,
    /// Whether the parameter must be given.
    pub required: bool,
    /// One line of help.
    pub help: &'static str,
}

impl Param {
    /// A required parameter.
    pub const fn required(name: &'static str, kind: ParamKind) -> Self {
        Self {
            name,
            position: None,
            kind,
            default: None,
            required: true,
            help: "",
        }
    }

    /// An optional parameter.
    pub const fn optional(name: &'static str, kind: ParamKind) -> Self {
        Self {
            required: false,
            ..Self::required(name, kind)
        }
    }

    /// It may also be given as the `index`-th positional field after the prefix.
    pub const fn at(self, index: usize) -> Self {
        Self {
            position: Some(index),
            ..self
        }
    }

    /// Its default value, as description text.
    pub const fn default(self, text: &'static str) -> Self {
        Self {
            default: Some(text),
            ..self
        }
    }

    /// Its one-line help.
    pub const fn help(self, text: &'static str) -> Self {
        Self { help: text, ..self }
    }
}

/// How to resolve a parameter given both positionally and by keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// It is a [`Duplicate`](ErrorKind::Duplicate) error (the server-side rule).
    Error,
    /// The positional field wins (Twisted's `tcp:`/`ssl:` client rule).
    PositionalWins,
}

/// A parameter value with the span it came from, and typed accessors whose errors point at it.
#[derive(Clone, Debug)]
pub struct Value<'a> {
    text: &'a str,
    span: Range<usize>,
    param: &'static str,
    prefix: &'a str,
    description: &'a Description,
    from_default: bool,
    /// An IPv6 address split at its colons that this value is part of.
    split: Option<SplitAddress>,
}

impl<'a> Value<'a> {
    /// The raw (unescaped) text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The byte span in the input (empty for a default).
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The parameter's name.
    pub fn param(&self) -> &'static str {
        self.param
    }

    /// Whether the value is the declared default rather than given.
    pub fn is_default(&self) -> bool {
        self.from_default
    }

    /// An [`InvalidValue`](ErrorKind::InvalidValue) error about this value.
    ///
    /// When the value is part of an IPv6 address that the grammar split at its colons
    /// (`tcp:host=::1:port=7000`), the error says so instead and suggests brackets.
    pub fn invalid(&self, why: impl fmt::Display) -> ParseError {
        if let Some(split) = &self.split {
            return split
                .error(self.description, ErrorKind::InvalidValue)
                .with_parameter(self.param);
        }
        self.description
            .error(
                ErrorKind::InvalidValue,
                self.span(),
                format!("invalid `{}` for `{}`: {why}", self.param, self.prefix),
            )
            .with_parameter(self.param)
    }

    fn digits(&self) -> Option<u64> {
        let t = self.text;
        if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }

    /// A port, 0 to 65535 (ASCII digits only: no sign, spaces or `_`).
    pub fn port(&self) -> Result<u16, ParseError> {
        match self.digits() {
            Some(n) if n <= 65535 => Ok(n as u16),
            Some(_) => Err(self.invalid(format_args!("port `{}` is above 65535", self.text))),
            None => Err(self.invalid(format_args!(
                "expected a port number 0-65535, got `{}`",
                self.text
            ))),
        }
    }

    /// A non-negative integer that fits in a u32.
    pub fn u32(&self) -> Result<u32, ParseError> {
        match self.digits() {
            Some(n) if n <= u64::from(u32::MAX) => Ok(n as u32),
            _ => Err(self.invalid(format_args!(
                "expected a whole number 0-{}, got `{}`",
                u32::MAX,
                self.text
            ))),
        }
    }

    /// A duration: seconds (`30`, `7.5`) or with a unit (`250ms`, `2s`, `1m`), at most a day.
    pub fn duration(&self) -> Result<Duration, ParseError> {
        let t = self.text;
        let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix('m') {
            (n, 60.0)
        } else {
            (t, 1.0)
        };
        let ok_chars = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && number.bytes().filter(|&b| b == b'.').count() <= 1
            && number != ".";
        let secs = ok_chars
            .then(|| number.parse::<f64>().ok())
            .flatten()
            .map(|n| n * scale)
            .filter(|s| s.is_finite() && *s <= 86_400.0);
        secs.map(Duration::from_secs_f64).ok_or_else(|| {
            self.invalid(format_args!(
                "expected seconds such as `30`, `7.5` or `250ms` (at most a day), got `{t}`"
            ))
        })
    }

    /// An octal file mode: `660`, `0660` or `0o660`, at most `7777`.
    pub fn mode(&self) -> Result<u32, ParseError> {
        let t = self.text.strip_prefix("0o").unwrap_or(self.text);
        let ok = !t.is_empty() && t.len() <= 5 && t.bytes().all(|b| (b'0'..=b'7').contains(&b));
        match ok.then(|| u32::from_str_radix(t, 8).ok()).flatten() {
            Some(m) if m <= 0o7777 => Ok(m),
            _ => Err(self.invalid(format_args!(
                "expected an octal mode such as `660` or `0o600`, got `{}`",
                self.text
            ))),
        }
    }

    /// A boolean: an integer (0 is false, anything else true, as in Twisted), or
    /// `true`/`false`, `yes`/`no`, `on`/`off` in any case.
    pub fn flag(&self) -> Result<bool, ParseError> {
        if let Some(n) = self.digits() {
            return Ok(n != 0);
        }
        match self.text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(format_args!("expected `0` or `1`, got `{}`", self.text))),
        }
    }

    /// A filesystem path (must not be empty or contain NUL).
    pub fn path(&self) -> Result<PathBuf, ParseError> {
        if self.text.is_empty() {
            return Err(self.invalid("the path is empty"));
        }
        if self.text.contains('\0') {
            return Err(self.invalid("the path contains a NUL character"));
        }
        Ok(PathBuf::from(self.text))
    }

    /// One of the declared words (case-insensitive); returns the declared spelling.
    pub fn choice(&self, words: &[&'static str]) -> Result<&'static str, ParseError> {
        if let Some(w) = words.iter().find(|w| w.eq_ignore_ascii_case(self.text)) {
            return Ok(w);
        }
        let e = self.invalid(format_args!(
            "expected one of {}, got `{}`",
            words.join(", "),
            self.text
        ));
        match closest(self.text, words.iter().copied()) {
            Some(s) => Err(e.with_suggestion(s)),
            None => Err(e),
        }
    }

    /// Parse the value as a nested description; errors point into the outer text.
    pub fn nested(&self) -> Result<Description, ParseError> {
        Description::parse(self.text)
            .map_err(|e| e.nested_in(self.description.input().cloned(), self.span(), self.param))
    }
}

/// The parameters of one description, checked against the declared [`Param`]s: unknown
/// keys, too many positional fields and duplicates are rejected when it is built.
#[derive(Debug)]
pub struct Args<'a> {
    description: &'a Description,
    prefix: &'a str,
    params: &'static [Param],
    /// The chosen field for each declared parameter, index-aligned with `params`.
    given: Vec<Option<&'a Field>>,
    /// An IPv6 address split at its colons whose bracketed form parses: values that are part
    /// of it report it instead of their own error.
    split: Option<SplitAddress>,
}

impl<'a> Args<'a> {
    /// Check `description` against `params`, mapping positional fields by each parameter's
    /// declared position. A parameter given both positionally and by keyword is an error.
    pub fn parse(
        description: &'a Description,
        params: &'static [Param],
    ) -> Result<Self, ParseError> {
        let mut order: Vec<&'static str> = Vec::new();
        for p in params {
            if let Some(i) = p.position {
                if order.len() <= i {
                    order.resize(i + 1, "");
                }
                order[i] = p.name;
            }
        }
        Self::parse_mapped(description, params, &order, Conflict::Error)
    }

    /// Like [`parse`](Self::parse), with the positional fields mapped to `positional` names
    /// (for types whose positional meaning depends on what else was given, like the `tcp:`
    /// client), and a choice of conflict rule.
    ///
    /// An IPv6 address written without brackets is split at its colons (`tcp:::1:7000` is the
    /// fields `tcp`, ``, ``, `1`, `7000`). When the description has such a run of fields and
    /// bracketing it makes the fields fit the declared parameters, an error in those fields
    /// says so, points at the address and suggests the bracketed text.
    pub fn parse_mapped(
        description: &'a Description,
        params: &'static [Param],
        positional: &[&'static str],
        conflict: Conflict,
    ) -> Result<Self, ParseError> {
        let fits = |split: &SplitAddress| {
            let rejoined = split.rejoined(description);
            // The bracketed form must fit the declared parameters, and numbers must stay
            // numbers (`tcp:7000:::1` is port 7000 and `::1`, not `[7000::]` and `1`).
            Args::check(&rejoined, params, positional, conflict).is_ok_and(|args| {
                args.params
                    .iter()
                    .zip(&args.given)
                    .all(|(p, f)| match (p.kind, f) {
                        (ParamKind::Port | ParamKind::UInt, Some(f)) => {
                            f.value().bytes().all(|b| b.is_ascii_digit())
                        }
                        _ => true,
                    })
            })
        };
        match Self::check(description, params, positional, conflict) {
            Ok(mut args) => {
                let candidates = SplitAddress::find(description);
                if !candidates.is_empty() {
                    args.split = candidates.into_iter().find(|c| fits(c));
                }
                Ok(args)
            }
            Err(e) => match SplitAddress::find(description)
                .into_iter()
                .find(|c| fits(c))
            {
                Some(split) => {
                    let hint = split.error(description, e.kind());
                    Err(match e.parameter() {
                        Some(p) => hint.with_parameter(p.to_owned()),
                        None => hint,
                    })
                }
                None => Err(e),
            },
        }
    }

    /// [`parse_mapped`](Self::parse_mapped) without the IPv6 hint.
    fn check<'d>(
        description: &'d Description,
        params: &'static [Param],
        positional: &[&'static str],
        conflict: Conflict,
    ) -> Result<Args<'d>, ParseError> {
        let prefix = description.prefix().unwrap_or("");
        let mut given: Vec<Option<&'d Field>> = vec![None; params.len()];
        let index_of = |name: &str| params.iter().position(|p| p.name == name);

        for field in description.fields() {
            let Some(key) = field.key() else { continue };
            match index_of(key) {
                Some(i) => given[i] = Some(field),
                None => return Err(unknown_parameter(description, prefix, params, field, key)),
            }
        }

        for (n, field) in description.positionals().enumerate() {
            let Some(name) = positional.get(n).copied().filter(|n| !n.is_empty()) else {
                let names: Vec<&str> = positional
                    .iter()
                    .copied()
                    .filter(|n| !n.is_empty())
                    .collect();
                let takes = match names.len() {
                    0 => "takes no positional fields".to_owned(),
                    k => format!(
                        "takes at most {k} positional field(s) here: {}",
                        names.join(", ")
                    ),
                };
                return Err(description.error(
                    ErrorKind::UnknownParameter,
                    field.span(),
                    format!(
                        "unexpected positional field `{}`: `{prefix}` {takes}",
                        field.value()
                    ),
                ));
            };
            let Some(i) = index_of(name) else { continue };
            match (given[i], conflict) {
                (Some(kw), Conflict::Error) if kw.key().is_some() => {
                    return Err(description
                        .error(
                            ErrorKind::Duplicate,
                            kw.span(),
                            format!(
                                "`{name}` is given twice: as positional field `{}` and as `{name}={}`",
                                field.value(),
                                kw.value()
                            ),
                        )
                        .with_parameter(name));
                }
                _ => given[i] = Some(field),
            }
        }

        for (i, p) in params.iter().enumerate() {
            if p.required && given[i].is_none() {
                let end = description.input().map_or(0, |s| s.len());
                let how = match p.position {
                    Some(_) if positional.contains(&p.name) => format!(
                        "; give it as `{}={}` or as a positional field",
                        p.name,
                        example_for(p.kind)
                    ),
                    _ => format!("; give it as `{}={}`", p.name, example_for(p.kind)),
                };
                return Err(description
                    .error(
                        ErrorKind::MissingParameter,
                        end..end,
                        format!("`{prefix}` needs `{}` ({}){how}", p.name, p.help),
                    )
                    .with_parameter(p.name));
            }
        }

        Ok(Args {
            description,
            prefix,
            params,
            given,
            split: None,
        })
    }

    /// The description these arguments came from.
    pub fn description(&self) -> &'a Description {
        self.description
    }

    /// The value of `name` if given, else its declared default, else `None`.
    ///
    /// # Panics
    /// If `name` is not a declared parameter (a bug in the plugin, caught by its tests).
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        let i = self.index(name);
        let p = &self.params[i];
        match self.given[i] {
            Some(f) => Some(Value {
                text: f.value(),
                span: f.value_span(),
                param: p.name,
                prefix: self.prefix,
                description: self.description,
                from_default: false,
                split: self.split.clone().filter(|s| {
                    let fields = self.description.fields();
                    fields[s.first..=s.last].iter().any(|x| std::ptr::eq(x, f))
                }),
            }),
            None => p.default.map(|d| {
                let end = self.description.input().map_or(0, |s| s.len());
                Value {
                    text: d,
                    span: end..end,
                    param: p.name,
                    prefix: self.prefix,
                    description: self.description,
                    from_default: true,
                    split: None,
                }
            }),
        }
    }

    /// Whether `name` was given (not defaulted).
    pub fn is_given(&self, name: &str) -> bool {
        self.given[self.index(name)].is_some()
    }

    /// The value of a parameter that must be present (given or defaulted).
    pub fn required(&self, name: &str) -> Result<Value<'a>, ParseError> {
        self.get(name).ok_or_else(|| {
            let end = self.description.input().map_or(0, |s| s.len());
            self.description
                .error(
                    ErrorKind::MissingParameter,
                    end..end,
                    format!("`{}` needs `{name}`", self.prefix),
                )
                .with_parameter(name.to_owned())
        })
    }

    /// The canonical description: the prefix in lower case, then every declared parameter
    /// that has a value (given or default) as `name=value`, in declaration order.
    pub fn canonical(&self) -> Description {
        let mut d = Description::new(self.prefix.to_ascii_lowercase());
        for p in self.params {
            if let Some(v) = self.get(p.name) {
                d.push(Field::keyword(p.name, v.as_str()));
            }
        }
        d
    }

    fn index(&self, name: &str) -> usize {
        match self.params.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => panic!("parameter `{name}` is not declared for `{}`", self.prefix),
        }
    }
}

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
    first: usize,
    last: usize,
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

fn example_for(kind: ParamKind) -> &'static str {
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

fn unknown_parameter(
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
/// if it is close enough to be a plausible typo.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let w = word.to_lowercase();
    let limit = match w.chars().count() {
        0 => return None,
        1..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (distance(&w, &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
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

#[cfg(test)]
mod tests {
    use super::*;

    static P: &[Param] = &[
        Param::required("port", ParamKind::Port).at(0).help("port"),
        Param::optional("interface", ParamKind::Host)
            .at(1)
            .default("")
            .help("address"),
        Param::optional("backlog", ParamKind::UInt)
            .at(2)
            .default("1024")
            .help("queue"),
        Param::optional("timeout", ParamKind::Duration).help("seconds"),
        Param::optional("mode", ParamKind::Mode).help("mode"),
        Param::optional("flag", ParamKind::Bool).help("flag"),
    ];

    fn parse(s: &str) -> Result<Description, ParseError> {
        s.parse()
    }

    #[test]
    fn positional_and_keyword() -> Result<(), ParseError> {
        let d = parse("t:80:127.0.0.1:backlog=7")?;
        let a = Args::parse(&d, P)?;
        assert_eq!(a.required("port")?.port()?, 80);
        assert_eq!(a.get("interface").map(|v| v.as_str()), Some("127.0.0.1"));
        assert_eq!(a.get("backlog").map(|v| v.u32()).transpose()?, Some(7));
        assert_eq!(
            a.canonical().to_string(),
            "t:port=80:interface=127.0.0.1:backlog=7"
        );
        Ok(())
    }

    #[test]
    fn defaults_fill_in() -> Result<(), ParseError> {
        let d = parse("T:port=1")?;
        let a = Args::parse(&d, P)?;
        let b = a.get("backlog").expect("default");
        assert!(b.is_default());
        assert_eq!(b.u32()?, 1024);
        assert!(a.get("timeout").is_none());
        assert_eq!(
            a.canonical().to_string(),
            "t:port=1:interface=:backlog=1024"
        );
        Ok(())
    }

    #[test]
    fn unknown_parameter_suggests() -> Result<(), ParseError> {
        let d = parse("t:prot=80")?;
        let e = Args::parse(&d, P).expect_err("unknown");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 2..6);
        assert_eq!(e.suggestion(), Some("port"));
        assert_eq!(e.parameter(), Some("prot"));
        let d = parse("t:80:zzzzzz=1")?;
        let e = Args::parse(&d, P).expect_err("unknown");
        assert!(e.message().contains("it takes: port, interface"), "{e}");
        Ok(())
    }

    #[test]
    fn duplicate_positional_and_keyword() -> Result<(), ParseError> {
        let d = parse("t:80:port=81")?;
        let e = Args::parse(&d, P).expect_err("dup");
        assert_eq!(e.kind(), ErrorKind::Duplicate);
        assert_eq!(e.span(), 5..12);
        Ok(())
    }

    #[test]
    fn unescaped_ipv6_gets_a_bracket_suggestion() -> Result<(), ParseError> {
        let d = parse("t:443:interface=::1")?;
        let e = Args::parse(&d, P).expect_err("split address");
        assert_eq!(e.kind(), ErrorKind::Duplicate);
        assert_eq!(e.suggestion(), Some("t:443:interface=[::1]"));
        assert_eq!(e.span(), 16..19);
        assert_eq!(
            e.message(),
            "`::1` is an IPv6 address split at its colons (`:` separates fields): write it in \
             brackets, `[::1]`, or escape its colons; did you mean `t:443:interface=[::1]`?"
        );
        let d = parse("t:443:interface=fe80::1:2:3")?;
        let e = Args::parse(&d, P).expect_err("split address");
        assert_eq!(e.suggestion(), Some("t:443:interface=[fe80::1:2:3]"));
        Ok(())
    }

    #[test]
    fn too_many_positionals() -> Result<(), ParseError> {
        let d = parse("t:80:1:2:3")?;
        let e = Args::parse(&d, P).expect_err("too many");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 9..10);
        Ok(())
    }

    #[test]
    fn missing_required() -> Result<(), ParseError> {
        let d = parse("t")?;
        let e = Args::parse(&d, P).expect_err("missing");
        assert_eq!(e.kind(), ErrorKind::MissingParameter);
        assert_eq!(e.parameter(), Some("port"));
        Ok(())
    }

    #[test]
    fn typed_values() -> Result<(), ParseError> {
        let d = parse("t:70000:timeout=7.5:mode=0o640:flag=2")?;
        let a = Args::parse(&d, P)?;
        let e = a.required("port")?.port().expect_err("range");
        assert_eq!((e.kind(), e.span()), (ErrorKind::InvalidValue, 2..7));
        assert_eq!(
            a.get("timeout").map(|v| v.duration()).transpose()?,
            Some(Duration::from_millis(7500))
        );
        assert_eq!(a.get("mode").map(|v| v.mode()).transpose()?, Some(0o640));
        assert_eq!(a.get("flag").map(|v| v.flag()).transpose()?, Some(true));
        for bad in ["-1", "+80", " 80", "8_0", "", "1e3", "٣"] {
            let d = parse(&format!("t:port={bad}"))?;
            let a = Args::parse(&d, P)?;
            assert!(a.required("port")?.port().is_err(), "{bad:?} accepted");
        }
        for bad in ["-1", "x", "1.2.3", ".", "inf", "NaN", "1e9", "99999999"] {
            let d = parse(&format!("t:1:timeout={bad}"))?;
            let a = Args::parse(&d, P)?;
            assert!(
                a.get("timeout").expect("given").duration().is_err(),
                "{bad:?} accepted"
            );
        }
        for (ok, ms) in [
            ("250ms", 250),
            ("2s", 2000),
            ("1m", 60_000),
            (".5", 500),
            ("0", 0),
        ] {
            let d = parse(&format!("t:1:timeout={ok}"))?;
            let a = Args::parse(&d, P)?;
            assert_eq!(
                a.get("timeout").expect("given").duration()?,
                Duration::from_millis(ms)
            );
        }
        for bad in ["9", "0o", "77777", "rw"] {
            let d = parse(&format!("t:1:mode={bad}"))?;
            let a = Args::parse(&d, P)?;
            assert!(
                a.get("mode").expect("given").mode().is_err(),
                "{bad:?} accepted"
            );
        }
        Ok(())
    }

    #[test]
    fn closest_handles_transpositions_and_case() {
        assert_eq!(closest("prot", ["port", "interface"]), Some("port"));
        assert_eq!(closest("BINDADDRESS", ["bindAddress"]), Some("bindAddress"));
        assert_eq!(closest("xyz", ["port"]), None);
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    static CLIENT: &[Param] = &[
        Param::required("host", ParamKind::Host).at(0).help("host"),
        Param::required("port", ParamKind::Port).at(1).help("port"),
    ];

    #[test]
    fn positional_address_split_at_its_colons() -> Result<(), ParseError> {
        let d: Description = "tcp:::1:7000".parse()?;
        let e = Args::parse_mapped(&d, CLIENT, &["host", "port"], Conflict::PositionalWins)
            .expect_err("four positional fields");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 4..7);
        assert_eq!(e.suggestion(), Some("tcp:[::1]:7000"));
        Ok(())
    }

    #[test]
    fn value_errors_inside_a_split_address_explain_it() -> Result<(), ParseError> {
        let d: Description = "tcp:host=::1:port=7000".parse()?;
        let args = Args::parse_mapped(&d, CLIENT, &["host", "port"], Conflict::PositionalWins)?;
        let e = args.required("host")?.invalid("the host is empty");
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert_eq!(e.span(), 9..12);
        assert_eq!(e.parameter(), Some("host"));
        assert_eq!(e.suggestion(), Some("tcp:host=[::1]:port=7000"));
        // A value outside the address keeps its own message.
        let d: Description = "tcp:[::1]:7000".parse()?;
        let args = Args::parse_mapped(&d, CLIENT, &["host", "port"], Conflict::PositionalWins)?;
        let e = args.required("port")?.invalid("no");
        assert_eq!(e.message(), "invalid `port` for `tcp`: no");
        Ok(())
    }

    #[test]
    fn list_values_and_cidrs_are_found() -> Result<(), ParseError> {
        let d: Description = "haproxy:trusted=10.0.0.0/8,::1:tcp:7000".parse()?;
        let found = SplitAddress::find(&d);
        assert_eq!(found[0].address(), "::1");
        assert_eq!(found[0].span(), 27..30);
        assert_eq!(
            found[0].fixed_input(&d).as_deref(),
            Some("haproxy:trusted=[10.0.0.0/8,::1]:tcp:7000")
        );
        let d: Description = "x:trusted=fe80::/10".parse()?;
        assert_eq!(SplitAddress::find(&d)[0].address(), "fe80::/10");
        let d: Description = "tcp:80:1:2".parse()?;
        assert!(SplitAddress::find(&d).is_empty());
        Ok(())
    }
}
