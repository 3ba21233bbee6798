//! The RFC 8305 ("happy eyeballs v2") connector.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::resolve::{Family, Resolver, SystemResolver};

/// RFC 8305 §8 "Connection Attempt Delay" default.
pub const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// The smallest accepted attempt delay (RFC 8305 §5: never below 10 ms).
pub const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// The largest accepted attempt delay (RFC 8305 §8: 2 s).
pub const MAX_ATTEMPT_DELAY: Duration = Duration::from_secs(2);
/// RFC 8305 §3 "Resolution Delay": how long to wait for AAAA answers after A answers.
pub const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

/// Connects to a host name the RFC 8305 way:
///
/// * AAAA and A are asked separately and at once (where the [`Resolver`] can answer them
///   separately); connecting starts as soon as AAAA answers, or [`RESOLUTION_DELAY`] after A
///   answered first;
/// * addresses are interleaved by family, IPv6 first;
/// * a new attempt starts every attempt delay (default 250 ms, clamped to 10 ms..2 s), or at
///   once when the previous attempt failed;
/// * the first success wins and every other attempt is closed;
/// * an overall deadline and a per-attempt deadline;
/// * failure lists every address tried and why it failed ([`HappyEyeballsError`]).
///
/// An IP literal (`::1`, `[::1]`, `127.0.0.1`) skips resolution. Dropping the future cancels
/// every attempt.
#[derive(Clone, Debug)]
pub struct HappyEyeballs {
    resolver: Arc<dyn Resolver>,
    attempt_delay: Duration,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    bind: Option<IpAddr>,
}

impl Default for HappyEyeballs {
    fn default() -> Self {
        Self::new()
    }
}

impl HappyEyeballs {
    /// The system resolver, default delays, no deadlines, no bind address.
    pub fn new() -> Self {
        Self {
            resolver: Arc::new(SystemResolver),
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            timeout: None,
            attempt_timeout: None,
            bind: None,
        }
    }

    /// Use `resolver` for host names.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The stagger between attempts, clamped to [`MIN_ATTEMPT_DELAY`]..[`MAX_ATTEMPT_DELAY`].
    pub fn attempt_delay(mut self, delay: Duration) -> Self {
        self.attempt_delay = delay.clamp(MIN_ATTEMPT_DELAY, MAX_ATTEMPT_DELAY);
        self
    }

    /// The deadline for the whole connect (resolution included).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline for each attempt.
    pub fn attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Bind attempts of the same family as `addr` to it (port 0); attempts of the other
    /// family are not bound.
    pub fn bind_address(mut self, addr: Option<IpAddr>) -> Self {
        self.bind = addr;
        self
    }

    /// The configured attempt delay.
    pub fn get_attempt_delay(&self) -> Duration {
        self.attempt_delay
    }

    /// Connect to `host` (a name or an IP literal) on `port`.
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        self.connect_to(host, port).await.map(|(stream, _)| stream)
    }

    /// Like [`connect`](Self::connect), also returning the address that won.
    pub async fn connect_to(&self, host: &str, port: u16) -> io::Result<(TcpStream, SocketAddr)> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut run = Run {
            he: self,
            host,
            port,
            v6: Vec::new(),
            v4: Vec::new(),
            last_family: None,
            failures: Vec::new(),
            resolution: Vec::new(),
            in_flight: Vec::new(),
        };
        if let Some(ip) = crate::ip_literal(host) {
            // One address: no race to run, so no task to spawn.
            let addr = SocketAddr::new(ip, port);
            let limit = match (self.attempt_timeout, self.timeout) {
                (Some(a), Some(t)) => Some(a.min(t)),
                (a, t) => a.or(t),
            };
            return match attempt(addr, self.bind, limit).await {
                Ok(stream) => Ok((stream, addr)),
                Err(e) => {
                    run.failures.push((addr, e));
                    Err(run.into_error(None))
                }
            };
        }
        run.attempts(deadline).await
    }
}

struct Run<'a> {
    he: &'a HappyEyeballs,
    host: &'a str,
    port: u16,
    v6: Vec<SocketAddr>,
    v4: Vec<SocketAddr>,
    last_family: Option<Family>,
    failures: Vec<(SocketAddr, io::Error)>,
    resolution: Vec<(Family, io::Error)>,
    in_flight: Vec<SocketAddr>,
}

