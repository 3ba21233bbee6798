//! Typed values: a parameter's text with the span it came from, read as a port, a duration...

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::{SplitAddress, closest};
use crate::description::Description;
use crate::error::{ErrorKind, ParseError};

/// A parameter value with the span it came from, and typed accessors whose errors point at it.
#[derive(Clone, Debug)]
pub struct Value<'a> {
    pub(super) text: &'a str,
    pub(super) span: Range<usize>,
    pub(super) param: &'static str,
    pub(super) prefix: &'a str,
    pub(super) description: &'a Description,
    pub(super) from_default: bool,
    /// An IPv6 address split at its colons that this value is part of.
    pub(super) split: Option<SplitAddress>,
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
