//! Errors that carry the fix (issue 18 items 5 and 6): unbracketed IPv6 addresses and a
//! missing `tcp:` prefix.

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Description, ErrorKind, ParseError};
use endpoints_tcp as _;

fn client_error(s: &str) -> ParseError {
    let d: Description = s.parse().unwrap_or_else(|e| panic!("{e}"));
    match build_client(&d) {
        Ok(_) => panic!("`{s}` was accepted"),
        Err(e) => e,
    }
}

fn server_error(s: &str) -> ParseError {
    let d: Description = s.parse().unwrap_or_else(|e| panic!("{e}"));
    match build_server(&d) {
        Ok(_) => panic!("`{s}` was accepted"),
        Err(e) => e,
    }
}

#[test]
fn positional_ipv6_host_suggests_brackets() {
    let e = client_error("tcp:::1:7000");
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(
        e.span(),
        4..7,
        "points at `::1`, starting at its first colon"
    );
    assert_eq!(e.suggestion(), Some("tcp:[::1]:7000"));
    assert_eq!(
        e.message(),
        "`::1` is an IPv6 address split at its colons (`:` separates fields): write it in \
         brackets, `[::1]`, or escape its colons; did you mean `tcp:[::1]:7000`?"
    );
    let e = client_error("tcp:fe80::1:443");
    assert_eq!(e.suggestion(), Some("tcp:[fe80::1]:443"));
}

#[test]
fn keyword_ipv6_host_suggests_brackets() {
    let e = client_error("tcp:host=::1:port=7000");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 9..12);
    assert_eq!(e.parameter(), Some("host"));
    assert_eq!(e.suggestion(), Some("tcp:host=[::1]:port=7000"));
    assert!(
        e.message()
            .starts_with("`::1` is an IPv6 address split at its colons"),
        "{e}"
    );
}

#[test]
fn server_interface_suggests_brackets() {
    let e = server_error("tcp:7000:interface=::1");
    assert_eq!(e.kind(), ErrorKind::Duplicate);
    assert_eq!(e.span(), 19..22);
    assert_eq!(e.suggestion(), Some("tcp:7000:interface=[::1]"));
    let e = server_error("tcp:7000:::1");
    assert_eq!(e.suggestion(), Some("tcp:7000:[::1]"));
}

#[test]
fn bracketed_and_escaped_forms_are_accepted() {
    for ok in [
        "tcp:[::1]:7000",
        r"tcp:\:\:1:7000",
        "tcp:host=[::1]:port=7000",
    ] {
        let d: Description = ok.parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(build_client(&d).is_ok(), "{ok}");
    }
}
