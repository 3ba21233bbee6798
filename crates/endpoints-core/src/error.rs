//! Errors: [`ParseError`] for descriptions, [`EndpointIoError`] for I/O that names its endpoint.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use crate::params::Redacted;

/// A boxed error, as carried inside other errors.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong in a description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not a well-formed description (for example a trailing lone backslash).
    Syntax,
    /// The type prefix is not registered on this side (or is missing).
    UnknownType,
    /// Two registered plugins claim the same prefix.
    Ambiguous,
    /// A required parameter was not given.
    MissingParameter,
    /// A parameter the endpoint type does not take (or too many positional fields).
    UnknownParameter,
    /// The same parameter was given twice in a way that cannot be resolved.
    Duplicate,
    /// A parameter's value is not acceptable.
    InvalidValue,
    /// The plugin is wrong, not the description: it asked for a parameter it did not
    /// declare. The error names the plugin, its crate and the parameter.
    PluginBug,
    /// The endpoint type is refused by the application's
    /// [`TypePolicy`](crate::registry::TypePolicy) (`exec` in a description from a config
    /// file, say); at any nesting level.
    NotAllowed,
}

impl ErrorKind {
    /// A stable lower-case name for the kind (used in JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::UnknownType => "unknown-type",
            Self::Ambiguous => "ambiguous",
            Self::MissingParameter => "missing-parameter",
            Self::UnknownParameter => "unknown-parameter",
            Self::Duplicate => "duplicate",
            Self::InvalidValue => "invalid-value",
            Self::PluginBug => "plugin-bug",
            Self::NotAllowed => "not-allowed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error in a description string: its kind, the byte span it concerns, the parameter it
/// names and a suggestion where one exists.
///
/// `Display` renders the one-line message followed, when the input text is known, by the
/// input and a caret line under the span:
///
/// ```text
/// unknown parameter `prot` for `tcp`; did you mean `port`?
///   tcp:prot=80
///       ^^^^
/// ```
///
/// The message text is meant for people and may change; match on [`ParseError::kind`].
#[derive(Clone)]
pub struct ParseError {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    span: Range<usize>,
    input: Option<Arc<str>>,
    parameter: Option<String>,
    suggestion: Option<String>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl ParseError {
    /// A new error of `kind` with a one-line `message` about `span` of the input.
    pub fn new(kind: ErrorKind, span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                span,
                input: None,
                parameter: None,
                suggestion: None,
                source: None,
            }),
        }
    }

    /// Attach the input text the span refers to (enables the caret rendering).
    pub fn with_input(mut self, input: Arc<str>) -> Self {
        self.inner.input = Some(input);
        self
    }

    /// Name the parameter the error is about.
    pub fn with_parameter(mut self, name: impl Into<String>) -> Self {
        self.inner.parameter = Some(name.into());
        self
    }

    /// Attach a suggestion (a replacement name or value); it is also appended to the message
    /// as "did you mean `...`?".
    pub fn with_suggestion(mut self, suggestion: impl Into<String>) -> Self {
        let suggestion = suggestion.into();
        self.inner.message = format!("{}; did you mean `{suggestion}`?", self.inner.message);
        self.inner.suggestion = Some(suggestion);
        self
    }

    /// Attach the underlying cause (for example an I/O error reading a file named by a
    /// parameter). It is returned from [`std::error::Error::source`], not printed.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Re-home an error from a nested description (the value of `field`) into the outer
    /// description: the span becomes the field's value span and the message says where.
    ///
    /// The inner error's message is in the new message, so the inner error is not also
    /// returned from `source()` (a reporter walking the chain would print it twice); the
    /// inner error's own source (an unreadable file, say) is.
    pub fn nested_in(
        self,
        outer_input: Option<Arc<str>>,
        value_span: Range<usize>,
        key: &str,
    ) -> Self {
        let mut e = ParseError::new(
            self.kind(),
            value_span,
            format!("in `{key}=`: {}", self.message()),
        );
        e.inner.input = outer_input;
        e.inner.parameter = self
            .inner
            .parameter
            .clone()
            .or_else(|| Some(key.to_owned()));
        e.inner.suggestion = self.inner.suggestion.clone();
        e.inner.source = self.inner.source.clone();
        e
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The one-line message, without the caret rendering.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The byte range of the input the error is about.
    pub fn span(&self) -> Range<usize> {
        self.inner.span.clone()
    }

    /// The input text, when known, as given: secrets included (`Display` and `Debug` hide
    /// them; see [`redact`](crate::params::redact)).
    pub fn input(&self) -> Option<&str> {
        self.inner.input.as_deref()
    }

    /// The parameter the error is about, when there is one.
    pub fn parameter(&self) -> Option<&str> {
        self.inner.parameter.as_deref()
    }

    /// The suggested replacement, when there is one.
    pub fn suggestion(&self) -> Option<&str> {
        self.inner.suggestion.as_deref()
    }

    /// The input and a caret line under the span, or `None` without input. The values of
    /// secret parameters (declared with [`Param::secret`](crate::params::Param::secret)) are
    /// shown as `***`, the caret moved to match.
    pub fn caret_lines(&self) -> Option<String> {
        let raw = self.inner.input.as_deref()?;
        let redacted = Redacted::new(raw);
        let input = redacted.text();
        let span = &self.inner.span;
        let start = floor_char_boundary(input, redacted.map(span.start.min(raw.len()), false));
        let end =
            floor_char_boundary(input, redacted.map(span.end.min(raw.len()), true)).max(start);
        let pad = input[..start].chars().count();
        let width = input[start..end].chars().count().max(1);
        Some(format!(
            "  {input}\n  {}{}",
            " ".repeat(pad),
            "^".repeat(width)
        ))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(lines) = self.caret_lines() {
            write!(f, "\n{lines}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseError")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("span", &self.inner.span)
            .field(
                "input",
                &self.inner.input.as_deref().map(crate::params::redact),
            )
            .field("parameter", &self.inner.parameter)
            .field("suggestion", &self.inner.suggestion)
            .finish()
    }
}

impl StdError for ParseError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// What an endpoint was doing when an I/O error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `ClientEndpoint::connect`.
    Connect,
    /// `ServerEndpoint::listen`.
    Listen,
    /// `Listener::accept`.
    Accept,
    /// `Listener::close`.
    Close,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect to",
            Self::Listen => "listen on",
            Self::Accept => "accept on",
            Self::Close => "close",
        })
    }
}

