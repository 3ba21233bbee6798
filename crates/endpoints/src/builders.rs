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
//! | `TcpClient::new("db", 5432)` / `Hostname::new("db", 5432)` | `tcp:host=db:port=5432` / `hostname:db:5432` |
//! | `UnixServer::new("/run/app.sock").mode(0o660)` | `unix:address=/run/app.sock:mode=660` |
//! | `UnixClient::new("/run/app.sock")` | `unix:path=/run/app.sock` |
//! | `proxy::wrap_server(TcpServer::new(8080)).trusted(["10.0.0.0/8"])` | `haproxy:trusted=10.0.0.0/8:tcp:8080` |
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
//! Not covered yet (build these from text): `tcp6:`, `systemd:`, `stdio:`, the `tls:`/`ssl:`
//! clients and servers, and `haproxy:` around a client.

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

/// `tcp:` server: `TcpServer::new(8080).interface(ip)`.
#[cfg(feature = "tcp")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpServer {
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

#[cfg(feature = "tcp")]
impl TcpServer {
    /// Listen on `port` (0: any free port) on every IPv4 address, backlog 1024.
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
    /// `IPV6_V6ONLY` (an IPv6 interface only: `build()` reports it otherwise).
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
}

#[cfg(feature = "tcp")]
impl ServerBuilder for TcpServer {
    fn description(&self) -> Description {
        let mut d = Description::new("tcp")
            .with("port", self.port.to_string())
            .with(
                "interface",
                self.interface.map(|i| i.to_string()).unwrap_or_default(),
            )
            .with("backlog", self.backlog.to_string())
            .with("reuseport", flag(self.reuseport));
        if let Some(v) = self.v6only {
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

#[cfg(feature = "tcp")]
display_via_description!(ServerBuilder: TcpServer);
#[cfg(feature = "unix")]
display_via_description!(ServerBuilder: UnixServer);
#[cfg(feature = "unix")]
display_via_description!(ClientBuilder: UnixClient);

/// The `haproxy:` wrapper in code: [`proxy::wrap_server`].
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
}
