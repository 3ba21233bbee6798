//! RFC 8305 behaviour on real loopback sockets, with an injected resolver.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use endpoints_conformance::Suite;
use endpoints_core::ErrorKind;
use endpoints_core::async_trait;
use endpoints_hostname::{Family, HappyEyeballs, HappyEyeballsError, Resolver, StaticResolver};
use socket2::{Domain, Socket, Type};

/// Tests that count descriptors must not overlap with others in this binary: every socket
/// test holds this lock.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Open sockets of this process. Sockets only: the harness starts the next test's thread
/// (and its runtime's epoll and eventfd descriptors) whenever one ends, which may be between
/// a test's two counts; a connection attempt is always a socket.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

const V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A `[::1]:port` whose SYNs are dropped: a listener with a full accept queue that never
/// accepts. Returns the listener and the sockets filling its queue (keep them alive).
fn blackhole(port: u16) -> io::Result<(Socket, Vec<Socket>)> {
    let addr = SocketAddr::new(V6, port);
    let l = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    l.set_only_v6(true)?;
    l.bind(&addr.into())?;
    l.listen(0)?;
    let mut fillers = Vec::new();
    for _ in 0..16 {
        let s = Socket::new(Domain::IPV6, Type::STREAM, None)?;
        match s.connect_timeout(&addr.into(), Duration::from_millis(300)) {
            Ok(()) => fillers.push(s),
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                return Ok((l, fillers));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("the accept queue never filled up"))
}

/// A port with a working listener on 127.0.0.1 and a blackhole on [::1].
fn working_v4_blackholed_v6() -> (StdListener, Socket, Vec<Socket>) {
    for _ in 0..20 {
        let v4 = StdListener::bind((V4, 0)).expect("bind v4");
        let port = v4.local_addr().expect("addr").port();
        if let Ok((hole, fill)) = blackhole(port) {
            return (v4, hole, fill);
        }
    }
    panic!("could not set up a blackholed [::1] port next to a working 127.0.0.1 port");
}

fn dual() -> Arc<StaticResolver> {
    Arc::new(StaticResolver::new().with("dual.test", [V6, V4]))
}

fn free_port() -> u16 {
    StdListener::bind((V4, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn he_error(e: &io::Error) -> &HappyEyeballsError {
    e.get_ref()
        .and_then(|i| i.downcast_ref())
        .expect("a HappyEyeballsError")
}

#[tokio::test]
async fn blackholed_first_address_costs_one_attempt_delay_and_the_loser_is_closed() {
    let _g = SERIAL.lock().await;
    let (v4, _hole, _fill) = working_v4_blackholed_v6();
    let port = v4.local_addr().expect("addr").port();
    let he = HappyEyeballs::new()
        .resolver(dual())
        .attempt_delay(Duration::from_millis(150));
    let baseline = open_fds();

    let started = Instant::now();
    let stream = he
        .connect("dual.test", port)
        .await
        .expect("the IPv4 attempt wins");
    let took = started.elapsed();
    assert_eq!(stream.peer_addr().expect("peer").ip(), V4);
    // A timer never fires early: the IPv4 attempt cannot have started before the delay.
    assert!(
        took >= Duration::from_millis(150),
        "the second attempt started early: {took:?}"
    );
    // Expected ~150 ms. The failure this guards against is waiting for the blackholed
    // attempt itself (the kernel's connect timeout, over a minute); 3 s is 20x the expected
    // time, so a busy machine does not fail it.
    assert!(
        took < Duration::from_secs(3),
        "the second attempt started late: {took:?}"
    );

    // Only the winner stays open: the blackholed attempt's socket is closed.
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_fds() > baseline + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(open_fds(), baseline + 1, "a losing attempt's socket leaked");
}

#[tokio::test]
async fn all_refused_fails_at_once_and_lists_every_address() {
    let _g = SERIAL.lock().await;
    let port = free_port();
    let resolver = Arc::new(
        StaticResolver::new().with("three.test", [V6, V4, "127.0.0.2".parse().expect("ip")]),
    );
    // The longest attempt delay there is (2 s): waiting for even one of them would show,
    // while three refusals on loopback take well under a millisecond (>1000x margin).
    let he = HappyEyeballs::new()
        .resolver(resolver)
        .attempt_delay(Duration::from_secs(2));
    let started = Instant::now();
    let err = he
        .connect("three.test", port)
        .await
        .expect_err("all refused");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "waited for an attempt delay after a failure: {took:?}"
    );
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    let tried: Vec<IpAddr> = he_error(&err)
        .failures()
        .iter()
        .map(|(a, _)| a.ip())
        .collect();
    assert_eq!(
        tried,
        vec![V6, V4, "127.0.0.2".parse::<IpAddr>().expect("ip")],
        "interleaved, IPv6 first"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("all 3 addresses of three.test:{port} failed")),
        "{text}"
    );
    assert!(
        text.contains(&format!("[::1]:{port}: ")) && text.contains(&format!("127.0.0.2:{port}: ")),
        "{text}"
    );
}

#[tokio::test]
async fn overall_timeout_reports_unanswered_attempts() {
    let _g = SERIAL.lock().await;
    let (v4, _hole, _fill) = working_v4_blackholed_v6();
    let port = v4.local_addr().expect("addr").port();
    drop(v4);
    let resolver = Arc::new(StaticResolver::new().with("hole.test", [V6]));
    let he = HappyEyeballs::new()
        .resolver(resolver)
        .timeout(Some(Duration::from_millis(300)));
    let err = he.connect("hole.test", port).await.expect_err("blackholed");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(he_error(&err).unanswered(), &[SocketAddr::new(V6, port)]);
    assert!(err.to_string().contains("no answer yet"), "{err}");
}

#[tokio::test]
async fn cancelling_by_drop_closes_every_attempt() {
    let _g = SERIAL.lock().await;
    let (v4, _hole, _fill) = working_v4_blackholed_v6();
    let port = v4.local_addr().expect("addr").port();
    drop(v4);
    let resolver = Arc::new(StaticResolver::new().with("hole.test", [V6]));
    let he = HappyEyeballs::new().resolver(resolver);
    let baseline = open_fds();
    let r = tokio::time::timeout(Duration::from_millis(200), he.connect("hole.test", port)).await;
    assert!(r.is_err(), "the blackholed connect cannot finish");
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_fds() > baseline && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(open_fds(), baseline, "a cancelled attempt's socket leaked");
}

/// Answers A at once, and AAAA only once A has been answered: AAAA comes second, by the
/// order of events rather than by a race between two timers.
#[derive(Debug, Default)]
struct AaaaAfterA(tokio::sync::Notify);

#[async_trait]
impl Resolver for AaaaAfterA {
    async fn resolve(&self, _host: &str, family: Family) -> io::Result<Vec<IpAddr>> {
        match family {
            Family::V4 => {
                self.0.notify_one();
                Ok(vec![V4])
            }
            Family::V6 => {
                self.0.notified().await;
                Ok(vec![V6])
            }
            Family::Any => Err(io::Error::other("this resolver answers per family")),
        }
    }
}

/// Answers A at once and AAAA after a delay.
#[derive(Debug)]
struct SlowAaaa(Duration);

#[async_trait]
impl Resolver for SlowAaaa {
    async fn resolve(&self, _host: &str, family: Family) -> io::Result<Vec<IpAddr>> {
        match family {
            Family::V4 => Ok(vec![V4]),
            Family::V6 => {
                tokio::time::sleep(self.0).await;
                Ok(vec![V6])
            }
            Family::Any => Err(io::Error::other("this resolver answers per family")),
        }
    }
}

/// Both families listening on one port.
fn dual_listeners() -> (StdListener, StdListener) {
    for _ in 0..20 {
        let v4 = StdListener::bind((V4, 0)).expect("bind v4");
        let port = v4.local_addr().expect("addr").port();
        if let Ok(v6) = StdListener::bind((V6, port)) {
            return (v4, v6);
        }
    }
    panic!("no port free on both 127.0.0.1 and [::1]");
}

#[tokio::test]
async fn resolution_delay_waits_briefly_for_aaaa() {
    let _g = SERIAL.lock().await;
    let (v4, _v6) = dual_listeners();
    let port = v4.local_addr().expect("addr").port();

    // AAAA right after A (within the 50 ms resolution delay): IPv6 is preferred.
    let he = HappyEyeballs::new().resolver(Arc::new(AaaaAfterA::default()));
    let s = he.connect("any.test", port).await.expect("connects");
    assert_eq!(s.peer_addr().expect("peer").ip(), V6);

    // AAAA much later (30 s): IPv4 goes ahead after the resolution delay, not after AAAA.
    // Expected ~50 ms; the bound (5 s) is 100x that and still far from the 30 s it guards.
    let he = HappyEyeballs::new().resolver(Arc::new(SlowAaaa(Duration::from_secs(30))));
    let started = Instant::now();
    let s = tokio::time::timeout(Duration::from_secs(60), he.connect("any.test", port))
        .await
        .expect("not stuck")
        .expect("connects");
    assert_eq!(s.peer_addr().expect("peer").ip(), V4);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for AAAA: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bind_address_applies_only_to_its_own_family() {
    let _g = SERIAL.lock().await;
    let (v4, _v6) = dual_listeners();
    let port = v4.local_addr().expect("addr").port();
    let he = HappyEyeballs::new().bind_address(Some(V4));
    let s = he
        .connect("::1", port)
        .await
        .expect("an IPv6 attempt is not bound to an IPv4 address");
    assert!(s.local_addr().expect("local").is_ipv6());
    let s = he.connect("127.0.0.1", port).await.expect("connects");
    assert_eq!(s.local_addr().expect("local").ip(), V4);
}

#[tokio::test]
async fn unknown_name_says_it_has_no_address() {
    let _g = SERIAL.lock().await;
    let he = HappyEyeballs::new().resolver(Arc::new(StaticResolver::new()));
    let err = he
        .connect("nowhere.test", 80)
        .await
        .expect_err("no such name");
    let text = err.to_string();
    assert!(
        text.starts_with("`nowhere.test` has no address; "),
        "{text}"
    );
    assert!(
        text.contains("AAAA: no such host") && text.contains("; A: no such host"),
        "{text}"
    );
}

#[test]
fn hostname_conformance() {
    Suite::client("hostname")
        .valid("hostname:example.com:443")
        .valid("hostname:host=[::1]:port=80:timeout=5:attemptDelay=0.05:attemptTimeout=1:bindAddress=[::1]")
        .invalid("hostname:example.com", ErrorKind::MissingParameter)
        .invalid("hostname:exa mple.com:80", ErrorKind::InvalidValue)
        .invalid("hostname:h:80:attemptDelay=soon", ErrorKind::InvalidValue)
        .invalid("hostname:h:80:attemptdelay=1", ErrorKind::UnknownParameter)
        .run();
}

#[test]
fn attempt_delay_is_clamped_to_rfc_bounds() {
    let d = |ms| {
        HappyEyeballs::new()
            .attempt_delay(Duration::from_millis(ms))
            .get_attempt_delay()
    };
    assert_eq!(d(0), Duration::from_millis(10));
    assert_eq!(d(250), Duration::from_millis(250));
    assert_eq!(d(60_000), Duration::from_secs(2));
    let built = endpoints_core::registry::build_client(
        &"hostname:h:1:attemptDelay=0".parse().expect("parse"),
    );
    assert!(built.is_ok(), "0 is clamped, not rejected");
}
