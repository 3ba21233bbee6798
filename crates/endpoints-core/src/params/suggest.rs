//! Suggestions: what to say when a description does not fit (an unbracketed IPv6 address, a
//! wrapper's option after the inner description, a misspelt parameter).

use std::ops::Range;

use super::{Param, ParamKind};
use crate::description::{Description, Field};
use crate::error::{ErrorKind, ParseError};

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
