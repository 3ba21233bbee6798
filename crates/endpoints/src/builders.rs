//! Endpoints built in code: typed builders whose `Display` is the description they stand for
//! (the first way of Twisted's howto: `TCP4ServerEndpoint(reactor, 8080)`; strings are the
//! flexible second way).
//!
//! Each builder keeps typed fields; [`description`](ServerBuilder::description) derives a
//! [`Description`] from them, `Display` shows it, and `build()` builds the endpoint from that
//! description object (no text is parsed). Parsing `builder.to_string()` gives the same
//! description and an equal endpoint (`tests/builders.rs` checks this over random builders).
//!
//! | in code | as text |
//! |---|---|
//! | `TcpServer::new(8080).interface(ip)` | `tcp:port=8080:interface=127.0.0.1:...` |
//! | `Tcp6Server::new(8443).interface(Ipv6Addr::LOCALHOST.into())` | `tcp6:8443:interface=\:\:1` |
//! | `TcpClient::new("db", 5432)` / `Hostname::new("db", 5432)` | `tcp:host=db:port=5432` / `hostname:db:5432` |
//! | `UnixServer::new("/run/app.sock").mode(0o660)` | `unix:address=/run/app.sock:mode=660` |
//! | `UnixClient::new("/run/app.sock")` | `unix:path=/run/app.sock` |
//! | `SystemdServer::named(SocketDomain::Inet6, "web")` / `SystemdServer::index(SocketDomain::Unix, 0)` | `systemd:domain=INET6:name=web` / `systemd:UNIX:0` |
//! | `StdioServer::new()` | `stdio` |
//! | `ExecClient::new("ssh").args(["-W", "db:5432", "bastion"]).grace(Duration::from_secs(2))` | `exec:ssh:-W:db\:5432:bastion:grace=2` |
//! | `proxy::wrap_server(TcpServer::new(8080)).trusted(["10.0.0.0/8"])` | `haproxy:trusted=10.0.0.0/8:tcp:8080` |
//! | `proxy::wrap_client(TcpClient::new("app", 8080)).version(proxy::Version::V2)` | `haproxy:version=2:tcp:app:8080` |
//! | `tls::client(TlsOptions::new("example.com").port(443))` | `tls:example.com:443` |
//! | `tls::wrap_client(TlsOptions::new("db.internal").trust_roots("ca.pem"), UnixClient::new(p))` | `tls:host=db.internal:port=443:trustRoots=ca.pem:endpoint=unix\:path=...` |
//! | `tls::SslClient::new("example.com", 443).ca_certs_dir("/etc/ssl/ca")` | `ssl:example.com:443:caCertsDir=/etc/ssl/ca` |
//! | `tls::server(TlsServerOptions::new("key.pem"), 8443)` | `ssl:8443:privateKey=key.pem` |
//! | `tls::server(TlsServerOptions::cert_dir("/etc/letsencrypt/live"), 443)` | `tls:/etc/letsencrypt/live:443` |
//! | `tls::wrap_server(TlsServerOptions::new("key.pem"), UnixServer::new(p))` | `ssl:privateKey=key.pem:endpoint=unix\:address=...` |
//! | `SshClient::new("bastion", SshTarget::forward("db", 5432)).username("deploy")` | `ssh:bastion:forward=db\:5432:username=deploy` |
//! | `SshServer::new("bastion", "127.0.0.1:8080").known_hosts("/etc/kh")` | `ssh:bastion:listen=127.0.0.1\:8080:knownHosts=/etc/kh` |
//! | `ws::client(WsOptions::new("example.com").port(8080).path("/t"))` | `ws:host=example.com:port=8080:path=/t:...` |
//! | `ws::secure_client(WsOptions::new("example.com").trust_roots("ca.pem"))` | `wss:host=example.com:port=443:...:trustRoots=ca.pem` |
//! | `ws::wrap_server(TcpServer::new(8080)).path("/t").origins(["https://app.example"])` | `ws:path=/t:origins=https\://app.example:...:tcp:8080` |
//!
//! ```
//! # #[cfg(all(feature = "tcp", feature = "proxy"))] {
//! use endpoints::builders::{ServerBuilder, TcpServer, proxy};
//! use std::net::Ipv4Addr;
//!
//! let in_code = proxy::wrap_server(TcpServer::new(8080).interface(Ipv4Addr::LOCALHOST.into()))
//!     .trusted(["127.0.0.1"]);
//! let as_text = endpoints::server(&in_code.to_string()).expect("the same description");
//! assert_eq!(in_code.build().expect("builds").to_string(), as_text.to_string());
//! # }
//! ```
//!
//! Written by hand, the text gives the same endpoint as the builder:
//!
//! ```
//! # #[cfg(all(feature = "tcp6", feature = "proxy", feature = "stdio"))] {
//! use endpoints::builders::{
//!     ClientBuilder, ServerBuilder, StdioServer, Tcp6Server, TcpClient, proxy,
//! };
//! use std::net::Ipv6Addr;
//!
//! let in_code = Tcp6Server::new(8443).interface(Ipv6Addr::LOCALHOST.into()).v6only(true);
//! let as_text = endpoints::server(r"tcp6:8443:interface=\:\:1:v6only=1").expect("builds");
//! assert_eq!(in_code.build().expect("builds").to_string(), as_text.to_string());
//!
//! let in_code = proxy::wrap_client(TcpClient::new("app", 8080)).version(proxy::Version::V2);
//! assert_eq!(in_code.to_string(), "haproxy:version=2:tcp:host=app:port=8080");
//! let as_text = endpoints::client("haproxy:version=2:tcp:app:8080").expect("builds");
//! assert_eq!(in_code.build().expect("builds").to_string(), as_text.to_string());
//!
//! assert_eq!(StdioServer::new().build().expect("builds").to_string(), "stdio");
//! # }
//! ```
//!
//! `systemd:` builders look their descriptor up when built, as text does: call
//! `endpoints::systemd::init()` first. `haproxy:` around an `ssl:` client is
//! refused (the header would follow the handshake); wrap a `tls:` client instead.

use std::fmt;
#[cfg(any(feature = "tcp", feature = "hostname"))]
use std::net::IpAddr;
use std::time::Duration;

use endpoints_core::{ClientEndpoint, Description, ParseError, ServerEndpoint, registry};

/// A typed server description: `Display` is [`description`](Self::description).
pub trait ServerBuilder: fmt::Display {
    /// The description these settings stand for.
    fn description(&self) -> Description;

    /// Build the endpoint (from the description object: nothing is parsed; files it names
    /// are read now, as for text).
    fn build(&self) -> Result<Box<dyn ServerEndpoint>, ParseError> {
        registry::build_server(&self.description())
    }
}

/// A typed client description: `Display` is [`description`](Self::description).
pub trait ClientBuilder: fmt::Display {
    /// The description these settings stand for.
    fn description(&self) -> Description;

    /// Build the endpoint (from the description object: nothing is parsed).
    fn build(&self) -> Result<Box<dyn ClientEndpoint>, ParseError> {
        registry::build_client(&self.description())
    }
}

/// A duration as a description value: whole milliseconds (`1500ms`), or seconds when whole.
#[allow(dead_code)] // unused when no transport with a duration is enabled
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A duration rounded down to what [`seconds`] writes (whole milliseconds).
#[allow(dead_code)]
fn millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[allow(dead_code)]
fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

#[allow(unused_macros)]
macro_rules! display_via_description {
    ($trait:ident: $($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                $trait::description(self).fmt(f)
            }
        }
    )*};
}

