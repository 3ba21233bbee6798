//! issue 27 item 1, the grammar: the program and its arguments as positional fields, no
//! shell, options, errors that name the parameter and suggest the fix.

use endpoints_conformance::Suite;
use endpoints_core::registry::build_client;
use endpoints_core::{Description, ErrorKind};

use endpoints_exec as _;

#[test]
fn exec_conformance() {
    Suite::client("exec")
        .valid("exec:cat")
        .valid(r"exec:socat:-:TCP\:127.0.0.1\:5432")
        .valid(r"exec:ssh:-W:db\:5432:bastion.example:grace=2")
        .valid("exec:sh:-c:exec cat:stderr=inherit:cwd=/tmp")
        .valid("exec:env:env=A=1:env=B=two=2:unsetEnv=HOME,LANG:clearEnv=1")
        .valid(r"exec:printf:%s\=%s:a:b:stderr=drop")
        .valid("exec:program=/bin/echo:hello:world")
        .valid("exec:echo::")
        .invalid("exec", ErrorKind::MissingParameter)
        .invalid("exec:", ErrorKind::InvalidValue)
        .invalid("exec:cat:stderr=loud", ErrorKind::InvalidValue)
        .invalid("exec:cat:grace=-1", ErrorKind::InvalidValue)
        .invalid("exec:cat:env=NOEQUALS", ErrorKind::InvalidValue)
        .invalid("exec:cat:env==x", ErrorKind::InvalidValue)
        .invalid("exec:cat:unsetEnv=A=B", ErrorKind::InvalidValue)
        .invalid("exec:cat:clearEnv=maybe", ErrorKind::InvalidValue)
        .invalid("exec:cat:gracee=1", ErrorKind::UnknownParameter)
        .invalid("exec:prog:--opt=1", ErrorKind::UnknownParameter)
        .invalid("exec:program=a:program=b:c\0d", ErrorKind::InvalidValue)
        .run();
}

fn canonical(text: &str) -> String {
    endpoints_conformance::round_trip(endpoints_core::Side::Client, text)
}

#[test]
fn canonical_form_keeps_the_arguments_positional_and_escaped() {
    assert_eq!(
        canonical(r"EXEC:socat:-:TCP\:127.0.0.1\:5432"),
        r"exec:socat:-:TCP\:127.0.0.1\:5432:clearEnv=0:stderr=log:grace=5"
    );
    assert_eq!(
        canonical(r"exec:program=printf:%s\=%s:a\=b\=c:cwd=/tmp:grace=250ms"),
        r"exec:printf:%s\=%s:a\=b\=c:clearEnv=0:cwd=/tmp:stderr=log:grace=0.25"
    );
    // Repeated env= are all kept, in order, their values hidden.
    assert_eq!(
        canonical("exec:env:env=A=1:env=B=2:unsetEnv=X,Y"),
        "exec:env:env=A=***:env=B=***:unsetEnv=X,Y:clearEnv=0:stderr=log:grace=5"
    );
}

