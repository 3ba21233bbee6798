//! The compatibility suite: vectors recorded from Twisted 26.10 (and PROXY protocol
//! vectors) run against this workspace's grammar and transports.
//!
//! Each vector gets a name, `"<side> <input>"` (plus ` [bytes]` for byte-string inputs), and
//! one of three verdicts:
//!
//! * **pass**: we do what Twisted does (or, for an error vector, we fail with the matching
//!   error kind);
//! * **fail**: we differ, and the name is not in `vectors/deviations.jsonl`;
//! * **skip**: the vector needs a transport or component that this build does not have yet
//!   (for example `unix:` before its crate lands); the reason is printed.
//!
//! A vector that differs but is listed in the deviations file, with its reason, counts as a
//! deliberate deviation. A listed vector that passes, or a listed name that matches no vector,
//! fails the run: the list cannot rot.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use endpoints::registry::{self, Side};
use endpoints::{Description, ErrorKind, ParseError};
use serde_json::Value;

mod fixture;
mod proxy;

/// The vector files in this crate, run by default.
pub fn default_vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    vec![
        dir.join("twisted-vectors.jsonl"),
        dir.join("proxy-vectors.jsonl"),
    ]
}

/// The deviations file in this crate.
pub fn default_deviations_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join("deviations.jsonl")
}

/// What happened to one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Matches Twisted.
    Pass,
    /// Differs, with an explanation.
    Fail(String),
    /// Not run, with the reason.
    Skip(String),
}

/// The result of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Vectors that matched.
    pub passed: usize,
    /// Vectors that differ as listed (name, reason).
    pub deviations: Vec<(String, String)>,
    /// Vectors that differ without being listed (name, what differed).
    pub failures: Vec<(String, String)>,
    /// Skipped vectors, counted by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Problems with the deviations list itself.
    pub list_problems: Vec<String>,
    /// Per file: (file name, vectors read).
    pub files: Vec<(String, usize)>,
}

impl Report {
    /// Whether the run is green.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.list_problems.is_empty()
    }

    /// Number of skipped vectors.
    pub fn skipped_count(&self) -> usize {
        self.skipped.values().sum()
    }

    /// The human-readable summary, ending with the `N passed, N failed, N skipped` line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (file, n) in &self.files {
            let _ = writeln!(out, "read {n} vectors from {file}");
        }
        for (name, why) in &self.failures {
            let _ = writeln!(out, "FAIL {name}\n     {why}");
        }
        for p in &self.list_problems {
            let _ = writeln!(out, "LIST {p}");
        }
        for (reason, n) in &self.skipped {
            let _ = writeln!(out, "skipped {n}: {reason}");
        }
        let _ = writeln!(
            out,
            "{} match Twisted, {} are listed deliberate deviations",
            self.passed,
            self.deviations.len()
        );
        let failed = self.failures.len() + self.list_problems.len();
        let _ = writeln!(
            out,
            "{} passed, {failed} failed, {} skipped",
            self.passed + self.deviations.len(),
            self.skipped_count()
        );
        out
    }
}

/// Run every vector in `files` with the deviations in `deviations`.
pub fn run(files: &[PathBuf], deviations: &Path) -> io::Result<Report> {
    let listed = read_deviations(deviations)?;
    let mut report = Report::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        let mut count = 0;
        for (lineno, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", file.display(), lineno + 1),
                )
            })?;
            count += 1;
            let name = vector_name(&v);
            seen.insert(name.clone());
            match (judge(&v), listed.get(&name)) {
                (Verdict::Pass, None) => report.passed += 1,
                (Verdict::Pass, Some(_)) => report.list_problems.push(format!(
                    "`{name}` now matches Twisted: remove it from the deviations list"
                )),
                (Verdict::Fail(_), Some(reason)) => report.deviations.push((name, reason.clone())),
                (Verdict::Fail(why), None) => report.failures.push((name, why)),
                (Verdict::Skip(reason), _) => *report.skipped.entry(reason).or_default() += 1,
            }
        }
        report.files.push((file.display().to_string(), count));
    }
    for name in listed.keys() {
        if !seen.contains(name) {
            report.list_problems.push(format!(
                "`{name}` is listed as a deviation but no vector has that name"
            ));
        }
    }
    Ok(report)
}

