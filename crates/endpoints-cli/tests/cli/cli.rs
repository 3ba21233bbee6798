//! The `endpoints` command, run as a process.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::data_paths::port_in;

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
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
fn check_prints_the_canonical_form_or_a_located_error() {
    let (code, out, _) = run(&["check", "tcp:8080"]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "tcp:port=8080:interface=:backlog=1024:reuseport=0:nodelay=0"
        )
    );
    let (code, _, err) = run(&["check", "tcp:prot=80"]);
    assert_eq!(code, 2);
    assert_eq!(
        err.trim_end(),
        "unknown parameter `prot` for `tcp`; did you mean `port`?\n  tcp:prot=80\n      ^^^^"
    );
    let (code, out, _) = run(&["check", "--json", "tcp:prot=80"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["error"]["kind"], "unknown-parameter");
    assert_eq!(v["error"]["span"], serde_json::json!([4, 8]));
    let (code, out, _) = run(&["check", "--json", "haproxy:timeout=3:unix:/run/a.sock"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (v["type"].as_str(), v["params"]["timeout"].as_i64()),
        (Some("haproxy"), Some(3))
    );
    assert_eq!(v["wrapped"]["type"], "unix");
    assert_eq!(v["wrapped"]["params"]["address"], "/run/a.sock");
    assert_eq!(v["wrapped"]["params"]["mode"], "666");
    let (code, out, _) = run(&["check", "--client", "--json", "tcp:db:5432"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (
            v["side"].as_str(),
            v["params"]["host"].as_str(),
            v["params"]["port"].as_i64()
        ),
        (Some("client"), Some("db"), Some(5432))
    );
}

#[test]
fn types_lists_every_prefix_with_parameters() {
    let (code, out, _) = run(&["types", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    let names: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["prefix"].as_str().unwrap_or(""),
                t["side"].as_str().unwrap_or("")
            )
        })
        .collect();
    for want in [
        "tcp/server",
        "tcp/client",
        "tcp6/server",
        "hostname/client",
        "unix/server",
        "unix/client",
        "systemd/server",
        "tls/server",
        "tls/client",
        "ssl/server",
        "ssl/client",
        "haproxy/server",
        "haproxy/client",
        "socks5/client",
        "httpconnect/client",
    ] {
        assert!(
            names.contains(&want.to_owned()),
            "{want} missing from {names:?}"
        );
    }
    let tcp = v
        .as_array()
        .expect("array")
        .iter()
        .find(|t| t["prefix"] == "tcp" && t["side"] == "server")
        .expect("tcp");
    assert_eq!(tcp["crate"], "endpoints-tcp");
    assert_eq!(tcp["params"][2]["name"], "backlog");
    assert_eq!(tcp["params"][2]["default"], "1024");
}

/// Issue 23 item 5: `types unix` and `types unix server` list only those types, as
/// `types --markdown PREFIX SIDE` does.
#[test]
fn types_filters_by_prefix_and_side() {
    let headers = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| !l.starts_with(' '))
            .map(str::to_owned)
            .collect()
    };
    let (code, out, err) = run(&["types", "unix"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        headers(&out),
        [
            "unix  (client, endpoints-unix)",
            "unix  (server, endpoints-unix)"
        ]
    );
    let (code, out, err) = run(&["types", "unix", "server"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(headers(&out), ["unix  (server, endpoints-unix)"]);
    assert!(out.contains("address"), "{out}");
    assert!(
        !out.contains("checkPID"),
        "client parameters left out: {out}"
    );
    // The prefix is case-insensitive, like descriptions; --json filters too.
    let (code, out, _) = run(&["types", "--json", "UNIX", "client"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    let listed: Vec<(&str, &str)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            (
                t["prefix"].as_str().unwrap_or(""),
                t["side"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(listed, [("unix", "client")]);
    // An unknown prefix or side is a usage error that says what exists.
    let (code, _, err) = run(&["types", "unx"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no `unx` endpoint type is registered; did you mean `unix`?"),
        "{err}"
    );
    let (code, _, err) = run(&["types", "unix", "listen"]);
    assert_eq!(code, 2);
    assert!(err.contains("SIDE is `client` or `server`"), "{err}");
    let (code, _, err) = run(&["types", "stdio", "client"]);
    assert_eq!(code, 2);
    assert!(err.contains("`stdio` has no client type"), "{err}");
}

/// Issue 23 item 5: the plain table's columns line up: each parameter's type, position,
/// default and help start at the same column on every line.
#[test]
fn types_text_columns_line_up() {
    let (code, out, _) = run(&["types"]);
    assert_eq!(code, 0);
    let (_, json, _) = run(&["types", "--json"]);
    let v: Value = serde_json::from_str(&json).expect("json");
    let mut help_columns = BTreeMap::new();
    let mut type_columns = BTreeMap::new();
    let mut lines = out
        .lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "));
    for t in v.as_array().expect("array") {
        // The summary line, then one line per parameter.
        let summary = lines.next().expect("summary line");
        assert_eq!(summary.trim(), t["summary"].as_str().unwrap_or(""));
        for q in t["params"].as_array().expect("params") {
            let line = lines.next().expect("parameter line");
            let name = q["name"].as_str().unwrap_or("");
            let help = q["help"].as_str().unwrap_or("");
            let kind = q["type"].as_str().unwrap_or("");
            assert!(line.trim_start().starts_with(&format!("{name} ")), "{line}");
            let at = |text: &str| {
                line.char_indices().count() - line[line.rfind(text).expect(text)..].chars().count()
            };
            help_columns
                .entry(at(help))
                .or_insert_with(Vec::new)
                .push(name.to_owned());
            let after_name = &line[4 + name.len()..];
            let kind_at = 4 + name.len() + after_name.find(kind).expect(kind);
            type_columns
                .entry(kind_at)
                .or_insert_with(Vec::new)
                .push(name.to_owned());
        }
    }
    assert_eq!(
        help_columns.len(),
        1,
        "help starts at several columns: {help_columns:?}"
    );
    assert_eq!(
        type_columns.len(),
        1,
        "types start at several columns: {type_columns:?}"
    );
}

/// Issue 23 item 6: `check` says whether it read the description as a server, a client or
/// both (on stderr; stdout keeps the canonical form, `--json` gains `sides`).
#[test]
fn check_says_which_side_it_read() {
    let (code, out, err) = run(&["check", "tcp:8080"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "tcp:port=8080:interface=:backlog=1024:reuseport=0:nodelay=0"
    );
    assert!(
        err.starts_with("read as a server (not a client description: `tcp` needs `port`"),
        "{err}"
    );
    let (code, out, err) = run(&["check", "unix:/run/app.sock"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "unix:address=/run/app.sock:mode=666:backlog=1024:lockfile=1"
    );
    assert_eq!(
        err.trim(),
        "read as both: a server (shown) and a client, \
         unix:path=/run/app.sock:timeout=30:lockfile=0; give --server or --client to choose"
    );
    let (code, _, err) = run(&["check", "tcp:db:5432"]);
    assert_eq!(code, 0);
    assert!(
        err.starts_with("read as a client (not a server description: "),
        "{err}"
    );
    let (code, _, err) = run(&["check", "stdio:"]);
    assert_eq!(code, 0);
    assert_eq!(err.trim(), "read as a server (`stdio` has no client type)");
    let (code, _, err) = run(&["check", "--client", "unix:/run/app.sock"]);
    assert_eq!(code, 0);
    assert_eq!(err.trim(), "read as a client (--client)");
    // JSON: `side` as before, and every side it builds on.
    let (_, out, _) = run(&["check", "--json", "unix:/run/app.sock"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["side"], "server");
    assert_eq!(v["sides"], serde_json::json!(["server", "client"]));
    let (_, out, _) = run(&["check", "--json", "tcp:8080"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["sides"], serde_json::json!(["server"]));
    let (_, out, _) = run(&["check", "--json", "--client", "unix:/run/app.sock"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["sides"], serde_json::json!(["client"]));
}

/// Issue 23 item 6: the hints, as the command shows them.
#[test]
fn check_shows_the_fix_for_what_people_type() {
    for (args, fix) in [
        (
            &["check", "--server", "tcp:localhost:8080"][..],
            "tcp:8080:interface=127.0.0.1",
        ),
        (
            &["check", "--server", "haproxy:8080"][..],
            "haproxy:tcp:8080",
        ),
        (
            &["check", "--server", "tls:8443"][..],
            "tls:/path/to/certs:8443",
        ),
        (
            &["check", "--server", "tcp://0.0.0.0:8080"][..],
            "tcp:8080:interface=0.0.0.0",
        ),
        (&["check", "tcp:8080:interface=localhost"][..], "127.0.0.1"),
        (&["check", "--client", "tcp:8080"][..], "tcp:HOST:8080"),
        (
            &["check", "--client", "unix:address=/run/a.sock"][..],
            "path",
        ),
        (
            &["check", "--client", "ssl:h:443:caCerts=/etc/ssl/certs"][..],
            "caCertsDir",
        ),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            err.lines()
                .next()
                .is_some_and(|l| l.ends_with(&format!("did you mean `{fix}`?"))),
            "{args:?}: {err}"
        );
    }
}

/// `check --json` agrees with the Twisted vectors for every transport built; a vector listed
/// as a deliberate deviation is checked against its declared differences (the fields that
/// differ and our value of each), not skipped.
#[test]
fn check_json_matches_the_conformance_vectors() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../endpoints-compat-tests/vectors"
    );
    let deviations: BTreeMap<String, BTreeMap<String, String>> =
        std::fs::read_to_string(format!("{dir}/deviations.jsonl"))
            .expect("deviations")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("deviation json"))
            .map(|v| {
                let name = v["vector"].as_str().expect("vector").to_owned();
                let differs = v["differs"]
                    .as_object()
                    .expect("differs")
                    .iter()
                    .map(|(k, x)| (k.clone(), x.as_str().expect("text").to_owned()))
                    .collect();
                (name, differs)
            })
            .collect();
    let rename = |key: &str| match key {
        "wantPID" | "checkPID" => "lockfile".to_owned(),
        k => k.to_owned(),
    };
    let (mut compared, mut deviating) = (0, 0);
    let no_declaration = BTreeMap::new();
    for line in std::fs::read_to_string(format!("{dir}/twisted-vectors.jsonl"))
        .expect("vectors")
        .lines()
    {
        let v: Value = serde_json::from_str(line).expect("json");
        let (Some(side), Some(input)) = (v["side"].as_str(), v["input"].as_str()) else {
            continue;
        };
        // Placeholder files and systemd descriptors exist only inside the compat runner.
        if !matches!(side, "server" | "client") || input.contains('{') || v.get("env").is_some() {
            continue;
        }
        let bytes = if v["input_is_bytes"].as_bool() == Some(true) {
            " [bytes]"
        } else {
            ""
        };
        let declared = deviations.get(&format!("{side} {input}{bytes}"));
        let (code, out, err) = run(&["check", &format!("--{side}"), "--json", input]);
        if let Some(result) = declared.and_then(|d| d.get("result")) {
            deviating += 1;
            check_declared_result(input, result, code, &out, &err);
            continue;
        }
        if v.get("expect").is_none() || input.starts_with("crfake") || input.starts_with("stdio") {
            assert!(
                declared.is_none(),
                "`{input}` is listed, but neither its result nor its parameters are checked"
            );
            continue;
        }
        assert_eq!(code, 0, "`{input}`: {err}");
        let ours: Value = serde_json::from_str(&out).expect("json");
        let expect = &v["expect"];
        let declared = match declared {
            Some(d) => {
                deviating += 1;
                d
            }
            None => &no_declaration,
        };
        // A `tls:` server's TCP parameters are its own; a wrapper's inner endpoint is `wrapped`.
        let (tcp_of_tls, wrapper) = (
            expect["type"] == "TLSServerEndpoint",
            expect["type"] == "_WrapperServerEndpoint",
        );
        let mut checked = BTreeMap::new();
        if wrapper {
            agree(
                input,
                &expect["wrapped"],
                &ours["wrapped"],
                &rename,
                declared,
                &mut checked,
            );
        } else {
            agree(input, expect, &ours, &rename, declared, &mut checked);
            if tcp_of_tls {
                agree(
                    input,
                    &expect["wrapped"],
                    &ours,
                    &rename,
                    declared,
                    &mut checked,
                );
            }
        }
        assert_eq!(
            &checked, declared,
            "`{input}`: the declared differences are not the ones `check --json` shows"
        );
        compared += 1;
    }
    assert!(compared >= 25, "only {compared} vectors compared");
    // Every listed vector without placeholder files or descriptors (39 today).
    assert!(
        deviating >= 39,
        "only {deviating} listed vectors checked against their declaration"
    );
}

/// A declared `result` deviation: `error KIND` (we refuse with that kind) or ``builds `X` ``
/// (we build, with this canonical form).
fn check_declared_result(input: &str, result: &str, code: i32, out: &str, err: &str) {
    if let Some(kind) = result.strip_prefix("error ") {
        assert_ne!(
            code, 0,
            "`{input}`: declared to fail with {kind}; it builds: {out}"
        );
        let shown = if out.trim().is_empty() { err } else { out };
        let json: Value = serde_json::from_str(shown).expect("a JSON error");
        assert_eq!(json["error"]["kind"], kind, "`{input}`: {shown}");
    } else if let Some(canonical) = result
        .strip_prefix("builds `")
        .and_then(|r| r.strip_suffix('`'))
    {
        assert_eq!(code, 0, "`{input}`: declared to build; {err}");
        let json: Value = serde_json::from_str(out).expect("json");
        assert_eq!(json["canonical"], canonical, "`{input}`");
    } else {
        panic!("`{input}`: a declared result the CLI test does not know: {result}");
    }
}

/// Twisted's attributes that are not parameters.
const NOT_PARAMETERS: &[&str] = &[
    "type",
    "wrapped",
    "tls",
    "connectionCreator",
    "wrapperFactory",
    "wrapper",
    "fileno",
    "addressFamily",
    "pluginPrefix",
];

/// Our value as the deviations list writes it (`1024`, `1`/`0` for flags).
fn as_declared(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Null => "absent".to_owned(),
        other => other.to_string(),
    }
}

/// Compare every parameter of `expect` with ours: a declared key must have the declared
/// value (and is recorded in `checked`), any other must agree with Twisted.
fn agree(
    input: &str,
    expect: &Value,
    ours: &Value,
    rename: &dyn Fn(&str) -> String,
    declared: &BTreeMap<String, String>,
    checked: &mut BTreeMap<String, String>,
) {
    let Some(map) = expect.as_object() else {
        return;
    };
    for (key, want) in map {
        if NOT_PARAMETERS.contains(&key.as_str()) {
            continue;
        }
        let ours_v = &ours["params"][rename(key)];
        if let Some(value) = declared.get(&rename(key)) {
            assert_eq!(
                &as_declared(ours_v),
                value,
                "`{input}`: `{key}` differs from Twisted, but not as declared"
            );
            checked.insert(rename(key), value.clone());
            continue;
        }
        let agrees = match want {
            // Our 0/1 parameters are JSON booleans; Twisted has 0, 1 or "0".
            Value::Number(n) if ours_v.is_boolean() => {
                ours_v.as_bool() == Some(n.as_f64() != Some(0.0))
            }
            Value::String(s) if ours_v.is_boolean() => ours_v.as_bool() == Some(s != "0"),
            Value::Number(n) => {
                ours_v.as_f64() == n.as_f64()
                    || ours_v.as_str().and_then(|s| s.parse::<f64>().ok()) == n.as_f64()
            }
            Value::String(s) if s.starts_with("0o") => {
                ours_v.as_str() == Some(s.trim_start_matches("0o"))
            }
            Value::String(s) => ours_v.as_str() == Some(s.as_str()),
            Value::Bool(b) => ours_v.as_bool() == Some(*b),
            Value::Null => ours_v.is_null(),
            Value::Array(a) => ours_v.as_str() == a.first().and_then(Value::as_str),
            Value::Object(_) => true,
        };
        assert!(agrees, "`{input}`: `{key}` is {ours_v}, Twisted {want}");
    }
}

/// Start `endpoints ARGS`, wait for its `listening on ...` line; return the description.
async fn start(args: &[&str]) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    start_command(cmd).await
}

/// Like [`start`], for a command built by the caller (its stdout goes nowhere).
async fn start_command(mut cmd: Command) -> (Child, String) {
    cmd.stdout(Stdio::null());
    let (child, desc, _later_lines) = super::data_paths::start(cmd).await;
    (child, desc)
}

#[tokio::test]
async fn listen_echo_and_connect_with_half_close() {
    let (_server, shown) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let port = port_in(&shown);
    assert_ne!(port, 0, "the real port is shown: {shown}");
    let mut client = Command::new(BIN)
        .args(["connect", &format!("tcp:127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connect");
    let mut stdin = client.stdin.take().expect("stdin");
    stdin
        .write_all(b"hello through the command\n")
        .await
        .expect("write");
    drop(stdin); // EOF: connect half-closes, the echo server finishes, connect exits
    let out = tokio::time::timeout(Duration::from_secs(10), client.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello through the command\n");
}

#[tokio::test]
async fn failures_exit_non_zero_with_one_line_naming_the_endpoint() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let (code, _, err) = run(&["listen", &format!("tcp:{port}:interface=127.0.0.1")]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "endpoints: cannot listen on `tcp:port={port}:interface=127.0.0.1"
        )),
        "{err}"
    );
    drop(busy);
    let (code, _, err) = run(&["connect", &format!("tcp:127.0.0.1:{port}")]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "endpoints: cannot connect to `tcp:host=127.0.0.1:port={port}"
        )),
        "{err}"
    );
    let (code, _, _) = run(&["relay", "tcp:0"]);
    assert_eq!(code, 2, "usage error");
}

/// A deterministic byte stream.
fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = offset + i as u64;
        *b = (x ^ (x >> 8) ^ (x >> 17)).wrapping_mul(31) as u8;
    }
}

/// Sockets in CLOSE_WAIT on any of `ports`, from `ss` (Debian package `iproute2`).
fn close_wait_on(ports: &[u16]) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-tanH", "state", "close-wait"])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| ports.iter().any(|p| l.contains(&format!(":{p} "))))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_chain_keeps_256_mib_intact_both_ways() {
    const TOTAL: u64 = 256 << 20;
    let dir = std::env::temp_dir().join(format!("endpoints-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("hop.sock");
    // tcp echo server <- relay (unix -> tcp) <- relay (tcp -> unix) <- client
    let (_echo, echo_at) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let echo_port = port_in(&echo_at);
    let (_hop2, _) = start(&[
        "relay",
        &format!("unix:{}", sock.display()),
        &format!("tcp:127.0.0.1:{echo_port}"),
    ])
    .await;
    let (_hop1, front_at) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("unix:{}", sock.display()),
    ])
    .await;
    let front = port_in(&front_at);

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", front))
        .await
        .expect("connect");
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut sent = 0u64;
        while sent < TOTAL {
            pattern(sent, &mut buf);
            w.write_all(&buf).await.expect("write");
            sent += buf.len() as u64;
        }
        w.shutdown().await.expect("half-close");
    });
    let mut got = vec![0u8; 1 << 16];
    let mut want = vec![0u8; 1 << 16];
    let mut received = 0u64;
    let started = Instant::now();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), r.read(&mut got))
            .await
            .expect("progress")
            .expect("read");
        if n == 0 {
            break;
        }
        pattern(received, &mut want[..n]);
        assert!(got[..n] == want[..n], "corruption at byte {received}");
        received += n as u64;
    }
    writer.await.expect("writer");
    assert_eq!(
        received, TOTAL,
        "every byte came back, then EOF (half-close went through both relays)"
    );
    eprintln!(
        "256 MiB each way through two relays in {:?}",
        started.elapsed()
    );
    drop(r);

    // Nothing stays in CLOSE_WAIT on the relays' ports.
    if !endpoints_conformance::peer_program("ss", "-V", "iproute2") {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while close_wait_on(&[front, echo_port]) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        close_wait_on(&[front, echo_port]),
        0,
        "sockets left in CLOSE_WAIT"
    );
}

