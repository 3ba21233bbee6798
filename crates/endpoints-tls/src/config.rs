//! Reading certificates and keys, and building rustls configurations.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use endpoints_core::ParseError;
use endpoints_core::params::Value;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, SupportedProtocolVersion};

/// The crypto provider every configuration here uses: the process-wide default if the
/// application installed one (`CryptoProvider::install_default`), as rustls asks libraries
/// to; else ring's, without installing it (so the application can still install its own).
/// Read at each build, so a default installed after the first endpoint counts from then on.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    if let Some(installed) = CryptoProvider::get_default() {
        return installed.clone();
    }
    static RING: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    RING.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// TLS 1.2 and 1.3 (rustls implements nothing older).
pub(crate) static ALL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// TLS 1.3 only.
pub(crate) static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.2 only (`sslmethod=TLSv1_2_METHOD`).
pub(crate) static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// `minVersion=1.2|1.3`.
pub(crate) fn min_version(
    v: &Value<'_>,
) -> Result<&'static [&'static SupportedProtocolVersion], ParseError> {
    match v.as_str() {
        "1.2" | "TLSv1.2" => Ok(ALL_VERSIONS),
        "1.3" | "TLSv1.3" => Ok(TLS13_ONLY),
        "1.0" | "1.1" | "TLSv1" | "TLSv1.0" | "TLSv1.1" => {
            Err(v.invalid("TLS below 1.2 is not supported (rustls implements TLS 1.2 and 1.3)"))
        }
        other => Err(v.invalid(format_args!("expected `1.2` or `1.3`, got `{other}`"))),
    }
}

/// Twisted's `sslmethod=` mapped onto rustls versions; legacy methods are errors.
pub(crate) fn ssl_method(
    v: &Value<'_>,
) -> Result<&'static [&'static SupportedProtocolVersion], ParseError> {
    const ANY: &[&str] = &[
        "SSLv23_METHOD",
        "TLS_METHOD",
        "TLS_SERVER_METHOD",
        "TLS_CLIENT_METHOD",
    ];
    const LEGACY: &[&str] = &[
        "SSLv2_METHOD",
        "SSLv3_METHOD",
        "TLSv1_METHOD",
        "TLSv1_1_METHOD",
    ];
    let m = v.as_str();
    if ANY.contains(&m) {
        return Ok(ALL_VERSIONS);
    }
    if m == "TLSv1_2_METHOD" {
        return Ok(TLS12_ONLY);
    }
    if LEGACY.contains(&m) {
        return Err(v.invalid(format_args!(
            "`{m}` is not supported: only TLS 1.2 and 1.3 are; omit `sslmethod` for both, or use `TLSv1_2_METHOD`"
        )));
    }
    let known: Vec<&str> = ANY
        .iter()
        .chain(["TLSv1_2_METHOD"].iter())
        .copied()
        .collect();
    let e = v.invalid(format_args!(
        "unknown method `{m}` (supported: {})",
        known.join(", ")
    ));
    match endpoints_core::params::closest(m, known.iter().copied()) {
        Some(s) => Err(e.with_suggestion(s)),
        None => Err(e),
    }
}

/// `alpn=h2,http/1.1`.
pub(crate) fn alpn(v: &Value<'_>) -> Result<Vec<Vec<u8>>, ParseError> {
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
    Ok(list)
}

fn read_error(v: &Value<'_>, path: &Path, e: impl std::fmt::Display) -> ParseError {
    if v.is_default() {
        // `ssl:7443` alone reads `server.pem`: say where that name came from.
        let param = v.param();
        return v.invalid(format_args!(
            "cannot read `{}`: {e}; `{}` is the default for `{param}` when it is not given \
             (a path relative to the working directory): give your key's path, as in \
             `ssl:7443:{param}=/etc/ssl/private/key.pem:certKey=/etc/ssl/certs/cert.pem`",
            path.display(),
            v.as_str(),
        ));
    }
    v.invalid(format_args!("cannot read `{}`: {e}", path.display()))
}

/// Every certificate in a PEM file, in file order.
pub(crate) fn certs(
    v: &Value<'_>,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ParseError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| read_error(v, path, e))?;
    iter.collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(v, path, e))
}

/// The first private key in a PEM file, if any.
pub(crate) fn key(
    v: &Value<'_>,
    path: &Path,
) -> Result<Option<PrivateKeyDer<'static>>, ParseError> {
    match PrivateKeyDer::from_pem_file(path) {
        Ok(k) => Ok(Some(k)),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Ok(None),
        Err(e) => Err(read_error(v, path, e)),
    }
}

/// A certificate chain and its key from `key_file` / `cert_file` (the key may be in either
/// file, the certificates too, as Twisted concatenates them), plus `extra` chain certificates.
pub(crate) fn chain_and_key(
    key_v: &Value<'_>,
    key_file: &Path,
    cert_v: &Value<'_>,
    cert_file: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ParseError> {
    let mut chain = certs(cert_v, cert_file)?;
    if chain.is_empty() && cert_file != key_file {
        chain = certs(key_v, key_file)?;
    }
    if chain.is_empty() {
        return Err(cert_v.invalid(format_args!(
            "`{}` holds no PEM certificate",
            cert_file.display()
        )));
    }
    let key = match key(key_v, key_file)? {
        Some(k) => k,
        None if cert_file != key_file => key(cert_v, cert_file)?.ok_or_else(|| {
            key_v.invalid(format_args!(
                "no private key in `{}` or `{}`",
                key_file.display(),
                cert_file.display()
            ))
        })?,
        None => {
            return Err(key_v.invalid(format_args!(
                "`{}` holds no PEM private key",
                key_file.display()
            )));
        }
    };
    // The key must belong to the first certificate.
    rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())
        .map_err(|e| key_v.invalid(format_args!("the key does not fit the certificate: {e}")))?;
    Ok((chain, key))
}

/// Trust roots: `system` (the operating system's store), a directory of `*.pem` files (as
/// Twisted's `trustRoots`), or one PEM file.
pub(crate) fn roots(v: &Value<'_>) -> Result<RootCertStore, ParseError> {
    let mut store = RootCertStore::empty();
    if v.as_str() == "system" {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            return Err(v.invalid(format_args!(
                "no certificates in the system store ({:?})",
                found.errors
            )));
        }
        store.add_parsable_certificates(found.certs);
        return Ok(store);
    }
    Ok(root_files(v)?.0)
}

/// Trust roots from a directory of `*.pem` files or one PEM file: the store, and the
/// certificates as listed (a client accepts a server presenting one of them itself).
pub(crate) fn root_files(
    v: &Value<'_>,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), ParseError> {
    let mut store = RootCertStore::empty();
    let mut listed = Vec::new();
    let path = v.path()?;
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| read_error(v, &path, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pem")))
            .collect();
        files.sort();
        files
    } else {
        vec![path.clone()]
    };
    for f in &files {
        let found = certs(v, f)?;
        store.add_parsable_certificates(found.iter().cloned());
        listed.extend(found);
    }
    if store.is_empty() {
        return Err(v.invalid(format_args!(
            "no CA certificate found in `{}`",
            path.display()
        )));
    }
    Ok((store, listed))
}

/// Mozilla's roots, compiled in (the default trust of `tls:` and `ssl:` clients).
pub(crate) fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}
