//! What the client and server builders share: secrets from a parameter, a file or the
//! environment; header-safe text; the stream settings; errors of descriptions built here.

use endpoints_core::params::{Args, Value};
use endpoints_core::{Description, ParseError};

use crate::stream::StreamSettings;

/// A secret from the first given of `names` (`x`, `xFile`, `xEnv`): the value itself, a
/// file's content (one trailing newline dropped), or an environment variable. `Ok(None)`
/// when none is given; an error when several are.
pub(crate) fn secret<'a>(
    args: &Args<'a>,
    names: [&str; 3],
) -> Result<Option<(Value<'a>, String)>, ParseError> {
    let given: Vec<Value<'a>> = names.iter().filter_map(|n| args.get(n)).collect();
    if let [first, second, ..] = given.as_slice() {
        return Err(second.invalid(format_args!(
            "give one of `{}=`, `{}=` and `{}=`, not several (`{}=` is given too)",
            names[0],
            names[1],
            names[2],
            first.param()
        )));
    }
    let Some(v) = given.into_iter().next() else {
        return Ok(None);
    };
    let text = if v.param() == names[0] {
        v.as_str().to_owned()
    } else if v.param() == names[1] {
        let path = v.path()?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            v.invalid(format_args!("cannot read `{}`: {e}", path.display()))
                .with_source(e)
        })?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        text.strip_suffix('\r').unwrap_or(text).to_owned()
    } else {
        let name = v.as_str();
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(v.invalid("expected the name of an environment variable"));
        }
        std::env::var(name).map_err(|e| match e {
            std::env::VarError::NotPresent => {
                v.invalid(format_args!("the environment variable `{name}` is not set"))
            }
            std::env::VarError::NotUnicode(_) => v.invalid(format_args!(
                "the environment variable `{name}` is not UTF-8"
            )),
        })?
    };
    if text.is_empty() {
        return Err(v.invalid("the secret is empty"));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(v.invalid(format_args!(
            "the secret holds a control character ({}): it goes into an HTTP header",
            c.escape_default()
        )));
    }
    Ok(Some((v, text)))
}

/// Text that goes into an HTTP header value: no control characters.
pub(crate) fn header_text(v: &Value<'_>) -> Result<String, ParseError> {
    let t = v.as_str().trim();
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(v.invalid(format_args!(
            "`{}` cannot be in an HTTP header value",
            c.escape_default()
        )));
    }
    Ok(t.to_owned())
}

/// An HTTP token (RFC 9110 §5.6.2): a header name or a subprotocol.
pub(crate) fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The comma-separated subprotocols of `v`, each an HTTP token, no duplicates.
pub(crate) fn subprotocols(v: &Value<'_>) -> Result<Vec<String>, ParseError> {
    let mut out: Vec<String> = Vec::new();
    for item in v.as_str().split(',').map(str::trim) {
        if !is_token(item) {
            return Err(v.invalid(format_args!(
                "`{item}` is not a subprotocol name (letters, digits and !#$%&'*+-.^_`|~, comma-separated)"
            )));
        }
        if out.iter().any(|s| s == item) {
            return Err(v.invalid(format_args!("`{item}` is listed twice")));
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

/// A request target: starts with `/`, no spaces or control characters.
pub(crate) fn path(v: &Value<'_>) -> Result<String, ParseError> {
    let t = v.as_str();
    if !t.starts_with('/') {
        return Err(v
            .invalid("a path starts with `/`")
            .with_suggestion(format!("path=/{t}")));
    }
    if let Some(c) = t.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(v.invalid(format_args!(
            "`{}` cannot be in a request path (percent-encode it)",
            c.escape_default()
        )));
    }
    Ok(t.to_owned())
}

/// `maxMessage`, `maxFrame`, `ping`, `pongTimeout`.
pub(crate) fn stream_settings(args: &Args<'_>) -> Result<StreamSettings, ParseError> {
    let size = |name: &str| -> Result<usize, ParseError> {
        let v = args.required(name)?;
        let n = v.u32()? as usize;
        if !(125..=(1 << 30)).contains(&n) {
            return Err(v.invalid("expected 125 bytes (a control frame) to 1073741824 (1 GiB)"));
        }
        Ok(n)
    };
    let max_message = size("maxMessage")?;
    let max_frame = size("maxFrame")?;
    let ping = Some(args.required("ping")?.duration()?).filter(|d| !d.is_zero());
    let pong_v = args.required("pongTimeout")?;
    let pong_timeout = pong_v.duration()?;
    if pong_timeout.is_zero() {
        return Err(pong_v.invalid("must be above 0"));
    }
    Ok(StreamSettings {
        max_message,
        max_frame,
        ping,
        pong_timeout,
    })
}

/// An error from a description this crate built from the user's parameters (the `hostname:`
/// or `tls:` beneath), pointed at the user's parameter it names, else at the prefix.
pub(crate) fn at_users_text(args: &Args<'_>, e: ParseError) -> ParseError {
    let d: &Description = args.description();
    let (span, param) = match e.parameter().and_then(|p| args.get(p).map(|v| (v, p))) {
        Some((v, p)) => (v.span(), Some(p.to_owned())),
        None => (d.prefix_field().map_or(0..0, |f| f.span()), None),
    };
    let mut out = ParseError::new(e.kind(), span, e.message());
    if let Some(input) = d.input() {
        out = out.with_input(input.clone());
    }
    if let Some(p) = param {
        out = out.with_parameter(p);
    }
    if let Some(s) = e.suggestion() {
        out = out.with_suggestion(s.to_owned());
    }
    out
}
