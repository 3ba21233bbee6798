//! The conformance suite for `tor:` and `onion:`.

use endpoints_core::ErrorKind;

use endpoints_tcp as _;
use endpoints_tor as _;
use endpoints_unix as _;

#[test]
fn tor_client() {
    endpoints_conformance::Suite::client("tor")
        .valid("tor:example.com:80")
        .valid("tor:host=example.com:port=443:socksPort=9150")
        .valid("tor:2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion:80")
        .valid("tor:example.com:80:socksPort=/run/tor/socks")
        .valid("tor:host=example.com:port=80:socksHostname=127.0.0.1:socksPort=9150")
        .invalid(
            "tor:example.com:80:socksHostname=h:socksPort=/p",
            ErrorKind::InvalidValue,
        )
        .valid("tor:example.com:80:control=9051")
        .valid("tor:example.com:80:socksUsername=a:socksPassword=b:timeout=5")
        .valid("tor:[2001:db8::1]:22")
        .invalid("tor", ErrorKind::MissingParameter)
        .invalid("tor:example.com", ErrorKind::MissingParameter)
        .invalid(
            "tor:example.com:80:sockPort=9050",
            ErrorKind::UnknownParameter,
        )
        .invalid("tor:abc.onion:80", ErrorKind::InvalidValue)
        .invalid(
            "tor:example.com:80:control=9051:socksPort=9150",
            ErrorKind::InvalidValue,
        )
        .invalid("tor:example.com:80:socksPort=0", ErrorKind::InvalidValue)
        .valid("tor:example.com:80:launch=1")
        .valid(
            "tor:example.com:80:launch=yes:torBinary=/usr/sbin/tor:dataDirectory=/var/lib/app/tor",
        )
        .valid("tor:example.com:80:launch=0")
        .invalid(
            "tor:example.com:80:launch=1:socksPort=9150",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "tor:example.com:80:launch=1:control=9051",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "tor:example.com:80:torBinary=/usr/sbin/tor",
            ErrorKind::InvalidValue,
        )
        .invalid("tor:example.com:80:launch=maybe", ErrorKind::InvalidValue)
        .run();
}

#[test]
fn onion_server() {
    endpoints_conformance::Suite::server("onion")
        .valid("onion:80")
        .valid("onion:80:controlPort=9051:privateKeyFile=/var/lib/app/onion.key")
        .valid("onion:443:controlPort=/run/tor/control:hiddenServiceDir=/var/lib/app/hs:version=3")
        .valid("onion:80:local=tcp:waitPublished=0:timeout=60")
        .valid("onion:80:local=tcp:localPort=9876")
        .valid("onion:80:localPort=9876")
        .invalid(
            "onion:80:local=unix:localPort=9876",
            ErrorKind::InvalidValue,
        )
        .valid("onion:80:clientAuth=UP3XRKNR6YXU5ULAGHGYGZ5DOOAKEU2ZRDVZ4ZNUGGZRJQ2SUU7Q")
        .invalid("onion", ErrorKind::MissingParameter)
        .invalid("onion:80:version=2", ErrorKind::InvalidValue)
        .invalid("onion:80:clientAuth=short", ErrorKind::InvalidValue)
        .invalid("onion:0", ErrorKind::InvalidValue)
        .invalid(
            "onion:80:privateKeyFile=/a:hiddenServiceDir=/b",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "onion:80:hiddenServiceDirectory=/b",
            ErrorKind::UnknownParameter,
        )
        .valid("onion:80:launch=1:torBinary=/usr/sbin/tor:dataDirectory=/var/lib/app/tor")
        .valid("onion:80:launch=0")
        .invalid(
            "onion:80:controlPort=9051:launch=1",
            ErrorKind::InvalidValue,
        )
        .invalid(
            "onion:80:controlPort=9051:torBinary=/usr/sbin/tor",
            ErrorKind::InvalidValue,
        )
        .invalid("onion:80:controlPasswordFile=/pw", ErrorKind::InvalidValue)
        .run();
}

/// The types compose through the registry: a wrapper over `onion:`, `tls:`-style nesting of
/// `tor:` in another description's client parameter.
#[test]
fn composes_through_the_registry() {
    use endpoints_core::registry::{build_client, build_server};
    let d = r"socks5:example.com:80:proxy=tor\:proxy.example\:1080";
    build_client(&d.parse().expect("parse")).expect("tor: inside socks5:'s proxy=");
    let e = build_client(
        &r"tor:example.com:80:control=unix\:/run/tor/control:socksPassword=s3cret"
            .parse()
            .expect("parse"),
    )
    .expect("control= as a description");
    assert!(!e.to_string().contains("s3cret"), "{e}");
    build_server(
        &"onion:80:controlPort=unix\\:/run/tor/control"
            .parse()
            .expect("parse"),
    )
    .expect("controlPort= as a description");
}
