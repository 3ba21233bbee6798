//! `cargo xtask`: the CI gate, the conformance suites and the benchmarks.
//!
//! ```text
//! cargo xtask ci                          fmt, clippy, tests, macOS check, docs, conformance, deny
//! cargo xtask conformance [--vectors F]   the Twisted/PROXY vector suites; fails on an
//!                                         unlisted or undeclared difference, an unmapped
//!                                         Twisted exception, a skipped vector, or a
//!                                         pinned value whose change goes unseen
//! cargo xtask tidy [--write]              dependency rules, SAFETY notes, generated docs
//! cargo xtask man [--check]               the command's man pages and completions (docs/)
//! cargo xtask bench [--quick] [--only G] [--cc CC]
//!                                         benchmarks, as ratios against baselines
//! ```

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod man;
mod tidy;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("conformance") => conformance(&root, &args[1..]),
        Some("bench") => bench(&root, &args[1..]),
        Some("tidy") => tidy::run(&root, &args[1..]),
        Some("man") => man::run(&root, &args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!(
                "usage: cargo xtask <ci | conformance [--vectors FILE...] | tidy [--write] | man [--check] | bench [--quick] [--only accept,echo,connect,proxy,relay,tls,socks,terminate,exec,handover,ws,metrics,run,ssh] [--cc cubic]>"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}` (try `cargo xtask help`)")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    println!("\n==> {step}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    println!(
        "<== {step}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

/// The umbrella's feature sets checked one by one (the empty set: no transport at all).
const UMBRELLA_FEATURES: &[&str] = &[
    "", "tcp", "tcp6", "hostname", "unix", "systemd", "tls", "proxy", "stdio", "tunnel", "acme",
    "exec", "ws", "ssh",
];

/// The macOS target of the CI check.
const MACOS: &str = "x86_64-apple-darwin";

/// Crates checked for macOS as they are: none of them needs a C compiler.
const MACOS_CRATES: &[&str] = &[
    "endpoints-core",
    "endpoints-util",
    "endpoints-tcp",
    "endpoints-tcp6",
    "endpoints-hostname",
    "endpoints-unix",
    "endpoints-systemd",
    "endpoints-proxy",
    "endpoints-stdio",
    "endpoints-exec",
    "endpoints-ws",
];

/// Write a C compiler that only creates each requested object file, empty: enough for
/// `cargo check` (which never links) across targets without a cross toolchain.
fn stub_cc(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("target").join("xtask-stub-cc");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("cc");
    let script = r#"#!/bin/sh
# cargo check only: create each requested object file, empty.
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    -Fo*) out="${1#-Fo}" ;;
  esac
  shift
done
[ -n "$out" ] && : > "$out"
exit 0
"#;
    std::fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", path.display()))?;
    }
    Ok(path)
}

fn ci(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    let mut steps: Vec<(&str, Command)> = Vec::new();

    let mut c = cargo(root);
    c.args(["fmt", "--all", "--", "--check"]);
    steps.push(("fmt", c));

    // The command's man pages and completions (docs/man, docs/completions): non-empty and
    // what its clap definition gives now.
    let mut c = cargo(root);
    c.args(["xtask", "man", "--check"]);
    steps.push(("man pages and completions", c));

    let mut c = cargo(root);
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    steps.push(("clippy", c));

    let mut c = cargo(root);
    c.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
    steps.push(("tests (unit, integration, doc)", c));

    // Features outside `full`: the axum, tonic, clap and serde integrations, and the examples
    // that use them.
    let mut c = cargo(root);
    c.args([
        "test",
        "--locked",
        "--package",
        "endpoints",
        "--features",
        "axum,tonic,clap,serde",
    ]);
    c.args([
        "--test",
        "axum",
        "--test",
        "tonic",
        "--test",
        "descriptions",
        "--test",
        "connect_hint",
        "--test",
        "recipes",
        "--examples",
    ]);
    steps.push((
        "tests and examples with the axum, tonic, clap and serde features",
        c,
    ));
    // The doctests with those features: the integrations' own examples, and the README's Rust
    // blocks (`mod readme` in the umbrella, compiled only with the features they use). `--doc`
    // cannot be mixed with `--test`, hence a step of its own.
    let mut c = cargo(root);
    c.args([
        "test",
        "--locked",
        "--package",
        "endpoints",
        "--features",
        "axum,tonic,clap,serde",
        "--doc",
    ]);
    steps.push((
        "doctests (and the README's Rust blocks) with the axum, tonic, clap and serde features",
        c,
    ));

    // Each transport feature alone: the registry must hold exactly what the feature brings.
    for features in UMBRELLA_FEATURES {
        let mut c = cargo(root);
        c.args([
            "test",
            "--locked",
            "--package",
            "endpoints",
            "--no-default-features",
            "--test",
            "registry",
        ]);
        if !features.is_empty() {
            c.args(["--features", features]);
        }
        steps.push(("umbrella feature matrix", c));
    }

    // macOS: every crate that needs no C cross-compiler (ring's build script does: `tls`),
    // and the umbrella without `tls`. `.ci/run` adds the target.
    let mut c = cargo(root);
    c.args(["check", "--locked", "--target", MACOS]);
    for p in MACOS_CRATES {
        c.args(["--package", p]);
    }
    c.env("RUSTFLAGS", "-D warnings");
    steps.push(("macOS check (crates without ring)", c));
    let mut c = cargo(root);
    c.args([
        "check",
        "--locked",
        "--target",
        MACOS,
        "--package",
        "endpoints",
        "--no-default-features",
        "--features",
        "tcp,tcp6,hostname,unix,systemd,proxy,stdio,axum,tonic,clap,serde",
    ]);
    c.env("RUSTFLAGS", "-D warnings");
    steps.push(("macOS check (the umbrella without tls)", c));
    // The rest (tls and what uses it: the command, the umbrella's `full`) type-checked with a
    // stub C compiler: `cargo check` never links, so ring's C objects may be empty files.
    match stub_cc(root) {
        Ok(stub) => {
            let mut c = cargo(root);
            c.args(["check", "--locked", "--target", MACOS]);
            for p in ["endpoints-tls", "endpoints-cli", "endpoints"] {
                c.args(["--package", p]);
            }
            c.env("RUSTFLAGS", "-D warnings")
                .env("CC_x86_64_apple_darwin", &stub)
                .env("AR_x86_64_apple_darwin", "ar");
            steps.push((
                "macOS type check with a stub C compiler (tls, the command)",
                c,
            ));
        }
        Err(e) => println!("\n==> macOS type check of tls and the command: skipped, {e}"),
    }

    let mut c = cargo(root);
    c.args([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
        "--locked",
    ])
    .env("RUSTDOCFLAGS", "-D warnings");
    steps.push(("docs", c));

    let mut failed: Vec<String> = steps
        .into_iter()
        .filter_map(|(name, cmd)| run(name, cmd).err())
        .collect();

    if let Err(e) = conformance(root, &[]) {
        failed.push(e);
    }

    let has_deny = Command::new("cargo-deny")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_deny {
        let mut c = cargo(root);
        // Advisories need the network (GitHub); they run in the scheduled GitHub job instead.
        c.args(["deny", "--locked", "check", "bans", "licenses", "sources"]);
        if let Err(e) = run("deny", c) {
            failed.push(e);
        }
    } else if env::var("CI").is_ok_and(|v| v == "true") {
        failed.push("deny: cargo-deny is not installed (.ci/run installs it)".into());
    } else {
        println!(
            "\n==> deny: skipped, cargo-deny is not installed (`cargo install --locked cargo-deny`)"
        );
    }

    let total = started.elapsed().as_secs();
    let total = format!("{}m{:02}s", total / 60, total % 60);
    if failed.is_empty() {
        println!("\nci: every step passed in {total}");
        Ok(())
    } else {
        Err(format!(
            "ci: {} step(s) failed (after {total}):\n  {}",
            failed.len(),
            failed.join("\n  ")
        ))
    }
}

fn conformance(root: &Path, extra: &[String]) -> Result<(), String> {
    let mut c = cargo(root);
    c.args([
        "run",
        "--quiet",
        "--locked",
        "--package",
        "endpoints-compat-tests",
        "--bin",
        "compat",
        "--",
    ]);
    c.args(extra);
    run("conformance", c)
}

fn bench(root: &Path, extra: &[String]) -> Result<(), String> {
    // The relay benchmarks run the release `endpoints` binary.
    let mut b = cargo(root);
    b.args([
        "build",
        "--release",
        "--quiet",
        "--locked",
        "--package",
        "endpoints-cli",
    ]);
    run("build the endpoints command", b)?;
    let mut c = cargo(root);
    c.env("ENDPOINTS_BIN", root.join("target/release/endpoints"));
    c.args([
        "run",
        "--release",
        "--quiet",
        "--locked",
        "--package",
        "endpoints-bench",
        "--bin",
        "endpoints-bench",
        "--",
    ]);
    c.args(extra);
    run("bench", c)
}
