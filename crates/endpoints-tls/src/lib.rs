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
//! `tls:` client:
//!
//! <!-- params: tls client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | server host name or IP; verified against its certificate |
//! | `port` | 2 | port | required | server port |
//! | `timeout` |  | seconds | `30` | deadline for connect and handshake, in seconds |
//! | `bindAddress` |  | host |  | local IP for connection attempts of its family |
//! | `certificate` |  | path |  | client certificate chain (PEM), for servers that ask for one |
//! | `privateKey` |  | path |  | client key (PEM); default: the key in the certificate file |
//! | `trustRoots` |  | path |  | CA certificates: a directory of \*.pem or a PEM file (a self-signed server certificate listed there is accepted), `mozilla`, `system`, or `none` (with pin=); default: the platform's store, else Mozilla's roots |
//! | `pin` |  | list |  | sha256/&lt;base64&gt; of the server's public key, comma-separated for several; checked on top of trustRoots, or alone with trustRoots=none |
//! | `endpoint` |  | description |  | connect through this client description instead (host and port then name the server for SNI and verification) |
//! | `alpn` |  | list |  | protocols to offer, comma-separated (`h2,http/1.1`) |
//! | `sni` |  | host |  | server name to send and verify (default: host) |
//! | `minVersion` |  | one of 1.2\|1.3 |  | lowest TLS version: 1.2 (default) or 1.3 |
//! <!-- /params -->
//!
//! `ssl:` client:
//!
//! <!-- params: ssl client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | server host name or IP |
//! | `port` | 2 | port | required | server port |
//! | `timeout` |  | seconds | `30` | deadline for connect and handshake, in seconds |
//! | `bindAddress` |  | host |  | local IP for connection attempts of its family |
//! | `certKey` |  | path |  | client certificate (PEM) |
//! | `privateKey` |  | path |  | client key (PEM), used with certKey |
//! | `caCertsDir` |  | path |  | directory of \*.pem CA certificates (default: the platform's store, else Mozilla's roots) |
//! | `hostname` |  | host |  | name to verify the certificate against (default: host) |
//! | `endpoint` |  | description |  | connect through this client description instead (host and port then name the server for SNI and verification) |
//! <!-- /params -->
//!
//! # `ssl:` server parameters
//!
//! `ssl:` server:
//!
//! <!-- params: ssl server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `port` | 1 | port |  | TCP port (required unless endpoint= is given) |
//! | `privateKey` | 2 | path | `server.pem` | server key (PEM); may also hold the certificate |
//! | `certKey` | 3 | path |  | server certificate chain (PEM); default: privateKey's file |
//! | `sslmethod` | 4 | text |  | TLS\_METHOD/SSLv23\_METHOD: TLS 1.2+1.3; TLSv1\_2\_METHOD: 1.2 only; older methods are refused |
//! | `interface` | 5 | host | `""` | IP address to bind (empty: every IPv4 address) |
//! | `backlog` | 6 | integer | `1024` | accept queue length |
//! | `extraCertChain` | 7 | path |  | PEM file of intermediate certificates to send |
//! | `dhParameters` | 8 | path |  | accepted and ignored: rustls uses ECDHE only |
//! | `clientCA` |  | path |  | CA certificates (PEM file or directory) that client certificates must chain to |
//! | `requireClientCert` |  | 0/1 |  | with clientCA: 1 (default) refuses clients without a certificate, 0 makes it optional |
//! | `alpn` |  | list |  | protocols to accept, in preference order (`h2,http/1.1`) |
//! | `minVersion` |  | one of 1.2\|1.3 |  | lowest TLS version: 1.2 (default) or 1.3 |
//! | `handshakeTimeout` |  | seconds | `10` | deadline for a client's handshake, in seconds |
//! | `endpoint` |  | description |  | serve TLS over this server description (unix, systemd, haproxy, ...) instead of TCP |
//! | `maxPendingPerSource` |  | integer |  | upgrades (header read, handshake) in progress at once from one IP address once the pool is half full, 1-1024 (default 64); more wait (as many, within the deadline), then are closed |
//! <!-- /params -->
//!
//! `tls:` server:
//!
//! <!-- params: tls server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `path` | 1 | path | required | directory of \*.pem files (keys, certificates, intermediates; certbot's live/ works); certificates chosen by SNI, reloaded when the files change |
//! | `port` | 2 | port | `443` | TCP port |
//! | `backlog` | 3 | integer | `1024` | accept queue length |
//! | `interface` | 4 | host | `::` | IP address to bind (default: every address, dual stack) |
//! | `clientCA` |  | path |  | CA certificates (PEM file or directory) that client certificates must chain to |
//! | `requireClientCert` |  | 0/1 |  | with clientCA: 1 (default) refuses clients without a certificate, 0 makes it optional |
//! | `alpn` |  | list |  | protocols to accept, in preference order (`h2,http/1.1`) |
//! | `minVersion` |  | one of 1.2\|1.3 |  | lowest TLS version: 1.2 (default) or 1.3 |
//! | `handshakeTimeout` |  | seconds | `10` | deadline for a client's handshake, in seconds |
//! | `endpoint` |  | description |  | serve TLS over this server description (unix, systemd, haproxy, ...) instead of TCP |
//! | `maxPendingPerSource` |  | integer |  | upgrades (header read, handshake) in progress at once from one IP address once the pool is half full, 1-1024 (default 64); more wait (as many, within the deadline), then are closed |
//! <!-- /params -->
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
