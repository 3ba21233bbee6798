//! The transfer matrix (issue 30, item 13): every registered stream type joins by being
//! registered. For each pair of a server and a client description that meet on loopback
//! (`table.rs`: one row per type), through the library, through the command (`connect` to
//! `listen`) and through a `relay` hop (the pair on the relay's listening side, and on its
//! connecting side): an upload and a download of 6 MiB with the other input at its end, an
//! echo of it, half-close each way, a peer that resets mid-transfer (loud: an error, a
//! non-zero exit, never a clean end) and an idle peer.
//!
//! A cell a pair cannot run is excluded with its reason; a cell that fails today because of a
//! known defect is marked with the issue item that fixes it and runs anyway: it is reported as
//! known-failing, and once it passes the test fails until the mark is removed. `docs/matrix.md`
//! is generated from the same table (`tidy.rs`; `cargo xtask tidy --write` rewrites it), and a
//! registered type without a row fails `tidy::every_registered_type_has_a_row`.
//!
//! `MATRIX_ROWS=tcp,ws` runs only those rows; `MATRIX_JOBS=N` cells at once per test
//! (default 2).

mod command;
mod fixture;
mod library;
mod program;
mod table;
mod tidy;

use std::sync::Arc;
use std::time::Instant;

use fixture::Fixture;
use table::{MarkKind, Mode, ROWS, Row, SCENARIOS, Scenario};

/// What one cell came to.
enum Verdict {
    Passed,
    Failed(String),
    KnownFailing(&'static str, String),
    /// A known-failing cell that passed: its mark must go.
    UnexpectedPass(&'static str),
    /// A cell that fails at times passed this time.
    PassedThisTime(&'static str),
    Skipped(String),
    Excluded,
}

fn selected_rows() -> Vec<&'static Row> {
    let only = std::env::var("MATRIX_ROWS").ok();
    ROWS.iter()
        .filter(|r| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n.trim() == r.name))
        })
        .collect()
}

async fn run_cell(fx: &Fixture, row: &'static Row, mode: Mode, scenario: Scenario) -> Verdict {
    let mark = row.mark(mode, scenario);
    if let Some(MarkKind::Excluded(_)) = mark {
        return Verdict::Excluded;
    }
    if let Err(why) = fx.prepare(row.needs).await {
        return Verdict::Skipped(why);
    }
    let dir = fx.cell_dir();
    let run = async {
        match mode {
            Mode::Library => library::cell(fx, row, scenario, &dir).await,
            _ => command::cell(fx, row, mode, scenario, &dir).await,
        }
    };
    // Every step inside is bounded; this bounds the whole cell.
    let result = match tokio::time::timeout(command::BOUND, run).await {
        Ok(r) => r,
        Err(_) => Err(format!("the cell did not end within {:?}", command::BOUND)),
    };
    let _ = std::fs::remove_dir_all(&dir);
    match (result, mark) {
        (Ok(()), Some(MarkKind::KnownFailing(item, _))) => Verdict::UnexpectedPass(item),
        (Ok(()), Some(MarkKind::KnownFailingAtTimes(item, _))) => Verdict::PassedThisTime(item),
        (Ok(()), _) => Verdict::Passed,
        (
            Err(e),
            Some(MarkKind::KnownFailing(item, _) | MarkKind::KnownFailingAtTimes(item, _)),
        ) => Verdict::KnownFailing(item, e),
        (Err(e), _) => Verdict::Failed(e),
    }
}

/// Run every cell of `mode`, a few at once; print each verdict; fail on a failure or on a
/// known-failing cell that passes.
async fn run_mode(mode: Mode) {
    let fx = Arc::new(Fixture::new(match mode {
        Mode::Library => "lib",
        Mode::Command => "cmd",
        Mode::RelayListening => "rl",
        Mode::RelayConnecting => "rc",
    }));
    let jobs: usize = std::env::var("MATRIX_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(2);
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = Vec::new();
    for row in selected_rows() {
        for &scenario in SCENARIOS {
            let (fx, permits) = (fx.clone(), permits.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore");
                let started = Instant::now();
                let v = run_cell(&fx, row, mode, scenario).await;
                (row.name, scenario, v, started.elapsed())
            }));
        }
    }
    let mut problems = Vec::new();
    let mut known = Vec::new();
    for t in tasks {
        let (row, scenario, v, took) = t.await.expect("cell task");
        let cell = format!("{} / {row} / {}", mode.name(), scenario.name());
        match v {
            Verdict::Passed => println!("pass            {cell} ({:.1}s)", took.as_secs_f64()),
            Verdict::Excluded => println!("excluded        {cell}"),
            Verdict::PassedThisTime(item) => println!(
                "pass            {cell} ({:.1}s; known to fail at times: {item})",
                took.as_secs_f64()
            ),
            Verdict::Skipped(why) => println!("skipped         {cell}: {why}"),
            Verdict::KnownFailing(item, e) => {
                println!("known-failing   {cell} ({item}): {e}");
                known.push(cell);
            }
            Verdict::UnexpectedPass(item) => {
                println!("UNEXPECTED PASS {cell}");
                problems.push(format!(
                    "{cell} passes now: remove its `known-failing: {item}` mark in \
                     crates/endpoints-cli/tests/matrix/table.rs and run `cargo xtask tidy --write`"
                ));
            }
            Verdict::Failed(e) => {
                println!("FAILED          {cell}: {e}");
                problems.push(format!("{cell}: {e}"));
            }
        }
    }
    println!("{} known-failing cell(s) in {}", known.len(), mode.name());
    assert!(
        problems.is_empty(),
        "{} cell(s) of the {} matrix:\n{}",
        problems.len(),
        mode.name(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library() {
    run_mode(Mode::Library).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command() {
    run_mode(Mode::Command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_listening_side() {
    run_mode(Mode::RelayListening).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_connecting_side() {
    run_mode(Mode::RelayConnecting).await;
}
