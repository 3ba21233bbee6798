//! Tidy checks, run as this crate's tests (so `cargo test --workspace` runs them) and by
//! `cargo xtask tidy [--write]`, as rust-analyzer does: rules the compiler cannot see.
//!
//! * The dependency rules of `docs/architecture.md`, from `cargo metadata`: core depends on
//!   no `endpoints-*` crate; no transport depends on the umbrella; every published crate
//!   depends on core; and the edge list in the architecture doc (between markers) is the
//!   real one.
//! * `endpoints-core` is the plugin contract only: its external dependencies are
//!   [`CORE_ALLOWED_DEPS`] (tokio with its I/O traits only), so nothing in it sleeps, spawns or
//!   logs; `endpoints-stdio` (the third-party plugin example) and `endpoints-util` depend on
//!   core alone among the workspace crates.
//! * The minimum Rust version stated in the docs is `Cargo.toml`'s.
//! * The parameter tables between `<!-- params: ... -->` markers (README, `docs/grammar.md`,
//!   crate docs) are the registry's (`crates/endpoints-cli/tests/cli/doc_tables.rs`).
//! * The README's crate table (under `## Layout`) names every workspace crate, and only those;
//!   its peer table (under `## Running the tests`) names every program `.ci/run` installs.
//! * Every `unsafe` has a `SAFETY:` note (on its line or in the comment just above), or, for
//!   an `unsafe fn`, a `# Safety` section in its docs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Start and end markers of a generated block in a document.
pub(crate) const DEPS_START: &str = "<!-- tidy:dependencies:start (cargo xtask tidy --write) -->";
pub(crate) const DEPS_END: &str = "<!-- tidy:dependencies:end -->";

/// Crates that are not published: they may depend on the umbrella.
const UNPUBLISHED_OK_ON_UMBRELLA: &[&str] = &[
    "endpoints-cli",
    "endpoints-bench",
    "endpoints-compat-tests",
    "xtask",
];

/// The only external crates `endpoints-core` may depend on (normal dependencies), with the
/// tokio features it may enable: the contract needs the I/O traits, `#[async_trait]` and the
/// registration backend; timers, tasks and logs belong in `endpoints-util`.
pub(crate) const CORE_ALLOWED_DEPS: &[&str] = &["async-trait", "inventory", "tokio"];
/// The tokio features core may enable.
pub(crate) const CORE_ALLOWED_TOKIO_FEATURES: &[&str] = &["io-util"];

/// Workspace crates that depend on no workspace crate but core.
const CORE_ONLY: &[&str] = &["endpoints-stdio", "endpoints-util"];

/// `cargo metadata --no-deps` as JSON.
fn metadata(root: &Path) -> Result<serde_json::Value, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

/// `endpoints-core`'s normal dependencies, each with the features it enables.
pub(crate) fn core_dependencies(root: &Path) -> Result<Vec<(String, Vec<String>)>, String> {
    let v = metadata(root)?;
    let core = v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "endpoints-core")
        .ok_or("cargo metadata: no endpoints-core")?;
    let mut deps: Vec<(String, Vec<String>)> = core["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["kind"].is_null())
        .map(|d| {
            let name = d["name"].as_str().unwrap_or_default().to_owned();
            let features = d["features"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect();
            (name, features)
        })
        .collect();
    deps.sort();
    Ok(deps)
}

/// Violations of core's dependency rule (see [`CORE_ALLOWED_DEPS`]).
pub(crate) fn core_dependency_rules(deps: &[(String, Vec<String>)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, features) in deps {
        if !CORE_ALLOWED_DEPS.contains(&name.as_str()) {
            bad.push(format!(
                "endpoints-core depends on `{name}`: core may depend on {} only; runtime \
                 machinery belongs in endpoints-util",
                CORE_ALLOWED_DEPS.join(", ")
            ));
        }
        if name == "tokio" {
            for f in features {
                if !CORE_ALLOWED_TOKIO_FEATURES.contains(&f.as_str()) {
                    bad.push(format!(
                        "endpoints-core enables tokio's `{f}`: core uses tokio's I/O traits \
                         only (nothing in it sleeps, spawns or logs)"
                    ));
                }
            }
        }
    }
    bad
}

/// Each workspace crate's normal (non-dev, non-build) dependencies on other workspace crates,
/// and whether it is published.
pub(crate) fn workspace_graph(root: &Path) -> Result<BTreeMap<String, Crate>, String> {
    let v = metadata(root)?;
    let packages = v["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let names: Vec<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut graph = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let mut deps: Vec<String> = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.iter().any(|n| n == d))
            .map(str::to_owned)
            .collect();
        deps.sort();
        deps.dedup();
        // `publish = false` appears as an empty list.
        let published = !p["publish"].as_array().is_some_and(|a| a.is_empty());
        graph.insert(name, Crate { deps, published });
    }
    Ok(graph)
}

/// One workspace crate in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Crate {
    pub(crate) deps: Vec<String>,
    pub(crate) published: bool,
}

