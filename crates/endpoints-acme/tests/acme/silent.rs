//! Issue 24 item 3: an ACME directory that accepts TLS and then says nothing (a real
//! `openssl s_server -quiet`). Every request is bounded: the attempt fails with a timeout,
//! which is logged, kept in `last_error`, and retried with backoff. Tokio's clock is paused
//! (it moves on when every task waits), so the request bounds (30 s a request) pass at once.

use crate::common;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use endpoints_tcp as _;

/// `openssl s_server -quiet` on a free port of 127.0.0.1 with a certificate for 127.0.0.1;
/// returns the child (killed when dropped), the port and the CA file.
fn silent_https_server(dir: &std::path::Path) -> Option<(Child, u16, PathBuf)> {
    if !endpoints_conformance::peer_program("openssl", "version", "openssl") {
        return None;
    }
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "silent test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let (ca_path, cert, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).expect("write");
    std::fs::write(&cert, leaf.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key_path)
        // Its stdin stays open and empty: it never writes to a client.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_server");
    // Up when it accepts a TCP connection (real time, bounded: 300 x 20 ms).
    let up = (0..300).any(|_| {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(20));
        }
        ok
    });
    assert!(up, "openssl s_server did not start listening within 6 s");
    Some((child, port, ca_path))
}

#[tokio::test(start_paused = true)]
async fn a_directory_that_never_answers_is_a_timeout_failure_with_backoff() {
    common::capture::install();
    let dir = std::env::temp_dir().join(format!("endpoints-acme-silent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let Some((_server, port, ca)) = silent_https_server(&dir) else {
        return;
    };
    let desc = format!(
        "acme:domains=test.example:cache={}:directory=https\\://127.0.0.1\\:{port}/dir:trustRoots={}:retry=1:tcp:0:interface=127.0.0.1",
        dir.join("cache").display(),
        ca.display()
    );
    let ep = endpoints_acme::build(&desc.parse().expect("parse")).unwrap_or_else(|e| panic!("{e}"));
    let mut status = ep.status();
    let listener = endpoints_core::ServerEndpoint::listen(&ep)
        .await
        .expect("listen");
    // Virtual time: an hour is far past any bound of a request (30 s) or an order.
    let s = tokio::time::timeout(
        Duration::from_secs(3600),
        status.wait_for(|s| s.failures >= 2),
    )
    .await
    .expect("the silent directory became failures, not a hang")
    .expect("status")
    .clone();
    let e = s.last_error.expect("the failure is kept");
    println!("{e}");
    assert!(
        e.contains(&format!("https://127.0.0.1:{port}/dir")),
        "names the URL: {e}"
    );
    // The first step: the directory, then the new account (3 requests at most, 30 s each).
    assert!(
        e.contains("no answer within 90 s") && e.contains("to create an account"),
        "says it timed out, and doing what: {e}"
    );
    let logged = common::capture::lines_with(&["WARN", "no answer within 90 s", "retrying in"]);
    assert!(logged.len() >= 2, "each timeout is logged: {logged:?}");
    assert!(
        logged[0].contains("retrying in 1s") && logged[1].contains("retrying in 2s"),
        "{logged:?}"
    );
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
