//! Builders for `tls:` and `ssl:`, client and server, from the tables in `params.rs`: both
//! clients map their parameters into one [`ClientOptions`]; both servers share
//! `server_config` and `finish_server`.

use std::sync::{Arc, Once};
use std::time::Duration;

use endpoints_core::params::{Args, Value};
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{ClientEndpoint, Description, ErrorKind, ParseError, ServerEndpoint};
use endpoints_hostname::{
    HappyEyeballs, HostnameEndpoint, host_port_args, host_value, ip_value, port_taken_as_host,
};
use endpoints_tcp::{TcpServerConfig, TcpServerEndpoint};
use rustls::SupportedProtocolVersion;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::client::TlsClientEndpoint;
use crate::config::{self, ALL_VERSIONS};
use crate::params::{
    CLIENT_TRANSPORT, SERVER_TRANSPORT, SSL_CLIENT_PARAMS, SSL_SERVER_PARAMS, TLS_CLIENT_PARAMS,
    TLS_SERVER_PARAMS,
};
use crate::reload::{Source, Store};
use crate::server::TlsServerEndpoint;
use crate::verify::{self, Verifier};

fn server_name(v: &Value<'_>, text: &str) -> Result<ServerName<'static>, ParseError> {
    ServerName::try_from(text.to_owned()).map_err(|_| {
        v.invalid(format_args!(
            "`{text}` is not a name a certificate can be checked against (write international names in punycode: xn--...)"
        ))
    })
}

fn versions(args: &Args<'_>) -> Result<&'static [&'static SupportedProtocolVersion], ParseError> {
    match args.get("minVersion") {
        Some(v) => config::min_version(&v),
        None => Ok(ALL_VERSIONS),
    }
}

fn nested_client(v: &Value<'_>, d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let inner = v.nested()?;
    build_client(&inner).map_err(|e| e.nested_in(d.input().cloned(), v.span(), v.param()))
}

fn nested_server(v: &Value<'_>, d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let inner = v.nested()?;
    build_server(&inner).map_err(|e| e.nested_in(d.input().cloned(), v.span(), v.param()))
}

fn client_config(
    versions: &'static [&'static SupportedProtocolVersion],
    verifier: Arc<Verifier>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    at: &Value<'_>,
) -> Result<Arc<rustls::ClientConfig>, ParseError> {
    let builder = rustls::ClientConfig::builder_with_provider(config::provider())
        .with_protocol_versions(versions)
        .map_err(|e| at.invalid(e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| at.invalid(e))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn;
    Ok(Arc::new(cfg))
}

/// The happy-eyeballs transport of a TLS client.
fn hostname_transport(
    args: &Args<'_>,
    host: &str,
    port: u16,
    timeout: Option<Duration>,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let bind = args.get("bindAddress").map(|v| ip_value(&v)).transpose()?;
    let connector = HappyEyeballs::new().timeout(timeout).bind_address(bind);
    let canonical = Description::new("hostname")
        .with("host", host)
        .with("port", port.to_string());
    Ok(Box::new(HostnameEndpoint::from_parts(
        host, port, connector, canonical,
    )))
}

/// What a TLS client is built from, whichever prefix described it: `tls:` and `ssl:` map
/// their parameters (of different names) into this, and [`build_tls_client_from`] does the
/// rest, in one order for both.
struct ClientOptions<'a> {
    /// `host`: the server, and by default the name verified.
    host: Value<'a>,
    port: Value<'a>,
    timeout: Value<'a>,
    /// `endpoint=`: the transport, instead of happy eyeballs.
    endpoint: Option<Value<'a>>,
    /// The name to send and verify instead of `host` (`sni=`, `ssl:`'s `hostname=`).
    name: Option<Value<'a>>,
    /// The trust anchors (`trustRoots=`, `ssl:`'s `caCertsDir=`).
    trust: Option<Value<'a>>,
    /// `pin=` (`tls:` only): `Some` for a type that takes pins.
    pins: Option<Option<Value<'a>>>,
    /// The client certificate (`certificate=`, `ssl:`'s `certKey=`).
    certificate: Option<Value<'a>>,
    /// The client key (`privateKey=`); without a certificate it is an error.
    private_key: Option<Value<'a>>,
    /// `alpn=` (`tls:` only).
    alpn: Option<Value<'a>>,
    /// `minVersion=` (`tls:` only).
    min_version: Option<Value<'a>>,
}

fn build_tls_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, TLS_CLIENT_PARAMS)
        .map_err(|e| ssl_name_on_tls(d, port_taken_as_host(d, e)))?;
    let options = ClientOptions {
        host: args.required("host")?,
        port: args.required("port")?,
        timeout: args.required("timeout")?,
        endpoint: args.get("endpoint"),
        name: args.get("sni"),
        trust: args.get("trustRoots"),
        pins: Some(args.get("pin")),
        certificate: args.get("certificate"),
        private_key: args.get("privateKey"),
        alpn: args.get("alpn"),
        min_version: args.get("minVersion"),
    };
    build_tls_client_from(&args, d, options)
}

