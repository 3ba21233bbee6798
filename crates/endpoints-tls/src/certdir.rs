//! Reading a directory of PEM files for the `tls:` server, as Twisted 26's `tls:` server
//! does: every key pairs with the certificate (anywhere in the directory) whose public key
//! matches, the certificates without a key form the pool chains are built from (issuer to
//! subject), and each paired certificate serves its DNS names.
//!
//! certbot's `live/` directory works as is: its files are symlinks into `../../archive/`,
//! each name's key is in `privkey.pem`, its certificate in `cert.pem` (and again in
//! `fullchain.pem`), the intermediates in `chain.pem`.
//!
//! The walk follows symlinks, visits each directory once (by device and inode, so a link
//! back to a parent is no cycle), and is bounded in depth, entries and file size.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use rustls::sign::{CertifiedKey, SigningKey};

use crate::config::provider;
use crate::sni::Loaded;

/// Directories deeper than this below the root are not read (certbot's `live/` needs 2).
pub(crate) const MAX_DEPTH: usize = 16;
/// At most this many directory entries are looked at in one walk.
pub(crate) const MAX_ENTRIES: usize = 100_000;
/// At most this many `*.pem` files are read.
pub(crate) const MAX_FILES: usize = 10_000;
/// A `*.pem` file larger than this is skipped (with a warning): certificates and keys are a
/// few kilobytes.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;
/// Longest chain built above a leaf.
const MAX_CHAIN: usize = 8;

/// What a file looked like: what the watcher compares to notice a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
    pub(crate) id: (u64, u64),
}

impl Stamp {
    pub(crate) fn of(path: &Path, meta: &Metadata) -> Self {
        Self {
            path: path.to_owned(),
            len: meta.len(),
            modified: meta.modified().ok(),
            id: file_id(meta),
        }
    }
}

#[cfg(unix)]
fn file_id(meta: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(_meta: &Metadata) -> (u64, u64) {
    (0, 0)
}

/// `` `path` ``, and `` (→ `target`) `` when `path` is a symlink (certbot's `live/` files are):
/// the file a person has to fix.
pub(crate) fn shown(path: &Path) -> String {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match std::fs::canonicalize(path) {
        Ok(target) if link => format!("`{}` (→ `{}`)", path.display(), target.display()),
        _ => format!("`{}`", path.display()),
    }
}

/// Warn when the private key in `path` can be read by the file's group or by others (the
/// file itself, after symlinks).
pub(crate) fn warn_if_key_exposed(path: &Path, meta: &Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{mode:o}"),
                "private key file {} is readable by group or others (mode {mode:o}): `chmod 600` it",
                shown(path)
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

/// Every `*.pem` file below `dir` (symlinks followed), in path order within each directory,
/// with its stamp. Errors only if `dir` itself cannot be read; a subdirectory that cannot
/// be read, a cycle, or a bound reached is skipped, and logged if `log` (when loading, not
/// at every poll).
pub(crate) fn walk(dir: &Path, log: bool) -> std::io::Result<Vec<Stamp>> {
    let root = std::fs::metadata(dir)?;
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory (the `tls:` server takes a directory of *.pem files)",
        ));
    }
    let mut visited: HashSet<(u64, u64)> = HashSet::new();
    let mut out = Vec::new();
    let mut entries = 0usize;
    // Depth-first, in sorted order: a stack of (directory, depth), children pushed reversed.
    let mut stack = vec![(dir.to_owned(), 0usize, root)];
    while let Some((d, depth, meta)) = stack.pop() {
        if !visited.insert(file_id(&meta)) && cfg!(unix) {
            tracing::debug!(dir = %d.display(), "directory already visited (a symlink cycle or a second link): skipped");
            continue;
        }
        let read = match std::fs::read_dir(&d) {
            Ok(r) => r,
            Err(e) if d == dir => return Err(e),
            Err(e) => {
                if log {
                    tracing::warn!(dir = %d.display(), error = %e, "cannot read a certificate subdirectory: skipped");
                }
                continue;
            }
        };
        let mut children: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
        children.sort();
        let mut subdirs = Vec::new();
        for path in children {
            entries += 1;
            if entries > MAX_ENTRIES {
                if log {
                    tracing::warn!(dir = %dir.display(), "more than {MAX_ENTRIES} entries below the certificate directory: the rest is not read");
                }
                return Ok(out);
            }
            // Follows symlinks; a dangling link is skipped.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    if log {
                        tracing::warn!(dir = %path.display(), "deeper than {MAX_DEPTH} directories below the certificate directory: not read");
                    }
                } else {
                    subdirs.push((path, depth + 1, meta));
                }
            } else if meta.is_file()
                && path
                    .extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("pem"))
            {
                if out.len() >= MAX_FILES {
                    if log {
                        tracing::warn!(dir = %dir.display(), "more than {MAX_FILES} *.pem files below the certificate directory: the rest is not read");
                    }
                    return Ok(out);
                }
                out.push(Stamp::of(&path, &meta));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

/// The PEM certificates and keys of one file. A PEM syntax error (such as a file still
/// being written) is an error naming the file. A key in a file that group or others can
/// read is logged.
pub(crate) type Pem = (Vec<CertificateDer<'static>>, Vec<PrivateKeyDer<'static>>);

/// Read `path` as PEM: see [`Pem`].
pub(crate) fn read_pem(path: &Path) -> Result<Pem, String> {
    let file = shown(path);
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {file}: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{file} is larger than {MAX_FILE_BYTES} bytes: not a PEM certificate or key"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {file}: {e}"))?;
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        let (kind, der) = item.map_err(|e| {
            format!("{file} is not valid PEM ({e}): is it still being written, or cut short?")
        })?;
        match kind {
            SectionKind::Certificate => certs.push(CertificateDer::from(der)),
            SectionKind::PrivateKey => keys.push(PrivatePkcs8KeyDer::from(der).into()),
            SectionKind::RsaPrivateKey => keys.push(PrivatePkcs1KeyDer::from(der).into()),
            SectionKind::EcPrivateKey => keys.push(PrivateSec1KeyDer::from(der).into()),
            _ => {}
        }
    }
    if !keys.is_empty() {
        warn_if_key_exposed(path, &meta);
    }
    Ok((certs, keys))
}

