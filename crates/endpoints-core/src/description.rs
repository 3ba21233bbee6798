//! The description grammar: tokenizing, field access, escaping and display.
//!
//! The grammar is exactly Twisted's:
//!
//! * `:` separates fields; empty fields are kept (`tcp:` is the fields `tcp` and ``).
//! * In each field, only the **first** unescaped `=` splits a key from its value:
//!   `a=b=c` is key `a` with value `b=c`. A field without `=` is positional.
//! * A backslash makes the next character literal, whatever it is (`\:` `\=` `\\`); a
//!   trailing lone backslash is a [`Syntax`](crate::ErrorKind::Syntax) error.
//! * One addition to Twisted's grammar: a key, value or positional field that **starts**
//!   with `[` runs to the next unescaped `]` with `:` and `=` taken literally, so IPv6
//!   literals need no escaping: `tcp6:443:interface=[::1]`, `tcp:[::1]:80`. (Twisted would
//!   split these; escaping as `\:\:1` works in both.) `Display` escapes a leading `[`.
//! * No trimming, no quoting; the type prefix is the first positional field.
//! * A repeated key is kept in [`Description::fields`] (order matters for wrappers), and
//!   [`Description::get`] returns the last one, as in Twisted.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{ErrorKind, ParseError};

/// One `:`-separated field: positional (`value`) or keyword (`key=value`).
#[derive(Clone, Debug)]
pub struct Field {
    key: Option<(String, Range<usize>)>,
    value: String,
    value_span: Range<usize>,
}

impl Field {
    /// A positional field.
    pub fn positional(value: impl Into<String>) -> Self {
        Self {
            key: None,
            value: value.into(),
            value_span: 0..0,
        }
    }

    /// A keyword field `key=value`.
    pub fn keyword(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: Some((key.into(), 0..0)),
            value: value.into(),
            value_span: 0..0,
        }
    }

    /// The key of a keyword field (unescaped), or `None` for a positional field.
    pub fn key(&self) -> Option<&str> {
        self.key.as_ref().map(|(k, _)| k.as_str())
    }

    /// The value (unescaped).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Byte span of the key in the parsed input (empty for built fields).
    pub fn key_span(&self) -> Option<Range<usize>> {
        self.key.as_ref().map(|(_, s)| s.clone())
    }

    /// Byte span of the value in the parsed input (empty for built fields).
    pub fn value_span(&self) -> Range<usize> {
        self.value_span.clone()
    }

    /// Byte span of the whole field in the parsed input.
    pub fn span(&self) -> Range<usize> {
        match &self.key {
            Some((_, k)) => k.start..self.value_span.end,
            None => self.value_span.clone(),
        }
    }

    /// Whether this is a positional field.
    pub fn is_positional(&self) -> bool {
        self.key.is_none()
    }
}

/// Fields are equal when their keys and values are; spans are not compared.
impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key() && self.value == other.value
    }
}
impl Eq for Field {}

/// A parsed (or built) endpoint description: an ordered list of fields.
///
/// `Display` writes the description back with the minimum escaping, so that parsing the
/// output gives an equal description (`parse(display(d)) == d` for every `d`).
///
/// ```
/// use endpoints_core::Description;
///
/// let d: Description = r"tcp:80:interface=\:\:1".parse()?;
/// assert_eq!(d.prefix(), Some("tcp"));
/// assert_eq!(d.get("interface"), Some("::1"));
/// assert_eq!(d.to_string(), r"tcp:80:interface=\:\:1");
/// # Ok::<(), endpoints_core::ParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Description {
    fields: Vec<Field>,
    input: Option<Arc<str>>,
}