fn build_ssl_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = host_port_args(d, SSL_CLIENT_PARAMS)?;
    let certificate = args.get("certKey");
    let options = ClientOptions {
        host: args.required("host")?,
        port: args.required("port")?,
        timeout: args.required("timeout")?,
        endpoint: args.get("endpoint"),
        name: args.get("hostname"),
        trust: args.get("caCertsDir"),
        pins: None,
        // Twisted's `ssl:` reads `privateKey` only with `certKey`.
        private_key: certificate.as_ref().and_then(|_| args.get("privateKey")),
        certificate,
        alpn: None,
        min_version: None,
    };
    build_tls_client_from(&args, d, options)
}

/// A TLS client from `o`; `args` for the transport's `bindAddress`, `d` for errors in a
/// nested `endpoint=`.
fn build_tls_client_from(
    args: &Args<'_>,
    d: &Description,
    o: ClientOptions<'_>,
) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let host = host_value(&o.host)?;
    let port = o.port.port()?;
    let timeout = Some(o.timeout.duration()?).filter(|t| !t.is_zero());
    let inner = match &o.endpoint {
        Some(v) => nested_client(v, d)?,
        None => hostname_transport(args, &host, port, timeout)?,
    };
    let name = match &o.name {
        Some(v) => {
            let n = host_value(v)?;
            server_name(v, &n)?
        }
        None => server_name(&o.host, &host)?,
    };
    let verifier = Arc::new(verify::from_params(o.trust, o.pins, &o.host)?);
    let identity = match (o.certificate, o.private_key) {
        (Some(c), k) => {
            let cert_file = c.path()?;
            let key_v = k.unwrap_or_else(|| c.clone());
            Some(config::chain_and_key(
                &key_v,
                &key_v.path()?,
                &c,
                &cert_file,
            )?)
        }
        (None, Some(k)) => return Err(k.invalid("a client key needs `certificate=` too")),
        (None, None) => None,
    };
    let alpn = o
        .alpn
        .map(|v| config::alpn(&v))
        .transpose()?
        .unwrap_or_default();
    let versions = match &o.min_version {
        Some(v) => config::min_version(v)?,
        None => ALL_VERSIONS,
    };
    let cfg = client_config(versions, verifier.clone(), identity, alpn, &o.host)?;
    let mut canonical = args.canonical();
    canonical.set("host", host);
    if o.endpoint.is_some() {
        // The inner endpoint as it shows itself: its secrets (a tunnel's password) hidden.
        canonical.set("endpoint", inner.to_string());
    }
    Ok(Box::new(
        TlsClientEndpoint::new(inner, name, cfg, timeout, canonical)
            .inner_named_by_user(o.endpoint.is_some())
            .worded_by(verifier),
    ))
}

/// The verifier for `clientCA=` / `requireClientCert=`.
fn client_auth(
    args: &Args<'_>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, ParseError> {
    let Some(ca) = args.get("clientCA") else {
        if let Some(v) = args.get("requireClientCert").filter(|v| !v.is_default()) {
            return Err(v.invalid("needs `clientCA=` (the CAs client certificates must chain to)"));
        }
        return Ok(None);
    };
    let roots = config::roots(&ca)?;
    let required = args
        .get("requireClientCert")
        .map(|v| v.flag())
        .transpose()?
        .unwrap_or(true);
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        config::provider(),
    );
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map(Some).map_err(|e| ca.invalid(e))
}

fn server_config(
    args: &Args<'_>,
    versions: &'static [&'static SupportedProtocolVersion],
    at: &Value<'_>,
) -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>, ParseError>
{
    let builder = rustls::ServerConfig::builder_with_provider(config::provider())
        .with_protocol_versions(versions)
        .map_err(|e| at.invalid(e))?;
    Ok(match client_auth(args)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    })
}

