//! The conformance suite, the grammar's errors, hidden secrets, the declared transport.

use endpoints_core::registry::{self, Side, build_client, build_server};
use endpoints_core::{Description, ErrorKind};
use endpoints_ws::params::{
    CLIENT_TRANSPORT, SERVER_PARAMS, TLS_PASSED, WS_CLIENT_PARAMS, WSS_CLIENT_PARAMS,
};

#[test]
fn ws_client_conformance() {
    endpoints_conformance::Suite::client("ws")
        .valid("ws:localhost")
        .valid("ws:localhost:8080:path=/chat?room=1")
        .valid("ws:[::1]:9000:subprotocols=a,b:headers=X-Team=blue")
        .valid("ws:example.com:origin=https\\://app.example:hostHeader=front.example")
        .valid("ws:example.com:user=me:password=pw")
        .valid("ws:example.com:token=abc:ping=20:pongTimeout=5")
        .valid("ws:example.com:endpoint=unix\\:/run/ws.sock")
        .invalid("ws", ErrorKind::MissingParameter)
        .invalid("ws:localhost:prot=80", ErrorKind::UnknownParameter)
        .invalid("ws:localhost:path=chat", ErrorKind::InvalidValue)
        .invalid("ws:localhost:subprotocols=a b", ErrorKind::InvalidValue)
        .invalid("ws:localhost:headers=Host=x", ErrorKind::InvalidValue)
        .invalid(
            "ws:localhost:headers=Authorization=x",
            ErrorKind::InvalidValue,
        )
        .invalid("ws:localhost:password=pw", ErrorKind::InvalidValue)
        .invalid("ws:localhost:token=a:user=b", ErrorKind::InvalidValue)
        .invalid("ws:localhost:maxFrame=3", ErrorKind::InvalidValue)
        .invalid("ws:localhost:endpoint=nope\\:1", ErrorKind::UnknownType)
        .run();
}

#[test]
fn wss_client_conformance() {
    endpoints_conformance::Suite::client("wss")
        .valid("wss:example.com")
        .valid("wss:example.com:8443:path=/t:sni=front.example:minVersion=1.3")
        .valid("wss:example.com:trustRoots=mozilla")
        .invalid("wss:example.com:minVersion=1.1", ErrorKind::InvalidValue)
        .invalid("wss:example.com:caCerts=x", ErrorKind::UnknownParameter)
        .run();
}

// `endpoints_conformance::echo` is not run for the server: it half-closes and then expects
// the echo, and WebSocket has no half-close (RFC 6455 §5.5.1: the peer answers Close with
// Close and sends no more). `ours.rs` and `python.rs` echo with both directions at once.
#[test]
fn ws_server_conformance() {
    endpoints_conformance::Suite::server("ws")
        .valid("ws:tcp:8080")
        .valid("ws:path=/tunnel:tcp:8080:interface=127.0.0.1")
        .valid("ws:origins=https\\://a.example,https\\://b.example:subprotocols=binary:tcp:80")
        .valid("ws:token=s3cret:timeout=3:maxPendingPerSource=8:unix:/tmp/ws.sock")
        .invalid("ws", ErrorKind::MissingParameter)
        .invalid("ws:path=/x", ErrorKind::MissingParameter)
        .invalid("ws:colour=red:tcp:80", ErrorKind::UnknownParameter)
        .invalid("ws:path=x:tcp:80", ErrorKind::InvalidValue)
        .invalid("ws:timeout=0:tcp:80", ErrorKind::InvalidValue)
        .invalid("ws:tcp:prot=80", ErrorKind::UnknownParameter)
        .run();
}

#[test]
fn the_declared_transport_and_the_tls_parameters_are_real() {
    assert!(CLIENT_TRANSPORT.problems(WS_CLIENT_PARAMS).is_empty());
    assert!(CLIENT_TRANSPORT.problems(WSS_CLIENT_PARAMS).is_empty());
    let tls = registry::plugins()
        .find(|p| p.prefix() == "tls" && p.side() == Side::Client)
        .expect("tls: client linked");
    for name in TLS_PASSED {
        assert!(
            tls.params().iter().any(|p| p.name == *name),
            "`wss:` passes `{name}` to `tls:`, which no longer declares it"
        );
        assert!(WSS_CLIENT_PARAMS.iter().any(|p| p.name == *name), "{name}");
    }
}

