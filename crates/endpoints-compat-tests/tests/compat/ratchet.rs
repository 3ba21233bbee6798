//! The deviations list is a ratchet: a listed vector that starts passing, or a listed name
//! that matches no vector, fails the run; extra vector files run like the built-in ones.

use std::path::PathBuf;

use endpoints_compat_tests::{Verdict, judge, run};

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("endpoints-ratchet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

const MATCHING: &str = r#"{"side": "parse", "input": "tcp:80:backlog=6", "expect": {"args": ["tcp", "80"], "kwargs": {"backlog": "6"}}}"#;
const DIFFERING: &str = r#"{"side": "server", "input": "tcp:70000", "expect": {"type": "TCP4ServerEndpoint", "port": 70000, "backlog": 50, "interface": ""}}"#;

#[test]
fn unlisted_difference_fails_and_listed_one_is_a_deviation() {
    let vectors = temp("a.jsonl", &format!("{MATCHING}\n{DIFFERING}\n"));
    let empty = temp("none.jsonl", "");
    let report = run(std::slice::from_ref(&vectors), &empty).expect("runs");
    assert_eq!((report.passed, report.failures.len()), (1, 1));
    assert!(!report.ok());
    assert!(
        report.render().ends_with("1 passed, 1 failed, 0 skipped\n"),
        "{}",
        report.render()
    );

    let listed = temp(
        "dev.jsonl",
        r#"{"vector": "server tcp:70000", "differs": {"result": "error invalid-value"}, "reason": "ports are range-checked"}"#,
    );
    let report = run(&[vectors], &listed).expect("runs");
    assert!(report.ok(), "{}", report.render());
    assert_eq!(report.deviations.len(), 1);
}

#[test]
fn listed_vector_that_passes_fails_the_run() {
    let vectors = temp("b.jsonl", MATCHING);
    let listed = temp(
        "dev2.jsonl",
        r#"{"vector": "parse tcp:80:backlog=6", "differs": {"args": "x"}, "reason": "stale"}"#,
    );
    let report = run(&[vectors], &listed).expect("runs");
    assert!(!report.ok());
    assert!(
        report.list_problems[0].contains("now matches Twisted"),
        "{:?}",
        report.list_problems
    );
}

#[test]
fn listed_name_without_a_vector_fails_the_run() {
    let vectors = temp("c.jsonl", MATCHING);
    let listed = temp(
        "dev3.jsonl",
        r#"{"vector": "server gone:1", "differs": {"result": "x"}, "reason": "old"}"#,
    );
    let report = run(&[vectors], &listed).expect("runs");
    assert!(!report.ok());
    assert!(
        report.list_problems[0].contains("no vector has that name"),
        "{:?}",
        report.list_problems
    );
}

#[test]
fn a_deviation_needs_a_reason() {
    let vectors = temp("d.jsonl", MATCHING);
    let listed = temp(
        "dev4.jsonl",
        r#"{"vector": "server tcp:70000", "differs": {"result": "error invalid-value"}, "reason": " "}"#,
    );
    assert!(run(&[vectors], &listed).is_err());
}

#[test]
fn error_vectors_check_the_error_kind() {
    let v = serde_json::json!({"side": "server", "input": "tcp:80:port=81",
        "error": "TypeError: _parseTCP() got multiple values for argument 'port'"});
    assert_eq!(judge(&v), Verdict::Pass);
    let v = serde_json::json!({"side": "server", "input": "tcp:80:bogus=1",
        "error": "TypeError: _parseTCP() got multiple values for argument 'port'"});
    assert!(
        matches!(judge(&v), Verdict::Differs(_)),
        "an unknown-parameter error is not a duplicate"
    );
}

/// The vector of `vectors/twisted-vectors.jsonl` with this input and side, as JSON.
fn real_vector(side: &str, input: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(&endpoints_compat_tests::default_vector_files()[0])
        .expect("vectors");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["side"] == side && v["input"] == input)
        .unwrap_or_else(|| panic!("no vector `{side} {input}`"))
}

/// Run one vector (as a file of its own) against the real deviations list; its failures.
/// (The other listed names have no vector in that file: those list problems are ignored.)
fn run_with_real_list(name: &str, v: &serde_json::Value) -> String {
    let file = temp(name, &v.to_string());
    let report = run(&[file], &endpoints_compat_tests::default_deviations_file()).expect("runs");
    assert_eq!(
        report.passed + report.deviations.len() + report.failures.len(),
        1
    );
    report
        .failures
        .iter()
        .map(|(n, why)| format!("{n}: {why}\n"))
        .collect()
}

