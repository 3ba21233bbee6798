//! Issue 24, item 1: the command shows what the library warns about (a subscriber on stderr,
//! `RUST_LOG`/`--log-level`, `--log-format json`). Issue 23, items 5 and 7: `--version`, a
//! help that explains every flag it lists, and a log line for each connection (peer, PROXY
//! source, bytes each way, how it ended) and for each failed TLS handshake, with its reason.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::data_paths::{BIN, pki, port_in, start, temp_dir};

/// `endpoints ARGS` with `env` (and no `RUST_LOG` but what `env` sets); the child, its first
/// stderr line (checked to be `listening on DESC`), and the rest of its lines.
async fn spawn(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    let (child, desc, rx) = start(cmd).await;
    (child, format!("listening on {desc}"), rx)
}

/// The next line containing `needle` within `secs` seconds, or `None`.
async fn line_within(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
    secs: u64,
) -> Option<String> {
    let wait = async {
        while let Some(l) = rx.recv().await {
            if l.contains(needle) {
                return Some(l);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(secs), wait)
        .await
        .ok()
        .flatten()
}

/// Item 1, case 1: `listen haproxy:tcp:0` without `trusted=` says on stderr that any client
/// can choose its address, after the `listening on` line, which stays first.
#[tokio::test]
async fn a_haproxy_listener_without_trusted_warns_on_stderr() {
    let (_c, first, mut rx) = spawn(
        &["listen", "haproxy:tcp:0:interface=127.0.0.1", "--echo"],
        &[],
    )
    .await;
    assert!(first.starts_with("listening on haproxy:"), "{first}");
    let w = line_within(&mut rx, "trusted=", 20)
        .await
        .expect("the trust warning");
    assert!(w.contains("WARN") && w.contains("any client"), "{w}");
}

/// Item 1, case 2: an `ssl:` key file that others can read (mode 644) is warned about.
#[tokio::test]
async fn an_ssl_key_readable_by_others_warns_on_stderr() {
    let dir = temp_dir("logs-key");
    let (_ca, key, cert) = pki(&dir);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let desc = format!(
        "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
        key.display(),
        cert.display()
    );
    let (_c, first, mut rx) = spawn(&["listen", &desc, "--echo"], &[]).await;
    assert!(first.starts_with("listening on ssl:"), "{first}");
    let w = line_within(&mut rx, "WARN", 20)
        .await
        .expect("the key-mode warning");
    assert!(w.contains("644") || w.contains("readable"), "{w}");
}

/// Item 1, cases 3 and 4: an ACME cache that cannot be written, and an order that fails (the
/// directory refuses connections), are warned about while the listener serves on.
#[tokio::test]
async fn an_unwritable_acme_cache_and_a_failed_order_warn_on_stderr() {
    let dir = temp_dir("logs-acme");
    // A regular file where the cache directory should be: not writable even by root.
    let file = dir.join("file");
    std::fs::write(&file, b"").expect("file");
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let desc = format!(
        "acme:domains=example.com:cache={}:directory=https\\://127.0.0.1\\:{refused}/dir:tcp:0:interface=127.0.0.1",
        endpoints::escape(&file.join("cache").display().to_string())
    );
    let (_c, first, mut rx) = spawn(&["listen", &desc, "--echo"], &[]).await;
    assert!(first.starts_with("listening on acme:"), "{first}");
    let cache = line_within(&mut rx, "cache", 20)
        .await
        .expect("the cache warning");
    assert!(
        cache.contains("WARN") && cache.contains("Not a directory"),
        "{cache}"
    );
    let failed = line_within(&mut rx, "retrying", 20)
        .await
        .expect("the failed order");
    assert!(failed.contains("WARN"), "{failed}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 1: `--log-format json` gives one JSON object a line; `--log-level off` and `RUST_LOG`
/// filter; a bad `--log-level` is a usage error.
#[tokio::test]
async fn log_format_and_level_are_honoured() {
    let desc = "haproxy:tcp:0:interface=127.0.0.1";
    let (_c, first, mut rx) = spawn(&["listen", desc, "--echo", "--log-format", "json"], &[]).await;
    assert!(first.starts_with("listening on "), "{first}");
    let w = line_within(&mut rx, "trusted=", 20).await.expect("a line");
    let v: serde_json::Value = serde_json::from_str(&w).expect("a JSON object");
    assert_eq!(v["level"], "WARN", "{w}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("trusted=")),
        "{w}"
    );

    // Quiet: the warning is filtered out; nothing but the listening line within 2 s (the
    // warning comes within milliseconds of it when it is not filtered).
    for (args, env) in [
        (vec!["--log-level", "off"], vec![]),
        (vec![], vec![("RUST_LOG", "error")]),
    ] {
        let mut a = vec!["listen", desc, "--echo"];
        a.extend(args);
        let (_c, first, mut rx) = spawn(&a, &env).await;
        assert!(first.starts_with("listening on "), "{first}");
        assert_eq!(
            line_within(&mut rx, "trusted=", 2).await,
            None,
            "{a:?} {env:?}"
        );
    }

    let out = Command::new(BIN)
        .args(["--log-level", "loud", "types"])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-level: expected"));
}

/// Item 5 of issue 23: `--version`, `-V`.
#[tokio::test]
async fn version_and_help() {
    for flag in ["--version", "-V"] {
        let out = Command::new(BIN).arg(flag).output().await.expect("run");
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("endpoints {}", env!("CARGO_PKG_VERSION"))
        );
    }
    // The help of each subcommand: usage::every_subcommand_has_a_help_that_explains_each_flag
    // (clap's output, issue 31 item 1).
}

/// Item 7 of issue 23: `listen --echo` logs each connection with its peer, the PROXY source
/// where there is one, the bytes and how it ended; a failed TLS handshake is logged with its
/// reason.
#[tokio::test]
async fn listen_logs_each_connection_and_failed_handshakes() {
    let (_c, first, mut rx) = spawn(
        &[
            "listen",
            "haproxy:trusted=127.0.0.0/8:tcp:0:interface=127.0.0.1",
            "--echo",
        ],
        &[],
    )
    .await;
    let port = port_in(first.trim_start_matches("listening on "));
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(b"PROXY TCP4 192.0.2.9 127.0.0.1 5555 443\r\nhello")
        .await
        .expect("write");
    s.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.expect("echo");
    assert_eq!(back, b"hello");
    let l = line_within(&mut rx, "echo connection from", 20)
        .await
        .expect("a line for the connection");
    assert!(l.contains("192.0.2.9:5555"), "the PROXY source: {l}");
    assert!(
        l.contains("connected from 127.0.0.1:"),
        "the socket's peer: {l}"
    );
    assert!(
        l.contains("5 bytes echoed") && l.contains("ended cleanly"),
        "{l}"
    );

    // A TLS listener, and a client that sends something else than a TLS hello.
    let dir = temp_dir("logs-handshake");
    let (_ca, key, cert) = pki(&dir);
    let (_t, first, mut rx) = spawn(
        &[
            "listen",
            &format!(
                "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
                key.display(),
                cert.display()
            ),
            "--echo",
        ],
        &[],
    )
    .await;
    let port = port_in(first.trim_start_matches("listening on "));
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut sink)).await;
    let l = line_within(&mut rx, "upgrade failed", 20)
        .await
        .expect("the failed handshake is logged");
    assert!(l.contains("127.0.0.1:"), "the peer: {l}");
    assert!(
        l.len() > l.find("upgrade failed: ").expect("a reason") + 16,
        "the reason: {l}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
