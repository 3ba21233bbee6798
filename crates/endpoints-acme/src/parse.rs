//! Parsing `acme:<options>:<inner description>`. No network and no file writes here:
//! `endpoints check` builds descriptions.

use std::path::PathBuf;
use std::sync::Arc;

use endpoints_core::params::{Args, Param, ParamKind, Value};
use endpoints_core::registry;
use endpoints_core::{Description, ErrorKind, ParseError, ServerEndpoint};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::manager::{Manager, Settings};
use crate::server::{AcmeServerEndpoint, Current};

/// Let's Encrypt's production directory (the default `directory=`).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`directory=staging`).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Options of the `acme:` server wrapper, written before the inner description
/// (`acme:domains=example.com:cache=/var/lib/app/acme:tcp:443`).
pub static SERVER_PARAMS: &[Param] = &[
    Param::required("domains", ParamKind::List)
        .help("the names the certificate covers, comma-separated (no wildcards, no IP addresses)"),
    Param::required("cache", ParamKind::Path)
        .help("directory for the account key and certificates (created with mode 0700)"),
    Param::optional("contact", ParamKind::List)
        .help("account contacts, comma-separated: `mailto\\:ops@example.com` (escape the `:`)"),
    Param::optional("directory", ParamKind::Text)
        .default("letsencrypt")
        .help("ACME directory: an https:// URL, `letsencrypt` (production) or `staging`"),
    Param::optional("trustRoots", ParamKind::Path)
        .help("a PEM file whose first certificate is the CA of the ACME server's own HTTPS certificate (default: the platform's trust)"),
    Param::optional("alpn", ParamKind::List).help("ALPN protocols offered, `h2,http/1.1`"),
    Param::optional("minVersion", ParamKind::Choice(&["1.2", "1.3"]))
        .default("1.2")
        .help("lowest TLS version"),
    Param::optional("clientCA", ParamKind::Path)
        .help("PEM file of CAs for client certificates (mTLS)"),
    Param::optional("requireClientCert", ParamKind::Bool)
        .default("1")
        .help("with `clientCA`: refuse clients without a certificate"),
    Param::optional("handshakeTimeout", ParamKind::Duration)
        .default("10")
        .help("seconds for a client to complete its handshake"),
    Param::optional("retry", ParamKind::Duration)
        .default("60")
        .help("seconds before retrying a failed order; doubled after each failure, up to 6 hours"),
    endpoints_util::upgrade::MAX_PENDING_PER_SOURCE_PARAM,
];

/// Split `d` into the wrapper's head (prefix and options) and the inner description.
fn split(d: &Description) -> Result<(Description, Description), ParseError> {
    let positions: Vec<usize> = d
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_positional())
        .map(|(i, _)| i)
        .collect();
    let end = d.input().map_or(0, |s| s.len());
    let Some(&inner_at) = positions.get(1) else {
        return Err(d
            .error(
                ErrorKind::MissingParameter,
                end..end,
                "`acme` wraps a server description: write `acme:domains=example.com:cache=/var/lib/app/acme:tcp:443`",
            )
            .with_parameter("endpoint"));
    };
    match (d.slice(0..inner_at), d.tail(inner_at)) {
        (Some(head), Some(inner)) => Ok((head, inner)),
        _ => Err(d.error(
            ErrorKind::Syntax,
            0..end,
            "cannot split `acme` from its inner description",
        )),
    }
}

/// A DNS name an ACME CA can validate with TLS-ALPN-01.
fn domain(v: &Value<'_>, name: &str) -> Result<String, ParseError> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.starts_with("*.") {
        return Err(v.invalid(format_args!(
            "`{name}`: wildcard names need the DNS-01 challenge, which `acme:` does not do (TLS-ALPN-01 only); list the names"
        )));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(v.invalid(format_args!(
            "`{name}` is an IP address: `acme:` obtains certificates for DNS names"
        )));
    }
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(ok_label) || !name.contains('.')
    {
        return Err(v.invalid(format_args!(
            "`{name}` is not a DNS name with a dot (letters, digits and `-` in labels of 1-63)"
        )));
    }
    Ok(name)
}

fn directory(v: &Value<'_>) -> Result<String, ParseError> {
    let s = v.as_str().trim();
    match s.to_ascii_lowercase().as_str() {
        "letsencrypt" | "production" => return Ok(LETS_ENCRYPT.to_owned()),
        "staging" | "letsencrypt-staging" => return Ok(LETS_ENCRYPT_STAGING.to_owned()),
        _ => {}
    }
    let Some(rest) = s.strip_prefix("https://") else {
        return Err(v.invalid(format_args!(
            "`{s}` is not an ACME directory: expected an https:// URL (ACME runs over HTTPS), `letsencrypt` or `staging`"
        )));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(v.invalid(format_args!(
            "`{s}` is not a URL with a host: write `directory=https\\://acme.example/directory` (escape the `:`)"
        )));
    }
    Ok(s.to_owned())
}

