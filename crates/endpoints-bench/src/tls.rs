//! TLS handshake benchmarks.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use endpoints::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Config;

#[derive(Clone, Copy)]
pub(crate) enum Server {
    Raw,
    Endpoints,
}

/// A certificate (ECDSA P-256, rcgen's default) for `localhost`, in files and in memory.
pub(crate) struct Fixture {
    pem: String,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let pem = std::env::temp_dir().join(format!("endpoints-bench-{}.pem", std::process::id()));
        std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write pem");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key_der =
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key der");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The same settings `ssl:` builds: TLS 1.2 + 1.3, no client auth, one certificate.
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key_der)
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(chain[0].clone()).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            pem: pem.display().to_string(),
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }

    /// Full handshakes per second: 4 clients (raw tokio-rustls) each handshake, read the
    /// server's one byte, and close, until `cfg.handshakes` are done.
    pub(crate) async fn handshake_rate(&self, server: Server, cfg: &Config) -> f64 {
        let (addr, task) = match server {
            Server::Raw => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = l.local_addr().expect("addr");
                let acceptor = TlsAcceptor::from(self.server.clone());
                let task = tokio::spawn(async move {
                    loop {
                        let Ok((s, _)) = l.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            if let Ok(Ok(mut tls)) =
                                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(s))
                                    .await
                            {
                                let _ = tls.write_all(b"!").await;
                                let _ = tls.shutdown().await;
                            }
                        });
                    }
                });
                (addr, task)
            }
            Server::Endpoints => {
                let desc = format!(
                    "ssl:0:privateKey={}:interface=127.0.0.1",
                    endpoints::escape(&self.pem)
                );
                let mut l: Box<dyn Listener> = endpoints::listen(&desc).await.expect("listen");
                let addr = l.local_addr().expect("addr").ip().expect("ip");
                let task = tokio::spawn(async move {
                    while let Ok(mut conn) = l.accept().await {
                        tokio::spawn(async move {
                            let _ = conn.write_all(b"!").await;
                            let _ = conn.shutdown().await;
                        });
                    }
                });
                (addr, task)
            }
        };
        let per_client = cfg.handshakes / 4;
        let started = Instant::now();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let connector = TlsConnector::from(self.client.clone());
                tokio::spawn(async move {
                    for _ in 0..per_client {
                        one_handshake(&connector, addr).await;
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.expect("client task");
        }
        let rate = (per_client * 4) as f64 / started.elapsed().as_secs_f64();
        task.abort();
        rate
    }

    /// `openssl s_time -new` for a few seconds against `openssl s_server`, then against our
    /// `ssl:` listener; connections per second each. `None` without `openssl`.
    pub(crate) async fn s_time_pair(&self, quick: bool) -> Option<(f64, f64)> {
        std::process::Command::new("openssl")
            .arg("version")
            .output()
            .ok()?;
        let seconds = if quick { "2" } else { "5" };
        let port = crate::free_port();
        let mut server = tokio::process::Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                &self.pem,
                "-key",
                &self.pem,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        wait_port(port).await;
        let openssl = s_time(port, seconds).await;
        let _ = server.kill().await;

        let desc = format!(
            "ssl:0:privateKey={}:interface=127.0.0.1",
            endpoints::escape(&self.pem)
        );
        let mut l: Box<dyn Listener> = endpoints::listen(&desc).await.ok()?;
        let port = l.local_addr().ok()?.ip()?.port();
        let task = tokio::spawn(async move {
            while let Ok(conn) = l.accept().await {
                drop(conn);
            }
        });
        let ours = s_time(port, seconds).await;
        task.abort();
        Some((openssl?, ours?))
    }
}

async fn one_handshake(connector: &TlsConnector, addr: SocketAddr) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let mut b = [0u8; 1];
    let _ = tls.read(&mut b).await;
}

async fn wait_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs `openssl s_time -new`; parses "N connections in T real seconds".
async fn s_time(port: u16, seconds: &str) -> Option<f64> {
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_time",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-new",
            "-time",
            seconds,
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))?;
    let mut words = line.split_whitespace();
    let n: f64 = words.next()?.parse().ok()?;
    let secs: f64 = line
        .split("connections in")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(n / secs)
}
