//! The `tls:` and `ssl:` servers with the certificates users have: certbot's `live/`
//! directory, renewal without a restart, and private keys left readable.

use crate::common;
use common::serve::{listen, port_of, serve_echo};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::capture;
use common::certbot::{Certbot, relink};
use endpoints_core::registry::{build_client, build_server};
use endpoints_tls::TlsInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_tcp as _;

/// The servers look at their files every second; every wait for a reload is bounded by 20
/// polls (20 s), far above the 1-2 s a reload takes, so a slow machine does not fail it.
const RELOAD_BOUND: Duration = Duration::from_secs(20);

/// A verified handshake and echo with `name` (SNI) against 127.0.0.1:`port`, trusting only
/// `ca`: the chain the server sent.
async fn chain_for(
    name: &str,
    port: u16,
    ca: &Path,
) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let inner = endpoints_core::escape(&format!("tcp:127.0.0.1:{port}"));
    let d = format!(
        "tls:{name}:{port}:trustRoots={}:endpoint={inner}:timeout=10",
        ca.display()
    );
    let mut c = build_client(&d.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await?;
    c.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(c.extensions()
        .get::<TlsInfo>()
        .expect("TlsInfo")
        .peer_certificates
        .clone())
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
}

/// A handshake without SNI (verified against `expect_name`): the certificate served.
async fn leaf_without_sni(port: u16, ca: &Path, expect_name: &str) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.enable_sni = false;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from(expect_name.to_owned()).expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("handshake without SNI");
    tls.get_ref().1.peer_certificates().expect("certificates")[0].clone()
}

#[tokio::test]
async fn certbot_live_directory_serves_each_name_with_its_chain() {
    let cb = Certbot::new("live");
    let a = cb.issue("a.example", &["a.example", "www.a.example"], 1, 11);
    let b = cb.issue("b.example", &["b.example", "*.b.example"], 1, 21);
    // Cycles: a link back to live/ from inside it, and one to itself.
    std::os::unix::fs::symlink("..", cb.live().join("a.example/up")).expect("symlink");
    std::os::unix::fs::symlink(".", cb.live().join("self")).expect("symlink");
    let l = listen(&format!(
        "tls:{}:0:interface=127.0.0.1",
        cb.live().display()
    ))
    .await;
    let port = port_of(l.as_ref());
    let _server = serve_echo(l);
    let ca = cb.ca_file();
    for (name, leaf) in [
        ("a.example", &a),
        ("www.a.example", &a),
        ("b.example", &b),
        ("x.b.example", &b),
    ] {
        let chain = chain_for(name, port, &ca)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(chain[0], der(leaf), "{name}: its own certificate");
        assert_eq!(
            chain.len(),
            2,
            "{name}: leaf and intermediate, not the root"
        );
    }
    assert!(
        chain_for("c.example", port, &ca).await.is_err(),
        "an unknown name gets no certificate"
    );
    assert_eq!(
        leaf_without_sni(port, &ca, "a.example").await,
        der(&a),
        "no SNI: the first certificate (in path order)"
    );
}

#[test]
fn certbot_live_directory_errors_say_what_to_do() {
    let cb = Certbot::new("empty");
    let e = build_server(
        &format!("tls:{}:0", cb.live().display())
            .parse()
            .expect("parse"),
    )
    .expect_err("no certificate yet");
    assert!(
        e.message().contains("no certificate with a DNS name"),
        "{e}"
    );
    assert!(e.message().contains("live"), "{e}");
    // A key whose certificate is missing is named in the log (as Twisted's "unused private key").
    capture::install();
    cb.issue("a.example", &["a.example"], 1, 1);
    std::fs::remove_file(cb.root.join("archive/a.example/cert1.pem")).expect("rm");
    std::fs::remove_file(cb.root.join("archive/a.example/fullchain1.pem")).expect("rm");
    let _ = build_server(
        &format!("tls:{}:0", cb.live().display())
            .parse()
            .expect("parse"),
    )
    .expect_err("a key alone");
    let key = cb.live().join("a.example/privkey.pem");
    assert!(
        !capture::lines_with(&["unused private key", &key.display().to_string()]).is_empty(),
        "the unused key is named"
    );
}

