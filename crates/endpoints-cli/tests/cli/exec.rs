//! issue 27: `endpoints relay tcp:... exec:...` starts one child per relayed connection,
//! bounded by `--max-connections` (socat's `fork` + `EXEC`), and `--allow-types` /
//! `--deny-types` refuse types at every nesting level.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

/// Bound for anything that takes milliseconds here: far above it on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("run endpoints");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deny_types_refuses_exec_at_every_level_with_a_located_error() {
    for text in [
        "exec:cat",
        "haproxy:exec:cat",
        r"tls:host=db:port=5432:endpoint=exec\:socat\:-\:TCP\\\:db\\\:5432",
    ] {
        let (code, out, err) = run(&["check", "--client", "--deny-types", "exec", text]);
        assert_eq!(code, 2, "{text}: {out}{err}");
        assert!(
            err.contains("endpoint type `exec` is not allowed here"),
            "{err}"
        );
        assert!(err.contains('^'), "points at it: {err}");
        let (code, _, err) = run(&["check", "--client", text]);
        assert_eq!(code, 0, "{text} without a policy: {err}");
    }
    let (code, out, _) = run(&[
        "check",
        "--client",
        "--json",
        "--allow-types",
        "tcp,tls,hostname",
        "haproxy:tcp:db:5432",
    ]);
    assert_eq!(code, 2);
    assert!(out.contains(r#""kind":"not-allowed""#), "{out}");
    let (code, _, err) = run(&["check", "--deny-types", "exce", "tcp:80"]);
    assert_eq!(code, 2);
    assert!(err.contains("`exce` is not an endpoint type"), "{err}");
    let (code, _, err) = run(&["relay", "--deny-types", "exec", "tcp:0", "exec:cat"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`exec` is not allowed"), "{err}");
}

/// A child that says its pid, then echoes.
const CHILD: &str = "exec:sh:-c:echo $$; exec cat";

async fn pid_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> u32 {
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, r.read_line(&mut line))
        .await
        .expect("the child's pid within the patience bound")
        .expect("read");
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("a pid: {line:?}"))
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

#[tokio::test]
async fn relay_to_exec_starts_one_child_per_connection_bounded_by_max_connections() {
    let mut relay = Command::new(BIN)
        .args([
            "relay",
            "tcp:0:interface=127.0.0.1",
            CHILD,
            "--max-connections",
            "2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn relay");
    let mut lines = BufReader::new(relay.stderr.take().expect("stderr")).lines();
    let port = loop {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the relay starts")
            .expect("read")
            .expect("a line");
        if let Some(rest) = line.strip_prefix("listening on ") {
            let d: endpoints::Description = rest.parse().expect("description");
            break d
                .get("port")
                .and_then(|p| p.parse::<u16>().ok())
                .expect("port");
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let open = || async move {
        let s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (r, w) = s.into_split();
        (BufReader::new(r), w)
    };
    let (mut r1, mut w1) = open().await;
    let (mut r2, w2) = open().await;
    let (p1, p2) = (pid_line(&mut r1).await, pid_line(&mut r2).await);
    assert_ne!(p1, p2, "one child per connection");
    // A third connection waits: at most 2 at once. (A pending read: 500 ms is how long we look.)
    let (mut r3, mut w3) = open().await;
    let mut line = String::new();
    let early = tokio::time::timeout(Duration::from_millis(500), r3.read_line(&mut line)).await;
    assert!(
        early.is_err(),
        "a third child started past --max-connections 2: {line:?}"
    );

    // The first connection echoes through its child, and ends cleanly with a half-close.
    w1.write_all(b"through cat").await.expect("write");
    w1.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    tokio::time::timeout(PATIENCE, r1.read_to_end(&mut back))
        .await
        .expect("bounded")
        .expect("read");
    assert_eq!(back, b"through cat");
    // Its end lets the third one in.
    let p3 = pid_line(&mut r3).await;
    assert!(p3 != p1 && p3 != p2);
    w3.write_all(b"x").await.expect("write");
    w3.shutdown().await.expect("half-close");
    // Closing the second connection ends its child too.
    drop((r2, w2));
    let start = Instant::now();
    while alive(p1) || alive(p2) {
        assert!(
            start.elapsed() < PATIENCE,
            "children of closed connections still run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut back = Vec::new();
    tokio::time::timeout(PATIENCE, r3.read_to_end(&mut back))
        .await
        .expect("bounded")
        .expect("read");
    assert_eq!(back, b"x");
}

/// `endpoints relay tcp:0:interface=127.0.0.1 TARGET`: the process, its port, and its stderr
/// lines as they come.
async fn relay_to(
    target: &str,
) -> (
    tokio::process::Child,
    u16,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let mut relay = Command::new(BIN)
        .args(["relay", "tcp:0:interface=127.0.0.1", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn relay");
    let mut lines = BufReader::new(relay.stderr.take().expect("stderr")).lines();
    let port = loop {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the relay starts")
            .expect("read")
            .expect("a line");
        if let Some(rest) = line.strip_prefix("listening on ") {
            let d: endpoints::Description = rest.parse().expect("description");
            break d
                .get("port")
                .and_then(|p| p.parse::<u16>().ok())
                .expect("port");
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    (relay, port, rx)
}

/// `echo question | endpoints connect tcp:127.0.0.1:PORT`: exit code, stdout, stderr.
async fn ask(port: u16, bound: Duration) -> (i32, String, String) {
    let mut client = Command::new(BIN)
        .args(["connect", &format!("tcp:127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn connect");
    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(b"question\n").await.expect("write");
    drop(stdin);
    let out = tokio::time::timeout(bound, client.wait_with_output())
        .await
        .expect("connect ends within its bound")
        .expect("connect");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// issue 31 item 3, its own command: an inetd-style handler reads its request, works 6 s,
/// then answers. The client's input ended at once; the relay reset it after 5 s of quiet
/// ("nothing moving for 5s, after the other ended (--linger)"). While the program runs, its
/// exit is the end.
#[tokio::test]
async fn an_exec_target_that_answers_after_six_seconds_is_not_cut_by_the_linger() {
    let (mut relay, port, mut log) =
        relay_to(r#"exec:sh:-c:read l; sleep 6; echo "answer to $l""#).await;
    // Bound: the answer comes after 6 s; 60 s is 10 times that.
    let (code, out, err) = ask(port, Duration::from_secs(60)).await;
    assert_eq!(out, "answer to question\n", "stderr: {err}");
    assert_eq!(code, 0, "{err}");
    relay.start_kill().expect("kill the relay");
    let _ = relay.wait().await;
    let mut lines = Vec::new();
    while let Ok(line) = log.try_recv() {
        lines.push(line);
    }
    assert!(
        !lines.iter().any(|l| l.contains("cut")),
        "the relay cut it: {lines:?}"
    );
}

/// issue 30 item 10: `env=API_TOKEN=s3cr3t` appeared in every relay log line and in the exit
/// error through the canonical form.
#[tokio::test]
async fn the_relay_logs_no_env_value() {
    let (mut relay, port, mut log) =
        relay_to("exec:sh:-c:read l; echo oops >&2; exit 3:env=API_TOKEN=s3cr3t").await;
    let (code, _, err) = ask(port, PATIENCE).await;
    assert_ne!(code, 0, "a failed exit is not a clean end: {err}");
    // The relay's line for the connection, with the exit error: bounded by the patience.
    let mut lines = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = log.recv().await {
            let done = line.contains("exited with status 3");
            lines.push(line);
            if done {
                break;
            }
        }
    })
    .await;
    relay.start_kill().expect("kill the relay");
    let _ = relay.wait().await;
    assert!(found.is_ok(), "no line with the exit status: {lines:?}");
    let all = lines.join("\n");
    assert!(all.contains("env=API_TOKEN=***"), "{all}");
    assert!(!all.contains("s3cr3t"), "the value is logged: {all}");
    assert!(!err.contains("s3cr3t"), "the client shows it: {err}");
}

/// The relay's line for one connection (the one with "bytes up"), bounded by the patience.
async fn connection_line(log: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, async {
        while let Some(line) = log.recv().await {
            if line.contains("bytes up") {
                return line;
            }
        }
        panic!("the relay's log ended without a connection line");
    })
    .await
    .expect("a connection line within the patience bound")
}

/// issue 30 item 12: through `exec:cat` the relay splices between the socket and the child's
/// pipes (it copied through a buffer): every byte back, in order, both ways at once, past the
/// size where the relay's pipe grows.
#[tokio::test]
async fn relay_to_exec_splices_the_childs_pipes_and_keeps_every_byte() {
    const SIZE: usize = 24 << 20;
    let (mut relay, port, mut log) = relay_to("exec:cat").await;
    let s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut r, mut w) = s.into_split();
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.expect("write");
        w.shutdown().await.expect("half-close");
        w
    });
    let mut back = Vec::with_capacity(SIZE);
    // Bound: 24 MiB through cat takes well under a second; 60 s on a loaded machine.
    tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut back))
        .await
        .expect("the echo ends within its bound")
        .expect("a clean end: cat exited with status 0");
    let _w = writer.await.expect("writer");
    assert_eq!(back.len(), SIZE, "bytes back");
    assert!(back == data, "the bytes came back changed or out of order");
    let line = connection_line(&mut log).await;
    assert!(line.ends_with(", spliced"), "{line}");
    assert!(
        line.contains(&format!("{SIZE} bytes up, {SIZE} bytes down")),
        "{line}"
    );
    relay.start_kill().expect("kill the relay");
    let _ = relay.wait().await;
}

/// The exit status still ends the stream when spliced: a program that echoes, then exits 3,
/// is a reset to the client (never a clean end) and a warning with the status.
#[tokio::test]
async fn a_failed_exit_is_a_reset_when_spliced_too() {
    let (mut relay, port, mut log) = relay_to("exec:sh:-c:cat; exit 3").await;
    let s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut r, mut w) = s.into_split();
    w.write_all(&vec![7u8; 1 << 20]).await.expect("write");
    w.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    let end = tokio::time::timeout(PATIENCE, r.read_to_end(&mut back))
        .await
        .expect("bounded");
    assert!(
        end.is_err(),
        "a clean end after a failed exit ({} bytes back)",
        back.len()
    );
    let line = connection_line(&mut log).await;
    assert!(line.contains("exited with status 3"), "{line}");
    assert!(line.contains("spliced"), "{line}");
    relay.start_kill().expect("kill the relay");
    let _ = relay.wait().await;
}