macro_rules! tcp_server_type {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $everywhere:literal) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            port: u16,
            interface: Option<IpAddr>,
            backlog: u32,
            reuseport: bool,
            v6only: Option<bool>,
            nodelay: bool,
            keepalive: Option<Duration>,
            recvbuf: Option<u32>,
            sendbuf: Option<u32>,
        }

        #[cfg(feature = $feature)]
        impl $name {
            #[doc = concat!("Listen on `port` (0: any free port) on ", $everywhere, ", backlog 1024.")]
            pub fn new(port: u16) -> Self {
                Self {
                    port,
                    interface: None,
                    backlog: endpoints_tcp::DEFAULT_BACKLOG,
                    reuseport: false,
                    v6only: None,
                    nodelay: false,
                    keepalive: None,
                    recvbuf: None,
                    sendbuf: None,
                }
            }
            /// The address to bind.
            pub fn interface(mut self, ip: IpAddr) -> Self {
                self.interface = Some(ip);
                self
            }
            /// Accept queue length.
            pub fn backlog(mut self, n: u32) -> Self {
                self.backlog = n;
                self
            }
            /// `SO_REUSEPORT`.
            pub fn reuseport(mut self, on: bool) -> Self {
                self.reuseport = on;
                self
            }
            /// `IPV6_V6ONLY` (an IPv6 interface only: `build()` reports `true` otherwise).
            pub fn v6only(mut self, on: bool) -> Self {
                self.v6only = Some(on);
                self
            }
            /// `TCP_NODELAY` on accepted connections.
            pub fn nodelay(mut self, on: bool) -> Self {
                self.nodelay = on;
                self
            }
            /// Keepalive idle time on accepted connections (whole milliseconds).
            pub fn keepalive(mut self, idle: Duration) -> Self {
                self.keepalive = Some(millis(idle));
                self
            }
            /// `SO_RCVBUF`.
            pub fn recvbuf(mut self, bytes: u32) -> Self {
                self.recvbuf = Some(bytes);
                self
            }
            /// `SO_SNDBUF`.
            pub fn sendbuf(mut self, bytes: u32) -> Self {
                self.sendbuf = Some(bytes);
                self
            }

            /// The socket options after `reuseport`, as both prefixes write them.
            fn options(&self, d: &mut Description, v6only_default: Option<bool>) {
                d.set("reuseport", flag(self.reuseport));
                if let Some(v) = self.v6only.or(v6only_default) {
                    d.set("v6only", flag(v));
                }
                d.set("nodelay", flag(self.nodelay));
                if let Some(k) = self.keepalive {
                    d.set("keepalive", seconds(k));
                }
                if let Some(n) = self.recvbuf {
                    d.set("recvbuf", n.to_string());
                }
                if let Some(n) = self.sendbuf {
                    d.set("sendbuf", n.to_string());
                }
            }
        }
    };
}

tcp_server_type!(
    /// `tcp:` server: `TcpServer::new(8080).interface(ip)`.
    TcpServer,
    "tcp",
    "every IPv4 address"
);
tcp_server_type!(
    /// `tcp6:` server: `Tcp6Server::new(8443).interface(ip)` (Twisted's
    /// `TCP6ServerEndpoint`; dual stack on `::` unless [`v6only`](Self::v6only)).
    Tcp6Server,
    "tcp6",
    "every IPv6 address (and IPv4: dual stack)"
);

#[cfg(feature = "tcp")]
impl ServerBuilder for TcpServer {
    fn description(&self) -> Description {
        let mut d = Description::new("tcp")
            .with("port", self.port.to_string())
            .with(
                "interface",
                self.interface.map(|i| i.to_string()).unwrap_or_default(),
            )
            .with("backlog", self.backlog.to_string());
        self.options(&mut d, None);
        d
    }
}

#[cfg(feature = "tcp6")]
impl ServerBuilder for Tcp6Server {
    fn description(&self) -> Description {
        let any = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
        let mut d = Description::new("tcp6")
            .with("port", self.port.to_string())
            .with("backlog", self.backlog.to_string())
            .with("interface", self.interface.unwrap_or(any).to_string());
        // `tcp6:` always sets it (default 0), whatever `net.ipv6.bindv6only` says.
        self.options(&mut d, Some(false));
        d
    }
}

macro_rules! host_port_client {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $feature:literal) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            host: String,
            port: u16,
            timeout: Option<Duration>,
            attempt_delay: Option<Duration>,
            attempt_timeout: Option<Duration>,
            bind_address: Option<IpAddr>,
        }

        #[cfg(feature = $feature)]
        impl $name {
            /// Connect to `host` (a name or an IP address) on `port`, with happy eyeballs.
            pub fn new(host: impl Into<String>, port: u16) -> Self {
                Self {
                    host: host.into(),
                    port,
                    timeout: None,
                    attempt_delay: None,
                    attempt_timeout: None,
                    bind_address: None,
                }
            }
            /// Overall deadline (default 30 s; zero: none). Whole milliseconds.
            pub fn timeout(mut self, t: Duration) -> Self {
                self.timeout = Some(millis(t));
                self
            }
            /// Delay between staggered attempts (default 250 ms). Whole milliseconds.
            pub fn attempt_delay(mut self, t: Duration) -> Self {
                self.attempt_delay = Some(millis(t));
                self
            }
            /// Deadline of each attempt. Whole milliseconds.
            pub fn attempt_timeout(mut self, t: Duration) -> Self {
                self.attempt_timeout = Some(millis(t));
                self
            }
            /// Local address for attempts of its family.
            pub fn bind_address(mut self, ip: IpAddr) -> Self {
                self.bind_address = Some(ip);
                self
            }
        }

        #[cfg(feature = $feature)]
        impl ClientBuilder for $name {
            fn description(&self) -> Description {
                let mut d = Description::new($prefix)
                    .with("host", self.host.clone())
                    .with("port", self.port.to_string());
                for (key, value) in [
                    ("timeout", self.timeout),
                    ("attemptDelay", self.attempt_delay),
                    ("attemptTimeout", self.attempt_timeout),
                ] {
                    if let Some(v) = value {
                        d.set(key, seconds(v));
                    }
                }
                if let Some(ip) = self.bind_address {
                    d.set("bindAddress", ip.to_string());
                }
                d
            }
        }

        #[cfg(feature = $feature)]
        display_via_description!(ClientBuilder: $name);
    };
}

host_port_client!(
    /// `tcp:` client: `TcpClient::new("db.internal", 5432)`.
    TcpClient,
    "tcp",
    "tcp"
);
host_port_client!(
    /// `hostname:` client: `Hostname::new("db.internal", 5432)` (Twisted's `HostnameEndpoint`).
    Hostname,
    "hostname",
    "hostname"
);

/// `unix:` server: `UnixServer::new("/run/app.sock").mode(0o660)`.
#[cfg(feature = "unix")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixServer {
    address: String,
    mode: u32,
    backlog: u32,
    lockfile: bool,
}

#[cfg(feature = "unix")]
impl UnixServer {
    /// Listen on the socket file `path`: mode 666, backlog 1024, lock file on.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            address: path.into().display().to_string(),
            mode: 0o666,
            backlog: 1024,
            lockfile: true,
        }
    }
    /// Permission bits of the socket file (`0o660`).
    pub fn mode(mut self, bits: u32) -> Self {
        self.mode = bits & 0o7777;
        self
    }
    /// Accept queue length.
    pub fn backlog(mut self, n: u32) -> Self {
        self.backlog = n;
        self
    }
    /// Hold `<path>.lock` while listening (and take over a stale socket).
    pub fn lockfile(mut self, on: bool) -> Self {
        self.lockfile = on;
        self
    }
}

#[cfg(feature = "unix")]
impl ServerBuilder for UnixServer {
    fn description(&self) -> Description {
        Description::new("unix")
            .with("address", self.address.clone())
            .with("mode", format!("{:o}", self.mode))
            .with("backlog", self.backlog.to_string())
            .with("lockfile", flag(self.lockfile))
    }
}

