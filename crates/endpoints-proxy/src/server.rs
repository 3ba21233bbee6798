//! The `haproxy:` server wrapper: read a PROXY header on every connection, off the accept
//! loop, then report the header's addresses.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::{
    Address, Connection, Description, Listener, Operation, ServerEndpoint, async_trait, io_error,
};
use endpoints_util::metrics::Layer;
use endpoints_util::upgrade::{CountAs, UpgradeListener, UpgradeSettings};
use tokio::io::AsyncReadExt;

use crate::header::{HeaderError, Progress, ProxyHeader, parse};
use crate::stream::Prefixed;

/// An IP network, `addr/len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parse `10.0.0.0/8`, `::1/128`, or a bare address (a single host).
    pub fn parse(text: &str) -> Option<Self> {
        let (a, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        (len <= max).then_some(Self { addr, len })
    }

    /// Whether `ip` is in this network. IPv4 addresses and networks are compared in their
    /// IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so a mapped peer (a dual-stack socket's
    /// IPv4 client) matches `10.0.0.0/8` and `::ffff:10.0.0.0/104` alike, and so does a
    /// plain IPv4 peer.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, len) = match self.addr {
            IpAddr::V4(n) => (n.to_ipv6_mapped(), self.len + 96),
            IpAddr::V6(n) => (n, self.len),
        };
        let ip = match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        prefix_eq(&net.octets(), &ip.octets(), len)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (full, rest) = ((bits / 8) as usize, bits % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One entry of `trusted=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedPeer {
    /// IP peers in this network.
    Net(Cidr),
    /// Peers without an IP address (`trusted=unix`): unix and abstract sockets, systemd
    /// unix sockets, unnamed ends.
    Local,
}

impl TrustedPeer {
    /// Parse one entry: `unix`, a CIDR, or a bare address.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "unix" {
            return Some(Self::Local);
        }
        Cidr::parse(text).map(Self::Net)
    }

    /// Whether a connection from `peer` matches this entry.
    pub fn matches(&self, peer: &Address) -> bool {
        match (self, peer.ip()) {
            (Self::Net(c), Some(a)) => c.contains(a.ip()),
            (Self::Local, None) => true,
            _ => false,
        }
    }
}

impl fmt::Display for TrustedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net(c) => c.fmt(f),
            Self::Local => f.write_str("unix"),
        }
    }
}

/// Who may send a PROXY header (`trusted=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Trusted {
    /// `trusted=` not given: any peer may send a header, and the listener warns about it
    /// when it starts.
    #[default]
    Unstated,
    /// `trusted=any`: any peer may send a header, as stated by the user (no warning).
    Any,
    /// Only peers matching one of these; the others follow [`Untrusted`].
    Only(Vec<TrustedPeer>),
}

impl Trusted {
    /// Whether `peer` may send a header.
    pub fn allows(&self, peer: &Address) -> bool {
        match self {
            Self::Unstated | Self::Any => true,
            Self::Only(list) => list.iter().any(|t| t.matches(peer)),
        }
    }
}

/// What to do with a connection from a peer outside `trusted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Close it.
    Reject,
    /// Serve it as a plain connection: no header is read, its real addresses are reported.
    Accept,
}

/// Settings of the wrapper.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProxySettings {
    /// Deadline for the whole header.
    pub timeout: Duration,
    /// Cap on a v2 header.
    pub v2_max: usize,
    /// Peers allowed to send headers.
    pub trusted: Trusted,
    /// Policy for the others.
    pub untrusted: Untrusted,
    /// Headers being read at once from one source address (peers named in `trusted=` are
    /// exempt: a proxy carries many clients).
    pub max_pending_per_source: usize,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            v2_max: crate::header::DEFAULT_V2_MAX,
            trusted: Trusted::Unstated,
            untrusted: Untrusted::Reject,
            max_pending_per_source: endpoints_util::upgrade::DEFAULT_MAX_PENDING_PER_SOURCE,
        }
    }
}

/// A server endpoint whose connections start with a PROXY header (`haproxy:`).
pub struct ProxyServerEndpoint {
    inner: Box<dyn ServerEndpoint>,
    settings: Arc<ProxySettings>,
    options: Description,
}

impl fmt::Debug for ProxyServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyServerEndpoint")
            .field("inner", &self.inner.to_string())
            .field("settings", &self.settings)
            .finish()
    }
}

impl ProxyServerEndpoint {
    /// Wrap `inner`. `options` is the description's head (`haproxy:timeout=...`), shown before
    /// the inner endpoint's own description.
    pub fn new(
        inner: Box<dyn ServerEndpoint>,
        settings: ProxySettings,
        options: Description,
    ) -> Self {
        Self {
            inner,
            settings: Arc::new(settings),
            options,
        }
    }
}

