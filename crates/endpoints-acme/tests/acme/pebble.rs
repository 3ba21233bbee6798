//! `acme:` against a real ACME server: Debian's `pebble` (and `pebble-challtestsrv` as its
//! DNS), all on loopback. Pebble validates TLS-ALPN-01 by connecting to our listener's port
//! (`tlsPort` in its config) at the address its DNS gives for the test name (127.0.0.1).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use endpoints_acme::AcmeStatus;
use endpoints_core::Listener;
use endpoints_core::registry::build_client;
use endpoints_tls::TlsInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use endpoints_tcp as _;

const NAME: &str = "test.example";

/// Bound for every wait on pebble: an order takes well under a second with
/// `PEBBLE_VA_NOSLEEP=1`; 60 s leaves a loaded 2-core machine room (over 10x).
const ORDER_BOUND: Duration = Duration::from_secs(60);

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let p = std::env::temp_dir().join(format!("endpoints-acme-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` distinct TCP ports free on 127.0.0.1 right now (all held until all are chosen, so
/// the kernel cannot hand one out twice), and a free UDP port.
fn free_ports<const N: usize>() -> ([u16; N], u16) {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&held) {
        *p = l.local_addr().expect("addr").port();
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    (ports, udp)
}

fn have_pebble() -> bool {
    endpoints_conformance::peer_program("pebble", "-help", "pebble")
        && endpoints_conformance::peer_program("pebble-challtestsrv", "-help", "pebble")
}

/// A running pebble and its DNS, killed when dropped (its log printed if the test failed).
struct Pebble {
    _pebble: Child,
    _dns: Child,
    log: PathBuf,
    /// The port our listener must use: pebble validates TLS-ALPN-01 there.
    tls_port: u16,
    /// The ACME directory URL, escaped for a description.
    directory: String,
    /// The CA of pebble's HTTPS certificate (`trustRoots=` of `acme:`).
    https_ca: PathBuf,
    mgmt_port: u16,
}

impl Pebble {
    /// Pebble on fresh ports, validating TLS-ALPN-01 on [`Pebble::tls_port`]; certificates
    /// valid for `validity` seconds (pebble's default, 5 years, when `None`).
    async fn start(dir: &Path, validity: Option<u64>) -> Self {
        // Pebble's own HTTPS certificate: a CA and a leaf for 127.0.0.1 / localhost.
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pebble test HTTPS CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
        let https_ca = dir.join("pebble-https-ca.pem");
        std::fs::write(&https_ca, ca.pem()).expect("write");
        std::fs::write(dir.join("pebble-cert.pem"), leaf.pem()).expect("write");
        std::fs::write(dir.join("pebble-key.pem"), leaf_key.serialize_pem()).expect("write");

        let ([acme_port, mgmt_port, dns_mgmt_port, http_port, tls_port], dns_port) =
            free_ports::<5>();
        let mut cfg = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{acme_port}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
                "certificate": dir.join("pebble-cert.pem"),
                "privateKey": dir.join("pebble-key.pem"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        if let Some(v) = validity {
            cfg["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let cfg_path = dir.join("pebble.json");
        let log = dir.join("pebble.log");
        std::fs::write(&cfg_path, cfg.to_string()).expect("write");

        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{dns_mgmt_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble-challtestsrv");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&cfg_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Always a fresh authorization: every order is validated on our port.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("log"),
            ))
            .kill_on_drop(true)
            .spawn()
            .expect("pebble");
        // Up when its directory answers the TCP connect (bounded: 300 x 100 ms).
        let mut up = false;
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", acme_port))
                .await
                .is_ok()
                && tokio::net::TcpStream::connect(("127.0.0.1", mgmt_port))
                    .await
                    .is_ok()
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "pebble did not start listening within 30 s");
        Self {
            _pebble: pebble,
            _dns: dns,
            log,
            tls_port,
            directory: format!("https\\://127.0.0.1\\:{acme_port}/dir"),
            https_ca,
            mgmt_port,
        }
    }

    /// New orders pebble has received (its log's `POST /order-plz` requests).
    fn orders(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("POST /order-plz"))
            .count()
    }

    /// Pebble's issuing root, from its management interface (`/roots/0`), written to `dir`.
    async fn root(&self, dir: &Path) -> PathBuf {
        let d = format!(
            "tls:127.0.0.1:{}:trustRoots={}:timeout=10",
            self.mgmt_port,
            self.https_ca.display()
        );
        let mut c = build_client(&d.parse().expect("parse"))
            .expect("build")
            .connect()
            .await
            .expect("connect to pebble's management port");
        c.write_all(b"GET /roots/0 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        let mut body = Vec::new();
        let _ = tokio::time::timeout(ORDER_BOUND, c.read_to_end(&mut body)).await;
        let text = String::from_utf8_lossy(&body);
        let pem = text
            .find("-----BEGIN CERTIFICATE-----")
            .map(|i| &text[i..])
            .unwrap_or_else(|| panic!("no certificate in pebble's /roots/0 answer: {text}"));
        let path = dir.join("pebble-root.pem");
        std::fs::write(&path, pem).expect("write");
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- pebble's log ---\n{log}");
        }
    }
}

fn acme_description(p: &Pebble, cache: &Path, port: u16, extra: &str) -> String {
    names_description(p, NAME, cache, port, extra)
}

/// `acme:` for `names` (comma-separated) on 127.0.0.1:`port`.
fn names_description(p: &Pebble, names: &str, cache: &Path, port: u16, extra: &str) -> String {
    format!(
        "acme:domains={names}:cache={}:directory={}:trustRoots={}:retry=1{extra}:tcp:{port}:interface=127.0.0.1",
        cache.display(),
        p.directory,
        p.https_ca.display()
    )
}

async fn listen(desc: &str) -> (Box<dyn Listener>, watch::Receiver<AcmeStatus>) {
    let ep = endpoints_acme::build(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let status = ep.status();
    let l = endpoints_core::ServerEndpoint::listen(&ep)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (l, status)
}

/// An echo server on `listener`, until [`Serving::close`].
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Close the listener (its address released) and wait for that.
    async fn close(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn serve_echo(mut listener: Box<dyn Listener>) -> Serving {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                conn = listener.accept() => {
                    let Ok(conn) = conn else { break };
                    tokio::spawn(async move {
                        let (mut r, mut w) = tokio::io::split(conn);
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    });
                }
            }
        }
        let _ = listener.close().await;
    });
    Serving { stop, task }
}