/// `unix:` client: `UnixClient::new("/run/app.sock")`.
#[cfg(feature = "unix")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixClient {
    path: String,
    timeout: Option<Duration>,
}

#[cfg(feature = "unix")]
impl UnixClient {
    /// Connect to the socket file `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            path: path.into().display().to_string(),
            timeout: None,
        }
    }
    /// Connect deadline (default 30 s). Whole milliseconds.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(millis(t));
        self
    }
}

#[cfg(feature = "unix")]
impl ClientBuilder for UnixClient {
    fn description(&self) -> Description {
        let mut d = Description::new("unix").with("path", self.path.clone());
        if let Some(t) = self.timeout {
            d.set("timeout", seconds(t));
        }
        d
    }
}

/// What an [`ExecClient`]'s child does with its stderr (`endpoints::exec::Stderr`).
#[cfg(feature = "exec")]
pub use endpoints_exec::Stderr as ExecStderr;

/// `exec:` client: `ExecClient::new("socat").args(["-", "TCP:db:5432"])`, a program started for
/// each connection (no shell: name one, `ExecClient::new("sh").args(["-c", script])`).
#[cfg(feature = "exec")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecClient {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unset_env: Vec<String>,
    clear_env: bool,
    cwd: Option<String>,
    stderr: Option<ExecStderr>,
    grace: Option<Duration>,
}

#[cfg(feature = "exec")]
impl ExecClient {
    /// Run `program` (a path, or a name searched in PATH).
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            unset_env: Vec::new(),
            clear_env: false,
            cwd: None,
            stderr: None,
            grace: None,
        }
    }
    /// One more argument, as given (escaped in the description).
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// More arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    /// Set `name` to `value` in the child's environment (`env=NAME=value`).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
    /// Remove `name` from the inherited environment (`unsetEnv=`).
    pub fn unset_env(mut self, name: impl Into<String>) -> Self {
        self.unset_env.push(name.into());
        self
    }
    /// Do not inherit this process's environment (`clearEnv=1`).
    pub fn clear_env(mut self, clear: bool) -> Self {
        self.clear_env = clear;
        self
    }
    /// The child's working directory (`cwd=`).
    pub fn cwd(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.cwd = Some(dir.into().display().to_string());
        self
    }
    /// What happens to its stderr (default: logged at WARN).
    pub fn stderr(mut self, s: ExecStderr) -> Self {
        self.stderr = Some(s);
        self
    }
    /// Between SIGTERM and SIGKILL on close (default 5 s). Whole milliseconds.
    pub fn grace(mut self, t: Duration) -> Self {
        self.grace = Some(millis(t));
        self
    }
}

#[cfg(feature = "exec")]
impl ClientBuilder for ExecClient {
    fn description(&self) -> Description {
        use endpoints_core::Field;
        let mut d = Description::new("exec");
        d.push(Field::positional(self.program.clone()));
        for a in &self.args {
            d.push(Field::positional(a.clone()));
        }
        for (n, v) in &self.env {
            d.push(Field::keyword("env", format!("{n}={v}")));
        }
        if !self.unset_env.is_empty() {
            d.push(Field::keyword("unsetEnv", self.unset_env.join(",")));
        }
        if self.clear_env {
            d.push(Field::keyword("clearEnv", "1"));
        }
        if let Some(c) = &self.cwd {
            d.push(Field::keyword("cwd", c.clone()));
        }
        match self.stderr {
            Some(ExecStderr::Inherit) => d.push(Field::keyword("stderr", "inherit")),
            Some(ExecStderr::Drop) => d.push(Field::keyword("stderr", "drop")),
            Some(_) => d.push(Field::keyword("stderr", "log")),
            None => &mut d,
        };
        if let Some(g) = self.grace {
            d.push(Field::keyword("grace", seconds(g)));
        }
        d
    }
}

/// What an [`SshClient`]'s connections are on the SSH server's side.
#[cfg(feature = "ssh")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SshTarget {
    /// `forward=HOST:PORT` (`direct-tcpip`, as `ssh -W`).
    Forward(String, u16),
    /// `forward=/path`: a unix socket on the server (`direct-streamlocal@openssh.com`).
    UnixSocket(String),
    /// `command=`: the command's stdin and stdout.
    Command(String),
}

#[cfg(feature = "ssh")]
impl SshTarget {
    /// A forward to `host`:`port` from the server.
    pub fn forward(host: impl Into<String>, port: u16) -> Self {
        Self::Forward(host.into(), port)
    }
}

/// The options both `ssh:` sides take: user, keys, trust, transport, bounds.
#[cfg(feature = "ssh")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SshCommon {
    port: Option<u16>,
    username: Option<String>,
    keys: Vec<String>,
    passphrase_file: Option<String>,
    passphrase_env: Option<String>,
    agent: Option<String>,
    known_hosts: Option<String>,
    fingerprint: Option<String>,
    endpoint: Option<String>,
    timeout: Option<Duration>,
    keepalive: Option<Duration>,
}

#[cfg(feature = "ssh")]
impl SshCommon {
    fn push(&self, d: &mut Description) {
        use endpoints_core::Field;
        if let Some(p) = self.port {
            d.push(Field::keyword("port", p.to_string()));
        }
        let mut kw = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                d.push(Field::keyword(k, v.clone()));
            }
        };
        kw("username", &self.username);
        kw("keys", &Some(self.keys.join(",")).filter(|k| !k.is_empty()));
        kw("passphraseFile", &self.passphrase_file);
        kw("passphraseEnv", &self.passphrase_env);
        kw("agent", &self.agent);
        kw("knownHosts", &self.known_hosts);
        kw("fingerprint", &self.fingerprint);
        kw("endpoint", &self.endpoint);
        kw("timeout", &self.timeout.map(seconds));
        kw("keepalive", &self.keepalive.map(seconds));
    }
}

#[cfg(feature = "ssh")]
macro_rules! ssh_common_setters {
    () => {
        /// The SSH server's port (default 22).
        pub fn port(mut self, p: u16) -> Self {
            self.common.port = Some(p);
            self
        }
        /// The user on the server (default: `$USER`).
        pub fn username(mut self, u: impl Into<String>) -> Self {
            self.common.username = Some(u.into());
            self
        }
        /// One more private key file (OpenSSH format).
        pub fn key(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.common.keys.push(path.into().display().to_string());
            self
        }
        /// The passphrase of encrypted keys, from this file.
        pub fn passphrase_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.common.passphrase_file = Some(path.into().display().to_string());
            self
        }
        /// The passphrase of encrypted keys, from the environment variable with this name.
        pub fn passphrase_env(mut self, name: impl Into<String>) -> Self {
            self.common.passphrase_env = Some(name.into());
            self
        }
        /// No agent (`agent=no`).
        pub fn no_agent(mut self) -> Self {
            self.common.agent = Some("no".into());
            self
        }
        /// The agent at this socket (`agent=PATH`).
        pub fn agent_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.common.agent = Some(path.into().display().to_string());
            self
        }
        /// The known_hosts file (default `~/.ssh/known_hosts`).
        pub fn known_hosts(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.common.known_hosts = Some(path.into().display().to_string());
            self
        }
        /// Only the server key with this SHA-256 fingerprint (`SHA256:...`).
        pub fn fingerprint(mut self, f: impl Into<String>) -> Self {
            self.common.fingerprint = Some(f.into());
            self
        }
        /// Reach the SSH server through this client endpoint (`endpoint=`).
        pub fn endpoint(mut self, inner: &dyn ClientBuilder) -> Self {
            self.common.endpoint = Some(inner.to_string());
            self
        }
        /// The bound on the session's opening and each channel (whole milliseconds).
        pub fn timeout(mut self, t: Duration) -> Self {
            self.common.timeout = Some(millis(t));
            self
        }
        /// Keepalive interval (whole milliseconds; zero: none).
        pub fn keepalive(mut self, t: Duration) -> Self {
            self.common.keepalive = Some(millis(t));
            self
        }
    };
}

