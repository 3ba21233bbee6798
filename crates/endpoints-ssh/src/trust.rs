//! The server's key checked as OpenSSH does: a pinned fingerprint, or a known_hosts file
//! (hashed entries, `[host]:port`, patterns with `*`, `?` and `!`, `@revoked` keys and
//! `@cert-authority` lines for host certificates). Never off: an unknown key, a changed key, a
//! revoked key and a certificate no trusted authority vouches for are refused, each in its own
//! words with what to do.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::known_hosts::{HostPatterns, Marker};
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey, PublicKeyOrCertificate};

/// What vouches for the server's key.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Only the key with this SHA-256 fingerprint (`SHA256:...`).
    Fingerprint(String),
    /// The keys a known_hosts file records for the host.
    KnownHosts(PathBuf),
}

/// One known_hosts line that names the host.
#[derive(Debug)]
struct Entry {
    /// Its line number, from 1 (comments and blank lines counted).
    line: usize,
    marker: Option<Marker>,
    key: PublicKey,
}

/// The host key algorithms this client takes, most preferred first: russh's list without
/// `ssh-rsa` (RSA with SHA-1), which OpenSSH has refused by default since 8.8.
fn host_key_algorithms() -> Vec<Algorithm> {
    russh::Preferred::DEFAULT
        .key
        .iter()
        .filter(|a| **a != Algorithm::Rsa { hash: None })
        .cloned()
        .collect()
}

/// The algorithm preferences for a session to `host`:`port` under `trust`, as OpenSSH orders
/// them: the types known_hosts records for the host first (so a host known by its RSA key is
/// asked for that key, not a newer one it also has), and host certificates asked for (ahead of
/// plain keys) only when a `@cert-authority` line names the host.
pub fn preferred(trust: &Trust, host: &str, port: u16) -> russh::Preferred {
    let mut algorithms = host_key_algorithms();
    let mut preferred = russh::Preferred::default();
    if let Trust::KnownHosts(file) = trust
        && let Ok(entries) = entries(file, host, port)
    {
        let known = |a: &Algorithm| {
            entries
                .iter()
                .any(|e| e.marker.is_none() && same_type(&e.key.algorithm(), a))
        };
        // A stable sort: known types first, each group in the default order.
        algorithms.sort_by_key(|a| !known(a));
        if entries
            .iter()
            .any(|e| e.marker == Some(Marker::CertAuthority))
        {
            preferred.host_key_certificates = Cow::Owned(host_key_algorithms());
        }
    }
    preferred.key = Cow::Owned(algorithms);
    preferred
}

/// Whether two algorithms are one key type (RSA's signature hashes are one type).
fn same_type(a: &Algorithm, b: &Algorithm) -> bool {
    a == b || (matches!(a, Algorithm::Rsa { .. }) && matches!(b, Algorithm::Rsa { .. }))
}

