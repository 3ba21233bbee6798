//! The parameter tables of `tls:` and `ssl:`, client and server, and how the plugins that
//! run over a transport declare it to the registry. The builders are in `parse.rs`.

use endpoints_core::params::{Param, ParamKind};
use endpoints_core::registry::Transport;

const CLIENT_TLS_EXTRAS: [Param; 4] = [
    Param::optional("endpoint", ParamKind::Description)
        .help("connect through this client description instead (host and port then name the server for SNI and verification)"),
    Param::optional("alpn", ParamKind::List).help("protocols to offer, comma-separated (`h2,http/1.1`)"),
    Param::optional("sni", ParamKind::Host).help("server name to send and verify (default: host)"),
    Param::optional("minVersion", ParamKind::Choice(&["1.2", "1.3"])).help("lowest TLS version: 1.2 (default) or 1.3"),
];

/// Parameters of the `tls:` client (Twisted's, then ours).
pub static TLS_CLIENT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("server host name or IP; verified against its certificate"),
    Param::required("port", ParamKind::Port)
        .at(1)
        .help("server port"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("deadline for connect and handshake, in seconds"),
    Param::optional("bindAddress", ParamKind::Host)
        .help("local IP for connection attempts of its family"),
    Param::optional("certificate", ParamKind::Path)
        .help("client certificate chain (PEM), for servers that ask for one"),
    Param::optional("privateKey", ParamKind::Path)
        .help("client key (PEM); default: the key in the certificate file"),
    Param::optional("trustRoots", ParamKind::Path).help(
        "CA certificates: a directory of *.pem or a PEM file (a self-signed server certificate listed there is accepted), `mozilla`, `system`, or `none` (with pin=); default: the platform's store, else Mozilla's roots",
    ),
    Param::optional("pin", ParamKind::List).help(
        "sha256/<base64> of the server's public key, comma-separated for several; checked on top of trustRoots, or alone with trustRoots=none",
    ),
    CLIENT_TLS_EXTRAS[0],
    CLIENT_TLS_EXTRAS[1],
    CLIENT_TLS_EXTRAS[2],
    CLIENT_TLS_EXTRAS[3],
];

/// Parameters of the legacy `ssl:` client (Twisted's, then `endpoint=`, ours, as for `tls:`).
/// It verifies by default.
pub static SSL_CLIENT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("server host name or IP"),
    Param::required("port", ParamKind::Port)
        .at(1)
        .help("server port"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("deadline for connect and handshake, in seconds"),
    Param::optional("bindAddress", ParamKind::Host)
        .help("local IP for connection attempts of its family"),
    Param::optional("certKey", ParamKind::Path).help("client certificate (PEM)"),
    Param::optional("privateKey", ParamKind::Path).help("client key (PEM), used with certKey"),
    Param::optional("caCertsDir", ParamKind::Path).help(
        "directory of *.pem CA certificates (default: the platform's store, else Mozilla's roots)",
    ),
    Param::optional("hostname", ParamKind::Host)
        .help("name to verify the certificate against (default: host)"),
    CLIENT_TLS_EXTRAS[0],
];

const SERVER_TLS_EXTRAS: [Param; 7] = [
    Param::optional("clientCA", ParamKind::Path)
        .help("CA certificates (PEM file or directory) that client certificates must chain to"),
    Param::optional("requireClientCert", ParamKind::Bool).help(
        "with clientCA: 1 (default) refuses clients without a certificate, 0 makes it optional",
    ),
    Param::optional("alpn", ParamKind::List)
        .help("protocols to accept, in preference order (`h2,http/1.1`)"),
    Param::optional("minVersion", ParamKind::Choice(&["1.2", "1.3"]))
        .help("lowest TLS version: 1.2 (default) or 1.3"),
    Param::optional("handshakeTimeout", ParamKind::Duration)
        .default("10")
        .help("deadline for a client's handshake, in seconds"),
    Param::optional("endpoint", ParamKind::Description).help(
        "serve TLS over this server description (unix, systemd, haproxy, ...) instead of TCP",
    ),
    endpoints_util::upgrade::MAX_PENDING_PER_SOURCE_PARAM,
];

/// Parameters of the `ssl:` server (Twisted's positional order, then ours).
pub static SSL_SERVER_PARAMS: &[Param] = &[
    Param::optional("port", ParamKind::Port).at(0).help("TCP port (required unless endpoint= is given)"),
    Param::optional("privateKey", ParamKind::Path).at(1).default("server.pem").help("server key (PEM); may also hold the certificate"),
    Param::optional("certKey", ParamKind::Path).at(2).help("server certificate chain (PEM); default: privateKey's file"),
    Param::optional("sslmethod", ParamKind::Text)
        .at(3)
        .help("TLS_METHOD/SSLv23_METHOD: TLS 1.2+1.3; TLSv1_2_METHOD: 1.2 only; older methods are refused"),
    Param::optional("interface", ParamKind::Host).at(4).default("").help("IP address to bind (empty: every IPv4 address)"),
    Param::optional("backlog", ParamKind::UInt).at(5).default("1024").help("accept queue length"),
    Param::optional("extraCertChain", ParamKind::Path).at(6).help("PEM file of intermediate certificates to send"),
    Param::optional("dhParameters", ParamKind::Path).at(7).help("accepted and ignored: rustls uses ECDHE only"),
    SERVER_TLS_EXTRAS[0],
    SERVER_TLS_EXTRAS[1],
    SERVER_TLS_EXTRAS[2],
    SERVER_TLS_EXTRAS[3],
    SERVER_TLS_EXTRAS[4],
    SERVER_TLS_EXTRAS[5],
    SERVER_TLS_EXTRAS[6],
];

/// Parameters of the `tls:` server (Twisted 26's), then ours.
pub static TLS_SERVER_PARAMS: &[Param] = &[
    Param::required("path", ParamKind::Path)
        .at(0)
        .help("directory of *.pem files (keys, certificates, intermediates; certbot's live/ works); certificates chosen by SNI, reloaded when the files change"),
    Param::optional("port", ParamKind::Port)
        .at(1)
        .default("443")
        .help("TCP port"),
    Param::optional("backlog", ParamKind::UInt)
        .at(2)
        .default("1024")
        .help("accept queue length"),
    Param::optional("interface", ParamKind::Host)
        .at(3)
        .default("::")
        .help("IP address to bind (default: every address, dual stack)"),
    SERVER_TLS_EXTRAS[0],
    SERVER_TLS_EXTRAS[1],
    SERVER_TLS_EXTRAS[2],
    SERVER_TLS_EXTRAS[3],
    SERVER_TLS_EXTRAS[4],
    SERVER_TLS_EXTRAS[5],
    SERVER_TLS_EXTRAS[6],
];

/// How the `tls:` and `ssl:` clients carry their transport: `endpoint=`, by default happy
/// eyeballs to `host` and `port` from `bindAddress` (which only the transport reads).
/// Wrappers that go beneath TLS (`haproxy:tls:`, `haproxy:ssl:`) read this from the registry.
pub(crate) const CLIENT_TRANSPORT: Transport = Transport::new(
    "endpoint",
    "hostname",
    &["host", "port", "bindAddress"],
    &["bindAddress"],
);

/// How the `ssl:` and `tls:` servers carry their transport: `endpoint=`, by default TCP on
/// `port`, `interface` and `backlog` (which only the transport reads).
pub(crate) const SERVER_TRANSPORT: Transport = Transport::new(
    "endpoint",
    "tcp",
    &["port", "interface", "backlog"],
    &["port", "interface", "backlog"],
);