/// `ssh:` client: `SshClient::new("bastion", SshTarget::forward("db", 5432))`.
#[cfg(feature = "ssh")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshClient {
    host: String,
    target: SshTarget,
    common: SshCommon,
    idle_timeout: Option<Duration>,
}

#[cfg(feature = "ssh")]
impl SshClient {
    /// Connections to `target` through the SSH server `host`.
    pub fn new(host: impl Into<String>, target: SshTarget) -> Self {
        Self {
            host: host.into(),
            target,
            common: SshCommon::default(),
            idle_timeout: None,
        }
    }
    ssh_common_setters!();
    /// How long the shared session stays open after its last connection (whole milliseconds).
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = Some(millis(t));
        self
    }
}

#[cfg(feature = "ssh")]
impl ClientBuilder for SshClient {
    fn description(&self) -> Description {
        use endpoints_core::Field;
        let mut d = Description::new("ssh").with("host", self.host.as_str());
        match &self.target {
            SshTarget::Forward(h, p) if h.contains(':') => {
                d.push(Field::keyword("forward", format!("[{h}]:{p}")))
            }
            SshTarget::Forward(h, p) => d.push(Field::keyword("forward", format!("{h}:{p}"))),
            SshTarget::UnixSocket(p) => d.push(Field::keyword("forward", p.clone())),
            SshTarget::Command(c) => d.push(Field::keyword("command", c.clone())),
        };
        self.common.push(&mut d);
        if let Some(t) = self.idle_timeout {
            d.push(Field::keyword("idleTimeout", seconds(t)));
        }
        d
    }
}

/// `ssh:` server: listen through an SSH server, `SshServer::new("bastion", "8080")`
/// (`[ADDRESS:]PORT` or an absolute unix socket path on the server).
#[cfg(feature = "ssh")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshServer {
    host: String,
    listen: String,
    common: SshCommon,
}

#[cfg(feature = "ssh")]
impl SshServer {
    /// Listen on `listen` through the SSH server `host`.
    pub fn new(host: impl Into<String>, listen: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            listen: listen.into(),
            common: SshCommon::default(),
        }
    }
    ssh_common_setters!();
}

#[cfg(feature = "ssh")]
impl ServerBuilder for SshServer {
    fn description(&self) -> Description {
        use endpoints_core::Field;
        let mut d = Description::new("ssh").with("host", self.host.as_str());
        d.push(Field::keyword("listen", self.listen.clone()));
        self.common.push(&mut d);
        d
    }
}

/// The address family a [`SystemdServer`] names (`endpoints::systemd::SocketDomain`).
#[cfg(feature = "systemd")]
pub use endpoints_systemd::SocketDomain;

/// `systemd:` server: a socket passed by socket activation, by position
/// (`SystemdServer::index(SocketDomain::Inet, 0)`) or by name
/// (`SystemdServer::named(SocketDomain::Inet6, "web")`), Twisted's `AdoptedStreamServerEndpoint`.
///
/// `build()` looks the descriptor up in the activation state (call
/// [`systemd::init`](crate::systemd::init) first), as text does.
#[cfg(feature = "systemd")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemdServer {
    domain: endpoints_systemd::SocketDomain,
    socket: SystemdSocket,
}

#[cfg(feature = "systemd")]
#[derive(Clone, Debug, PartialEq, Eq)]
enum SystemdSocket {
    Index(u32),
    Name(String),
}

#[cfg(feature = "systemd")]
impl SystemdServer {
    /// The passed descriptor at `index` (0 is fd 3), which must be a listening socket of
    /// `domain`.
    pub fn index(domain: endpoints_systemd::SocketDomain, index: u32) -> Self {
        Self {
            domain,
            socket: SystemdSocket::Index(index),
        }
    }
    /// The passed descriptor named `name` in `LISTEN_FDNAMES` (`FileDescriptorName=`), which
    /// must be a listening socket of `domain`.
    pub fn named(domain: endpoints_systemd::SocketDomain, name: impl Into<String>) -> Self {
        Self {
            domain,
            socket: SystemdSocket::Name(name.into()),
        }
    }
}

#[cfg(feature = "systemd")]
impl ServerBuilder for SystemdServer {
    fn description(&self) -> Description {
        use endpoints_systemd::SocketDomain;
        let domain = match self.domain {
            SocketDomain::Inet => "INET",
            SocketDomain::Inet6 => "INET6",
            SocketDomain::Unix => "UNIX",
        };
        let d = Description::new("systemd").with("domain", domain);
        match &self.socket {
            SystemdSocket::Index(i) => d.with("index", i.to_string()),
            SystemdSocket::Name(n) => d.with("name", n.clone()),
        }
    }
}

/// `stdio:` server: `StdioServer::new()`, one connection made of stdin and stdout
/// (Twisted's `StandardIOEndpoint`).
#[cfg(feature = "stdio")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdioServer;

#[cfg(feature = "stdio")]
impl StdioServer {
    /// Stdin and stdout (the type takes no parameters).
    pub fn new() -> Self {
        Self
    }
}

#[cfg(feature = "stdio")]
impl ServerBuilder for StdioServer {
    fn description(&self) -> Description {
        Description::new("stdio")
    }
}

#[cfg(feature = "systemd")]
display_via_description!(ServerBuilder: SystemdServer);
#[cfg(feature = "stdio")]
display_via_description!(ServerBuilder: StdioServer);
#[cfg(feature = "tcp")]
display_via_description!(ServerBuilder: TcpServer);
#[cfg(feature = "tcp6")]
display_via_description!(ServerBuilder: Tcp6Server);
#[cfg(feature = "exec")]
display_via_description!(ClientBuilder: ExecClient);
#[cfg(feature = "ssh")]
display_via_description!(ClientBuilder: SshClient);
#[cfg(feature = "ssh")]
display_via_description!(ServerBuilder: SshServer);
#[cfg(feature = "unix")]
display_via_description!(ServerBuilder: UnixServer);
#[cfg(feature = "unix")]
display_via_description!(ClientBuilder: UnixClient);

/// `tor:` client: `TorClient::new("example.com", 80).socks_port(9150)`.
#[cfg(feature = "tor")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorClient {
    host: String,
    port: u16,
    socks_port: Option<u16>,
    isolation: Option<String>,
    timeout: Option<Duration>,
    launch: bool,
    inband: bool,
}

#[cfg(feature = "tor")]
impl TorClient {
    /// A stream to `host:port` (a name, `NAME.onion` or an IP address) through Tor.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            socks_port: None,
            isolation: None,
            timeout: None,
            launch: false,
            inband: false,
        }
    }
    /// Tor's SOCKS port on 127.0.0.1 (default 9050).
    pub fn socks_port(mut self, port: u16) -> Self {
        self.socks_port = Some(port);
        self
    }
    /// The isolation group (SOCKS user name); default: one per endpoint.
    pub fn isolation(mut self, name: impl Into<String>) -> Self {
        self.isolation = Some(name.into());
        self
    }
    /// Deadline for the stream (default 120 s). Whole milliseconds.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(millis(t));
        self
    }
    /// Start a `tor` of our own, shared by this endpoint's connections and stopped after the
    /// last one (`launch=1`), instead of a running Tor's SOCKS port.
    pub fn launch(mut self, on: bool) -> Self {
        self.launch = on;
        self
    }
    /// Each side's end of data travels in-band (`halfClose=inband`); the onion service must be
    /// ours with the same setting.
    pub fn half_close_inband(mut self, on: bool) -> Self {
        self.inband = on;
        self
    }
}

