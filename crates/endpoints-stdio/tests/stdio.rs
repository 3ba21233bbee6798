//! `stdio:` in a child process: the connection is the child's stdin and stdout.
//!
//! Its own harness (`harness = false`): with `ENDPOINTS_STDIO_CHILD` set, this binary is the
//! child (it serves its stdio connection, echoing it upper-cased); otherwise it runs the
//! tests, one of which starts it as the child.

use std::process::{ExitCode, Stdio};

use endpoints_core::ErrorKind;
use endpoints_core::registry::build_server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_stdio as _;

/// A test: `Err` says what went wrong.
type Test = fn(&tokio::runtime::Runtime) -> Result<(), String>;

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os("ENDPOINTS_STDIO_CHILD").is_some() {
        return rt.block_on(child());
    }
    let tests: [(&str, Test); 2] = [
        ("conformance", |_| conformance()),
        ("one_connection_of_stdin_and_stdout", |rt| {
            rt.block_on(parent())
        }),
    ];
    println!("\nrunning {} tests", tests.len());
    let mut failed = 0;
    for (name, test) in tests {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&rt))) {
            Ok(Ok(())) => println!("test {name} ... ok"),
            Ok(Err(why)) => {
                println!("test {name} ... FAILED\n    {why}");
                failed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED (panicked)");
                failed += 1;
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
        2 - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn conformance() -> Result<(), String> {
    endpoints_conformance::Suite::server("stdio")
        .valid("stdio")
        .valid("stdio:")
        .valid("STDIO")
        .invalid("stdio:foo=1:bar", ErrorKind::UnknownParameter)
        .invalid("stdio:x", ErrorKind::UnknownParameter)
        .run();
    Ok(())
}

/// The child: echo the one stdio connection upper-cased; a second accept must fail.
async fn child() -> ExitCode {
    let mut l = build_server(&"stdio:".parse().expect("parse"))
        .expect("build")
        .listen()
        .await
        .expect("listen");
    let mut conn = l.accept().await.expect("the stdio connection");
    let mut input = Vec::new();
    conn.read_to_end(&mut input).await.expect("read stdin");
    conn.write_all(&input.to_ascii_uppercase())
        .await
        .expect("write stdout");
    conn.shutdown().await.expect("flush");
    if l.accept().await.is_ok() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

async fn parent() -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(me)
        .env("ENDPOINTS_STDIO_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin
        .write_all(b"hello over stdio\n")
        .await
        .map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("child failed: {}", out.status));
    }
    if out.stdout != b"HELLO OVER STDIO\n" {
        return Err(format!(
            "child wrote {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(())
}
