//! The `tls:`/`ssl:` client's certificate verifier: rustls' WebPKI verification against a
//! [`Trust`] set, plus
//!
//! * a server certificate that is itself listed in `trustRoots=` is accepted even when it is
//!   marked CA:TRUE (the usual `openssl req -x509` self-signed certificate), as OpenSSL,
//!   Python and Go do; its host name and validity are still checked, and the handshake
//!   signature is verified as always. Never for the platform or Mozilla sets.
//! * `pin=sha256/<base64>`: the SHA-256 of the leaf's SubjectPublicKeyInfo must match one pin
//!   (curl's `--pinnedpubkey`), in addition to the verification above, or instead of it with
//!   `trustRoots=none`.
//!
//! Every refusal carries a sentence saying what is wrong and what to do ([`errors`]).

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use endpoints_core::ParseError;
use endpoints_core::params::Value;

use crate::errors::{self, CertInfo};
use crate::trust::Trust;

/// A SHA-256 pin of a SubjectPublicKeyInfo.
pub(crate) type Pin = [u8; 32];

/// Parse `sha256/<base64>` (curl's `sha256//<base64>` too).
pub(crate) fn parse_pin(text: &str) -> Result<Pin, String> {
    let Some(b64) = text.strip_prefix("sha256/") else {
        return Err(format!(
            "`{text}` is not a pin: write `sha256/<base64 of the SHA-256 of the public key>` (openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
        ));
    };
    // curl writes `sha256//<base64>`; a 44-character base64 may itself start with `/`.
    let b64 = if b64.len() == 45 {
        b64.strip_prefix('/').unwrap_or(b64)
    } else {
        b64
    };
    let bytes = base64_decode(b64).ok_or_else(|| {
        format!("`{text}`: `{b64}` is not base64 (standard alphabet, `=` padding)")
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "`{text}`: a SHA-256 pin is 32 bytes (44 base64 characters), this is {} bytes",
            bytes.len()
        )
    })
}

fn base64_value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Standard base64 with `=` padding (optional); `None` for anything else.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= base64_value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut acc = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            acc |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (acc >> (18 - 6 * i)) & 63;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `sha256/<base64>` of a certificate's public key, or `None` if it does not parse.
pub(crate) fn pin_of(cert: &CertificateDer<'_>) -> Option<(Pin, String)> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
    let pin = <[u8; 32]>::try_from(digest.as_ref()).ok()?;
    Some((pin, format!("sha256/{}", base64_encode(&pin))))
}

/// The verifier of a client description: `trust` is `trustRoots=` (or `caCertsDir=`), `pin`
/// is `None` for a client type without `pin=` (`ssl:`), `Some(None)` when not given.
pub(crate) fn from_params(
    trust: Option<Value<'_>>,
    pin: Option<Option<Value<'_>>>,
    at: &Value<'_>,
) -> Result<Verifier, ParseError> {
    let trust_v = trust;
    let trust = match &trust_v {
        Some(v) => Trust::from_value(v)?,
        None => Trust::default_set(),
    };
    let pins_allowed = pin.is_some();
    let pins = match pin.flatten() {
        Some(v) => v
            .as_str()
            .split(',')
            .map(|p| parse_pin(p.trim()).map_err(|why| v.invalid(why)))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    if let (None, Some(v)) = (&trust.store, &trust_v)
        && pins.is_empty()
    {
        return Err(v.invalid(if pins_allowed {
            format!(
                "`{}=none` trusts nothing on its own: add `pin=sha256/<base64>` (the server's public key), or drop it to use the platform's trust store",
                v.param()
            )
        } else {
            format!(
                "`{}=none` would trust anything and this client type has no `pin=`: use `tls:...:trustRoots=none:pin=sha256/<base64>`",
                v.param()
            )
        }));
    }
    Verifier::new(trust, pins).map_err(|e| at.invalid(e))
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    trust: Trust,
    pins: Vec<Pin>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// `Err` if nothing would be checked (no trust roots and no pins), or rustls refuses
    /// the roots.
    pub(crate) fn new(trust: Trust, pins: Vec<Pin>) -> Result<Self, String> {
        if trust.store.is_none() && pins.is_empty() {
            return Err(
                "no trust roots and no `pin=`: nothing to verify the server with".to_owned(),
            );
        }
        let provider = crate::config::provider();
        let webpki = match &trust.store {
            Some(store) => Some(
                WebPkiServerVerifier::builder_with_provider(store.clone(), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(Self {
            webpki,
            trust,
            pins,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// A refused certificate: rustls' error (its alert goes to the server) and the words.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, (Error, Option<String>)> {
        if !self.pins.is_empty() {
            match pin_of(end_entity) {
                Some((pin, _)) if self.pins.contains(&pin) => {}
                found => {
                    let words = errors::pin_mismatch(
                        found.map(|(_, text)| text),
                        &self.pins,
                        CertInfo::of(end_entity),
                    );
                    let e =
                        Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure);
                    return Err((e, Some(words)));
                }
            }
        }
        let Some(webpki) = &self.webpki else {
            // `trustRoots=none`: `from_params` and `new` insist on pins, checked above.
            return Ok(ServerCertVerified::assertion());
        };
        let worded = |e: Error| {
            let words = errors::certificate(&e, end_entity, &self.trust);
            (e, words)
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Ok(ok) => Ok(ok),
            // webpki checks the validity period before the CA flag, so a certificate that got
            // this far is in date; its name is checked here.
            Err(e) if errors::is_ca_used_as_end_entity(&e) && self.listed(end_entity) => {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)
                    .map_err(|e| (e, None))?;
                rustls::client::verify_server_name(&parsed, server_name).map_err(worded)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(worded(e)),
        }
    }

    fn listed(&self, end_entity: &CertificateDer<'_>) -> bool {
        self.trust
            .listed
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
    }
}

/// The verifier of one connection: keeps the words of a refusal for its error message.
#[derive(Debug)]
pub(crate) struct Recording {
    verifier: Arc<Verifier>,
    words: Mutex<Option<String>>,
}

impl Recording {
    pub(crate) fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            words: Mutex::new(None),
        }
    }

    /// The words of this connection's refused certificate, if it was refused.
    pub(crate) fn words(&self) -> Option<String> {
        self.words.lock().ok().and_then(|mut w| w.take())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|(e, _)| e)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.verifier
            .check(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|(e, words)| {
                if let Ok(mut slot) = self.words.lock() {
                    *slot = words;
                }
                e
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.verifier.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.verifier.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let text = base64_encode(&bytes);
            assert_eq!(base64_decode(&text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8"), Some(b"fo".to_vec()));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Zm==="), None);
    }

    #[test]
    fn pins_parse_in_both_spellings() {
        let pin = [7u8; 32];
        let b64 = base64_encode(&pin);
        assert_eq!(parse_pin(&format!("sha256/{b64}")), Ok(pin));
        assert_eq!(parse_pin(&format!("sha256//{b64}")), Ok(pin));
        assert!(parse_pin(&b64).is_err());
        assert!(
            parse_pin("sha256/Zm9v")
                .expect_err("short")
                .contains("32 bytes")
        );
        assert!(
            parse_pin("sha256/@@@@")
                .expect_err("bad")
                .contains("not base64")
        );
    }
}
