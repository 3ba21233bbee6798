//! TLS client failures in words: what is wrong and what to do.
//!
//! Certificate refusals are worded by the verifier ([`certificate`], [`pin_mismatch`]), which
//! returns rustls' own error (so the alert sent to the server stays precise) and leaves the
//! words for the connection that failed; [`describe`] words the other handshake failures,
//! including a server that does not speak TLS at all (it closed at once, or answered in
//! plain text: its first bytes are shown).

use std::io;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, Error, OtherError};

use crate::trust::Trust;
use crate::verify::{Pin, base64_encode, pin_of};

/// What an error message says about a certificate.
pub(crate) struct CertInfo {
    subject: Option<String>,
    issuer: Option<String>,
    self_signed: bool,
}

impl CertInfo {
    pub(crate) fn of(cert: &CertificateDer<'_>) -> Self {
        match webpki::EndEntityCert::try_from(cert) {
            Ok(c) => Self {
                subject: common_name(c.subject()),
                issuer: common_name(c.issuer()),
                self_signed: c.subject() == c.issuer(),
            },
            Err(_) => Self {
                subject: None,
                issuer: None,
                self_signed: false,
            },
        }
    }

    fn subject(&self) -> String {
        match &self.subject {
            Some(cn) => format!("`{cn}`"),
            None => "(no common name)".to_owned(),
        }
    }

    fn issuer(&self) -> String {
        match &self.issuer {
            Some(cn) => format!("`{cn}`"),
            None => "an issuer with no common name".to_owned(),
        }
    }
}

/// The commonName (2.5.4.3) of a DER Name, if it is a string of printable characters.
fn common_name(name: &[u8]) -> Option<String> {
    const CN: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = name.windows(CN.len()).position(|w| w == CN)? + CN.len();
    let tag = *name.get(at)?;
    let len = usize::from(*name.get(at + 1)?);
    // UTF8String, PrintableString, IA5String, T61String; short lengths only.
    if ![0x0c, 0x13, 0x16, 0x14].contains(&tag) || len >= 0x80 {
        return None;
    }
    let text = std::str::from_utf8(name.get(at + 2..at + 2 + len)?).ok()?;
    Some(text.chars().flat_map(char::escape_default).collect())
}

/// A UTC date and time from a UNIX time: `2002-01-01 00:00:00 UTC`.
pub(crate) fn utc(t: UnixTime) -> String {
    let secs = t.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
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
        rest / 60 % 60,
        rest % 60
    )
}