fn finish_server(
    args: &Args<'_>,
    d: &Description,
    mut cfg: rustls::ServerConfig,
    default_inner: impl FnOnce() -> Result<Box<dyn ServerEndpoint>, ParseError>,
    canonical: Description,
    store: Arc<Store>,
) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    cfg.alpn_protocols = args
        .get("alpn")
        .map(|v| config::alpn(&v))
        .transpose()?
        .unwrap_or_default();
    let handshake_v = args.required("handshakeTimeout")?;
    let handshake = handshake_v.duration()?;
    if handshake.is_zero() {
        return Err(handshake_v
            .invalid("must be above 0: no handshake completes in no time (the default is 10)"));
    }
    let per_source = endpoints_util::upgrade::max_pending_per_source(args)?;
    let (inner, port_is_inner) = match args.get("endpoint") {
        Some(v) => (nested_server(&v, d)?, false),
        None => (default_inner()?, true),
    };
    Ok(Box::new(
        TlsServerEndpoint::new(inner, Arc::new(cfg), handshake, canonical, port_is_inner)
            .max_pending_per_source(per_source)
            .watching(store),
    ))
}

fn tcp_inner(
    args: &Args<'_>,
    port: u16,
    unspecified: std::net::IpAddr,
) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let iface = args.required("interface")?;
    let ip = if iface.as_str().is_empty() {
        unspecified
    } else {
        ip_value(&iface)?
    };
    let mut c = TcpServerConfig::new((ip, port).into());
    c.backlog = args.required("backlog")?.u32()?;
    Ok(Box::new(TcpServerEndpoint::from_config(c)))
}

fn build_ssl_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, SSL_SERVER_PARAMS)?;
    let end = d.input().map_or(0, |s| s.len());
    let port = match (args.get("port"), args.get("endpoint")) {
        (Some(p), None) => Some(p.port()?),
        (None, Some(_)) => None,
        (Some(p), Some(_)) => return Err(p.invalid("give either `port` or `endpoint=`, not both")),
        (None, None) => {
            return Err(d
                .error(
                    ErrorKind::MissingParameter,
                    end..end,
                    "`ssl` needs `port` (or `endpoint=`); give it as `ssl:443:...`",
                )
                .with_parameter("port"));
        }
    };
    let versions = match (args.get("sslmethod"), args.get("minVersion")) {
        (Some(m), None) => config::ssl_method(&m)?,
        (None, Some(v)) => config::min_version(&v)?,
        (None, None) => ALL_VERSIONS,
        (Some(_), Some(v)) => {
            return Err(v.invalid("give either `sslmethod` or `minVersion`, not both"));
        }
    };
    let key_v = args.required("privateKey")?;
    let cert_v = args.get("certKey").unwrap_or_else(|| key_v.clone());
    let (key_path, cert_path) = (key_v.path()?, cert_v.path()?);
    // Checked here for errors that point at the parameter; then loaded (and reloaded) by
    // the store.
    config::chain_and_key(&key_v, &key_path, &cert_v, &cert_path)?;
    let mut extra_path = None;
    if let Some(extra) = args.get("extraCertChain") {
        let path = extra.path()?;
        let more = config::certs(&extra, &path)?;
        if more.is_empty() {
            return Err(extra.invalid(format_args!(
                "`{}` doesn't contain any valid certificates in PEM format",
                path.display()
            )));
        }
        extra_path = Some(path);
    }
    let store = Store::new(Source::Files {
        key: key_path,
        cert: cert_path,
        extra: extra_path,
    })
    .map_err(|e| key_v.invalid(e))?;
    if args.get("dhParameters").is_some() {
        static WARNED: Once = Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "`dhParameters` is ignored: rustls has no finite-field DH (key exchange is ECDHE)"
            )
        });
    }
    let cfg = server_config(&args, versions, &key_v)?.with_cert_resolver(store.clone());
    let canonical = args.canonical();
    let default_inner = || {
        tcp_inner(
            &args,
            port.unwrap_or(0),
            std::net::Ipv4Addr::UNSPECIFIED.into(),
        )
    };
    finish_server(&args, d, cfg, default_inner, canonical, store)
}

fn build_tls_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, TLS_SERVER_PARAMS)?;
    let dir_v = args.required("path")?;
    let dir = dir_v.path()?;
    let store = Store::new(Source::Dir(dir))
        .map_err(|e| port_for_a_path(&args, &dir_v).unwrap_or_else(|| dir_v.invalid(e)))?;
    let versions = versions(&args)?;
    let cfg = server_config(&args, versions, &dir_v)?.with_cert_resolver(store.clone());
    let port = args.required("port")?.port()?;
    let canonical = args.canonical();
    let default_inner = || tcp_inner(&args, port, std::net::Ipv6Addr::UNSPECIFIED.into());
    finish_server(&args, d, cfg, default_inner, canonical, store)
}