/// One distinct certificate of the directory.
struct Cert {
    der: CertificateDer<'static>,
    file: usize,
    spki: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    names: Vec<String>,
    has_key: bool,
}

/// Load the directory: see the module documentation. An error (a file that cannot be read
/// or is not valid PEM, or no certificate with a DNS name and its key) names what to fix.
pub(crate) fn load(dir: &Path) -> Result<(Loaded, Vec<Stamp>), String> {
    let stamps = walk(dir, true).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    let mut certs: Vec<Cert> = Vec::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut keys: Vec<(usize, PrivateKeyDer<'static>)> = Vec::new();
    for (i, stamp) in stamps.iter().enumerate() {
        if stamp.len > MAX_FILE_BYTES {
            tracing::warn!(file = %stamp.path.display(), "larger than {MAX_FILE_BYTES} bytes: not read as PEM");
            continue;
        }
        let (file_certs, file_keys) = read_pem(&stamp.path)?;
        keys.extend(file_keys.into_iter().map(|k| (i, k)));
        for der in file_certs {
            if !seen.insert(der.as_ref().to_vec()) {
                continue;
            }
            let parsed = match webpki::EndEntityCert::try_from(&der) {
                Ok(c) => (
                    c.subject_public_key_info().as_ref().to_vec(),
                    c.subject().to_vec(),
                    c.issuer().to_vec(),
                    c.valid_dns_names()
                        .map(str::to_ascii_lowercase)
                        .collect::<Vec<_>>(),
                ),
                Err(e) => {
                    tracing::warn!(file = %stamp.path.display(), error = ?e, "certificate not understood: skipped");
                    continue;
                }
            };
            let (spki, subject, issuer, names) = parsed;
            certs.push(Cert {
                der,
                file: i,
                spki,
                subject,
                issuer,
                names,
                has_key: false,
            });
        }
    }

    // Pair each key with every certificate of its public key.
    let mut by_spki: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, c) in certs.iter().enumerate() {
        by_spki.entry(c.spki.clone()).or_default().push(i);
    }
    let mut pairs: Vec<(usize, Arc<dyn SigningKey>)> = Vec::new();
    for (file, key) in keys {
        let path = shown(&stamps[file].path);
        let signer = match provider().key_provider.load_private_key(key) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %path, error = %e, "private key not usable: skipped");
                continue;
            }
        };
        let Some(spki) = signer.public_key().map(|p| p.as_ref().to_vec()) else {
            continue;
        };
        let matching = by_spki.get(&spki).map(Vec::as_slice).unwrap_or_default();
        for &c in matching {
            certs[c].has_key = true;
            pairs.push((c, signer.clone()));
        }
        if matching.is_empty() {
            tracing::warn!(file = %path, "unused private key at {path}: no certificate in the directory has its public key");
        }
    }

    // Intermediates: certificates without a key, by subject (the first one found wins).
    let mut by_subject: HashMap<&[u8], usize> = HashMap::new();
    for (i, c) in certs.iter().enumerate() {
        if !c.has_key {
            by_subject.entry(c.subject.as_slice()).or_insert(i);
        }
    }

    let mut loaded = Loaded::default();
    // For each name: the certificate serving it and its file's modification time (the newest
    // file wins when two certificates have the same name, as after a renewal when both are
    // in the directory).
    let mut newest: HashMap<String, Option<SystemTime>> = HashMap::new();
    for (leaf, signer) in pairs {
        let mut chain = vec![certs[leaf].der.clone()];
        let mut at = leaf;
        let mut used = vec![leaf];
        while chain.len() <= MAX_CHAIN {
            let Some(&up) = by_subject.get(certs[at].issuer.as_slice()) else {
                break;
            };
            // A self-signed root is not sent (the client has it or does not trust it).
            if used.contains(&up) || certs[up].subject == certs[up].issuer {
                break;
            }
            chain.push(certs[up].der.clone());
            used.push(up);
            at = up;
        }
        let ck = Arc::new(CertifiedKey::new(chain, signer));
        let modified = stamps[certs[leaf].file].modified;
        for name in &certs[leaf].names {
            let replace = match newest.get(name) {
                None => true,
                Some(m) => modified > *m,
            };
            if replace {
                newest.insert(name.clone(), modified);
                loaded.insert(name.clone(), ck.clone());
            }
        }
    }
    // No SNI: what serves the first name found (keys in path order), as Twisted's first
    // entry of its name map.
    loaded.first = loaded
        .names
        .first()
        .and_then(|n| loaded.lookup(Some(n.as_str())));
    if loaded.first.is_none() {
        return Err(format!(
            "no certificate with a DNS name and its private key in `{}`: put each key and its certificate (any *.pem files, as certbot's `live/` does) below it",
            dir.display()
        ));
    }
    Ok((loaded, stamps))
}
