//! The `cache=` directory: the account key and certificates, per ACME directory URL.
//!
//! Layout: `<cache>/<directory key>/account.json` (the account's private key and URL, as
//! `instant-acme` serializes them) and `<cache>/<directory key>/<domains>.pem` (the
//! certificate's private key, then the chain, leaf first). The directory key is the URL with
//! every character other than letters, digits, `.` and `-` replaced by `_`, plus 8 hex digits
//! of its SHA-256, so staging and production never share a file. Directories are created
//! with mode 0700 and files written with mode 0600, to a temporary name then renamed: a
//! crash leaves the old file or the new one, never half of one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate ready to serve, with its validity.
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

impl Issued {
    /// Parse a PEM bundle (private key and chain, in any order).
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad PEM certificate: {e}"))?;
        let leaf = chain.first().ok_or("no certificate")?;
        let (not_before, not_after) =
            validity(leaf).ok_or("cannot read the certificate's dates")?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no private key: {e}"))?;
        let ck = CertifiedKey::from_der(chain, key, &crate::provider())
            .map_err(|e| format!("the key does not fit the certificate: {e}"))?;
        Ok(Self {
            key: Arc::new(ck),
            not_before,
            not_after,
        })
    }

    /// When to renew: two thirds into the certificate's lifetime (day 60 of Let's Encrypt's
    /// 90, as certbot and Caddy do).
    pub(crate) fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or(Duration::ZERO);
        self.not_before + life * 2 / 3
    }
}

/// The cache directory for one ACME directory URL.
#[derive(Clone, Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
}

/// The subdirectory name for a directory URL.
pub(crate) fn directory_key(url: &str) -> String {
    let mut s: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    s.push('-');
    for b in &digest.as_ref()[..4] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl Cache {
    pub(crate) fn new(root: &Path, directory_url: &str) -> Self {
        Self {
            dir: root.join(directory_key(directory_url)),
        }
    }

    /// The directory holding this URL's files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn cert_path(&self, domains: &[String]) -> PathBuf {
        self.dir.join(format!("{}.pem", domains.join(",")))
    }

    fn account_path(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    /// The cached certificate for `domains`: `Ok(None)` when there is none.
    pub(crate) fn load_cert(&self, domains: &[String]) -> Result<Option<Issued>, String> {
        let path = self.cert_path(domains);
        match std::fs::read(&path) {
            Ok(pem) => Issued::from_pem(&pem)
                .map(Some)
                .map_err(|e| format!("`{}`: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }

    pub(crate) fn store_cert(&self, domains: &[String], pem: &str) -> io::Result<()> {
        self.write(&self.cert_path(domains), pem.as_bytes())
    }

    /// The account credentials (JSON), if any.
    pub(crate) fn load_account(&self) -> Result<Option<Vec<u8>>, String> {
        let path = self.account_path();
        match std::fs::read(&path) {
            Ok(json) => Ok(Some(json)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }

    pub(crate) fn store_account(&self, json: &[u8]) -> io::Result<()> {
        self.write(&self.account_path(), json)
    }

    /// Create the directory (and `cache=` itself) with mode 0700 if missing; warn when an
    /// existing one is open to others.
    pub(crate) fn create(&self) -> io::Result<()> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&self.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create `{}`: {e}", self.dir.display()),
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %self.dir.display(),
                    "acme: the cache directory holds private keys but its mode is {:o}: run `chmod 700` on it",
                    mode & 0o777
                );
            }
        }
        Ok(())
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.create()?;
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let result = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display()))
        })
    }
}

/// One DER TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, b.get(header..end)?, b.get(end..)?))
}

/// `notBefore` and `notAfter` of an X.509 certificate.
pub(crate) fn validity(cert: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (_, certificate, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(certificate)?;
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        // [0] version, then the serial number.
        rest = tlv(rest)?.2;
    }
    let rest = tlv(rest)?.2; // signature algorithm
    let rest = tlv(rest)?.2; // issuer
    let (_, validity, _) = tlv(rest)?;
    let (t1, nb, rest) = tlv(validity)?;
    let (t2, na, _) = tlv(rest)?;
    Some((time(t1, nb)?, time(t2, na)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, v: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, s) = match tag {
        0x17 => {
            let y: i64 = s.get(..2)?.parse().ok()?;
            (if y >= 50 { 1900 + y } else { 2000 + y }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    if s.len() != 10 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| -> Option<i64> { s.get(i..i + 2)?.parse().ok() };
    let (month, day, h, m, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_keys_differ_and_are_file_names() {
        let prod = directory_key("https://acme-v02.api.letsencrypt.org/directory");
        let staging = directory_key("https://acme-staging-v02.api.letsencrypt.org/directory");
        assert_ne!(prod, staging);
        assert!(prod.starts_with("https___acme-v02.api.letsencrypt.org_directory-"));
        assert!(!prod.contains('/'));
        // Two URLs that sanitize alike still differ by the hash.
        assert_ne!(directory_key("https://a/b"), directory_key("https://a_b"));
    }

    #[test]
    fn validity_of_a_generated_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["test.example".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2026, 3, 1);
        params.not_after = rcgen::date_time_ymd(2051, 5, 31);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let (nb, na) = validity(cert.der()).expect("dates");
        // 2026-03-01 and 2051-05-31 at midnight UTC (`date -u -d ... +%s`); UTCTime stops at
        // 2049, so the second is a GeneralizedTime: both forms are covered.
        assert_eq!(
            nb.duration_since(UNIX_EPOCH).expect("after"),
            Duration::from_secs(1_772_323_200)
        );
        assert_eq!(
            na.duration_since(UNIX_EPOCH).expect("after"),
            Duration::from_secs(2_569_104_000)
        );
    }

    #[test]
    fn garbage_is_no_certificate() {
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01\x00",
        ] {
            assert!(validity(input).is_none());
        }
        assert!(Issued::from_pem(b"not pem").is_err());
    }
}
