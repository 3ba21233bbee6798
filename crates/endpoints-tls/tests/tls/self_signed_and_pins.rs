//! A self-signed server certificate listed in `trustRoots=` (the usual `openssl req -x509`
//! one, marked CA:TRUE), and `pin=sha256/<base64>` (curl's `--pinnedpubkey`).

use crate::common;
use std::process::Command;

use common::Pki;
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{ErrorKind, Listener};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;
use endpoints_tls as _;

/// An echoing `ssl:` server on 127.0.0.1; its port.
async fn ssl_server(key: &str, cert: &str) -> (u16, tokio::task::JoinHandle<()>) {
    let desc = format!("ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1");
    let mut l: Box<dyn Listener> = build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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

/// Connect, send a line, read it back.
async fn echo(desc: &str) -> std::io::Result<()> {
    let client = build_client(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c = client.connect().await?;
    c.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl ran");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// curl's documented recipe for a public key pin, run with real openssl.
fn openssl_pin(cert: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A"
        ))
        .output()
        .expect("sh ran");
    assert!(out.status.success(), "pin recipe failed");
    format!("sha256/{}", String::from_utf8_lossy(&out.stdout).trim())
}

#[tokio::test]
async fn openssl_self_signed_certificate_listed_in_trust_roots() {
    if !endpoints_conformance::peer_program("openssl", "version", "openssl") {
        return;
    }
    let pki = Pki::new("self-signed-openssl");
    let trust = pki.dir.join("trusted");
    std::fs::create_dir_all(&trust).expect("dir");
    let (cert, key) = (
        trust.join("cert.pem").display().to_string(),
        pki.dir.join("key.pem").display().to_string(),
    );
    // The most common recipe; OpenSSL marks the certificate CA:TRUE.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-days",
        "30",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
    ]);
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &cert])
        .output()
        .expect("openssl x509");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "the recipe no longer makes a CA certificate"
    );
    let (port, _srv) = ssl_server(&key, &cert).await;
    let dir = trust.display();

    // Listed (a directory of *.pem, or the file itself): accepted.
    echo(&format!("tls:localhost:{port}:trustRoots={dir}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    echo(&format!("tls:localhost:{port}:trustRoots={cert}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    echo(&format!("ssl:localhost:{port}:caCertsDir={dir}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The host name is still checked.
    let e = echo(&format!(
        "tls:localhost:{port}:trustRoots={dir}:sni=other.example"
    ))
    .await
    .expect_err("wrong name");
    assert!(
        e.to_string()
            .contains("the server's certificate is for `localhost`, not `other.example`"),
        "{e}"
    );
    // Not listed: the default and Mozilla sets never accept it.
    for trust in ["", ":trustRoots=mozilla"] {
        let e = echo(&format!("tls:localhost:{port}{trust}"))
            .await
            .expect_err("not listed");
        assert!(
            e.to_string()
                .contains("the server presents a CA certificate `localhost` (basicConstraints CA:TRUE) as its own certificate"),
            "{e}"
        );
    }

    // Its pin from curl's recipe with real openssl: the same pin here.
    let pin = openssl_pin(&cert);
    echo(&format!("tls:localhost:{port}:trustRoots=none:pin={pin}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    echo(&format!("tls:localhost:{port}:trustRoots={cert}:pin={pin}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `sha256/<base64>` of a PEM certificate's SubjectPublicKeyInfo.
fn pin(cert_file: &str) -> String {
    let der = CertificateDer::from_pem_file(cert_file).expect("a certificate");
    let cert = webpki::EndEntityCert::try_from(&der).expect("parses");
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        cert.subject_public_key_info().as_ref(),
    );
    format!("sha256/{}", base64(digest.as_ref()))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(A[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test]
async fn pins() {
    let pki = Pki::new("pins");
    let srv = pki.path("server.pem");
    let (port, _srv) = ssl_server(&srv, &srv).await;
    let ca = pki.path("ca.pem");
    let right = pin(&srv);
    let wrong = pin(&pki.path("other-server.pem"));

    // Right pin, on top of normal verification.
    echo(&format!("tls:localhost:{port}:trustRoots={ca}:pin={right}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Several pins (rotation): any one matches.
    echo(&format!(
        "tls:localhost:{port}:trustRoots={ca}:pin={wrong},{right}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // curl's spelling.
    let curl_style = right.replacen("sha256/", "sha256//", 1);
    echo(&format!(
        "tls:localhost:{port}:trustRoots={ca}:pin={curl_style}"
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Wrong pin: refused, saying which key the server has.
    let e = echo(&format!("tls:localhost:{port}:trustRoots={ca}:pin={wrong}"))
        .await
        .expect_err("wrong pin");
    assert!(
        e.to_string().contains(&format!(
            "the server's public key (certificate `rcgen self signed cert`) is `{right}`, which matches no `pin=` ({wrong}): if the server's key changed on purpose, add the new pin"
        )),
        "{e}"
    );
    // A right pin does not replace verification unless trustRoots=none says so.
    let e = echo(&format!(
        "tls:localhost:{port}:trustRoots={}:pin={right}",
        pki.path("other-ca.pem")
    ))
    .await
    .expect_err("pin is in addition");
    assert!(e.to_string().contains("which is not in"), "{e}");
}

#[tokio::test]
async fn pin_alone_with_trust_roots_none() {
    let pki = Pki::new("pins-none");
    // Self-signed, not a CA, trusted by nobody.
    let srv = pki.path("self-leaf-server.pem");
    let (port, _srv) = ssl_server(&srv, &srv).await;
    let right = pin(&srv);
    let wrong = pin(&pki.path("server.pem"));
    echo(&format!("tls:localhost:{port}:trustRoots=none:pin={right}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = echo(&format!("tls:localhost:{port}:trustRoots=none:pin={wrong}"))
        .await
        .expect_err("wrong pin");
    assert!(e.to_string().contains("which matches no `pin=`"), "{e}");
    // Without trustRoots=none, the pin is on top of the default trust: refused.
    let e = echo(&format!("tls:localhost:{port}:pin={right}"))
        .await
        .expect_err("not trusted");
    assert!(e.to_string().contains("is self-signed and not in"), "{e}");
}

#[test]
fn pin_parse_errors() {
    let parse = |d: &str| build_client(&d.parse().expect("grammar")).expect_err(d);
    let e = parse("tls:example.com:443:trustRoots=none");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert!(
        e.message()
            .contains("`trustRoots=none` trusts nothing on its own: add `pin=sha256/<base64>`"),
        "{e}"
    );
    // The legacy ssl: client has no pins, so `none` would trust anything.
    let e = parse("ssl:example.com:443:caCertsDir=none");
    assert!(
        e.message()
            .contains("`caCertsDir=none` would trust anything and this client type has no `pin=`"),
        "{e}"
    );
    let e = parse("tls:example.com:443:pin=md5/abcd");
    assert!(e.message().contains("is not a pin: write `sha256/"), "{e}");
    let e = parse("tls:example.com:443:pin=sha256/Zm9v");
    assert!(e.message().contains("a SHA-256 pin is 32 bytes"), "{e}");
    let e = parse("tls:example.com:443:pin=sha256/!!!!");
    assert!(e.message().contains("is not base64"), "{e}");
}
