//! The command's flags (issue 31, items 1, 2 and 5; issue 30, item 11): clap's parsing,
//! `--flag=value`, `--help` for each subcommand, did-you-mean, completions, the policy flags
//! that add up, handover flags refused where there is no handover, and `connect` quiet like nc.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::data_paths::{BIN, cmd, start};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run endpoints");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The subcommands `endpoints --help` lists (clap's `Commands:` section), `help` aside.
fn subcommands() -> Vec<String> {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    let commands = out
        .split_once("Commands:\n")
        .expect("a Commands: section")
        .1;
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        // Not a wrapped line's continuation.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Issue 31, item 1: `--flag=value` is the same as `--flag value`; before, it was "unknown
/// option" plus the usage.
#[test]
fn flags_take_their_value_after_an_equals_sign() {
    let (code, _, err) = run(&["check", "--deny-types=exec", "exec:cat"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`exec` is not allowed"), "{err}");
    let (code, out, err) = run(&["check", "--client", "--allow-types=tcp", "tcp:db:5432"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("tcp:host=db:port=5432:"), "{out}");
    for v in ["-1", "abc", ""] {
        let (code, _, err) = run(&[
            "relay",
            "tcp:0",
            "tcp:127.0.0.1:9",
            &format!("--linger={v}"),
        ]);
        assert_eq!(code, 2, "{v}: {err}");
        assert!(err.starts_with("--linger: expected"), "{v}: {err}");
    }
}

/// Issue 31, item 1: a misspelt flag is a usage error (status 2) that names the flag meant.
#[test]
fn a_misspelt_flag_gets_a_did_you_mean() {
    let (code, _, err) = run(&["check", "--deny-typs", "exec", "exec:cat"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("'--deny-typs'") && err.contains("'--deny-types'"),
        "{err}"
    );
    let (code, _, err) = run(&["relay", "tcp:0", "tcp:127.0.0.1:9", "--idle-timout", "3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'--idle-timeout'"), "{err}");
    let (code, _, err) = run(&["lisen", "tcp:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'listen'"), "{err}");
}

/// Issue 31, items 1 and 5 (the usage test of issue 23 moved to clap's output): each
/// subcommand has its own `--help`, every flag in it is explained, `-q`/`-v` are on every
/// subcommand, and `listen`/`connect` say that each direction runs to its own end.
#[test]
fn every_subcommand_has_a_help_that_explains_each_flag() {
    let commands = subcommands();
    for want in [
        "check",
        "types",
        "listen",
        "connect",
        "relay",
        "completions",
    ] {
        assert!(commands.iter().any(|c| c == want), "{want}: {commands:?}");
    }
    for c in &commands {
        let (code, out, err) = run(&[c, "--help"]);
        assert_eq!(code, 0, "{c}: {err}");
        let (code, same, _) = run(&["help", c]);
        assert_eq!((code, &same), (0, &out), "`help {c}` is `{c} --help`");
        let lines: Vec<&str> = out.lines().collect();
        let mut flags = 0;
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            if !(t.starts_with("--") || (t.starts_with('-') && t.chars().nth(2) == Some(','))) {
                continue;
            }
            flags += 1;
            let explained = lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty());
            assert!(
                explained,
                "`endpoints {c} --help`: {t} is not explained:\n{out}"
            );
        }
        assert!(flags >= 4, "{c}: {out}");
        for f in ["-q, --quiet", "-v, --verbose", "--log-level <LEVEL>"] {
            assert!(out.contains(f), "`endpoints {c} --help` lacks {f}:\n{out}");
        }
    }
    for c in ["listen", "connect"] {
        let (_, out, _) = run(&[c, "--help"]);
        assert!(out.contains("Each direction runs to its own end"), "{out}");
    }
    let (_, out, _) = run(&["relay", "-h"]);
    for f in [
        "--max-connections",
        "--idle-timeout",
        "--linger",
        "--drain-timeout",
        "--half-close",
        "--allow-types",
        "--deny-types",
        "--pid-file",
        "--ready-timeout",
        "--handover-exec",
        "--fd-store",
        "--log-format",
    ] {
        assert!(out.contains(f), "relay -h lacks {f}:\n{out}");
    }
    let (code, out, _) = run(&["help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Exit status: 0 success; 2 a bad description or usage"),
        "{out}"
    );
}

/// Issue 31, item 1: `endpoints completions bash|zsh|fish` prints a script that completes
/// the subcommands and their flags; an unknown shell is a usage error.
#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef endpoints"),
        ("fish", "complete -c endpoints"),
    ] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for word in ["relay", "deny-types", "half-close", "pid-file"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    // What `cargo xtask man` wrote in docs/ is what the command prints now (the CI step
    // `cargo xtask man --check` checks the man pages the same way).
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/completions/");
    for (shell, file) in [
        ("bash", "endpoints.bash"),
        ("zsh", "_endpoints"),
        ("fish", "endpoints.fish"),
    ] {
        let (_, out, _) = run(&["completions", shell]);
        let committed = std::fs::read_to_string(format!("{docs}{file}")).expect("docs/completions");
        assert!(
            out == committed,
            "docs/completions/{file} is not current: run `cargo xtask man`"
        );
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["completions"]);
    assert_eq!(code, 2, "{err}");
}

/// The bash completion script parses (`bash -n`) and completes a subcommand's flags.
#[test]
fn the_bash_completion_completes_flags() {
    let (_, script, _) = run(&["completions", "bash"]);
    let probe = format!(
        "{script}\nCOMP_WORDS=(endpoints relay --max-c); COMP_CWORD=2; COMP_LINE='endpoints relay --max-c'; \
         COMP_POINT=${{#COMP_LINE}}; _endpoints endpoints --max-c relay; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .expect("bash");
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(
        got.lines().any(|l| l == "--max-connections"),
        "{got} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 31, item 1: no panic on any flags; every usage error is status 2.
#[test]
fn hostile_arguments_are_usage_errors_never_a_panic() {
    let hostile: &[&[&str]] = &[
        &[],
        &["-"],
        &["--"],
        &["--="],
        &["-qv", "check", "tcp:80"],
        &["-q", "-v", "check", "tcp:80"],
        &["--log-level", "warn", "-v", "check", "tcp:80"],
        &["--help=1"],
        &["check"],
        &["check", "--json=1", "tcp:80"],
        &["check", "--client", "--server", "tcp:80"],
        &["check", "tcp:80", "tcp:81"],
        &["check", "--deny-types=", "tcp:80"],
        &["check", "--deny-types", ",,", "tcp:80"],
        &["check", "--allow-types"],
        &["types", "a", "b", "c"],
        &["types", "--json", "--markdown"],
        &["types", "--markdown", "tcp"],
        &["listen"],
        &["listen", "nope:"],
        &["listen", "--echo=yes", "tcp:0"],
        &["relay"],
        &["relay", "tcp:0"],
        &["relay", "a", "b", "c"],
        &["relay", "tcp:0", "tcp:127.0.0.1:9", "--max-connections=-0"],
        &["relay", "tcp:0", "tcp:127.0.0.1:9", "--half-close="],
        &["connect"],
        &["connect", "tcp:127.0.0.1:9", "--linger=1e999"],
        &["completions", ""],
        &["-vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"],
        &["\u{1F4A5}"],
        &["check", "--\u{1F4A5}", "tcp:80"],
        &["check", "-\u{1F4A5}", "tcp:80"],
    ];
    for args in hostile {
        let (code, _, err) = run(args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // An argument that is not UTF-8.
    use std::os::unix::ffi::OsStrExt as _;
    let out = std::process::Command::new(BIN)
        .args(["check".as_ref(), std::ffi::OsStr::from_bytes(b"tcp:\xff")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not UTF-8"));
}

/// Issue 30, item 11: repeated `--deny-types` add up (the last one used to win, so a wrapper
/// that adds its own deny-list re-enabled `exec`); repeated `--allow-types` intersect; an
/// allow-list that names a denied type is a usage error.
#[test]
fn repeated_policy_flags_add_up() {
    let (code, _, err) = run(&[
        "check",
        "--deny-types",
        "exec",
        "--deny-types",
        "unix",
        "exec:cat",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`exec` is not allowed"), "{err}");
    let (code, _, err) = run(&[
        "check",
        "--deny-types",
        "exec",
        "--deny-types",
        "unix",
        "unix:/a.sock",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&[
        "check",
        "--client",
        "--allow-types",
        "tcp,unix",
        "--allow-types",
        "unix",
        "tcp:db:5432",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`tcp` is not allowed"), "{err}");
    let (code, _, err) = run(&[
        "check",
        "--allow-types",
        "tcp",
        "--allow-types",
        "unix",
        "tcp:80",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no type in common"), "{err}");
    let (code, _, err) = run(&[
        "relay",
        "--allow-types",
        "tcp,exec",
        "--deny-types=exec",
        "tcp:0",
        "exec:cat",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("both name `exec`"), "{err}");
    let (code, _, err) = run(&[
        "check",
        "--allow-types",
        "tcp,tls",
        "--deny-types",
        "exec",
        "tcp:80",
    ]);
    assert_eq!(code, 0, "{err}");
}

/// Issue 31, item 2: handover flags where there is no handover (`listen` without `--echo`)
/// are refused at start; before, the pid file was never written and SIGHUP killed it.
#[test]
fn handover_flags_without_a_handover_are_refused() {
    for flag in [
        &["--pid-file", "p.pid"][..],
        &["--pid-file=p.pid"],
        &["--ready-timeout", "5"],
        &["--handover-exec", "/bin/true"],
        &["--fd-store"],
    ] {
        let mut args = vec!["listen", "tcp:0:interface=127.0.0.1"];
        args.extend_from_slice(flag);
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{flag:?}: {err}");
        assert!(err.contains("listen --echo"), "{flag:?}: {err}");
    }
    assert!(!std::path::Path::new("p.pid").exists());
}

/// Issue 31, item 5: `connect` is quiet like nc (nothing on stderr after a complete transfer),
/// `-v` gives the summary line; `listen --echo` keeps its line for each connection, `-q`
/// drops it.
#[tokio::test]
async fn connect_is_quiet_unless_verbose() {
    let (_echo, at, mut rx) = start(cmd(&["listen", "tcp:0:interface=127.0.0.1", "--echo"])).await;
    let target = format!("tcp:127.0.0.1:{}", super::data_paths::port_in(&at));
    for (flags, summary) in [(&[][..], false), (&["-v"], true), (&["-q"], false)] {
        let mut c = Command::new(BIN);
        c.arg("connect")
            .arg(&target)
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello\n").await.expect("write");
        drop(stdin);
        // Bounded: a loopback echo of 6 bytes takes milliseconds.
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("in time")
            .expect("output");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {err}");
        assert_eq!(&out.stdout[..], b"hello\n", "{flags:?}");
        if summary {
            assert!(
                err.contains("6 bytes received, 6 bytes sent") && err.contains("ended cleanly"),
                "{flags:?}: {err}"
            );
        } else {
            assert_eq!(err, "", "{flags:?}: connect is quiet like nc");
        }
        // The echo server logs each connection.
        super::data_paths::line_with(&mut rx, "6 bytes echoed").await;
    }
    let (_quiet, at, mut rx) = start(cmd(&[
        "listen",
        "tcp:0:interface=127.0.0.1",
        "--echo",
        "-q",
    ]))
    .await;
    let target = format!("tcp:127.0.0.1:{}", super::data_paths::port_in(&at));
    let (code, _, err) = run(&["connect", &target]);
    assert_eq!(code, 0, "{err}");
    // The line would come within milliseconds of the connection's end; none within 2 s.
    let line = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(!matches!(line, Ok(Some(_))), "-q: {line:?}");
}

/// Issue 31, item 4: the pid file is removed on a clean exit (SIGTERM); before, it was left
/// behind naming a dead process.
#[tokio::test]
async fn the_pid_file_is_removed_on_a_clean_exit() {
    let dir = super::data_paths::temp_dir("pidfile-exit");
    let pid_file = dir.join("echo.pid");
    for args in [
        vec!["listen", "tcp:0:interface=127.0.0.1", "--echo"],
        vec!["relay", "tcp:0:interface=127.0.0.1", "tcp:127.0.0.1:9"],
    ] {
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        args.push(format!("--pid-file={}", pid_file.display()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (mut child, _, _rx) = start(cmd(&args)).await;
        let pid = child.id().expect("pid");
        // Written once listening; the relay's start lines come before it is: bounded wait.
        let mut written = None;
        for _ in 0..200 {
            written = std::fs::read_to_string(&pid_file)
                .ok()
                .filter(|t| !t.is_empty());
            if written.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            written.as_deref().map(str::trim),
            Some(pid.to_string().as_str()),
            "{args:?}"
        );
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("exits")
            .expect("status");
        assert_eq!(status.code(), Some(0), "{args:?}");
        assert!(!pid_file.exists(), "{args:?}: the pid file is left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 31, item 4: URL hints keep everything (the path), a `ws://` server gets a URL hint,
/// `trustRoots=` on `ws:` points at `wss:`, and a `wss:` server at `ws:` over `tls:`.
#[test]
fn url_hints_keep_everything() {
    for (args, fixed) in [
        (
            &["check", "--client", "ws://127.0.0.1:17002/ssh"][..],
            "ws:127.0.0.1:17002:path=/ssh",
        ),
        (
            &["check", "--client", "ws://localhost:17002/ssh?x=1"],
            "ws:localhost:17002:path=/ssh?x=1",
        ),
        (
            &["check", "--client", "wss://example.com/chat"],
            "wss:example.com:path=/chat",
        ),
        (
            &["check", "--server", "ws://127.0.0.1:17002/ssh"],
            "ws:path=/ssh:tcp:17002:interface=127.0.0.1",
        ),
        (
            &["check", "--server", "ws://localhost:17002/ssh?x=1"],
            "ws:path=/ssh:tcp:17002:interface=127.0.0.1",
        ),
        (
            &[
                "check",
                "--client",
                "ws:localhost:17004:trustRoots=/etc/ssl/ca.pem",
            ],
            "wss:localhost:17004:trustRoots=/etc/ssl/ca.pem",
        ),
        (
            &["check", "--server", "wss:tcp:17051"],
            "ws:tls:path=/path:endpoint=tcp\\:17051",
        ),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!("did you mean `{fixed}`?")),
            "{args:?}: {err}"
        );
    }
    let (_, _, err) = run(&["check", "--server", "ws://127.0.0.1:17002/ssh"]);
    assert!(
        err.starts_with("`ws://127.0.0.1:17002/ssh` is a URL"),
        "{err}"
    );
    // The command says so at start too.
    let (code, _, err) = run(&["connect", "ws://127.0.0.1:17002/ssh"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`ws:127.0.0.1:17002:path=/ssh`"), "{err}");
    let (code, _, err) = run(&["relay", "ws://127.0.0.1:0/ssh", "tcp:127.0.0.1:9"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`ws:path=/ssh:tcp:0:interface=127.0.0.1`"),
        "{err}"
    );
}

/// Issue 31, item 2: misuse of `exec:` is refused at start, not at each connection: an
/// absolute path to nothing and a shell command line are usage errors (status 2) before
/// listening; a bare name not in PATH now is a warning after the `listening on` line.
#[tokio::test]
async fn exec_misuse_is_refused_at_start() {
    let (code, _, err) = run(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        "exec:/nonexistent/prog",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`/nonexistent/prog`: no such file"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
    let (code, _, err) = run(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        r#"exec:sh -c "echo hi""#,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean `exec:sh:-c:echo hi`?"), "{err}");
    let (code, _, err) = run(&["connect", r#"exec:sh -c "echo hi""#]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean `exec:sh:-c:echo hi`?"), "{err}");
    // A name that may appear in PATH later: the relay starts, and says so at once.
    let (_relay, _, mut rx) = start(cmd(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        "exec:no-such-program-endpoints-31",
    ]))
    .await;
    let warning = super::data_paths::line_with(&mut rx, "no-such-program-endpoints-31").await;
    assert!(warning.contains("is not in PATH now"), "{warning}");
}