#[tokio::test]
async fn sigterm_stops_listening_and_drains() {
    let (mut relay, shown) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        "tcp:127.0.0.1:9",
        "--drain-timeout",
        "2",
    ])
    .await;
    let port = port_in(&shown);
    let pid = relay.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), relay.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(exit.success(), "{exit}");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the port was released"
    );
}

/// A PROXY listener: the relay forwards the bytes that came in the header's segment, then
/// splices the socket underneath; it logs the client address from the header.
#[tokio::test]
async fn relay_from_a_haproxy_listener_logs_the_real_client() {
    let (_echo, echo_at) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let echo_port = port_in(&echo_at);
    let mut relay = Command::new(BIN)
        .args([
            "relay",
            "haproxy:tcp:0:interface=127.0.0.1",
            &format!("tcp:127.0.0.1:{echo_port}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("relay");
    let mut lines = BufReader::new(relay.stderr.take().expect("stderr")).lines();
    let first = lines.next_line().await.expect("read").expect("line");
    let port = port_in(first.trim_start_matches("listening on "));
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    // The header and the first bytes in one segment, so the wrapper reads them together;
    // then enough more that the relay's pipe grows (after 8 MiB).
    const MORE: usize = 12 << 20;
    s.write_all(b"PROXY TCP4 192.0.2.77 127.0.0.1 40000 443\r\nping through the wrapper")
        .await
        .expect("write");
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; MORE];
        pattern(0, &mut buf);
        w.write_all(&buf).await.expect("write");
        w.shutdown().await.expect("half-close");
    });
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut back))
        .await
        .expect("in time")
        .expect("read");
    writer.await.expect("writer");
    let mut want = b"ping through the wrapper".to_vec();
    want.resize(24 + MORE, 0);
    pattern(0, &mut want[24..]);
    assert_eq!(back.len(), want.len());
    assert!(back == want, "the bytes came back changed");
    let limit = lines.next_line().await.expect("read").expect("a line");
    assert!(limit.starts_with("relay: at most "), "{limit}");
    // The library's warning about a listener without `trusted=` comes first (issue 24 item
    // 1), then the connection's line.
    let log = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let l = lines.next_line().await.expect("read").expect("a log line");
            if !l.contains(" WARN ") {
                return l;
            }
        }
    })
    .await
    .expect("in time");
    assert!(
        log.starts_with("relay 192.0.2.77:40000 -> tcp:host=127.0.0.1"),
        "{log}"
    );
    let n = 24 + MORE;
    assert!(
        log.contains(&format!("{n} bytes up, {n} bytes down")),
        "{log}"
    );
    assert!(log.ends_with(", spliced"), "{log}");
}

