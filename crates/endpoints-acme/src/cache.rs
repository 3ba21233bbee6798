//! The `cache=` directory: the account key and certificates, per ACME directory URL.
//!
//! Layout: `<cache>/<directory key>/account.json` (the account's private key and URL, as
//! `instant-acme` serializes them) and `<cache>/<directory key>/<name>-<hash>.pem` (a line
//! listing the certificate's names, then its private key, then the chain, leaf first). The
//! file is named by the first of the names, sorted, and 32 hex digits of the SHA-256 of the
//! sorted, lower-case list, so any number of names fits a file name and a reordered
//! `domains=` is the same certificate; the listed names are checked when it is read. A file
//! of an older version (`<domains as written, joined with ,>.pem`) is read when there is no
//! hashed one, and moved to the hashed name. The directory key is the URL with
//! every character other than letters, digits, `.` and `-` replaced by `_`, plus 8 hex digits
//! of its SHA-256, so staging and production never share a file. Directories are created
//! with mode 0700 and files written with mode 0600, to a temporary name of their own
//! (`.<file>.<pid>.<counter>.tmp`, created exclusively) then renamed: a crash leaves the old
//! file or the new one, never half of one, and writers at once never share a temporary
//! file. Everything here blocks: the manager calls it through `spawn_blocking`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    renew_at: SystemTime,
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
        Ok(Self::new(Arc::new(ck), not_before, not_after))
    }

    /// A certificate valid from `not_before` to `not_after`, its renewal time drawn now (see
    /// [`Issued::renew_at`]).
    pub(crate) fn new(
        key: Arc<CertifiedKey>,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Self {
        let mut random = [0u8; 8];
        // Without randomness (never on Linux), no jitter: the renewal time is still right.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
        let fraction = u64::from_le_bytes(random) as f64 / u64::MAX as f64;
        Self::with_jitter(key, not_before, not_after, fraction)
    }

    /// As [`Issued::new`], with the random part given: `fraction` (0 to 1) of the most.
    fn with_jitter(
        key: Arc<CertifiedKey>,
        not_before: SystemTime,
        not_after: SystemTime,
        fraction: f64,
    ) -> Self {
        let life = not_after
            .duration_since(not_before)
            .unwrap_or(Duration::ZERO);
        let jitter = (life / 20).mul_f64(fraction.clamp(0.0, 1.0));
        Self {
            key,
            not_before,
            not_after,
            renew_at: not_before + life * 2 / 3 - jitter,
        }
    }

    /// Due for renewal at `now`: past its renewal time, and not before its start (a clock
    /// behind the CA's never makes a fresh certificate due).
    pub(crate) fn is_due(&self, now: SystemTime) -> bool {
        now >= self.renew_at && now >= self.not_before
    }

    /// When to renew: two thirds into the certificate's lifetime (day 60 of Let's Encrypt's
    /// 90, as certbot and Caddy do), less a random part of up to a twentieth of the lifetime
    /// (4.5 days of 90), drawn once per certificate, so that servers started together
    /// (a fleet, a restored backup) spread their orders.
    pub(crate) fn renew_at(&self) -> SystemTime {
        self.renew_at
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

/// The longest file name most file systems take (ext4, XFS, btrfs, APFS: 255 bytes).
const MAX_FILE_NAME: usize = 255;

/// The line before the PEM blocks of a certificate file that lists its names (PEM readers
/// skip text outside the blocks, RFC 7468 section 2).
const NAMES_LINE: &str = "endpoints-acme certificate for: ";

/// A certificate's names as the cache keys them: lower case, without a final dot, sorted,
/// without duplicates. A reordered `domains=` is the same certificate.
pub(crate) fn cache_names(domains: &[String]) -> Vec<String> {
    let mut names: Vec<String> = domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The file of the certificate for `names` (from [`cache_names`]): the first name (at most
/// 64 bytes of it), then 32 hex digits of the SHA-256 of the list. At most 101 bytes, however
/// many names there are.
pub(crate) fn cert_file_name(names: &[String]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, names.join("\n").as_bytes());
    let first = names.first().map_or("certificate", String::as_str);
    // Names are checked DNS names (ASCII): any byte is a character boundary.
    let first = first.get(..first.len().min(64)).unwrap_or("certificate");
    let mut s = format!("{first}-");
    for b in &digest.as_ref()[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s.push_str(".pem");
    s
}

/// The names listed in a certificate file's [`NAMES_LINE`], if it has one.
fn listed_names(pem: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(pem);
    let line = text.lines().find_map(|l| l.strip_prefix(NAMES_LINE))?;
    Some(line.trim().split(',').map(str::to_owned).collect())
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

    fn cert_path(&self, names: &[String]) -> PathBuf {
        self.dir.join(cert_file_name(names))
    }

    /// Where versions before the hashed names kept the certificate: the names as written,
    /// joined with `,`. `None` when that name is too long to exist (it was never written).
    fn legacy_cert_path(&self, domains: &[String]) -> Option<PathBuf> {
        let name = format!("{}.pem", domains.join(","));
        (name.len() <= MAX_FILE_NAME).then(|| self.dir.join(name))
    }

    fn account_path(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    /// The cached certificate for `domains` (in any order): `Ok(None)` when there is none.
    /// A file of an older version (named after the names as written) is read, and moved to
    /// the hashed name.
    pub(crate) fn load_cert(&self, domains: &[String]) -> Result<Option<Issued>, String> {
        let names = cache_names(domains);
        let path = self.cert_path(&names);
        match std::fs::read(&path) {
            Ok(pem) => {
                match listed_names(&pem) {
                    Some(listed) if listed == names => {}
                    Some(listed) => {
                        return Err(format!(
                            "`{}` is for `{}`, not `{}`: move it away",
                            path.display(),
                            listed.join(","),
                            names.join(",")
                        ));
                    }
                    None => {
                        return Err(format!(
                            "`{}` does not say which names it is for (no `{NAMES_LINE}` line): move it away",
                            path.display()
                        ));
                    }
                }
                return Issued::from_pem(&pem)
                    .map(Some)
                    .map_err(|e| format!("`{}`: {e}", path.display()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        }
        let Some(legacy) = self.legacy_cert_path(domains) else {
            return Ok(None);
        };
        let pem = match std::fs::read(&legacy) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read `{}`: {e}", legacy.display())),
        };
        let issued = Issued::from_pem(&pem).map_err(|e| format!("`{}`: {e}", legacy.display()))?;
        match self.store_cert(domains, &String::from_utf8_lossy(&pem)) {
            Ok(()) => tracing::info!(
                from = %legacy.display(),
                to = %path.display(),
                "acme: moved the cached certificate to its new name"
            ),
            Err(e) => tracing::warn!(
                "acme: serving `{}`, but {e}; it is read again at the next start",
                legacy.display()
            ),
        }
        Ok(Some(issued))
    }

    /// Write the certificate for `domains` (key and chain in `pem`) under its hashed name,
    /// after a line listing the names; an older version's file for them is removed.
    pub(crate) fn store_cert(&self, domains: &[String], pem: &str) -> io::Result<()> {
        let names = cache_names(domains);
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with(NAMES_LINE))
            .flat_map(|l| [l, "\n"])
            .collect();
        let file = format!("{NAMES_LINE}{}\n{body}", names.join(","));
        self.write(&self.cert_path(&names), file.as_bytes())?;
        if let Some(legacy) = self.legacy_cert_path(domains) {
            let _ = std::fs::remove_file(legacy);
        }
        Ok(())
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
        // A name of its own (process id, a counter), created exclusively: two writers of
        // one file (two listeners, two processes) never write, or remove, each other's.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let file = path
            .file_name()
            .map_or_else(|| "file".into(), |f| f.to_string_lossy());
        let tmp = path.with_file_name(format!(".{file}.{}.{n}.tmp", std::process::id()));
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

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A key and a self-signed certificate for `names`, as PEM (what an order gives).
    fn bundle(names: &[String]) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(names.to_vec())
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        format!("{}{}", key.serialize_pem(), cert.pem())
    }

    fn scratch(test: &str) -> (PathBuf, Cache) {
        let root =
            std::env::temp_dir().join(format!("endpoints-acme-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cache = Cache::new(&root, "https://ca.example/dir");
        (root, cache)
    }

    /// Issue 24 item 2: the file name stays short for any list, and does not depend on the
    /// order, the case or repeats of the names.
    #[test]
    fn certificate_file_names_are_short_and_ignore_order_and_case() {
        let eleven: Vec<String> = (0..11)
            .map(|i| format!("n{i:02}-{}.example", "a".repeat(12)))
            .collect();
        assert!(eleven.join(",").len() + 4 > MAX_FILE_NAME);
        let name = cert_file_name(&cache_names(&eleven));
        assert!(name.len() <= 101, "{name}");
        assert!(name.starts_with("n00-aaaaaaaaaaaa.example-"), "{name}");
        let mut reordered: Vec<String> = eleven.iter().rev().cloned().collect();
        reordered[3] = reordered[3].to_ascii_uppercase();
        reordered.push(eleven[0].clone());
        assert_eq!(cert_file_name(&cache_names(&reordered)), name);
        // A hundred names of 253 bytes (the most DNS allows).
        let label = "a".repeat(63);
        let huge: Vec<String> = (0..100)
            .map(|i| format!("{i:03}{}.{label}.{label}.{}", &label[3..], &label[2..]))
            .collect();
        assert!(huge.iter().all(|n| n.len() == 255 - 2));
        assert!(cert_file_name(&cache_names(&huge)).len() <= 101);
        // Different lists, different files.
        assert_ne!(
            cert_file_name(&cache_names(&names(&["a.example", "b.example"]))),
            cert_file_name(&cache_names(&names(&["a.example"])))
        );
    }

    #[test]
    fn a_stored_certificate_loads_for_its_names_in_any_order_only() {
        let (root, cache) = scratch("names");
        let ab = names(&["a.example", "b.example"]);
        let pem = bundle(&ab);
        cache.store_cert(&ab, &pem).expect("store");
        let loaded = cache
            .load_cert(&names(&["B.example", "a.example"]))
            .expect("read")
            .expect("found under the reordered list");
        let stored = std::fs::read_to_string(cache.cert_path(&cache_names(&ab))).expect("read");
        assert!(stored.starts_with("endpoints-acme certificate for: a.example,b.example\n"));
        assert_eq!(loaded.key.cert.len(), 1);
        assert!(
            cache
                .load_cert(&names(&["a.example"]))
                .expect("read")
                .is_none()
        );
        // A file whose listed names are not the ones asked for is refused, with its path.
        std::fs::copy(
            cache.cert_path(&cache_names(&ab)),
            cache.cert_path(&cache_names(&names(&["c.example"]))),
        )
        .expect("copy");
        let e = cache
            .load_cert(&names(&["c.example"]))
            .expect_err("refused");
        assert!(
            e.contains("is for `a.example,b.example`, not `c.example`"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A cache written by an older version (`<domains>.pem`) is served, and moved to the
    /// hashed name.
    #[test]
    fn an_old_named_certificate_is_read_and_moved() {
        let (root, cache) = scratch("legacy");
        let list = names(&["www.example", "example"]);
        cache.create().expect("create");
        let legacy = cache.dir().join("www.example,example.pem");
        std::fs::write(&legacy, bundle(&list)).expect("write");
        let issued = cache.load_cert(&list).expect("read").expect("found");
        assert!(!legacy.exists(), "the old file is gone");
        let again = cache.load_cert(&list).expect("read").expect("found again");
        assert_eq!(again.key.cert, issued.key.cert);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Issue 24 item 6: writers of the same file at once (two listeners, two processes) each
    /// use a temporary file of their own; every write succeeds and the file is one of them,
    /// whole.
    #[test]
    fn concurrent_writers_do_not_share_a_temporary_file() {
        let root =
            std::env::temp_dir().join(format!("endpoints-acme-writers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cache = Cache::new(&root, "https://ca.example/dir");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        let failures: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = contents
                .iter()
                .map(|data| {
                    let cache = cache.clone();
                    scope.spawn(move || {
                        (0..50)
                            .filter(|_| cache.store_account(data).is_err())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("writer")).sum()
        });
        assert_eq!(failures, 0, "writes failed");
        let json = cache.load_account().expect("read").expect("written");
        assert!(
            contents.contains(&json),
            "the file is one writer's whole data"
        );
        let left: Vec<_> = std::fs::read_dir(cache.dir())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Issue 24 item 4: the renewal time has jitter, earlier only, at most a twentieth of
    /// the lifetime; a certificate is never due before its notBefore.
    #[test]
    fn renewal_times_have_jitter_and_respect_not_before() {
        let list = names(&["a.example"]);
        let key = Issued::from_pem(bundle(&list).as_bytes())
            .expect("issued")
            .key;
        let day = Duration::from_secs(86_400);
        let nb = UNIX_EPOCH + 20_000 * day;
        let na = nb + 90 * day;
        let latest = Issued::with_jitter(key.clone(), nb, na, 0.0).renew_at();
        let earliest = Issued::with_jitter(key.clone(), nb, na, 1.0).renew_at();
        assert_eq!(latest, nb + 60 * day);
        assert_eq!(earliest, nb + 60 * day - 90 * day / 20);
        let drawn: Vec<SystemTime> = (0..20)
            .map(|_| Issued::new(key.clone(), nb, na).renew_at())
            .collect();
        assert!(drawn.iter().all(|t| (earliest..=latest).contains(t)));
        assert!(drawn.iter().any(|t| *t != drawn[0]), "drawn at random");
        let issued = Issued::new(key, nb, na);
        assert!(!issued.is_due(nb - day), "not before its start");
        assert!(issued.is_due(latest));
        assert!(!issued.is_due(earliest - day));
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
