//! The compatibility suite: vectors recorded from Twisted 26.10 (and PROXY protocol
//! vectors) run against this workspace's grammar and transports.
//!
//! Each vector gets a name, `"<side> <input>"` (plus ` [bytes]` for byte-string inputs), and
//! one of four verdicts:
//!
//! * **pass**: we do what Twisted does (or, for an error vector, we fail with the error kind
//!   mapped to Twisted's exception in `ERROR_KINDS`);
//! * **differs**: every field in which we differ, with our value and Twisted's (all fields are
//!   compared, not only up to the first difference);
//! * **fail**: the vector cannot be judged (malformed, or a Twisted exception with no mapped
//!   error kind);
//! * **skip**: the vector could not be run; the reason is printed. This crate builds every
//!   transport, so a skip fails the run.
//!
//! A differing vector is a deliberate deviation only when `vectors/deviations.jsonl` lists its
//! name with `"differs"` equal to its differences exactly (field to our value) and a reason.
//! A listed vector that passes, differs otherwise, or matches no vector fails the run: the list
//! cannot rot, and a listed difference cannot hide another. [`self_check`] proves it on every
//! run of the `compat` binary by changing each value a vector pins, one at a time.

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

/// One field in which we differ from Twisted: our value and Twisted's, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What we do (the value a deviation entry declares).
    pub ours: String,
    /// What Twisted does.
    pub twisted: String,
}

/// Every field in which a vector differs, plus context for people (not compared).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Differences {
    /// Field name to the two values.
    pub fields: BTreeMap<String, Difference>,
    /// Extra context for the report (our canonical form, our error message).
    pub context: String,
}

impl Differences {
    fn with_context(context: impl Into<String>) -> Self {
        Self {
            fields: BTreeMap::new(),
            context: context.into(),
        }
    }

    fn add(
        &mut self,
        field: impl Into<String>,
        ours: impl Into<String>,
        twisted: impl Into<String>,
    ) {
        self.fields.insert(
            field.into(),
            Difference {
                ours: ours.into(),
                twisted: twisted.into(),
            },
        );
    }

    /// A verdict of one differing field.
    fn one(
        field: &str,
        ours: impl Into<String>,
        twisted: impl Into<String>,
        context: impl Into<String>,
    ) -> Verdict {
        let mut d = Self::with_context(context);
        d.add(field, ours, twisted);
        d.verdict()
    }

    fn verdict(self) -> Verdict {
        if self.fields.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Differs(self)
        }
    }

    /// Field name to our value: what a deviation entry must declare, exactly.
    pub fn ours(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .map(|(k, d)| (k.clone(), d.ours.clone()))
            .collect()
    }

    /// One line per field, then the context.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (k, d) in &self.fields {
            let _ = write!(out, "`{k}`: ours `{}`, Twisted `{}`; ", d.ours, d.twisted);
        }
        if !self.context.is_empty() {
            let _ = write!(out, "({})", self.context);
        }
        out.trim_end_matches("; ").to_owned()
    }
}

/// What happened to one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Matches Twisted.
    Pass,
    /// Differs in these fields (a listed deviation must declare exactly these, with our values).
    Differs(Differences),
    /// Cannot be judged (a malformed vector, an unmapped Twisted exception): always a failure,
    /// whatever the deviations list says.
    Fail(String),
    /// Not run, with the reason. A skip fails the run: this crate builds every transport.
    Skip(String),
}

/// The result of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Vectors that matched.
    pub passed: usize,
    /// Vectors that differ as listed (name, reason).
    pub deviations: Vec<(String, String)>,
    /// Vectors that differ without being listed, or not as listed (name, what differed).
    pub failures: Vec<(String, String)>,
    /// Skipped vectors, counted by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Problems with the deviations list itself.
    pub list_problems: Vec<String>,
    /// Per file: (file name, vectors read).
    pub files: Vec<(String, usize)>,
}

