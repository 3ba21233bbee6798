//! Typed builders: parsing `builder.to_string()` gives the builder's description and an
//! equal endpoint, over random builders.
#![cfg(all(feature = "tcp", feature = "unix", feature = "proxy", feature = "tls"))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use endpoints::builders::tls::{MinVersion, TlsOptions, TlsServerOptions};
use endpoints::builders::{
    ClientBuilder, Hostname, ServerBuilder, TcpClient, TcpServer, UnixClient, UnixServer, proxy,
    tls,
};
use endpoints::{Args, Description};
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    (1u64..100_000_000).prop_map(Duration::from_micros)
}

prop_compose! {
    fn tcp_server()(
        port in any::<u16>(),
        interface in proptest::option::of(ip()),
        backlog in 1u32..100_000,
        reuseport in any::<bool>(),
        v6only in any::<bool>(),
        nodelay in any::<bool>(),
        keepalive in proptest::option::of(duration()),
        recvbuf in proptest::option::of(1u32..1 << 24),
        sendbuf in proptest::option::of(1u32..1 << 24),
    ) -> TcpServer {
        let mut b = TcpServer::new(port).backlog(backlog).reuseport(reuseport).nodelay(nodelay);
        if let Some(i) = interface {
            b = b.interface(i);
            // `v6only` applies to an IPv6 interface only (build() reports it otherwise).
            if i.is_ipv6() {
                b = b.v6only(v6only);
            }
        }
        if let Some(k) = keepalive { b = b.keepalive(k); }
        if let Some(n) = recvbuf { b = b.recvbuf(n); }
        if let Some(n) = sendbuf { b = b.sendbuf(n); }
        b
    }
}

/// Host names with the characters descriptions must escape, and IP literals.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}",
        ip().prop_map(|i| i.to_string()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    // Colons, backslashes, `=` and spaces: what the escaping must carry.
    "/[a-zA-Z0-9 :=\\\\._-]{1,60}"
}

/// The endpoint's canonical form, from the builder and from its text.
fn server_both_ways(b: &impl ServerBuilder) -> (String, String) {
    let text = b.to_string();
    let built = b
        .build()
        .unwrap_or_else(|e| panic!("`{text}` from code: {e}"));
    let parsed = endpoints::server(&text).unwrap_or_else(|e| panic!("`{text}` as text: {e}"));
    (built.to_string(), parsed.to_string())
}

fn client_both_ways(b: &impl ClientBuilder) -> (String, String) {
    let text = b.to_string();
    let built = b
        .build()
        .unwrap_or_else(|e| panic!("`{text}` from code: {e}"));
    let parsed = endpoints::client(&text).unwrap_or_else(|e| panic!("`{text}` as text: {e}"));
    (built.to_string(), parsed.to_string())
}

