//! issue 27 items 1 and 2: writes go to the child's stdin, reads come from its stdout, a
//! shutdown closes stdin; environment, working directory and stderr as described; the exit
//! status is part of the stream; a program that cannot start fails `connect()`.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use endpoints_exec::{ExitError, MAX_LOGGED};

/// Write `input`, shut the write side down, read to the end.
async fn run(text: &str, input: &[u8]) -> io::Result<Vec<u8>> {
    let conn = connect(text).await?;
    let (mut r, mut w) = tokio::io::split(conn);
    let writer = async {
        w.write_all(input).await?;
        w.shutdown().await
    };
    let reader = async {
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.map(|_| out)
    };
    let (wrote, read) = tokio::time::timeout(PATIENCE, async { tokio::join!(writer, reader) })
        .await
        .expect("the child answered within the patience bound");
    wrote?;
    read
}

async fn run_text(text: &str) -> String {
    let out = run(text, b"")
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    String::from_utf8(out).expect("utf-8")
}

fn exit_error(e: &io::Error) -> &ExitError {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ExitError>())
        .unwrap_or_else(|| panic!("not an ExitError: {e}"))
}

#[tokio::test]
async fn four_mib_through_cat_and_back_with_a_half_close() {
    let payload: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i * 31 + i / 4093) as u8)
        .collect();
    let back = run("exec:cat", &payload).await.expect("cat");
    assert!(
        back == payload,
        "cat gave back {} bytes, not the same",
        back.len()
    );
}

#[tokio::test]
async fn shutting_down_the_write_side_closes_stdin_and_reading_goes_on() {
    // wc reads stdin to its end, then answers: only a closed stdin makes it answer.
    let out = run("exec:wc:-c", b"12345").await.expect("wc");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "5");
}

#[tokio::test]
async fn no_shell_unless_one_is_named() {
    assert_eq!(run_text("exec:echo:$HOME:*:a;b").await, "$HOME * a;b\n");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(run_text("exec:sh:-c:echo $HOME").await, format!("{home}\n"));
}

#[tokio::test]
async fn the_environment_is_inherited_with_additions_and_removals() {
    let path = std::env::var("PATH").expect("PATH is set for tests");
    let out = run_text(
        r#"exec:sh:-c:echo "$PATH|$ADDED|${HOME-removed}|$TWICE":env=ADDED=a b=c:unsetEnv=HOME:env=TWICE=1:env=TWICE=2"#,
    )
    .await;
    assert_eq!(out, format!("{path}|a b=c|removed|2\n"));
    // clearEnv=1: only what env= adds.
    let out = run_text("exec:/usr/bin/env:clearEnv=1:env=ONLY=x").await;
    assert_eq!(out, "ONLY=x\n");
}

#[tokio::test]
async fn the_working_directory_is_cwd() {
    let dir = temp_dir("cwd");
    let text = format!(
        "exec:sh:-c:pwd -P:cwd={}",
        endpoints_core::escape(&dir.display().to_string())
    );
    let real = std::fs::canonicalize(&dir).expect("canonical");
    assert_eq!(run_text(&text).await, format!("{}\n", real.display()));
}

#[tokio::test]
async fn exit_status_zero_is_a_clean_end() {
    assert_eq!(run_text("exec:sh:-c:echo done; exit 0").await, "done\n");
}

#[tokio::test]
async fn exit_status_3_fails_the_read_naming_the_program_the_status_and_stderr() {
    let e = run(
        "exec:sh:-c:echo out; echo first >&2; echo the last words >&2; exit 3",
        b"",
    )
    .await
    .expect_err("exit 3 is an error");
    let x = exit_error(&e);
    assert_eq!(x.code(), Some(3));
    assert_eq!(x.program, "sh");
    assert_eq!(x.stderr, ["first", "the last words"]);
    let msg = e.to_string();
    for want in [
        "`sh`",
        "exited with status 3",
        "the last words",
        "exec:sh:-c:",
    ] {
        assert!(msg.contains(want), "`{want}` not in: {msg}");
    }
}

