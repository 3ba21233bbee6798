//! No secret in text the command shows: a parse error quotes its description with the
//! values of secret parameters (`password=`, `token=`, `socksPassword=`, `env=NAME=`) as
//! `***`, the caret still under the place, at any nesting level and in `run`'s file errors.

use std::process::Stdio;

use super::cli::run;

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

#[test]
fn a_parse_error_quotes_a_proxy_password_as_stars_with_the_caret_in_place() {
    let (code, _, err) = run(&[
        "check",
        "--client",
        "socks5:example.com:80:proxy=tcp\\:127.0.0.1\\:1:user=u:password=hunter2:bogus=1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[1],
        "  socks5:example.com:80:proxy=tcp\\:127.0.0.1\\:1:user=u:password=***:bogus=1"
    );
    let bogus = lines[1].find("bogus").expect("bogus shown");
    assert_eq!(lines[2], format!("{}^^^^^", " ".repeat(bogus)));
}

#[test]
fn an_error_about_the_secret_itself_points_at_the_stars() {
    // `password=` without `user=`: the error is about the value.
    let (code, _, err) = run(&["check", "--client", "socks5:h:1:password=hunter2"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("  socks5:h:1:password=***\n"), "{err}");
}

#[test]
fn nested_and_other_secrets_are_hidden_too() {
    for (desc, secret) in [
        (
            "tls:h:443:endpoint=socks5\\:h\\:1\\:user=u\\:password=hunter2\\:bogus=1",
            "hunter2",
        ),
        (
            "tls:h:443:endpoint=socks5\\:h\\:1\\:user=u\\:password=hun\\\\\\:ter2\\:bogus=1",
            "ter2",
        ),
        ("ws:ws://h/:token=t0psecret:bogus=1", "t0psecret"),
        ("exec:env=API_TOKEN=s3cr3t:cmd=true:nope=1", "s3cr3t"),
        (
            "tor:host=h:port=1:socksUsername=u:socksPassword=pw9z:bogus=1",
            "pw9z",
        ),
    ] {
        let (code, _, err) = run(&["check", "--client", desc]);
        assert_eq!(code, 2, "{desc}: {err}");
        assert!(!err.contains(secret), "{desc}: the secret is shown: {err}");
        assert!(err.contains("***"), "{desc}: {err}");
    }
}

#[test]
fn run_file_errors_hide_secrets_and_keep_the_files_column() {
    let dir = std::env::temp_dir().join(format!("endpoints-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("t.toml");
    std::fs::write(
        &file,
        "[tunnel.a]\nlisten = \"tcp:0:interface=127.0.0.1\"\nconnect = \"socks5:h:1:proxy=tcp\\\\:127.0.0.1\\\\:1:user=u:password=hunter2:bogus=1\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(BIN)
        .args(["run", "--check"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    assert!(err.contains("password=***"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
