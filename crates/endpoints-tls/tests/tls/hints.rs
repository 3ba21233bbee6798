//! Errors that carry the fix for what people type (issue 23 item 6): a port where a `tls:`
//! server's certificate directory goes, a URL, Twisted's `caCerts` spelling.

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Description, ErrorKind, ParseError};

use endpoints_tcp as _;
use endpoints_tls as _;

fn d(s: &str) -> Description {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn server_error(s: &str) -> ParseError {
    build_server(&d(s)).map(|_| ()).expect_err(s)
}

fn client_error(s: &str) -> ParseError {
    build_client(&d(s)).map(|_| ()).expect_err(s)
}

#[test]
fn a_tls_server_given_a_port_first_says_it_takes_a_directory() {
    let e = server_error("tls:8443");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.span(), 4..8);
    assert_eq!(e.parameter(), Some("path"));
    assert_eq!(e.suggestion(), Some("tls:/path/to/certs:8443"));
    assert_eq!(
        e.message(),
        "`8443` is a port, but a `tls:` server takes its certificate directory first \
         (`tls:/path/to/certs:8443`); for a key and certificate file, use \
         `ssl:8443:privateKey=/path/to/key.pem`; did you mean `tls:/path/to/certs:8443`?"
    );
    // Options after it are kept.
    let e = server_error("tls:8443:alpn=h2");
    assert_eq!(e.suggestion(), Some("tls:/path/to/certs:8443:alpn=h2"));
    // A directory that is missing and is not a port keeps the plain error.
    let e = server_error("tls:/nonexistent/certs");
    assert!(e.message().contains("cannot read"), "{e}");
    assert_eq!(e.suggestion(), None);
}

#[test]
fn a_tls_client_given_only_a_port_says_it_took_it_as_the_host() {
    let e = client_error("tls:443");
    assert_eq!(e.parameter(), Some("port"));
    assert_eq!(e.span(), 4..7);
    assert_eq!(e.suggestion(), Some("tls:HOST:443"));
    let e = client_error("ssl:443");
    assert_eq!(e.suggestion(), Some("ssl:HOST:443"));
}

#[test]
fn a_url_gives_the_tls_description() {
    let e = client_error("tls://example.com:443");
    assert_eq!(e.span(), 0..21);
    assert_eq!(e.suggestion(), Some("tls:example.com:443"));
    assert!(
        e.message().starts_with("`tls://example.com:443` is a URL"),
        "{e}"
    );
    let e = client_error("ssl://example.com:443");
    assert_eq!(e.suggestion(), Some("ssl:example.com:443"));
    // A `tls:` server needs its certificate directory: the suggestion shows where it goes.
    let e = server_error("tls://0.0.0.0:8443");
    assert_eq!(
        e.suggestion(),
        Some("tls:path=/path:port=8443:interface=0.0.0.0")
    );
    assert!(e.message().contains("give your own `path`"), "{e}");
    // An `ssl:` server's key has a default (`server.pem`): the short form.
    let e = server_error("ssl://0.0.0.0:8443");
    assert_eq!(e.suggestion(), Some("ssl:8443:interface=0.0.0.0"));
}

#[test]
fn ca_certs_suggests_ca_certs_dir() {
    let text = "ssl:localhost:443:caCerts=/etc/ssl/certs";
    let e = client_error(text);
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(e.span(), 18..25);
    assert_eq!(e.parameter(), Some("caCerts"));
    assert_eq!(e.suggestion(), Some("caCertsDir"));
    assert_eq!(
        e.message(),
        "unknown parameter `caCerts` for `ssl`; did you mean `caCertsDir`?"
    );
}

#[test]
fn a_server_parameter_on_a_tls_client_says_it_is_server_only() {
    let e = client_error("tls:example.com:443:clientCA=/ca.pem");
    assert_eq!(e.parameter(), Some("clientCA"));
    assert!(
        e.message()
            .starts_with("unknown parameter `clientCA` for a `tls` client: `clientCA` is a parameter of `tls` servers"),
        "{e}"
    );
}

/// `ssl:`'s (Twisted's) names on a `tls:` client suggest `tls:`'s own.
#[test]
fn ssl_names_on_a_tls_client_suggest_the_tls_names() {
    for (key, want) in [
        ("caCerts", "trustRoots"),
        ("caCertsDir", "trustRoots"),
        ("certKey", "certificate"),
        ("hostname", "sni"),
    ] {
        let text = format!("tls:example.com:443:{key}=x");
        let e = client_error(&text);
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 20..20 + key.len());
        assert_eq!(e.parameter(), Some(key));
        assert_eq!(e.suggestion(), Some(want), "{e}");
        assert!(
            e.message().contains(&format!("`tls:` calls it `{want}`")),
            "{e}"
        );
    }
}
