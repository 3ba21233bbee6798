//! Real Twisted (26.10, `pip install "twisted[tls]==26.10.0"`) against our TLS servers: its
//! `tls:` client to our `ssl:` and `tls:` servers, and its `tls:` server next to ours on the
//! same certbot directory. The Python side is in `tests/twisted/*.py`. Without Twisted the
//! tests print why and pass, except under `CI=true`, where they fail.

use crate::common;
use common::serve::{listen, port_of, serve_echo};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::certbot::Certbot;
use endpoints_core::registry::build_client;
use endpoints_tls::TlsInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use endpoints_tcp as _;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/twisted");
/// Bound on one Python run (Twisted's import alone takes a second or so on a busy machine).
const PYTHON_BOUND: Duration = Duration::from_secs(60);

/// Whether `python3` can import Twisted with its TLS extras; as `peer_program`: a skip
/// reason printed, or a failure under `CI=true`.
fn twisted_available() -> bool {
    endpoints_test_support::peers::twisted()
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
}

/// Run `script args`; its `leaf <hex>` line as DER, or its output as the error.
async fn python_leaf(script: &str, args: &[&str]) -> Result<CertificateDer<'static>, String> {
    let run = Command::new("python3")
        .arg(Path::new(SCRIPTS).join(script))
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PYTHON_BOUND, run)
        .await
        .map_err(|_| format!("{script} {args:?}: no answer within {PYTHON_BOUND:?}"))?
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hex = stdout
        .lines()
        .find_map(|l| l.strip_prefix("leaf "))
        .filter(|_| out.status.success())
        .ok_or_else(|| {
            format!(
                "{script} {args:?} failed ({}): {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let bytes = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("bad hex from {script}: {e}"))?;
    Ok(CertificateDer::from(bytes))
}

/// Twisted's `tls:` client to `name` on 127.0.0.1:`port`, trusting only `ca_dir`.
async fn twisted_client(
    name: &str,
    port: u16,
    ca_dir: &Path,
) -> Result<CertificateDer<'static>, String> {
    let d = format!(
        "tls:{name}:{port}:trustRoots={}:endpoint=tcp\\:127.0.0.1\\:{port}",
        ca_dir.display()
    );
    python_leaf("tls_client.py", &[&d]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twisted_tls_client_to_our_ssl_and_tls_servers() {
    if !twisted_available() {
        return;
    }
    let cb = Certbot::new("tw-client");
    let a = der(&cb.issue("a.example", &["a.example"], 1, 1));
    let b = der(&cb.issue("b.example", &["b.example", "*.b.example"], 1, 2));
    let live = cb.live();
    let ssl = listen(&format!(
        "ssl:0:privateKey={}:certKey={}:interface=127.0.0.1",
        live.join("a.example/privkey.pem").display(),
        live.join("a.example/fullchain.pem").display()
    ))
    .await;
    let ssl_port = port_of(ssl.as_ref());
    let _ssl = serve_echo(ssl);
    let tls = listen(&format!("tls:{}:0:interface=127.0.0.1", live.display())).await;
    let tls_port = port_of(tls.as_ref());
    let _tls = serve_echo(tls);

    let ca = cb.ca_dir();
    assert_eq!(
        twisted_client("a.example", ssl_port, &ca)
            .await
            .expect("Twisted to ssl:"),
        a
    );
    for (name, leaf) in [("a.example", &a), ("b.example", &b), ("x.b.example", &b)] {
        let got = twisted_client(name, tls_port, &ca)
            .await
            .unwrap_or_else(|e| panic!("Twisted to tls: as {name}: {e}"));
        assert_eq!(&got, leaf, "{name}");
    }
    // Twisted verifies the name: a.example's certificate does not pass for b.example.
    assert!(
        twisted_client("b.example", ssl_port, &ca).await.is_err(),
        "Twisted refuses a certificate for another name"
    );
}

/// Start Twisted's server for `desc`; its port.
async fn twisted_server(desc: &str) -> (Child, u16) {
    let mut child = Command::new("python3")
        .arg(Path::new(SCRIPTS).join("tls_server.py"))
        .arg(desc)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(PYTHON_BOUND, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(p) = line.strip_prefix("port ") {
                return p.trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("Twisted's tls: server prints its port");
    (child, port)
}

/// Our `tls:` client's view of a server: the chain sent for `name`, verified with `ca`.
async fn our_client_chain(name: &str, port: u16, ca: &Path) -> Vec<CertificateDer<'static>> {
    let inner = endpoints_core::escape(&format!("tcp:127.0.0.1:{port}"));
    let d = format!(
        "tls:{name}:{port}:trustRoots={}:endpoint={inner}",
        ca.display()
    );
    let mut c = build_client(&d.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{name} on port {port}: {e}"));
    c.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.expect("echo");
    c.extensions()
        .get::<TlsInfo>()
        .expect("TlsInfo")
        .peer_certificates
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twisted_tls_server_and_ours_serve_the_same_certbot_directory() {
    if !twisted_available() {
        return;
    }
    let cb = Certbot::new("tw-server");
    let a = der(&cb.issue("a.example", &["a.example", "www.a.example"], 1, 1));
    let b = der(&cb.issue("b.example", &["b.example", "*.b.example"], 1, 2));
    let live = cb.live();
    let (mut twisted, tw_port) =
        twisted_server(&format!("tls:{}:0:interface=127.0.0.1", live.display())).await;
    let ours = listen(&format!("tls:{}:0:interface=127.0.0.1", live.display())).await;
    let our_port = port_of(ours.as_ref());
    let _ours = serve_echo(ours);

    let ca = cb.ca_file();
    for (name, leaf) in [
        ("a.example", &a),
        ("www.a.example", &a),
        ("b.example", &b),
        ("x.b.example", &b),
    ] {
        let theirs = python_leaf("handshake.py", &[&tw_port.to_string(), name])
            .await
            .unwrap_or_else(|e| panic!("Twisted's server, {name}: {e}"));
        let mine = python_leaf("handshake.py", &[&our_port.to_string(), name])
            .await
            .unwrap_or_else(|e| panic!("our server, {name}: {e}"));
        assert_eq!(&theirs, leaf, "Twisted serves {name} with its certificate");
        assert_eq!(mine, theirs, "{name}: the same certificate from both");
        // The same chain (leaf, then the intermediate found by issuer), verified.
        let their_chain = our_client_chain(name, tw_port, &ca).await;
        let my_chain = our_client_chain(name, our_port, &ca).await;
        assert_eq!(my_chain, their_chain, "{name}: the same chain from both");
        assert_eq!(my_chain.len(), 2, "{name}: leaf and intermediate");
    }
    // No SNI: each serves its first certificate. Ours is the first key in path order;
    // Twisted's is the first its walk finds (directory listing order), so only check that
    // it is one of the two.
    let theirs = python_leaf("handshake.py", &[&tw_port.to_string()])
        .await
        .expect("Twisted's server without SNI");
    let mine = python_leaf("handshake.py", &[&our_port.to_string()])
        .await
        .expect("our server without SNI");
    assert_eq!(mine, a, "ours: the first certificate in path order");
    assert!(
        theirs == a || theirs == b,
        "Twisted serves one of its certificates"
    );
    drop(twisted.stdin.take());
    let _ = tokio::time::timeout(PYTHON_BOUND, twisted.wait()).await;
}
