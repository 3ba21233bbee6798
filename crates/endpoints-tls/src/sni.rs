//! A directory of PEM files served by SNI (the `tls:` server), reloaded when an unknown name
//! arrives.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::provider;

/// Unknown names reload the directory at most this often (a flood of random names must not
/// turn into a flood of directory scans).
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The certificates of one directory, by DNS name.
#[derive(Default)]
pub(crate) struct Loaded {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    first: Option<Arc<CertifiedKey>>,
    pub(crate) names: Vec<String>,
}

/// Every `*.pem` file below `dir`, recursively: each key is paired with the certificate of
/// its file whose public key matches; the file's other certificates follow it as the chain.
pub(crate) fn load(dir: &Path) -> io::Result<Loaded> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    let mut loaded = Loaded::default();
    for file in files {
        let certs: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(&file) {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(_) => continue,
        };
        let keys: Vec<PrivateKeyDer<'static>> = match PrivateKeyDer::pem_file_iter(&file) {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(_) => continue,
        };
        for key in keys {
            let paired = certs.iter().enumerate().find_map(|(i, leaf)| {
                let ck = CertifiedKey::from_der(vec![leaf.clone()], key.clone_key(), &provider())
                    .ok()?;
                ck.keys_match().ok().map(|()| i)
            });
            let Some(i) = paired else {
                tracing::warn!(file = %file.display(), "unused private key: no certificate in its file matches it");
                continue;
            };
            let mut chain = vec![certs[i].clone()];
            chain.extend(
                certs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, c)| c.clone()),
            );
            let Ok(ck) = CertifiedKey::from_der(chain, key.clone_key(), &provider()) else {
                continue;
            };
            let ck = Arc::new(ck);
            let names: Vec<String> = match webpki::EndEntityCert::try_from(&certs[i]) {
                Ok(ee) => ee.valid_dns_names().map(str::to_ascii_lowercase).collect(),
                Err(_) => Vec::new(),
            };
            for n in names {
                loaded.names.push(n.clone());
                loaded.by_name.entry(n).or_insert_with(|| ck.clone());
            }
            loaded.first.get_or_insert(ck);
        }
    }
    Ok(loaded)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("pem"))
        {
            out.push(path);
        }
    }
    Ok(())
}

impl Loaded {
    fn lookup(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        if let Some(c) = self.by_name.get(&name) {
            return Some(c.clone());
        }
        let (_, rest) = name.split_once('.')?;
        self.by_name.get(&format!("*.{rest}")).cloned()
    }
}

/// Resolves the certificate for each handshake from a directory.
pub(crate) struct CertDir {
    dir: PathBuf,
    loaded: RwLock<Loaded>,
    last_reload: Mutex<Instant>,
}

impl CertDir {
    pub(crate) fn new(dir: PathBuf, loaded: Loaded) -> Self {
        Self {
            dir,
            loaded: RwLock::new(loaded),
            last_reload: Mutex::new(Instant::now()),
        }
    }

    fn reload(&self) {
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < RELOAD_EVERY {
                return;
            }
            *last = Instant::now();
        }
        match load(&self.dir) {
            Ok(fresh) => *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = fresh,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot reload the certificate directory")
            }
        }
    }
}

impl fmt::Debug for CertDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertDir").field("dir", &self.dir).finish()
    }
}

impl ResolvesServerCert for CertDir {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return self
                .loaded
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .first
                .clone();
        };
        if let Some(c) = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(name)
        {
            return Some(c);
        }
        self.reload();
        let found = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(name);
        if found.is_none() {
            tracing::debug!(dir = %self.dir.display(), name, "no server certificate for this name");
        }
        found
    }
}
