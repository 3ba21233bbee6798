//! The command's log on stderr: the library's warnings (a `haproxy:` listener that trusts
//! every peer, a key file others can read, an ACME cache that cannot be written, a failed
//! renewal) and the command's own lines (each connection: who, bytes each way, how it ended).
//!
//! Filter: `--log-level LEVEL`, else `RUST_LOG` (tracing's `EnvFilter` syntax), else
//! warnings from everything and info from this project's crates (`warn,endpoints=info`), and the connections the upgrade pool drops (a failed TLS handshake or PROXY header, with its reason: the library logs those at debug).
//! Format: `--log-format text` (default: the command's own lines as plain lines, others as
//! `LEVEL target: message fields`) or `json` (one object a line, for journald or Loki).

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the command's own lines (the binary's crate is also named `endpoints`, like
/// the umbrella library, so its module paths cannot tell them apart).
pub(crate) const OWN: &str = "endpoints_cli";

/// The default filter: warnings from everything, info from our crates and the command, and
/// the upgrade pool's lines about connections it dropped (a failed TLS handshake or PROXY
/// header, with its reason), which the library logs at debug since they are the client's
/// doing, but which an operator of the command looks for when a client cannot connect.
const DEFAULT_FILTER: &str = "warn,endpoints=info,endpoints_util::upgrade=debug";

/// The filter for `--log-level LEVEL`: that level for everything; at info, the upgrade pool's
/// dropped connections too (see [`DEFAULT_FILTER`]).
fn level_filter(level: tracing::Level) -> String {
    if level == tracing::Level::INFO {
        "info,endpoints_util::upgrade=debug".to_owned()
    } else {
        level.as_str().to_ascii_lowercase()
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

/// `--log-level` and `--log-format`, taken out of the arguments.
#[derive(Debug)]
pub(crate) struct Options {
    level: Option<tracing::Level>,
    off: bool,
    format: Format,
}

/// Take `--log-level LEVEL` and `--log-format FORMAT` out of `args` wherever they stand
/// (before a `--`), checking their values.
pub(crate) fn take_flags(args: &mut Vec<String>) -> Result<Options, String> {
    let mut o = Options {
        level: None,
        off: false,
        format: Format::Text,
    };
    let mut i = 0;
    while i < args.len() {
        let name = args[i].as_str();
        if name == "--" {
            break;
        }
        if name != "--log-level" && name != "--log-format" {
            i += 1;
            continue;
        }
        let Some(value) = args.get(i + 1).cloned() else {
            return Err(format!("{name} needs a value"));
        };
        if name == "--log-level" {
            match value.to_ascii_lowercase().as_str() {
                "off" => o.off = true,
                v => {
                    o.level = Some(v.parse().map_err(|_| {
                        format!(
                            "--log-level: expected off, error, warn, info, debug or trace, got `{}`",
                            value.escape_debug()
                        )
                    })?);
                    o.off = false;
                }
            }
        } else {
            o.format = match value.as_str() {
                "text" => Format::Text,
                "json" => Format::Json,
                _ => {
                    return Err(format!(
                        "--log-format: expected `text` or `json`, got `{}`",
                        value.escape_debug()
                    ));
                }
            };
        }
        args.drain(i..i + 2);
    }
    Ok(o)
}

/// Events written while a listener is being set up, held until its `listening on` line is
/// out (that line comes first: scripts read the address from it), at most [`HELD_MAX`] bytes.
static HELD: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// What [`HELD`] keeps at most; more is dropped, and the release says so.
const HELD_MAX: usize = 256 * 1024;

/// Hold the log until [`release`].
pub(crate) fn hold() {
    if let Ok(mut h) = HELD.lock() {
        *h = Some(Vec::new());
    }
}

/// Write what was held, and stop holding.
pub(crate) fn release() {
    let held = HELD.lock().ok().and_then(|mut h| h.take());
    if let Some(buf) = held {
        use std::io::Write as _;
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(&buf);
        if buf.len() >= HELD_MAX {
            let _ = writeln!(
                e,
                "endpoints: more log lines came before listening; dropped"
            );
        }
    }
}

/// stderr, or [`HELD`] while the log is held. Write errors (stderr closed) are no failure.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut h) = HELD.lock()
            && let Some(buf) = h.as_mut()
        {
            let room = HELD_MAX.saturating_sub(buf.len()).min(b.len());
            buf.extend_from_slice(&b[..room]);
            return Ok(b.len());
        }
        let _ = std::io::stderr().write_all(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the subscriber. A `RUST_LOG` that does not parse is reported, and the default
/// filter used.
pub(crate) fn init(o: &Options) {
    let filter = if o.off {
        EnvFilter::new("off")
    } else if let Some(level) = o.level {
        EnvFilter::new(level_filter(level))
    } else {
        match std::env::var("RUST_LOG") {
            Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
                err!(
                    "endpoints: RUST_LOG=`{}` is not a filter ({e}); using `{DEFAULT_FILTER}`",
                    v.escape_debug()
                );
                EnvFilter::new(DEFAULT_FILTER)
            }),
            _ => EnvFilter::new(DEFAULT_FILTER),
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(false);
    // A second subscriber (none here) would be an error: ignore it rather than fail.
    let _ = match o.format {
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        Format::Text => builder.event_format(Text::new()).try_init(),
    };
}

/// The text format: the command's own lines as they are (`relay 192.0.2.7:4000 -> ...`, what
/// scripts and people read), everything else with its level and origin, without a timestamp
/// (journald and terminals have their own).
struct Text {
    others: format::Format<format::Full, ()>,
}

impl Text {
    fn new() -> Self {
        Self {
            others: format::format().without_time().with_ansi(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == OWN {
            let mut message = Message(String::new());
            event.record(&mut message);
            return writeln!(writer, "{}", message.0);
        }
        self.others.format_event(ctx, writer, event)
    }
}

/// The `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn log_flags_are_taken_out_wherever_they_stand() {
        let mut a = args(&[
            "listen",
            "--log-level",
            "debug",
            "tcp:0",
            "--log-format",
            "json",
        ]);
        let o = take_flags(&mut a).expect("flags");
        assert_eq!(a, args(&["listen", "tcp:0"]));
        assert_eq!(o.level, Some(tracing::Level::DEBUG));
        assert_eq!(o.format, Format::Json);
        let mut a = args(&["connect", "--", "--log-level", "x"]);
        take_flags(&mut a).expect("after --, an argument");
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn hostile_log_flags_are_usage_errors() {
        for bad in [
            &["--log-level"][..],
            &["--log-level", "loud"],
            &["--log-level", ""],
            &["--log-format", "xml"],
            &["--log-format"],
        ] {
            let e = take_flags(&mut args(bad)).expect_err("refused");
            assert!(e.starts_with("--log-"), "{e}");
        }
        let o = take_flags(&mut args(&["--log-level", "OFF"])).expect("off");
        assert!(o.off);
    }
}