#[tokio::test]
async fn the_data_before_a_failed_exit_is_delivered_first() {
    let mut conn = connect("exec:sh:-c:echo partial; exit 7")
        .await
        .expect("start");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let err = loop {
        match tokio::time::timeout(PATIENCE, conn.read(&mut buf))
            .await
            .expect("bounded")
        {
            Ok(0) => panic!("a clean end after exit 7"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(got, b"partial\n");
    assert_eq!(exit_error(&err).code(), Some(7));
    // The error stays: a second read says the same.
    let again = conn.read(&mut buf).await.expect_err("still failed");
    assert_eq!(exit_error(&again).code(), Some(7));
}

#[tokio::test]
async fn a_signal_fails_the_read_too() {
    let e = run("exec:sh:-c:kill -9 $$", b"").await.expect_err("killed");
    assert_eq!(exit_error(&e).signal(), Some(9));
    assert!(e.to_string().contains("killed by signal 9"), "{e}");
}

#[tokio::test]
async fn with_stderr_dropped_or_inherited_the_error_says_where_it_went() {
    let e = run("exec:sh:-c:exit 4:stderr=drop", b"")
        .await
        .expect_err("exit 4");
    assert!(exit_error(&e).stderr.is_empty());
    assert!(e.to_string().contains("stderr=drop"), "{e}");
    let e = run("exec:sh:-c:exit 5:stderr=inherit", b"")
        .await
        .expect_err("exit 5");
    assert!(e.to_string().contains("stderr=inherit"), "{e}");
}

#[tokio::test]
async fn a_program_that_is_not_found_fails_connect_with_the_path_searched() {
    let e = connect("exec:no-such-program-endpoints-27")
        .await
        .expect_err("missing");
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let path = std::env::var("PATH").expect("PATH");
    let msg = e.to_string();
    assert!(
        msg.contains("cannot connect to `exec:no-such-program-endpoints-27"),
        "{msg}"
    );
    assert!(msg.contains(&format!("PATH={path}")), "{msg}");

    let e = connect("exec:no-such-program-endpoints-27:env=PATH=/nowhere\\:/also/not")
        .await
        .expect_err("missing");
    assert!(
        e.to_string().contains("searched PATH=/nowhere:/also/not"),
        "{e}"
    );

    // An absolute path to nothing is refused when the description is built (issue 31 item
    // 2), not at each connection.
    let d = "exec:/nonexistent/dir/prog".parse().expect("parses");
    let e = endpoints_core::registry::build_client(&d)
        .map(|_| ())
        .expect_err("missing");
    assert!(
        e.to_string()
            .contains("`/nonexistent/dir/prog`: no such file"),
        "{e}"
    );
}

/// Issue 31 item 2: a shell command line in the program's field is refused when built, with
/// the fields it means (`exec:` runs no shell).
#[test]
fn a_shell_command_line_is_refused_with_its_fields() {
    for (text, fixed) in [
        (r#"exec:sh -c "echo hi""#, "exec:sh:-c:echo hi"),
        (
            r#"exec:sh -c 'echo a\:b':stderr=drop"#,
            r"exec:sh:-c:echo a\:b:stderr=drop",
        ),
        ("exec:cat -u", "exec:cat:-u"),
    ] {
        let d = text.parse().expect("parses");
        let e = endpoints_core::registry::build_client(&d)
            .map(|_| ())
            .expect_err(text);
        assert_eq!(e.suggestion(), Some(fixed), "{text}: {e}");
        assert!(e.message().contains("runs no shell"), "{e}");
    }
}

#[tokio::test]
async fn a_file_that_is_not_executable_fails_connect() {
    let dir = temp_dir("noexec");
    let file = dir.join("script.sh");
    std::fs::write(&file, "#!/bin/sh\necho hi\n").expect("write");
    let e = connect(&format!("exec:{}", file.display()))
        .await
        .expect_err("not executable");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("is not executable"), "{e}");
}

#[tokio::test]
async fn a_missing_working_directory_fails_connect_naming_it() {
    let e = connect("exec:cat:cwd=/nonexistent/endpoints-27")
        .await
        .expect_err("no dir");
    assert!(
        e.to_string()
            .contains("working directory `/nonexistent/endpoints-27`"),
        "{e}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn stderr_is_logged_line_by_line_at_warn_with_the_program_name() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let out = run_text("exec:sh:-c:echo one >&2; printf 'two\\\\033[0m\\\\n' >&2; echo ok").await;
    assert_eq!(out, "ok\n");
    let lines = capture.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("message=one") && lines[0].contains("program=sh"),
        "{lines:?}"
    );
    assert!(lines[0].contains("pid="), "{lines:?}");
    // Control characters are escaped: the child cannot forge log lines.
    assert!(lines[1].contains(r"two\u{1b}[0m"), "{lines:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn one_mib_of_stderr_neither_blocks_the_child_nor_floods_the_log() {
    if !have("python3", "--version", "python3") {
        return;
    }
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    // 16384 lines of 63 bytes and a newline: 1 MiB, then the stdin echoed.
    let prog = r"exec:python3:-c:import sys; [sys.stderr.write('e' * 63 + '\\n') for _ in range(16384)]; sys.stderr.flush(); sys.stdout.write(sys.stdin.read())";
    let out = run(prog, b"still talking").await.expect("python");
    assert_eq!(out, b"still talking");
    let lines = capture.lines();
    // MAX_LOGGED lines, the line saying the rest is not logged, the count at the end.
    assert_eq!(
        lines.len(),
        MAX_LOGGED + 2,
        "{:?}",
        &lines[lines.len().saturating_sub(3)..]
    );
    assert!(
        lines[MAX_LOGGED].contains("the rest is not"),
        "{}",
        lines[MAX_LOGGED]
    );
    let last = &lines[MAX_LOGGED + 1];
    assert!(
        last.contains(&format!("{} more lines", 16384 - MAX_LOGGED)),
        "{last}"
    );
}

#[tokio::test]
async fn a_child_that_closes_stdout_but_keeps_running_ends_the_stream_when_it_exits() {
    // stdout closed at once; the child then reads stdin to its end and exits 0.
    let mut conn = connect("exec:sh:-c:exec >&-; cat >/dev/null; exit 0")
        .await
        .expect("start");
    let mut buf = [0u8; 16];
    // Not an end of stream yet: the program runs. (A pending read, not a timed bound: 300 ms
    // only decides how long we look.)
    let early = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the read ended while the program ran: {early:?}"
    );
    conn.write_all(b"ignored")
        .await
        .expect("stdin is still open");
    conn.shutdown().await.expect("close stdin");
    let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
        .await
        .expect("bounded")
        .expect("exit 0 is a clean end");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn writing_after_the_shutdown_is_an_error_naming_the_program() {
    let mut conn = connect("exec:cat").await.expect("start");
    conn.shutdown().await.expect("close stdin");
    let e = conn.write_all(b"late").await.expect_err("stdin closed");
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert!(e.to_string().contains("stdin of `cat` is closed"), "{e}");
}

#[tokio::test]
async fn writing_to_a_child_that_exited_is_a_broken_pipe_naming_it() {
    let mut conn = connect("exec:true").await.expect("start");
    let pid = pid_of(&conn);
    wait_gone(pid).await;
    let big = vec![0u8; 1 << 20];
    let e = tokio::time::timeout(PATIENCE, conn.write_all(&big))
        .await
        .expect("bounded")
        .expect_err("nobody reads");
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    assert!(e.to_string().contains("`true`"), "{e}");
}
