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

/// Options and positional arguments of a subcommand, as clap read them (`main.rs` builds it
/// from the subcommand's arguments in `cli.rs`), for the modules that serve the subcommand.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    flags: Vec<&'static str>,
    values: Vec<(&'static str, String)>,
    pub(crate) positional: Vec<String>,
}

impl Parsed {
    /// No flags; these positional arguments.
    pub(crate) fn new(positional: Vec<String>) -> Self {
        Self {
            positional,
            ..Self::default()
        }
    }

    /// With the switch `name` when `on`.
    pub(crate) fn switch(mut self, name: &'static str, on: bool) -> Self {
        if on {
            self.flags.push(name);
        }
        self
    }

    /// With the option `name` set to `value` when given.
    pub(crate) fn value(mut self, name: &'static str, value: Option<String>) -> Self {
        if let Some(v) = value {
            self.values.push((name, v));
        }
        self
    }
}

impl Parsed {
    pub(crate) fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// A flag's text value (the last one given).
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A duration in seconds (decimals allowed), at most [`MAX_SECONDS`]; zero only if
    /// `zero_ok`.
    pub(crate) fn seconds(&self, name: &str, zero_ok: bool) -> Result<Option<Duration>, String> {
        let Some(v) = self.get(name) else {
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
        let Some(v) = self.get(name) else {
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
        match self.get("--half-close") {
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

/// `--allow-types T,..` and `--deny-types T,..` as one policy; `None` when neither is given.
/// Repeated, deny-lists add up and allow-lists intersect (a wrapper script that adds its own
/// `--deny-types exec` cannot be undone by a later flag). Both together are a usage error
/// when the allow-list names a denied type: which one was meant is unclear. Every name must be
/// a linked endpoint type.
pub(crate) fn type_policy(allow: &[String], deny: &[String]) -> Result<Option<TypePolicy>, String> {
    let known: Vec<&str> = registry::prefixes(Side::Client)
        .into_iter()
        .chain(registry::prefixes(Side::Server))
        .collect();
    let names_of = |flag: &str, v: &str| -> Result<Vec<String>, String> {
        let names: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        if names.is_empty() {
            return Err(format!(
                "{flag}: give endpoint types, comma-separated (`tcp,tls`)"
            ));
        }
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
        Ok(names)
    };
    let mut policy = TypePolicy::any();
    // The types every allow-list names, and the types any deny-list names.
    let mut allowed: Option<Vec<String>> = None;
    let mut denied: Vec<String> = Vec::new();
    for v in allow {
        let names = names_of("--allow-types", v)?;
        policy = policy.and(&TypePolicy::allow(&names));
        allowed = Some(match allowed {
            None => names,
            Some(before) => before.into_iter().filter(|n| names.contains(n)).collect(),
        });
    }
    for v in deny {
        let names = names_of("--deny-types", v)?;
        policy = policy.and(&TypePolicy::deny(&names));
        denied.extend(names);
    }
    if let Some(allowed) = &allowed {
        if allowed.is_empty() {
            return Err(format!(
                "--allow-types: the lists ({}) have no type in common: nothing could be built \
                 (repeated --allow-types lists intersect)",
                allow.join("; ")
            ));
        }
        let mut both: Vec<&str> = allowed
            .iter()
            .filter(|n| denied.contains(n))
            .map(String::as_str)
            .collect();
        both.sort_unstable();
        both.dedup();
        if !both.is_empty() {
            return Err(format!(
                "--allow-types and --deny-types both name `{}`: leave it out of --allow-types \
                 (a denied type stays denied)",
                both.join("`, `")
            ));
        }
    }
    Ok((!allow.is_empty() || !deny.is_empty()).then_some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &'static str, value: &str) -> Parsed {
        Parsed::new(Vec::new()).value(name, Some(value.to_owned()))
    }

    fn lists(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
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
        let policy = type_policy(&[], &lists(&["exec"]))
            .expect("valid")
            .expect("given");
        assert!(!policy.permits("exec") && policy.permits("tcp"));
        let policy = type_policy(&lists(&["tcp, tls"]), &lists(&["exec"]))
            .expect("valid")
            .expect("given");
        assert!(policy.permits("TCP") && policy.permits("tls") && !policy.permits("unix"));
        assert!(!policy.permits("exec"));
        let e = type_policy(&lists(&["tpc"]), &[]).expect_err("typo");
        assert!(
            e.contains("`tpc` is not an endpoint type") && e.contains(" tcp,"),
            "{e}"
        );
        for v in ["", ",", " , "] {
            assert!(type_policy(&[], &lists(&[v])).is_err(), "{v:?}");
        }
        assert_eq!(type_policy(&[], &[]), Ok(None));
    }

    /// Issue 30, item 11: repeated deny-lists add up, repeated allow-lists intersect, and an
    /// allow-list that names a denied type is refused.
    #[test]
    fn repeated_type_flags_add_up() {
        let policy = type_policy(&[], &lists(&["exec", "unix"]))
            .expect("valid")
            .expect("given");
        assert!(!policy.permits("exec") && !policy.permits("unix") && policy.permits("tcp"));
        let policy = type_policy(&lists(&["tcp,tls,unix", "TCP,unix"]), &[])
            .expect("valid")
            .expect("given");
        assert!(policy.permits("tcp") && policy.permits("unix") && !policy.permits("tls"));
        let e = type_policy(&lists(&["tcp", "unix"]), &[]).expect_err("nothing in common");
        assert!(e.contains("no type in common"), "{e}");
        let e = type_policy(&lists(&["tcp,exec"]), &lists(&["unix", "EXEC"])).expect_err("both");
        assert!(e.contains("both name `exec`"), "{e}");
        // An allow-list that leaves the denied types out: both apply.
        let policy = type_policy(&lists(&["tcp,tls"]), &lists(&["exec"]))
            .expect("valid")
            .expect("given");
        assert!(policy.permits("tcp") && !policy.permits("exec"));
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