/// `options` followed by the fields of `inner` (a displayed description).
pub(crate) fn joined(options: &Description, inner: &dyn fmt::Display) -> Description {
    let mut d = options.clone();
    if let Ok(i) = Description::parse(&inner.to_string()) {
        for f in i.fields() {
            d.push(f.clone());
        }
    }
    d
}

impl fmt::Display for ProxyServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        joined(&self.options, &self.inner).fmt(f)
    }
}

/// Read the header from `conn` (deadline applied by the caller) and rebuild the connection.
pub(crate) async fn receive(
    mut conn: Connection,
    settings: &ProxySettings,
) -> io::Result<Connection> {
    if !settings.trusted.allows(conn.peer_addr()) {
        return match settings.untrusted {
            Untrusted::Accept => Ok(conn),
            Untrusted::Reject => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is not a trusted PROXY sender", conn.peer_addr()),
            )),
        };
    }
    let carried = std::mem::take(conn.extensions_mut());
    // Read straight into `buf` (no chunk array kept in this future, which is boxed per
    // connection): a v1 header is at most 107 bytes, a usual v2 one under 256.
    let mut buf = Vec::with_capacity(256);
    let (header, used) = loop {
        match parse(&buf, settings.v2_max)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            Progress::Done(h, n) => break (h, n),
            Progress::NeedMore => {}
        }
        if buf.capacity() - buf.len() < 64 {
            buf.reserve(512);
        }
        let n = conn.read_buf(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                HeaderError::Invalid(format!(
                    "connection closed after {} bytes of a PROXY header",
                    buf.len()
                )),
            ));
        }
    };
    let (mut local, mut peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
    if let (Some(src), Some(dst)) = (&header.source, &header.destination) {
        peer = src.clone();
        local = dst.clone();
    }
    // A sender not named in `trusted=` chose these addresses: later upgrades (TLS after the
    // header) keep counting against its real address for the per-source cap.
    let count_as = match (&settings.trusted, conn.peer_addr().ip()) {
        (Trusted::Only(_), _) | (_, None) => None,
        (Trusted::Unstated | Trusted::Any, Some(real)) => Some(CountAs(real.ip())),
    };
    let rest = buf.split_off(used);
    let mut out =
        Connection::new(Prefixed::new(rest, conn), local, peer).with_layer(&crate::stream::LAYER);
    out.extensions_mut().extend(carried);
    if let Some(c) = count_as {
        out.extensions_mut().insert(c);
    }
    out.extensions_mut().insert::<ProxyHeader>(header);
    Ok(out)
}

#[async_trait]
impl ServerEndpoint for ProxyServerEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let inner = self
            .inner
            .listen()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        let canonical = joined(&self.options, &inner);
        if self.settings.trusted == Trusted::Unstated {
            tracing::warn!(
                listener = %canonical,
                "any client that reaches this listener can send a PROXY header and choose the \
                 address the application sees; name the proxies with `trusted=` (or write \
                 `trusted=any` to accept this)"
            );
        }
        let settings = self.settings.clone();
        // A PROXY header usually arrives with the connection: read it inline when it has.
        let upgrade = UpgradeSettings::new(settings.timeout)
            .inline_first_poll(true)
            .max_pending_per_source(settings.max_pending_per_source);
        let named = match &settings.trusted {
            Trusted::Only(list) => list.clone(),
            Trusted::Unstated | Trusted::Any => Vec::new(),
        };
        let listener = UpgradeListener::spawn(inner, canonical, upgrade, move |conn| {
            let settings = settings.clone();
            async move { receive(conn, &settings).await }
        })
        .exempt(move |peer| named.iter().any(|t| t.matches(peer)))
        .layer(Layer::Proxy);
        Ok(Box::new(listener))
    }
}

/// A server endpoint shown under another description (for `haproxy:ssl:`, which is built as
/// TLS over `haproxy:tcp:` but written, and shown, the way the user wrote it).
pub(crate) struct Renamed {
    pub(crate) inner: Box<dyn ServerEndpoint>,
    pub(crate) canonical: Description,
}

impl fmt::Debug for Renamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renamed")
            .field("canonical", &self.canonical.to_string())
            .finish()
    }
}

impl fmt::Display for Renamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl ServerEndpoint for Renamed {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        let inner = self
            .inner
            .listen()
            .await
            .map_err(|e| io_error(Operation::Listen, self, e))?;
        let mut canonical = self.canonical.clone();
        if let Ok(Address::Ip(a)) = inner.local_addr()
            && canonical.get("port").is_some()
        {
            canonical.set("port", a.port().to_string());
        }
        Ok(Box::new(RenamedListener { inner, canonical }))
    }
}