/// `ssl:`'s (Twisted's) client parameter names and `tls:`'s for the same thing.
const SSL_NAMES: &[(&str, &str)] = &[
    ("caCerts", "trustRoots"),
    ("caCertsDir", "trustRoots"),
    ("certKey", "certificate"),
    ("hostname", "sni"),
];

/// `tls:host:443:caCertsDir=...`: an `ssl:` name on a `tls:` client suggests `tls:`'s name.
fn ssl_name_on_tls(d: &Description, e: ParseError) -> ParseError {
    let Some((key, name)) = e
        .parameter()
        .and_then(|k| SSL_NAMES.iter().find(|(s, _)| *s == k))
    else {
        return e;
    };
    if e.kind() != ErrorKind::UnknownParameter {
        return e;
    }
    let prefix = d.prefix().unwrap_or("tls");
    d.error(
        ErrorKind::UnknownParameter,
        e.span(),
        format!("unknown parameter `{key}` for `{prefix}`: `tls:` calls it `{name}` (`{key}` is `ssl:`'s name)"),
    )
    .with_parameter(*key)
    .with_suggestion(*name)
}

/// `tls:8443` as a server: the one positional field is the certificate directory, and `8443`
/// is none (it was not readable). Say that a `tls:` server takes a directory first, suggest
/// `tls:/path/to/certs:8443`, and name `ssl:8443:privateKey=...` (a key file instead).
fn port_for_a_path(args: &Args<'_>, dir_v: &Value<'_>) -> Option<ParseError> {
    let d = args.description();
    let text = dir_v.as_str();
    if dir_v.is_default()
        || args.is_given("port")
        || d.positionals().count() != 1
        || text.parse::<u16>().is_err()
    {
        return None;
    }
    let span = dir_v.span();
    let e = d
        .error(
            ErrorKind::InvalidValue,
            span.clone(),
            format!(
                "`{text}` is a port, but a `tls:` server takes its certificate directory first \
                 (`tls:/path/to/certs:{text}`); for a key and certificate file, use \
                 `ssl:{text}:privateKey=/path/to/key.pem`"
            ),
        )
        .with_parameter("path");
    let fixed = d.input().and_then(|input| {
        Some(format!(
            "{}/path/to/certs:{}",
            input.get(..span.start)?,
            input.get(span.start..)?
        ))
    });
    Some(match fixed {
        Some(f) => e.with_suggestion(f),
        None => e,
    })
}

endpoints_core::register_client! {
    prefix: "tls",
    summary: "TLS over happy eyeballs or any client endpoint; certificates always verified",
    params: TLS_CLIENT_PARAMS,
    transport: CLIENT_TRANSPORT,
    build: build_tls_client,
}

endpoints_core::register_client! {
    prefix: "ssl",
    summary: "legacy Twisted TLS client; verifies certificates by default (Twisted did not)",
    params: SSL_CLIENT_PARAMS,
    transport: CLIENT_TRANSPORT,
    build: build_ssl_client,
}

endpoints_core::register_server! {
    prefix: "ssl",
    summary: "TLS server from a key and certificate chain (PEM), over TCP or any server endpoint",
    params: SSL_SERVER_PARAMS,
    transport: SERVER_TRANSPORT,
    build: build_ssl_server,
}

endpoints_core::register_server! {
    prefix: "tls",
    summary: "TLS server choosing its certificate by SNI from a directory of PEM files",
    params: TLS_SERVER_PARAMS,
    transport: SERVER_TRANSPORT,
    build: build_tls_server,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: wrappers go beneath TLS through these declarations; a renamed TLS parameter
    /// fails here.
    #[test]
    fn the_declared_transports_name_real_parameters() {
        for (transport, params) in [
            (CLIENT_TRANSPORT, TLS_CLIENT_PARAMS),
            (CLIENT_TRANSPORT, SSL_CLIENT_PARAMS),
            (SERVER_TRANSPORT, SSL_SERVER_PARAMS),
            (SERVER_TRANSPORT, TLS_SERVER_PARAMS),
        ] {
            let bad = transport.problems(params);
            assert!(bad.is_empty(), "{bad:?}");
        }
        let registered: Vec<_> = endpoints_core::registry::plugins()
            .filter(|p| p.transport().is_some())
            .map(|p| (p.prefix(), p.side()))
            .collect();
        for expected in [
            ("tls", endpoints_core::Side::Client),
            ("ssl", endpoints_core::Side::Client),
            ("ssl", endpoints_core::Side::Server),
            ("tls", endpoints_core::Side::Server),
        ] {
            assert!(registered.contains(&expected), "{registered:?}");
        }
    }
}
