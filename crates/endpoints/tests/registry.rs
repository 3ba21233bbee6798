//! The registry matches the enabled features: nothing missing (inventory fails silently when
//! a crate is not linked), nothing extra.

use std::collections::BTreeSet;

use endpoints::Side;

/// A feature, whether it is enabled, and the (prefix, side) pairs it registers.
type Feature = (&'static str, bool, &'static [(&'static str, Side)]);

const FEATURES: &[Feature] = &[
    (
        "tcp",
        cfg!(feature = "tcp"),
        &[("tcp", Side::Server), ("tcp", Side::Client)],
    ),
    ("tcp6", cfg!(feature = "tcp6"), &[("tcp6", Side::Server)]),
    (
        "hostname",
        cfg!(feature = "hostname"),
        &[("hostname", Side::Client)],
    ),
    (
        "unix",
        cfg!(feature = "unix"),
        &[("unix", Side::Server), ("unix", Side::Client)],
    ),
    (
        "systemd",
        cfg!(feature = "systemd"),
        &[("systemd", Side::Server), ("fd", Side::Server)],
    ),
    (
        "tls",
        cfg!(feature = "tls"),
        &[
            ("tls", Side::Server),
            ("tls", Side::Client),
            ("ssl", Side::Server),
            ("ssl", Side::Client),
        ],
    ),
    (
        "proxy",
        cfg!(feature = "proxy"),
        &[("haproxy", Side::Server), ("haproxy", Side::Client)],
    ),
    ("stdio", cfg!(feature = "stdio"), &[("stdio", Side::Server)]),
    (
        "tunnel",
        cfg!(feature = "tunnel"),
        &[("socks5", Side::Client), ("httpconnect", Side::Client)],
    ),
    ("acme", cfg!(feature = "acme"), &[("acme", Side::Server)]),
    ("exec", cfg!(feature = "exec"), &[("exec", Side::Client)]),
    (
        "tor",
        cfg!(feature = "tor"),
        &[("tor", Side::Client), ("onion", Side::Server)],
    ),
    (
        "ssh",
        cfg!(feature = "ssh"),
        &[("ssh", Side::Client), ("ssh", Side::Server)],
    ),
    (
        "ws",
        cfg!(feature = "ws"),
        &[
            ("ws", Side::Server),
            ("ws", Side::Client),
            ("wss", Side::Client),
        ],
    ),
];

#[test]
fn registered_prefixes_equal_enabled_features() {
    let expected: BTreeSet<(String, &str)> = FEATURES
        .iter()
        .filter(|(_, on, _)| *on)
        .flat_map(|(_, _, regs)| regs.iter().map(|(p, s)| (p.to_string(), s.as_str())))
        .collect();
    let actual: BTreeSet<(String, &str)> = endpoints::types()
        .iter()
        .map(|p| (p.prefix().to_owned(), p.side().as_str()))
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn every_prefix_is_registered_once_per_side() {
    let all: Vec<(String, &str)> = endpoints::types()
        .iter()
        .map(|p| (p.prefix().to_ascii_lowercase(), p.side().as_str()))
        .collect();
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "{all:?}");
}

#[cfg(feature = "tcp")]
#[test]
fn front_door_errors_for_a_bare_port() {
    let err = endpoints::server("8080").expect_err("bare port");
    assert_eq!(err.kind(), endpoints::ErrorKind::UnknownType);
    assert!(
        err.to_string().contains("did you mean `tcp:8080`?"),
        "{err}"
    );
}

#[cfg(feature = "tcp")]
#[tokio::test]
async fn listen_error_names_the_endpoint() {
    let first = endpoints::listen("tcp:0:interface=127.0.0.1")
        .await
        .expect("listen");
    let port = first
        .local_addr()
        .expect("bound")
        .ip()
        .map(|a| a.port())
        .expect("ip");
    let err = endpoints::listen(&format!("tcp:{port}:interface=127.0.0.1"))
        .await
        .expect_err("in use");
    assert!(matches!(err, endpoints::Error::Io(_)));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on `tcp:port={port}:")),
        "{err}"
    );
}

/// Every registered prefix has its section in docs/grammar.md.
#[test]
fn every_prefix_is_documented_in_the_grammar() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grammar.md");
    let grammar = std::fs::read_to_string(path).expect("docs/grammar.md");
    let headings: Vec<&str> = grammar.lines().filter(|l| l.starts_with("### ")).collect();
    for p in endpoints::types() {
        let needle = format!("`{}`", p.prefix());
        assert!(
            headings
                .iter()
                .any(|h| h.contains(&needle) && h.contains(p.side().as_str())),
            "docs/grammar.md has no `### ` heading naming {needle} ({})",
            p.side()
        );
    }
}