/// Many connections at once through the relay: every byte of every connection arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_relayed_connections_lose_nothing() {
    const CONNS: usize = 500;
    const EACH: usize = 128 * 1024;
    let (_echo, echo_at) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let echo_port = port_in(&echo_at);
    let (_relay, front_at) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{echo_port}"),
    ])
    .await;
    let front = port_in(&front_at);
    let mut tasks = Vec::new();
    for i in 0..CONNS {
        tasks.push(tokio::spawn(async move {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", front))
                .await
                .expect("connect");
            let (mut r, mut w) = s.into_split();
            let offset = (i * EACH) as u64;
            let writer = tokio::spawn(async move {
                let mut buf = vec![0u8; EACH];
                pattern(offset, &mut buf);
                w.write_all(&buf).await.expect("write");
                w.shutdown().await.expect("half-close");
            });
            let mut back = Vec::with_capacity(EACH);
            r.read_to_end(&mut back).await.expect("read");
            writer.await.expect("writer");
            let mut want = vec![0u8; EACH];
            pattern(offset, &mut want);
            assert_eq!(
                back.len(),
                EACH,
                "connection {i}: {} of {EACH} bytes came back",
                back.len()
            );
            assert!(back == want, "connection {i}: corrupted");
        }));
    }
    let all = async {
        for t in tasks {
            t.await.expect("connection");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("every connection finished");
}

#[tokio::test]
async fn relay_passes_an_upstream_reset_on_as_a_reset() {
    // An upstream that reads a little, then resets the connection.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up_port = upstream.local_addr().expect("addr").port();
    let resetter = tokio::spawn(async move {
        let (mut s, _) = upstream.accept().await.expect("accept");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("first byte");
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(s);
    });
    let (_relay, front_at) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{up_port}"),
    ])
    .await;
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port_in(&front_at)))
        .await
        .expect("connect");
    client.write_all(b"hello, upstream").await.expect("write");
    resetter.await.expect("upstream reset");
    let mut rest = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
        .await
        .expect("the relay closed the client in time");
    let err = got.expect_err("a reset, not a clean end of stream");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

