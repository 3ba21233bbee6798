//! Which certificates a TLS client trusts: the platform's store by default (as Twisted, curl
//! and Go), Mozilla's compiled-in roots when asked or when the platform has none, the files
//! named by `trustRoots=`/`caCertsDir=`, or none at all (`trustRoots=none`, with `pin=`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use endpoints_core::ParseError;
use endpoints_core::params::Value;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use crate::config;

/// The trust a client verifies against, and how to name it in an error.
#[derive(Clone, Debug)]
pub(crate) struct Trust {
    /// The anchors; `None` for `trustRoots=none` (only pins decide).
    pub(crate) store: Option<Arc<RootCertStore>>,
    /// Certificates listed by the user (`trustRoots=FILE|DIR`): a server presenting one of
    /// these itself is accepted even when it is marked as a CA (a self-signed certificate).
    pub(crate) listed: Vec<CertificateDer<'static>>,
    /// In words, for error messages: "the platform's trust store (/etc/ssl/certs)".
    pub(crate) label: String,
    /// Whether the user chose this set (an error then does not suggest `trustRoots=` as news).
    pub(crate) explicit: bool,
}

/// The platform store, read once per process (as Go's `SystemCertPool`): the certificates
/// and a label. `SSL_CERT_FILE`/`SSL_CERT_DIR` replace the platform store when set (see
/// `rustls_native_certs::load_native_certs`). `None` when nothing usable was found.
fn platform() -> Option<&'static (Arc<RootCertStore>, String)> {
    static PLATFORM: OnceLock<Option<(Arc<RootCertStore>, String)>> = OnceLock::new();
    PLATFORM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!("reading the platform trust store: {e}");
            }
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return None;
            }
            Some((Arc::new(store), platform_label()))
        })
        .as_ref()
}

fn platform_label() -> String {
    let file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let dir = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty());
    match (file, dir) {
        (Some(f), None) => format!("SSL_CERT_FILE ({})", PathBuf::from(f).display()),
        (None, Some(d)) => format!("SSL_CERT_DIR ({})", PathBuf::from(d).display()),
        (Some(f), Some(d)) => format!(
            "SSL_CERT_FILE ({}) and SSL_CERT_DIR ({})",
            PathBuf::from(f).display(),
            PathBuf::from(d).display()
        ),
        (None, None) => "the system's trust store".to_owned(),
    }
}

fn mozilla(label: &str) -> Trust {
    static MOZILLA: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let store = MOZILLA
        .get_or_init(|| Arc::new(config::webpki_roots()))
        .clone();
    Trust {
        store: Some(store),
        listed: Vec::new(),
        label: label.to_owned(),
        explicit: false,
    }
}

impl Trust {
    /// No `trustRoots=`: the platform's store, else Mozilla's roots (minimal containers).
    pub(crate) fn default_set() -> Self {
        match platform() {
            Some((store, label)) => Self {
                store: Some(store.clone()),
                listed: Vec::new(),
                label: label.clone(),
                explicit: false,
            },
            None => {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    tracing::info!(
                        "no certificates in the system trust store: TLS clients trust Mozilla's compiled-in roots"
                    )
                });
                mozilla("Mozilla's roots (compiled in; the system trust store is empty)")
            }
        }
    }

    /// `trustRoots=` (and `ssl:`'s `caCertsDir=`): `mozilla`, `system`, `none`, a directory
    /// of `*.pem` or one PEM file.
    pub(crate) fn from_value(v: &Value<'_>) -> Result<Self, ParseError> {
        match v.as_str() {
            "mozilla" => Ok(Self {
                explicit: true,
                ..mozilla("Mozilla's roots (trustRoots=mozilla)")
            }),
            "system" => {
                let (store, label) = platform().ok_or_else(|| {
                    v.invalid(
                        "no certificates in the system trust store (install ca-certificates, set SSL_CERT_FILE, or use `trustRoots=mozilla`)",
                    )
                })?;
                Ok(Self {
                    store: Some(store.clone()),
                    listed: Vec::new(),
                    label: label.clone(),
                    explicit: true,
                })
            }
            "none" => Ok(Self {
                store: None,
                listed: Vec::new(),
                label: "no trust roots (trustRoots=none)".to_owned(),
                explicit: true,
            }),
            _ => {
                let (store, listed) = config::root_files(v)?;
                Ok(Self {
                    store: Some(Arc::new(store)),
                    listed,
                    label: format!("`{}`", v.as_str()),
                    explicit: true,
                })
            }
        }
    }
}