struct RenamedListener {
    inner: Box<dyn Listener>,
    canonical: Description,
}

impl fmt::Debug for RenamedListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenamedListener")
            .field("canonical", &self.canonical.to_string())
            .finish()
    }
}

impl fmt::Display for RenamedListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.canonical.fmt(f)
    }
}

#[async_trait]
impl Listener for RenamedListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        self.inner.accept().await
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.inner.local_addr()
    }

    async fn close(self: Box<Self>) -> io::Result<()> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.1.0.0/16").expect("cidr");
        assert!(c.contains("10.1.200.3".parse().expect("ip")));
        assert!(!c.contains("10.2.0.1".parse().expect("ip")));
        assert!(
            c.contains("::ffff:10.1.0.9".parse().expect("ip")),
            "IPv4-mapped"
        );
        let h = Cidr::parse("::1").expect("host");
        assert!(h.contains("::1".parse().expect("ip")));
        assert!(!h.contains("::2".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(
            Cidr::parse("10.0.0.0/12")
                .expect("cidr")
                .contains("10.15.255.255".parse().expect("ip"))
        );
        assert!(
            !Cidr::parse("10.0.0.0/12")
                .expect("cidr")
                .contains("10.16.0.0".parse().expect("ip"))
        );
        assert_eq!(
            Cidr::parse("0.0.0.0/0").expect("all").to_string(),
            "0.0.0.0/0"
        );
    }

    #[test]
    fn mapped_peers_match_ipv4_and_mapped_entries_alike() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for entry in ["10.0.0.0/8", "::ffff:10.0.0.0/104", "::ffff:10.1.2.3"] {
            let c = Cidr::parse(entry).expect("cidr");
            for peer in ["10.1.2.3", "::ffff:10.1.2.3"] {
                assert!(c.contains(ip(peer)), "{entry} should contain {peer}");
            }
            assert!(!c.contains(ip("11.1.2.3")), "{entry}");
            assert!(!c.contains(ip("::ffff:11.1.2.3")), "{entry}");
            assert!(!c.contains(ip("10::1")), "{entry}: not a mapped address");
        }
    }

    fn conn_from(peer: Address) -> (Connection, tokio::io::DuplexStream) {
        let (a, b) = tokio::io::duplex(1024);
        (
            Connection::new(a, Address::Unix("/run/app.sock".into()), peer),
            b,
        )
    }

    fn settings_with(trusted: &str) -> ProxySettings {
        let list = trusted
            .split(',')
            .map(|t| TrustedPeer::parse(t).expect("entry"))
            .collect();
        ProxySettings {
            trusted: Trusted::Only(list),
            ..ProxySettings::default()
        }
    }

    /// Offer a v1 header from `peer`; whether `receive` took it.
    async fn offered(peer: Address, settings: &ProxySettings) -> bool {
        use tokio::io::AsyncWriteExt;
        let (conn, mut other) = conn_from(peer);
        other
            .write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")
            .await
            .expect("write");
        match receive(conn, settings).await {
            Ok(c) => {
                assert_eq!(c.peer_addr().to_string(), "192.0.2.1:1");
                true
            }
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
                false
            }
        }
    }

    #[tokio::test]
    async fn peers_without_an_ip_are_untrusted_unless_named() {
        // issue 20 item 2: `trusted=10.0.0.0/8` over a unix socket let any local user forge.
        let cidr = settings_with("10.0.0.0/8");
        for local in [
            Address::Unix("/tmp/client.sock".into()),
            Address::AbstractUnix(b"x".to_vec()),
            Address::Unnamed,
        ] {
            assert!(!offered(local.clone(), &cidr).await, "{local} trusted");
            assert!(
                offered(local.clone(), &settings_with("10.0.0.0/8,unix")).await,
                "{local} named by `unix`"
            );
        }
        assert!(
            !offered(
                Address::Ip("127.0.0.1:9".parse().expect("a")),
                &settings_with("unix")
            )
            .await,
            "`unix` names no IP peer"
        );
        let mapped = Address::Ip("[::ffff:10.9.9.9]:9".parse().expect("a"));
        assert!(offered(mapped.clone(), &cidr).await);
        assert!(offered(mapped, &settings_with("::ffff:10.0.0.0/104")).await);
        let v4 = Address::Ip("10.9.9.9:9".parse().expect("a"));
        assert!(offered(v4, &settings_with("::ffff:10.0.0.0/104")).await);
    }
}