/// rustls presents names as `DnsName("a.test")` and `IpAddress(0::1)`: show `a.test`, `::1`.
fn presented_name(n: &str) -> String {
    if let Some(dns) = n
        .strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
    {
        return dns.to_owned();
    }
    if let Some(ip) = n
        .strip_prefix("IpAddress(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => ip.to_owned(),
        };
    }
    n.to_owned()
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        return "no names at all (no subjectAltName)".to_owned();
    }
    list.iter()
        .map(|n| format!("`{}`", presented_name(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// webpki's "CA certificate used as end entity", which rustls passes on as `Other`.
pub(crate) fn is_ca_used_as_end_entity(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(CertificateError::Other(OtherError(other)))
            if matches!(other.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
    )
}

/// A refusal from WebPKI verification, worded for `cert` and the trust set used (`None` for
/// an error that is not about the certificate).
pub(crate) fn certificate(e: &Error, cert: &CertificateDer<'_>, trust: &Trust) -> Option<String> {
    let Error::InvalidCertificate(ce) = e else {
        return None;
    };
    let info = CertInfo::of(cert);
    let key = pin_of(cert)
        .map(|(_, text)| format!(" (its key: `pin={text}`)"))
        .unwrap_or_default();
    let message = match ce {
        CertificateError::UnknownIssuer if info.self_signed => format!(
            "the server's certificate {} is self-signed and not in {}: if you trust it, list the certificate itself in `trustRoots=` (a PEM file or a directory of *.pem), or pin its key with `trustRoots=none:pin=...`{key}",
            info.subject(),
            trust.label
        ),
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            if info.self_signed =>
        {
            format!(
                "the server's certificate {} is self-signed and not in {} (a certificate of the same name there did not sign it): if you trust it, list the certificate itself in `trustRoots=`, or pin its key with `trustRoots=none:pin=...`{key}",
                info.subject(),
                trust.label
            )
        }
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the server's certificate {} names {} as its issuer, but the certificate of that name in {} did not sign it: give the CA that did in `trustRoots=`, or the chain is broken or forged{key}",
            info.subject(),
            info.issuer(),
            trust.label
        ),
        CertificateError::UnknownIssuer => {
            let advice = if trust.explicit {
                "give the CA that issued it in `trustRoots=` (a PEM file or a directory of *.pem), or have the server send its intermediate certificates"
            } else {
                "to trust a private CA, give its certificate with `trustRoots=ca.pem` (or a directory of *.pem) or install it in the system store; the server may also be missing its intermediate certificates"
            };
            format!(
                "the server's certificate {} was issued by {}, which is not in {}: {advice}{key}",
                info.subject(),
                info.issuer(),
                trust.label
            )
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the server's certificate is for {}, not `{}`: connect using one of those names (or set `sni=` to the name to check), or give the server a certificate for `{}`",
            names(presented),
            expected.to_str(),
            expected.to_str()
        ),
        CertificateError::NotValidForName => format!(
            "the server's certificate {} is not valid for the name connected to: connect using a name it holds, or set `sni=`",
            info.subject()
        ),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server's certificate {} expired on {} (it is now {}): renew it on the server (certbot: `certbot renew`), or check this machine's clock",
            info.subject(),
            utc(*not_after),
            utc(*time)
        ),
        CertificateError::Expired => format!(
            "the server's certificate {} has expired: renew it on the server, or check this machine's clock",
            info.subject()
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the server's certificate {} is not valid before {} (it is now {}): check the clock of this machine or of the machine that made the certificate",
            info.subject(),
            utc(*not_before),
            utc(*time)
        ),
        CertificateError::NotValidYet => format!(
            "the server's certificate {} is not valid yet: check the clocks",
            info.subject()
        ),
        _ if is_ca_used_as_end_entity(e) => format!(
            "the server presents a CA certificate {} (basicConstraints CA:TRUE) as its own certificate: if it is a self-signed certificate you trust, list it in `trustRoots=` (only certificates listed there are accepted this way); otherwise have the server use a certificate issued by that CA{key}",
            info.subject()
        ),
        other => format!(
            "the server's certificate {} was refused ({other}) by {}",
            info.subject(),
            trust.label
        ),
    };
    Some(message)
}

/// The server's key matches no `pin=`.
pub(crate) fn pin_mismatch(found: Option<String>, pins: &[Pin], info: CertInfo) -> String {
    let wanted: Vec<String> = pins
        .iter()
        .map(|p| format!("sha256/{}", base64_encode(p)))
        .collect();
    match found {
        Some(found) => format!(
            "the server's public key (certificate {}) is `{found}`, which matches no `pin=` ({}): if the server's key changed on purpose, add the new pin",
            info.subject(),
            wanted.join(", ")
        ),
        None => "the server's certificate cannot be parsed to check `pin=`".to_owned(),
    }
}

/// At most this many of a server's first bytes are kept to show in an error.
pub(crate) const SHOWN_BYTES: usize = 48;

/// The worded reason of a failed handshake (other than a refused certificate, which the
/// verifier words), or `None` to keep the original error. `first_bytes`: what the server
/// sent first (at most [`SHOWN_BYTES`]).
pub(crate) fn describe(e: &io::Error, first_bytes: &[u8]) -> Option<String> {
    if let Some(rustls_error) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        return match rustls_error {
            Error::InvalidMessage(_) | Error::InappropriateMessage { .. }
                if !first_bytes.is_empty() && !looks_like_tls(first_bytes) =>
            {
                Some(not_tls(first_bytes))
            }
            Error::AlertReceived(alert) => Some(alert_words(*alert)),
            Error::PeerIncompatible(
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
                | rustls::PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | rustls::PeerIncompatible::SupportedVersionsExtensionRequired,
            ) => Some(OLD_VERSIONS.to_owned()),
            Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon) => {
                Some(NO_CIPHERS.to_owned())
            }
            _ => None,
        };
    }
    if e.kind() == io::ErrorKind::ConnectionReset && first_bytes.is_empty() {
        return Some(format!(
            "the server reset the connection at once, without a TLS handshake ({e}): it may not speak TLS on this port (plain TCP? then use `tcp:`), or it refused this client (check its logs)"
        ));
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Some(if first_bytes.is_empty() {
            "the server closed the connection at once, without a TLS handshake: it may not speak TLS on this port (plain TCP? then use `tcp:`), or it refused this client (check its logs)".to_owned()
        } else if looks_like_tls(first_bytes) {
            "the server closed the connection in the middle of the TLS handshake: check the server's logs".to_owned()
        } else {
            not_tls(first_bytes)
        });
    }
    None
}

