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

use crate::terminate::Pems;
use crate::{Config, Outcome};

#[derive(Clone, Copy)]
pub(crate) enum Server {
    Raw,
    Endpoints,
}

/// A certificate (ECDSA P-256, rcgen's default) for `localhost`, in files and in memory.
pub(crate) struct Fixture {
    pem: String,
    pems: Pems,
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
        let file = |what: &str, text: String| {
            let path = std::env::temp_dir()
                .join(format!("endpoints-bench-{}-{what}.pem", std::process::id()));
            std::fs::write(&path, text).expect("write pem");
            path.display().to_string()
        };
        let pem = file("both", format!("{}{}", cert.pem(), key.serialize_pem()));
        let pems = Pems {
            cert: file("cert", cert.pem()),
            key: file("key", key.serialize_pem()),
            both: pem.clone(),
        };
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
            pem,
            pems,
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }

    /// The certificate in PEM files.
    pub(crate) fn pems(&self) -> &Pems {
        &self.pems
    }

    /// Full handshakes per second: 4 clients (raw tokio-rustls) each handshake, read the
    /// server's one byte, and close, until `cfg.handshakes` are done.
    pub(crate) async fn handshake_rate(&self, server: Server, cfg: &Config) -> Outcome<f64> {
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
                    for i in 0..per_client {
                        // Bounded: 10 s is hundreds of times a loopback handshake.
                        match tokio::time::timeout(
                            Duration::from_secs(10),
                            one_handshake(&connector, addr),
                        )
                        .await
                        {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => return Err(format!("handshake {i}: {e}")),
                            Err(_) => return Err(format!("handshake {i}: not done within 10 s")),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut failure = None;
        for c in clients {
            match c.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = Some(e),
                Err(e) => failure = Some(format!("client task: {e}")),
            }
        }
        let rate = (per_client * 4) as f64 / started.elapsed().as_secs_f64();
        task.abort();
        failure.map_or(Ok(rate), Err)
    }

    /// `openssl s_time -new` for `seconds` against `openssl s_server` with this certificate:
    /// connections per second.
    pub(crate) async fn s_time_openssl(&self, seconds: u32) -> Outcome<f64> {
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
            .map_err(|e| format!("openssl s_server: {e}"))?;
        let ready = wait_port(port).await;
        let rate = match ready {
            Ok(()) => s_time(port, seconds).await,
            Err(e) => Err(format!("openssl s_server: {e}")),
        };
        let _ = server.kill().await;
        rate
    }

    /// `openssl s_time -new` for `seconds` against an `ssl:` listener with this certificate.
    pub(crate) async fn s_time_ours(&self, seconds: u32) -> Outcome<f64> {
        let desc = format!(
            "ssl:0:privateKey={}:interface=127.0.0.1",
            endpoints::escape(&self.pem)
        );
        let mut l: Box<dyn Listener> = endpoints::listen(&desc)
            .await
            .map_err(|e| format!("{desc}: {e}"))?;
        let port = l
            .local_addr()
            .ok()
            .and_then(|a| a.ip())
            .map(|a| a.port())
            .ok_or("ssl: listener without a port")?;
        let task = tokio::spawn(async move {
            while let Ok(conn) = l.accept().await {
                drop(conn);
            }
        });
        let ours = s_time(port, seconds).await;
        task.abort();
        ours
    }
}

/// Whether `openssl` runs.
pub(crate) fn openssl_present() -> bool {
    std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for f in [&self.pems.cert, &self.pems.key, &self.pems.both] {
            let _ = std::fs::remove_file(f);
        }
    }
}

async fn one_handshake(connector: &TlsConnector, addr: SocketAddr) -> std::io::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    let mut b = [0u8; 1];
    let _ = tls.read(&mut b).await;
    Ok(())
}

/// Wait (up to 5 s) until something accepts on `port`.
async fn wait_port(port: u16) -> Outcome<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("nothing listens on port {port} after 5 s"))
}

/// Runs `openssl s_time -new`; parses "N connections in T real seconds".
async fn s_time(port: u16, seconds: u32) -> Outcome<f64> {
    let run = tokio::process::Command::new("openssl")
        .args([
            "s_time",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-new",
            "-time",
            &seconds.to_string(),
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    // Bounded: s_time stops itself after `seconds`; 30 s more means it hangs.
    let out = tokio::time::timeout(Duration::from_secs(u64::from(seconds) + 30), run)
        .await
        .map_err(|_| format!("openssl s_time against port {port}: no end within {seconds} + 30 s"))?
        .map_err(|e| format!("openssl s_time: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_s_time(&text).ok_or_else(|| {
        format!(
            "openssl s_time against port {port}: no \"connections in ... real seconds\" line: {}",
            text.trim()
        )
    })
}

fn parse_s_time(text: &str) -> Option<f64> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn s_time_output_is_parsed() {
        let out = "Collecting connection statistics for 3 seconds\n\
                   2508 connections in 2.51s; 999.20 connections/user sec, bytes read 0\n\
                   2508 connections in 4 real seconds, 0 bytes read per connection\n";
        assert_eq!(super::parse_s_time(out), Some(627.0));
        assert_eq!(super::parse_s_time("error"), None);
    }
}
