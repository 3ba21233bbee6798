//! docs/writing-a-plugin.md quotes this crate: every block after an
//! `<!-- include: PATH#NAME -->` line must equal the text between `ANCHOR: NAME` and
//! `ANCHOR_END: NAME` in PATH, and every anchor must be quoted. The guide cannot rot: a
//! change here that the guide does not follow fails this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The lines between the anchor markers (`// ANCHOR: name` or `# ANCHOR: name`).
fn anchor(source: &str, name: &str) -> Option<String> {
    let mut out: Option<Vec<&str>> = None;
    for line in source.lines() {
        let marker = line
            .trim_start()
            .trim_start_matches("//")
            .trim_start_matches('#');
        let marker = marker.trim();
        if marker == format!("ANCHOR: {name}") {
            out = Some(Vec::new());
        } else if marker == format!("ANCHOR_END: {name}") {
            return out.map(|l| l.join("\n"));
        } else if let Some(lines) = out.as_mut() {
            lines.push(line);
        }
    }
    None
}

fn anchors_in(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|l| {
            let m = l
                .trim_start()
                .trim_start_matches("//")
                .trim_start_matches('#');
            m.trim().strip_prefix("ANCHOR: ").map(str::to_owned)
        })
        .collect()
}

const SOURCES: &[&str] = &[
    "crates/endpoints-example-plugin/Cargo.toml",
    "crates/endpoints-example-plugin/src/lib.rs",
    "crates/endpoints-example-plugin/tests/plugin/conformance.rs",
];

#[test]
fn the_guide_quotes_the_example_crate_exactly() {
    let guide_path = root().join("docs/writing-a-plugin.md");
    let guide = std::fs::read_to_string(&guide_path).expect("read the guide");
    let lines: Vec<&str> = guide.lines().collect();
    let mut quoted = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(spec) = line
            .trim()
            .strip_prefix("<!-- include: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let (path, name) = spec.split_once('#').expect("PATH#NAME");
        let source = std::fs::read_to_string(root().join(path))
            .unwrap_or_else(|e| panic!("guide line {}: cannot read {path}: {e}", i + 1));
        let want = anchor(&source, name)
            .unwrap_or_else(|| panic!("guide line {}: no anchor `{name}` in {path}", i + 1));
        assert!(
            lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
            "guide line {}: a fenced block must follow the include line",
            i + 2
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        assert_eq!(
            body.join("\n"),
            want,
            "guide line {}: the block differs from `{name}` in {path}; copy it again",
            i + 3
        );
        quoted.insert(format!("{path}#{name}"));
    }
    for path in SOURCES {
        let source = std::fs::read_to_string(root().join(path)).expect("read source");
        for name in anchors_in(&source) {
            assert!(
                quoted.contains(&format!("{path}#{name}")),
                "the guide does not quote `{name}` of {path}"
            );
        }
    }
    assert!(quoted.len() >= 7, "quoted: {quoted:?}");
}
