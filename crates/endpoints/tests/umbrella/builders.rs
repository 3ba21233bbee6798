//! Typed builders: parsing `builder.to_string()` gives the builder's description and an
//! equal endpoint, over random builders.
#![cfg(all(feature = "tcp", feature = "unix", feature = "proxy", feature = "tls"))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use endpoints::builders::tls::{MinVersion, TlsOptions, TlsServerOptions};
use endpoints::builders::{
    ClientBuilder, Hostname, NoInner, ServerBuilder, TcpClient, TcpServer, UnixClient, UnixServer,
    proxy, tls,
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

/// The error of a build that must fail.
fn refused<T>(r: Result<T, endpoints::ParseError>, what: &dyn std::fmt::Display) -> String {
    match r {
        Ok(_) => panic!("`{what}` was built"),
        Err(e) => e.to_string(),
    }
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

/// TLS files, made once per run.
struct TlsFiles {
    /// A server key and its self-signed certificate (for `localhost`), in one file.
    key: String,
    /// The certificate alone, to trust.
    trust: String,
    /// A directory holding only the key+certificate file (a `tls:` server's).
    cert_dir: String,
    /// A directory holding only the certificate to trust (an `ssl:` client's `caCertsDir`).
    ca_dir: String,
}

fn tls_files() -> &'static TlsFiles {
    static FILES: std::sync::OnceLock<TlsFiles> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        // Cargo's scratch directory for integration tests: reused by every run, not leaked.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("endpoints-builders-{}", std::process::id()));
        let (cert_dir, ca_dir) = (dir.join("certs"), dir.join("ca"));
        for d in [&cert_dir, &ca_dir] {
            std::fs::create_dir_all(d).expect("dir");
        }
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let both = format!("{}{}", cert.pem(), key.serialize_pem());
        for file in [dir.join("server.pem"), cert_dir.join("server.pem")] {
            std::fs::write(&file, &both).expect("write");
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
        }
        for file in [dir.join("trust.pem"), ca_dir.join("trust.pem")] {
            std::fs::write(&file, cert.pem()).expect("write");
        }
        let shown = |p: std::path::PathBuf| p.display().to_string();
        TlsFiles {
            key: shown(dir.join("server.pem")),
            trust: shown(dir.join("trust.pem")),
            cert_dir: shown(cert_dir),
            ca_dir: shown(ca_dir),
        }
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
        let mut o = TlsOptions::new(host).port(port).trust_roots(&tls_files().trust).alpn(alpn);
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
        cert_dir in any::<bool>(),
        port in any::<u16>(),
        interface in proptest::option::of(ip()),
        backlog in proptest::option::of(1u32..100_000),
        client_ca in proptest::option::of(any::<bool>()),
        alpn in alpn(),
        min in min_version(),
        handshake in duration(),
        inner in proptest::option::of(prop_oneof![
            path().prop_map(Inner::Unix),
            tcp_server().prop_map(Inner::Tcp),
        ]),
        behind_haproxy in any::<bool>(),
    ) {
        let f = tls_files();
        let settings = TlsSettings { port, interface, backlog, inner, behind_haproxy };
        let (code, text) = if cert_dir {
            // `tls:PATH:PORT`: Twisted 26's server, certificates from a directory.
            let mut o = TlsServerOptions::cert_dir(&f.cert_dir)
                .alpn(alpn)
                .handshake_timeout(handshake);
            if let Some(required) = client_ca { o = o.client_ca(&f.trust, required); }
            if let Some(m) = min { o = o.min_version(m); }
            tls_server_both_ways(o, settings)
        } else {
            let mut o = TlsServerOptions::new(&f.key).alpn(alpn).handshake_timeout(handshake);
            if let Some(required) = client_ca { o = o.client_ca(&f.trust, required); }
            if let Some(m) = min { o = o.min_version(m); }
            tls_server_both_ways(o, settings)
        };
        prop_assert_eq!(code, text);
    }

    #[test]
    fn ssl_clients_from_code_equal_from_text(
        host in "[a-z][a-z0-9]{0,20}(\\.[a-z][a-z0-9]{0,9}){0,3}",
        port in 1u16..,
        timeout in proptest::option::of(duration()),
        bind in proptest::option::of(ip()),
        certificate in proptest::option::of(any::<bool>()),
        ca_dir in any::<bool>(),
        hostname in proptest::option::of("[a-z]{1,10}\\.example"),
    ) {
        let f = tls_files();
        let mut c = tls::SslClient::new(host, port);
        if let Some(t) = timeout { c = c.timeout(t); }
        if let Some(ip) = bind { c = c.bind_address(ip); }
        // The key in the certificate's file, or named again as `privateKey`.
        if let Some(key_named) = certificate {
            c = c.client_certificate(&f.key, key_named.then(|| f.key.clone().into()));
        }
        if ca_dir { c = c.ca_certs_dir(&f.ca_dir); }
        if let Some(n) = hostname { c = c.hostname(n); }
        same_description(c.description());
        let (code, text) = client_both_ways(&c);
        prop_assert_eq!(code, text);
    }
}