fn read_deviations(path: &Path) -> io::Result<BTreeMap<String, String>> {
    let text = fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: {what}", path.display(), i + 1),
            )
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let name = v["vector"]
            .as_str()
            .ok_or_else(|| bad("missing \"vector\""))?;
        let reason = v["reason"]
            .as_str()
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| bad("missing \"reason\""))?;
        if out.insert(name.to_owned(), reason.to_owned()).is_some() {
            return Err(bad(&format!("`{name}` is listed twice")));
        }
    }
    Ok(out)
}

/// The vector's name: side (or PROXY mode) and input.
pub fn vector_name(v: &Value) -> String {
    if let Some(mode) = v["mode"].as_str() {
        let hex = v["input"]["hex"].as_str().unwrap_or("");
        let chunks = v["chunks"].as_array().map_or(String::new(), |c| {
            let parts: Vec<&str> = c.iter().map(|x| x["hex"].as_str().unwrap_or("")).collect();
            format!(" [{}]", parts.join("|"))
        });
        return format!(
            "proxy-v{} {mode} {hex}{chunks}",
            v["version"].as_i64().map_or("?".into(), |n| n.to_string())
        );
    }
    let side = v["side"].as_str().unwrap_or("?");
    let input = match &v["input"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bytes = if v["input_is_bytes"].as_bool() == Some(true) {
        " [bytes]"
    } else {
        ""
    };
    format!("{side} {input}{bytes}")
}

/// Judge one vector.
pub fn judge(v: &Value) -> Verdict {
    if v.get("mode").is_some() {
        return proxy::judge(v);
    }
    match v["side"].as_str() {
        Some("parse") => judge_parse(v),
        Some("quote") => judge_quote(v),
        Some("server") => judge_build(v, Side::Server),
        Some("client") => judge_build(v, Side::Client),
        Some("backoff") => judge_backoff(v),
        Some("systemd-env") => judge_systemd_env(v),
        other => Verdict::Fail(format!("unknown side {other:?}")),
    }
}

/// A vector string, or `{"bytes": "..."}` (bytes are treated as the same text here).
fn text(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v["bytes"].as_str())
}

fn judge_parse(v: &Value) -> Verdict {
    let Some(input) = v["input"].as_str() else {
        return Verdict::Fail("input is not a string".into());
    };
    let parsed = Description::parse(input);
    if let Some(err) = v["error"].as_str() {
        return match parsed {
            Err(e) => check_kind(&e, err),
            Ok(d) => Verdict::Fail(format!("Twisted fails with {err}; we parse it as `{d}`")),
        };
    }
    let d = match parsed {
        Ok(d) => d,
        Err(e) => return Verdict::Fail(format!("we fail to parse: {e}")),
    };
    let expect = &v["expect"];
    let args: Vec<&str> = d
        .fields()
        .iter()
        .filter(|f| f.is_positional())
        .map(|f| f.value())
        .collect();
    let want_args: Option<Vec<&str>> = expect["args"]
        .as_array()
        .and_then(|a| a.iter().map(text).collect());
    if want_args.as_deref() != Some(args.as_slice()) {
        return Verdict::Fail(format!("args {args:?}, Twisted {want_args:?}"));
    }
    let mut kwargs: BTreeMap<&str, &str> = BTreeMap::new();
    for f in d.fields() {
        if let Some(k) = f.key() {
            kwargs.insert(k, f.value());
        }
    }
    let want: Option<BTreeMap<&str, &str>> = expect["kwargs"].as_object().and_then(|m| {
        m.iter()
            .map(|(k, v)| text(v).map(|t| (k.as_str(), t)))
            .collect()
    });
    if want.as_ref() != Some(&kwargs) {
        return Verdict::Fail(format!("kwargs {kwargs:?}, Twisted {want:?}"));
    }
    if let Some(unparse) = expect["unparse"].as_str() {
        let shown = d.to_string();
        if shown != unparse {
            return Verdict::Fail(format!(
                "displays as `{shown}`, Twisted unparses to `{unparse}`"
            ));
        }
    }
    Verdict::Pass
}