/// The command raises its soft open-files limit to the hard one: started with a soft limit of
/// 64, a relay still serves 40 connections held open at once (each takes up to six
/// descriptors: two sockets, two pipes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_raises_a_low_open_files_limit() {
    const CONNS: usize = 40;
    let (_echo, echo_at) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let echo_port = port_in(&echo_at);
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -Sn 64 && exec \"$0\" \"$@\"",
        BIN,
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!("tcp:127.0.0.1:{echo_port}"),
    ]);
    let (relay, front_at) = start_command(cmd).await;
    let pid = relay.id().expect("pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files");
    let soft: u64 = open_files
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(
        soft > 6 * CONNS as u64,
        "soft limit still {soft}: {open_files}"
    );
    let front = port_in(&front_at);
    let all_echoed = std::sync::Arc::new(tokio::sync::Barrier::new(CONNS));
    let mut tasks = Vec::new();
    for i in 0..CONNS {
        let all_echoed = all_echoed.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", front))
                .await
                .expect("connect");
            let msg = format!("connection {i:02}");
            s.write_all(msg.as_bytes()).await.expect("write");
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).await.expect("echo");
            assert_eq!(back, msg.as_bytes());
            // Every connection stays open until all have their echo.
            all_echoed.wait().await;
        }));
    }
    tokio::time::timeout(Duration::from_secs(20), async {
        for t in tasks {
            t.await.expect("connection");
        }
    })
    .await
    .expect("all 40 connections served at once");
}

