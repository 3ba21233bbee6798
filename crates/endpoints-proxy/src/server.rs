//! The `haproxy:` server wrapper: read a PROXY header on every connection, off the accept
//! loop, then report the header's addresses.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use endpoints_core::upgrade::{UpgradeListener, UpgradeSettings};
use endpoints_core::{
    Address, Connection, Description, Listener, Operation, ServerEndpoint, async_trait, io_error,
};
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

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            _ => false,
        }
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
    /// Peers allowed to send headers (`None`: every peer must send one).
    pub trusted: Option<Vec<Cidr>>,
    /// Policy for the others.
    pub untrusted: Untrusted,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            v2_max: crate::header::DEFAULT_V2_MAX,
            trusted: None,
            untrusted: Untrusted::Reject,
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
    if let (Some(trusted), Some(ip)) = (&settings.trusted, conn.peer_addr().ip())
        && !trusted.iter().any(|c| c.contains(ip.ip()))
    {
        return match settings.untrusted {
            Untrusted::Accept => Ok(conn),
            Untrusted::Reject => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{ip} is not a trusted PROXY sender"),
            )),
        };
    }
    let carried = std::mem::take(conn.extensions_mut());
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let (header, used) = loop {
        match parse(&buf, settings.v2_max)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            Progress::Done(h, n) => break (h, n),
            Progress::NeedMore => {}
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                HeaderError::Invalid(format!(
                    "connection closed after {} bytes of a PROXY header",
                    buf.len()
                )),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (mut local, mut peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
    if let (Some(src), Some(dst)) = (&header.source, &header.destination) {
        peer = src.clone();
        local = dst.clone();
    }
    let rest = buf.split_off(used);
    let mut out = Connection::new(Prefixed::new(rest, conn), local, peer);
    out.extensions_mut().extend(carried);
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
        let settings = self.settings.clone();
        // A PROXY header usually arrives with the connection: read it inline when it has.
        let upgrade = UpgradeSettings::new(settings.timeout).inline_first_poll(true);
        Ok(Box::new(UpgradeListener::spawn(
            inner,
            canonical,
            upgrade,
            move |conn| {
                let settings = settings.clone();
                async move { receive(conn, &settings).await }
            },
        )))
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
}