impl Report {
    /// Whether the run is green: no failure, no list problem, and no skipped vector (every
    /// transport is built into this crate, so a skip means a vector was not checked).
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.list_problems.is_empty() && self.skipped.is_empty()
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
            let _ = writeln!(out, "SKIP {n}: {reason} (a skipped vector fails the run)");
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

/// A deviations-list entry: why we differ, and the fields that differ with our values.
#[derive(Debug, Clone)]
struct Deviation {
    reason: String,
    differs: BTreeMap<String, String>,
}

fn render_map(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}=`{v}`")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The `differs` object a deviation entry would declare for these differences.
fn declaration(d: &Differences) -> String {
    serde_json::to_string(&d.ours()).unwrap_or_default()
}

/// What a verdict means for the run, given the vector's deviation entry.
enum Outcome {
    Pass,
    Deviation(String),
    Failure(String),
    ListProblem(String),
    Skip(String),
}

fn classify(name: &str, verdict: Verdict, listed: Option<&Deviation>) -> Outcome {
    match (verdict, listed) {
        (Verdict::Pass, None) => Outcome::Pass,
        (Verdict::Pass, Some(_)) => Outcome::ListProblem(format!(
            "`{name}` now matches Twisted: remove it from the deviations list"
        )),
        (Verdict::Differs(d), Some(dev)) if d.ours() == dev.differs => {
            Outcome::Deviation(dev.reason.clone())
        }
        (Verdict::Differs(d), Some(dev)) => Outcome::Failure(format!(
            "declared to differ in {}, but differs in {}: {}\n     to list it as it is: \"differs\": {}",
            render_map(&dev.differs),
            render_map(&d.ours()),
            d.render(),
            declaration(&d)
        )),
        (Verdict::Differs(d), None) => Outcome::Failure(format!(
            "{}\n     to list it as deliberate: \"differs\": {}",
            d.render(),
            declaration(&d)
        )),
        (Verdict::Fail(why), _) => Outcome::Failure(why),
        (Verdict::Skip(reason), _) => Outcome::Skip(reason),
    }
}

/// The vectors of a file, with their line numbers.
fn read_vectors(file: &Path) -> io::Result<Vec<Value>> {
    let text = fs::read_to_string(file)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
    let mut out = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: {e}", file.display(), lineno + 1),
            )
        })?);
    }
    Ok(out)
}

