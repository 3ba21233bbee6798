//! Name resolution: the [`Resolver`] trait and the system resolver.

use std::fmt;
use std::io;
use std::net::IpAddr;

use endpoints_core::async_trait;

/// Which address family to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// AAAA records (IPv6).
    V6,
    /// A records (IPv4).
    V4,
    /// Both, in one query (for resolvers that cannot answer the families separately).
    Any,
}

impl Family {
    /// Whether `ip` belongs to this family.
    pub fn contains(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::Any, _) | (Family::V6, IpAddr::V6(_)) | (Family::V4, IpAddr::V4(_))
        )
    }

    /// The record types asked for: `AAAA`, `A` or `A/AAAA`.
    pub fn records(self) -> &'static str {
        match self {
            Family::V6 => "AAAA",
            Family::V4 => "A",
            Family::Any => "A/AAAA",
        }
    }
}

/// Resolves host names. Inject one into [`HappyEyeballs`](crate::HappyEyeballs) to control
/// resolution (tests return fixed lists such as `[::1, 127.0.0.1]`).
#[async_trait]
pub trait Resolver: Send + Sync + fmt::Debug {
    /// The addresses of `host` in `family`, in preference order. An empty list means the name
    /// has no address of that family.
    async fn resolve(&self, host: &str, family: Family) -> io::Result<Vec<IpAddr>>;

    /// Whether AAAA and A can be asked separately, each answer arriving on its own. When
    /// `true` (the default) the connector asks both at once and starts on the first useful
    /// answer (RFC 8305 §3); when `false` it asks [`Family::Any`] once.
    fn queries_families_separately(&self) -> bool {
        true
    }
}

/// The operating system's resolver (`getaddrinfo` on tokio's blocking pool), so that
/// `/etc/hosts`, nsswitch and the system's address sorting (RFC 6724) apply.
///
/// It is asked once for both families: `getaddrinfo` returns only when every answer is in,
/// and a per-family call is slower, not faster (for a name that `/etc/hosts` lists with an
/// IPv4 address only, the IPv6 call goes on to DNS; measured 18 ms here against 0.2 ms).
/// For answers that arrive family by family, inject a DNS resolver that reports
/// [`queries_families_separately`](Resolver::queries_families_separately).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, family: Family) -> io::Result<Vec<IpAddr>> {
        let host = host.to_owned();
        tokio::task::spawn_blocking(move || sys::getaddrinfo(&host, family))
            .await
            .map_err(io::Error::other)?
    }

    fn queries_families_separately(&self) -> bool {
        false
    }
}

/// A resolver that answers from a fixed table (for tests and for pinning names).
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    entries: Vec<(String, Vec<IpAddr>)>,
}

impl StaticResolver {
    /// An empty table: every name fails to resolve.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer `host` with `addrs` (each family gets its own addresses, in this order).
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.entries
            .push((host.to_ascii_lowercase(), addrs.into_iter().collect()));
        self
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, family: Family) -> io::Result<Vec<IpAddr>> {
        let host = host.to_ascii_lowercase();
        let Some((_, addrs)) = self.entries.iter().find(|(h, _)| *h == host) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such host `{host}`"),
            ));
        };
        Ok(addrs
            .iter()
            .copied()
            .filter(|a| {
                matches!(
                    (a, family),
                    (IpAddr::V6(_), Family::V6) | (IpAddr::V4(_), Family::V4)
                )
            })
            .collect())
    }
}

#[allow(unsafe_code)]
mod sys {
    //! `getaddrinfo` with an address-family hint (tokio's `lookup_host` cannot take one).

    use std::ffi::{CStr, CString};
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::ptr;

    use super::Family;

    pub(super) fn getaddrinfo(host: &str, family: Family) -> io::Result<Vec<IpAddr>> {
        let c_host = CString::new(host).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "host name contains a NUL byte")
        })?;
        // SAFETY: `addrinfo` is a plain C struct for which all-zero is a valid value.
        let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_family = match family {
            Family::V6 => libc::AF_INET6,
            Family::V4 => libc::AF_INET,
            Family::Any => libc::AF_UNSPEC,
        };
        hints.ai_socktype = libc::SOCK_STREAM;
        // No AI_ADDRCONFIG: it costs a netlink round trip per call, and an address of a
        // family the host cannot reach just fails its attempt quickly.
        let mut res: *mut libc::addrinfo = ptr::null_mut();
        // SAFETY: `c_host` is a valid C string, `hints` is initialised, `res` is a valid
        // out-pointer; on success the list is freed below with `freeaddrinfo`.
        let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), ptr::null(), &hints, &mut res) };
        if rc != 0 {
            if rc == libc::EAI_NONAME || rc == libc::EAI_NODATA {
                return Ok(Vec::new());
            }
            if rc == libc::EAI_SYSTEM {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
            let msg = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
                .to_string_lossy()
                .into_owned();
            return Err(io::Error::other(format!("cannot resolve `{host}`: {msg}")));
        }
        let mut out = Vec::new();
        let mut cur = res;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getaddrinfo returned, not yet freed.
            let ai = unsafe { &*cur };
            if !ai.ai_addr.is_null() {
                match ai.ai_family {
                    libc::AF_INET => {
                        // SAFETY: for AF_INET, ai_addr points to a sockaddr_in.
                        let sin = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        // SAFETY: for AF_INET6, ai_addr points to a sockaddr_in6.
                        let sin6 = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = ai.ai_next;
        }
        // SAFETY: `res` came from a successful getaddrinfo and is freed exactly once.
        unsafe { libc::freeaddrinfo(res) };
        let mut seen = Vec::with_capacity(out.len());
        out.retain(|a| {
            let new = !seen.contains(a);
            seen.push(*a);
            new
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_resolver_finds_localhost_v4() -> io::Result<()> {
        let v4 = SystemResolver.resolve("localhost", Family::V4).await?;
        assert!(v4.contains(&IpAddr::from([127, 0, 0, 1])), "{v4:?}");
        assert!(v4.iter().all(IpAddr::is_ipv4));
        Ok(())
    }

    #[tokio::test]
    async fn system_resolver_answers_both_families_in_one_query() -> io::Result<()> {
        assert!(!SystemResolver.queries_families_separately());
        let any = SystemResolver.resolve("localhost", Family::Any).await?;
        assert!(any.contains(&IpAddr::from([127, 0, 0, 1])), "{any:?}");
        Ok(())
    }

    #[tokio::test]
    async fn system_resolver_reports_unknown_names_as_empty_or_error() {
        match SystemResolver
            .resolve("no-such-host.invalid", Family::V4)
            .await
        {
            Ok(v) => assert!(v.is_empty(), "{v:?}"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    #[tokio::test]
    async fn static_resolver_splits_families() -> io::Result<()> {
        let r = StaticResolver::new().with(
            "dual",
            ["::1".parse().expect("ip"), "127.0.0.1".parse().expect("ip")],
        );
        assert_eq!(
            r.resolve("DUAL", Family::V6).await?,
            vec!["::1".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(
            r.resolve("dual", Family::V4).await?,
            vec!["127.0.0.1".parse::<IpAddr>().expect("ip")]
        );
        assert!(r.resolve("other", Family::V4).await.is_err());
        Ok(())
    }
}
