//! Tidy: the parameter tables in the README, `docs/grammar.md` and each crate's docs are
//! generated from the registry (`endpoints types --markdown`), between markers:
//!
//! ```text
//! <!-- params: PREFIX SIDE -->      one type's table (`endpoints types --markdown PREFIX SIDE`)
//! <!-- /params -->
//! <!-- types -->                    every type (`endpoints types --markdown`)
//! <!-- /types -->
//! ```
//!
//! In a `.rs` file the markers and the table are `//!` doc lines. The test fails when a table
//! differs from the registry; `TIDY_WRITE=1 cargo test -p endpoints-cli --test cli doc_tables`
//! (or `cargo xtask tidy --write`) rewrites them.

use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn generated(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(BIN)
        .args(["types", "--markdown"])
        .args(args)
        .output()
        .expect("run endpoints");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The files that may hold generated tables.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("docs/grammar.md")];
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .expect("crates")
        .filter_map(Result::ok)
        .map(|e| e.path().join("src/lib.rs"))
        .filter(|p| p.exists())
        .collect();
    crates.sort();
    files.extend(crates);
    files
}

/// `text` with every generated block brought up to date; the list of blocks that differed.
fn refresh(text: &str, doc_comment: bool) -> (String, Vec<String>) {
    let strip = |l: &str| -> String {
        if doc_comment {
            l.trim_start()
                .strip_prefix("//!")
                .map(|r| r.strip_prefix(' ').unwrap_or(r))
                .unwrap_or(l)
                .to_owned()
        } else {
            l.to_owned()
        }
    };
    let dress = |block: &str| -> String {
        block
            .lines()
            .map(|l| {
                if doc_comment {
                    format!("//! {l}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    };
    let mut out = String::new();
    let mut stale = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let marker = strip(line);
        let marker = marker.trim();
        let (args, close): (Vec<&str>, &str) = if marker == "<!-- types -->" {
            (vec![], "<!-- /types -->")
        } else if let Some(rest) = marker
            .strip_prefix("<!-- params:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            (rest.split_whitespace().collect(), "<!-- /params -->")
        } else {
            continue;
        };
        let mut current = String::new();
        let mut closed = None;
        for l in lines.by_ref() {
            if strip(l).trim() == close {
                closed = Some(l);
                break;
            }
            current.push_str(&strip(l));
            current.push('\n');
        }
        let Some(closing) = closed else {
            stale.push(format!("{marker}: no `{close}`"));
            break;
        };
        let want = match generated(&args) {
            Ok(t) => t,
            Err(e) => {
                stale.push(format!("{marker}: {e}"));
                current.clone()
            }
        };
        if current != want {
            stale.push(marker.to_owned());
        }
        out.push_str(&dress(&want));
        out.push_str(closing);
        out.push('\n');
    }
    if !text.ends_with('\n') {
        out.pop();
    }
    (out, stale)
}

#[test]
fn parameter_tables_are_generated_from_the_registry() {
    let write = std::env::var("TIDY_WRITE").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();
    let mut blocks = 0;
    for path in documents() {
        let text = std::fs::read_to_string(&path).expect("read");
        let is_rs = path.extension().is_some_and(|e| e == "rs");
        blocks += text.matches("<!-- params:").count() + text.matches("<!-- types -->").count();
        let (fresh, stale) = refresh(&text, is_rs);
        if stale.is_empty() {
            continue;
        }
        if write {
            std::fs::write(&path, fresh).expect("write");
            eprintln!("rewrote {}", path.display());
        } else {
            for s in stale {
                problems.push(format!("{}: {s}", path.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "tables differ from the registry (TIDY_WRITE=1 cargo test -p endpoints-cli --test cli \
         doc_tables rewrites them):\n{}",
        problems.join("\n")
    );
    assert!(blocks > 10, "only {blocks} generated tables found");
}

/// Every registered type has its table in `docs/grammar.md`, and the README lists them all.
#[test]
fn every_type_has_a_generated_table_in_the_grammar() {
    let grammar = std::fs::read_to_string(root().join("docs/grammar.md")).expect("grammar");
    let readme = std::fs::read_to_string(root().join("README.md")).expect("readme");
    assert!(
        readme.contains("<!-- types -->"),
        "README: no generated types table"
    );
    let json = std::process::Command::new(BIN)
        .args(["types", "--json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let mut missing = Vec::new();
    for t in v.as_array().expect("array") {
        let (prefix, side) = (
            t["prefix"].as_str().unwrap_or(""),
            t["side"].as_str().unwrap_or(""),
        );
        if !grammar.contains(&format!("<!-- params: {prefix} {side} -->")) {
            missing.push(format!("{prefix} {side}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/grammar.md has no generated table for: {}",
        missing.join(", ")
    );
}

/// The check notices a table that differs from the registry.
#[test]
fn a_changed_table_is_noticed() {
    let doc = "x\n<!-- params: tcp server -->\n| stale |\n<!-- /params -->\ny\n";
    let (fresh, stale) = refresh(doc, false);
    assert_eq!(stale, ["<!-- params: tcp server -->"]);
    assert!(
        fresh.contains("| `port` | 1 | port | required |"),
        "{fresh}"
    );
    let (again, none) = refresh(&fresh, false);
    assert!(none.is_empty());
    assert_eq!(again, fresh);
    let rs = "//! <!-- params: stdio server -->\n//! <!-- /params -->\n";
    let (fresh, stale) = refresh(rs, true);
    assert_eq!(stale.len(), 1);
    assert!(fresh.contains("//! No parameters.\n"), "{fresh}");
}