#[derive(Debug, Clone)]
enum Inner {
    Unix(String),
    Tcp(TcpServer),
}

struct TlsSettings {
    port: u16,
    interface: Option<IpAddr>,
    backlog: Option<u32>,
    inner: Option<Inner>,
    behind_haproxy: bool,
}

/// The TLS server these settings describe (on a port, or over a unix or tcp server;
/// `haproxy:` around it or not), from code and from text.
fn tls_server_both_ways<C>(o: TlsServerOptions<C>, s: TlsSettings) -> (String, String)
where
    tls::TlsServer<NoInner, C>: ServerBuilder,
    tls::TlsServer<UnixServer, C>: ServerBuilder,
    tls::TlsServer<TcpServer, C>: ServerBuilder,
{
    fn check(b: impl ServerBuilder, behind_haproxy: bool) -> (String, String) {
        same_description(b.description());
        if behind_haproxy {
            let p = proxy::wrap_server(b).trusted(["127.0.0.1"]);
            same_description(p.description());
            server_both_ways(&p)
        } else {
            server_both_ways(&b)
        }
    }
    match s.inner {
        Some(Inner::Unix(p)) => check(tls::wrap_server(o, UnixServer::new(p)), s.behind_haproxy),
        Some(Inner::Tcp(t)) => check(tls::wrap_server(o, t), s.behind_haproxy),
        None => {
            let mut b = tls::server(o, s.port);
            if let Some(ip) = s.interface {
                b = b.interface(ip);
            }
            if let Some(n) = s.backlog {
                b = b.backlog(n);
            }
            check(b, s.behind_haproxy)
        }
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn proxy_clients_from_code_equal_from_text(
        host in host(),
        port in 1u16..,
        p in path(),
        v2 in any::<bool>(),
        which in 0u8..5,
    ) {
        let version = if v2 { proxy::Version::V2 } else { proxy::Version::V1 };
        let (code, text) = match which {
            0 => proxy_client_both_ways(TcpClient::new(host, port), version),
            1 => proxy_client_both_ways(Hostname::new(host, port), version),
            2 => proxy_client_both_ways(UnixClient::new(p), version),
            // `haproxy:tls:...`: the header before the handshake.
            3 => proxy_client_both_ways(
                tls::client(trusting_localhost().port(port)),
                version,
            ),
            _ => proxy_client_both_ways(
                tls::wrap_client(trusting_localhost(), UnixClient::new(p)),
                version,
            ),
        };
        prop_assert_eq!(code, text);
    }
}

fn trusting_localhost() -> TlsOptions {
    TlsOptions::new("localhost").trust_roots(&tls_files().trust)
}

fn proxy_client_both_ways(inner: impl ClientBuilder, version: proxy::Version) -> (String, String) {
    let c = proxy::wrap_client(inner).version(version);
    same_description(c.description());
    let shown = c.to_string();
    let expected = match version {
        proxy::Version::V1 => "haproxy:version=1:",
        proxy::Version::V2 => "haproxy:version=2:",
    };
    assert!(shown.starts_with(expected), "{shown}");
    client_both_ways(&c)
}

/// `haproxy:` around an `ssl:` client sends its header before the handshake, as around
/// `tls:` (issue 24 item 11: the `ssl:` client declares its transport to the registry): the
/// same endpoint from code as from text, shown as written.
#[test]
fn proxy_around_ssl_client_composes_both_ways() {
    let c = proxy::wrap_client(tls::SslClient::new("example.com", 443));
    same_description(c.description());
    let (code, text) = client_both_ways(&c);
    assert_eq!(code, text);
    assert!(
        code.starts_with("haproxy:version=1:ssl:host=example.com:port=443"),
        "{code}"
    );
    assert!(!code.contains("endpoint="), "{code}");
}

#[cfg(feature = "tcp6")]
mod tcp6 {
    use super::*;
    use endpoints::builders::Tcp6Server;

    prop_compose! {
        fn tcp6_server()(
            port in any::<u16>(),
            interface in proptest::option::of(ip()),
            backlog in 1u32..100_000,
            reuseport in any::<bool>(),
            v6only in proptest::option::of(any::<bool>()),
            nodelay in any::<bool>(),
            keepalive in proptest::option::of(duration()),
            recvbuf in proptest::option::of(1u32..1 << 24),
            sendbuf in proptest::option::of(1u32..1 << 24),
        ) -> Tcp6Server {
            let mut b = Tcp6Server::new(port)
                .backlog(backlog)
                .reuseport(reuseport)
                .nodelay(nodelay);
            if let Some(i) = interface { b = b.interface(i); }
            // `v6only=1` needs an IPv6 interface (the default `::` is one).
            if let Some(v) = v6only.filter(|&v| !v || !interface.is_some_and(|i| i.is_ipv4())) {
                b = b.v6only(v);
            }
            if let Some(k) = keepalive { b = b.keepalive(k); }
            if let Some(n) = recvbuf { b = b.recvbuf(n); }
            if let Some(n) = sendbuf { b = b.sendbuf(n); }
            b
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn tcp6_server_from_code_equals_from_text(
            b in tcp6_server(),
            behind_haproxy in any::<bool>(),
        ) {
            same_description(b.description());
            let (code, text) = server_both_ways(&b);
            prop_assert_eq!(code, text);
            // The socket settings too, not only what is displayed.
            let any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            let config = |d: &Description| {
                endpoints::tcp::server_from_args(
                    &Args::parse(d, endpoints::tcp6::SERVER_PARAMS).expect("args"), any,
                ).expect("builds").config().clone()
            };
            let parsed: Description = b.to_string().parse().expect("parses");
            prop_assert_eq!(config(&b.description()), config(&parsed));
            if behind_haproxy {
                let p = proxy::wrap_server(b);
                same_description(p.description());
                let (code, text) = server_both_ways(&p);
                prop_assert_eq!(code, text);
            }
        }
    }

    #[test]
    fn tcp6_defaults_are_twisteds_order_and_dual_stack() {
        let b = Tcp6Server::new(8443);
        assert_eq!(
            b.to_string(),
            r"tcp6:port=8443:backlog=1024:interface=\:\::reuseport=0:v6only=0:nodelay=0"
        );
        assert_eq!(
            b.build().expect("builds").to_string(),
            endpoints::server("tcp6:8443").expect("builds").to_string()
        );
    }
}

#[cfg(feature = "systemd")]
mod systemd {
    use super::*;
    use endpoints::builders::{SocketDomain, SystemdServer};
    use endpoints::systemd::Activation;

    fn domain() -> impl Strategy<Value = SocketDomain> {
        prop_oneof![
            Just(SocketDomain::Inet),
            Just(SocketDomain::Inet6),
            Just(SocketDomain::Unix)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        // The only test in this binary that touches the process-wide activation state.
        #[test]
        fn systemd_server_from_code_equals_from_text(
            // Names with what the escaping must carry (`:`, `=`, `\`, spaces).
            names in proptest::collection::vec("[a-zA-Z0-9 :=\\\\._-]{1,16}", 1..6),
            domain in domain(),
            pick in any::<proptest::sample::Index>(),
            by_name in any::<bool>(),
            past_the_end in any::<bool>(),
        ) {
            // Described only: numbers no one owns, nothing is adopted or closed.
            let fds: Vec<i32> = (3..).take(names.len()).collect();
            Activation::described(fds, names.clone()).expect("as many names as fds").install();
            let n = names.len();
            let b = if by_name {
                SystemdServer::named(domain, names[pick.index(n)].clone())
            } else if past_the_end {
                // No such descriptor: refused both ways, with the same message.
                let b = SystemdServer::index(domain, u32::try_from(n).expect("few"));
                let from_code = refused(b.build(), &b);
                let from_text = refused(endpoints::server(&b.to_string()), &b);
                let why = format!("only {n} descriptor(s) were passed");
                prop_assert!(from_code.contains(&why), "{}", from_code);
                prop_assert!(from_text.contains(&why), "{}", from_text);
                return Ok(());
            } else {
                SystemdServer::index(domain, u32::try_from(pick.index(n)).expect("few"))
            };
            same_description(b.description());
            let (code, text) = server_both_ways(&b);
            prop_assert_eq!(&code, &text);
            prop_assert_eq!(code, b.to_string());
        }
    }
}

#[cfg(feature = "stdio")]
#[test]
fn stdio_server_from_code_equals_from_text() {
    use endpoints::builders::StdioServer;
    let b = StdioServer::new();
    same_description(b.description());
    assert_eq!(b.to_string(), "stdio");
    let (code, text) = server_both_ways(&b);
    assert_eq!(code, text);
    assert_eq!(code, "stdio");
}

/// issue 27: the `exec:` builder is its text; awkward arguments are escaped and come back
/// as given.
#[cfg(feature = "exec")]
#[test]
fn exec_from_code_equals_from_text() {
    use endpoints::builders::{ClientBuilder, ExecClient, ExecStderr};
    let in_code = ExecClient::new("ssh")
        .args(["-W", "db:5432", "bastion"])
        .grace(Duration::from_secs(2));
    assert_eq!(in_code.to_string(), r"exec:ssh:-W:db\:5432:bastion:grace=2");
    let as_text = endpoints::client(r"exec:ssh:-W:db\:5432:bastion:grace=2").expect("builds");
    assert_eq!(
        in_code.build().expect("builds").to_string(),
        as_text.to_string()
    );

    let odd = ExecClient::new("printf")
        .arg("%s=%s\\n")
        .arg("[x]")
        .arg("")
        .env("A", "1=2")
        .env("B", "x:y")
        .unset_env("HOME")
        .clear_env(true)
        .cwd("/tmp")
        .stderr(ExecStderr::Drop)
        .grace(Duration::from_millis(1500));
    let shown = odd.build().expect("builds").to_string();
    let d: Description = odd.to_string().parse().expect("parse");
    let args: Vec<&str> = d.positionals().map(|f| f.value()).collect();
    assert_eq!(args, ["printf", "%s=%s\\n", "[x]", ""]);
    assert_eq!(
        shown,
        endpoints::client(&odd.to_string())
            .expect("text")
            .to_string()
    );
    assert!(
        shown.contains("env=A=***:env=B=***:unsetEnv=HOME:clearEnv=1"),
        "env= values are never displayed (issue 30 item 10): {shown}"
    );
    assert!(shown.ends_with("stderr=drop:grace=1.5"), "{shown}");
}

/// issue 33: the `ssh:` builders are their text, both sides.
#[test]
#[cfg(feature = "ssh")]
fn ssh_from_code_equals_from_text() {
    use endpoints::builders::{
        ClientBuilder, ServerBuilder, SshClient, SshServer, SshTarget, TcpClient,
    };
    use std::time::Duration;
    let in_code = SshClient::new("bastion", SshTarget::forward("db", 5432))
        .username("deploy")
        .known_hosts("/dev/null")
        .no_agent()
        .passphrase_env("DEPLOY_PASSPHRASE")
        .endpoint(&TcpClient::new("127.0.0.1", 2222))
        .idle_timeout(Duration::from_millis(1500));
    let text = in_code.to_string();
    assert!(
        text.starts_with(r"ssh:host=bastion:forward=db\:5432:username=deploy"),
        "{text}"
    );
    let as_text = endpoints::client(&text).expect("builds");
    assert_eq!(
        in_code.build().expect("builds").to_string(),
        as_text.to_string()
    );
    let v6 = SshClient::new("b", SshTarget::forward("::1", 80))
        .username("u")
        .known_hosts("/dev/null");
    let as_text = endpoints::client(&v6.to_string()).expect("builds");
    assert_eq!(v6.build().expect("builds").to_string(), as_text.to_string());
    let cmd = SshClient::new("b", SshTarget::Command("cat -u".into()))
        .username("u")
        .known_hosts("/dev/null");
    assert_eq!(
        cmd.build().expect("builds").to_string(),
        endpoints::client(&cmd.to_string())
            .expect("builds")
            .to_string()
    );
    let server = SshServer::new("bastion", "127.0.0.1:8080")
        .username("u")
        .known_hosts("/dev/null")
        .port(2222);
    let as_text = endpoints::server(&server.to_string()).expect("builds");
    assert_eq!(
        server.build().expect("builds").to_string(),
        as_text.to_string()
    );
}
