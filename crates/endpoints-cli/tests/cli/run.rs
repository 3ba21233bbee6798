//! Issue 32: `endpoints run FILE`, many named tunnels from one TOML file; `--check`; the
//! Prometheus exposition on `metrics = "DESC"`; reload as a handover.
//!
//! Every wait is bounded (20 s for a line; 30 s for a process or a scrape), far above what
//! each step takes on an idle machine (milliseconds), so a loaded CI machine is no failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::data_paths::{BIN, line_with, temp_dir};

/// `endpoints run ARGS`: (status, stdout, stderr).
fn run_sync(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// Free ports on 127.0.0.1 (bound, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Start `endpoints run FILE EXTRA..`, wait for `ready` on stderr (20 s at most); every line
/// goes to the receiver.
async fn start_run(
    file: &Path,
    extra: &[&str],
    ready: &str,
) -> (Child, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(file)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            eprintln!("child: {l}");
            let _ = tx.send(l);
        }
    });
    line_with(&mut rx, ready).await;
    (child, rx)
}

/// GET `path` on 127.0.0.1:`port`: (status line, body).
async fn get(port: u16, path: &str) -> (String, String) {
    let go = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the metrics listener");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("request");
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.expect("answer");
        let text = String::from_utf8(all).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        (
            head.lines().next().unwrap_or("").to_owned(),
            body.to_owned(),
        )
    };
    tokio::time::timeout(Duration::from_secs(30), go)
        .await
        .expect("an answer in 30 s")
}

/// The value of the sample `name{labels}` (labels in the exporter's order) in `exposition`.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok())?
    })
}