#[cfg(feature = "tor")]
impl ClientBuilder for TorClient {
    fn description(&self) -> Description {
        let mut d = Description::new("tor")
            .with("host", self.host.clone())
            .with("port", self.port.to_string());
        if let Some(p) = self.socks_port {
            d.set("socksPort", p.to_string());
        }
        if let Some(u) = &self.isolation {
            d.set("socksUsername", u.clone());
        }
        if let Some(t) = self.timeout {
            d.set("timeout", seconds(t));
        }
        if self.launch {
            d.set("launch", "1");
        }
        if self.inband {
            d.set("halfClose", "inband");
        }
        d
    }
}

/// `onion:` server: `OnionServer::new(80).private_key_file("/var/lib/app/onion.key")`.
#[cfg(feature = "tor")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnionServer {
    port: u16,
    control_port: Option<u16>,
    key_file: Option<String>,
    local_tcp: bool,
    timeout: Option<Duration>,
    inband: bool,
}

#[cfg(feature = "tor")]
impl OnionServer {
    /// An onion service on `port`, ephemeral unless a key file is given.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            control_port: None,
            key_file: None,
            local_tcp: false,
            timeout: None,
            inband: false,
        }
    }
    /// Tor's control port on 127.0.0.1 (without it, `listen()` launches a Tor of its own, as
    /// txtorcon's `onion:` does; see `launch=` in docs/grammar.md).
    pub fn control_port(mut self, port: u16) -> Self {
        self.control_port = Some(port);
        self
    }
    /// Keep the key in this file: the address stays across restarts.
    pub fn private_key_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.key_file = Some(path.into().display().to_string());
        self
    }
    /// Tor forwards to 127.0.0.1 on a random port instead of a private unix socket.
    pub fn local_tcp(mut self, on: bool) -> Self {
        self.local_tcp = on;
        self
    }
    /// Deadline for adding and publishing the service (default 180 s). Whole milliseconds.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(millis(t));
        self
    }
    /// Each side's end of data travels in-band (`halfClose=inband`); every client must be our
    /// `tor:` with the same setting.
    pub fn half_close_inband(mut self, on: bool) -> Self {
        self.inband = on;
        self
    }
}

#[cfg(feature = "tor")]
impl ServerBuilder for OnionServer {
    fn description(&self) -> Description {
        let mut d = Description::new("onion").with("port", self.port.to_string());
        if let Some(p) = self.control_port {
            d.set("controlPort", p.to_string());
        }
        if let Some(k) = &self.key_file {
            d.set("privateKeyFile", k.clone());
        }
        if self.local_tcp {
            d.set("local", "tcp");
        }
        if let Some(t) = self.timeout {
            d.set("timeout", seconds(t));
        }
        if self.inband {
            d.set("halfClose", "inband");
        }
        d
    }
}

#[cfg(feature = "tor")]
display_via_description!(ClientBuilder: TorClient);
#[cfg(feature = "tor")]
display_via_description!(ServerBuilder: OnionServer);

/// The `haproxy:` wrapper in code: [`proxy::wrap_server`] and [`proxy::wrap_client`].
#[cfg(feature = "proxy")]
pub mod proxy {
    use super::*;

    /// `haproxy:` around any server builder: `proxy::wrap_server(TcpServer::new(8080))`.
    pub fn wrap_server<S: ServerBuilder>(inner: S) -> ProxyServer<S> {
        ProxyServer {
            inner,
            timeout: Duration::from_secs(5),
            max_header: 4096,
            trusted: None,
            accept_untrusted: false,
        }
    }

    /// A `haproxy:` server wrapper around `S` (made by [`wrap_server`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ProxyServer<S> {
        inner: S,
        timeout: Duration,
        max_header: u32,
        trusted: Option<Vec<String>>,
        accept_untrusted: bool,
    }

    impl<S: ServerBuilder> ProxyServer<S> {
        /// Deadline for the whole header (default 5 s). Whole milliseconds.
        pub fn timeout(mut self, t: Duration) -> Self {
            self.timeout = millis(t);
            self
        }
        /// Largest v2 header accepted (default 4096).
        pub fn max_header(mut self, bytes: u32) -> Self {
            self.max_header = bytes;
            self
        }
        /// Peers allowed to send headers: addresses, CIDRs, `unix`, or `any` alone.
        pub fn trusted<I: IntoIterator<Item = T>, T: Into<String>>(mut self, peers: I) -> Self {
            self.trusted = Some(peers.into_iter().map(Into::into).collect());
            self
        }
        /// Serve other peers as plain connections instead of closing them (needs
        /// [`trusted`](Self::trusted)).
        pub fn accept_untrusted(mut self, on: bool) -> Self {
            self.accept_untrusted = on;
            self
        }
    }

    impl<S: ServerBuilder> ServerBuilder for ProxyServer<S> {
        fn description(&self) -> Description {
            let mut d = Description::new("haproxy")
                .with("timeout", seconds(self.timeout))
                .with("maxHeader", self.max_header.to_string());
            if let Some(t) = &self.trusted {
                // `Display` escapes the `:` of IPv6 addresses.
                d.set("trusted", t.join(","));
            }
            d.set(
                "untrusted",
                if self.accept_untrusted {
                    "accept"
                } else {
                    "reject"
                },
            );
            for f in self.inner.description().fields() {
                d.push(f.clone());
            }
            d
        }
    }

    impl<S: ServerBuilder> fmt::Display for ProxyServer<S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }

    /// The PROXY protocol version a client sends.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Version {
        /// Version 1, the text header (the default).
        V1,
        /// Version 2, the binary header.
        V2,
    }

    /// `haproxy:` around any client builder: send a PROXY header first
    /// (`proxy::wrap_client(TcpClient::new("app", 8080)).version(Version::V2)`). Around TLS
    /// (`tls::wrap_client`, `tls::client`) the header goes before the handshake; around an
    /// `ssl:` client (`tls::SslClient`) `build()` refuses, as text does.
    pub fn wrap_client<C: ClientBuilder>(inner: C) -> ProxyClient<C> {
        ProxyClient {
            inner,
            version: Version::V1,
        }
    }

    /// A `haproxy:` client wrapper around `C` (made by [`wrap_client`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ProxyClient<C> {
        inner: C,
        version: Version,
    }

    impl<C: ClientBuilder> ProxyClient<C> {
        /// The header version to send (default [`Version::V1`]).
        pub fn version(mut self, v: Version) -> Self {
            self.version = v;
            self
        }
    }

    impl<C: ClientBuilder> ClientBuilder for ProxyClient<C> {
        fn description(&self) -> Description {
            let version = match self.version {
                Version::V1 => "1",
                Version::V2 => "2",
            };
            let mut d = Description::new("haproxy").with("version", version);
            for f in self.inner.description().fields() {
                d.push(f.clone());
            }
            d
        }
    }

    impl<C: ClientBuilder> fmt::Display for ProxyClient<C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }
}

/// TLS in code (feature `tls`): Twisted's `wrapClientTLS(optionsForClientTLS(host), inner)`
/// is [`tls::wrap_client`]`(`[`TlsOptions::new`](tls::TlsOptions::new)`(host), inner)`.
#[cfg(feature = "tls")]
pub mod tls {
    use super::*;