/// `backoff`: Twisted's `backoffPolicy` delay for an attempt, jitter fixed.
fn judge_backoff(v: &Value) -> Verdict {
    use endpoints::service::{Backoff, Jitter};
    let i = &v["input"];
    let num = |k: &str| i[k].as_f64();
    let (Some(attempt), Some(want)) = (i["attempt"].as_u64(), v["expect"]["delay"].as_f64()) else {
        return Verdict::Fail("malformed backoff vector".into());
    };
    // Jitter is written as a number or as "constant N".
    let jitter = num("jitter")
        .or_else(|| {
            i["jitter"]
                .as_str()
                .and_then(|t| t.strip_prefix("constant "))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0.0);
    let mut b = Backoff::new().jitter(Jitter::Fixed(jitter));
    if let Some(x) = num("initialDelay") {
        b = b.initial(x);
    }
    if let Some(x) = num("maxDelay") {
        b = b.max(x);
    }
    if let Some(x) = num("factor") {
        b = b.factor(x);
    }
    let got = b.seconds(u32::try_from(attempt).unwrap_or(u32::MAX));
    if (got - want).abs() <= 1e-9 * want.abs().max(1.0) {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("delay {got}, Twisted {want}"))
    }
}

/// `systemd-env`: which descriptors and names the variables give, and which variables are
/// removed (we follow libsystemd: all three, whatever they said).
fn judge_systemd_env(v: &Value) -> Verdict {
    let input = &v["input"];
    let own = std::process::id();
    let get = |k: &str| {
        input[k]
            .as_str()
            .map(|s| s.replace("$PID", &own.to_string()))
    };
    let (pid, fds, names) = (get("LISTEN_PID"), get("LISTEN_FDS"), get("LISTEN_FDNAMES"));
    let ours = endpoints::systemd::Activation::from_vars(
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
        own,
    );
    let expect = &v["expect"];
    let want_fds: Vec<i64> = expect["descriptors"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().filter_map(Value::as_i64).collect());
    let want_named: BTreeMap<String, i64> =
        expect["named"].as_object().map_or(BTreeMap::new(), |m| {
            m.iter()
                .filter_map(|(k, x)| x.as_i64().map(|n| (k.clone(), n)))
                .collect()
        });
    let mut want_removed: Vec<&str> = expect["env_vars_removed"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().filter_map(Value::as_str).collect());
    want_removed.sort_unstable();
    let mut removed: Vec<&str> = endpoints::systemd::VARIABLES
        .iter()
        .copied()
        .filter(|k| input.get(*k).is_some())
        .collect();
    removed.sort_unstable();
    let a = match ours {
        Ok(a) => a,
        Err(e) => {
            return Verdict::Fail(format!(
                "we report an error ({e}); Twisted finds descriptors {want_fds:?}"
            ));
        }
    };
    let got_fds: Vec<i64> = a.descriptors().iter().map(|&f| i64::from(f)).collect();
    let got_named: BTreeMap<String, i64> = a
        .named()
        .into_iter()
        .map(|(k, f)| (k.to_owned(), i64::from(f)))
        .collect();
    if got_fds != want_fds {
        return Verdict::Fail(format!("descriptors {got_fds:?}, Twisted {want_fds:?}"));
    }
    if got_named != want_named {
        return Verdict::Fail(format!("names {got_named:?}, Twisted {want_named:?}"));
    }
    if removed != want_removed {
        return Verdict::Fail(format!(
            "we remove {removed:?}, Twisted removes {want_removed:?}"
        ));
    }
    Verdict::Pass
}

fn judge_quote(v: &Value) -> Verdict {
    let (Some(input), Some(want)) = (v["input"].as_str(), v["expect"]["quoted"].as_str()) else {
        return Verdict::Fail("malformed quote vector".into());
    };
    let got = endpoints::escape(input);
    if got == want {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("escaped `{got}`, Twisted `{want}`"))
    }
}

/// Twisted endpoint class names and the prefix (and side) that builds them here.
const TYPES: &[(&str, &str)] = &[
    ("TCP4ServerEndpoint", "tcp"),
    ("TCP6ServerEndpoint", "tcp6"),
    ("UNIXServerEndpoint", "unix"),
    ("SSL4ServerEndpoint", "ssl"),
    ("TLSServerEndpoint", "tls"),
    ("AdoptedStreamServerEndpoint", "systemd"),
    ("_WrapperServerEndpoint", "haproxy"),
    ("StandardIOEndpoint", "stdio"),
    ("TCP4ClientEndpoint", "tcp"),
    ("UNIXClientEndpoint", "unix"),
    ("SSL4ClientEndpoint", "ssl"),
    ("_WrapperEndpoint", "tls"),
    ("HostnameEndpoint", "hostname"),
    ("StreamClient", "crfake"),
];

