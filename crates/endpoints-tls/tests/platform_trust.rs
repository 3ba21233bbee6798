//! The default trust of `tls:` is the platform's store, which `SSL_CERT_FILE` replaces (as for
//! OpenSSL, curl and Go); with an empty store, Mozilla's compiled-in roots.
//!
//! The store is read once per process and the environment is process-wide, so each case runs
//! in a child process: this test binary again, running one `#[ignore]`d test with the
//! environment set before anything reads it.

use endpoints_test_support as common;

use std::process::Command;
use std::time::Duration;

use common::Pki;
use endpoints_core::Listener;
use endpoints_core::registry::{build_client, build_server};

use endpoints_tcp as _;
use endpoints_tls as _;

const PORT_VAR: &str = "ENDPOINTS_TLS_TEST_PORT";

/// An echoing `ssl:` server with the test PKI's `server.pem` (signed by `ca.pem`).
async fn ssl_server(pki: &Pki) -> (u16, tokio::task::JoinHandle<()>) {
    let desc = format!(
        "ssl:0:privateKey={}:interface=127.0.0.1",
        pki.path("server.pem")
    );
    let mut l: Box<dyn Listener> = build_server(&desc.parse().expect("parse"))
        .expect("build")
        .listen()
        .await
        .expect("listen");
    let port = l.local_addr().expect("addr").ip().expect("ip").port();
    let task = tokio::spawn(async move {
        while let Ok(conn) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, task)
}

/// Run the ignored test `name` of this binary with `SSL_CERT_FILE=cert_file` and the
/// server's port; it must pass.
async fn run_child(name: &str, cert_file: &str, port: u16) {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("SSL_CERT_FILE", cert_file)
    .env_remove("SSL_CERT_DIR")
    .env(PORT_VAR, port.to_string());
    // The child connects to the server running in this process: wait off the runtime.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("the child finished within 60 s")
    .expect("join")
    .expect("the child ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child `{name}` failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child `{name}` did not run:\n{text}"
    );
}

fn child_port() -> u16 {
    std::env::var(PORT_VAR)
        .expect("run by its parent test, which sets the port")
        .parse()
        .expect("a port")
}

async fn connect(desc: &str) -> std::io::Result<endpoints_core::Connection> {
    build_client(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
}

#[tokio::test]
async fn ssl_cert_file_is_the_default_trust() {
    let pki = Pki::new("platform-file");
    let (port, _srv) = ssl_server(&pki).await;
    run_child("child_trusts_ssl_cert_file", &pki.path("ca.pem"), port).await;
}

#[tokio::test]
#[ignore = "run in a child process by ssl_cert_file_is_the_default_trust"]
async fn child_trusts_ssl_cert_file() {
    let port = child_port();
    // No trustRoots: the platform store, here SSL_CERT_FILE with our private CA.
    connect(&format!("tls:localhost:{port}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    connect(&format!("ssl:localhost:{port}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    connect(&format!("tls:localhost:{port}:trustRoots=system"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // trustRoots=mozilla asks for Mozilla's set only: the private CA is not in it.
    let e = connect(&format!("tls:localhost:{port}:trustRoots=mozilla"))
        .await
        .expect_err("a private CA is not one of Mozilla's");
    assert!(
        e.to_string()
            .contains("which is not in Mozilla's roots (trustRoots=mozilla)"),
        "{e}"
    );
}

#[tokio::test]
async fn an_empty_platform_store_falls_back_to_mozilla() {
    let pki = Pki::new("platform-empty");
    let empty = pki.dir.join("empty-bundle.pem");
    std::fs::write(&empty, "").expect("write");
    let (port, _srv) = ssl_server(&pki).await;
    run_child(
        "child_with_an_empty_store",
        &empty.display().to_string(),
        port,
    )
    .await;
}

#[tokio::test]
#[ignore = "run in a child process by an_empty_platform_store_falls_back_to_mozilla"]
async fn child_with_an_empty_store() {
    let port = child_port();
    let e = connect(&format!("tls:localhost:{port}"))
        .await
        .expect_err("the private CA is nowhere");
    assert!(
        e.to_string().contains(
            "which is not in Mozilla's roots (compiled in; the system trust store is empty)"
        ),
        "{e}"
    );
    // Asking for the system store explicitly is an error that says what to do.
    let e = build_client(
        &format!("tls:localhost:{port}:trustRoots=system")
            .parse()
            .expect("parse"),
    )
    .expect_err("no system store");
    assert!(
        e.message()
            .contains("no certificates in the system trust store"),
        "{e}"
    );
}