    /// The lowest TLS version to allow.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MinVersion {
        /// TLS 1.2 (the default).
        Tls12,
        /// TLS 1.3 only.
        Tls13,
    }

    impl MinVersion {
        fn as_str(self) -> &'static str {
            match self {
                Self::Tls12 => "1.2",
                Self::Tls13 => "1.3",
            }
        }
    }

    /// Client TLS settings (the `tls:` client's parameters).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TlsOptions {
        host: String,
        port: u16,
        timeout: Option<Duration>,
        certificate: Option<(String, Option<String>)>,
        trust_roots: Option<String>,
        pins: Vec<String>,
        alpn: Vec<String>,
        sni: Option<String>,
        min_version: Option<MinVersion>,
    }

    impl TlsOptions {
        /// Verify the server as `host` (port 443; the platform's trust store).
        pub fn new(host: impl Into<String>) -> Self {
            Self {
                host: host.into(),
                port: 443,
                timeout: None,
                certificate: None,
                trust_roots: None,
                pins: Vec::new(),
                alpn: Vec::new(),
                sni: None,
                min_version: None,
            }
        }
        /// The port (to connect to, or, under [`wrap_client`], naming the server only).
        pub fn port(mut self, port: u16) -> Self {
            self.port = port;
            self
        }
        /// Connect and handshake deadline (default 30 s). Whole milliseconds.
        pub fn timeout(mut self, t: Duration) -> Self {
            self.timeout = Some(millis(t));
            self
        }
        /// Present a client certificate (the key in `key`, or in the certificate file).
        pub fn client_certificate(
            mut self,
            certificate: impl Into<std::path::PathBuf>,
            key: Option<std::path::PathBuf>,
        ) -> Self {
            self.certificate = Some((
                certificate.into().display().to_string(),
                key.map(|k| k.display().to_string()),
            ));
            self
        }
        /// CA certificates: a PEM file or directory, or `mozilla`, `system`, `none`.
        pub fn trust_roots(mut self, roots: impl Into<std::path::PathBuf>) -> Self {
            self.trust_roots = Some(roots.into().display().to_string());
            self
        }
        /// Also require this public key (`sha256/<base64>`).
        pub fn pin(mut self, pin: impl Into<String>) -> Self {
            self.pins.push(pin.into());
            self
        }
        /// Offer these ALPN protocols.
        pub fn alpn<I: IntoIterator<Item = T>, T: Into<String>>(mut self, protocols: I) -> Self {
            self.alpn = protocols.into_iter().map(Into::into).collect();
            self
        }
        /// Send and verify this name instead of the host.
        pub fn sni(mut self, name: impl Into<String>) -> Self {
            self.sni = Some(name.into());
            self
        }
        /// The lowest version allowed.
        pub fn min_version(mut self, v: MinVersion) -> Self {
            self.min_version = Some(v);
            self
        }

        fn description(&self, inner: Option<String>) -> Description {
            let mut d = Description::new("tls")
                .with("host", self.host.clone())
                .with("port", self.port.to_string());
            if let Some(t) = self.timeout {
                d.set("timeout", seconds(t));
            }
            if let Some((c, k)) = &self.certificate {
                d.set("certificate", c.clone());
                if let Some(k) = k {
                    d.set("privateKey", k.clone());
                }
            }
            if let Some(r) = &self.trust_roots {
                d.set("trustRoots", r.clone());
            }
            if !self.pins.is_empty() {
                d.set("pin", self.pins.join(","));
            }
            if let Some(i) = inner {
                d.set("endpoint", i);
            }
            if !self.alpn.is_empty() {
                d.set("alpn", self.alpn.join(","));
            }
            if let Some(n) = &self.sni {
                d.set("sni", n.clone());
            }
            if let Some(v) = self.min_version {
                d.set("minVersion", v.as_str());
            }
            d
        }
    }

    /// A `tls:` client: over `hostname:` ([`client`]) or over any client ([`wrap_client`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TlsClient<C> {
        options: TlsOptions,
        inner: Option<C>,
    }

    /// TLS to `options`' host and port (happy eyeballs underneath): `tls:HOST:PORT:...`.
    pub fn client(options: TlsOptions) -> TlsClient<super::NoInner> {
        TlsClient {
            options,
            inner: None,
        }
    }

    /// TLS over any client endpoint (`tls:HOST:PORT:...:endpoint=<inner>`): the inner one
    /// carries the bytes, `options` name and verify the server.
    pub fn wrap_client<C: ClientBuilder>(options: TlsOptions, inner: C) -> TlsClient<C> {
        TlsClient {
            options,
            inner: Some(inner),
        }
    }

    impl<C: ClientBuilder> ClientBuilder for TlsClient<C> {
        fn description(&self) -> Description {
            self.options
                .description(self.inner.as_ref().map(ToString::to_string))
        }
    }

    impl<C: ClientBuilder> fmt::Display for TlsClient<C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }

    /// `ssl:` client (Twisted's legacy client, which verifies here):
    /// `SslClient::new("example.com", 443).ca_certs_dir("/etc/ca")`. [`TlsOptions`] is the
    /// newer way (`tls:`), with pins, ALPN and any transport underneath.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SslClient {
        host: String,
        port: u16,
        timeout: Option<Duration>,
        bind_address: Option<IpAddr>,
        certificate: Option<(String, Option<String>)>,
        ca_certs_dir: Option<String>,
        hostname: Option<String>,
    }

    impl SslClient {
        /// TLS to `host` on `port`, verified as `host` against the platform's trust store.
        pub fn new(host: impl Into<String>, port: u16) -> Self {
            Self {
                host: host.into(),
                port,
                timeout: None,
                bind_address: None,
                certificate: None,
                ca_certs_dir: None,
                hostname: None,
            }
        }
        /// Connect and handshake deadline (default 30 s; zero: none). Whole milliseconds.
        pub fn timeout(mut self, t: Duration) -> Self {
            self.timeout = Some(millis(t));
            self
        }
        /// Local address for attempts of its family.
        pub fn bind_address(mut self, ip: IpAddr) -> Self {
            self.bind_address = Some(ip);
            self
        }
        /// Present a client certificate (`certKey`; the key in `key`, `privateKey`, or in the
        /// certificate file).
        pub fn client_certificate(
            mut self,
            certificate: impl Into<std::path::PathBuf>,
            key: Option<std::path::PathBuf>,
        ) -> Self {
            self.certificate = Some((
                certificate.into().display().to_string(),
                key.map(|k| k.display().to_string()),
            ));
            self
        }
        /// CA certificates: a directory of `*.pem` (`caCertsDir`).
        pub fn ca_certs_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
            self.ca_certs_dir = Some(dir.into().display().to_string());
            self
        }
        /// Verify the certificate against this name instead of the host (`hostname`).
        pub fn hostname(mut self, name: impl Into<String>) -> Self {
            self.hostname = Some(name.into());
            self
        }
    }

    impl ClientBuilder for SslClient {
        fn description(&self) -> Description {
            let mut d = Description::new("ssl")
                .with("host", self.host.clone())
                .with("port", self.port.to_string());
            if let Some(t) = self.timeout {
                d.set("timeout", seconds(t));
            }
            if let Some(ip) = self.bind_address {
                d.set("bindAddress", ip.to_string());
            }
            if let Some((c, k)) = &self.certificate {
                d.set("certKey", c.clone());
                if let Some(k) = k {
                    d.set("privateKey", k.clone());
                }
            }
            if let Some(dir) = &self.ca_certs_dir {
                d.set("caCertsDir", dir.clone());
            }
            if let Some(n) = &self.hostname {
                d.set("hostname", n.clone());
            }
            d
        }
    }

    display_via_description!(ClientBuilder: SslClient);

    /// A server's certificate from key and certificate files: the `ssl:` server
    /// ([`TlsServerOptions::new`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct KeyFile {
        private_key: String,
        cert_key: Option<String>,
    }

    /// A server's certificates from a directory, chosen by SNI and reloaded when the files
    /// change: the `tls:` server ([`TlsServerOptions::cert_dir`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CertDir {
        path: String,
    }

    /// Server TLS settings: the `ssl:` server's ([`new`](TlsServerOptions::new), a key file)
    /// or the `tls:` server's ([`cert_dir`](TlsServerOptions::cert_dir), a directory).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TlsServerOptions<C = KeyFile> {
        certificates: C,
        client_ca: Option<(String, bool)>,
        alpn: Vec<String>,
        min_version: Option<MinVersion>,
        handshake_timeout: Duration,
    }

    impl<C> TlsServerOptions<C> {
        fn with(certificates: C) -> Self {
            Self {
                certificates,
                client_ca: None,
                alpn: Vec::new(),
                min_version: None,
                handshake_timeout: Duration::from_secs(10),
            }
        }
        /// Ask clients for a certificate issued by these CAs (`required`: refuse others).
        pub fn client_ca(mut self, ca: impl Into<std::path::PathBuf>, required: bool) -> Self {
            self.client_ca = Some((ca.into().display().to_string(), required));
            self
        }
        /// Accept these ALPN protocols, in preference order.
        pub fn alpn<I: IntoIterator<Item = T>, T: Into<String>>(mut self, protocols: I) -> Self {
            self.alpn = protocols.into_iter().map(Into::into).collect();
            self
        }
        /// The lowest version allowed.
        pub fn min_version(mut self, v: MinVersion) -> Self {
            self.min_version = Some(v);
            self
        }
        /// Deadline for a client's handshake (default 10 s). Whole milliseconds.
        pub fn handshake_timeout(mut self, t: Duration) -> Self {
            self.handshake_timeout = millis(t);
            self
        }

        /// The parameters both servers share.
        fn extras(&self, d: &mut Description) {
            if let Some((ca, required)) = &self.client_ca {
                d.set("clientCA", ca.clone());
                d.set("requireClientCert", flag(*required));
            }
            if !self.alpn.is_empty() {
                d.set("alpn", self.alpn.join(","));
            }
            if let Some(v) = self.min_version {
                d.set("minVersion", v.as_str());
            }
            d.set("handshakeTimeout", seconds(self.handshake_timeout));
        }
    }

    impl TlsServerOptions<KeyFile> {
        /// The key (PEM; it may also hold the certificate chain): an `ssl:` server.
        pub fn new(private_key: impl Into<std::path::PathBuf>) -> Self {
            Self::with(KeyFile {
                private_key: private_key.into().display().to_string(),
                cert_key: None,
            })
        }
        /// The certificate chain, when not in the key's file.
        pub fn certificate(mut self, chain: impl Into<std::path::PathBuf>) -> Self {
            self.certificates.cert_key = Some(chain.into().display().to_string());
            self
        }
    }

    impl TlsServerOptions<CertDir> {
        /// A directory of `*.pem` files (keys, certificates, intermediates; certbot's `live/`
        /// works), certificates chosen by SNI and reloaded when the files change: a `tls:`
        /// server (Twisted 26's).
        pub fn cert_dir(path: impl Into<std::path::PathBuf>) -> Self {
            Self::with(CertDir {
                path: path.into().display().to_string(),
            })
        }
    }

    /// A TLS server: on a TCP port ([`server`]) or over any server ([`wrap_server`]); `ssl:`
    /// with a key file, `tls:` with a certificate directory.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TlsServer<S, C = KeyFile> {
        options: TlsServerOptions<C>,
        port: Option<u16>,
        interface: Option<IpAddr>,
        backlog: Option<u32>,
        inner: Option<S>,
    }

    /// TLS on TCP `port`: `ssl:PORT:privateKey=...` (every IPv4 address) or
    /// `tls:PATH:PORT` (every address, dual stack).
    pub fn server<C>(options: TlsServerOptions<C>, port: u16) -> TlsServer<super::NoInner, C> {
        TlsServer {
            options,
            port: Some(port),
            interface: None,
            backlog: None,
            inner: None,
        }
    }

    /// TLS over any server endpoint: `ssl:privateKey=...:endpoint=<inner>` or
    /// `tls:PATH:endpoint=<inner>`.
    pub fn wrap_server<S: ServerBuilder, C>(
        options: TlsServerOptions<C>,
        inner: S,
    ) -> TlsServer<S, C> {
        TlsServer {
            options,
            port: None,
            interface: None,
            backlog: None,
            inner: Some(inner),
        }
    }

    impl<C> TlsServer<super::NoInner, C> {
        /// The address to bind (default: every IPv4 address for `ssl:`, every address for
        /// `tls:`).
        pub fn interface(mut self, ip: IpAddr) -> Self {
            self.interface = Some(ip);
            self
        }
        /// Accept queue length (default 1024).
        pub fn backlog(mut self, n: u32) -> Self {
            self.backlog = Some(n);
            self
        }
    }

    impl<S: ServerBuilder, C> TlsServer<S, C> {
        /// The TCP listener's settings and the shared ones, after the certificates.
        fn rest(&self, d: &mut Description) {
            if let Some(ip) = self.interface {
                d.set("interface", ip.to_string());
            }
            if let Some(n) = self.backlog {
                d.set("backlog", n.to_string());
            }
            self.options.extras(d);
            if let Some(i) = &self.inner {
                d.set("endpoint", i.to_string());
            }
        }
    }

    impl<S: ServerBuilder> ServerBuilder for TlsServer<S, KeyFile> {
        fn description(&self) -> Description {
            let k = &self.options.certificates;
            let mut d = Description::new("ssl");
            if let Some(p) = self.port {
                d.set("port", p.to_string());
            }
            d.set("privateKey", k.private_key.clone());
            if let Some(c) = &k.cert_key {
                d.set("certKey", c.clone());
            }
            self.rest(&mut d);
            d
        }
    }

    impl<S: ServerBuilder> ServerBuilder for TlsServer<S, CertDir> {
        fn description(&self) -> Description {
            let mut d =
                Description::new("tls").with("path", self.options.certificates.path.clone());
            if let Some(p) = self.port {
                d.set("port", p.to_string());
            }
            self.rest(&mut d);
            d
        }
    }

    impl<S: ServerBuilder> fmt::Display for TlsServer<S, KeyFile> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }

    impl<S: ServerBuilder> fmt::Display for TlsServer<S, CertDir> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }
}