impl Run<'_> {
    /// The next address, alternating families (IPv6 first).
    fn next_addr(&mut self) -> Option<SocketAddr> {
        let prefer_v4 = self.last_family == Some(Family::V6);
        let pick_v4 = (prefer_v4 && !self.v4.is_empty()) || self.v6.is_empty();
        let list = if pick_v4 { &mut self.v4 } else { &mut self.v6 };
        if list.is_empty() {
            return None;
        }
        let a = list.remove(0);
        self.last_family = Some(if a.is_ipv4() { Family::V4 } else { Family::V6 });
        Some(a)
    }

    fn add(&mut self, family: Family, result: io::Result<Vec<IpAddr>>) {
        match result {
            Ok(ips) => {
                for ip in ips.into_iter().filter(|ip| family.contains(ip)) {
                    let list = if ip.is_ipv6() {
                        &mut self.v6
                    } else {
                        &mut self.v4
                    };
                    list.push(SocketAddr::new(ip, self.port));
                }
            }
            Err(e) => self.resolution.push((family, e)),
        }
    }

    /// The race: AAAA and A queries, and connection attempts started one attempt delay
    /// apart (at once after a failure), until one connects, all fail or the deadline passes.
    async fn attempts(mut self, deadline: Option<Instant>) -> io::Result<(TcpStream, SocketAddr)> {
        let he = self.he;
        let resolver = he.resolver.clone();
        let host = self.host.to_owned();
        // Separate AAAA and A queries where the resolver can answer them separately; else one
        // query for both, in the slot of the AAAA query (the A slot starts done).
        let separate = resolver.queries_families_separately();
        let first = if separate { Family::V6 } else { Family::Any };
        let mut v6_query = std::pin::pin!(async { resolver.resolve(&host, first).await });
        let mut v4_query = std::pin::pin!(async { resolver.resolve(&host, Family::V4).await });
        let mut race = Race::new(separate);

        loop {
            let now = Instant::now();
            if race.tasks.is_empty() && race.resolved() && self.v6.len() + self.v4.len() == 1 {
                // Resolution is over and one address is left: nothing to race, no task to spawn.
                return self.last_attempt(deadline).await;
            }
            let may_start = self.may_start(&race, now);
            if may_start && self.start_next(&mut race, now) {
                continue;
            }
            let pending = !self.v6.is_empty() || !self.v4.is_empty();
            if race.tasks.is_empty() && race.resolved() && !pending {
                return Err(self.into_error(None));
            }
            let waiting_for_aaaa = race.waiting_for_aaaa(now);
            tokio::select! {
                r = &mut v6_query, if !race.v6_done => {
                    race.v6_done = true;
                    self.add(first, r);
                }
                r = &mut v4_query, if !race.v4_done => {
                    race.v4_done = true;
                    self.add(Family::V4, r);
                    race.a_answered();
                }
                joined = race.tasks.join_next(), if !race.tasks.is_empty() => {
                    if let Some(won) = self.attempt_ended(&mut race, joined) {
                        return won;
                    }
                }
                () = sleep_until(race.next_start), if pending && may_start && !race.tasks.is_empty() => {}
                () = sleep_until(race.resolution_wait.unwrap_or(now)), if waiting_for_aaaa => {}
                () = sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => {
                    return Err(self.into_error(he.timeout));
                }
            }
        }
    }

    /// The one address left once resolution is over, tried in this task (within the overall
    /// deadline).
    async fn last_attempt(
        mut self,
        deadline: Option<Instant>,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        let he = self.he;
        let Some(addr) = self.next_addr() else {
            return Err(self.into_error(None));
        };
        self.in_flight.push(addr);
        let one = attempt(addr, he.bind, he.attempt_timeout);
        let result = match deadline {
            Some(d) => tokio::time::timeout_at(d, one).await,
            None => Ok(one.await),
        };
        match result {
            Ok(Ok(stream)) => Ok((stream, addr)),
            Ok(Err(e)) => {
                self.in_flight.clear();
                self.failures.push((addr, e));
                Err(self.into_error(None))
            }
            Err(_) => Err(self.into_error(he.timeout)),
        }
    }

    /// Whether connecting may start: AAAA answered, an IPv6 address is known, or the
    /// resolution delay after an early A answer is over.
    fn may_start(&self, race: &Race, now: Instant) -> bool {
        race.v6_done || !self.v6.is_empty() || race.resolution_wait.is_some_and(|t| now >= t)
    }

    /// Start an attempt on the next address if none is running or the attempt delay is over;
    /// whether one was started.
    fn start_next(&mut self, race: &mut Race, now: Instant) -> bool {
        if !(race.tasks.is_empty() || now >= race.next_start) {
            return false;
        }
        let Some(addr) = self.next_addr() else {
            return false;
        };
        self.in_flight.push(addr);
        let (bind, limit) = (self.he.bind, self.he.attempt_timeout);
        race.tasks
            .spawn(async move { (addr, attempt(addr, bind, limit).await) });
        race.next_start = now + self.he.attempt_delay;
        true
    }

    /// An attempt ended: the winner (or a task that could not be joined) ends the race; a
    /// failure is recorded and starts the next attempt at once (RFC 8305 §5).
    fn attempt_ended(
        &mut self,
        race: &mut Race,
        joined: Option<Result<Attempted, tokio::task::JoinError>>,
    ) -> Option<io::Result<(TcpStream, SocketAddr)>> {
        match joined {
            Some(Ok((addr, Ok(stream)))) => Some(Ok((stream, addr))),
            Some(Ok((addr, Err(e)))) => {
                tracing::debug!(%addr, error = %e, "connection attempt failed");
                self.in_flight.retain(|a| *a != addr);
                self.failures.push((addr, e));
                race.next_start = Instant::now();
                None
            }
            Some(Err(join)) => Some(Err(io::Error::other(join))),
            None => None,
        }
    }

    fn into_error(self, timed_out: Option<Duration>) -> io::Error {
        let kind = if timed_out.is_some() {
            io::ErrorKind::TimedOut
        } else if let Some((_, e)) = self.failures.first() {
            e.kind()
        } else if let Some((_, e)) = self.resolution.first() {
            e.kind()
        } else {
            io::ErrorKind::NotFound
        };
        io::Error::new(
            kind,
            HappyEyeballsError {
                host: self.host.to_owned(),
                port: self.port,
                failures: self.failures,
                resolution: self.resolution,
                unanswered: self.in_flight,
                timed_out,
            },
        )
    }
}