/// Check what `host`:`port` offered, a key or a host certificate. `Err` is the refusal in
/// words.
pub fn check(
    trust: &Trust,
    host: &str,
    port: u16,
    offered: &PublicKeyOrCertificate,
) -> Result<(), String> {
    let (key, certificate) = match offered {
        PublicKeyOrCertificate::PublicKey { key, .. } => (key.clone(), None),
        PublicKeyOrCertificate::Certificate(c) => {
            (PublicKey::new(c.public_key().clone(), ""), Some(c))
        }
    };
    let seen = key.fingerprint(HashAlg::Sha256).to_string();
    let algorithm = key.algorithm();
    let name = known_hosts_name(host, port);
    let file = match trust {
        Trust::Fingerprint(pinned) => {
            return if *pinned == seen {
                Ok(())
            } else {
                Err(format!(
                    "the SSH server {name} offered the {algorithm} key {seen}, not the pinned {pinned} (`fingerprint=`): refused; if the server's key was changed on purpose, pin the new one"
                ))
            };
        }
        Trust::KnownHosts(file) => file,
    };
    let shown = file.display();
    let entries = entries(file, host, port)?;
    // A revoked key is refused whatever else vouches for it, as is a certificate signed by a
    // revoked authority.
    let revoked = |k: &PublicKey| {
        entries
            .iter()
            .find(|e| e.marker == Some(Marker::Revoked) && e.key.key_data() == k.key_data())
    };
    if let Some(e) = revoked(&key) {
        return Err(format!(
            "the SSH server {name} offered the {algorithm} key {seen}, which `{shown}` line {} marks `@revoked`: refused. A revoked key may be in someone else's hands; ask the server's administrator for its new key and check that `@revoked` line",
            e.line
        ));
    }
    // A certificate: OpenSSH's order. An authority trusted for the host that signed a valid
    // host certificate lets it in; otherwise its plain key is checked as any key is (and the
    // certificate's problem is part of the refusal).
    let mut why_not_certificate = None;
    if let Some(cert) = certificate {
        let authority = PublicKey::new(cert.signature_key().clone(), "");
        let ca_fp = authority.fingerprint(HashAlg::Sha256);
        if let Some(e) = revoked(&authority) {
            return Err(format!(
                "the SSH server {name} presented a host certificate signed by the authority {ca_fp}, which `{shown}` line {} marks `@revoked`: refused. Ask the server's administrator for a certificate from a current authority",
                e.line
            ));
        }
        let trusted = entries.iter().find(|e| {
            e.marker == Some(Marker::CertAuthority) && e.key.key_data() == authority.key_data()
        });
        match trusted {
            None => {
                why_not_certificate = Some(format!(
                    "it presented a host certificate signed by the authority {ca_fp}, which no `@cert-authority` line of `{shown}` trusts for {name} (if {ca_fp} is your authority, as `ssh-keygen -lf CA.pub` shows, add `@cert-authority {name} ` followed by CA.pub's key)"
                ));
            }
            Some(e) => match certificate_problem(cert, host, &ca_fp) {
                None => return Ok(()),
                Some(problem) => {
                    why_not_certificate = Some(format!(
                        "its host certificate, signed by the authority {ca_fp} that `{shown}` line {} trusts, {problem} (reissue it on the server: `ssh-keygen -s CA_KEY -h -n {host} -V -5m:+52w /etc/ssh/ssh_host_*_key.pub`, then HostCertificate in sshd_config)",
                        e.line
                    ));
                }
            },
        }
    }
    let why_not = why_not_certificate
        .as_deref()
        .map(|w| format!(" Also: {w}."))
        .unwrap_or_default();
    let plain = entries.iter().filter(|e| e.marker.is_none());
    if plain.clone().any(|e| e.key.key_data() == key.key_data()) {
        if let Some(w) = &why_not_certificate {
            tracing::warn!("ssh: {name}: its key is in `{shown}`, so it is accepted; but {w}");
        }
        return Ok(());
    }
    if let Some(old) = plain
        .clone()
        .find(|e| same_type(&e.key.algorithm(), &algorithm))
    {
        return Err(format!(
            "WARNING: THE HOST KEY OF {name} HAS CHANGED: it offered the {algorithm} key {seen}, but `{shown}` line {} records {}; someone may be intercepting the connection: refused. If the change is expected, remove that line (`ssh-keygen -R '{name}' -f {shown}`) and add the new key.{why_not}",
            old.line,
            old.key.fingerprint(HashAlg::Sha256),
        ));
    }
    let port_arg = if port == 22 {
        String::new()
    } else {
        format!("-p {port} ")
    };
    if let Some(w) = why_not_certificate {
        return Err(format!(
            "the SSH server {name} is not trusted: {w}: refused. Nor does `{shown}` record its {algorithm} key {seen} (to trust that key alone, once checked on the server: `ssh-keyscan {port_arg}-t {algorithm} {host} >> {shown}`, or `fingerprint={seen}`)"
        ));
    }
    Err(format!(
        "the SSH server {name} is not known: its {algorithm} key is {seen} and `{shown}` has no key of this type for it: refused. If that fingerprint is the server's (check it there with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`), add it: `ssh-keyscan {port_arg}-t {algorithm} {host} >> {shown}`, or pin it: `fingerprint={seen}`"
    ))
}

