//! Interop with real Twisted (26.10, `pip install "twisted[tls]==26.10.0"`): our `tls:` and
//! `ssl:` clients against Twisted's `ssl:` server endpoint (tests/twisted/ssl_echo.py).
//! Without Twisted these tests print why and pass, except under `CI=true`.

use crate::common;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::Pki;
use endpoints_core::registry::build_client;
use endpoints_tls::TlsInfo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use endpoints_tcp as _;

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/twisted")
        .join(name)
        .display()
        .to_string()
}

fn twisted_available() -> bool {
    endpoints_test_support::peers::twisted()
}

/// Twisted's `serverFromString(reactor, description)`, echoing; the child (it exits when its
/// stdin closes, that is when the child is dropped) and its port.
async fn twisted_server(description: &str) -> (Child, u16) {
    let mut child = Command::new("python3")
        .arg(script("ssl_echo.py"))
        .arg(description)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("Twisted printed its port within 30 s")
        .expect("read")
        .expect("a line");
    let port = line
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("Twisted did not listen on `{description}`: {line}"));
    (child, port)
}

async fn echo(desc: &str) -> std::io::Result<TlsInfo> {
    let client = build_client(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c = client.connect().await?;
    c.write_all(b"hello twisted").await?;
    let mut buf = [0u8; 13];
    c.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"hello twisted");
    Ok(c.extensions().get::<TlsInfo>().cloned().expect("TlsInfo"))
}

#[tokio::test]
async fn our_clients_against_twisted_ssl_server() {
    if !twisted_available() {
        return;
    }
    let pki = Pki::new("twisted-ssl");
    let (key, cert, ca) = (
        pki.path("server-key.pem"),
        pki.path("server-cert.pem"),
        pki.path("ca.pem"),
    );
    let (_twisted, port) = twisted_server(&format!(
        "ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1"
    ))
    .await;

    let info = echo(&format!("tls:localhost:{port}:trustRoots={ca}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.version, Some("TLSv1.3"));
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    assert!(
        !info.peer_certificates.is_empty(),
        "Twisted sent its certificate"
    );
    // By IP: verified against the IP SAN, no SNI.
    let info = echo(&format!("tls:127.0.0.1:{port}:trustRoots={ca}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.sni, None);
    // TLS 1.3 only, and our legacy ssl: client.
    echo(&format!(
        "tls:localhost:{port}:trustRoots={ca}:minVersion=1.3"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    echo(&format!(
        "ssl:localhost:{port}:caCertsDir={}",
        pki.dir.display()
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Refusals read the same against Twisted as against our server.
    let e = echo(&format!("tls:localhost:{port}"))
        .await
        .expect_err("a private CA");
    assert!(
        e.to_string()
            .contains("was issued by `endpoints test CA`, which is not in"),
        "{e}"
    );
    let e = echo(&format!(
        "tls:localhost:{port}:trustRoots={ca}:sni=twisted.example"
    ))
    .await
    .expect_err("wrong name");
    assert!(
        e.to_string()
            .contains("is for `localhost`, `127.0.0.1`, `::1`, not `twisted.example`"),
        "{e}"
    );
}

#[tokio::test]
async fn our_client_against_twisted_with_a_self_signed_certificate() {
    if !twisted_available() {
        return;
    }
    let pki = Pki::new("twisted-self");
    // rcgen's self-signed CA:TRUE certificate for localhost, with its key in one file.
    let both = pki.path("self-ca-server.pem");
    let (_twisted, port) =
        twisted_server(&format!("ssl:0:privateKey={both}:interface=127.0.0.1")).await;
    echo(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("self-ca.pem")
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}
