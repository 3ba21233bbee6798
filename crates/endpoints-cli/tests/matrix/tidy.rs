//! Tidy: every registered type has a row (or a reason in `NOT_IN_MATRIX`), and
//! `docs/matrix.md` shows the table as it is (between the `matrix` markers). The doc is
//! rewritten with `TIDY_WRITE=1 cargo test -p endpoints-cli --test matrix tidy` (or
//! `cargo xtask tidy --write`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use endpoints::registry::{self, Side};

use crate::table::{MODES, MarkKind, NOT_IN_MATRIX, ROWS, SCENARIOS, Server};

const START: &str = "<!-- matrix:start (cargo xtask tidy --write) -->";
const END: &str = "<!-- matrix:end -->";

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/matrix.md")
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Client => "client",
        Side::Server => "server",
    }
}

/// The generated part of docs/matrix.md.
pub(crate) fn generated() -> String {
    let mut out = String::new();
    out.push_str(
        "### Rows\n\n| row | types | server (far end) | client | needs |\n|---|---|---|---|---|\n",
    );
    for r in ROWS {
        let types: Vec<String> = r
            .covers
            .iter()
            .map(|(p, s)| format!("`{p}` {}", side(*s)))
            .collect();
        let needs: Vec<&str> = r.needs.iter().map(|n| n.doc()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | `{}` | {} |",
            r.name,
            types.join(", "),
            r.server_doc.replace('|', r"\|"),
            r.client_doc.replace('|', r"\|"),
            if needs.is_empty() {
                "-".into()
            } else {
                needs.join(", ")
            }
        );
    }
    // Notes: each distinct reason once, numbered in order of appearance.
    let mut notes: Vec<String> = Vec::new();
    let mut note = |text: String| -> usize {
        match notes.iter().position(|n| *n == text) {
            Some(i) => i + 1,
            None => {
                notes.push(text);
                notes.len()
            }
        }
    };
    for &mode in MODES {
        let _ = write!(out, "\n### {}\n\n| row |", capitalised(mode.name()));
        for s in SCENARIOS {
            let _ = write!(out, " {} |", s.short());
        }
        out.push_str("\n|---|");
        for _ in SCENARIOS {
            out.push_str("---|");
        }
        out.push('\n');
        for r in ROWS {
            let _ = write!(out, "| {} |", r.name);
            for &s in SCENARIOS {
                let cell = match r.mark(mode, s) {
                    None => "runs".to_owned(),
                    Some(MarkKind::Excluded(why)) => {
                        format!("no ({})", note(format!("not run: {why}")))
                    }
                    Some(MarkKind::KnownFailing(item, what)) => format!(
                        "known-failing ({})",
                        note(format!("known-failing: {item}: {what}"))
                    ),
                    Some(MarkKind::KnownFailingAtTimes(item, what)) => format!(
                        "fails at times ({})",
                        note(format!("known-failing: {item}: {what}"))
                    ),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
    }
    out.push_str("\n### Notes\n\n");
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(out, "{}. {n}", i + 1);
    }
    out.push_str("\n### Registered types without a row\n\n");
    for (p, s, why) in NOT_IN_MATRIX {
        let _ = writeln!(out, "- `{p}` {}: {why}", side(*s));
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[test]
fn every_registered_type_has_a_row() {
    let mut covered: BTreeSet<(String, &str)> = BTreeSet::new();
    for r in ROWS {
        for (p, s) in r.covers {
            covered.insert((p.to_string(), side(*s)));
        }
    }
    for (p, s, _) in NOT_IN_MATRIX {
        covered.insert((p.to_string(), side(*s)));
    }
    let registered: BTreeSet<(String, &str)> = registry::plugins()
        .map(|p| (p.prefix().to_ascii_lowercase(), side(p.side())))
        .collect();
    let missing: Vec<String> = registered
        .difference(&covered)
        .map(|(p, s)| format!("`{p}` {s}"))
        .collect();
    assert!(
        missing.is_empty(),
        "registered types with no row in the transfer matrix: {}. Add a row to \
         crates/endpoints-cli/tests/matrix/table.rs (how to make a server and a client that \
         meet on loopback), or say in NOT_IN_MATRIX why it cannot have one; then run \
         `cargo xtask tidy --write`",
        missing.join(", ")
    );
    let stale: Vec<String> = covered
        .difference(&registered)
        .map(|(p, s)| format!("`{p}` {s}"))
        .collect();
    assert!(
        stale.is_empty(),
        "the matrix names types that are not registered: {}",
        stale.join(", ")
    );
}

#[test]
fn every_row_runs_somewhere_and_every_mark_has_a_reason() {
    for r in ROWS {
        let runs = MODES.iter().any(|&m| {
            SCENARIOS
                .iter()
                .any(|&s| !matches!(r.mark(m, s), Some(MarkKind::Excluded(_))))
        });
        assert!(runs, "row {} runs no cell", r.name);
        for m in r.marks {
            match &m.kind {
                MarkKind::Excluded(why) => assert!(why.len() > 20, "row {}: say why", r.name),
                MarkKind::KnownFailing(item, what) | MarkKind::KnownFailingAtTimes(item, what) => {
                    assert!(
                        item.starts_with("issue "),
                        "row {}: name the issue item",
                        r.name
                    );
                    assert!(what.len() > 20, "row {}: say what fails", r.name);
                }
            }
        }
        if matches!(r.server, Server::Activated(_)) {
            assert!(
                r.mark(crate::table::Mode::Library, SCENARIOS[0]).is_some(),
                "row {}: socket activation has no library cell",
                r.name
            );
        }
    }
}

#[test]
fn the_matrix_doc_is_the_table() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).expect("docs/matrix.md");
    let (Some(a), Some(b)) = (doc.find(START), doc.find(END)) else {
        panic!("docs/matrix.md has no `{START}` ... `{END}` block");
    };
    let current = &doc[a + START.len()..b];
    let want = format!("\n{}", generated());
    if current == want {
        return;
    }
    if std::env::var_os("TIDY_WRITE").is_some() {
        let new = format!("{}{START}{want}{}", &doc[..a], &doc[b..]);
        std::fs::write(&path, new).expect("write docs/matrix.md");
        println!("tidy: docs/matrix.md rewritten");
        return;
    }
    panic!(
        "docs/matrix.md differs from the matrix's table: run `cargo xtask tidy --write` \
         (or TIDY_WRITE=1 cargo test -p endpoints-cli --test matrix tidy)"
    );
}
