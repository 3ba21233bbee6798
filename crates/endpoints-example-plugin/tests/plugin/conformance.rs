//! The conformance suite and a real connection, as the guide shows.

// ANCHOR: tests
// Link the crate under test (registration happens only for linked crates), and the
// transport its descriptions wrap.
use endpoints_example_plugin as _;
use endpoints_tcp as _;

use endpoints_core::{Description, ErrorKind, registry};
use tokio::io::AsyncReadExt;

#[test]
fn conformance() {
    endpoints_conformance::Suite::client("greet")
        .valid("greet:tcp:localhost:7000")
        .valid("greet:text=HELO\\ me:tcp:host=localhost:port=25")
        .invalid("greet", ErrorKind::MissingParameter)
        .invalid("greet:text=hi", ErrorKind::MissingParameter)
        .invalid("greet:tcp:localhost:prot=80", ErrorKind::UnknownParameter)
        .invalid(
            "greet:colour=red:tcp:localhost:80",
            ErrorKind::UnknownParameter,
        )
        .run();
}

#[test]
fn errors_point_into_the_inner_description() {
    let text = "greet:text=hi:tcp:localhost:prot=80";
    let d: Description = text.parse().expect("grammar");
    let e = registry::build_client(&d).expect_err("bad inner parameter");
    assert_eq!(&text[e.span()], "prot", "{e}");
}

#[test]
fn canonical_form_composes() {
    let d: Description = "greet:tcp:localhost:7000".parse().expect("grammar");
    let shown = registry::build_client(&d).expect("builds").to_string();
    assert!(
        shown.starts_with("greet:text=hello:tcp:host=localhost:port=7000"),
        "{shown}"
    );
}

#[tokio::test]
async fn sends_the_line_then_hands_over_the_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let d: Description = format!("greet:text=hi\\ there:tcp:127.0.0.1:{port}")
        .parse()
        .expect("grammar");
    let client = registry::build_client(&d).expect("builds");
    let (conn, accepted) = tokio::join!(client.connect(), listener.accept());
    drop(conn.expect("connected"));
    let mut got = String::new();
    accepted
        .expect("accepted")
        .0
        .read_to_string(&mut got)
        .await
        .expect("read");
    assert_eq!(got, "hi there\n");
}
// ANCHOR_END: tests

/// issue 27 item 5: a third-party wrapper gets the application's type policy without a line
/// of its own: its inner description is built through the registry.
#[test]
fn the_type_policy_reaches_inside_a_third_party_wrapper() {
    use endpoints_core::registry::{TypePolicy, build_client_with};
    let text = "greet:text=hi:tcp:localhost:7000";
    let d: Description = text.parse().expect("parse");
    let e = build_client_with(&d, &TypePolicy::deny(["tcp"]))
        .map(|_| ())
        .expect_err("tcp refused inside greet:");
    assert_eq!(e.kind(), ErrorKind::NotAllowed, "{e}");
    assert_eq!(&text[e.span()], "tcp");
    assert!(build_client_with(&d, &TypePolicy::allow(["greet", "tcp"])).is_ok());
}
