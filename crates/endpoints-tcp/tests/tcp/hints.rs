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

/// Issue 23 item 6: `tcp:localhost:8080` as a server is the client form.
#[test]
fn a_server_given_the_client_form_gets_the_server_form() {
    let text = "tcp:localhost:8080";
    let e = server_error(text);
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 4..18, "the host and the port");
    assert_eq!(e.parameter(), Some("port"));
    assert_eq!(e.suggestion(), Some("tcp:8080:interface=127.0.0.1"));
    assert_eq!(
        e.message(),
        "`localhost:8080` is the client form (host, then port): a server takes the port \
         first, and the address to listen on as `interface=`; did you mean \
         `tcp:8080:interface=127.0.0.1`?"
    );
    for (text, fixed) in [
        ("tcp:127.0.0.1:8080", "tcp:8080:interface=127.0.0.1"),
        ("tcp:[::1]:8080", "tcp:8080:interface=[::1]"),
        (
            "tcp:0.0.0.0:8080:backlog=5",
            "tcp:8080:interface=0.0.0.0:backlog=5",
        ),
    ] {
        let e = server_error(text);
        assert_eq!(e.suggestion(), Some(fixed), "{text}: {e}");
        let d: Description = fixed.parse().expect("suggestion parses");
        assert!(build_server(&d).is_ok(), "{fixed} builds");
    }
    // A host name that is not an address of this machine: no interface to suggest.
    let e = server_error("tcp:db.example.com:8080");
    assert!(e.message().contains("client form"), "{e}");
    assert_eq!(e.suggestion(), None, "{e}");
}

/// Issue 23 item 6: `tcp:8080` as a client took 8080 as the host.
#[test]
fn a_client_given_only_a_port_says_it_took_it_as_the_host() {
    let e = client_error("tcp:8080");
    assert_eq!(e.kind(), ErrorKind::MissingParameter);
    assert_eq!(e.span(), 4..8, "the port that was taken as the host");
    assert_eq!(e.parameter(), Some("port"));
    assert_eq!(e.suggestion(), Some("tcp:HOST:8080"));
    assert_eq!(
        e.message(),
        "`tcp` needs `port`: the one positional field, `8080`, was taken as the host; a \
         client takes the host, then the port; did you mean `tcp:HOST:8080`?"
    );
    // The same for `hostname:`, which shares the client parameters.
    let e = client_error("hostname:443");
    assert_eq!(e.suggestion(), Some("hostname:HOST:443"));
    // A host without a port keeps the plain message.
    let e = client_error("tcp:db");
    assert_eq!(e.suggestion(), None, "{e}");
}

/// Issue 23 item 6: `interface=localhost` suggests `127.0.0.1` (and says `::1`).
#[test]
fn interface_localhost_suggests_the_loopback_addresses() {
    let text = "tcp:8080:interface=localhost";
    let e = server_error(text);
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 19..28);
    assert_eq!(e.parameter(), Some("interface"));
    assert_eq!(e.suggestion(), Some("127.0.0.1"));
    assert_eq!(
        e.message(),
        "invalid `interface` for `tcp`: `localhost` is a host name, and `interface` takes an \
         IP address: `127.0.0.1`, or `[::1]` for IPv6; did you mean `127.0.0.1`?"
    );
    let e = client_error("tcp:db:5432:bindAddress=LOCALHOST");
    assert_eq!(e.suggestion(), Some("127.0.0.1"));
}

/// Issue 23 item 6: `tcp://0.0.0.0:8080` is a URL.
#[test]
fn a_url_gives_the_tcp_description() {
    let e = server_error("tcp://0.0.0.0:8080");
    assert_eq!(e.span(), 0..18);
    assert_eq!(e.suggestion(), Some("tcp:8080:interface=0.0.0.0"));
    assert!(
        e.message().starts_with("`tcp://0.0.0.0:8080` is a URL"),
        "{e}"
    );
    for (server, text, fixed) in [
        (true, "tcp://localhost:8080", "tcp:8080:interface=127.0.0.1"),
        (true, "tcp://[::1]:8080", "tcp:8080:interface=[::1]"),
        (
            false,
            "tcp://db.example.com:5432",
            "tcp:db.example.com:5432",
        ),
        (false, "tcp://[::1]:5432/", "tcp:[::1]:5432"),
    ] {
        let e = if server {
            server_error(text)
        } else {
            client_error(text)
        };
        assert_eq!(e.suggestion(), Some(fixed), "{text}: {e}");
    }
}
