//! The command's log on stderr: the library's warnings (a `haproxy:` listener that trusts
//! every peer, a key file others can read, an ACME cache that cannot be written, a failed
//! renewal) and the command's own lines (each connection: who, bytes each way, how it ended).
//!
//! Filter: `--log-level LEVEL` (or `-q`, warn; `-v`, info; `-vv`, debug; `-vvv`, trace),
//! else `RUST_LOG` (tracing's `EnvFilter` syntax), else warnings from everything and info
//! from this project's crates (`warn,endpoints=info`), and the connections the upgrade pool
//! drops (a failed TLS handshake or PROXY header, with its reason: the library logs those at
//! debug); for `connect`, else warnings only (quiet like nc: no summary line unless `-v`).
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

/// The default filter of `connect`: warnings only, like nc (no line after a complete
/// transfer; `-v` shows it).
const QUIET_FILTER: &str = "warn";

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

/// `--log-level`, `--log-format`, `-q` and `-v`, checked.
#[derive(Debug)]
pub(crate) struct Options {
    level: Option<tracing::Level>,
    off: bool,
    format: Format,
    /// The filter when no flag and no `RUST_LOG` says one.
    default: &'static str,
}

/// Check the log flags. `quiet_by_default`: the command's own info lines are off unless
/// `-v` or `--log-level` asks for them (`connect`).
pub(crate) fn options(
    flags: &crate::cli::LogArgs,
    quiet_by_default: bool,
) -> Result<Options, String> {
    let mut o = Options {
        level: None,
        off: false,
        format: Format::Text,
        default: if quiet_by_default {
            QUIET_FILTER
        } else {
            DEFAULT_FILTER
        },
    };
    if let Some(value) = &flags.log_level {
        match value.to_ascii_lowercase().as_str() {
            "off" => o.off = true,
            v => {
                o.level = Some(v.parse().map_err(|_| {
                    format!(
                        "--log-level: expected off, error, warn, info, debug or trace, got `{}`",
                        value.escape_debug()
                    )
                })?);
            }
        }
    } else if flags.quiet {
        o.level = Some(tracing::Level::WARN);
    } else if flags.verbose > 0 {
        o.level = Some(match flags.verbose {
            1 => tracing::Level::INFO,
            2 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        });
    }
    if let Some(value) = &flags.log_format {
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
    Ok(o)
}

/// Events written while a listener is being set up, held until its `listening on` line is
/// out (that line comes first: scripts read the address from it), at most [`HELD_MAX`] bytes.
static HELD: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// What [`HELD`] keeps at most; more is dropped, and the release says so.
const HELD_MAX: usize = 256 * 1024;

/// Hold the log until [`release`] (what is already held stays held).
pub(crate) fn hold() {
    if let Ok(mut h) = HELD.lock() {
        h.get_or_insert_with(Vec::new);
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
                    "endpoints: RUST_LOG=`{}` is not a filter ({e}); using `{}`",
                    v.escape_debug(),
                    o.default
                );
                EnvFilter::new(o.default)
            }),
            _ => EnvFilter::new(o.default),
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

    fn flags(
        level: Option<&str>,
        format: Option<&str>,
        quiet: bool,
        verbose: u8,
    ) -> crate::cli::LogArgs {
        crate::cli::LogArgs {
            log_level: level.map(str::to_owned),
            log_format: format.map(str::to_owned),
            quiet,
            verbose,
        }
    }

    #[test]
    fn log_flags_are_read() {
        let o = options(&flags(Some("debug"), Some("json"), false, 0), false).expect("flags");
        assert_eq!(o.level, Some(tracing::Level::DEBUG));
        assert_eq!(o.format, Format::Json);
        let o = options(&flags(None, None, true, 0), false).expect("-q");
        assert_eq!(o.level, Some(tracing::Level::WARN));
        let o = options(&flags(None, None, false, 3), true).expect("-vvv");
        assert_eq!(o.level, Some(tracing::Level::TRACE));
        let o = options(&flags(None, None, false, 0), true).expect("connect");
        assert_eq!((o.level, o.default), (None, QUIET_FILTER));
    }

    #[test]
    fn hostile_log_flags_are_usage_errors() {
        for (level, format) in [
            (Some("loud"), None),
            (Some(""), None),
            (None, Some("xml")),
            (None, Some("")),
        ] {
            let e = options(&flags(level, format, false, 0), false).expect_err("refused");
            assert!(e.starts_with("--log-"), "{e}");
        }
        let o = options(&flags(Some("OFF"), None, false, 0), false).expect("off");
        assert!(o.off);
    }
}
