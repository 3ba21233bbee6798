//! issue 27 item 5: a type policy refuses a type at every nesting level, through every
//! wrapper of this project (`tls:`'s `endpoint=`, `haproxy:`, `socks5:`'s `proxy=`, `ssl:`
//! servers' `endpoint=`), with an error that names the type and points at where it sits.
#![cfg(all(
    feature = "exec",
    feature = "tls",
    feature = "proxy",
    feature = "tunnel"
))]

use endpoints::registry::TypePolicy;
use endpoints::{ErrorKind, client_with, server_with};

#[test]
fn exec_is_refused_wherever_it_is_nested() {
    let no_exec = TypePolicy::deny(["exec"]);
    for (text, param) in [
        ("exec:cat", None),
        (
            r"tls:host=db:port=5432:endpoint=exec\:ssh\:-W\:db\\\:5432\:bastion",
            Some("endpoint"),
        ),
        ("haproxy:exec:cat", None),
        ("haproxy:version=2:haproxy:exec:cat", None),
        (r"socks5:db:5432:proxy=exec\:nc\:proxy\:1080", Some("proxy")),
        (
            r"tls:host=db:port=443:endpoint=socks5\:db\:443\:proxy=exec\\\:cat",
            Some("proxy"),
        ),
    ] {
        let e = client_with(text, &no_exec).map(|_| ()).expect_err(text);
        assert_eq!(e.kind(), ErrorKind::NotAllowed, "{text}: {e}");
        assert!(e.message().contains("`exec` is not allowed"), "{text}: {e}");
        assert_eq!(e.parameter(), param, "{text}: {e}");
        // The span is the prefix, or the value of the outermost parameter holding it; the
        // message says each level (`in `endpoint=`: in `proxy=`: ...`).
        let at = &text[e.span()];
        assert!(at.contains("exec"), "{text}: the span shows `{at}`");
        assert!(
            text.ends_with(at) || at.starts_with("exec"),
            "{text}: `{at}`"
        );
        // Without the policy, each builds.
        assert!(endpoints::client(text).is_ok(), "{text}");
    }
}

#[test]
fn an_allow_list_refuses_what_it_does_not_name_at_any_level() {
    let allow = TypePolicy::allow(["tls", "tcp", "hostname"]);
    assert!(client_with("tls:db:5432", &allow).is_ok());
    let e = client_with(r"tls:host=db:port=5432:endpoint=unix\:/run/db.sock", &allow)
        .map(|_| ())
        .expect_err("unix is not named");
    assert_eq!(e.kind(), ErrorKind::NotAllowed);
    assert!(
        e.message().contains("allows only: hostname, tcp, tls"),
        "{e}"
    );
    // Server side, through ssl:'s endpoint= and haproxy:.
    let servers = TypePolicy::allow(["haproxy", "tcp"]);
    assert!(server_with("haproxy:tcp:0:interface=127.0.0.1", &servers).is_ok());
    let e = server_with("haproxy:unix:/run/x.sock", &servers)
        .map(|_| ())
        .expect_err("unix refused");
    assert_eq!(&"haproxy:unix:/run/x.sock"[e.span()], "unix");
}
