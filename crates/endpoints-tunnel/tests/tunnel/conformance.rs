//! Both types pass the `endpoints-conformance` suite, and echo (with a half-close) through
//! in-process proxies.

use crate::common;
use endpoints_conformance::Suite;
use endpoints_core::ErrorKind;

use endpoints_proxy as _;
use endpoints_tcp as _;
use endpoints_tls as _;
use endpoints_tunnel as _;
use endpoints_unix as _;

#[test]
fn socks5_conformance() {
    Suite::client("socks5")
        .valid(r"socks5:example.com:443:proxy=tcp\:127.0.0.1\:1080")
        .valid(r"socks5:[::1]:22:proxy=unix\:/run/tor.sock:resolve=local:timeout=0")
        .valid(r"socks5:host=10.0.0.1:port=80:proxy=tcp\:proxy\:1080:user=me:password=pw")
        .valid(r"socks5:a.example:1:proxy=socks5\:b.example\:2\:proxy=tcp\\\:127.0.0.1\\\:1080")
        .invalid("socks5:example.com:443", ErrorKind::MissingParameter)
        .invalid(
            r"socks5:example.com:70000:proxy=tcp\:h\:1",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"socks5:exa mple.com:1:proxy=tcp\:h\:1",
            ErrorKind::InvalidValue,
        )
        .invalid(r"socks5:h:1:proxy=nope\:x", ErrorKind::UnknownType)
        .invalid(
            r"socks5:h:1:proxy=tcp\:h\:1:password=x",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"socks5:h:1:proxy=tcp\:h\:1:user=u",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"socks5:h:1:proxy=tcp\:h\:1:user=u:password=p:passwordEnv=P",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"socks5:h:1:proxy=tcp\:h\:1:resolve=here",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"socks5:h:1:proxy=tcp\:h\:1:prxy=1",
            ErrorKind::UnknownParameter,
        )
        .run();
}

#[test]
fn httpconnect_conformance() {
    Suite::client("httpconnect")
        .valid(r"httpconnect:example.com:443:proxy=tcp\:proxy.corp\:3128")
        .valid(r"httpconnect:[2001:db8::1]:443:proxy=tcp\:127.0.0.1\:3128:user=me:password=pw")
        .valid(r"httpconnect:example.com:443:proxy=tls\:proxy.corp\:443")
        .invalid("httpconnect:example.com:443", ErrorKind::MissingParameter)
        .invalid(
            r"httpconnect:h:1:proxy=tcp\:h\:1:user=a\:b:password=p",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"httpconnect:h:1:proxy=tcp\:h\:1:user=a:passwordFile=/nonexistent/x",
            ErrorKind::InvalidValue,
        )
        .invalid(
            r"httpconnect:h:1:proxy=tcp\:h\:1:resolve=local",
            ErrorKind::UnknownParameter,
        )
        .invalid(
            "httpconnect:h\r\nX-Injected\\: y:1:proxy=tcp\\:h\\:1",
            ErrorKind::InvalidValue,
        )
        .run();
}

#[tokio::test]
async fn echo_through_socks5() {
    let (proxy, _requests) = common::fake_socks5(0).await;
    endpoints_conformance::echo("tcp:0:interface=127.0.0.1", |a| {
        let port = a.ip().map(|a| a.port()).unwrap_or(0);
        format!("socks5:127.0.0.1:{port}:proxy={}", common::tcp_proxy(proxy))
    })
    .await;
}

#[tokio::test]
async fn echo_through_httpconnect() {
    let (proxy, _requests) =
        common::fake_http(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
    endpoints_conformance::echo("tcp:0:interface=127.0.0.1", |a| {
        let port = a.ip().map(|a| a.port()).unwrap_or(0);
        format!(
            "httpconnect:127.0.0.1:{port}:proxy={}",
            common::tcp_proxy(proxy)
        )
    })
    .await;
}

#[test]
fn display_hides_the_password_and_round_trips() {
    let d = r"socks5:Example.COM:443:proxy=tcp\:127.0.0.1\:1080:user=me:password=topsecret";
    let shown = endpoints_conformance::round_trip(endpoints_core::Side::Client, d);
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("password=***"), "{shown}");
    assert!(
        shown.starts_with("socks5:host=example.com:port=443:proxy=tcp"),
        "{shown}"
    );
    // The proxy= value is shown canonical and escaped, as the grammar reads it.
    assert!(
        shown.contains(r"proxy=tcp\:host=127.0.0.1\:port=1080"),
        "{shown}"
    );
}

/// The examples in docs/grammar.md's section build (those naming a password file or
/// variable that this machine lacks fail on exactly that parameter).
#[test]
fn grammar_examples_build() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grammar.md");
    let grammar = std::fs::read_to_string(path).expect("docs/grammar.md");
    let section = grammar
        .split("### `socks5` and `httpconnect` (client)")
        .nth(1)
        .expect("the section");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an example block");
    let mut built = 0;
    for line in block.lines() {
        let text = line.split("  ").next().unwrap_or(line).trim();
        let d: endpoints_core::Description = text.parse().unwrap_or_else(|e| panic!("{e}"));
        match endpoints_core::registry::build_client(&d) {
            Ok(_) => built += 1,
            Err(e) => assert!(
                matches!(e.parameter(), Some("passwordFile" | "passwordEnv")),
                "`{text}`: {e}"
            ),
        }
    }
    assert!(built >= 5, "{built} examples built");
}

/// A password stays hidden however deep the tunnel is nested: under `tls:`'s `endpoint=`,
/// `haproxy:`, and another tunnel's `proxy=`.
#[test]
fn nested_passwords_are_hidden_too() {
    let cases = [
        r"tls:localhost:443:endpoint=socks5\:127.0.0.1\:443\:proxy=tcp\\\:127.0.0.1\\\:1080\:user=u\:password=sekrit",
        r"haproxy:socks5:127.0.0.1:443:proxy=tcp\:127.0.0.1\:1080:user=u:password=sekrit",
        r"socks5:127.0.0.1:443:proxy=httpconnect\:h\:1\:proxy=tcp\\\:h\\\:2\:user=a\:password=sekrit:user=u:passwordEnv=PATH",
    ];
    for text in cases {
        let shown = endpoints_conformance::round_trip(endpoints_core::Side::Client, text);
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(shown.contains("password=***"), "{shown}");
        let d: endpoints_core::Description = text.parse().expect("parse");
        let debug = format!(
            "{:?}",
            endpoints_core::registry::build_client(&d).expect("build")
        );
        assert!(
            !debug.contains("sekrit"),
            "Debug shows the password: {debug}"
        );
    }
}

/// A nested description written without escaping splits at its colons: the error says so
/// and suggests the escaped form.
#[test]
fn unescaped_proxy_description_gets_the_escaped_suggestion() {
    for (text, want) in [
        (
            "socks5:example.com:443:proxy=tcp:127.0.0.1:1080",
            r"proxy=tcp\:127.0.0.1\:1080",
        ),
        (
            "httpconnect:example.com:443:proxy=unix:/run/proxy.sock:user=me",
            r"proxy=unix\:/run/proxy.sock",
        ),
    ] {
        let d: endpoints_core::Description = text.parse().expect("parse");
        let e = endpoints_core::registry::build_client(&d).expect_err("unescaped");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter, "{e}");
        assert_eq!(e.suggestion(), Some(want), "{e}");
        assert!(e.message().contains("escape"), "{e}");
        assert_eq!(e.parameter(), Some("proxy"), "{e}");
    }
}
