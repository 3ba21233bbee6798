//! Errors that carry the fix (issue 18 items 5 and 7): an IPv6 address in `trusted=` split at
//! its colons, and `haproxy:`'s options written after the inner description.

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Description, ErrorKind, ParseError};
use endpoints_proxy as _;
use endpoints_tcp as _;

fn d(s: &str) -> Description {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn server_error(s: &str) -> ParseError {
    build_server(&d(s)).map(|_| ()).expect_err(s)
}

#[test]
fn trusted_ipv6_without_brackets_suggests_them() {
    let text = "haproxy:trusted=10.0.0.0/8,::1:tcp:7000";
    let e = server_error(text);
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 27..30, "points at `::1`");
    assert_eq!(&text[e.span()], "::1");
    assert_eq!(e.parameter(), Some("trusted"));
    assert_eq!(
        e.suggestion(),
        Some("haproxy:trusted=[10.0.0.0/8,::1]:tcp:7000")
    );
    assert_eq!(
        e.message(),
        "`::1` is an IPv6 address split at its colons (`:` separates fields): write it in \
         brackets, `[::1]` (bracket the whole list), or escape its colons; did you mean \
         `haproxy:trusted=[10.0.0.0/8,::1]:tcp:7000`?"
    );
    let e = server_error("haproxy:trusted=fe80::/10:tcp:7000");
    assert_eq!(e.suggestion(), Some("haproxy:trusted=[fe80::/10]:tcp:7000"));
    // The suggestion is accepted.
    assert!(build_server(&d("haproxy:trusted=[10.0.0.0/8,::1]:tcp:7000")).is_ok());
}

#[test]
fn ipv6_inside_the_inner_description_is_explained_too() {
    let e = build_client(&d("haproxy:tcp:::1:7000"))
        .map(|_| ())
        .expect_err("split");
    assert_eq!(e.span(), 12..15);
    assert_eq!(e.suggestion(), Some("haproxy:tcp:[::1]:7000"));
}

#[test]
fn wrapper_options_after_the_inner_description_are_moved_in_front() {
    let text = "haproxy:tcp:7000:timeout=3";
    let e = server_error(text);
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(&text[e.span()], "timeout");
    assert_eq!(e.parameter(), Some("timeout"));
    assert_eq!(
        e.message(),
        "`timeout` is an option of `haproxy:`, not of `tcp`: `haproxy:`'s options go before \
         the inner description; did you mean `haproxy:timeout=3:tcp:7000`?"
    );
    assert!(build_server(&d("haproxy:timeout=3:tcp:7000")).is_ok());
    let e = server_error("haproxy:maxHeader=4096:tcp:7000:trusted=10.0.0.0/8");
    assert_eq!(
        e.suggestion(),
        Some("haproxy:maxHeader=4096:trusted=10.0.0.0/8:tcp:7000")
    );
    let e = build_client(&d("haproxy:tcp:h:7000:version=2"))
        .map(|_| ())
        .expect_err("misplaced");
    assert_eq!(e.suggestion(), Some("haproxy:version=2:tcp:h:7000"));
    // A parameter the wrapper does not know either keeps the plain message.
    let e = server_error("haproxy:tcp:7000:bogus=3");
    assert!(
        e.message()
            .starts_with("unknown parameter `bogus` for `tcp`"),
        "{e}"
    );
}

/// Issue 23 item 6: `haproxy:8080` suggested `tcp:8080`, dropping the wrapper.
#[test]
fn a_bare_port_after_the_wrapper_suggests_the_wrapped_tcp_port() {
    let e = server_error("haproxy:8080");
    assert_eq!(e.kind(), ErrorKind::UnknownType);
    assert_eq!(e.span(), 8..12);
    assert_eq!(e.suggestion(), Some("haproxy:tcp:8080"));
    assert!(build_server(&d("haproxy:tcp:8080")).is_ok());
    let e = server_error("haproxy:timeout=3:8080");
    assert_eq!(e.suggestion(), Some("haproxy:timeout=3:tcp:8080"));
    // The inner type's hints keep the wrapper too.
    let e = server_error("haproxy:tcp:localhost:8080");
    assert_eq!(e.suggestion(), Some("haproxy:tcp:8080:interface=127.0.0.1"));
    let e = server_error("haproxy:tcp://0.0.0.0:8080");
    assert_eq!(e.suggestion(), Some("haproxy:tcp:8080:interface=0.0.0.0"));
}