const OLD_VERSIONS: &str = "the server offers no TLS version this client speaks (1.2 or 1.3; rustls implements nothing older): upgrade the server's TLS configuration";
const NO_CIPHERS: &str = "the server and this client have no cipher suite in common (this client offers the modern TLS 1.2 and 1.3 suites only): upgrade the server's TLS configuration";

/// A fatal alert from the server during the handshake, in words.
fn alert_words(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let what = match alert {
        A::ProtocolVersion => return OLD_VERSIONS.to_owned(),
        A::HandshakeFailure | A::InsufficientSecurity => {
            "it found nothing acceptable in this client's hello: no TLS version, cipher suite or key exchange in common (an old server?), or it wanted a client certificate (`certificate=`)"
        }
        A::CertificateRequired => {
            "it requires a client certificate: give one with `certificate=` (and `privateKey=`)"
        }
        A::UnrecognisedName => {
            "it has no certificate for the name this client sent (SNI): check the host name, or set `sni=`"
        }
        A::NoApplicationProtocol => {
            "it speaks none of the protocols offered with `alpn=`: check `alpn=` against what the server accepts"
        }
        A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied => {
            "it did not accept this client's certificate (or lack of one): check `certificate=` against the CAs the server trusts"
        }
        _ => "check the server's logs for why",
    };
    format!("the server refused the TLS handshake (alert `{alert:?}`): {what}")
}

/// A TLS record starts with a content type (20-23) and version 3.x.
fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [20..=23, 3, ..] | [20..=23])
}

fn not_tls(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    format!(
        "the server does not speak TLS on this port: it answered \"{shown}\"{} (plain text?): connect with `tcp:` instead, or to its TLS port; a protocol that upgrades with STARTTLS needs the plain connection first",
        if bytes.len() >= SHOWN_BYTES {
            "..."
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        // 2002-01-01T00:00:00Z
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_009_843_200));
        assert_eq!(utc(t), "2002-01-01 00:00:00 UTC");
        // 2024-02-29T13:14:15Z
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_709_212_455));
        assert_eq!(utc(t), "2024-02-29 13:14:15 UTC");
    }

    #[test]
    fn alerts_and_incompatibilities_in_words() {
        let io = |e: Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let words = |e: Error| describe(&io(e), &[22, 3, 3]).expect("worded");
        let m = words(Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert!(m.contains("(alert `CertificateRequired`): it requires a client certificate: give one with `certificate=`"), "{m}");
        let m = words(Error::AlertReceived(
            rustls::AlertDescription::UnrecognisedName,
        ));
        assert!(m.contains("set `sni=`"), "{m}");
        let m = words(Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion,
        ));
        assert!(m.contains("no TLS version this client speaks"), "{m}");
        let m = words(Error::PeerIncompatible(
            rustls::PeerIncompatible::NoCipherSuitesInCommon,
        ));
        assert!(m.contains("no cipher suite in common"), "{m}");
        let other = io(Error::DecryptError);
        assert_eq!(describe(&other, &[22, 3, 3]), None);
    }

    #[test]
    fn plain_text_is_escaped() {
        let m = not_tls(b"220 smtp ready\r\n");
        assert!(m.contains(r#""220 smtp ready\r\n""#), "{m}");
        assert!(looks_like_tls(&[22, 3, 3, 0, 10]));
        assert!(!looks_like_tls(b"220"));
    }
}
