//! `acme:` server wrapper: TLS over any server endpoint with a certificate obtained and
//! renewed by ACME (Let's Encrypt, or any RFC 8555 CA).
//!
//! This crate provides:
//!
//! * the `acme:` server type, wrapping any server description
//!   (`acme:domains=example.com:cache=/var/lib/app/acme:tcp:443`);
//! * the TLS-ALPN-01 challenge (RFC 8737) answered on the listener's own socket: a
//!   ClientHello offering ALPN `acme-tls/1` for a name with a pending challenge gets the
//!   challenge certificate and is then closed (it never reaches `accept()`); every other
//!   handshake is an ordinary TLS 1.2/1.3 one with the current certificate, as the `ssl:`
//!   server does (`alpn`, `minVersion`, `clientCA`/`requireClientCert`, handshakes off the
//!   accept loop with a deadline, [`endpoints_tls::TlsInfo`] on every connection). No second
//!   port: it works behind `systemd:`, `haproxy:` and `tcp6:` alike. The CA must reach port
//!   443 of every name, so the listener must be on 443, or forwarded from it. Validations do
//!   not depend on the application: the accept loop runs in a task of its own, and up to 32
//!   finished connections wait for `accept()`; with those waiting it pauses, except while a
//!   challenge is pending (then a connection that finds no room is closed);
//! * a cache under `cache=`: the account key (`account.json`) and the certificates
//!   (`<first name>-<hash>.pem`: a line listing the names, the key, then the chain; named by
//!   a hash of the sorted list, so a reordered `domains=` is the same certificate and any
//!   number of names fits a file name) in a subdirectory per directory URL, so staging and
//!   production never mix; directories mode 0700, files mode 0600, written atomically
//!   (each write to a temporary file of its own, on the blocking pool). The cached
//!   certificate is served as soon as the listener opens, without any network access;
//! * renewal in the background two thirds into the certificate's lifetime (day 60 of 90),
//!   less a random part of up to a twentieth of it (servers started together do not renew
//!   together), never before its `notBefore` (a clock behind the CA's), swapped in for new handshakes without touching open connections; a failed order is
//!   logged (`tracing`, warning) and retried after `retry=` seconds, doubling up to 6 hours,
//!   while the last good certificate goes on serving. A new certificate that is already due
//!   on arrival (this machine's clock ahead of the CA's) is served, and the next order waits
//!   `retry=`, doubling each time in a row up to 6 hours, with a warning. Every step is bounded (30 s a request
//!   to the ACME server, a poll's two minutes plus one request, ten minutes a whole attempt):
//!   a server that accepts connections and then says nothing is a failure like any other. [`AcmeServerEndpoint::status`] shows
//!   where things stand;
//! * one certificate, one set of challenges and one renewal task per cache directory,
//!   directory URL and names in the process: two listeners of the same names (dual stack,
//!   two systemd sockets) make one order, and either answers the validations;
//! * `endpoints check --server 'acme:...'` validates every parameter without network access
//!   or file writes (`trustRoots=` and `clientCA=` files are read).
//!
//! Creating an account agrees to the CA's terms of service (Let's Encrypt's subscriber
//! agreement), as `certbot --agree-tos` does.
//!
//! The ACME protocol is the `instant-acme` crate's (with ring and rustls, no OpenSSL); the
//! challenge certificate is made with `rcgen`. `rustls-acme` does all of this too, but owns
//! the accept loop and the cache format and brings a second HTTP stack: `instant-acme` leaves
//! the TLS side to us, so the challenge runs inside our handshake path.
//!
//! # Grammar
//!
//! Options come first, then the inner description: `acme:option=value:...:<inner>`.
//!
//! <!-- params: acme server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `domains` |  | list | required | the names the certificate covers, comma-separated (no wildcards, no IP addresses) |
//! | `cache` |  | path | required | directory for the account key and certificates (created with mode 0700) |
//! | `contact` |  | list |  | account contacts, comma-separated: `mailto\:ops@example.com` (escape the `:`) |
//! | `directory` |  | text | `letsencrypt` | ACME directory: an https:// URL, `letsencrypt` (production) or `staging` |
//! | `trustRoots` |  | path |  | a PEM file whose first certificate is the CA of the ACME server's own HTTPS certificate (default: the platform's trust) |
//! | `alpn` |  | list |  | ALPN protocols offered, `h2,http/1.1` |
//! | `minVersion` |  | one of 1.2\|1.3 | `1.2` | lowest TLS version |
//! | `clientCA` |  | path |  | PEM file of CAs for client certificates (mTLS) |
//! | `requireClientCert` |  | 0/1 | `1` | with `clientCA`: refuse clients without a certificate |
//! | `handshakeTimeout` |  | seconds | `10` | seconds for a client to complete its handshake |
//! | `retry` |  | seconds | `60` | seconds before retrying a failed order; doubled after each failure, up to 6 hours |
//! | `maxPendingPerSource` |  | integer |  | upgrades (header read, handshake) in progress at once from one IP address once the pool is half full, 1-1024 (default 64); more wait (as many, within the deadline), then are closed |
//! <!-- /params -->
//!
//! ```text
//! acme:domains=example.com,www.example.com:cache=/var/lib/app/acme:contact=mailto\:ops@example.com:tcp:443
//! acme:domains=example.com:cache=acme:directory=staging:tcp6:443
//! acme:domains=example.com:cache=acme:alpn=h2,http/1.1:systemd:name=https
//! ```
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_core::registry::build_server;
//!
//! let d = "acme:domains=example.com:cache=/var/lib/app/acme:tcp:443".parse()?;
//! let mut listener = build_server(&d)?.listen().await?;
//! loop {
//!     let conn = listener.accept().await?;
//!     tokio::spawn(async move { /* serve HTTPS on conn */ drop(conn) });
//! }
//! # }
//! ```
//!
//! # Crate feature flags
//!
//! None. The ring crypto provider is always used.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod manager;
mod parse;
mod server;

use std::sync::{Arc, OnceLock};

pub use manager::{AcmeStatus, CertificateStatus};
pub use parse::{LETS_ENCRYPT, LETS_ENCRYPT_STAGING, SERVER_PARAMS, build};
pub use server::AcmeServerEndpoint;

/// The crypto provider (ring), as `endpoints-tls` uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