/// Violations of the dependency rules.
pub(crate) fn dependency_rules(graph: &BTreeMap<String, Crate>) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, c) in graph {
        if name == "endpoints-core" {
            for d in &c.deps {
                bad.push(format!(
                    "endpoints-core depends on {d}: core depends on no workspace crate"
                ));
            }
            continue;
        }
        if CORE_ONLY.contains(&name.as_str()) {
            for d in c.deps.iter().filter(|d| *d != "endpoints-core") {
                bad.push(format!(
                    "{name} depends on {d}: it may depend on endpoints-core only"
                ));
            }
        }
        if c.deps.iter().any(|d| d == "endpoints")
            && !UNPUBLISHED_OK_ON_UMBRELLA.contains(&name.as_str())
        {
            bad.push(format!(
                "{name} depends on the umbrella `endpoints`: only the command, the bench, the \
                 compat tests and xtask may"
            ));
        }
        let reaches_core = c
            .deps
            .iter()
            .any(|d| d == "endpoints-core" || d == "endpoints");
        if c.published && name != "endpoints-core" && !reaches_core {
            bad.push(format!(
                "{name} is published but does not depend on endpoints-core"
            ));
        }
    }
    bad
}

/// The generated edge list for the architecture doc.
pub(crate) fn dependency_block(graph: &BTreeMap<String, Crate>) -> String {
    let mut s = String::from("```text\n");
    for (name, c) in graph {
        if name == "xtask" {
            continue;
        }
        let deps = if c.deps.is_empty() {
            "(none)".to_owned()
        } else {
            c.deps.join(", ")
        };
        let tag = if c.published { "" } else { " [not published]" };
        s.push_str(&format!("{name}{tag} -> {deps}\n"));
    }
    s.push_str("```\n");
    s
}

/// The text between `start` and `end` in `doc` (without the markers' lines).
pub(crate) fn between<'a>(doc: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let a = doc.find(start)? + start.len();
    let b = doc[a..].find(end)? + a;
    Some(doc[a..b].trim_start_matches('\n'))
}

/// `doc` with the text between the markers replaced by `block`.
pub(crate) fn replace_between(doc: &str, start: &str, end: &str, block: &str) -> Option<String> {
    let a = doc.find(start)? + start.len();
    let b = doc[a..].find(end)? + a;
    Some(format!("{}\n{}{}", &doc[..a], block, &doc[b..]))
}

/// Every `.rs` file under `dir`, in order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Whether `line` (code, not a comment) uses `unsafe` as a keyword: a block, fn, impl or
/// extern. Lint names (`unsafe_code`) and text in strings are not.
fn uses_unsafe(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    let mut rest = code;
    while let Some(i) = rest.find("unsafe") {
        let before = rest[..i].chars().next_back();
        let after = rest[i + "unsafe".len()..].chars().next();
        let word = !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let quotes = quotes_in(&code[..code.len() - rest.len() + i]);
        if word && quotes.is_multiple_of(2) {
            return true;
        }
        rest = &rest[i + "unsafe".len()..];
    }
    false
}

/// How many unescaped `"` are in `s` (odd: the end of `s` is inside a string literal).
fn quotes_in(s: &str) -> usize {
    let mut n = 0;
    let mut prev = ' ';
    for c in s.chars() {
        if c == '"' && prev != '\\' {
            n += 1;
        }
        prev = c;
    }
    n
}