/// Item 1: every kind of error names FILE:LINE:COL, shows the line with a caret under the
/// place (inside a description: the parameter) and says the fix; exit status 2; nothing
/// listens (the port stays free).
#[test]
fn check_errors_name_the_file_line_and_column() {
    let dir = temp_dir("run-check");
    let [port] = free_ports(1)[..] else { panic!() };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown key",
            format!(
                "[tunnel.a]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\nconnect = \"tcp:127.0.0.1:9\"\nmax-conections = 3\n"
            ),
            ":4:1: unknown field `max-conections`",
            "  ^^^^^^^^^^^^^^",
        ),
        (
            "bad description",
            format!(
                "[tunnel.a]\nlisten = \"tcp:{port}:interface=127.0.0.1:bogus=1\"\nconnect = \"tcp:127.0.0.1:9\"\n"
            ),
            ":2:",
            "^^^^^",
        ),
        (
            "duplicate name",
            format!(
                "[tunnel.a]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\necho = true\n[tunnel.a]\nlisten = \"tcp:0\"\necho = true\n"
            ),
            ":4:",
            "fix:",
        ),
        (
            "two tunnels on one address",
            format!(
                "[tunnel.a]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\necho = true\n[tunnel.b]\nlisten = \"ws:path=/x:tcp:{port}\"\necho = true\n"
            ),
            ":5:10: tunnel `b`: listens on the address tunnel `a` listens on",
            "fix: give each tunnel its own port",
        ),
        (
            "a type the file's policy denies",
            format!(
                "deny-types = [\"exec\"]\n[tunnel.a]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\nconnect = \"exec:cat\"\n"
            ),
            ":4:",
            "exec",
        ),
        (
            "nothing to do",
            format!("[tunnel.a]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\n"),
            ":1:9: tunnel `a`: says nothing to do",
            "fix: give exactly one of",
        ),
    ];
    for (what, text, place, also) in cases {
        let file = write(&dir, "t.toml", &text);
        let f = file.to_str().expect("utf-8");
        let (code, out, err) = run_sync(&["--check", f]);
        assert_eq!(code, 2, "{what}: {err}");
        assert!(out.is_empty(), "{what}: {out}");
        assert!(err.contains(&format!("{f}{place}")), "{what}: {err}");
        assert!(err.contains(also), "{what}: {err}");
        assert!(err.contains("fix:"), "{what}: {err}");
        // Without --check: the same, and nothing listens.
        let (code, _, err2) = run_sync(&[f]);
        assert_eq!(code, 2, "{what}: {err2}");
        assert!(err2.contains(&format!("{f}{place}")), "{what}: {err2}");
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is still free");
    }
    // The description's own caret: under `bogus`, in the file's line.
    let file = write(
        &dir,
        "t.toml",
        "[tunnel.a]\nlisten = \"tcp:0:interface=127.0.0.1:bogus=1\"\nconnect = \"tcp:127.0.0.1:9\"\n",
    );
    let (_, _, err) = run_sync(&["--check", file.to_str().expect("utf-8")]);
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(":2:37: tunnel `a`: listen: unknown parameter `bogus`"))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        lines[at + 1],
        "  listen = \"tcp:0:interface=127.0.0.1:bogus=1\""
    );
    assert_eq!(lines[at + 2], format!("  {}^^^^^", " ".repeat(36)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 1: the issue's example file (paths and ports made local) passes `--check`, which
/// prints each tunnel's canonical form; and it serves.
#[tokio::test]
async fn the_issue_example_checks_and_serves() {
    let dir = temp_dir("run-example");
    let certbot = endpoints_test_support::certbot::Certbot::new("run-example");
    certbot.issue("localhost", &["localhost"], 1, 1);
    let [metrics, web, ws] = free_ports(3)[..] else {
        panic!()
    };
    let app = dir.join("app.sock");
    let text = format!(
        "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\n\n[tunnel.web]\nlisten = \"haproxy:tls:{}:{web}\"\nconnect = \"unix:{}\"\nmax-connections = 2000\n\n[tunnel.ssh-over-ws]\nlisten = \"ws:path=/ssh:tcp:{ws}\"\nconnect = \"tcp:127.0.0.1:22\"\n",
        certbot.live().display(),
        app.display()
    );
    let file = write(&dir, "endpoints.toml", &text);
    let (code, out, err) = run_sync(&["--check", file.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tunnel web: listen = haproxy:"), "{out}");
    assert!(
        out.contains(&format!("connect = unix:path={}", app.display())),
        "{out}"
    );
    assert!(
        out.contains("tunnel ssh-over-ws: listen = ws:path=/ssh:"),
        "{out}"
    );
    assert!(out.contains("metrics: listen = tcp:port="), "{out}");
    let (mut child, _rx) = start_run(&file, &[], "metrics: listening on").await;
    let (status, body) = get(metrics, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(
        body.contains("endpoints_connections_accepted_total{tunnel=\"web\"} 0"),
        "{body}"
    );
    let (status, _) = get(metrics, "/").await;
    assert!(status.contains("404"), "{status}");
    child.kill().await.expect("kill");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An echo server on 127.0.0.1 (aborted with the test); its port.
async fn echo_upstream() -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (port, task)
}

/// Item 3: 100 MiB up and back through a tunnel; then the byte counters equal the bytes moved
/// each way, and `promtool check metrics` passes on the exposition.
#[tokio::test]
async fn byte_counters_equal_the_bytes_moved_and_promtool_accepts_the_exposition() {
    let dir = temp_dir("run-bytes");
    let (up, echo) = echo_upstream().await;
    let [metrics, tunnel] = free_ports(2)[..] else {
        panic!()
    };
    let file = write(
        &dir,
        "t.toml",
        &format!(
            "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\n[tunnel.bulk]\nlisten = \"tcp:{tunnel}:interface=127.0.0.1\"\nconnect = \"tcp:127.0.0.1:{up}\"\n"
        ),
    );
    let (mut child, mut rx) = start_run(&file, &[], "metrics: listening on").await;
    const TOTAL: usize = 100 << 20;
    let s = tokio::net::TcpStream::connect(("127.0.0.1", tunnel))
        .await
        .expect("connect");
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 1 << 16];
        for _ in 0..TOTAL / chunk.len() {
            w.write_all(&chunk).await.expect("write");
        }
        w.shutdown().await.expect("shutdown");
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), r.read(&mut buf))
            .await
            .expect("data within 30 s")
            .expect("read");
        if n == 0 {
            break;
        }
        got += n;
    }
    writer.await.expect("writer");
    assert_eq!(got, TOTAL);
    // The counters are recorded when the connection's line is logged.
    line_with(&mut rx, "tunnel bulk: relay").await;
    let (_, body) = get(metrics, "/metrics").await;
    assert_eq!(
        sample(
            &body,
            "endpoints_bytes_total{tunnel=\"bulk\",direction=\"up\"}"
        ),
        Some(TOTAL as f64),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "endpoints_bytes_total{tunnel=\"bulk\",direction=\"down\"}"
        ),
        Some(TOTAL as f64),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "endpoints_connections_accepted_total{tunnel=\"bulk\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            "endpoints_connections_ended_total{tunnel=\"bulk\",end=\"clean\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            "endpoints_connect_duration_seconds_count{tunnel=\"bulk\"}"
        ),
        Some(1.0)
    );
    if endpoints_test_support::peers::program("promtool", "--version", "prometheus") {
        let mut p = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        use std::io::Write as _;
        p.stdin
            .take()
            .expect("stdin")
            .write_all(body.as_bytes())
            .expect("to promtool");
        let out = p.wait_with_output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool: {}{}\n{body}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.kill().await.expect("kill");
    echo.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 3: a real Prometheus server on 127.0.0.1 (its own config and data directory,
/// scraping every 1 s) answers `endpoints_connections_accepted_total` for a tunnel through
/// its HTTP API.
#[tokio::test]
async fn a_prometheus_server_scrapes_the_tunnel_counters() {
    if !endpoints_test_support::peers::program("prometheus", "--version", "prometheus") {
        return;
    }
    let dir = temp_dir("run-prometheus");
    let [metrics, tunnel, web] = free_ports(3)[..] else {
        panic!()
    };
    let file = write(
        &dir,
        "t.toml",
        &format!(
            "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\n[tunnel.scraped]\nlisten = \"tcp:{tunnel}:interface=127.0.0.1\"\necho = true\n"
        ),
    );
    let (mut child, _rx) = start_run(&file, &[], "metrics: listening on").await;
    for i in 0..3 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", tunnel))
            .await
            .expect("connect");
        s.write_all(format!("hello {i}").as_bytes())
            .await
            .expect("write");
        s.shutdown().await.expect("shutdown");
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.expect("read");
        assert_eq!(back, format!("hello {i}").as_bytes());
    }
    let config = write(
        &dir,
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: endpoints\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n"
        ),
    );
    let data = dir.join("data");
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus");
    // Prometheus starts, scrapes within 1 s and answers: seconds; 60 s is the bound.
    let mut answer = String::new();
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", web)).await else {
            continue;
        };
        let q =
            "/api/v1/query?query=endpoints_connections_accepted_total%7Btunnel%3D%22scraped%22%7D";
        if s.write_all(format!("GET {q} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .is_err()
        {
            continue;
        }
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all).await;
        answer = String::from_utf8_lossy(&all).into_owned();
        if answer.contains("\"tunnel\":\"scraped\"") {
            break;
        }
    }
    assert!(answer.contains("\"status\":\"success\""), "{answer}");
    assert!(answer.contains("\"tunnel\":\"scraped\""), "{answer}");
    assert!(answer.contains("\"3\"]"), "{answer}");
    let _ = prom.kill().await;
    child.kill().await.expect("kill");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The text of a file of `tunnels` (name, port, upstream port) and a pid file.
fn tunnels_file(pid_file: &Path, tunnels: &[(String, u16, u16)]) -> String {
    let mut t = format!("pid-file = \"{}\"\n", pid_file.display());
    for (name, port, up) in tunnels {
        t.push_str(&format!(
            "\n[tunnel.{name}]\nlisten = \"tcp:{port}:interface=127.0.0.1\"\nconnect = \"tcp:127.0.0.1:{up}\"\ndrain-timeout = 30\n"
        ));
    }
    t
}

/// One request on `port`: the reply must be `tag` + the request (the upstream's tag).
async fn ask(port: u16, n: u64) -> Result<Vec<u8>, String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect {port}: {e}"))?;
    let msg = format!("req {n}\n");
    s.write_all(msg.as_bytes())
        .await
        .map_err(|e| format!("write {port}: {e}"))?;
    s.shutdown()
        .await
        .map_err(|e| format!("shutdown {port}: {e}"))?;
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut back))
        .await
        .map_err(|_| format!("{port}: no reply in 20 s"))?
        .map_err(|e| format!("read {port}: {e}"))?;
    Ok(back)
}

