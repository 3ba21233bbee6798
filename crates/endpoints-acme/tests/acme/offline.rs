//! `acme:` without an ACME server: parsing (what `endpoints check` runs), the cache at
//! start, an unreachable server while a cached certificate serves, and the TLS-ALPN-01
//! path of the handshake.

use crate::common;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use endpoints_conformance::Suite;
use endpoints_core::ErrorKind;
use endpoints_core::Listener;
use endpoints_core::registry::{build_client, build_server};
use endpoints_tls::TlsInfo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use endpoints_proxy as _;
use endpoints_tcp as _;
use endpoints_tcp6 as _;
use endpoints_unix as _;

const NAME: &str = "test.example";

/// Generous bound for waits on the background task (it acts within a second here).
const BOUND: Duration = Duration::from_secs(30);

struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "endpoints-acme-offline-{test}-{}",
            std::process::id()
        ));
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

fn a_pem_file(dir: &Path) -> PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["ca.example".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let p = dir.join("ca.pem");
    std::fs::write(&p, cert.pem()).expect("write");
    p
}

#[test]
fn descriptions() {
    let scratch = Scratch::new("parse");
    let ca = a_pem_file(&scratch.0);
    let ca = ca.display();
    let cache = scratch.0.join("never-created");
    let c = cache.display();
    Suite::server("acme")
        .valid(&format!("acme:domains=example.com:cache={c}:tcp:443"))
        .valid(&format!(
            "acme:domains=example.com,www.example.com:cache={c}:contact=mailto\\:ops@example.com:tcp:443"
        ))
        .valid(&format!(
            "acme:domains=example.com:cache={c}:directory=staging:alpn=h2,http/1.1:minVersion=1.3:tcp:8443:interface=127.0.0.1"
        ))
        .valid(&format!(
            "acme:domains=example.com:cache={c}:directory=https\\://127.0.0.1\\:14000/dir:trustRoots={ca}:clientCA={ca}:requireClientCert=0:tcp:443"
        ))
        .invalid("acme", ErrorKind::MissingParameter)
        .invalid(&format!("acme:domains=example.com:cache={c}"), ErrorKind::MissingParameter)
        .invalid(&format!("acme:cache={c}:tcp:443"), ErrorKind::MissingParameter)
        .invalid("acme:domains=example.com:tcp:443", ErrorKind::MissingParameter)
        .invalid(&format!("acme:domains=example.com:cache={c}:bogus=1:tcp:443"), ErrorKind::UnknownParameter)
        .invalid(&format!("acme:domains=*.example.com:cache={c}:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=192.0.2.1:cache={c}:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=exa mple.com:cache={c}:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=localhost:cache={c}:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:directory=ftp\\://x/dir:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:directory=https\\:///dir:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:contact=ops@example.com:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:trustRoots=/no/such/file.pem:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:retry=0:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:handshakeTimeout=0:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:alpn=acme-tls/1:tcp:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:ssl:443"), ErrorKind::InvalidValue)
        .invalid(&format!("acme:domains=example.com:cache={c}:tcp:99999"), ErrorKind::InvalidValue)
        .random_cases(500)
        .run();
    // Building (what `endpoints check` does) writes nothing.
    assert!(!cache.exists(), "building created the cache directory");
}

#[test]
fn errors_name_the_parameter_and_say_what_to_do() {
    let cases = [
        ("acme:domains=*.example.com:cache=c:tcp:443", "DNS-01"),
        (
            "acme:domains=example.com:cache=c:directory=http\\://x/dir:tcp:443",
            "https://",
        ),
        (
            "acme:domains=example.com:cache=c:contact=ops@example.com:tcp:443",
            "mailto",
        ),
        (
            "acme:domains=example.com:cache=c:tls:443",
            "plain transport",
        ),
        (
            "acme:domains=example.com:cache=c",
            "acme:domains=example.com:cache=",
        ),
    ];
    for (text, hint) in cases {
        let e = build_server(&text.parse().expect("parse")).expect_err(text);
        let msg = e.to_string();
        assert!(msg.contains(hint), "`{text}`: {msg}");
    }
    let e = endpoints_acme::build(
        &"acme:domains=example.com:cache=c:directory=ftp\\://x:tcp:443"
            .parse()
            .expect("parse"),
    )
    .expect_err("ftp");
    assert_eq!(e.parameter(), Some("directory"), "{e}");
}

#[test]
fn directory_shorthands_and_cache_keys() {
    let d = |dir: &str| {
        endpoints_acme::build(
            &format!("acme:domains=example.com:cache=/c:directory={dir}:tcp:443")
                .parse()
                .expect("parse"),
        )
        .expect("build")
    };
    assert_eq!(
        d("staging").directory(),
        endpoints_acme::LETS_ENCRYPT_STAGING
    );
    assert_eq!(d("letsencrypt").directory(), endpoints_acme::LETS_ENCRYPT);
    let default = endpoints_acme::build(
        &"acme:domains=example.com:cache=/c:tcp:443"
            .parse()
            .expect("parse"),
    )
    .expect("build");
    assert_eq!(default.directory(), endpoints_acme::LETS_ENCRYPT);
    // Staging and production never share files.
    assert_ne!(d("staging").cache_dir(), default.cache_dir());
    assert!(default.cache_dir().starts_with("/c"));
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as u8, d as u8)
}

