//! Test helpers: build and connect `exec:` descriptions, find a child's state in /proc, count
//! this process's descriptors and children, capture WARN events, a throw-away PKI.
#![allow(dead_code)] // each test binary uses part of it

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use endpoints_core::Connection;
use endpoints_core::registry::build_client;
use endpoints_exec::ExecInfo;

/// The deadline for anything a test waits on: a child's exit or reaping takes milliseconds;
/// 10 s is far above that on a loaded 2-core machine, and still ends a hung test.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Build `text` and connect.
pub(crate) async fn connect(text: &str) -> io::Result<Connection> {
    let d = text.parse().unwrap_or_else(|e| panic!("{e}"));
    build_client(&d)
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
}

/// The child's pid, from the connection's extensions.
pub(crate) fn pid_of(conn: &Connection) -> u32 {
    conn.extensions()
        .get::<ExecInfo>()
        .expect("an exec: connection carries ExecInfo")
        .pid
}

/// The state letter of process `pid` (`R`, `S`, `Z` ...), `None` once it is gone (reaped).
pub(crate) fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...: comm may hold spaces and parentheses; the state follows the last `)`.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Wait (bounded by [`PATIENCE`]) until `pid` is gone: exited and reaped, no zombie. Returns
/// how long it took.
pub(crate) async fn wait_gone(pid: u32) -> Duration {
    let start = Instant::now();
    while let Some(s) = state(pid) {
        assert!(
            start.elapsed() < PATIENCE,
            "pid {pid} still there after {PATIENCE:?} (state {s})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// The open descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The processes whose parent is this process (zombies included).
pub(crate) fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            v.push(pid);
        }
    }
    v
}

/// Whether `program probe` runs; skips (prints why) or, under CI=true, fails.
pub(crate) fn have(program: &str, probe: &str, package: &str) -> bool {
    endpoints_conformance::peer_program(program, probe, package)
}

/// A fresh directory for this test's files.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("endpoints-exec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A CA (`ca.pem`) and a `localhost`/127.0.0.1 server certificate with its key (`server.pem`).
pub(crate) fn pki(name: &str) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let dir = temp_dir(&format!("pki-{name}"));
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "exec test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    std::fs::write(
        dir.join("server.pem"),
        format!("{}{}", cert.pem(), key.serialize_pem()),
    )
    .expect("write");
    dir
}

/// Our `ssl:` server on loopback, echoing every connection; returns its port.
pub(crate) async fn ssl_echo_server(pki: &Path) -> u16 {
    let d = format!(
        "ssl:0:interface=127.0.0.1:privateKey={}",
        endpoints_core::escape(&pki.join("server.pem").display().to_string())
    );
    let server = endpoints_core::registry::build_server(&d.parse().expect("parse"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut listener = server.listen().await.expect("listen");
    let port = listener
        .local_addr()
        .expect("addr")
        .ip()
        .map(|a| a.port())
        .expect("ip listener");
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// Records WARN events as `field=value ...` lines, for `tracing::subscriber::set_default`.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<String>>>);

impl Capture {
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if *e.metadata().level() == tracing::Level::WARN {
            let mut f = Fields(String::new());
            e.record(&mut f);
            self.0.lock().expect("lock").push(f.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
