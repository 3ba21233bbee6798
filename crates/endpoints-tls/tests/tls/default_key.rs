//! issue 18 item 9: `ssl:7443` alone reads the default `privateKey=server.pem`; the error says
//! that this file name is the default and how to set it.

use endpoints_core::registry::build_server;
use endpoints_core::{Description, ErrorKind};
use endpoints_tls as _;

#[test]
fn missing_default_private_key_says_it_is_the_default() {
    let text = "ssl:7443";
    assert!(
        !std::path::Path::new("server.pem").exists(),
        "this test needs no server.pem in the crate directory"
    );
    let d: Description = text.parse().unwrap_or_else(|e| panic!("{e}"));
    let e = build_server(&d).map(|_| ()).expect_err("no server.pem");
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.parameter(), Some("privateKey"));
    assert_eq!(e.span(), 8..8, "a default points at the end of the text");
    let m = e.message();
    assert!(
        m.starts_with("invalid `privateKey` for `ssl`: cannot read `server.pem`: "),
        "{m}"
    );
    assert!(
        m.ends_with(
            "; `server.pem` is the default for `privateKey` when it is not given (a path \
             relative to the working directory): give your key's path, as in \
             `ssl:7443:privateKey=/etc/ssl/private/key.pem:certKey=/etc/ssl/certs/cert.pem`"
        ),
        "{m}"
    );
    // A path the user gave keeps the plain message.
    let d: Description = "ssl:7443:privateKey=missing.pem"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let e = build_server(&d).map(|_| ()).expect_err("missing");
    assert!(!e.message().contains("is the default"), "{e}");
}
