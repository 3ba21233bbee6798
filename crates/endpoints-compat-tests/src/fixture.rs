//! Test fixtures the vectors refer to: the `crfake:` plugin of Twisted's test suite, and
//! file placeholders such as `{PEM}`.

use std::fmt;
use std::io;

use endpoints::{ClientEndpoint, Connection, Description, ParseError};
use serde_json::Value;

/// Twisted's test plugin `crfake`: a client type that records the arguments it was given.
/// It exercises dispatch to a third-party plugin; it has no transport.
#[derive(Debug)]
struct Recorder(Description);

impl fmt::Display for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[endpoints::async_trait]
impl ClientEndpoint for Recorder {
    async fn connect(&self) -> io::Result<Connection> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "`crfake:` only records its arguments (a conformance fixture)",
        ))
    }
}

fn build_recorder(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    Ok(Box::new(Recorder(d.clone())))
}

endpoints::register_client! {
    prefix: "crfake",
    summary: "conformance fixture: records its arguments, never connects",
    params: &[],
    build: build_recorder,
}

/// Replace the `{NAME}` placeholders of a vector by generated files. Until a transport that
/// reads such files exists, a vector with placeholders is skipped.
pub(crate) fn substitute(input: &str, v: &Value) -> Result<String, String> {
    match v.get("fixtures") {
        Some(f) if f.as_object().is_some_and(|m| !m.is_empty()) => {
            Err("needs generated certificate/key files (the TLS issue adds them)".into())
        }
        _ => Ok(input.to_owned()),
    }
}