/// (year, month, day), `days_from_today` away.
fn date(days_from_today: i64) -> (i32, u8, u8) {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        / 86_400;
    civil(today + days_from_today)
}

/// A CA and a certificate for `NAME` valid from 60 days ago to 10 days ahead (so its
/// renewal is due), written as the cache's `NAME.pem`. Returns the CA file and the leaf.
fn cache_a_due_certificate(dir: &Path, cache_dir: &Path) -> (PathBuf, CertificateDer<'static>) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "offline test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![NAME.to_owned()]).expect("params");
    let ((y0, m0, d0), (y1, m1, d1)) = (date(-60), date(10));
    params.not_before = rcgen::date_time_ymd(y0, m0, d0);
    params.not_after = rcgen::date_time_ymd(y1, m1, d1);
    let leaf = params.signed_by(&key, &issuer).expect("leaf");
    std::fs::create_dir_all(cache_dir).expect("cache dir");
    std::fs::write(
        cache_dir.join(format!("{NAME}.pem")),
        format!("{}{}", key.serialize_pem(), leaf.pem()),
    )
    .expect("write");
    let ca_path = dir.join("offline-ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write");
    (ca_path, leaf.der().clone())
}

fn serve_echo(mut listener: Box<dyn Listener>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}

fn port_of(l: &dyn Listener) -> u16 {
    l.local_addr()
        .expect("bound")
        .ip()
        .map(|a| a.port())
        .expect("an IP listener")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_acme_server_leaves_the_cached_certificate_serving() {
    common::capture::install();
    let scratch = Scratch::new("unreachable");
    // A port with nothing listening: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let desc = format!(
        "acme:domains={NAME}:cache={}:directory=https\\://127.0.0.1\\:{dead}/dir:retry=1:tcp:0:interface=127.0.0.1",
        scratch.0.join("cache").display()
    );
    let ep = endpoints_acme::build(&desc.parse().expect("parse")).expect("build");
    let (ca, cached) = cache_a_due_certificate(&scratch.0, &ep.cache_dir());
    let mut status = ep.status();
    let listener = endpoints_core::ServerEndpoint::listen(&ep)
        .await
        .expect("listen");
    let port = port_of(listener.as_ref());
    let server = serve_echo(listener);

    let s = tokio::time::timeout(BOUND, status.wait_for(|s| s.failures >= 1))
        .await
        .expect("a failed renewal within the bound")
        .expect("status")
        .clone();
    let e = s.last_error.expect("an error");
    println!("{e}");
    assert!(
        e.contains(&format!("https://127.0.0.1:{dead}/dir")),
        "names the URL: {e}"
    );
    assert!(
        e.contains("cannot reach the ACME server") && e.contains("refused"),
        "says why: {e}"
    );
    let cert = s.certificate.expect("the cached certificate");
    assert!(cert.from_cache);
    assert!(cert.renew_at < SystemTime::now(), "the renewal was due");

    // Still serving the cached certificate, verified by our `tls:` client.
    let inner = endpoints_core::escape(&format!("tcp:127.0.0.1:{port}"));
    let d = format!(
        "tls:{NAME}:{port}:trustRoots={}:endpoint={inner}:timeout=10",
        ca.display()
    );
    let mut c = build_client(&d.parse().expect("parse"))
        .expect("build")
        .connect()
        .await
        .expect("handshake with the cached certificate");
    c.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
    let info = c.extensions().get::<TlsInfo>().expect("TlsInfo");
    assert_eq!(info.peer_certificates.first(), Some(&cached));

    // Retried with backoff, still failing, still serving.
    let s = tokio::time::timeout(BOUND, status.wait_for(|s| s.failures >= 2))
        .await
        .expect("a retry within the bound")
        .expect("status")
        .clone();
    assert!(s.certificate.is_some_and(|c| c.from_cache));
    // Each failure is logged as a warning saying what happens next.
    let url = format!("https://127.0.0.1:{dead}/dir");
    let logged = common::capture::lines_with(&[
        "WARN",
        &url,
        "cannot reach the ACME server",
        "the last certificate goes on serving",
        "retrying in",
    ]);
    assert!(logged.len() >= 2, "{logged:?}");
    assert!(logged[0].contains("retrying in 1s"), "{logged:?}");
    assert!(
        logged[1].contains("retrying in 2s"),
        "backoff doubles: {logged:?}"
    );
    server.abort();
}