/// The inner type of a TLS builder without an inner builder ([`tls::client`],
/// [`tls::server`]); never built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoInner {}

impl fmt::Display for NoInner {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl ServerBuilder for NoInner {
    fn description(&self) -> Description {
        match *self {}
    }
}

impl ClientBuilder for NoInner {
    fn description(&self) -> Description {
        match *self {}
    }
}

/// WebSocket in code (feature `ws`): `ws::client(WsOptions::new("example.com").path("/t"))`
/// is `ws:host=example.com:port=80:path=/t:...`; `ws::wrap_server(TcpServer::new(8080))` is
/// `ws:...:tcp:8080`.
#[cfg(feature = "ws")]
pub mod ws {
    use super::*;

    /// What a `ws:`/`wss:` client sends: `WsOptions::new("example.com").path("/chat")`.
    /// Secrets are given by file or environment variable only (never kept in the builder's
    /// text in clear).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct WsOptions {
        host: String,
        port: Option<u16>,
        path: String,
        host_header: Option<String>,
        origin: Option<String>,
        subprotocols: Vec<String>,
        headers: Vec<(String, String)>,
        token_file: Option<String>,
        token_env: Option<String>,
        trust_roots: Option<String>,
        sni: Option<String>,
        timeout: Duration,
        max_message: u32,
        ping: Option<Duration>,
    }