/// Wait until `pred` holds for the status (bounded by [`ORDER_BOUND`]).
async fn wait_for(
    status: &mut watch::Receiver<AcmeStatus>,
    what: &str,
    pred: impl Fn(&AcmeStatus) -> bool,
) -> AcmeStatus {
    let r = tokio::time::timeout(ORDER_BOUND, status.wait_for(|s| pred(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match r {
        Ok(Ok(s)) => s,
        _ => panic!("timed out waiting for {what}: {:?}", *status.borrow()),
    }
}

/// A verified TLS connection to `NAME` on 127.0.0.1:`port`, trusting only `root`.
async fn connect(port: u16, root: &Path) -> std::io::Result<endpoints_core::Connection> {
    let inner = endpoints_core::escape(&format!("tcp:127.0.0.1:{port}"));
    let d = format!(
        "tls:{NAME}:{port}:trustRoots={}:endpoint={inner}:timeout=10",
        root.display()
    );
    build_client(&d.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
}

async fn ping(c: &mut endpoints_core::Connection) {
    c.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
}

fn leaf(c: &endpoints_core::Connection) -> CertificateDer<'static> {
    c.extensions()
        .get::<TlsInfo>()
        .expect("TlsInfo")
        .peer_certificates
        .first()
        .expect("a certificate")
        .clone()
}

/// The one certificate file in the cache (`<name>-<hash>.pem`).
fn cached_file(cache: &Path) -> PathBuf {
    let sub = std::fs::read_dir(cache)
        .expect("cache dir")
        .filter_map(Result::ok)
        .find(|e| e.path().is_dir())
        .expect("a directory per ACME directory URL")
        .path();
    let pems: Vec<PathBuf> = std::fs::read_dir(&sub)
        .expect("cache subdirectory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    assert_eq!(pems.len(), 1, "one certificate file: {pems:?}");
    pems[0].clone()
}

fn cached_leaf(cache: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(cached_file(cache)).expect("cached certificate")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obtains_a_certificate_then_restarts_from_the_cache() {
    if !have_pebble() {
        return;
    }
    let scratch = Scratch::new("issue");
    let cache = scratch.0.join("cache");
    let pebble = Pebble::start(&scratch.0, None).await;
    let port = pebble.tls_port;
    let desc = acme_description(&pebble, &cache, port, "");

    let (listener, mut status) = listen(&desc).await;
    let server = serve_echo(listener);
    let s = wait_for(&mut status, "the first certificate", |s| s.orders == 1).await;
    let cert = s.certificate.expect("a certificate");
    assert!(!cert.from_cache);
    assert_eq!(s.failures, 0, "{:?}", s.last_error);
    assert_eq!(pebble.orders(), 1, "pebble saw one order");

    // Our `tls:` client, trusting pebble's issuing root only, sees the issued certificate.
    let root = pebble.root(&scratch.0).await;
    let mut c = connect(port, &root).await.expect("verified handshake");
    ping(&mut c).await;
    let issued = leaf(&c);
    assert_eq!(issued, cached_leaf(&cache));
    drop(c);

    // The cache: 0700 directories, 0600 files, one subdirectory for this directory URL.
    #[cfg(unix)]
    {
        let sub = std::fs::read_dir(&cache)
            .expect("cache")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect::<Vec<_>>();
        assert_eq!(sub.len(), 1, "{sub:?}");
        assert!(
            sub[0]
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("https___127.0.0.1_")),
            "{sub:?}"
        );
        assert_eq!(mode(&cache), 0o700);
        assert_eq!(mode(&sub[0]), 0o700);
        assert_eq!(mode(&sub[0].join("account.json")), 0o600);
        assert_eq!(mode(&cached_file(&cache)), 0o600);
    }

    // A restart serves the cached certificate at once, with no new order.
    server.close().await;
    let (listener, mut status) = listen(&desc).await;
    let server = serve_echo(listener);
    let s = status.borrow_and_update().clone();
    let cert = s.certificate.expect("loaded from the cache at listen");
    assert!(cert.from_cache);
    let mut c = connect(port, &root).await.expect("handshake after restart");
    ping(&mut c).await;
    assert_eq!(leaf(&c), issued, "the cached certificate is served");
    // Give the background task time to act if it wrongly wanted to (an order takes well
    // under a second here), then check it did not.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = status.borrow().clone();
    assert_eq!((s.orders, s.failures), (0, 0), "{s:?}");
    assert_eq!(
        pebble.orders(),
        1,
        "pebble saw no new order after the restart"
    );
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_short_lived_certificates_without_dropping_connections() {
    if !have_pebble() {
        return;
    }
    let scratch = Scratch::new("renew");
    let cache = scratch.0.join("cache");
    // 12-second certificates: renewed 8 s into their life.
    let pebble = Pebble::start(&scratch.0, Some(12)).await;
    let port = pebble.tls_port;
    let desc = acme_description(&pebble, &cache, port, "");
    let (listener, mut status) = listen(&desc).await;
    let server = serve_echo(listener);
    let first = wait_for(&mut status, "the first certificate", |s| s.orders >= 1).await;
    let first = first.certificate.expect("a certificate");
    let life = first
        .not_after
        .duration_since(first.not_before)
        .expect("not_after after not_before");
    assert!(
        life <= Duration::from_secs(13),
        "pebble's validity: {life:?}"
    );

    let root = pebble.root(&scratch.0).await;
    let mut before = connect(port, &root).await.expect("handshake");
    ping(&mut before).await;
    let old = leaf(&before);

    let s = wait_for(&mut status, "a renewal", |s| s.orders >= 2).await;
    assert_eq!(s.failures, 0, "{:?}", s.last_error);
    // The connection opened before the swap goes on.
    ping(&mut before).await;
    // New handshakes get the new certificate.
    let mut after = connect(port, &root).await.expect("handshake after renewal");
    ping(&mut after).await;
    assert_ne!(leaf(&after), old, "the renewed certificate is served");
    assert_eq!(leaf(&after), cached_leaf(&cache), "and cached");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_directory_url_is_a_clear_error() {
    if !have_pebble() {
        return;
    }
    let scratch = Scratch::new("baddir");
    let cache = scratch.0.join("cache");
    let pebble = Pebble::start(&scratch.0, None).await;
    let port = pebble.tls_port;
    let wrong = pebble.directory.replace("/dir", "/no-such-directory");
    let desc = format!(
        "acme:domains={NAME}:cache={}:directory={wrong}:trustRoots={}:retry=1:tcp:{port}:interface=127.0.0.1",
        cache.display(),
        pebble.https_ca.display()
    );
    let (listener, mut status) = listen(&desc).await;
    let server = serve_echo(listener);
    let s = wait_for(&mut status, "a failure", |s| s.failures >= 1).await;
    let e = s.last_error.expect("an error");
    println!("{e}");
    assert!(e.contains("/no-such-directory"), "names the URL: {e}");
    assert!(
        e.contains("directory="),
        "says which parameter to check: {e}"
    );
    assert!(s.certificate.is_none());
    // Retried with backoff (1 s, then 2 s).
    let s = wait_for(&mut status, "a retry", |s| s.failures >= 2).await;
    assert!(s.last_error.is_some());
    server.close().await;
}

/// Issue 24 item 2: 11 names of 24 bytes make `domains.join(",") + ".pem"` longer than a
/// file name may be (255 bytes); the cache must still work, and a reordered `domains=` is the
/// same certificate: two more starts, no new order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_long_names_are_cached_and_their_order_does_not_matter() {
    if !have_pebble() {
        return;
    }
    let names: Vec<String> = (0..11)
        .map(|i| format!("n{i:02}-{}.example", "a".repeat(12)))
        .collect();
    assert!(names.iter().all(|n| n.len() == 24));
    assert!(names.join(",").len() + ".pem".len() > 255);
    let scratch = Scratch::new("longnames");
    let cache = scratch.0.join("cache");
    let pebble = Pebble::start(&scratch.0, None).await;
    let port = pebble.tls_port;

    let desc = names_description(&pebble, &names.join(","), &cache, port, "");
    let (listener, mut status) = listen(&desc).await;
    let server = serve_echo(listener);
    let s = wait_for(&mut status, "the first certificate", |s| s.orders == 1).await;
    assert_eq!(s.failures, 0, "{:?}", s.last_error);
    let issued = cached_leaf(&cache);
    server.close().await;

    // Restarted with the names reversed and one in capitals: served from the cache.
    let mut reordered: Vec<String> = names.iter().rev().cloned().collect();
    reordered[0] = reordered[0].to_ascii_uppercase();
    for list in [names.join(","), reordered.join(",")] {
        let desc = names_description(&pebble, &list, &cache, port, "");
        let (listener, status) = listen(&desc).await;
        let server = serve_echo(listener);
        let s = status.borrow().clone();
        assert!(
            s.certificate.as_ref().is_some_and(|c| c.from_cache),
            "loaded from the cache at listen: {s:?}"
        );
        // Time for a wrong order to show (one takes well under a second here).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = status.borrow().clone();
        assert_eq!((s.orders, s.failures), (0, 0), "{s:?}");
        server.close().await;
    }
    assert_eq!(pebble.orders(), 1, "one order for three starts");
    assert_eq!(cached_leaf(&cache), issued);
}

/// Issue 24 item 5: the application never calls `accept()`, yet validations are answered:
/// the first certificate is obtained, and then, with connections waiting that nobody
/// accepts, renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validations_are_answered_while_the_application_does_not_accept() {
    if !have_pebble() {
        return;
    }
    let scratch = Scratch::new("noaccept");
    let cache = scratch.0.join("cache");
    // 12-second certificates: renewed about 8 s into their life.
    let pebble = Pebble::start(&scratch.0, Some(12)).await;
    let port = pebble.tls_port;
    let desc = acme_description(&pebble, &cache, port, "");
    let (listener, mut status) = listen(&desc).await;
    // Held open, never accepted from.
    let s = wait_for(&mut status, "the first certificate", |s| s.orders == 1).await;
    assert!(s.certificate.is_some());

    // Application connections that nobody accepts: more than the listener queues (so the
    // queue is full when the renewal's validation arrives), fewer than one address may have
    // in progress at once (64).
    let root = pebble.root(&scratch.0).await;
    let waiting: Vec<_> = (0..48)
        .map(|_| {
            let root = root.clone();
            tokio::spawn(async move { connect(port, &root).await })
        })
        .collect();
    let s = wait_for(&mut status, "a renewal", |s| s.orders >= 2).await;
    assert!(s.certificate.is_some());
    for w in waiting {
        w.abort();
    }
    listener.close().await.expect("close");
}

/// Issue 24 item 6: two `acme:` listeners of the same names (two sockets, as dual stack or
/// two systemd sockets give) make one order, and both serve its certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listeners_of_the_same_names_make_one_order() {
    if !have_pebble() {
        return;
    }
    let scratch = Scratch::new("twice");
    let cache = scratch.0.join("cache");
    let pebble = Pebble::start(&scratch.0, None).await;
    let port = pebble.tls_port;
    let (first, mut status1) = listen(&acme_description(&pebble, &cache, port, "")).await;
    let (second, mut status2) = listen(&acme_description(&pebble, &cache, 0, "")).await;
    let other_port = second
        .local_addr()
        .expect("addr")
        .ip()
        .map(|a| a.port())
        .expect("an IP listener");
    let (a, b) = (serve_echo(first), serve_echo(second));
    wait_for(&mut status1, "a certificate", |s| s.certificate.is_some()).await;
    wait_for(&mut status2, "a certificate", |s| s.certificate.is_some()).await;
    // Time for a second order to show (one takes well under a second here).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pebble.orders(), 1, "one order for the two listeners");
    let root = pebble.root(&scratch.0).await;
    let mut c1 = connect(port, &root).await.expect("first listener");
    let mut c2 = connect(other_port, &root).await.expect("second listener");
    ping(&mut c1).await;
    ping(&mut c2).await;
    assert_eq!(leaf(&c1), leaf(&c2), "the same certificate on both");
    a.close().await;
    b.close().await;
}