/// Handshakes in a loop until `stop`: counts of successes and failures.
fn hammer(
    name: &'static str,
    port: u16,
    ca: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (o, f) = (ok.clone(), failed.clone());
    let task = tokio::spawn(async move {
        // Bounded: stops when told, or after 10 000 handshakes.
        for _ in 0..10_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match chain_for(name, port, &ca).await {
                Ok(_) => o.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    eprintln!("handshake during the swap failed: {e}");
                    f.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    });
    (ok, failed, task)
}

/// Poll (bounded by [`RELOAD_BOUND`]) until `name` is served with `leaf`.
async fn wait_for_leaf(name: &str, port: u16, ca: &Path, leaf: &CertificateDer<'static>) {
    let deadline = tokio::time::Instant::now() + RELOAD_BOUND;
    loop {
        if let Ok(chain) = chain_for(name, port, ca).await
            && chain.first() == Some(leaf)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: the new certificate was not served within {RELOAD_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (bounded) until the log says the files changed but could not be loaded.
async fn wait_for_rejection(file_part: &str) {
    let deadline = tokio::time::Instant::now() + RELOAD_BOUND;
    while capture::lines_with(&["cannot be loaded", file_part]).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning about the invalid file `{file_part}` within {RELOAD_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_picks_up_a_renewal_without_failing_a_handshake() {
    capture::install();
    let cb = Certbot::new("renew");
    let first = cb.issue("a.example", &["a.example"], 1, 101);
    cb.issue("b.example", &["b.example"], 1, 201);
    let l = listen(&format!(
        "tls:{}:0:interface=127.0.0.1",
        cb.live().display()
    ))
    .await;
    let port = port_of(l.as_ref());
    let server = serve_echo(l);
    let ca = cb.ca_file();
    assert_eq!(
        chain_for("a.example", port, &ca).await.expect("v1")[0],
        der(&first)
    );

    // Renewal as certbot does it: new archive files, then the live/ links retargeted.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, task) = hammer("a.example", port, ca.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = der(&cb.issue("a.example", &["a.example"], 2, 102));
    wait_for_leaf("a.example", port, &ca, &second).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("hammer");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no handshake failed during the swap"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 0,
        "handshakes ran during the swap"
    );

    // An invalid replacement (a certificate cut short) keeps the one served.
    let broken = cb.root.join("archive/a.example/cert3.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n",
    )
    .expect("write");
    relink(
        &cb.live().join("a.example/cert.pem"),
        Path::new("../../archive/a.example/cert3.pem"),
    );
    wait_for_rejection("cert3.pem").await;
    assert_eq!(
        chain_for("a.example", port, &ca)
            .await
            .expect("still served")[0],
        second,
        "the invalid file leaves the last good certificate in place"
    );

    // A deleted lineage is no longer served (after the broken file is fixed).
    relink(
        &cb.live().join("a.example/cert.pem"),
        Path::new("../../archive/a.example/cert2.pem"),
    );
    std::fs::remove_dir_all(cb.live().join("b.example")).expect("rm");
    let deadline = tokio::time::Instant::now() + RELOAD_BOUND;
    while chain_for("b.example", port, &ca).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b.example still served {RELOAD_BOUND:?} after its removal"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        chain_for("a.example", port, &ca).await.expect("a")[0],
        second
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_server_reloads_its_key_and_certificate() {
    capture::install();
    let cb = Certbot::new("ssl");
    let first = der(&cb.issue("a.example", &["a.example"], 1, 301));
    let live = cb.live().join("a.example");
    let l = listen(&format!(
        "ssl:0:privateKey={}:certKey={}:extraCertChain={}:interface=127.0.0.1",
        live.join("privkey.pem").display(),
        live.join("cert.pem").display(),
        live.join("chain.pem").display(),
    ))
    .await;
    let port = port_of(l.as_ref());
    let server = serve_echo(l);
    let ca = cb.ca_file();
    assert_eq!(
        chain_for("a.example", port, &ca).await.expect("v1")[0],
        first
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, task) = hammer("a.example", port, ca.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = der(&cb.issue("a.example", &["a.example"], 2, 302));
    wait_for_leaf("a.example", port, &ca, &second).await;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("hammer");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no handshake failed during the swap"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 0,
        "handshakes ran during the swap"
    );

    // A certificate that does not fit the key is refused; the pair served stays.
    relink(
        &live.join("cert.pem"),
        Path::new("../../archive/a.example/cert1.pem"),
    );
    wait_for_rejection("does not fit").await;
    assert_eq!(
        chain_for("a.example", port, &ca)
            .await
            .expect("still served")[0],
        second
    );
    server.abort();
}

#[cfg(unix)]
#[test]
fn keys_readable_by_others_are_named_in_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    capture::install();
    let cb = Certbot::new("perm");
    cb.issue("a.example", &["a.example"], 1, 1);
    let key = std::fs::canonicalize(cb.root.join("archive/a.example/privkey1.pem")).expect("key");
    let key_s = key.display().to_string();
    let warned = || capture::lines_with(&["WARN", "readable by group or others", &key_s]).len();

    build_server(
        &format!("tls:{}:0", cb.live().display())
            .parse()
            .expect("parse"),
    )
    .expect("builds");
    assert_eq!(warned(), 0, "mode 600: no warning");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    build_server(
        &format!("tls:{}:0", cb.live().display())
            .parse()
            .expect("parse"),
    )
    .expect("builds");
    assert_eq!(warned(), 1, "tls: mode 640 is named");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o604)).expect("chmod");
    let live = cb.live().join("a.example");
    build_server(
        &format!(
            "ssl:0:privateKey={}:certKey={}",
            live.join("privkey.pem").display(),
            live.join("fullchain.pem").display()
        )
        .parse()
        .expect("parse"),
    )
    .expect("builds");
    assert_eq!(warned(), 2, "ssl: mode 604 is named");
}

#[tokio::test]
async fn the_watcher_stops_when_the_listener_closes() {
    capture::install();
    let closed = Certbot::new("closed");
    let open = Certbot::new("open");
    closed.issue("a.example", &["a.example"], 1, 1);
    open.issue("a.example", &["a.example"], 1, 1);
    let desc = |cb: &Certbot| format!("tls:{}:0:interface=127.0.0.1", cb.live().display());
    let l_closed = listen(&desc(&closed)).await;
    let l_open = listen(&desc(&open)).await;
    l_closed.close().await.expect("close");
    closed.issue("a.example", &["a.example"], 2, 2);
    open.issue("a.example", &["a.example"], 2, 2);
    let reloaded =
        |cb: &Certbot| capture::lines_with(&["reloaded", &cb.live().display().to_string()]).len();
    // The open listener's watcher reloads (bounded wait); the closed one's, started at the
    // same time and polling as often, must not have: give it two more polls on top.
    let deadline = tokio::time::Instant::now() + RELOAD_BOUND;
    while reloaded(&open) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the open listener never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        reloaded(&closed),
        0,
        "a closed listener's files are no longer watched"
    );
    drop(l_open);
}

#[tokio::test]
async fn the_walk_is_bounded_in_depth_and_survives_link_mazes() {
    let cb = Certbot::new("deep");
    cb.issue("a.example", &["a.example"], 1, 1);
    cb.issue("z.example", &["z.example"], 1, 2);
    // z.example moved 20 levels down (the walk stops at 16).
    let mut deep = cb.live().to_path_buf();
    for i in 0..20 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).expect("mkdir");
    for f in ["cert", "chain", "fullchain", "privkey"] {
        let from = cb.root.join(format!("archive/z.example/{f}1.pem"));
        std::fs::copy(&from, deep.join(format!("{f}.pem"))).expect("copy");
    }
    std::fs::remove_dir_all(cb.live().join("z.example")).expect("rm");
    // Eight links to the top in every lineage directory: a walk that followed them
    // without remembering where it had been would not end.
    for i in 0..8 {
        std::os::unix::fs::symlink("..", cb.live().join(format!("a.example/up{i}")))
            .expect("symlink");
    }
    let l = listen(&format!(
        "tls:{}:0:interface=127.0.0.1",
        cb.live().display()
    ))
    .await;
    let port = port_of(l.as_ref());
    let _server = serve_echo(l);
    let ca = cb.ca_file();
    chain_for("a.example", port, &ca).await.expect("a.example");
    assert!(
        chain_for("z.example", port, &ca).await.is_err(),
        "a certificate 20 directories down is not read"
    );
}

#[tokio::test]
async fn when_two_certificates_have_a_name_the_newer_file_serves_it() {
    // `tls:/etc/letsencrypt` (not `live/`): archive/ holds the old and the renewed
    // certificate of a.example, each with its key; the old one comes first in path order.
    let cb = Certbot::new("both");
    cb.issue("a.example", &["a.example"], 1, 1);
    let renewed = der(&cb.issue("a.example", &["a.example"], 2, 2));
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for f in ["cert1", "chain1", "fullchain1", "privkey1"] {
        std::fs::File::options()
            .write(true)
            .open(cb.root.join(format!("archive/a.example/{f}.pem")))
            .and_then(|f| f.set_modified(hour_ago))
            .expect("set mtime");
    }
    let l = listen(&format!("tls:{}:0:interface=127.0.0.1", cb.root.display())).await;
    let port = port_of(l.as_ref());
    let _server = serve_echo(l);
    let chain = chain_for("a.example", port, &cb.ca_file())
        .await
        .expect("a");
    assert_eq!(chain[0], renewed);
    assert_eq!(chain.len(), 2, "the root in ca/ (self-signed) is not sent");
    assert_eq!(
        leaf_without_sni(port, &cb.ca_file(), "a.example").await,
        renewed,
        "no SNI: the first name, served by its newer certificate"
    );
}