/// What is wrong with a host certificate signed by a trusted authority, as OpenSSH checks it:
/// a host (not user) certificate, its signature, its validity window, `host` among its
/// principals (an empty list names every host, as in OpenSSH), no critical options.
fn certificate_problem(
    cert: &Certificate,
    host: &str,
    ca_fp: &russh::keys::ssh_key::Fingerprint,
) -> Option<String> {
    if !cert.cert_type().is_host() {
        return Some("is a user certificate, not a host certificate (`ssh-keygen -h`)".to_owned());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now < cert.valid_after() {
        return Some(format!(
            "is not valid before {} (is the client's or the server's clock wrong?)",
            utc(cert.valid_after())
        ));
    }
    if now >= cert.valid_before() {
        return Some(format!("expired at {}", utc(cert.valid_before())));
    }
    if cert.validate_at(now, [ca_fp]).is_err() {
        return Some("does not verify: its signature is not that authority's".to_owned());
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(host)) {
        return Some(format!(
            "is for {}, not for `{host}` (connect by a name it lists, or add `{host}` to its principals, `-n`)",
            principals
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !cert.critical_options().is_empty() {
        return Some(format!(
            "has critical options ({}), which host certificates do not take",
            cert.critical_options()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    None
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".to_owned();
    }
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rest = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The lines of `file` that name `host`:`port`, with their markers. A missing file names no
/// host; a line this client cannot read (an unknown marker or key type) is skipped, as
/// OpenSSH skips it.
fn entries(file: &Path, host: &str, port: u16) -> Result<Vec<Entry>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "cannot read the known hosts file `{}`: {e}; fix its permissions or give another with `knownHosts=`",
                file.display()
            ));
        }
    };
    let name = known_hosts_name(host, port).to_ascii_lowercase();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(mut first) = words.next() else {
            continue;
        };
        if first.starts_with('#') {
            continue;
        }
        let marker = if first.starts_with('@') {
            let Ok(m) = first.parse::<Marker>() else {
                continue;
            };
            let Some(next) = words.next() else {
                continue;
            };
            first = next;
            Some(m)
        } else {
            None
        };
        let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
            continue;
        };
        if !matches_host(first, &name) {
            continue;
        }
        let Ok(key) = PublicKey::from_openssh(&format!("{kind} {blob}")) else {
            continue;
        };
        out.push(Entry {
            line: i + 1,
            marker,
            key,
        });
    }
    Ok(out)
}

/// Whether a known_hosts host field names `name` (`host` or `[host]:port`, lower case): a
/// hashed name (`|1|salt|hash`, HMAC-SHA1), or comma-separated patterns with `*` and `?`,
/// where a matching `!pattern` excludes the host.
fn matches_host(field: &str, name: &str) -> bool {
    if field.starts_with("|1|") {
        let Ok(HostPatterns::HashedName { salt, hash }) = field.parse::<HostPatterns>() else {
            return false;
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        return ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok();
    }
    let mut found = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else if glob(&pattern.to_ascii_lowercase(), name) {
            found = true;
        }
    }
    found
}

/// OpenSSH's wildcard match: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The host as known_hosts writes it: `host`, or `[host]:port` off port 22.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_openssh_matches_them() {
        assert!(matches_host("example.com", "example.com"));
        assert!(matches_host("a.example,*.example.com", "db.example.com"));
        assert!(!matches_host(
            "*.example.com,!db.example.com",
            "db.example.com"
        ));
        assert!(matches_host("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
        assert!(!matches_host("127.0.0.1", "[127.0.0.1]:2222"));
        assert!(matches_host("[127.0.0.?]:*", "[127.0.0.1]:2222"));
        assert!(matches_host("*", "anything"));
        assert!(!matches_host("!*", "anything"));
        assert!(!matches_host("exa*le.org", "example.com"));
        assert!(matches_host("EXAMPLE.com", "example.com"));
        // `ssh-keygen -H` of "example.com" with this salt.
        assert!(matches_host(
            "|1|NgHlD4eOXRc90v61NsG8+v9PNRY=|mCChpka4AepY9e28ga5nE2jgxLE=",
            "example.com"
        ));
        assert!(!matches_host(
            "|1|NgHlD4eOXRc90v61NsG8+v9PNRY=|mCChpka4AepY9e28ga5nE2jgxLE=",
            "example.org"
        ));
    }

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn ssh_rsa_with_sha1_is_never_asked_for() {
        let p = preferred(&Trust::Fingerprint(String::new()), "h", 22);
        assert!(!p.key.contains(&Algorithm::Rsa { hash: None }));
        assert!(p.key.contains(&Algorithm::Rsa {
            hash: Some(HashAlg::Sha512)
        }));
        assert!(p.host_key_certificates.is_empty());
    }
}