/// What an attempt's task returns: the address and how connecting to it went.
type Attempted = (SocketAddr, io::Result<TcpStream>);

/// The state of a race besides the addresses: which queries answered, when connecting may
/// start, the attempts in flight.
struct Race {
    /// The AAAA query (or the single query for both families) answered.
    v6_done: bool,
    /// The A query answered (done from the start when one query asks for both).
    v4_done: bool,
    /// Set when A answered before AAAA: connecting may start at this instant.
    resolution_wait: Option<Instant>,
    tasks: JoinSet<Attempted>,
    /// When the next attempt may start while others are in flight.
    next_start: Instant,
}

impl Race {
    fn new(separate_queries: bool) -> Self {
        Self {
            v6_done: false,
            v4_done: !separate_queries,
            resolution_wait: None,
            tasks: JoinSet::new(),
            next_start: Instant::now(),
        }
    }

    /// Both queries answered.
    fn resolved(&self) -> bool {
        self.v6_done && self.v4_done
    }

    /// A answered: if AAAA has not, wait for it [`RESOLUTION_DELAY`] at most.
    fn a_answered(&mut self) {
        if !self.v6_done {
            self.resolution_wait = Some(Instant::now() + RESOLUTION_DELAY);
        }
    }

    /// Still in the resolution delay, waiting for AAAA.
    fn waiting_for_aaaa(&self, now: Instant) -> bool {
        !self.v6_done && self.resolution_wait.is_some_and(|t| now < t)
    }
}

async fn attempt(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    limit: Option<Duration>,
) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = bind.filter(|b| b.is_ipv4() == addr.is_ipv4()) {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    let connecting = socket.connect(addr);
    match limit {
        Some(t) => tokio::time::timeout(t, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {:.3}s", t.as_secs_f64()),
                ))
            }),
        None => connecting.await,
    }
}

/// Why a happy-eyeballs connect failed: every address tried, with its error.
#[derive(Debug)]
pub struct HappyEyeballsError {
    host: String,
    port: u16,
    failures: Vec<(SocketAddr, io::Error)>,
    resolution: Vec<(Family, io::Error)>,
    unanswered: Vec<SocketAddr>,
    timed_out: Option<Duration>,
}

impl HappyEyeballsError {
    /// Each address tried that failed, with its error, in the order they failed.
    pub fn failures(&self) -> &[(SocketAddr, io::Error)] {
        &self.failures
    }

    /// Resolution errors, per family.
    pub fn resolution_errors(&self) -> &[(Family, io::Error)] {
        &self.resolution
    }

    /// Addresses still connecting when the overall deadline passed.
    pub fn unanswered(&self) -> &[SocketAddr] {
        &self.unanswered
    }

    /// The overall deadline, if that is what ended the connect.
    pub fn timed_out(&self) -> Option<Duration> {
        self.timed_out
    }
}

impl fmt::Display for HappyEyeballsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match crate::ip_literal(&self.host) {
            Some(ip) => SocketAddr::new(ip, self.port).to_string(),
            None => format!("{}:{}", self.host, self.port),
        };
        match self.timed_out {
            Some(t) => write!(
                f,
                "no connection to {target} within {:.3}s",
                t.as_secs_f64()
            )?,
            None if self.failures.is_empty() && self.unanswered.is_empty() => {
                write!(f, "`{}` has no address", self.host)?;
                for (family, e) in &self.resolution {
                    write!(f, "; {}: {e}", family.records())?;
                }
                return Ok(());
            }
            None if self.failures.len() == 1 => {
                let (addr, e) = &self.failures[0];
                return write!(f, "{addr}: {e}");
            }
            None => write!(
                f,
                "all {} addresses of {target} failed",
                self.failures.len()
            )?,
        }
        for (addr, e) in &self.failures {
            write!(f, "; {addr}: {e}")?;
        }
        for addr in &self.unanswered {
            write!(f, "; {addr}: no answer yet")?;
        }
        Ok(())
    }
}

impl StdError for HappyEyeballsError {}