/// An upstream that answers each connection with `tag:` and what it read.
async fn tagged_upstream(tag: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got).await;
                let mut reply = format!("{tag}:").into_bytes();
                reply.extend_from_slice(&got);
                let _ = s.write_all(&reply).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, task)
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Kills the pid file's process at the end (a successor is not the test's child).
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(t) = std::fs::read_to_string(&self.0)
            && let Ok(pid) = t.trim().parse::<u32>()
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Items 2 and 5: 50 tunnels from one file, under load spread over them (about 1,000
/// connections a second, at most 16 at once, bounded in count); the file is edited (one
/// tunnel added, one removed, one's target changed) and SIGHUP: no connection refused, reset
/// or answered wrongly; the added tunnel serves, the changed one answers from its new target,
/// the removed one's port is released once the old process has drained. Then a broken file
/// and SIGHUP: the old process serves on and the log names the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tunnels_reload_without_a_lost_connection() {
    let dir = temp_dir("run-reload");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let (a, ta) = tagged_upstream("A").await;
    let (b, tb) = tagged_upstream("B").await;
    let ports = free_ports(51);
    let mut tunnels: Vec<(String, u16, u16)> =
        (0..50).map(|i| (format!("t{i}"), ports[i], a)).collect();
    let file = write(&dir, "t.toml", &tunnels_file(&pid_file, &tunnels));
    let (mut child, mut rx) = start_run(&file, &[], "tunnel t49: listening on").await;
    let first = child.id().expect("pid");
    // The load: 16 workers, each a new connection every 12 ms after its reply (at most about
    // 1,300 a second; about 1,000 here), over the tunnels that stay (t1..t48; t0 is removed,
    // t49 changes target).
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    let load_started = std::time::Instant::now();
    for w in 0..16u64 {
        let (stop, made) = (stop.clone(), made.clone());
        let ports = ports.clone();
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = w;
            // Bounded: 200,000 requests at most.
            while !stop.load(Ordering::Relaxed) && n < 200_000 {
                let port = ports[1 + (n as usize % 48)];
                match ask(port, n).await {
                    Ok(r) if r == format!("A:req {n}\n").as_bytes() => {}
                    Ok(r) => failures.push(format!(
                        "{port}: wrong reply {:?}",
                        String::from_utf8_lossy(&r)
                    )),
                    Err(e) => failures.push(e),
                }
                made.fetch_add(1, Ordering::Relaxed);
                n += 16;
                tokio::time::sleep(Duration::from_millis(12)).await;
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A connection held open on the removed tunnel t0 through the reload: it finishes in the
    // old process.
    let mut held = tokio::net::TcpStream::connect(("127.0.0.1", ports[0]))
        .await
        .expect("connect t0");
    held.write_all(b"held ").await.expect("write");
    tunnels.remove(0);
    tunnels[48].2 = b; // t49 -> B
    tunnels.push(("added".to_owned(), ports[50], a));
    write(&dir, "t.toml", &tunnels_file(&pid_file, &tunnels));
    signal(first, "HUP");
    line_with(&mut rx, "is ready; no longer accepting").await;
    // The added tunnel serves, the changed one answers from B.
    assert_eq!(ask(ports[50], 1).await.expect("added"), b"A:req 1\n");
    assert_eq!(ask(ports[49], 2).await.expect("changed"), b"B:req 2\n");
    // The held connection on the removed tunnel finishes in the old process.
    held.write_all(b"done\n").await.expect("write");
    held.shutdown().await.expect("shutdown");
    let mut back = Vec::new();
    held.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, b"A:held done\n");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old process exits after its drain")
        .expect("status");
    assert!(status.success(), "{status}");
    // Its listeners are closed now: the removed tunnel's port is released.
    std::net::TcpListener::bind(("127.0.0.1", ports[0])).expect("t0's port is released");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.expect("worker"));
    }
    let made = made.load(Ordering::Relaxed);
    println!(
        "{made} requests over the 48 steady tunnels in {:.1} s",
        load_started.elapsed().as_secs_f64()
    );
    assert!(made > 100, "only {made} requests made");
    assert!(
        failures.is_empty(),
        "{} of {made}: {failures:?}",
        failures.len()
    );
    // A broken file and SIGHUP: the successor refuses it, the running process serves on.
    let second: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    assert_ne!(second, first);
    let mut broken = tunnels_file(&pid_file, &tunnels);
    broken.push_str("\n[tunnel.bad]\nlisten = \"tcp:0:bogus=1\"\necho = true\n");
    let lines = broken.lines().count();
    write(&dir, "t.toml", &broken);
    signal(second, "HUP");
    // The successor's error reaches the same stderr (inherited), then the failed handover.
    // (The second process's stderr is the first's pipe, which this test still reads.)
    let named = line_with(&mut rx, "tunnel `bad`: listen: unknown parameter `bogus`").await;
    assert!(
        named.contains(&format!("t.toml:{}:", lines - 1)),
        "{named} (the line of `listen` is {})",
        lines - 1
    );
    line_with(&mut rx, "handover failed").await;
    assert_eq!(ask(ports[1], 3).await.expect("still served"), b"A:req 3\n");
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid").trim(),
        second.to_string()
    );
    signal(second, "TERM");
    ta.abort();
    tb.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 2: `--fd-store` under a service manager (a notify socket of the test's, as
/// systemd's): every tunnel's listener and the metrics listener are stored (`FDSTORE=1`,
/// named by their keys) before `READY=1`; a SIGHUP says `RELOADING=1`, the successor stores
/// them again (adopted, not new), then `MAINPID=` it with `READY=1`.
#[tokio::test]
async fn fd_store_keeps_every_tunnel_and_the_metrics_listener() {
    let dir = temp_dir("run-fd-store");
    let notify = dir.join("notify");
    let rx_socket = tokio::net::UnixDatagram::bind(&notify).expect("bind the notify socket");
    let pid_file = dir.join("pid");
    let _reaper = Reaper(pid_file.clone());
    let [metrics, one, two] = free_ports(3)[..] else {
        panic!()
    };
    let file = write(
        &dir,
        "t.toml",
        &format!(
            "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\npid-file = \"{}\"\n[tunnel.one]\nlisten = \"tcp:{one}:interface=127.0.0.1\"\necho = true\n[tunnel.two]\nlisten = \"tcp:{two}:interface=127.0.0.1\"\necho = true\n",
            pid_file.display()
        ),
    );
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&file)
        .arg("--fd-store")
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let first = child.id().expect("pid");
    let mut buf = vec![0u8; 4096];
    // Each message within 20 s (they come within milliseconds).
    let mut next = async || {
        let n = tokio::time::timeout(Duration::from_secs(20), rx_socket.recv(&mut buf))
            .await
            .expect("a notification in 20 s")
            .expect("recv");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let names: Vec<String> = [metrics, one, two]
        .iter()
        .map(|p| format!("FDNAME=ep.tcp%3Aport={p}%3Ainterface=127.0.0.1"))
        .collect();
    let mut stored = Vec::new();
    loop {
        let m = next().await;
        if m == "READY=1" {
            break;
        }
        assert!(m.starts_with("FDSTORE=1\n"), "{m}");
        stored.push(m);
    }
    for n in &names {
        assert!(
            stored.iter().any(|m| m.contains(n.as_str())),
            "{n} not in {stored:?}"
        );
    }
    assert_eq!(stored.len(), 3, "{stored:?}");
    signal(first, "HUP");
    let m = next().await;
    assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
    let mut again = Vec::new();
    let mainpid = loop {
        let m = next().await;
        if m.starts_with("MAINPID=") {
            break m;
        }
        assert!(m.starts_with("FDSTORE=1\n"), "{m}");
        again.push(m);
    };
    assert_eq!(again.len(), 3, "{again:?}");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the old process exits")
        .expect("status");
    assert!(status.success(), "{status}");
    let second: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(mainpid, format!("MAINPID={second}\nREADY=1"));
    let (status_line, _) = get(metrics, "/metrics").await;
    assert!(status_line.contains("200"), "{status_line}");
    signal(second, "TERM");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 1: `exec = "PROGRAM"` (as `connect = "exec:PROGRAM"`) and `echo = true` tunnels
/// serve, `--check` shows the exec tunnel's target as an `exec:` description, and both count
/// their bytes each way.
#[tokio::test]
async fn exec_and_echo_tunnels_serve_and_count_their_bytes() {
    let dir = temp_dir("run-exec-echo");
    let [metrics, x, e] = free_ports(3)[..] else {
        panic!()
    };
    let file = write(
        &dir,
        "t.toml",
        &format!(
            "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\n[tunnel.x]\nlisten = \"tcp:{x}:interface=127.0.0.1\"\nexec = \"cat\"\n[tunnel.e]\nlisten = \"tcp:{e}:interface=127.0.0.1\"\necho = true\n"
        ),
    );
    let (code, out, err) = run_sync(&["--check", file.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("tunnel x: listen = tcp:") && out.contains("connect = exec:"),
        "{out}"
    );
    assert!(
        out.contains("tunnel e: listen = tcp:") && out.contains("; echo"),
        "{out}"
    );
    let (mut child, mut rx) = start_run(&file, &[], "metrics: listening on").await;
    for port in [x, e] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(b"hello").await.expect("write");
        s.shutdown().await.expect("shutdown");
        let mut back = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut back))
            .await
            .expect("a reply in 20 s")
            .expect("read");
        assert_eq!(back, b"hello", "port {port}");
    }
    line_with(&mut rx, "tunnel x: relay").await;
    line_with(&mut rx, "echo connection from").await;
    let (_, body) = get(metrics, "/metrics").await;
    for t in ["x", "e"] {
        for d in ["up", "down"] {
            assert_eq!(
                sample(
                    &body,
                    &format!("endpoints_bytes_total{{tunnel=\"{t}\",direction=\"{d}\"}}")
                ),
                Some(5.0),
                "{t} {d}: {body}"
            );
        }
    }
    child.kill().await.expect("kill");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 32, acceptance: 20 failed TLS handshakes on a tunnel's `tls:` listener count 20
/// under `layer="tls"` with the tunnel's name (the library's wrappers record inside the
/// tunnel's scope), and no series names a description or an address.
#[tokio::test]
async fn twenty_failed_tls_handshakes_count_twenty_under_the_tunnel() {
    let dir = temp_dir("run-tls-failures");
    let certbot = endpoints_test_support::certbot::Certbot::new("run-tls-failures");
    certbot.issue("localhost", &["localhost"], 1, 1);
    let [metrics, web] = free_ports(2)[..] else {
        panic!()
    };
    let (upstream, echo) = echo_upstream().await;
    let text = format!(
        "metrics = \"tcp:{metrics}:interface=127.0.0.1\"\n\n[tunnel.web]\nlisten = \"tls:{}:{web}:interface=127.0.0.1\"\nconnect = \"tcp:127.0.0.1:{upstream}\"\n",
        certbot.live().display(),
    );
    let file = write(&dir, "endpoints.toml", &text);
    let (mut child, _rx) = start_run(&file, &[], "metrics: listening on").await;
    for i in 0..20 {
        // Plain text where a ClientHello belongs: the handshake fails at once (a TLS alert).
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", web))
            .await
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest))
            .await
            .expect("the listener ends the connection within 20 s")
            .ok();
    }
    // The count is taken off the accept loop: wait for it (20 s at most; it takes
    // milliseconds).
    let mut counted = None;
    let mut body = String::new();
    for _ in 0..200 {
        (_, body) = get(metrics, "/metrics").await;
        counted = body
            .lines()
            .filter(|l| {
                l.starts_with("endpoints_handshake_failures_total{")
                    && l.contains("layer=\"tls\"")
                    && l.contains("tunnel=\"web\"")
            })
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .reduce(|a, b| a + b);
        if counted == Some(20.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted, Some(20.0), "{body}");
    assert!(!body.contains("127.0.0.1"), "no address in a label: {body}");
    assert!(!body.contains("live"), "no description in a label: {body}");
    child.kill().await.expect("kill");
    echo.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