/// Prefixes Twisted knows, which this project implements in its own crates.
const PLANNED: &[&str] = &[
    "tcp", "tcp6", "unix", "ssl", "tls", "systemd", "haproxy", "stdio", "hostname",
];

fn is_linked(prefix: &str) -> bool {
    registry::plugins().any(|p| p.prefix().eq_ignore_ascii_case(prefix))
}

/// The planned prefixes a vector needs that are not linked into this build.
fn missing_transports(v: &Value) -> Vec<String> {
    let mut needed: Vec<String> = Vec::new();
    if let Some(input) = v["input"].as_str()
        && let Ok(d) = Description::parse(input)
        && let Some(p) = d.prefix()
    {
        needed.push(p.to_ascii_lowercase());
    }
    let mut e = &v["expect"];
    while let Some(t) = e["type"].as_str() {
        if let Some((_, p)) = TYPES.iter().find(|(n, _)| *n == t) {
            needed.push((*p).to_owned());
        }
        e = &e["wrapped"];
    }
    needed.retain(|p| PLANNED.contains(&p.as_str()) && !is_linked(p));
    needed.sort();
    needed.dedup();
    needed
}

fn judge_build(v: &Value, side: Side) -> Verdict {
    let missing = missing_transports(v);
    if !missing.is_empty() {
        return Verdict::Skip(format!(
            "needs `{}:` (its transport crate is not built yet)",
            missing.join(":`, `")
        ));
    }
    let Some(raw) = v["input"].as_str() else {
        return Verdict::Fail("input is not a string".into());
    };
    if let Some(env) = v.get("env") {
        // The descriptors systemd would have passed, as the vector describes them.
        let ints = |a: &Value| -> Vec<i32> {
            a.as_array().map_or(Vec::new(), |a| {
                a.iter()
                    .filter_map(Value::as_i64)
                    .map(|x| x as i32)
                    .collect()
            })
        };
        let strs = |a: &Value| -> Vec<String> {
            a.as_array().map_or(Vec::new(), |a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
        };
        // Described only: these numbers are not ours, and nothing here listens on them.
        match endpoints::systemd::Activation::described(ints(&env["fds"]), strs(&env["names"])) {
            Ok(a) => a.install(),
            Err(e) => return Verdict::Fail(format!("bad env in vector: {e}")),
        }
    }
    let input = match fixture::substitute(raw, v) {
        Ok(s) => s,
        Err(skip) => return Verdict::Skip(skip),
    };
    let built = Description::parse(&input).and_then(|d| match side {
        Side::Client => registry::build_client(&d).map(|e| e.to_string()),
        Side::Server => registry::build_server(&d).map(|e| e.to_string()),
    });
    if let Some(err) = v["error"].as_str() {
        return match built {
            Err(e) => check_kind(&e, err),
            Ok(shown) => Verdict::Fail(format!("Twisted fails with {err}; we build `{shown}`")),
        };
    }
    let canonical = match built {
        Ok(shown) => shown,
        Err(e) => return Verdict::Fail(format!("we fail: {}", e.message())),
    };
    match Description::parse(&canonical) {
        Ok(d) => compare(&v["expect"], &d),
        Err(e) => Verdict::Fail(format!(
            "our canonical form `{canonical}` does not parse: {e}"
        )),
    }
}

/// The error kind we give for a Twisted exception, where one clearly corresponds.
fn expected_kind(twisted: &str) -> Option<ErrorKind> {
    let rules: &[(&str, ErrorKind)] = &[
        ("Unknown endpoint type", ErrorKind::UnknownType),
        ("unexpected keyword argument", ErrorKind::UnknownParameter),
        (
            "unrecognized keyword arguments",
            ErrorKind::UnknownParameter,
        ),
        ("multiple values for argument", ErrorKind::Duplicate),
        ("positional arguments but", ErrorKind::UnknownParameter),
        ("invalid literal for int()", ErrorKind::InvalidValue),
        ("generator raised StopIteration", ErrorKind::Syntax),
    ];
    if twisted.starts_with("TypeError") && twisted.contains("missing") {
        return Some(ErrorKind::MissingParameter);
    }
    rules
        .iter()
        .find(|(needle, _)| twisted.contains(needle))
        .map(|(_, k)| *k)
}

fn check_kind(ours: &ParseError, twisted: &str) -> Verdict {
    match expected_kind(twisted) {
        Some(k) if k != ours.kind() => Verdict::Fail(format!(
            "Twisted: {twisted}; we give a {} error instead of {k}: {}",
            ours.kind(),
            ours.message()
        )),
        _ => Verdict::Pass,
    }
}

/// Twisted attribute names that our canonical descriptions call differently.
fn our_key<'a>(twisted_type: &str, key: &'a str) -> &'a str {
    match (twisted_type, key) {
        ("UNIXServerEndpoint", "wantPID") | ("UNIXClientEndpoint", "checkPID") => "lockfile",
        _ => key,
    }
}

