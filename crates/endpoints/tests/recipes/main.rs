//! docs/recipes.md, tested: each recipe is a module here (a whole program, `main` included),
//! the doc quotes it between `ANCHOR` markers (checked by `the_doc_quotes_the_recipes_exactly`),
//! and a test runs it as a real process against real peers. This binary has no libtest
//! harness (`harness = false`): started with `RECIPE=name`, it is that recipe's program, with
//! the arguments given (so clap parses them as a user's program would); otherwise it runs the
//! tests below, in order (`cargo test --features ... --test recipes -- FILTER`).
//!
//! Every wait on a child is bounded (30 s, against an expected few milliseconds, or about
//! 2.5 s for the client's backoff: 10x and more), so a hang is a failure, not a stuck run.

mod client;
mod grpc;
mod restart;
mod server;
mod tunnel;
mod web;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use endpoints_test_support::peers;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

type Recipe = fn() -> Result<(), Box<dyn std::error::Error>>;

const RECIPES: &[(&str, Recipe)] = &[
    ("server", server::run),
    ("web", web::run),
    ("grpc", grpc::run),
    ("client", client::run),
    ("restart", restart::run),
    ("tunnel", tunnel::run),
];

type Test = fn() -> Pin<Box<dyn Future<Output = ()>>>;

const TESTS: &[(&str, Test)] = &[
    ("the_doc_quotes_the_recipes_exactly", || {
        Box::pin(async { the_doc_quotes_the_recipes_exactly() })
    }),
    ("server_drains_on_sigterm", || {
        Box::pin(server_drains_on_sigterm())
    }),
    (
        "axum_stops_on_sigterm",
        || Box::pin(axum_stops_on_sigterm()),
    ),
    ("tonic_over_unix", || Box::pin(tonic_over_unix())),
    ("client_reconnects_with_hooks", || {
        Box::pin(client_reconnects_with_hooks())
    }),
    (
        "server_behind_haproxy",
        || Box::pin(server_behind_haproxy()),
    ),
    ("server_on_a_certbot_tree", || {
        Box::pin(server_on_a_certbot_tree())
    }),
    ("server_under_systemd_socket_activation", || {
        Box::pin(server_under_systemd_socket_activation())
    }),
    ("restart_hands_over_without_refusing", || {
        Box::pin(restart_hands_over_without_refusing())
    }),
    ("websocket_tunnel_both_ends", || {
        Box::pin(websocket_tunnel_both_ends())
    }),
];