/// `unsafe` uses without a `SAFETY:` note, as `path:line`.
pub(crate) fn unsafe_without_safety_note(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("xtask"), &mut files);
    let mut bad = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") || !uses_unsafe(line) {
                continue;
            }
            if line.contains("SAFETY:") {
                continue;
            }
            // The comment (or attribute) lines just above, up to the previous code line; for
            // an `unsafe fn` or an `unsafe` expression spread over lines, the statement's
            // opening lines too (at most eight lines up).
            let mut noted = false;
            for above in lines[..i].iter().rev().take(8) {
                let a = above.trim_start();
                if a.contains("SAFETY:") || a.contains("# Safety") {
                    noted = true;
                    break;
                }
                let comment_or_attr = a.starts_with("//") || a.starts_with("#[") || a.is_empty();
                let continues = !a.ends_with(';') && !a.ends_with('}');
                if !comment_or_attr && !continues {
                    break;
                }
            }
            if !noted {
                let shown = f.strip_prefix(root).unwrap_or(&f);
                bad.push(format!("{}:{}: {}", shown.display(), i + 1, line.trim()));
            }
        }
    }
    bad
}

/// The workspace's `rust-version`, from the root `Cargo.toml`.
pub(crate) fn workspace_msrv(root: &Path) -> Option<String> {
    let toml = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    toml.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("rust-version"))
        .and_then(|rest| rest.split('"').nth(1))
        .map(str::to_owned)
}

/// Places in the docs that state the minimum Rust version (``rust-version` (X.Y)``) with
/// another version than `Cargo.toml`'s.
pub(crate) fn stale_msrv_mentions(root: &Path) -> Vec<String> {
    let Some(msrv) = workspace_msrv(root) else {
        return vec!["Cargo.toml: no rust-version".to_owned()];
    };
    let mut files = vec![root.join("README.md")];
    if let Ok(docs) = std::fs::read_dir(root.join("docs")) {
        files.extend(docs.filter_map(Result::ok).map(|e| e.path()));
    }
    rust_files(&root.join("crates"), &mut files);
    let needle = "rust-version` (";
    let mut bad = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find(needle) {
                let after = &rest[at + needle.len()..];
                let stated = after.split(')').next().unwrap_or("");
                if stated != msrv {
                    let shown = f.strip_prefix(root).unwrap_or(&f);
                    bad.push(format!(
                        "{}:{}: says {stated}, Cargo.toml says {msrv}",
                        shown.display(),
                        i + 1
                    ));
                }
                rest = after;
            }
        }
    }
    bad
}

/// The crates named (in backquotes) in the first column of the README's table under
/// `## Layout`.
pub(crate) fn readme_crate_table(readme: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_layout = false;
    for line in readme.lines() {
        if line.starts_with("## ") {
            in_layout = line.trim() == "## Layout";
            continue;
        }
        let Some(row) = line.strip_prefix('|').filter(|_| in_layout) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or_default();
        names.extend(
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        );
    }
    names
}

/// Workspace crates missing from the README's crate table, and names in it that are not
/// workspace crates.
pub(crate) fn readme_crate_table_gaps(
    graph: &BTreeMap<String, Crate>,
    readme: &str,
) -> Vec<String> {
    let listed = readme_crate_table(readme);
    let mut bad: Vec<String> = graph
        .keys()
        .filter(|c| !listed.contains(c))
        .map(|c| {
            format!("README.md: the crate table under `## Layout` does not list `{c}`; add a row")
        })
        .collect();
    bad.extend(listed.iter().filter(|n| !graph.contains_key(*n)).map(|n| {
        format!("README.md: the crate table lists `{n}`, which is not a workspace crate")
    }));
    bad
}

