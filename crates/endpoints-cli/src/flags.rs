//! The command's flags: parsed, and every value checked before anything starts. A bad value is
//! a usage error (exit status 2) that names the flag and the accepted range; never a panic.

use std::time::Duration;

use crate::pump::HalfClose;

/// The longest time a flag takes: one year. Longer is surely a mistake, and bounding it keeps
/// every deadline representable.
pub(crate) const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// The most connections `--max-connections` takes (the kernel's own ceiling on open files,
/// `fs.nr_open`, is 1,048,576 by default).
pub(crate) const MAX_CONNECTIONS: usize = 1 << 20;

/// Options and positional arguments of a subcommand.
pub(crate) struct Parsed {
    flags: Vec<String>,
    values: Vec<(String, String)>,
    pub(crate) positional: Vec<String>,
}

/// Split `args` into the known `flags`, the options in `valued` (each with its value) and the
/// positional arguments. `usage` ends every message.
pub(crate) fn parse(
    args: &[String],
    flags: &[&str],
    valued: &[&str],
    usage: &str,
) -> Result<Parsed, String> {
    let mut p = Parsed {
        flags: Vec::new(),
        values: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            p.positional.extend(it.by_ref().cloned());
            break;
        }
        if flags.contains(&a.as_str()) {
            p.flags.push(a.clone());
        } else if valued.contains(&a.as_str()) {
            let v = it
                .next()
                .ok_or_else(|| format!("{a} needs a value\n{usage}"))?;
            p.values.push((a.clone(), v.clone()));
        } else if a.starts_with("--") {
            return Err(format!("unknown option {}\n{usage}", a.escape_debug()));
        } else {
            p.positional.push(a.clone());
        }
    }
    Ok(p)
}

impl Parsed {
    pub(crate) fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// A flag's text value (the last one given).
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.value(name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A duration in seconds (decimals allowed), at most [`MAX_SECONDS`]; zero only if
    /// `zero_ok`.
    pub(crate) fn seconds(&self, name: &str, zero_ok: bool) -> Result<Option<Duration>, String> {
        let Some(v) = self.value(name) else {
            return Ok(None);
        };
        let lowest = if zero_ok { "0" } else { "more than 0" };
        let bad = || {
            format!(
                "{name}: expected seconds, {lowest} to {MAX_SECONDS} (decimals allowed), got `{}`",
                v.escape_debug()
            )
        };
        let secs: f64 = v.trim().parse().map_err(|_| bad())?;
        if !(0.0..=MAX_SECONDS).contains(&secs) || (secs == 0.0 && !zero_ok) {
            return Err(bad());
        }
        let d = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
        if d.is_zero() && !zero_ok {
            // A value so small it rounds to nothing.
            return Err(bad());
        }
        Ok(Some(d))
    }

    /// A count from 1 to `max`.
    pub(crate) fn count(&self, name: &str, max: usize) -> Result<Option<usize>, String> {
        let Some(v) = self.value(name) else {
            return Ok(None);
        };
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{name}: expected a whole number from 1 to {max}, got `{}`",
                    v.escape_debug()
                )
            })
    }

    /// `--half-close`, `auto` when not given.
    pub(crate) fn half_close(&self) -> Result<HalfClose, String> {
        match self.value("--half-close") {
            None => Ok(HalfClose::Auto),
            Some(v) => v.parse().map_err(|e| format!("--half-close: {e}")),
        }
    }

    /// The only positional argument.
    pub(crate) fn one(&self, what: &str, usage: &str) -> Result<&str, String> {
        match self.positional.as_slice() {
            [one] => Ok(one),
            _ => Err(format!("expected exactly one {what}\n{usage}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str, value: &str) -> Parsed {
        let args = [name.to_owned(), value.to_owned()];
        parse(&args, &[], &[name], "usage").expect("parsed")
    }

    #[test]
    fn hostile_seconds_are_usage_errors() {
        for v in [
            "", " ", "-1", "-0.5", "1e20", "1e400", "NaN", "inf", "-inf", "abc", "0x10", "1s",
            "31536001",
        ] {
            let p = parsed("--linger", v);
            let e = p.seconds("--linger", true).expect_err(v);
            assert!(e.starts_with("--linger: expected seconds"), "{v}: {e}");
        }
        for v in ["0", "0.0", "1e-12"] {
            assert!(
                parsed("--idle-timeout", v)
                    .seconds("--idle-timeout", false)
                    .is_err()
            );
        }
        assert_eq!(
            parsed("--linger", "0").seconds("--linger", true),
            Ok(Some(Duration::ZERO))
        );
        assert_eq!(
            parsed("--linger", "2.5").seconds("--linger", true),
            Ok(Some(Duration::from_millis(2500)))
        );
    }

    #[test]
    fn hostile_counts_are_usage_errors() {
        for v in [
            "",
            "0",
            "-1",
            "1.5",
            "18446744073709551615",
            "18446744073709551616",
            "1048577",
            "1e3",
        ] {
            let e = parsed("--max-connections", v)
                .count("--max-connections", MAX_CONNECTIONS)
                .expect_err(v);
            assert!(e.contains("from 1 to 1048576"), "{e}");
        }
        assert_eq!(
            parsed("--max-connections", "1048576").count("--max-connections", MAX_CONNECTIONS),
            Ok(Some(1 << 20))
        );
    }
}