#[test]
fn a_deviation_declares_exactly_what_differs() {
    let vectors = temp("e.jsonl", DIFFERING);
    // `tcp:70000` fails to build here: the declared difference is the result.
    let exact = temp(
        "dev5.jsonl",
        r#"{"vector": "server tcp:70000", "differs": {"result": "error invalid-value"}, "reason": "range"}"#,
    );
    let report = run(std::slice::from_ref(&vectors), &exact).expect("runs");
    assert!(report.ok(), "{}", report.render());
    for wrong in [
        r#"{"vector": "server tcp:70000", "differs": {"result": "error unknown-parameter"}, "reason": "range"}"#,
        r#"{"vector": "server tcp:70000", "differs": {"result": "error invalid-value", "backlog": "1024"}, "reason": "range"}"#,
    ] {
        let listed = temp("dev6.jsonl", wrong);
        let report = run(std::slice::from_ref(&vectors), &listed).expect("runs");
        assert!(!report.ok(), "{wrong} must not match:\n{}", report.render());
        assert!(report.render().contains("declared"), "{}", report.render());
    }
    let undeclared = temp(
        "dev7.jsonl",
        r#"{"vector": "server tcp:70000", "reason": "range"}"#,
    );
    assert!(
        run(&[vectors], &undeclared).is_err(),
        "an entry without `differs` is refused"
    );
}

/// Every key is compared: a listed backlog difference does not hide another key.
#[test]
fn a_changed_unix_lockfile_default_fails_the_suite() {
    let mut v = real_vector("server", "unix:/p:lockfile=2");
    assert_eq!(
        run_with_real_list("u0.jsonl", &v),
        "",
        "the real vector is green"
    );
    // As if our default had changed: Twisted's value is now not ours.
    v["expect"]["wantPID"] = serde_json::Value::Bool(false);
    let failures = run_with_real_list("u1.jsonl", &v);
    assert!(failures.contains("lockfile"), "{failures:?}");
}

#[test]
fn a_changed_tls_server_default_port_fails_the_suite() {
    let mut v = real_vector("server", "tls:{CERTDIR}");
    assert_eq!(
        run_with_real_list("t0.jsonl", &v),
        "",
        "the real vector is green"
    );
    v["expect"]["wrapped"]["port"] = serde_json::json!(8443);
    let failures = run_with_real_list("t1.jsonl", &v);
    assert!(failures.contains("`port`"), "{failures:?}");
}

/// The self-check changes each of our values the vectors pin, one at a time, and every
/// change must fail the suite (it also runs in `cargo xtask conformance`).
#[test]
fn every_pinned_value_is_guarded_by_the_suite() {
    let check = endpoints_compat_tests::self_check(
        &endpoints_compat_tests::default_vector_files(),
        &endpoints_compat_tests::default_deviations_file(),
    )
    .expect("runs");
    assert!(check.unseen.is_empty(), "{:#?}", check.unseen);
    assert!(check.tried > 100, "only {} mutations tried", check.tried);
    for (vector, key) in [
        ("server unix:/p:lockfile=2", "lockfile"),
        ("server tls:{CERTDIR}", "port"),
        ("server tcp:80", "backlog"),
    ] {
        assert!(
            check.seen.iter().any(|(n, k)| n == vector && k == key),
            "`{key}` of `{vector}` was not mutated"
        );
    }
}

#[test]
fn an_unmapped_twisted_exception_fails() {
    let v = serde_json::json!({"side": "server", "input": "tcp:80:bogus=1",
        "error": "ZeroDivisionError: division by zero"});
    assert!(
        matches!(judge(&v), Verdict::Fail(ref why) if why.contains("ZeroDivisionError")),
        "{:?}",
        judge(&v)
    );
}

#[test]
fn a_complete_proxy_header_does_not_pass_as_needing_more_bytes() {
    // A whole v2 header (parse() is given whole headers) whose length promises 12 more bytes:
    // Twisted refuses it; waiting for more bytes is a difference, not a pass.
    let v = serde_json::json!({"mode": "parse", "version": 2,
        "input": {"hex": "0d0a0d0a000d0a515549540a2111000c"}, "error": "InvalidProxyHeader"});
    assert_ne!(judge(&v), Verdict::Pass);
}

#[test]
fn a_skipped_vector_fails_the_run() {
    let vectors = temp(
        "f.jsonl",
        r#"{"side": "server", "input": "ssl:1:privateKey={NOPE}", "expect": {"type": "SSL4ServerEndpoint"}}"#,
    );
    let empty = temp("none2.jsonl", "");
    let report = run(&[vectors], &empty).expect("runs");
    assert_eq!(report.skipped_count(), 1, "{}", report.render());
    assert!(!report.ok(), "{}", report.render());
}
