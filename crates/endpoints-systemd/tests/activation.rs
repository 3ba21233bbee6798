//! Real socket activation with `systemd-socket-activate` (Debian package `systemd`).
//!
//! This test binary is its own harness (`harness = false`): run with
//! `ENDPOINTS_ACTIVATED_DESC` set, it is the activated server (it calls `init()` first, listens
//! on that description, accepts one connection, reports and exits); otherwise it runs the
//! tests below, each starting itself under `systemd-socket-activate`. Without the program
//! the tests are skipped with a printed reason, except under `CI=true`, where that fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "ENDPOINTS_ACTIVATED_DESC";
/// Run as the close-on-exec probe: `init()`, then report whether descriptor 3 is close-on-exec.
const PROBE: &str = "ENDPOINTS_CLOEXEC_PROBE";

/// A test: `Err` says what went wrong.
type Test = fn() -> Result<(), String>;
const ACTIVATE: &str = "systemd-socket-activate";

fn main() -> ExitCode {
    if let Ok(desc) = std::env::var(ROLE) {
        return activated_server(&desc);
    }
    if std::env::var_os(PROBE).is_some() {
        return cloexec_probe();
    }
    // Tests that need no activator: the variables are set by hand.
    let plain: &[(&str, Test)] = &[
        ("huge_listen_fds_fails_fast", huge_listen_fds_fails_fast),
        (
            "cloexec_even_when_names_do_not_match",
            cloexec_even_when_names_do_not_match,
        ),
    ];
    let tests: &[(&str, Test)] = &[
        ("by_index_without_names", by_index_without_names),
        ("by_name", by_name),
        ("unix_socket_is_not_chmoded", unix_socket_is_not_chmoded),
        (
            "wrong_domain_is_a_clear_error",
            wrong_domain_is_a_clear_error,
        ),
        (
            "wrong_listen_pid_means_nothing_passed",
            wrong_listen_pid_means_nothing_passed,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    let mut ignored = 0;
    let activator = Command::new(ACTIVATE)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !activator {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            println!(
                "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
            );
            eprintln!("{ACTIVATE} is missing and CI=true: install the Debian package `systemd`");
            return ExitCode::FAILURE;
        }
        println!(
            "skipping {} socket-activation tests: {ACTIVATE} not found (Debian package `systemd`)",
            tests.len()
        );
        ignored = tests.len();
    }
    let run: Vec<&(&str, Test)> = if activator {
        plain.iter().chain(tests.iter()).collect()
    } else {
        plain.iter().collect()
    };
    println!("\nrunning {} tests", run.len());
    for (name, test) in run {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        match test() {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED\n    {why}");
                failed += 1;
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; {filtered} filtered out\n"
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The activated side: `init()` before any thread, then serve one connection with a report.
fn activated_server(desc: &str) -> ExitCode {
    let passed = match endpoints_systemd::init() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("activated: {e}");
            return ExitCode::from(3);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("activated: {e}");
            return ExitCode::from(3);
        }
    };
    let result: Result<(), String> = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let d = desc.parse().map_err(|e| format!("{e}"))?;
        let endpoint = endpoints_core::registry::build_server(&d).map_err(|e| format!("{e}"))?;
        let mut listener = endpoint.listen().await.map_err(|e| e.to_string())?;
        let mut conn = listener.accept().await.map_err(|e| e.to_string())?;
        // Read the client's greeting first: closing with unread data resets the peer.
        let mut hi = [0u8; 2];
        conn.read_exact(&mut hi).await.map_err(|e| e.to_string())?;
        // What a child of this server inherits: LISTEN_* variables and descriptors 3..8.
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg("env | grep '^LISTEN_' ; for fd in 3 4 5 6 7 8; do [ -e /proc/$$/fd/$fd ] && echo \"inherited fd $fd\"; done; true")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let report = format!(
            "passed={passed}\nlistening={listener}\nlocal={}\nchild:\n{}",
            conn.local_addr(),
            String::from_utf8_lossy(&child.stdout)
        );
        conn.write_all(report.as_bytes()).await.map_err(|e| e.to_string())?;
        conn.shutdown().await.map_err(|e| e.to_string())?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("activated: {e}");
            ExitCode::from(4)
        }
    }
}

