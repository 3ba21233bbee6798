//! `tls:` and `ssl:` client and server endpoints, with rustls.
//!
//! This crate provides:
//!
//! * the `tls:` client: TLS over happy eyeballs, or over any client description
//!   (`endpoint=`); certificates are always verified (IP hosts against IP SANs, with no SNI);
//!   `connect()` resolves after the handshake;
//! * the `ssl:` client, Twisted's legacy form, verifying by default (Twisted did not
//!   without `hostname=`);
//! * client trust as in Twisted, curl and Go: the platform's store by default
//!   (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured, read with `rustls-native-certs` once per
//!   process), Mozilla's compiled-in roots when it is empty or with `trustRoots=mozilla`; a
//!   self-signed server certificate listed in `trustRoots` is accepted (name and dates still
//!   checked); `pin=sha256/...` public key pins; every refusal says what is wrong and what
//!   to do (issuer and trust set, the certificate's names, expiry date, "does not speak
//!   TLS" with the server's first bytes);
//! * the `ssl:` server (a key and chain) and the `tls:` server (a directory of PEM files,
//!   certbot's `live/` as is, certificate chosen by SNI); both reload their files when they
//!   change, and both can run over any server description (`endpoint=`: unix, systemd,
//!   haproxy);
//! * handshakes off the accept loop, each with a deadline: a client that sends nothing
//!   delays nobody (see `endpoints_util::upgrade`);
//! * [`TlsInfo`] on every connection: version, cipher suite, ALPN, SNI, peer certificates.
//!
//! TLS 1.2 and 1.3 only; no legacy versions, ciphers or finite-field DH (the rustls
//! defaults). Crypto provider: ring.
//!
//! # `tls:` client parameters
//!
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | name or IP; the certificate is verified against it |
//! | `port` | 2 | port | required | |
//! | `timeout` | | seconds | `30` | connect and handshake together |
//! | `bindAddress` | | IP | none | local address, per family |
//! | `certificate`, `privateKey` | | path | none | client certificate chain and key (the key may be in the certificate file) |
//! | `trustRoots` | | path or word | the platform's store | a directory of `*.pem` or a PEM file (a self-signed server certificate listed there is accepted), `mozilla`, `system`, or `none` (with `pin`) |
//! | `pin` | | list | none | `sha256/<base64>` of the server's public key (curl's `--pinnedpubkey`), comma-separated; on top of `trustRoots`, or alone with `trustRoots=none` |
//! | `endpoint` | | description | happy eyeballs | connect through another client description (escape its `:`) |
//! | `alpn` | | list | none | `h2,http/1.1` |
//! | `sni` | | host | `host` | the name sent and verified |
//! | `minVersion` | | `1.2`/`1.3` | `1.2` | |
//!
//! # `ssl:` server parameters
//!
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `port` | 1 | port | required (or `endpoint=`) | |
//! | `privateKey` | 2 | path | `server.pem` | key (and maybe the certificate) |
//! | `certKey` | 3 | path | `privateKey` | certificate chain |
//! | `sslmethod` | 4 | text | TLS 1.2+1.3 | `TLSv1_2_METHOD`: 1.2 only; SSLv2/3, TLSv1, TLSv1_1 are refused |
//! | `interface` | 5 | IP | all IPv4 | |
//! | `backlog` | 6 | integer | `1024` | |
//! | `extraCertChain` | 7 | path | none | intermediates |
//! | `dhParameters` | 8 | path | none | accepted, ignored with one warning |
//! | `clientCA`, `requireClientCert` | | path, 0/1 | none, `1` | client certificates (mTLS) |
//! | `alpn`, `minVersion` | | | | as for the client |
//! | `handshakeTimeout` | | seconds | `10` | per client; `0` is an error |
//! | `maxPendingPerSource` | | integer | `64` | handshakes at once from one IP address; more are closed at once |
//! | `endpoint` | | description | TCP | serve over another server description |
//!
//! The `tls:` server takes `path` (a directory), `port` (`443`), `backlog`, `interface`
//! (`::`) and the same options from `clientCA` on. Files named by a description are read
//! when it is built: a missing or unreadable file is an error naming it.
//!
//! # Server certificates
//!
//! The `tls:` server reads every `*.pem` file below `path`, as Twisted 26's `tls:` server:
//!
//! * each private key pairs with the certificate, in any file, whose public key matches (a
//!   key left over is logged as unused); certificates without a key are the intermediates,
//!   and each chain is built from its leaf by issuer, up to (not including) a self-signed
//!   root. certbot's `/etc/letsencrypt/live` works as it is (`privkey.pem`, `cert.pem`,
//!   `chain.pem`, `fullchain.pem`, symlinks into `../../archive/`);
//! * a client's SNI name is looked up exactly, then with its first label as `*`; a client
//!   that sends no name gets the first certificate (keys in path order); an unknown name
//!   fails the handshake. When two certificates have a name, the newer file serves it;
//! * symlinks are followed, each directory is read once (a link back up is no cycle), and the
//!   walk stops at 16 levels, 100 000 entries, 10 000 files; a file over 1 MiB is skipped.
//!
//! Both servers reload: while a listener is open, its files are looked at every second
//! (paths, sizes, times; a retargeted symlink counts). A change is loaded once it has held
//! for a second, off the handshake path, and swapped in whole: handshakes never see half a
//! set. A set that does not load (a file cut short, a key fitting no certificate, no
//! certificate left) is logged with the file and what to do, and the old set goes on
//! serving. A private key file that its group or others can read is named in a warning.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_core::registry::build_client;
//! use endpoints_tls::TlsInfo;
//!
//! let d = "tls:example.com:443:alpn=h2,http/1.1".parse()?;
//! let conn = build_client(&d)?.connect().await?;
//! let info = conn.extensions().get::<TlsInfo>().ok_or("no TLS info")?;
//! println!("{:?} {:?}", info.version, info.alpn);
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None. The ring crypto provider is always used.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod certdir;
mod client;
mod config;
mod errors;
mod info;
mod params;
mod parse;
mod reload;
mod server;
mod sni;
mod sniff;
mod trust;
mod verify;

pub use client::TlsClientEndpoint;
pub use info::TlsInfo;
pub use params::{SSL_CLIENT_PARAMS, SSL_SERVER_PARAMS, TLS_CLIENT_PARAMS, TLS_SERVER_PARAMS};
pub use server::{DEFAULT_HANDSHAKE_TIMEOUT, TlsServerEndpoint};