    impl WsOptions {
        /// To `host` on the scheme's port (80, or 443 for `wss:`), path `/`.
        pub fn new(host: impl Into<String>) -> Self {
            Self {
                host: host.into(),
                port: None,
                path: "/".into(),
                host_header: None,
                origin: None,
                subprotocols: Vec::new(),
                headers: Vec::new(),
                token_file: None,
                token_env: None,
                trust_roots: None,
                sni: None,
                timeout: Duration::from_secs(30),
                max_message: 16 << 20,
                ping: None,
            }
        }
        /// The server's port.
        pub fn port(mut self, port: u16) -> Self {
            self.port = Some(port);
            self
        }
        /// The request target (`/chat?room=1`).
        pub fn path(mut self, path: impl Into<String>) -> Self {
            self.path = path.into();
            self
        }
        /// The `Host` header instead of host and port.
        pub fn host_header(mut self, h: impl Into<String>) -> Self {
            self.host_header = Some(h.into());
            self
        }
        /// The `Origin` header.
        pub fn origin(mut self, o: impl Into<String>) -> Self {
            self.origin = Some(o.into());
            self
        }
        /// Subprotocols to offer, in preference order.
        pub fn subprotocols<I: IntoIterator<Item = T>, T: Into<String>>(mut self, p: I) -> Self {
            self.subprotocols = p.into_iter().map(Into::into).collect();
            self
        }
        /// One more request header (no commas in the value).
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.headers.push((name.into(), value.into()));
            self
        }
        /// A bearer token read from this file when built.
        pub fn token_file(mut self, path: impl Into<String>) -> Self {
            self.token_file = Some(path.into());
            self
        }
        /// A bearer token read from this environment variable when built.
        pub fn token_env(mut self, var: impl Into<String>) -> Self {
            self.token_env = Some(var.into());
            self
        }
        /// `wss:` only: `tls:`'s `trustRoots=` (a PEM file, a directory, `mozilla`, ...).
        pub fn trust_roots(mut self, roots: impl Into<String>) -> Self {
            self.trust_roots = Some(roots.into());
            self
        }
        /// `wss:` only: the name to send and verify instead of host.
        pub fn sni(mut self, name: impl Into<String>) -> Self {
            self.sni = Some(name.into());
            self
        }
        /// Deadline for connecting and the upgrade (default 30 s). Whole milliseconds.
        pub fn timeout(mut self, t: Duration) -> Self {
            self.timeout = millis(t);
            self
        }
        /// Largest message accepted (default 16 MiB).
        pub fn max_message(mut self, bytes: u32) -> Self {
            self.max_message = bytes;
            self
        }
        /// Keepalive pings after this long without one. Whole milliseconds.
        pub fn ping(mut self, every: Duration) -> Self {
            self.ping = Some(millis(every));
            self
        }

        fn description(&self, tls: bool, inner: Option<String>) -> Description {
            let prefix = if tls { "wss" } else { "ws" };
            let port = self.port.unwrap_or(if tls { 443 } else { 80 });
            let mut d = Description::new(prefix)
                .with("host", self.host.as_str())
                .with("port", port.to_string())
                .with("path", self.path.as_str());
            let mut opt = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    d.set(k, v.as_str());
                }
            };
            opt("hostHeader", &self.host_header);
            opt("origin", &self.origin);
            opt("tokenFile", &self.token_file);
            opt("tokenEnv", &self.token_env);
            if tls {
                opt("trustRoots", &self.trust_roots);
                opt("sni", &self.sni);
            }
            if !self.subprotocols.is_empty() {
                d.set("subprotocols", self.subprotocols.join(","));
            }
            if !self.headers.is_empty() {
                let h: Vec<String> = self
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                d.set("headers", h.join(","));
            }
            d.set("timeout", seconds(self.timeout));
            d.set("maxMessage", self.max_message.to_string());
            if let Some(p) = self.ping {
                d.set("ping", seconds(p));
            }
            if let Some(i) = inner {
                d.set("endpoint", i);
            }
            d
        }
    }

    /// A `ws:` or `wss:` client: over `hostname:` ([`client`], [`secure_client`]) or over
    /// any client ([`wrap_client`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct WsClient<C> {
        options: WsOptions,
        tls: bool,
        inner: Option<C>,
    }

    /// `ws:HOST:PORT:...` over happy eyeballs.
    pub fn client(options: WsOptions) -> WsClient<super::NoInner> {
        WsClient {
            options,
            tls: false,
            inner: None,
        }
    }

    /// `wss:HOST:PORT:...` (TLS, verified) over happy eyeballs; `build()` needs feature `tls`.
    pub fn secure_client(options: WsOptions) -> WsClient<super::NoInner> {
        WsClient {
            options,
            tls: true,
            inner: None,
        }
    }

    /// `ws:HOST:PORT:...:endpoint=<inner>`: the inner client carries the bytes.
    pub fn wrap_client<C: ClientBuilder>(options: WsOptions, inner: C) -> WsClient<C> {
        WsClient {
            options,
            tls: false,
            inner: Some(inner),
        }
    }

    impl<C: ClientBuilder> ClientBuilder for WsClient<C> {
        fn description(&self) -> Description {
            self.options
                .description(self.tls, self.inner.as_ref().map(ToString::to_string))
        }
    }

    impl<C: ClientBuilder> fmt::Display for WsClient<C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }

    /// `ws:` around any server builder: `ws::wrap_server(TcpServer::new(8080)).path("/t")`.
    pub fn wrap_server<S: ServerBuilder>(inner: S) -> WsServer<S> {
        WsServer {
            inner,
            path: None,
            origins: Vec::new(),
            subprotocols: Vec::new(),
            token_file: None,
            token_env: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// A `ws:` server wrapper around `S` (made by [`wrap_server`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct WsServer<S> {
        inner: S,
        path: Option<String>,
        origins: Vec<String>,
        subprotocols: Vec<String>,
        token_file: Option<String>,
        token_env: Option<String>,
        timeout: Duration,
    }

    impl<S: ServerBuilder> WsServer<S> {
        /// Accept upgrades for this path only (others get 404).
        pub fn path(mut self, p: impl Into<String>) -> Self {
            self.path = Some(p.into());
            self
        }
        /// Allowed `Origin` values (another gets 403).
        pub fn origins<I: IntoIterator<Item = T>, T: Into<String>>(mut self, o: I) -> Self {
            self.origins = o.into_iter().map(Into::into).collect();
            self
        }
        /// Subprotocols served, in preference order (a client must offer one).
        pub fn subprotocols<I: IntoIterator<Item = T>, T: Into<String>>(mut self, p: I) -> Self {
            self.subprotocols = p.into_iter().map(Into::into).collect();
            self
        }
        /// Require the bearer token read from this file when built.
        pub fn token_file(mut self, path: impl Into<String>) -> Self {
            self.token_file = Some(path.into());
            self
        }
        /// Require the bearer token read from this environment variable when built.
        pub fn token_env(mut self, var: impl Into<String>) -> Self {
            self.token_env = Some(var.into());
            self
        }
        /// Deadline for a client's upgrade request (default 10 s). Whole milliseconds.
        pub fn timeout(mut self, t: Duration) -> Self {
            self.timeout = millis(t);
            self
        }
    }

    impl<S: ServerBuilder> ServerBuilder for WsServer<S> {
        fn description(&self) -> Description {
            let mut d = Description::new("ws");
            if let Some(p) = &self.path {
                d.set("path", p.as_str());
            }
            if !self.origins.is_empty() {
                d.set("origins", self.origins.join(","));
            }
            if !self.subprotocols.is_empty() {
                d.set("subprotocols", self.subprotocols.join(","));
            }
            if let Some(f) = &self.token_file {
                d.set("tokenFile", f.as_str());
            }
            if let Some(v) = &self.token_env {
                d.set("tokenEnv", v.as_str());
            }
            d.set("timeout", seconds(self.timeout));
            for f in self.inner.description().fields() {
                d.push(f.clone());
            }
            d
        }
    }

    impl<S: ServerBuilder> fmt::Display for WsServer<S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.description().fmt(f)
        }
    }
}
