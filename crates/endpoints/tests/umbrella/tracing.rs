//! Logging: one span per connection with the endpoint and the peer; nothing above debug for
//! ordinary client misbehaviour (garbage instead of a PROXY header, a failed TLS handshake).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints::service::ServerService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Default)]
struct Seen {
    spans: Vec<(String, Vec<(String, String)>)>,
    loud: Vec<String>,
    /// Every event: level and fields.
    events: Vec<(Level, Vec<(String, String)>)>,
}

struct Recorder(Arc<Mutex<Seen>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut f = Fields(Vec::new());
        span.record(&mut f);
        let mut seen = self.0.lock().expect("lock");
        seen.spans.push((span.metadata().name().to_owned(), f.0));
        Id::from_u64(seen.spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut all = Fields(Vec::new());
        event.record(&mut all);
        self.0
            .lock()
            .expect("lock")
            .events
            .push((*event.metadata().level(), all.0));
        if *event.metadata().level() <= Level::INFO {
            let mut f = Fields(Vec::new());
            event.record(&mut f);
            self.0.lock().expect("lock").loud.push(format!(
                "{} {:?}",
                event.metadata().level(),
                f.0
            ));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn spans_per_connection_and_quiet_about_client_misbehaviour() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let _guard = tracing::subscriber::set_default(Recorder(seen.clone()));

    // A service: each connection runs in a `connection` span with the listener and the peer.
    let (served_tx, mut served) = tokio::sync::mpsc::channel::<()>(1);
    let svc = ServerService::start(&["tcp:0:interface=127.0.0.1"], move |mut c| {
        let served_tx = served_tx.clone();
        async move {
            let mut b = [0u8; 1];
            let _ = c.read(&mut b).await;
            let _ = served_tx.send(()).await;
        }
    })
    .await
    .expect("start");
    let d: endpoints::Description = svc.listening()[0].parse().expect("description");
    let port: u16 = d.get("port").and_then(|p| p.parse().ok()).expect("port");
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let me = client.local_addr().expect("local");
    client.write_all(b"x").await.expect("write");
    tokio::time::timeout(Duration::from_secs(5), served.recv())
        .await
        .expect("served in time");
    svc.shutdown(Duration::from_secs(2)).await;

    // Misbehaving clients of a PROXY listener and a TLS listener.
    // `trusted=any`: this test is about client misbehaviour, not the listen-time warning.
    let mut proxy = endpoints::listen("haproxy:trusted=any:timeout=1:tcp:0:interface=127.0.0.1")
        .await
        .expect("listen");
    let paddr = proxy.local_addr().expect("bound").ip().expect("ip");
    let dir = std::env::temp_dir().join(format!("endpoints-tracing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = self_signed_pem(&dir);
    let mut tls = endpoints::listen(&format!(
        "ssl:0:privateKey={key}:interface=127.0.0.1:handshakeTimeout=1"
    ))
    .await
    .expect("listen");
    let taddr = tls.local_addr().expect("bound").ip().expect("ip");
    for (addr, bytes) in [
        (paddr, &b"GET / HTTP/1.1\r\n\r\n"[..]),
        (paddr, b"PROXY TCP4 1.2"),
        (taddr, b"\x16\x03\x01\x00\x05hello"),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(bytes).await.expect("write");
        drop(s);
    }
    // Drive the listeners while the bad connections are handled (they never come out).
    let _ = tokio::time::timeout(Duration::from_millis(1500), proxy.accept()).await;
    let _ = tokio::time::timeout(Duration::from_millis(1500), tls.accept()).await;

    let seen = seen.lock().expect("lock");
    let conn_span = seen
        .spans
        .iter()
        .find(|(name, _)| name == "connection")
        .expect("a connection span");
    let field = |k: &str| {
        conn_span
            .1
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(
        field("listener").contains(&format!("tcp:port={port}")),
        "{conn_span:?}"
    );
    assert!(field("peer").contains(&me.to_string()), "{conn_span:?}");
    assert!(
        seen.loud.is_empty(),
        "logged above debug for client misbehaviour: {:?}",
        seen.loud
    );
}

/// A self-signed certificate and key in one PEM file, made with rcgen.
fn self_signed_pem(dir: &std::path::Path) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let path = dir.join("server.pem");
    std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");
    // A private key readable by others is warned about: this one is the server's own.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    path.display().to_string()
}

/// An endpoint whose every attempt fails.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused:")
    }
}

#[endpoints::async_trait]
impl endpoints::ClientEndpoint for Refused {
    async fn connect(&self) -> std::io::Result<endpoints::Connection> {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "certificate not trusted",
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn client_service_warns_once_per_run_then_counts_at_debug() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let _guard = tracing::subscriber::set_default(Recorder(seen.clone()));
    let svc = endpoints::service::ClientService::new(Box::new(Refused), |_c| ((), async {}))
        .retry(|_| Duration::from_secs(1));
    svc.start();
    // Four failures: at 0, 1, 2 and 3 s of virtual time.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    svc.stop().await;
    let seen = seen.lock().expect("lock");
    let failures: Vec<_> = seen
        .events
        .iter()
        .filter(|(_, f)| {
            f.iter()
                .any(|(k, v)| k == "error" && v.contains("not trusted"))
        })
        .collect();
    let levels: Vec<Level> = failures.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        levels,
        [Level::WARN, Level::DEBUG, Level::DEBUG, Level::DEBUG],
        "{failures:?}"
    );
    let field = |i: usize, k: &str| {
        failures[i]
            .1
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field(0, "endpoint"), "refused:");
    assert!(
        field(0, "message").contains("DEBUG"),
        "says where the rest go: {failures:?}"
    );
    assert_eq!(field(3, "failures"), "4", "{failures:?}");
}