/// The programs `.ci/run` checks for (`command -v NAME`) that the README's section
/// `## Running the tests` does not name (in backquotes).
pub(crate) fn readme_missing_peers(ci_run: &str, readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Running the tests"))
        .unwrap_or_default();
    ci_run
        .split("command -v ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|program| !section.contains(&format!("`{program}`")))
        .map(|program| {
            format!(
                "README.md: `.ci/run` installs `{program}`, which the table under `## Running \
                 the tests` does not name; add a row"
            )
        })
        .collect()
}

/// `cargo xtask tidy [--write]`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let write = args.iter().any(|a| a == "--write");
    let graph = workspace_graph(root)?;
    let mut failures = dependency_rules(&graph);
    failures.extend(core_dependency_rules(&core_dependencies(root)?));
    let readme =
        std::fs::read_to_string(root.join("README.md")).map_err(|e| format!("README.md: {e}"))?;
    failures.extend(readme_crate_table_gaps(&graph, &readme));
    let ci_run =
        std::fs::read_to_string(root.join(".ci/run")).map_err(|e| format!(".ci/run: {e}"))?;
    failures.extend(readme_missing_peers(&ci_run, &readme));
    let doc_path = root.join("docs/architecture.md");
    let doc = std::fs::read_to_string(&doc_path).map_err(|e| format!("{e}"))?;
    let block = dependency_block(&graph);
    match between(&doc, DEPS_START, DEPS_END) {
        Some(current) if current == block => {}
        Some(_) if write => {
            let new = replace_between(&doc, DEPS_START, DEPS_END, &block)
                .ok_or("architecture.md: markers vanished")?;
            std::fs::write(&doc_path, new).map_err(|e| format!("{e}"))?;
            println!("tidy: docs/architecture.md dependency list rewritten");
        }
        Some(_) => failures.push(format!(
            "docs/architecture.md: the dependency list differs from cargo metadata; run \
             `cargo xtask tidy --write`. It should read:\n{block}"
        )),
        None => failures.push(format!(
            "docs/architecture.md: no `{DEPS_START}` ... `{DEPS_END}` block"
        )),
    }
    failures.extend(
        stale_msrv_mentions(root)
            .into_iter()
            .map(|l| format!("minimum Rust version: {l}")),
    );
    failures.extend(
        unsafe_without_safety_note(root)
            .into_iter()
            .map(|l| format!("`unsafe` without a `SAFETY:` note: {l}")),
    );
    // The parameter tables generated from the registry: checked (or rewritten) by the
    // command's test, which has the registry linked.
    let mut tables = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    tables.current_dir(root).args([
        "test",
        "-q",
        "-p",
        "endpoints-cli",
        "--test",
        "cli",
        "--",
        "doc_tables::",
    ]);
    if write {
        tables.env("TIDY_WRITE", "1");
    }
    match tables.status() {
        Ok(s) if s.success() => {}
        _ => failures.push(
            "the parameter tables differ from the registry (cargo xtask tidy --write)".into(),
        ),
    }
    // The transfer matrix's doc (docs/matrix.md) and its registry check: the matrix's own
    // tidy tests, which have the table and the registry linked.
    let mut matrix = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    matrix.current_dir(root).args([
        "test",
        "-q",
        "-p",
        "endpoints-cli",
        "--test",
        "matrix",
        "--",
        "tidy::",
    ]);
    if write {
        matrix.env("TIDY_WRITE", "1");
    }
    match matrix.status() {
        Ok(s) if s.success() => {}
        _ => failures.push(
            "the transfer matrix: docs/matrix.md differs from its table, or a registered type \
             has no row (cargo xtask tidy --write; crates/endpoints-cli/tests/matrix/table.rs)"
                .into(),
        ),
    }
    if failures.is_empty() {
        println!("tidy: ok");
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        crate::workspace_root()
    }

    #[test]
    fn the_dependency_rules_of_the_architecture_doc_hold() {
        let graph = workspace_graph(&root()).expect("metadata");
        assert!(graph.contains_key("endpoints-core"));
        let bad = dependency_rules(&graph);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn core_depends_on_the_allowed_crates_only() {
        let deps = core_dependencies(&root()).expect("metadata");
        assert!(deps.iter().any(|(n, _)| n == "inventory"), "{deps:?}");
        let bad = core_dependency_rules(&deps);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
        let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("doc");
        for allowed in CORE_ALLOWED_DEPS {
            assert!(
                doc.contains(&format!("`{allowed}`")),
                "docs/architecture.md should name core's allowed dependency `{allowed}`"
            );
        }
    }

    #[test]
    fn the_core_rule_catches_runtime_dependencies() {
        let deps = vec![
            (
                "tokio".to_owned(),
                vec!["io-util".to_owned(), "time".to_owned()],
            ),
            ("tracing".to_owned(), vec![]),
            ("inventory".to_owned(), vec![]),
        ];
        let bad = core_dependency_rules(&deps);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("tokio's `time`"), "{bad:?}");
        assert!(bad[1].contains("`tracing`"), "{bad:?}");
    }

    #[test]
    fn the_architecture_doc_lists_the_real_dependencies() {
        let graph = workspace_graph(&root()).expect("metadata");
        let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("doc");
        let block = dependency_block(&graph);
        assert_eq!(
            between(&doc, DEPS_START, DEPS_END),
            Some(block.as_str()),
            "run `cargo xtask tidy --write`"
        );
    }

    /// Issue 31 item 6: the README's table lacked `endpoints-ws` and `endpoints-exec`.
    #[test]
    fn the_readme_crate_table_lists_every_workspace_crate() {
        let graph = workspace_graph(&root()).expect("metadata");
        assert!(graph.contains_key("xtask"), "{graph:?}");
        let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
        let bad = readme_crate_table_gaps(&graph, &readme);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    /// Issue 31 item 6: the peers `cargo xtask ci` needs were listed in `.ci/run` only.
    #[test]
    fn the_readme_names_every_peer_that_ci_installs() {
        let ci_run = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
        let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
        assert!(
            ci_run.contains("command -v haproxy"),
            "the format this rule reads"
        );
        let bad = readme_missing_peers(&ci_run, &readme);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
        let without = readme.replace("`tinyproxy`", "tinyproxy");
        assert_eq!(readme_missing_peers(&ci_run, &without).len(), 1);
    }

    #[test]
    fn the_crate_table_rule_catches_a_missing_and_a_stray_crate() {
        let mut graph = BTreeMap::new();
        for name in ["endpoints-core", "endpoints-tcp", "endpoints-ws"] {
            graph.insert(
                name.to_owned(),
                Crate {
                    deps: vec![],
                    published: true,
                },
            );
        }
        let readme = "## Layout\n\n| crate | what |\n|---|---|\n| `endpoints-core` | the \
                      contract; not `endpoints-ws` |\n| `endpoints-tcp`, `endpoints-gone` | one \
                      each |\n\n## Documentation\n\n| `endpoints-ws` | elsewhere |\n";
        assert_eq!(
            readme_crate_table(readme),
            ["endpoints-core", "endpoints-tcp", "endpoints-gone"]
        );
        let bad = readme_crate_table_gaps(&graph, readme);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("does not list `endpoints-ws`"), "{bad:?}");
        assert!(bad[1].contains("`endpoints-gone`, which is not"), "{bad:?}");
    }

    #[test]
    fn the_docs_state_the_real_minimum_rust_version() {
        assert!(workspace_msrv(&root()).is_some());
        let bad = stale_msrv_mentions(&root());
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn every_unsafe_has_a_safety_note() {
        let bad = unsafe_without_safety_note(&root());
        assert!(
            bad.is_empty(),
            "`unsafe` without `SAFETY:`:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn the_rules_catch_what_they_are_for() {
        let mut graph = BTreeMap::new();
        graph.insert(
            "endpoints-core".to_owned(),
            Crate {
                deps: vec!["endpoints-tcp".into()],
                published: true,
            },
        );
        graph.insert(
            "endpoints-tcp".to_owned(),
            Crate {
                deps: vec!["endpoints".into()],
                published: true,
            },
        );
        graph.insert(
            "endpoints-stdio".to_owned(),
            Crate {
                deps: vec!["endpoints-core".into(), "endpoints-util".into()],
                published: true,
            },
        );
        graph.insert(
            "endpoints-lonely".to_owned(),
            Crate {
                deps: vec![],
                published: true,
            },
        );
        let bad = dependency_rules(&graph);
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].starts_with("endpoints-core depends on endpoints-tcp"));
        assert!(bad[1].starts_with("endpoints-lonely is published but"));
        assert!(bad[2].starts_with("endpoints-stdio depends on endpoints-util"));
        assert!(bad[3].starts_with("endpoints-tcp depends on the umbrella"));
        assert!(uses_unsafe("    let x = unsafe { f() };"));
        assert!(uses_unsafe("pub unsafe fn g() {}"));
        assert!(!uses_unsafe("#![allow(unsafe_code)]"));
        assert!(!uses_unsafe("    // unsafe { f() }"));
        assert!(!uses_unsafe("    let s = \"an unsafe word\";"));
    }
}