/// `endpoints connect 'httpconnect:...'` through tinyproxy to `endpoints relay tcp:0
/// 'socks5:...'`, which goes through microsocks to an echo server (issue 16).
#[tokio::test]
async fn connect_through_httpconnect_to_a_relay_through_socks5() {
    // microsocks has no option that exits 0 (`-h` exits 1): a spawn failure means missing.
    if !endpoints_test_support::peers::startable("microsocks", "-h", "microsocks") {
        return;
    }
    if !endpoints_conformance::peer_program("tinyproxy", "-v", "tinyproxy") {
        return;
    }
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port")
    };
    let wait = |port: u16| async move {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nothing listens on {port}");
    };
    let (_echo, echo_at) = start(&["listen", "tcp:0:interface=127.0.0.1", "--echo"]).await;
    let socks = free();
    let _microsocks = Command::new("microsocks")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &socks.to_string(),
            "-u",
            "u",
            "-P",
            "p",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("microsocks");
    wait(socks).await;
    let (_relay, relay_at) = start(&[
        "relay",
        "tcp:0:interface=127.0.0.1",
        &format!(
            "socks5:127.0.0.1:{}:proxy=tcp\\:127.0.0.1\\:{socks}:user=u:password=p",
            port_in(&echo_at)
        ),
    ])
    .await;
    let relay = port_in(&relay_at);
    let http = free();
    let conf = std::env::temp_dir().join(format!(
        "endpoints-cli-tinyproxy-{}.conf",
        std::process::id()
    ));
    std::fs::write(
        &conf,
        format!("Port {http}\nListen 127.0.0.1\nAllow 127.0.0.1\nBasicAuth u p\nConnectPort {relay}\nLogLevel Critical\n"),
    )
    .expect("tinyproxy.conf");
    let _tinyproxy = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("tinyproxy");
    wait(http).await;
    let mut client = Command::new(BIN)
        .args([
            "connect",
            &format!(
                "httpconnect:127.0.0.1:{relay}:proxy=tcp\\:127.0.0.1\\:{http}:user=u:password=p"
            ),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connect");
    let mut stdin = client.stdin.take().expect("stdin");
    let mut stdout = client.stdout.take().expect("stdout");
    stdin
        .write_all(b"through two proxies\n")
        .await
        .expect("write");
    // Read the echo before closing stdin: microsocks ends a connection at the first EOF.
    let mut back = [0u8; 20];
    tokio::time::timeout(Duration::from_secs(10), stdout.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(&back, b"through two proxies\n");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), client.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
}
