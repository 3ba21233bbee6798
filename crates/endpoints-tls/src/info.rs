//! [`TlsInfo`]: what was negotiated, on every TLS connection.

use rustls::pki_types::CertificateDer;

/// The negotiated details of a TLS connection, found in its extensions
/// (`conn.extensions().get::<TlsInfo>()`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: Option<&'static str>,
    /// The cipher suite, such as `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol agreed on, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (SNI), if any.
    pub sni: Option<String>,
    /// The other end's certificate chain, leaf first (empty if it sent none).
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    /// What `c` negotiated; `sni` is the name the client asked for (servers) or sent
    /// (clients). For other crates that run their own handshakes (`endpoints-acme`).
    pub fn from_common(c: &rustls::CommonState, sni: Option<String>) -> Self {
        Self {
            version: c.protocol_version().map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
                _ => "other",
            }),
            cipher_suite: c
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            alpn: c.alpn_protocol().map(<[u8]>::to_vec),
            sni,
            peer_certificates: c
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        }
    }
}
