//! Declarations: what a plugin says about its parameters.

use std::fmt;

#[cfg(doc)]
use super::{Args, Value};
#[cfg(doc)]
use crate::error::ErrorKind;

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
    /// Whether its value is a secret, hidden wherever core shows description text (the
    /// input quoted under a parse error, `Debug`). A plugin's own `Display` hides it too.
    pub secrecy: Secrecy,
}

/// Whether a parameter's value is a secret, and which part of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Secrecy {
    /// Not a secret.
    #[default]
    Shown,
    /// `NAME=value`: the part after the first `=` is a secret (`env=TOKEN=***`).
    AfterName,
    /// The whole value is a secret (`password=***`).
    Value,
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
            secrecy: Secrecy::Shown,
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

    /// Its value is a secret: shown as `***` wherever core quotes description text.
    pub const fn secret(self) -> Self {
        Self {
            secrecy: Secrecy::Value,
            ..self
        }
    }

    /// Its value is `NAME=secret`: the part after the first `=` is shown as `***`.
    pub const fn secret_after_name(self) -> Self {
        Self {
            secrecy: Secrecy::AfterName,
            ..self
        }
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