impl Description {
    /// Parse `input` with the grammar described in the [module docs](self).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let shared: Arc<str> = Arc::from(input);
        let mut fields = Vec::new();
        let mut current = String::new();
        let mut seg_start = 0usize;
        let mut key: Option<(String, Range<usize>)> = None;
        // Byte index of the `]` that closes a bracketed segment (`[::1]`): until then `:` and
        // `=` are literal.
        let mut bracket_end: Option<usize> = None;
        let mut chars = input.char_indices();
        while let Some((i, c)) = chars.next() {
            if bracket_end.is_some_and(|end| i > end) {
                bracket_end = None;
            }
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => current.push(escaped),
                    None => {
                        return Err(ParseError::new(
                            ErrorKind::Syntax,
                            i..i + 1,
                            "trailing backslash escapes nothing; write `\\\\` for a literal backslash",
                        )
                        .with_input(shared));
                    }
                },
                '[' if i == seg_start && bracket_end.is_none() => {
                    bracket_end = closing_bracket(input, i + 1);
                    current.push(c);
                }
                ':' | '=' if bracket_end.is_some() => current.push(c),
                ':' => {
                    fields.push(Field {
                        key: key.take(),
                        value: std::mem::take(&mut current),
                        value_span: seg_start..i,
                    });
                    seg_start = i + 1;
                }
                '=' if key.is_none() => {
                    key = Some((std::mem::take(&mut current), seg_start..i));
                    seg_start = i + 1;
                }
                _ => current.push(c),
            }
        }
        fields.push(Field {
            key,
            value: current,
            value_span: seg_start..input.len(),
        });
        Ok(Self {
            fields,
            input: Some(shared),
        })
    }

    /// A new description holding just the type prefix, to be extended with
    /// [`with`](Self::with) and [`push`](Self::push).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            fields: vec![Field::positional(prefix)],
            input: None,
        }
    }

    /// Build a description from fields. Returns `None` for an empty list: every description
    /// has at least one field (even the empty text parses to one empty positional field).
    pub fn from_fields(fields: Vec<Field>) -> Option<Self> {
        (!fields.is_empty()).then_some(Self {
            fields,
            input: None,
        })
    }

    /// Append a field.
    pub fn push(&mut self, field: Field) -> &mut Self {
        self.fields.push(field);
        self
    }

    /// Set `key` to `value`: the last field with that key is replaced, or a field is appended.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        match self.fields.iter_mut().rev().find(|f| f.key() == Some(key)) {
            Some(f) => {
                f.value = value;
                f.value_span = 0..0;
            }
            None => self.fields.push(Field::keyword(key, value)),
        }
        self
    }

    /// Builder form of [`set`](Self::set).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// All fields, in order, including repeated keys.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The original text, when this description was parsed.
    pub fn input(&self) -> Option<&Arc<str>> {
        self.input.as_ref()
    }

    /// The type prefix field: the first positional field.
    pub fn prefix_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.is_positional())
    }

    /// The type prefix: the first positional field's value.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix_field().map(Field::value)
    }

    /// Positional values after the prefix.
    pub fn positionals(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.is_positional()).skip(1)
    }

    /// The value of the last field with `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_field(key).map(Field::value)
    }

    /// The last field with `key`.
    pub fn get_field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().rev().find(|f| f.key() == Some(key))
    }

    /// The fields from index `start` on, as a description sharing this one's input and spans
    /// (for wrappers such as `haproxy:`, whose inner description is the rest of the text).
    /// Returns `None` when `start` is past the last field.
    pub fn tail(&self, start: usize) -> Option<Self> {
        self.slice(start..self.fields.len())
    }

    /// The fields in `range`, as a description sharing this one's input and spans (errors about
    /// them still point into the original text). `None` for an empty or out-of-range slice.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<Self> {
        let fields = self.fields.get(range)?.to_vec();
        let mut d = Self::from_fields(fields)?;
        d.input = self.input.clone();
        Some(d)
    }

    /// Remove every field with `key`; returns whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.fields.len();
        self.fields.retain(|f| f.key() != Some(key));
        before != self.fields.len()
    }

    /// An error about `span` of this description, with the input attached for rendering.
    pub fn error(
        &self,
        kind: ErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ParseError {
        let e = ParseError::new(kind, span, message);
        match &self.input {
            Some(input) => e.with_input(input.clone()),
            None => e,
        }
    }
}

impl PartialEq for Description {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}
impl Eq for Description {}

impl FromStr for Description {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            match field.key() {
                Some(key) => {
                    write_escaped(f, key, true)?;
                    f.write_str("=")?;
                    write_escaped(f, &field.value, false)?;
                }
                None => write_escaped(f, &field.value, true)?,
            }
        }
        Ok(())
    }
}

/// The byte index of the first unescaped `]` at or after `from`, if any.
fn closing_bracket(input: &str, from: usize) -> Option<usize> {
    let mut chars = input[from..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            ']' => return Some(from + i),
            _ => {}
        }
    }
    None
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str, escape_eq: bool) -> fmt::Result {
    for (i, c) in s.chars().enumerate() {
        // A leading `[` would open a bracketed segment when parsed again.
        if c == '\\' || c == ':' || (escape_eq && c == '=') || (i == 0 && c == '[') {
            f.write_str("\\")?;
        }
        fmt::Write::write_char(f, c)?;
    }
    Ok(())
}