/// Keys of an expectation that describe Twisted internals, not parameters.
const NOT_PARAMETERS: &[&str] = &[
    "type",
    "wrapped",
    "tls",
    "connectionCreator",
    "wrapperFactory",
    "wrapper",
    "fileno",
    "addressFamily",
    "pluginPrefix",
    "args",
    "kwargs",
];

fn compare(expect: &Value, ours: &Description) -> Verdict {
    let Some(map) = expect.as_object() else {
        return Verdict::Fail("malformed expectation".into());
    };
    let twisted_type = expect["type"].as_str().unwrap_or("");
    if twisted_type == "StreamClient" {
        return compare_args(expect, ours);
    }
    if let Some((_, prefix)) = TYPES.iter().find(|(n, _)| *n == twisted_type)
        && ours.prefix() != Some(*prefix)
    {
        return Verdict::Fail(format!(
            "we build `{}:`, Twisted a {twisted_type}",
            ours.prefix().unwrap_or("")
        ));
    }
    // The TCP parameters of a `tls:` server are its own in our canonical form.
    let mut expected: Vec<(&String, &Value)> = map.iter().collect();
    if matches!(twisted_type, "TLSServerEndpoint" | "_WrapperServerEndpoint")
        && let Some(inner) = expect["wrapped"].as_object()
    {
        expected.extend(inner.iter().filter(|(k, _)| k.as_str() != "type"));
    }
    for (key, want) in expected {
        if NOT_PARAMETERS.contains(&key.as_str()) {
            continue;
        }
        let ours_value = ours.get(our_key(twisted_type, key));
        let want_text = match want {
            Value::Null => None,
            Value::Bool(b) => Some(if *b { "1".to_owned() } else { "0".to_owned() }),
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(|h| h.as_str()).map(str::to_owned),
            Value::Object(_) => continue,
        };
        if !same_value(ours_value, want_text.as_deref()) {
            return Verdict::Fail(format!(
                "`{key}`: ours {}, Twisted {} (our canonical form: `{ours}`)",
                ours_value.map_or("absent".into(), |s| format!("`{s}`")),
                want_text.map_or("absent".into(), |s| format!("`{s}`")),
            ));
        }
    }
    Verdict::Pass
}

fn same_value(ours: Option<&str>, twisted: Option<&str>) -> bool {
    match (ours, twisted) {
        (None, None) => true,
        (Some(a), Some(b)) if a == b => true,
        (Some(a), Some(b)) => {
            let octal = |s: &str| u32::from_str_radix(s.trim_start_matches("0o"), 8).ok();
            let num = |s: &str| s.parse::<f64>().ok();
            (b.starts_with("0o") && octal(a).is_some() && octal(a) == octal(b))
                || (num(a).is_some() && num(a) == num(b))
        }
        _ => false,
    }
}

fn compare_args(expect: &Value, ours: &Description) -> Verdict {
    let args: Vec<&str> = ours.positionals().map(|f| f.value()).collect();
    let want_args: Option<Vec<&str>> = expect["args"]
        .as_array()
        .and_then(|a| a.iter().map(|x| x.as_str()).collect());
    if want_args.as_deref() != Some(args.as_slice()) {
        return Verdict::Fail(format!("plugin got args {args:?}, Twisted {want_args:?}"));
    }
    let mut kwargs: BTreeMap<&str, &str> = BTreeMap::new();
    for f in ours.fields() {
        if let Some(k) = f.key() {
            kwargs.insert(k, f.value());
        }
    }
    let want: Option<BTreeMap<&str, &str>> = expect["kwargs"].as_object().and_then(|m| {
        m.iter()
            .map(|(k, v)| v.as_str().map(|t| (k.as_str(), t)))
            .collect()
    });
    if want.as_ref() == Some(&kwargs) {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("plugin got kwargs {kwargs:?}, Twisted {want:?}"))
    }
}