/// Run every vector in `files` with the deviations in `deviations`.
pub fn run(files: &[PathBuf], deviations: &Path) -> io::Result<Report> {
    let listed = read_deviations(deviations)?;
    let mut report = Report::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for file in files {
        let vectors = read_vectors(file)?;
        for v in &vectors {
            let name = vector_name(v);
            seen.insert(name.clone());
            match classify(&name, judge(v), listed.get(&name)) {
                Outcome::Pass => report.passed += 1,
                Outcome::Deviation(reason) => report.deviations.push((name, reason)),
                Outcome::Failure(why) => report.failures.push((name, why)),
                Outcome::ListProblem(p) => report.list_problems.push(p),
                Outcome::Skip(reason) => *report.skipped.entry(reason).or_default() += 1,
            }
        }
        report
            .files
            .push((file.display().to_string(), vectors.len()));
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

/// What [`self_check`] found.
#[derive(Debug, Default)]
pub struct SelfCheck {
    /// Mutations tried.
    pub tried: usize,
    /// (vector, our parameter) pairs whose change failed the suite, as it must.
    pub seen: Vec<(String, String)>,
    /// Changes that left the suite green: each is a hole in the comparison.
    pub unseen: Vec<String>,
}

/// A value different from `v` that a comparison must notice.
fn mutate(v: Option<&str>) -> String {
    match v {
        None => "1".to_owned(),
        Some(s) => match s.parse::<u64>() {
            Ok(n) => n.wrapping_add(1).to_string(),
            Err(_) => format!("{s}x"),
        },
    }
}

/// The mutation self-check: for every green build vector, change each of our values the
/// vector pins (as a changed default would), one at a time, and require the suite to fail.
/// This is what keeps a listed deviation from hiding a second difference.
pub fn self_check(files: &[PathBuf], deviations: &Path) -> io::Result<SelfCheck> {
    let listed = read_deviations(deviations)?;
    let mut out = SelfCheck::default();
    for file in files {
        for v in read_vectors(file)? {
            let side = match v["side"].as_str() {
                Some("server") => Side::Server,
                Some("client") => Side::Client,
                _ => continue,
            };
            if v.get("error").is_some() || v["expect"]["type"] == "StreamClient" {
                continue;
            }
            let name = vector_name(&v);
            let Ok(Ok(ours)) = build(&v, side) else {
                continue;
            };
            let baseline = classify(&name, compare(&v["expect"], &ours), listed.get(&name));
            if !matches!(baseline, Outcome::Pass | Outcome::Deviation(_)) {
                continue; // the run itself reports it
            }
            for (key, _) in expected_params(&v["expect"]) {
                let mut changed = ours.clone();
                let new = mutate(ours.get(&key));
                changed.set(&key, new.clone());
                out.tried += 1;
                match classify(&name, compare(&v["expect"], &changed), listed.get(&name)) {
                    Outcome::Failure(_) | Outcome::ListProblem(_) => {
                        out.seen.push((name.clone(), key.clone()));
                    }
                    _ => out.unseen.push(format!(
                        "`{name}`: changing our `{key}` from {:?} to `{new}` leaves the suite green",
                        ours.get(&key)
                    )),
                }
            }
        }
    }
    Ok(out)
}

fn read_deviations(path: &Path) -> io::Result<BTreeMap<String, Deviation>> {
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
        let differs: BTreeMap<String, String> = v["differs"]
            .as_object()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("missing \"differs\": the fields that differ, each with our value"))?
            .iter()
            .map(|(k, x)| x.as_str().map(|t| (k.clone(), t.to_owned())))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("\"differs\" values must be strings"))?;
        let entry = Deviation {
            reason: reason.to_owned(),
            differs,
        };
        if out.insert(name.to_owned(), entry).is_some() {
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
        return error_expected(err, input, parsed.map(|d| format!("parses as `{d}`")));
    }
    let d = match parsed {
        Ok(d) => d,
        Err(e) => {
            return Differences::one(
                "result",
                format!("error {}", e.kind()),
                "parses",
                e.message(),
            );
        }
    };
    let expect = &v["expect"];
    let mut diff = Differences::with_context(format!("we parse it as `{d}`"));
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
        diff.add("args", format!("{args:?}"), format!("{want_args:?}"));
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
        diff.add("kwargs", format!("{kwargs:?}"), format!("{want:?}"));
    }
    if let Some(unparse) = expect["unparse"].as_str() {
        let shown = d.to_string();
        if shown != unparse {
            diff.add("unparse", shown, unparse);
        }
    }
    diff.verdict()
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
        Differences::one("delay", got.to_string(), want.to_string(), "")
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
            return Differences::one(
                "result",
                "error",
                format!("descriptors {want_fds:?}"),
                e.to_string(),
            );
        }
    };
    let got_fds: Vec<i64> = a.descriptors().iter().map(|&f| i64::from(f)).collect();
    let got_named: BTreeMap<String, i64> = a
        .named()
        .into_iter()
        .map(|(k, f)| (k.to_owned(), i64::from(f)))
        .collect();
    let mut diff = Differences::default();
    if got_fds != want_fds {
        diff.add(
            "descriptors",
            format!("{got_fds:?}"),
            format!("{want_fds:?}"),
        );
    }
    if got_named != want_named {
        diff.add("named", format!("{got_named:?}"), format!("{want_named:?}"));
    }
    if removed != want_removed {
        diff.add(
            "removed",
            format!("{removed:?}"),
            format!("{want_removed:?}"),
        );
    }
    diff.verdict()
}