fn main() -> ExitCode {
    if let Ok(name) = std::env::var("RECIPE") {
        let Some((_, recipe)) = RECIPES.iter().find(|(n, _)| *n == name) else {
            eprintln!("no recipe `{name}`");
            return ExitCode::from(2);
        };
        return match recipe() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in TESTS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let outcome = std::panic::catch_unwind(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(test())
        });
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failures: {failed:?}");
        ExitCode::from(101)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Within 30 s: expected in milliseconds (a few seconds for the client's backoff), so the
/// bound only turns a hang into a failure.
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 30 s"))
}

/// A recipe running as a child process, its stdout and stderr as lines.
struct Child {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Child {
    fn start(recipe: &str, args: &[&str]) -> Self {
        let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("exe"));
        cmd.env("RECIPE", recipe).args(args);
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: tokio::process::Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the recipe starts");
        let (tx, lines) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for (tag, stream) in [
            (
                "out",
                Box::new(out) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            ),
            ("err", Box::new(err)),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(format!("{tag}: {l}"));
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line (from either stream) containing `needle`.
    async fn line_with(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(l) = self.lines.recv().await {
                self.seen.push(l.clone());
                if l.contains(needle) {
                    return Some(l);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(l)) => l,
            _ => panic!(
                "no line with {needle:?} within 30 s; saw:\n{}",
                self.seen.join("\n")
            ),
        }
    }

    /// The port of the next `listening on tcp:port=N...` (or any `port=N`) line.
    async fn port(&mut self) -> u16 {
        let l = self.line_with("listening on").await;
        port_in(&l).unwrap_or_else(|| panic!("no port in {l:?}"))
    }

    fn signal(&self, sig: &str) {
        kill(sig, self.child.id().expect("running"));
    }

    async fn exit_ok(mut self) -> Vec<String> {
        let status = bounded("the recipe exits", self.child.wait())
            .await
            .expect("wait");
        // What it printed until the end.
        while let Ok(Some(l)) =
            tokio::time::timeout(Duration::from_secs(5), self.lines.recv()).await
        {
            self.seen.push(l);
        }
        assert!(status.success(), "{status}; saw:\n{}", self.seen.join("\n"));
        self.seen
    }
}

fn port_in(line: &str) -> Option<u16> {
    let rest = line.split("port=").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn kill(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill(1) runs")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Write `line`, read it back (an echo server at the other end).
async fn echo_line(conn: &mut TcpStream, line: &str) {
    conn.write_all(line.as_bytes()).await.expect("write");
    let mut got = vec![0u8; line.len()];
    bounded("the echo", conn.read_exact(&mut got))
        .await
        .expect("read the echo");
    assert_eq!(String::from_utf8_lossy(&got), line);
}

async fn read_to_close(conn: &mut TcpStream) -> usize {
    let mut rest = Vec::new();
    bounded("the close", conn.read_to_end(&mut rest))
        .await
        .expect("a clean close");
    rest.len()
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("endpoints-recipe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A port nothing listens on now (for peers that take a port in their config).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// ---------------------------------------------------------------------------------------
// The doc and the code

/// The lines between the anchor markers.
fn anchor(source: &str, name: &str) -> Option<String> {
    let mut out: Option<Vec<&str>> = None;
    for line in source.lines() {
        let marker = line
            .trim_start()
            .trim_start_matches("//")
            .trim_start_matches('#')
            .trim();
        if marker == format!("ANCHOR: {name}") {
            out = Some(Vec::new());
        } else if marker == format!("ANCHOR_END: {name}") {
            return out.map(|l| l.join("\n"));
        } else if let Some(lines) = out.as_mut() {
            lines.push(line);
        }
    }
    None
}

/// Every block after `<!-- include: PATH#NAME -->` in docs/recipes.md equals that anchor of
/// PATH, and every recipe module here is quoted.
fn the_doc_quotes_the_recipes_exactly() {
    let doc = std::fs::read_to_string(root().join("docs/recipes.md")).expect("docs/recipes.md");
    let lines: Vec<&str> = doc.lines().collect();
    let mut quoted = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(spec) = line
            .trim()
            .strip_prefix("<!-- include: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let (path, name) = spec.split_once('#').expect("PATH#NAME");
        let source = std::fs::read_to_string(root().join(path))
            .unwrap_or_else(|e| panic!("recipes.md line {}: cannot read {path}: {e}", i + 1));
        let want = anchor(&source, name)
            .unwrap_or_else(|| panic!("recipes.md line {}: no anchor `{name}` in {path}", i + 1));
        assert!(
            lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
            "recipes.md line {}: a fenced block must follow the include line",
            i + 2
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        assert_eq!(
            body.join("\n"),
            want,
            "recipes.md line {}: the block differs from `{name}` in {path}; copy it again \
             (python3 docs/include-recipes.py)",
            i + 3
        );
        quoted.insert(path.to_owned());
    }
    for (recipe, _) in RECIPES {
        let path = format!("crates/endpoints/tests/recipes/{recipe}.rs");
        assert!(quoted.contains(&path), "recipes.md does not quote {path}");
    }
    assert!(
        quoted.contains("crates/endpoints-example-plugin/src/lib.rs"),
        "the plugin recipe quotes the example plugin"
    );
    assert!(
        doc.contains("tunnels bytes, not HTTP-over-WebSocket routes"),
        "the ws: note in front of axum"
    );
}

// ---------------------------------------------------------------------------------------
// 1. A server with --listen, drained on SIGTERM

async fn server_drains_on_sigterm() {
    let sock = temp("server.sock");
    let mut server = Child::start(
        "server",
        &[
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--listen",
            &format!("unix:{}", sock.display()),
        ],
    );
    let port = server.port().await;
    server
        .line_with(&format!("listening on unix:address={}", sock.display()))
        .await;
    let mut idle = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    echo_line(&mut idle, "over tcp\n").await;
    let mut unix = tokio::net::UnixStream::connect(&sock).await.expect("unix");
    unix.write_all(b"over unix\n").await.expect("write");
    let mut got = [0u8; 10];
    bounded("unix echo", unix.read_exact(&mut got))
        .await
        .expect("read");
    assert_eq!(&got, b"over unix\n");
    drop(unix);
    server.signal("TERM");
    assert_eq!(read_to_close(&mut idle).await, 0, "closed for the shutdown");
    let seen = server.exit_ok().await;
    assert!(
        seen.iter()
            .any(|l| l.contains("stopped: 1 drained, 0 aborted")),
        "{seen:#?}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "no longer listening"
    );
    assert!(!sock.exists(), "the socket file is removed");
}

// 2. axum with with_graceful_shutdown

async fn axum_stops_on_sigterm() {
    let mut web = Child::start("web", &["--listen", "tcp:0:interface=127.0.0.1"]);
    let port = web.port().await;
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let me = conn.local_addr().expect("local");
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    let want = format!("hello {me}\n");
    while !String::from_utf8_lossy(&response).ends_with(&want) {
        let mut b = [0u8; 1024];
        let n = bounded("the response", conn.read(&mut b))
            .await
            .expect("read");
        assert!(
            n > 0,
            "closed early: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&b[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    web.signal("TERM");
    assert_eq!(
        read_to_close(&mut conn).await,
        0,
        "the idle keep-alive connection is closed"
    );
    let seen = web.exit_ok().await;
    assert!(seen.iter().any(|l| l.ends_with("stopped")), "{seen:#?}");
}

// 3. tonic over unix

async fn tonic_over_unix() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let sock = temp("grpc.sock");
    let mut grpc = Child::start("grpc", &["--listen", &format!("unix:{}", sock.display())]);
    grpc.line_with("listening on unix:").await;
    // tonic's client over the unix socket, connected by an endpoint description too.
    let desc = format!("unix:{}", sock.display());
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(UnixConnector(desc))
        .await
        .expect("connect");
    let reply = bounded(
        "the health check",
        HealthClient::new(channel).check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("check");
    assert_eq!(
        reply.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    grpc.signal("TERM");
    grpc.exit_ok().await;
}

// ANCHOR: connector
/// tonic's connector: each connection made from an endpoint description.
#[derive(Clone)]
struct UnixConnector(String);

impl tower_service::Service<tonic::codegen::http::Uri> for UnixConnector {
    type Response = hyper_util::rt::TokioIo<endpoints::Connection>;
    type Error = endpoints::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let desc = self.0.clone();
        Box::pin(async move {
            endpoints::connect(&desc)
                .await
                .map(hyper_util::rt::TokioIo::new)
        })
    }
}
// ANCHOR_END: connector

// 4. A reconnecting client with connected/lost hooks

async fn client_reconnects_with_hooks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Child::start("client", &["--connect", &format!("tcp:127.0.0.1:{port}")]);
    let (conn, _) = bounded("the first connection", listener.accept())
        .await
        .expect("accept");
    let mut conn = BufReader::new(conn);
    let mut hello = String::new();
    conn.read_line(&mut hello).await.expect("hello");
    assert_eq!(hello, "hello\n");
    client.line_with("connected to 127.0.0.1:").await;
    conn.get_mut()
        .write_all(b"first answer\n")
        .await
        .expect("write");
    client.line_with("out: first answer").await;
    // The server goes away: the connection ends, then attempts fail (numbered from 1).
    drop(conn);
    drop(listener);
    client.line_with("the connection ended").await;
    client.line_with("attempt 1 failed").await;
    // The server is back on the same port: the next attempt connects.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let (conn, _) = bounded("the reconnection", listener.accept())
        .await
        .expect("accept");
    let l = client.line_with("connected to").await;
    assert!(l.contains(&format!("127.0.0.1:{port} (attempt ")), "{l}");
    client.signal("TERM");
    let seen = client.exit_ok().await;
    assert!(
        seen.iter()
            .any(|l| l.contains("the client service was stopped")),
        "{seen:#?}"
    );
    drop(conn);
}

// 5. Behind haproxy with PROXY

async fn server_behind_haproxy() {
    if !peers::program("haproxy", "-v", "haproxy") {
        return;
    }
    let mut server = Child::start(
        "server",
        &[
            "--listen",
            "haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1",
        ],
    );
    let app = server.port().await;
    let front = free_port();
    // The doc's haproxy.cfg, on free ports.
    let cfg = temp("haproxy.cfg");
    let config = std::fs::read_to_string(root().join("crates/endpoints/tests/recipes/haproxy.cfg"))
        .expect("haproxy.cfg")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{front}"))
        .replace("127.0.0.1:8443", &format!("127.0.0.1:{app}"));
    std::fs::write(&cfg, config).expect("write the haproxy config");
    let mut haproxy = tokio::process::Command::new("haproxy");
    haproxy.args(["-db", "-f"]).arg(&cfg);
    let _haproxy = Child::spawn(haproxy);
    // haproxy listens once it has read its config: retry, bounded.
    let mut conn = bounded("haproxy listening", async {
        loop {
            if let Ok(c) = TcpStream::connect(("127.0.0.1", front)).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let me = conn.local_addr().expect("local");
    echo_line(&mut conn, "through haproxy\n").await;
    // The server saw our address, from the PROXY header, not haproxy's socket.
    server.line_with(&format!("connection from {me}")).await;
    drop(conn);
    server.signal("TERM");
    server.exit_ok().await;
    let _ = std::fs::remove_file(&cfg);
}

// 6. TLS from certbot

async fn server_on_a_certbot_tree() {
    let cb = endpoints_test_support::certbot::Certbot::new("recipes");
    cb.issue("app.example", &["app.example"], 1, 1);
    let mut server = Child::start(
        "server",
        &[
            "--listen",
            &format!("tls:{}:0:interface=127.0.0.1", cb.live().display()),
        ],
    );
    let port = server.port().await;
    let mut conn = endpoints::connect(&format!(
        "tls:127.0.0.1:{port}:sni=app.example:trustRoots={}",
        cb.ca_file().display()
    ))
    .await
    .expect("a verified TLS connection");
    conn.write_all(b"over tls\n").await.expect("write");
    let mut got = [0u8; 9];
    bounded("the echo", conn.read_exact(&mut got))
        .await
        .expect("read");
    assert_eq!(&got, b"over tls\n");
    drop(conn);
    server.signal("TERM");
    server.exit_ok().await;
    let _ = std::fs::remove_dir_all(&cb.root);
}

// 7. systemd socket activation with Type=notify

async fn server_under_systemd_socket_activation() {
    if !peers::program("systemd-socket-activate", "--version", "systemd") {
        return;
    }
    // systemd's notify socket, played by the test: READY=1 must arrive.
    let notify = temp("notify.sock");
    let ready = tokio::net::UnixDatagram::bind(&notify).expect("bind the notify socket");
    // The doc's units: ListenStream= (on a free port) and ExecStart='s arguments.
    let units = root().join("crates/endpoints/tests/recipes");
    let socket = std::fs::read_to_string(units.join("app.socket")).expect("app.socket");
    let service = std::fs::read_to_string(units.join("app.service")).expect("app.service");
    let listen = socket
        .lines()
        .find_map(|l| l.strip_prefix("ListenStream="))
        .expect("ListenStream=");
    assert_eq!(listen, "127.0.0.1:8080");
    let port = free_port();
    let exec: Vec<&str> = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=")
        .split_whitespace()
        .skip(1)
        .collect();
    assert!(service.contains("Type=notify\n"), "{service}");
    let mut activate = tokio::process::Command::new("systemd-socket-activate");
    activate
        .args(["-l", &format!("127.0.0.1:{port}")])
        .args(["-E", "RECIPE=server"])
        .args(["-E", &format!("NOTIFY_SOCKET={}", notify.display())])
        .arg(std::env::current_exe().expect("exe"))
        .args(&exec);
    let mut server = Child::spawn(activate);
    // systemd-socket-activate starts the program on the first connection.
    let mut conn = bounded("systemd-socket-activate listening", async {
        loop {
            if let Ok(c) = TcpStream::connect(("127.0.0.1", port)).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut b = [0u8; 256];
    let n = bounded("READY=1", ready.recv(&mut b)).await.expect("recv");
    assert_eq!(&b[..n], b"READY=1");
    server.line_with("listening on systemd:").await;
    echo_line(&mut conn, "activated\n").await;
    drop(conn);
    // systemd-socket-activate execs the program: the child is the server itself.
    server.signal("TERM");
    server.exit_ok().await;
    let _ = std::fs::remove_file(&notify);
}

// 8. Zero-downtime restart

async fn restart_hands_over_without_refusing() {
    let mut first = Child::start("restart", &["--listen", "tcp:0:interface=127.0.0.1"]);
    let port = first.port().await;
    let first_pid = first.child.id().expect("running");
    // Declared after `first`, so dropped before it: a failing test leaves no successor behind.
    let _successors = Successors(first_pid);
    let mut old = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut hello = vec![0u8; format!("served by {first_pid}\n").len()];
    old.read_exact(&mut hello).await.expect("hello");
    assert_eq!(
        String::from_utf8_lossy(&hello),
        format!("served by {first_pid}\n")
    );
    first.signal("HUP");
    // New connections, same port: the successor's once it is ready (until then, the old
    // process's: closed at once).
    let (mut new, next_pid) = bounded("a connection served by the successor", async {
        loop {
            let mut c = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("never refused");
            let mut hello = String::new();
            let mut b = [0u8; 1];
            while !hello.ends_with('\n') {
                c.read_exact(&mut b).await.expect("a hello");
                hello.push(char::from(b[0]));
            }
            let pid: u32 = hello
                .trim_end()
                .strip_prefix("served by ")
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{hello:?}"));
            if pid != first_pid {
                break (c, pid);
            }
            drop(c);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The old connection is still served, by the old process, while it drains.
    echo_line(&mut old, "still here\n").await;
    drop(old);
    let l = first.line_with("handed over to").await;
    assert!(l.contains(&format!("handed over to {next_pid};")), "{l}");
    assert!(
        l.ends_with(", 0 aborted"),
        "the old connection drained: {l}"
    );
    first.exit_ok().await;
    echo_line(&mut new, "and here\n").await;
    drop(new);
    kill("TERM", next_pid);
    bounded("the successor exits", async {
        while std::path::Path::new(&format!("/proc/{next_pid}/status")).exists()
            && !std::fs::read_to_string(format!("/proc/{next_pid}/status"))
                .unwrap_or_default()
                .contains("State:\tZ")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// On drop, SIGTERM the children of a process (a successor started by a handover), which
/// outlive it.
struct Successors(u32);

impl Drop for Successors {
    fn drop(&mut self) {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.0))
            .unwrap_or_default();
        for pid in children.split_whitespace() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", pid])
                .status();
        }
    }
}

// 9. A WebSocket tunnel, both ends

async fn websocket_tunnel_both_ends() {
    // "ssh": an echo server.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target_port = target.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = target.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let mut far = Child::start(
        "tunnel",
        &[
            "--listen",
            "ws:path=/ssh:tcp:0:interface=127.0.0.1",
            "--connect",
            &format!("tcp:127.0.0.1:{target_port}"),
        ],
    );
    let far_port = far.port().await;
    let mut near = Child::start(
        "tunnel",
        &[
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--connect",
            &format!("ws:127.0.0.1:{far_port}:path=/ssh"),
        ],
    );
    let near_port = near.port().await;
    let conn = TcpStream::connect(("127.0.0.1", near_port))
        .await
        .expect("connect");
    // 1 MiB each way, written while it is read back: nothing lost or reordered.
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let (mut r, mut w) = conn.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move { w.write_all(&sent).await.map(|()| w) });
    let mut got = vec![0u8; data.len()];
    bounded("1 MiB through the tunnel", r.read_exact(&mut got))
        .await
        .expect("read");
    assert!(got == data, "the bytes came back as sent");
    drop(writer.await.expect("writer").expect("written"));
    near.signal("TERM");
    far.signal("TERM");
    near.exit_ok().await;
    far.exit_ok().await;
}
