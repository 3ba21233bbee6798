//! Real peer programs: found, or the test skipped with a printed reason; under `CI=true` a
//! missing peer is a failure (`.ci/run` installs every one).

/// Whether this run is CI's (`CI=true`), where no peer may be missing.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A peer that is not there: a panic under CI, else a printed reason and `false`.
fn missing(what: &str, install: &str) -> bool {
    assert!(!under_ci(), "{what} is missing and CI=true: {install}");
    println!("skipping: {what} not found ({install})");
    false
}

/// Whether `program probe_arg` runs and exits successfully (`openssl version`, `socat -V`,
/// `haproxy -v`); `package` is the Debian package that brings it. The same check as
/// [`endpoints_conformance::peer_program`], which plugin authors use.
pub fn program(program: &str, probe_arg: &str, package: &str) -> bool {
    endpoints_conformance::peer_program(program, probe_arg, package)
}

/// Whether `program` can be started at all, for peers with no option that exits successfully
/// (`microsocks` has no `--version`; `-h` exits 1).
pub fn startable(program: &str, probe_arg: &str, package: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg(probe_arg)
        .output()
        .is_ok();
    found
        || missing(
            &format!("`{program}`"),
            &format!("install the Debian package `{package}`"),
        )
}

/// Whether `python3` can import every one of `modules`; `install` says how to get them.
pub fn python_modules(modules: &[&str], install: &str) -> bool {
    python(
        &format!("import {}", modules.join(", ")),
        &format!("python3 with {}", modules.join(", ")),
        install,
    )
}

/// Whether `python3 -c code` exits successfully; `what` names the peer, `install` says how
/// to get it.
fn python(code: &str, what: &str, install: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", code])
        .output()
        .is_ok_and(|o| o.status.success());
    found || missing(what, install)
}

/// Whether Twisted 26.10 or later with its TLS extras (pyOpenSSL, service_identity) can be
/// imported: the `tls:`/`ssl:`, `haproxy:` and `unix:` interop peer.
pub fn twisted() -> bool {
    python(
        "import sys, twisted, OpenSSL, service_identity, idna\n\
         v = tuple(int(p) for p in twisted.__version__.split('.')[:2])\n\
         sys.exit(0 if v >= (26, 10) else 1)",
        "Twisted 26.10 with TLS (pyOpenSSL, service_identity)",
        "pip install \"twisted[tls]==26.10.0\"",
    )
}