/// An I/O error that names the endpoint it happened on.
///
/// It travels inside an [`io::Error`] of the same [`io::ErrorKind`] (see [`io_error`]); its
/// `Display` reads "cannot connect to `tcp:host=db:port=5432`: connection refused". The cause
/// is part of the message, so `source()` returns the cause's own source, not the cause.
#[derive(Debug)]
pub struct EndpointIoError {
    operation: Operation,
    endpoint: String,
    cause: io::Error,
}

impl EndpointIoError {
    /// What was being done.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The endpoint's description.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying error (keeps `raw_os_error()`).
    pub fn cause(&self) -> &io::Error {
        &self.cause
    }
}

impl fmt::Display for EndpointIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} `{}`: {}",
            self.operation, self.endpoint, self.cause
        )
    }
}

impl StdError for EndpointIoError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause.source()
    }
}

/// Wrap `cause` so that its message names `endpoint` and what was being done. The kind is kept.
/// An error that already names an endpoint is returned unchanged (no double wrapping).
pub fn io_error(operation: Operation, endpoint: &dyn fmt::Display, cause: io::Error) -> io::Error {
    if cause
        .get_ref()
        .is_some_and(|inner| inner.is::<EndpointIoError>())
    {
        return cause;
    }
    io::Error::new(
        cause.kind(),
        EndpointIoError {
            operation,
            endpoint: endpoint.to_string(),
            cause,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_rendering_points_at_span() {
        let e = ParseError::new(
            ErrorKind::UnknownParameter,
            4..8,
            "unknown parameter `prot` for `tcp`",
        )
        .with_input("tcp:prot=80".into())
        .with_suggestion("port");
        assert_eq!(
            e.to_string(),
            "unknown parameter `prot` for `tcp`; did you mean `port`?\n  tcp:prot=80\n      ^^^^"
        );
    }

    /// What an error reporter (anyhow, eyre, `main`'s `{:#}`) prints: the error and every
    /// `source()` below it, one message per line.
    fn report(e: &dyn StdError) -> String {
        let mut lines = vec![e.to_string()];
        let mut next = e.source();
        while let Some(s) = next {
            lines.push(s.to_string());
            next = s.source();
        }
        lines.join("\ncaused by: ")
    }

    #[test]
    fn a_nested_error_is_reported_once() {
        let inner = ParseError::new(
            ErrorKind::UnknownParameter,
            4..8,
            "unknown parameter `prot` for `tcp`",
        )
        .with_input("tcp:prot=80".into());
        let e = inner.nested_in(
            Some("tls:endpoint=tcp\\:prot=80".into()),
            13..26,
            "endpoint",
        );
        let shown = report(&e);
        assert_eq!(
            shown.matches("unknown parameter `prot` for `tcp`").count(),
            1,
            "{shown}"
        );
        assert_eq!(
            e.message(),
            "in `endpoint=`: unknown parameter `prot` for `tcp`"
        );
        // The inner error's own cause (an unreadable file, say) is still reachable.
        let file = io::Error::new(io::ErrorKind::NotFound, "no such file");
        let inner = ParseError::new(ErrorKind::InvalidValue, 0..1, "cannot read `key.pem`")
            .with_source(file);
        let e = inner.nested_in(None, 0..1, "endpoint");
        let shown = report(&e);
        assert_eq!(shown.matches("cannot read `key.pem`").count(), 1, "{shown}");
        assert_eq!(shown.matches("no such file").count(), 1, "{shown}");
    }

    #[test]
    fn caret_rendering_counts_characters_not_bytes() {
        let e = ParseError::new(ErrorKind::InvalidValue, 17..19, "bad")
            .with_input("tcp:80:interface=é".into());
        let lines = e.caret_lines().expect("input attached");
        assert_eq!(lines, "  tcp:80:interface=é\n                   ^");
    }

    #[test]
    fn caret_rendering_survives_spans_past_the_end() {
        let e = ParseError::new(ErrorKind::MissingParameter, 50..60, "missing")
            .with_input("tcp".into());
        assert_eq!(e.caret_lines().expect("input"), "  tcp\n     ^");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn io_error_names_endpoint_and_keeps_kind() {
        let cause = io::Error::from_raw_os_error(libc_econnrefused());
        let e = io_error(Operation::Connect, &"tcp:host=db:port=1", cause);
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(
            e.to_string()
                .starts_with("cannot connect to `tcp:host=db:port=1`: "),
            "{e}"
        );
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<EndpointIoError>())
            .expect("wrapped");
        assert_eq!(inner.cause().raw_os_error(), Some(libc_econnrefused()));
        let again = io_error(Operation::Connect, &"other", e);
        assert!(
            again.to_string().contains("tcp:host=db"),
            "not wrapped twice: {again}"
        );
    }

    #[cfg(target_os = "linux")]
    fn libc_econnrefused() -> i32 {
        111
    }
}