/// Parsing the text gives back the builder's description, field for field.
fn same_description(d: Description) {
    let text = d.to_string();
    let parsed: Description = text.parse().unwrap_or_else(|e| panic!("`{text}`: {e}"));
    assert_eq!(parsed.fields().len(), d.fields().len(), "{text}");
    for (a, b) in parsed.fields().iter().zip(d.fields()) {
        assert_eq!((a.key(), a.value()), (b.key(), b.value()), "{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn tcp_server_from_code_equals_from_text(b in tcp_server()) {
        same_description(b.description());
        let (code, text) = server_both_ways(&b);
        prop_assert_eq!(code, text);
        // The socket settings too, not only what is displayed.
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let from_code = endpoints::tcp::server_from_args(
            &Args::parse(&b.description(), endpoints::tcp::SERVER_PARAMS).expect("args"), any,
        ).expect("builds");
        let d: Description = b.to_string().parse().expect("parses");
        let from_text = endpoints::tcp::server_from_args(
            &Args::parse(&d, endpoints::tcp::SERVER_PARAMS).expect("args"), any,
        ).expect("builds");
        prop_assert_eq!(from_code.config(), from_text.config());
    }

    #[test]
    fn host_port_clients_from_code_equal_from_text(
        host in host(),
        port in any::<u16>(),
        timeout in proptest::option::of(duration()),
        delay in proptest::option::of(duration()),
        attempt in proptest::option::of(duration()),
        bind in proptest::option::of(ip()),
    ) {
        let mut t = TcpClient::new(host.clone(), port);
        let mut h = Hostname::new(host, port);
        if let Some(d) = timeout { t = t.timeout(d); h = h.timeout(d); }
        if let Some(d) = delay { t = t.attempt_delay(d); h = h.attempt_delay(d); }
        if let Some(d) = attempt { t = t.attempt_timeout(d); h = h.attempt_timeout(d); }
        if let Some(ip) = bind { t = t.bind_address(ip); h = h.bind_address(ip); }
        same_description(t.description());
        same_description(h.description());
        let (code, text) = client_both_ways(&t);
        prop_assert_eq!(code, text);
        let (code, text) = client_both_ways(&h);
        prop_assert_eq!(code, text);
    }

    #[test]
    fn unix_from_code_equals_from_text(
        p in path(),
        mode in 0u32..0o7777,
        backlog in 1u32..100_000,
        lockfile in any::<bool>(),
        timeout in proptest::option::of(duration()),
    ) {
        let s = UnixServer::new(&p).mode(mode).backlog(backlog).lockfile(lockfile);
        same_description(s.description());
        let (code, text) = server_both_ways(&s);
        prop_assert_eq!(code, text);
        let mut c = UnixClient::new(&p);
        if let Some(t) = timeout { c = c.timeout(t); }
        same_description(c.description());
        let (code, text) = client_both_ways(&c);
        prop_assert_eq!(code, text);
    }

    #[test]
    fn proxy_wrapped_from_code_equals_from_text(
        inner in tcp_server(),
        p in path(),
        unix_inside in any::<bool>(),
        timeout in duration(),
        max_header in 232u32..65_551,
        trusted in proptest::option::of(proptest::collection::vec(ip(), 1..4)),
        accept in any::<bool>(),
    ) {
        let mut w = proxy::wrap_server(inner).timeout(timeout).max_header(max_header);
        let mut u = proxy::wrap_server(UnixServer::new(&p));
        if let Some(list) = &trusted {
            let list: Vec<String> = list.iter().map(ToString::to_string).collect();
            w = w.trusted(list.clone()).accept_untrusted(accept);
            u = u.trusted(list);
        }
        same_description(w.description());
        let (code, text) = server_both_ways(&w);
        prop_assert_eq!(code, text);
        if unix_inside {
            let (code, text) = server_both_ways(&u);
            prop_assert_eq!(code, text);
        }
    }
}

/// A server key+certificate file and the certificate alone (to trust), made once.
fn tls_files() -> &'static (String, String) {
    static FILES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        // Cargo's scratch directory for integration tests: reused by every run, not leaked.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("endpoints-builders-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let both = dir.join("server.pem");
        std::fs::write(&both, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write");
        std::fs::set_permissions(&both, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let trust = dir.join("trust.pem");
        std::fs::write(&trust, cert.pem()).expect("write");
        (both.display().to_string(), trust.display().to_string())
    })
}

/// `sha256/<base64 of 32 bytes>`.
fn pin() -> impl Strategy<Value = String> {
    any::<[u8; 32]>().prop_map(|b| {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::from("sha256/");
        for chunk in b.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, &x| (n << 8) | u32::from(x)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        while out.len() % 4 != 3 {
            out.push('=');
        } // "sha256/" is 7 characters
        out
    })
}

fn min_version() -> impl Strategy<Value = Option<MinVersion>> {
    proptest::option::of(prop_oneof![
        Just(MinVersion::Tls12),
        Just(MinVersion::Tls13)
    ])
}