/// The probe side: `init()` (the variables are wrong on purpose), then whether descriptor 3
/// is close-on-exec, from `/proc/self/fdinfo/3`.
fn cloexec_probe() -> ExitCode {
    match endpoints_systemd::init() {
        Ok(n) => println!("init: {n} descriptor(s)"),
        Err(e) => println!("init: {e}"),
    }
    let flags = std::fs::read_to_string("/proc/self/fdinfo/3")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        });
    match flags {
        // O_CLOEXEC as fdinfo shows it (octal 02000000 on Linux).
        Some(f) => println!("fd3 cloexec={}", f & 0o2_000_000 != 0),
        None => println!("fd3 not open"),
    }
    ExitCode::SUCCESS
}

/// Run this binary through `sh`, so that `LISTEN_PID` can be the exec-ed process's own pid;
/// `prelude` runs in the shell first.
fn run_with_pid(prelude: &str, env: &[(&str, &str)]) -> Result<std::process::Output, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude} export LISTEN_PID=$$; exec \"$0\""))
        .arg(me)
        .env_remove(ROLE)
        .env_remove(PROBE)
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(out) => out.map_err(|e| e.to_string()),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            Err("the child did not exit within 10 s".into())
        }
    }
}

fn huge_listen_fds_fails_fast() -> Result<(), String> {
    // `ulimit -v`: should the count ever be trusted again, the child fails to allocate
    // instead of eating the machine's memory.
    let out = run_with_pid(
        "ulimit -v 4194304;",
        &[
            (ROLE, "systemd:domain=INET:index=0"),
            ("LISTEN_FDS", "2000000000"),
        ],
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Err(format!("LISTEN_FDS=2000000000 was accepted: {err}"));
    }
    expect(
        &err,
        "LISTEN_FDS=2000000000 is more descriptors than this process may have open (RLIMIT_NOFILE is",
    )
}

