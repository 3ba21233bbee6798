//! `cargo xtask man [--check]`: the `endpoints` command's man pages (docs/man/, one for the
//! command and one for each subcommand) and shell completions (docs/completions/), generated
//! from its clap definition. `--check` (run by `cargo xtask ci`) fails when a file is missing,
//! empty or not what the definition gives now.

use std::path::Path;

use clap::CommandFactory as _;

/// The command's clap definition, shared with the binary.
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/endpoints-cli/src/cli.rs"]
mod cli;

/// The generated files, by path from the workspace root.
fn generate(root: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let version = workspace_version(root)?;
    // The completions as `endpoints completions SHELL` prints them.
    let completed = cli::Cli::command().version(version);
    // The man pages without clap's `help` subcommand (each subcommand has its own page).
    let mut cmd = completed.clone().disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();
    let mut page = |c: clap::Command, name: &str| -> Result<(), String> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c)
            .title(name.to_ascii_uppercase())
            .manual("endpoints")
            .source(format!("endpoints {version}"))
            .render(&mut out)
            .map_err(|e| format!("man page {name}: {e}"))?;
        files.push((format!("docs/man/{name}.1"), out));
        Ok(())
    };
    page(cmd.clone(), "endpoints")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("endpoints-{}", sub.get_name());
        page(sub.clone().display_name(name.clone()), &name)?;
    }
    for (shell, file) in [
        (
            clap_complete::Shell::Bash,
            "docs/completions/endpoints.bash",
        ),
        (clap_complete::Shell::Zsh, "docs/completions/_endpoints"),
        (
            clap_complete::Shell::Fish,
            "docs/completions/endpoints.fish",
        ),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut completed.clone(), "endpoints", &mut out);
        files.push((file.to_owned(), out));
    }
    Ok(files)
}

/// `version = "..."` of `[workspace.package]` in the root Cargo.toml (the command's version;
/// xtask's own is 0.0.0).
fn workspace_version(root: &Path) -> Result<&'static str, String> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).map_err(|e| format!("Cargo.toml: {e}"))?;
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if in_package && let Some(v) = line.strip_prefix("version") {
            let v = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            return Ok(Box::leak(v.to_owned().into_boxed_str()));
        }
    }
    Err("Cargo.toml: no version in [workspace.package]".into())
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [a] if a == "--check" => true,
        _ => return Err("usage: cargo xtask man [--check]".into()),
    };
    let files = generate(root)?;
    let mut stale = Vec::new();
    for (path, text) in &files {
        if text.is_empty() {
            return Err(format!("{path}: generated empty"));
        }
        let at = root.join(path);
        if check {
            match std::fs::read(&at) {
                Ok(old) if old == *text => {}
                Ok(_) => stale.push(format!("{path} is not current")),
                Err(e) => stale.push(format!("{path}: {e}")),
            }
        } else {
            if let Some(dir) = at.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&at, text).map_err(|e| format!("{path}: {e}"))?;
            println!("wrote {path}");
        }
    }
    // A page left over from a subcommand that is gone.
    let dir = root.join("docs/man");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let path = format!("docs/man/{}", e.file_name().to_string_lossy());
            if !files.iter().any(|(p, _)| *p == path) {
                stale.push(format!("{path} is no longer generated (remove it)"));
            }
        }
    }
    if stale.is_empty() {
        if check {
            println!(
                "man pages and completions are current ({} files)",
                files.len()
            );
        }
        Ok(())
    } else {
        Err(format!(
            "{}; run `cargo xtask man` and commit the result",
            stale.join("; ")
        ))
    }
}