/// Escape a value for use inside a description (Twisted's `quoteStringArgument`): `\`
/// becomes `\\` and `:` becomes `\:`; a leading `[` becomes `\[` (so it cannot open a
/// bracketed segment). `=` needs no escape in a value.
///
/// Use it to nest one description inside another:
///
/// ```
/// use endpoints_core::{escape, Description};
///
/// let inner = "unix:/run/tunnel.sock";
/// let outer: Description = format!("tls:host=db:port=5432:endpoint={}", escape(inner)).parse()?;
/// assert_eq!(outer.get("endpoint"), Some(inner));
/// # Ok::<(), endpoints_core::ParseError>(())
/// ```
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in value.chars().enumerate() {
        if c == '\\' || c == ':' || (i == 0 && c == '[') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_kwargs(input: &str) -> (Vec<String>, Vec<(String, String)>) {
        let d = Description::parse(input).expect("parses");
        let args = d
            .fields()
            .iter()
            .filter(|f| f.is_positional())
            .map(|f| f.value().to_owned())
            .collect();
        let kwargs = d
            .fields()
            .iter()
            .filter_map(|f| f.key().map(|k| (k.to_owned(), f.value().to_owned())))
            .collect();
        (args, kwargs)
    }

    #[test]
    fn only_first_equals_splits() {
        assert_eq!(args_kwargs("a=b=c").1, vec![("a".into(), "b=c".into())]);
        assert_eq!(args_kwargs("k==v").1, vec![("k".into(), "=v".into())]);
    }

    #[test]
    fn empty_fields_are_kept() {
        assert_eq!(args_kwargs("a:::").0, vec!["a", "", "", ""]);
        assert_eq!(args_kwargs("").0, vec![""]);
    }

    #[test]
    fn trailing_backslash_is_a_syntax_error_with_span() {
        let e = Description::parse("a\\").expect_err("error");
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.span(), 1..2);
    }

    #[test]
    fn spans_cover_raw_text() {
        let d = Description::parse(r"tcp:80:interface=\:\:1").expect("parses");
        let f = d.get_field("interface").expect("present");
        assert_eq!(f.key_span(), Some(7..16));
        assert_eq!(f.value_span(), 17..22);
        assert_eq!(f.span(), 7..22);
    }

    #[test]
    fn last_repeated_key_wins_but_all_are_kept() {
        let d = Description::parse("x:y=1:y=2:y=3").expect("parses");
        assert_eq!(d.get("y"), Some("3"));
        assert_eq!(d.fields().len(), 4);
    }

    #[test]
    fn display_escapes_minimally() {
        let mut d = Description::new("unix");
        d.push(Field::positional("a=b:c\\"));
        d.set("k=", "v=:");
        assert_eq!(d.to_string(), r"unix:a\=b\:c\\:k\==v=\:");
        assert_eq!(Description::parse(&d.to_string()).expect("parses"), d);
    }

    #[test]
    fn tail_keeps_input_and_spans() {
        let d = Description::parse("haproxy:timeout=3:tcp:80").expect("parses");
        let inner = d.tail(2).expect("tail");
        assert_eq!(inner.to_string(), "tcp:80");
        assert_eq!(inner.prefix_field().expect("prefix").span(), 18..21);
        assert!(d.tail(9).is_none());
    }

    #[test]
    fn brackets_protect_colons_at_segment_start() {
        let (args, kwargs) = args_kwargs("tcp6:443:interface=[::1]");
        assert_eq!(args, vec!["tcp6", "443"]);
        assert_eq!(kwargs, vec![("interface".into(), "[::1]".into())]);
        let (args, _) = args_kwargs("tcp:[::1]:80:x");
        assert_eq!(args, vec!["tcp", "[::1]", "80", "x"]);
        // Not at the start of a segment, or never closed: ordinary grammar.
        assert_eq!(args_kwargs("a:b[:]").0, vec!["a", "b[", "]"]);
        assert_eq!(args_kwargs("a:[b:c").0, vec!["a", "[b", "c"]);
        assert_eq!(args_kwargs(r"a:[b\]:c]").0, vec!["a", "[b]:c]"]);
        let d = Description::parse("x:[a:b]").expect("parses");
        assert_eq!(d.fields()[1].value_span(), 2..7);
    }

    #[test]
    fn leading_bracket_is_escaped_on_display() {
        let d = Description::new("x").with("k", "[v:w");
        assert_eq!(d.to_string(), r"x:k=\[v\:w");
        assert_eq!(Description::parse(&d.to_string()).expect("parses"), d);
    }

    #[test]
    fn slice_and_remove() {
        let mut d = Description::parse("haproxy:timeout=3:tcp:80:x=1:x=2").expect("parses");
        let head = d.slice(0..2).expect("head");
        assert_eq!(head.to_string(), "haproxy:timeout=3");
        assert_eq!(
            head.get_field("timeout").expect("field").value_span(),
            16..17
        );
        assert!(d.slice(3..3).is_none());
        assert!(d.remove("x"));
        assert!(!d.remove("x"));
        assert_eq!(d.to_string(), "haproxy:timeout=3:tcp:80");
    }

    #[test]
    fn escape_matches_twisted_quote() {
        assert_eq!(escape("some : stuff \\"), "some \\: stuff \\\\");
    }
}