fn alpn() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(vec!["h2", "http/1.1", "imap"], 0..=3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn tls_clients_from_code_equal_from_text(
        // Names a certificate can be checked against (no leading, trailing or doubled `-`).
        host in "[a-z][a-z0-9]{0,20}(\\.[a-z][a-z0-9]{0,9}){0,3}",
        port in 1u16..,
        timeout in proptest::option::of(duration()),
        pins in proptest::collection::vec(pin(), 0..3),
        alpn in alpn(),
        sni in proptest::option::of("[a-z]{1,10}\\.example"),
        min in min_version(),
        wrap_unix in proptest::option::of(path()),
    ) {
        let (_, trust) = tls_files();
        let mut o = TlsOptions::new(host).port(port).trust_roots(trust).alpn(alpn);
        if let Some(t) = timeout { o = o.timeout(t); }
        for p in pins { o = o.pin(p); }
        if let Some(n) = sni { o = o.sni(n); }
        if let Some(m) = min { o = o.min_version(m); }
        match wrap_unix {
            Some(p) => {
                let c = tls::wrap_client(o, UnixClient::new(p));
                same_description(c.description());
                let (code, text) = client_both_ways(&c);
                prop_assert_eq!(code, text);
            }
            None => {
                let c = tls::client(o);
                same_description(c.description());
                let (code, text) = client_both_ways(&c);
                prop_assert_eq!(code, text);
            }
        }
    }

    #[test]
    fn tls_servers_from_code_equal_from_text(
        port in any::<u16>(),
        client_ca in proptest::option::of(any::<bool>()),
        alpn in alpn(),
        min in min_version(),
        handshake in duration(),
        wrap_unix in proptest::option::of(path()),
        wrap_tcp in proptest::option::of(tcp_server()),
    ) {
        let (key, trust) = tls_files();
        let mut o = TlsServerOptions::new(key).alpn(alpn).handshake_timeout(handshake);
        if let Some(required) = client_ca { o = o.client_ca(trust, required); }
        if let Some(m) = min { o = o.min_version(m); }
        let (code, text) = match (wrap_unix, wrap_tcp) {
            (Some(p), _) => {
                let s = tls::wrap_server(o, UnixServer::new(p));
                same_description(s.description());
                server_both_ways(&s)
            }
            (None, Some(t)) => {
                let s = tls::wrap_server(o, t);
                same_description(s.description());
                server_both_ways(&s)
            }
            (None, None) => {
                let s = tls::server(o, port);
                same_description(s.description());
                server_both_ways(&s)
            }
        };
        prop_assert_eq!(code, text);
    }
}

#[tokio::test]
async fn both_ways_side_by_side_listen_alike() {
    let in_code = TcpServer::new(0).interface(Ipv4Addr::LOCALHOST.into());
    let as_text = "tcp:0:interface=127.0.0.1";
    let a = in_code
        .build()
        .expect("builds")
        .listen()
        .await
        .expect("listen");
    let b = endpoints::listen(as_text).await.expect("listen");
    for l in [&a, &b] {
        let at = l.local_addr().expect("bound");
        assert!(
            matches!(at.ip(), Some(SocketAddr::V4(v4)) if v4.ip().is_loopback()),
            "{at}"
        );
    }
    // The README's line.
    let over_unix = tls::wrap_client(
        TlsOptions::new("db.internal"),
        UnixClient::new("/run/db.sock"),
    );
    assert_eq!(
        over_unix.to_string(),
        r"tls:host=db.internal:port=443:endpoint=unix\:path=/run/db.sock"
    );
    // A builder goes straight into a service.
    let svc = endpoints::service::ServerService::start(in_code, |_c| async {})
        .await
        .expect("a builder is an endpoint");
    assert!(
        svc.listening()[0].starts_with("tcp:port="),
        "{:?}",
        svc.listening()
    );
    svc.shutdown(Duration::from_secs(1)).await;
}