/// A raw rustls client offering `alpn` with SNI `NAME`, accepting any certificate.
async fn raw_handshake(port: u16, alpn: &[&[u8]]) -> std::io::Result<Option<Vec<u8>>> {
    #[derive(Debug)]
    struct AcceptAll(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AcceptAll {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(NAME).expect("name"), tcp)
        .await?;
    Ok(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_hellos_are_not_application_connections() {
    let scratch = Scratch::new("alpn");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let desc = format!(
        "acme:domains={NAME}:cache={}:directory=https\\://127.0.0.1\\:{dead}/dir:retry=60:alpn=http/1.1:tcp:0:interface=127.0.0.1",
        scratch.0.join("cache").display()
    );
    let ep = endpoints_acme::build(&desc.parse().expect("parse")).expect("build");
    cache_a_due_certificate(&scratch.0, &ep.cache_dir());
    let mut listener = endpoints_core::ServerEndpoint::listen(&ep)
        .await
        .expect("listen");
    let port = port_of(listener.as_ref());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            let alpn = conn
                .extensions()
                .get::<TlsInfo>()
                .and_then(|i| i.alpn.clone());
            let _ = tx.send(alpn);
        }
    });
    // No challenge pending: a validation hello is refused (no certificate for it).
    assert!(raw_handshake(port, &[b"acme-tls/1"]).await.is_err());
    // Ordinary clients: the configured ALPN, or none; a protocol we do not speak is not
    // an error (no `acme-tls/1` leaks into ordinary handshakes).
    assert_eq!(
        raw_handshake(port, &[b"h2", b"http/1.1"])
            .await
            .expect("h2,http/1.1"),
        Some(b"http/1.1".to_vec())
    );
    assert_eq!(raw_handshake(port, &[]).await.expect("no ALPN"), None);
    // Only the two ordinary handshakes reached `accept()`, in order.
    for want in [Some(b"http/1.1".to_vec()), None] {
        let got = tokio::time::timeout(BOUND, rx.recv())
            .await
            .expect("accepted")
            .expect("sent");
        assert_eq!(got, want);
    }
    assert!(
        rx.try_recv().is_err(),
        "the validation hello reached accept()"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp6_unix_and_haproxy() {
    let scratch = Scratch::new("inner");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let sock = scratch.0.join("acme.sock");
    // (inner server description, the client for a port: the same transport, then TLS).
    type Client = Box<dyn Fn(u16, &Path) -> String>;
    let cases: Vec<(String, Client)> = vec![
        (
            "tcp6:0:interface=[::1]".to_owned(),
            Box::new(|port, ca| {
                let inner = endpoints_core::escape(&format!("tcp:[::1]:{port}"));
                format!(
                    "tls:{NAME}:{port}:trustRoots={}:endpoint={inner}:timeout=10",
                    ca.display()
                )
            }),
        ),
        (
            format!("unix:{}", sock.display()),
            Box::new({
                let sock = sock.clone();
                move |_, ca| {
                    let inner = endpoints_core::escape(&format!("unix:{}", sock.display()));
                    format!(
                        "tls:{NAME}:443:trustRoots={}:endpoint={inner}:timeout=10",
                        ca.display()
                    )
                }
            }),
        ),
        (
            "haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1".to_owned(),
            Box::new(|port, ca| {
                let inner = endpoints_core::escape(&format!("tcp:127.0.0.1:{port}"));
                format!(
                    "haproxy:tls:{NAME}:{port}:trustRoots={}:endpoint={inner}:timeout=10",
                    ca.display()
                )
            }),
        ),
    ];
    for (i, (inner, client)) in cases.iter().enumerate() {
        let cache = scratch.0.join(format!("cache{i}"));
        let desc = format!(
            "acme:domains={NAME}:cache={}:directory=https\\://127.0.0.1\\:{dead}/dir:retry=60:{inner}",
            cache.display()
        );
        let ep =
            endpoints_acme::build(&desc.parse().expect("parse")).unwrap_or_else(|e| panic!("{e}"));
        let (ca, cached) = cache_a_due_certificate(&scratch.0, &ep.cache_dir());
        let listener = endpoints_core::ServerEndpoint::listen(&ep)
            .await
            .unwrap_or_else(|e| panic!("{inner}: {e}"));
        let port = listener
            .local_addr()
            .expect("addr")
            .ip()
            .map_or(0, |a| a.port());
        let server = serve_echo(listener);
        let d = client(port, &ca);
        let mut c = build_client(&d.parse().unwrap_or_else(|e| panic!("{d}: {e}")))
            .unwrap_or_else(|e| panic!("{d}: {e}"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{inner}: {e}"));
        c.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping", "{inner}");
        let info = c.extensions().get::<TlsInfo>().expect("TlsInfo");
        assert_eq!(info.peer_certificates.first(), Some(&cached), "{inner}");
        server.abort();
    }
}