fn judge_quote(v: &Value) -> Verdict {
    let (Some(input), Some(want)) = (v["input"].as_str(), v["expect"]["quoted"].as_str()) else {
        return Verdict::Fail("malformed quote vector".into());
    };
    let got = endpoints::escape(input);
    if got == want {
        Verdict::Pass
    } else {
        Differences::one("quoted", got, want, "")
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

/// Our side of a build vector: the canonical description of what we build (placeholders
/// put back), or our error. `Err` when the vector cannot be run.
fn build(v: &Value, side: Side) -> Result<Result<Description, ParseError>, Verdict> {
    let missing = missing_transports(v);
    if !missing.is_empty() {
        return Err(Verdict::Skip(format!(
            "needs `{}:` (its transport crate is not built)",
            missing.join(":`, `")
        )));
    }
    let Some(raw) = v["input"].as_str() else {
        return Err(Verdict::Fail("input is not a string".into()));
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
            Err(e) => return Err(Verdict::Fail(format!("bad env in vector: {e}"))),
        }
    }
    let input = fixture::substitute(raw, v).map_err(Verdict::Skip)?;
    let built = Description::parse(&input).and_then(|d| match side {
        Side::Client => registry::build_client(&d).map(|e| e.to_string()),
        Side::Server => registry::build_server(&d).map(|e| e.to_string()),
    });
    match built {
        Err(e) => Ok(Err(e)),
        Ok(shown) => {
            let canonical = fixture::unsubstitute(&shown);
            match Description::parse(&canonical) {
                Ok(d) => Ok(Ok(d)),
                Err(e) => Err(Verdict::Fail(format!(
                    "our canonical form `{canonical}` does not parse: {e}"
                ))),
            }
        }
    }
}

fn judge_build(v: &Value, side: Side) -> Verdict {
    let ours = match build(v, side) {
        Ok(ours) => ours,
        Err(verdict) => return verdict,
    };
    let input = v["input"].as_str().unwrap_or("");
    if let Some(err) = v["error"].as_str() {
        return error_expected(err, input, ours.map(|d| format!("builds `{d}`")));
    }
    match ours {
        Ok(d) => compare(&v["expect"], &d),
        Err(e) => Differences::one(
            "result",
            format!("error {}", e.kind()),
            "builds",
            e.message(),
        ),
    }
}

/// The error kind we must give for a Twisted exception: (exception class, text in the
/// message, text in the vector's input, our kind). The first matching rule wins; an
/// exception no rule covers fails the vector, so a new vector cannot pass with any error.
const ERROR_KINDS: &[(&str, &str, &str, ErrorKind)] = &[
    (
        "ValueError",
        "Unknown endpoint type",
        "",
        ErrorKind::UnknownType,
    ),
    (
        "ValueError",
        "invalid literal for int()",
        "",
        ErrorKind::InvalidValue,
    ),
    (
        "ValueError",
        "doesn't contain any valid certificates",
        "",
        ErrorKind::InvalidValue,
    ),
    (
        "ValueError",
        "Specify exactly one of descriptor index or name",
        "",
        ErrorKind::InvalidValue,
    ),
    (
        "TypeError",
        "unexpected keyword argument",
        "",
        ErrorKind::UnknownParameter,
    ),
    (
        "TypeError",
        "unrecognized keyword arguments",
        "",
        ErrorKind::UnknownParameter,
    ),
    (
        "TypeError",
        "positional arguments but",
        "",
        ErrorKind::UnknownParameter,
    ),
    (
        "TypeError",
        "multiple values for argument",
        "",
        ErrorKind::Duplicate,
    ),
    ("TypeError", "missing", "", ErrorKind::MissingParameter),
    (
        "RuntimeError",
        "generator raised StopIteration",
        "",
        ErrorKind::Syntax,
    ),
    // `systemd:` index past the passed descriptors, or a name none has.
    ("IndexError", "", "systemd:", ErrorKind::InvalidValue),
    ("KeyError", "", "systemd:", ErrorKind::InvalidValue),
    // `port=80` with no type: Twisted's parser indexes an empty list of positionals.
    (
        "IndexError",
        "list index out of range",
        "",
        ErrorKind::UnknownType,
    ),
    // `systemd:domain=BOGUS`: no such address family.
    (
        "AttributeError",
        "has no attribute 'AF_",
        "",
        ErrorKind::InvalidValue,
    ),
    ("FileNotFoundError", "", "", ErrorKind::InvalidValue),
    // IDNA refusing a host name, and a trustRoots directory that cannot be listed.
    ("InvalidCodepoint", "", "", ErrorKind::InvalidValue),
    ("UnlistableError", "", "", ErrorKind::InvalidValue),
];

/// The error kind we must give where Twisted raises `twisted` for `input`.
fn expected_kind(twisted: &str, input: &str) -> Option<ErrorKind> {
    let (class, message) = twisted.split_once(':').unwrap_or((twisted, ""));
    ERROR_KINDS
        .iter()
        .find(|(c, m, i, _)| *c == class && message.contains(m) && input.contains(i))
        .map(|(_, _, _, k)| *k)
}

/// Judge an error vector: we must fail with the kind mapped to Twisted's exception.
/// `ours` is our error, or what we made of the input instead.
fn error_expected(twisted: &str, input: &str, ours: Result<String, ParseError>) -> Verdict {
    let Some(kind) = expected_kind(twisted, input) else {
        return Verdict::Fail(format!(
            "no error kind is mapped for Twisted's `{twisted}`: add a rule to ERROR_KINDS in \
             crates/endpoints-compat-tests/src/lib.rs"
        ));
    };
    let twisted_side = format!("error {kind}");
    match ours {
        Err(e) if e.kind() == kind => Verdict::Pass,
        Err(e) => Differences::one(
            "result",
            format!("error {}", e.kind()),
            twisted_side,
            format!("Twisted: {twisted}; ours: {}", e.message()),
        ),
        Ok(made) => Differences::one("result", made, twisted_side, format!("Twisted: {twisted}")),
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

/// The parameters an expectation pins, under our names (with Twisted's value as text), in
/// key order. The TCP parameters of a `tls:` (or `haproxy:`) server are its own in our
/// canonical form; each key is renamed by the type of the endpoint that holds it.
fn expected_params(expect: &Value) -> Vec<(String, Option<String>)> {
    let Some(map) = expect.as_object() else {
        return Vec::new();
    };
    let outer = expect["type"].as_str().unwrap_or("");
    let mut expected: Vec<(&str, &String, &Value)> =
        map.iter().map(|(k, v)| (outer, k, v)).collect();
    if matches!(outer, "TLSServerEndpoint" | "_WrapperServerEndpoint")
        && let Some(inner) = expect["wrapped"].as_object()
    {
        let inner_type = expect["wrapped"]["type"].as_str().unwrap_or("");
        expected.extend(
            inner
                .iter()
                .filter(|(k, _)| k.as_str() != "type")
                .map(|(k, v)| (inner_type, k, v)),
        );
    }
    expected
        .into_iter()
        .filter(|(_, k, _)| !NOT_PARAMETERS.contains(&k.as_str()))
        .filter_map(|(twisted_type, key, want)| {
            let text = match want {
                Value::Null => None,
                Value::Bool(b) => Some(if *b { "1".to_owned() } else { "0".to_owned() }),
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                Value::Array(a) => a.first().and_then(|h| h.as_str()).map(str::to_owned),
                Value::Object(_) => return None,
            };
            Some((our_key(twisted_type, key).to_owned(), text))
        })
        .collect()
}

/// Compare every pinned parameter (not only up to the first difference).
fn compare(expect: &Value, ours: &Description) -> Verdict {
    if !expect.is_object() {
        return Verdict::Fail("malformed expectation".into());
    }
    let twisted_type = expect["type"].as_str().unwrap_or("");
    if twisted_type == "StreamClient" {
        return compare_args(expect, ours);
    }
    let mut diff = Differences::with_context(format!("our canonical form: `{ours}`"));
    if let Some((_, prefix)) = TYPES.iter().find(|(n, _)| *n == twisted_type)
        && ours.prefix() != Some(*prefix)
    {
        diff.add("type", ours.prefix().unwrap_or(""), twisted_type);
        return diff.verdict();
    }
    for (key, want) in expected_params(expect) {
        let ours_value = ours.get(&key);
        if !same_value(ours_value, want.as_deref()) {
            diff.add(
                key.as_str(),
                ours_value.unwrap_or("absent"),
                want.as_deref().unwrap_or("absent"),
            );
        }
    }
    diff.verdict()
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
    let mut diff = Differences::with_context("the plugin's arguments");
    if want_args.as_deref() != Some(args.as_slice()) {
        diff.add("args", format!("{args:?}"), format!("{want_args:?}"));
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
    if want.as_ref() != Some(&kwargs) {
        diff.add("kwargs", format!("{kwargs:?}"), format!("{want:?}"));
    }
    diff.verdict()
}