/// issue 30 item 10: `env=API_TOKEN=s3cr3t` reached every log line and exit error through the
/// canonical form. The value is hidden wherever the description is shown (as a proxy's
/// `password=`), and the child still gets it.
#[tokio::test]
async fn env_values_are_shown_nowhere_but_reach_the_child() {
    use tokio::io::AsyncReadExt;
    const SECRET: &str = "s3cr3t";
    let shown_clean = |what: &str, text: &str| {
        assert!(
            !text.contains(SECRET),
            "{what} shows the env= value: {text}"
        );
    };

    let echo = build_client(
        &r"exec:sh:-c:printf %s $API_TOKEN:env=API_TOKEN=s3cr3t"
            .parse()
            .expect("parse"),
    )
    .expect("build");
    shown_clean("Display", &echo.to_string());
    assert!(echo.to_string().contains("env=API_TOKEN=***"), "{echo}");
    shown_clean("Debug", &format!("{echo:?}"));
    use endpoints_tls as _;
    let nested = build_client(
        &r"tls:host=db:port=5432:endpoint=exec\:cat\:env=API_TOKEN=s3cr3t"
            .parse()
            .expect("parse"),
    )
    .expect("build");
    shown_clean("a nested exec:", &nested.to_string());
    // The canonical form is the handover key's source too (`endpoints_util::handover::key`).
    shown_clean(
        "the round trip",
        &canonical("exec:cat:env=API_TOKEN=s3cr3t"),
    );
    let mut conn = echo.connect().await.expect("start sh");
    let mut out = String::new();
    conn.read_to_string(&mut out).await.expect("sh exits 0");
    assert_eq!(out, SECRET, "the child gets the real value");

    // A failed exit's error names the endpoint.
    let failing = build_client(
        &"exec:sh:-c:exit 3:env=API_TOKEN=s3cr3t"
            .parse()
            .expect("parse"),
    )
    .expect("build");
    let mut conn = failing.connect().await.expect("start sh");
    let e = conn
        .read_to_end(&mut Vec::new())
        .await
        .expect_err("exit status 3");
    assert!(e.to_string().contains("exited with status 3"), "{e}");
    shown_clean("the exit error", &e.to_string());
    let exit = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<endpoints_exec::ExitError>())
        .expect("an ExitError");
    shown_clean("ExitError::endpoint", &exit.endpoint);

    // A program that cannot be started (a file that is not executable: a path to nothing is
    // refused when the description is built): the connect error names the endpoint.
    let dir = std::env::temp_dir().join(format!("endpoints-exec-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").expect("file");
    let missing = build_client(
        &format!("exec:{}:env=API_TOKEN=s3cr3t", plain.display())
            .parse()
            .expect("parse"),
    )
    .expect("build");
    let e = missing.connect().await.expect_err("not found");
    shown_clean("the connect error", &e.to_string());
    assert!(e.to_string().contains("env=API_TOKEN=***"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_argument_with_an_unescaped_equals_sign_gets_the_escaped_suggestion() {
    let text = "exec:curl:--max-time=5:https\\://example.com";
    let d: Description = text.parse().expect("parse");
    let e = build_client(&d).expect_err("`--max-time=5` reads as an option");
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(e.parameter(), Some("--max-time"));
    assert_eq!(e.suggestion(), Some(r"--max-time\=5"));
    assert_eq!(&text[e.span()], "--max-time");
    assert!(e.message().contains("escape its `=`"), "{e}");
    // The suggested text builds, and the argument is the intended one.
    let fixed = text.replace("--max-time=5", r"--max-time\=5");
    assert!(canonical(&fixed).contains(r"--max-time\=5"));
}

#[test]
fn a_typo_of_an_option_is_reported_as_one() {
    let d: Description = "exec:cat:stdrr=drop".parse().expect("parse");
    let e = build_client(&d).expect_err("typo");
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(e.suggestion(), Some("stderr"), "{e}");
}

#[test]
fn bad_values_name_the_parameter_and_point_at_it() {
    for (text, param, at) in [
        ("exec:cat:stderr=loud", "stderr", "loud"),
        ("exec:cat:env=NOEQUALS", "env", "NOEQUALS"),
        ("exec:cat:env=A=1:env==x", "env", "=x"),
        ("exec:cat:grace=forever", "grace", "forever"),
        ("exec:cat:unsetEnv=A=B", "unsetEnv", "A=B"),
    ] {
        let d: Description = text.parse().expect("parse");
        let e = build_client(&d).expect_err(text);
        assert_eq!(e.kind(), ErrorKind::InvalidValue, "{text}: {e}");
        assert_eq!(e.parameter(), Some(param), "{text}: {e}");
        assert_eq!(&text[e.span()], at, "{text}: {e}");
    }
}

/// The examples of docs/grammar.md's `exec` section build (TLS and PROXY wrappers linked).
#[test]
fn grammar_examples_build() {
    use endpoints_proxy as _;
    use endpoints_tls as _;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grammar.md");
    let grammar = std::fs::read_to_string(path).expect("docs/grammar.md");
    let section = grammar
        .split("### `exec` (client)")
        .nth(1)
        .expect("the section");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an example block");
    let mut built = 0;
    for text in block.lines() {
        let d: Description = text.parse().unwrap_or_else(|e| panic!("{e}"));
        build_client(&d).unwrap_or_else(|e| panic!("`{text}`: {e}"));
        built += 1;
    }
    assert!(built >= 6, "{built} examples built");
}