fn pem_certs(v: &Value<'_>) -> Result<Vec<CertificateDer<'static>>, ParseError> {
    let path = v.path()?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| v.invalid(format_args!("cannot read `{}`: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(v.invalid(format_args!(
            "`{}` holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Build the `acme:` endpoint from a description (what the registry calls).
pub fn build(d: &Description) -> Result<AcmeServerEndpoint, ParseError> {
    let (head, inner) = split(d)?;
    let args = Args::parse(&head, SERVER_PARAMS)?;
    let inner_prefix = inner.prefix().unwrap_or("").to_ascii_lowercase();
    if inner_prefix == "ssl" || inner_prefix == "tls" || inner_prefix == "acme" {
        return Err(inner.error(
            ErrorKind::InvalidValue,
            inner.prefix_field().map_or(0..0, |f| f.span()),
            format!(
                "`acme:` does TLS itself: wrap a plain transport (`tcp:443`, `tcp6:443`, `unix:...`, `systemd:...`, `haproxy:tcp:443`), not `{inner_prefix}:`"
            ),
        ));
    }
    let domains_v = args.required("domains")?;
    let mut domains = Vec::new();
    for name in domains_v.as_str().split(',') {
        let name = domain(&domains_v, name)?;
        if !domains.contains(&name) {
            domains.push(name);
        }
    }
    let cache: PathBuf = args.required("cache")?.path()?;
    let mut contact = Vec::new();
    if let Some(v) = args.get("contact") {
        for c in v.as_str().split(',').map(str::trim) {
            if !c.starts_with("mailto:") || c.len() <= "mailto:".len() {
                return Err(v.invalid(format_args!(
                    "`{c}`: expected `mailto\\:address` (escape the `:` in a description)"
                )));
            }
            contact.push(c.to_owned());
        }
    }
    let directory = directory(&args.required("directory")?)?;
    let trust_roots = match args.get("trustRoots") {
        Some(v) => {
            pem_certs(&v)?;
            Some(v.path()?)
        }
        None => None,
    };
    static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static ALL_VERSIONS: &[&SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    let versions = match args.required("minVersion")?.choice(&["1.2", "1.3"])? {
        "1.3" => TLS13_ONLY,
        _ => ALL_VERSIONS,
    };
    let handshake_timeout = args.required("handshakeTimeout")?.duration()?;
    if handshake_timeout.is_zero() {
        return Err(args
            .required("handshakeTimeout")?
            .invalid("must be above 0 (the default is 10)"));
    }
    let retry = args.required("retry")?.duration()?;
    if retry.as_secs() < 1 {
        return Err(args
            .required("retry")?
            .invalid("must be at least 1 second (the default is 60)"));
    }
    let max_pending_per_source = endpoints_util::upgrade::max_pending_per_source(&args)?;

    let settings = Settings {
        domains,
        cache,
        contact,
        directory,
        trust_roots,
        retry,
    };
    let manager = Manager::shared(settings.clone());
    let certs = manager.certs.clone();
    let builder = ServerConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(versions)
        .map_err(|e| {
            args.required("minVersion")
                .map_or_else(|x| x, |v| v.invalid(e))
        })?;
    let builder = match args.get("clientCA") {
        Some(v) => {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(pem_certs(&v)?);
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::provider());
            let verifier = if args.required("requireClientCert")?.flag()? {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| v.invalid(format_args!("cannot use these CAs: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(Current(certs.clone())));
    if let Some(v) = args.get("alpn") {
        let list: Vec<Vec<u8>> = v
            .as_str()
            .split(',')
            .map(|p| p.trim().as_bytes().to_vec())
            .collect();
        if list.iter().any(|p| p.is_empty() || p.len() > 255) {
            return Err(
                v.invalid("expected a comma-separated list of protocol names, each 1-255 bytes")
            );
        }
        if list.iter().any(|p| p == crate::manager::ACME_TLS_ALPN) {
            return Err(
                v.invalid("`acme-tls/1` is the validation protocol, answered by `acme:` itself")
            );
        }
        config.alpn_protocols = list;
    }

    let inner_endpoint: Box<dyn ServerEndpoint> = registry::build_server(&inner)?;
    let options = args.canonical();
    Ok(AcmeServerEndpoint {
        inner: inner_endpoint,
        settings: Arc::new(settings),
        config: Arc::new(config),
        manager,
        handshake_timeout,
        max_pending_per_source,
        options,
    })
}

fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    Ok(Box::new(build(d)?))
}

endpoints_core::register_server! {
    prefix: "acme",
    summary: "TLS with certificates obtained and renewed by ACME (Let's Encrypt), TLS-ALPN-01 on the same socket, over any server endpoint",
    params: SERVER_PARAMS,
    build: build_server,
}
