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
        r#"{"vector": "server tcp:70000", "reason": "ports are range-checked"}"#,
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
        r#"{"vector": "parse tcp:80:backlog=6", "reason": "stale"}"#,
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
        r#"{"vector": "server gone:1", "reason": "old"}"#,
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
        r#"{"vector": "server tcp:70000", "reason": " "}"#,
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
        matches!(judge(&v), Verdict::Fail(_)),
        "an unknown-parameter error is not a duplicate"
    );
}