fn cloexec_even_when_names_do_not_match() -> Result<(), String> {
    // Descriptor 3 is inherited (no close-on-exec); the names do not match the count.
    let out = run_with_pid(
        "exec 3</dev/null;",
        &[(PROBE, "1"), ("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "a:b")],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    expect(
        &text,
        "init: socket activation: LISTEN_FDNAMES names 2 descriptor(s) but LISTEN_FDS=1",
    )?;
    expect(&text, "fd3 cloexec=true")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Start `systemd-socket-activate ARGS... <this binary>` as the activated server for `desc`.
fn activate(args: &[String], desc: &str) -> Result<Child, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(ACTIVATE)
        .args(args)
        .arg(format!("--setenv={ROLE}={desc}"))
        .arg(me)
        .env_remove(ROLE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {ACTIVATE}: {e}"))
}

/// Connect (retrying while the activator starts), then read everything the server sends.
fn exchange(
    mut connect: impl FnMut() -> std::io::Result<Box<dyn ReadWrite>>,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match connect() {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("could not connect: {e}")),
        }
    };
    conn.write_all(b"hi").map_err(|e| e.to_string())?;
    let mut report = String::new();
    conn.read_to_string(&mut report)
        .map_err(|e| format!("reading the report: {e}"))?;
    Ok(report)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn tcp(port: u16) -> impl FnMut() -> std::io::Result<Box<dyn ReadWrite>> {
    move || {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Box::new(s) as Box<dyn ReadWrite>)
    }
}

/// Wait for the child (bounded) and return its exit status and stderr.
fn finish(mut child: Child) -> Result<(std::process::ExitStatus, String), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Ok((status, err));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the activated server did not exit within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_clean_child(report: &str) -> Result<(), String> {
    let child = report.split("child:\n").nth(1).unwrap_or("");
    if !child.trim().is_empty() {
        return Err(format!(
            "a child of the server inherited activation state:\n{child}"
        ));
    }
    Ok(())
}

fn by_index_without_names() -> Result<(), String> {
    let port = free_port();
    let child = activate(
        &[format!("--listen=127.0.0.1:{port}")],
        "systemd:domain=inet:index=0",
    )?;
    let report = exchange(tcp(port));
    let (status, err) = finish(child)?;
    let report = report.map_err(|e| format!("{e}; server stderr: {err}"))?;
    if !status.success() {
        return Err(format!("server failed ({status}): {err}"));
    }
    expect(&report, "passed=1")?;
    expect(&report, "listening=systemd:domain=INET:index=0")?;
    expect(&report, &format!("local=127.0.0.1:{port}"))?;
    check_clean_child(&report)
}

fn by_name() -> Result<(), String> {
    let (web, admin) = (free_port(), free_port());
    let child = activate(
        &[
            format!("--listen=127.0.0.1:{web}"),
            format!("--listen=127.0.0.1:{admin}"),
            "--fdname=web:admin".into(),
        ],
        "systemd:domain=INET:name=admin",
    )?;
    let report = exchange(tcp(admin));
    let (status, err) = finish(child)?;
    let report = report.map_err(|e| format!("{e}; server stderr: {err}"))?;
    if !status.success() {
        return Err(format!("server failed ({status}): {err}"));
    }
    expect(&report, "passed=2")?;
    expect(&report, "listening=systemd:domain=INET:name=admin")?;
    expect(&report, &format!("local=127.0.0.1:{admin}"))?;
    check_clean_child(&report)
}

fn unix_socket_is_not_chmoded() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("endpoints-activation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path: PathBuf = dir.join("a.sock");
    let child = activate(
        &[format!("--listen={}", path.display())],
        "systemd:domain=UNIX:index=0",
    )?;
    let mode_before = wait_for_mode(&path)?;
    let p = path.clone();
    let report = exchange(move || {
        let s = std::os::unix::net::UnixStream::connect(&p)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Box::new(s) as Box<dyn ReadWrite>)
    });
    let mode_after = std::fs::symlink_metadata(&path)
        .map(|m| m.permissions().mode() & 0o7777)
        .ok();
    let (status, err) = finish(child)?;
    let report = report.map_err(|e| format!("{e}; server stderr: {err}"))?;
    if !status.success() {
        return Err(format!("server failed ({status}): {err}"));
    }
    expect(&report, "listening=systemd:domain=UNIX:index=0")?;
    if mode_after != Some(mode_before) {
        return Err(format!(
            "the adopted socket's mode changed from {mode_before:o} to {mode_after:?}"
        ));
    }
    check_clean_child(&report)
}

fn wait_for_mode(path: &Path) -> Result<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            return Ok(m.permissions().mode() & 0o7777);
        }
        if Instant::now() > deadline {
            return Err(format!("{ACTIVATE} never created {}", path.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wrong_domain_is_a_clear_error() -> Result<(), String> {
    let port = free_port();
    let child = activate(
        &[format!("--listen=127.0.0.1:{port}")],
        "systemd:domain=UNIX:index=0",
    )?;
    let _ = exchange(tcp(port)); // triggers the exec; the server refuses the socket
    let (status, err) = finish(child)?;
    if status.success() {
        return Err("the server adopted an AF_INET socket as AF_UNIX".into());
    }
    expect(&err, "descriptor 3 is an AF_INET socket, not AF_UNIX")?;
    expect(&err, "cannot listen on `systemd:domain=UNIX:index=0`")
}

fn wrong_listen_pid_means_nothing_passed() -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(me)
        .env(ROLE, "systemd:domain=INET:index=0")
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Err("a server with another process's LISTEN_PID found a socket".into());
    }
    expect(
        &err,
        "no descriptors were passed to this process (LISTEN_PID=1 names another process",
    )
}

fn expect(text: &str, needle: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("expected `{needle}` in:\n{text}"))
    }
}
