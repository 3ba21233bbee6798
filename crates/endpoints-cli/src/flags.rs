//! The command's flags: parsed, and every value checked before anything starts. A bad value is
//! a usage error (exit status 2) that names the flag and the accepted range; never a panic.

use std::time::Duration;

use endpoints::registry::{self, Side, TypePolicy};

use crate::pump::HalfClose;

/// The longest time a flag takes: one year. Longer is surely a mistake, and bounding it keeps
/// every deadline representable.
pub(crate) const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// The most connections `--max-connections` takes (the kernel's own ceiling on open files,
/// `fs.nr_open`, is 1,048,576 by default).
pub(crate) const MAX_CONNECTIONS: usize = 1 << 20;

/// The flags that restrict the endpoint types of every description a command builds, at
/// every nesting level (`--deny-types exec` for descriptions from someone else).
pub(crate) const POLICY_FLAGS: &[&str] = &["--allow-types", "--deny-types"];

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

    /// `--allow-types T,..` and `--deny-types T,..` as one policy (both: each applies);
    /// `None` when neither is given. Every name must be a linked endpoint type.
    pub(crate) fn type_policy(&self) -> Result<Option<TypePolicy>, String> {
        let mut policy: Option<TypePolicy> = None;
        for flag in POLICY_FLAGS {
            let Some(v) = self.value(flag) else { continue };
            let names: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            if names.is_empty() {
                return Err(format!(
                    "{flag}: give endpoint types, comma-separated (`tcp,tls`)"
                ));
            }
            let known: Vec<&str> = registry::prefixes(Side::Client)
                .into_iter()
                .chain(registry::prefixes(Side::Server))
                .collect();
            for n in &names {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(n)) {
                    let mut all = known.clone();
                    all.sort_unstable();
                    all.dedup();
                    return Err(format!(
                        "{flag}: `{}` is not an endpoint type of this program (its types: {})",
                        n.escape_debug(),
                        all.join(", ")
                    ));
                }
            }
            let one = if *flag == "--allow-types" {
                TypePolicy::allow(&names)
            } else {
                TypePolicy::deny(&names)
            };
            policy = Some(match policy {
                Some(p) => p.and(&one),
                None => one,
            });
        }
        Ok(policy)
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
    fn type_flags_build_a_policy_and_refuse_unknown_names() {
        let p = parsed("--deny-types", "exec");
        let policy = p.type_policy().expect("valid").expect("given");
        assert!(!policy.permits("exec") && policy.permits("tcp"));
        let args = ["--allow-types", "tcp, tls", "--deny-types", "tls"].map(String::from);
        let p = parse(&args, &[], POLICY_FLAGS, "usage").expect("parsed");
        let policy = p.type_policy().expect("valid").expect("given");
        assert!(policy.permits("TCP") && !policy.permits("tls") && !policy.permits("unix"));
        let e = parsed("--allow-types", "tpc")
            .type_policy()
            .expect_err("typo");
        assert!(
            e.contains("`tpc` is not an endpoint type") && e.contains(" tcp,"),
            "{e}"
        );
        for v in ["", ",", " , "] {
            assert!(parsed("--deny-types", v).type_policy().is_err(), "{v:?}");
        }
        assert_eq!(
            parse(&[], &[], POLICY_FLAGS, "u")
                .expect("empty")
                .type_policy(),
            Ok(None)
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