#[test]
fn errors_point_into_the_users_text() {
    // Inside `endpoint=`.
    let text = "ws:localhost:endpoint=tcp\\:localhost\\:prot=80";
    let e = build_client(&text.parse().expect("grammar")).expect_err("bad inner");
    // The whole nested value, as `tls:` points at its `endpoint=`; the message names `prot`.
    assert_eq!(&text[e.span()], "tcp\\:localhost\\:prot=80", "{e}");
    assert!(e.to_string().contains("did you mean `port`"), "{e}");
    // In an option of the server.
    let text = "ws:path=nope:tcp:80";
    let e = build_server(&text.parse().expect("grammar")).expect_err("bad path");
    assert_eq!(&text[e.span()], "nope", "{e}");
    assert_eq!(e.parameter(), Some("path"));
    assert_eq!(e.suggestion(), Some("path=/nope"));
    // A `tls:` option `wss:` passes on, wrong: pointed at the user's value.
    let text = "wss:localhost:trustRoots=/does/not/exist.pem";
    let e = build_client(&text.parse().expect("grammar")).expect_err("missing file");
    assert_eq!(&text[e.span()], "/does/not/exist.pem", "{e}");
    // The inner server's error, in the inner description.
    let text = "ws:path=/x:tcp:prot=80";
    let e = build_server(&text.parse().expect("grammar")).expect_err("bad inner");
    assert_eq!(&text[e.span()], "prot", "{e}");
}

#[test]
fn a_server_option_after_the_inner_description_says_where_it_goes() {
    let text = "ws:tcp:8080:path=/x";
    let e = build_server(&text.parse().expect("grammar")).expect_err("misplaced");
    assert!(e.to_string().contains("ws"), "{e}");
}

#[test]
fn secrets_are_hidden_from_display_and_debug() {
    let dir = crate::common::temp_dir("secrets");
    let file = dir.join("token");
    std::fs::write(&file, "filetoken-9f3\n").expect("write");
    let cases = [
        "ws:localhost:user=me:password=hunter2-9f3".to_owned(),
        "ws:localhost:token=tok-9f3".to_owned(),
        format!(
            "ws:localhost:tokenFile={}",
            endpoints_core::escape(&file.display().to_string())
        ),
        "wss:localhost:user=me:password=hunter2-9f3".to_owned(),
    ];
    for text in &cases {
        let c = build_client(&text.parse().expect("grammar")).expect("builds");
        let shown = format!("{c} {c:?}");
        assert!(!shown.contains("9f3"), "{text}: {shown}");
        if text.contains("password=") {
            assert!(c.to_string().contains("password=***"), "{c}");
        }
        let again: Description = c.to_string().parse().expect("canonical parses");
        build_client(&again).expect("canonical builds");
    }
    let s = build_server(&"ws:token=srv-9f3:tcp:0".parse().expect("grammar")).expect("builds");
    let shown = format!("{s} {s:?}");
    assert!(!shown.contains("9f3"), "{shown}");
    assert!(s.to_string().contains("token=***"), "{s}");
}

#[test]
fn secrets_come_from_files_and_the_environment() {
    let e = build_client(
        &"ws:localhost:tokenEnv=ENDPOINTS_WS_TEST_UNSET_VAR"
            .parse()
            .expect("grammar"),
    )
    .expect_err("unset");
    assert!(e.to_string().contains("is not set"), "{e}");
    assert_eq!(e.parameter(), Some("tokenEnv"));
    let e = build_client(
        &"ws:localhost:token=a:tokenFile=/x"
            .parse()
            .expect("grammar"),
    )
    .expect_err("two sources");
    assert!(e.to_string().contains("not several"), "{e}");
    let e = build_server(
        &"ws:tokenFile=/does/not/exist:tcp:0"
            .parse()
            .expect("grammar"),
    )
    .expect_err("unreadable");
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn every_parameter_has_help() {
    for p in WS_CLIENT_PARAMS
        .iter()
        .chain(WSS_CLIENT_PARAMS)
        .chain(SERVER_PARAMS)
    {
        assert!(!p.help.is_empty(), "{}", p.name);
    }
}
