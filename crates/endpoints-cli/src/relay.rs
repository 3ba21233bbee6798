//! `relay`: accept on one description, connect to another for each connection, copy both ways.
//!
//! Bounded by default: at most as many connections at once as the open-files limit allows
//! (6 descriptors each), so a flood makes the relay wait, not fail. A direction given up on at
//! the `--linger` deadline, and any failure, resets both sides: no peer takes a truncated
//! transfer for a complete one. The exit status counts such connections.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use endpoints::Connection;
#[cfg(target_os = "linux")]
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::flags::{MAX_CONNECTIONS, Parsed};
use crate::handover::Handover;
use crate::pump::{self, Direction, HalfClose, Limits, Linger, pump_until};
use crate::{Fail, USAGE, build_client, rlimit, shutdown_signal, splice, start_listening};

/// Descriptors one relayed connection may hold: two sockets and two pipes (four ends).
pub(crate) const DESCRIPTORS_PER_CONNECTION: u64 = 6;
/// Descriptors kept for the command itself: stdio, the listener, the runtime's epoll and
/// wakers, a resolver's sockets.
pub(crate) const DESCRIPTORS_KEPT: u64 = 32;

/// The default `--max-connections` for an open-files limit of `open_files`.
pub(crate) fn default_max_connections(open_files: u64) -> usize {
    let n = open_files.saturating_sub(DESCRIPTORS_KEPT) / DESCRIPTORS_PER_CONNECTION;
    (n.max(1) as usize).min(MAX_CONNECTIONS)
}

pub(crate) async fn relay(p: Parsed) -> Result<ExitCode, Fail> {
    let [listen_at, connect_to] = p.positional.as_slice() else {
        return Err(Fail::Usage(format!(
            "relay needs LISTEN and CONNECT\n{USAGE}"
        )));
    };
    let linger = p
        .seconds("--linger", true)
        .map_err(Fail::Usage)?
        .unwrap_or(DEFAULT_LINGER);
    let idle = p.seconds("--idle-timeout", false).map_err(Fail::Usage)?;
    let drain_for = p
        .seconds("--drain-timeout", true)
        .map_err(Fail::Usage)?
        .unwrap_or(DEFAULT_DRAIN);
    let half_close = p.half_close().map_err(Fail::Usage)?;
    let asked = p
        .count("--max-connections", MAX_CONNECTIONS)
        .map_err(Fail::Usage)?;
    let target: Arc<dyn endpoints::ClientEndpoint> = Arc::from(build_client(connect_to)?);
    let settings = Settings {
        linger,
        idle,
        half_close,
    };

    let mut handover = Handover::from_flags(&p)?;
    let listener = start_listening(listen_at).await?;
    crate::exporter::tunnel_started("relay");
    let max = connection_limit(asked, "relay", "--max-connections");
    crate::log::release();
    handover.listening()?;
    let tunnel = Tunnel {
        name: None,
        listener,
        target: Target::Connect(target),
        settings,
        max,
        drain_for,
        drain_named: format!(
            "the drain deadline (--drain-timeout {}s)",
            drain_for.as_secs_f64()
        ),
    };
    serve(vec![tunnel], &mut handover).await
}

/// `--linger` when not given.
pub(crate) const DEFAULT_LINGER: Duration = Duration::from_secs(5);
/// `--drain-timeout` when not given.
pub(crate) const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// The connection limit: `asked`, else what the open-files limit fits; said in one line
/// (`who`: `relay`, or `tunnel NAME`; `flag`: how to change it).
pub(crate) fn connection_limit(asked: Option<usize>, who: &str, flag: &str) -> usize {
    let open_files = rlimit::open_files().unwrap_or(1024);
    let fits = default_max_connections(open_files);
    match asked {
        Some(n) if n > fits => err!(
            "{who}: at most {n} connections at once ({flag}); warning: the \
             open-files limit ({open_files}) fits about {fits} at {DESCRIPTORS_PER_CONNECTION} \
             descriptors each: past that, new connections wait for descriptors"
        ),
        Some(n) => err!("{who}: at most {n} connections at once ({flag})"),
        None => err!(
            "{who}: at most {fits} connections at once (the open-files limit {open_files}, \
             {DESCRIPTORS_PER_CONNECTION} descriptors each, {DESCRIPTORS_KEPT} kept); \
             {flag} changes it"
        ),
    }
    asked.unwrap_or(fits)
}

/// What a tunnel does with each accepted connection.
pub(crate) enum Target {
    /// Connect to this client endpoint and copy both ways.
    Connect(Arc<dyn endpoints::ClientEndpoint>),
    /// Echo every byte back (`echo = true` in a `run` file).
    Echo,
}

/// One listener and what to do with its connections: `relay`'s one, or each of `run`'s.
pub(crate) struct Tunnel {
    /// `run`'s name for it (a prefix of its log lines, the `tunnel` label of its metrics);
    /// `None` for `relay` (metrics under the name `relay`).
    pub(crate) name: Option<String>,
    pub(crate) listener: Box<dyn endpoints::Listener>,
    pub(crate) target: Target,
    pub(crate) settings: Settings,
    /// At most this many connections at once; more wait in the listen queue.
    pub(crate) max: usize,
    /// How long open connections get at a stop or a handover.
    pub(crate) drain_for: Duration,
    /// That deadline in words, for the log.
    pub(crate) drain_named: String,
}

/// What one tunnel's accepting and draining came to.
struct Served {
    relayed: u64,
    fatal: Option<String>,
}

/// Serve `tunnels` until every listener is done, SIGINT/SIGTERM, or a successor took the
/// listeners over (`SIGHUP`, see [`Handover`]); then stop accepting on all, and drain each
/// (its own deadline). The one relay loop of `relay` and of every `run` tunnel.
pub(crate) async fn serve(tunnels: Vec<Tunnel>, handover: &mut Handover) -> Result<ExitCode, Fail> {
    // Some(cause) once accepting stops everywhere.
    let (stop_accepting, accepting) = tokio::sync::watch::channel(None::<DrainCause>);
    let failed = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let mut loops = JoinSet::new();
    for t in tunnels {
        loops.spawn(accept_and_drain(
            t,
            accepting.clone(),
            failed.clone(),
            open.clone(),
        ));
    }
    let mut served = Vec::new();
    let mut cause = DrainCause::Stop;
    loop {
        tokio::select! {
            done = loops.join_next() => match done {
                Some(s) => served.push(s),
                None => break,
            },
            () = shutdown_signal() => break,
            pid = handover.successor_ready() => {
                cause = DrainCause::Handover(pid);
                line!(
                    info,
                    "handover: successor pid {pid} is ready; no longer accepting, draining {} connection(s)",
                    open.load(Ordering::Relaxed)
                );
                break;
            }
        }
    }
    stop_accepting.send_replace(Some(cause));
    while let Some(s) = loops.join_next().await {
        served.push(s);
    }
    let mut relayed = 0;
    let mut fatal = Vec::new();
    for s in served {
        match s {
            Ok(s) => {
                relayed += s.relayed;
                fatal.extend(s.fatal);
            }
            Err(e) => fatal.push(format!("a tunnel's task ended: {e}")),
        }
    }
    let failed = failed.load(Ordering::Relaxed);
    if !fatal.is_empty() {
        return Err(Fail::Run(fatal.join("; ")));
    }
    if failed > 0 {
        return Err(Fail::Run(format!(
            "{failed} of {relayed} relayed connection(s) failed or were cut (see above)"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// One tunnel: accept until told to stop (or the listener is done), then close the listener
/// and drain its connections up to its deadline.
async fn accept_and_drain(
    t: Tunnel,
    mut accepting: tokio::sync::watch::Receiver<Option<DrainCause>>,
    failed: Arc<AtomicU64>,
    open: Arc<AtomicU64>,
) -> Served {
    let Tunnel {
        name,
        mut listener,
        target,
        settings,
        max,
        drain_for,
        drain_named,
    } = t;
    let label: Arc<str> = Arc::from(name.as_deref().unwrap_or("relay"));
    let prefix: Arc<str> = Arc::from(
        name.as_deref()
            .map(|n| format!("tunnel {n}: "))
            .unwrap_or_default(),
    );
    let slots = Arc::new(Semaphore::new(max));
    // At the drain deadline, what is still open is cut (a reset and a warning each), not
    // closed as if it were complete.
    let (cut_all, stop) = tokio::sync::watch::channel(None::<String>);
    let mut tasks = JoinSet::new();
    let mut relayed = 0u64;
    let mut fatal = None;
    let stopped = |accepting: &mut tokio::sync::watch::Receiver<Option<DrainCause>>| {
        let mut a = accepting.clone();
        async move {
            let _ = a.wait_for(Option::is_some).await;
        }
    };
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut accepting) => break,
        };
        let conn = tokio::select! {
            c = listener.accept() => match c {
                Ok(c) => c,
                // A listener that has handed out its only connection (stdio:).
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => break,
                Err(e) => {
                    fatal = Some(format!("{prefix}{listener}: {e}; no longer accepting"));
                    break;
                }
            },
            () = stopped(&mut accepting) => break,
        };
        while tasks.try_join_next().is_some() {}
        relayed += 1;
        crate::exporter::accepted(&label);
        open.fetch_add(1, Ordering::Relaxed);
        let (failed, open, stop) = (failed.clone(), open.clone(), stop.clone());
        let (label, prefix) = (label.clone(), prefix.clone());
        let target = match &target {
            Target::Connect(t) => Some(t.clone()),
            Target::Echo => None,
        };
        tasks.spawn(async move {
            let _permit = permit;
            let clean = match target {
                Some(target) => {
                    relay_one(conn, &*target, settings, Some(stop), &label, &prefix).await
                }
                None => {
                    let (clean, echoed) = crate::session::echo(conn, stop).await;
                    let end = if clean {
                        crate::exporter::End::Clean
                    } else {
                        crate::exporter::End::Truncated
                    };
                    // Each byte went up to the echo and came back down.
                    crate::exporter::ended(&label, echoed, echoed, end);
                    clean
                }
            };
            if !clean {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            open.fetch_sub(1, Ordering::Relaxed);
            crate::exporter::closed(&label);
        });
    }
    if let Some(m) = &fatal
        && name.is_some()
    {
        // The other tunnels go on: said now, and again at exit.
        line!(error, "{m}");
    }
    let _ = listener.close().await;
    // The listener ended by itself: the drain follows as after a stop.
    let cause = accepting.borrow().unwrap_or(DrainCause::Stop);
    drain_or_cut(tasks, drain_for, &drain_named, cause, &cut_all, &failed).await;
    Served { relayed, fatal }
}

/// What ended the accepting before a drain: a stop (SIGINT/SIGTERM, or the end of a
/// `--once`), or a successor that took the listeners over after a `SIGHUP`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DrainCause {
    Stop,
    Handover(u32),
}

impl std::fmt::Display for DrainCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stop => f.write_str("SIGINT/SIGTERM"),
            Self::Handover(pid) => write!(f, "the SIGHUP handover to pid {pid}"),
        }
    }
}

/// The successor `pid` is ready: log how many connections are still open (finished tasks
/// reaped first, so the count is the open ones) and say that the drain follows a handover.
pub(crate) fn handover_ready<T: 'static>(pid: u32, tasks: &mut JoinSet<T>) -> DrainCause {
    while tasks.try_join_next().is_some() {}
    line!(
        info,
        "handover: successor pid {pid} is ready; no longer accepting, draining {} connection(s)",
        tasks.len()
    );
    DrainCause::Handover(pid)
}

/// Wait for the open connections to finish, up to `deadline` (named in words by `named`);
/// then cut the rest: each is reset on both sides and logged with its byte counts (by its
/// own task), and counted in `failed`. Tasks that do not end within [`CUT_GRACE`] of the cut
/// (one still connecting to its target) are aborted and counted too.
pub(crate) async fn drain_or_cut(
    mut tasks: JoinSet<()>,
    deadline: Duration,
    named: &str,
    after: DrainCause,
    cut_all: &tokio::sync::watch::Sender<Option<String>>,
    failed: &AtomicU64,
) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all).await.is_ok() {
        return;
    }
    err!(
        "endpoints: {} connection(s) still open at {named} after {after}: cutting them (a \
         reset to both sides)",
        tasks.len(),
    );
    cut_all.send_replace(Some(format!("still open at {named} after {after}")));
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CUT_GRACE, all).await.is_err() {
        failed.fetch_add(tasks.len() as u64, Ordering::Relaxed);
        tasks.shutdown().await;
    }
}

/// How long a cut connection's task has to reset and log once told to.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// The per-connection flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) linger: Duration,
    pub(crate) idle: Option<Duration>,
    pub(crate) half_close: HalfClose,
}

/// Relay one connection; log one line when it ends (after `prefix`: `run`'s tunnel name);
/// record its metrics under the tunnel `label`. Returns whether it ended cleanly.
async fn relay_one(
    mut conn: Connection,
    target: &dyn endpoints::ClientEndpoint,
    settings: Settings,
    stop: pump::Stop,
    label: &str,
    prefix: &str,
) -> bool {
    let started = Instant::now();
    let peer = conn.peer_addr().clone();
    // Announce the client (a PROXY header, if the target sends one): from a `haproxy:`
    // listener, the addresses its header named, so a chain of relays keeps the first client.
    let announced = endpoints::proxy::connect_announcing(
        target,
        conn.peer_addr().clone(),
        conn.local_addr().clone(),
    );
    let announced = async {
        tokio::select! {
            r = announced => r,
            why = pump::stop_signal(stop.clone()) => Err(std::io::Error::other(pump::Stopped { why })),
        }
    };
    let mut upstream = match announced.await {
        Ok(u) => {
            crate::exporter::connected(label, started.elapsed());
            u
        }
        Err(e) => {
            crate::exporter::connect_failed(label, pump::stopped_of(&e).is_some());
            line!(
                warn,
                "{prefix}relay {peer}: {e}; the client is reset{}",
                via(&conn)
            );
            reset_on_close(&conn);
            return false;
        }
    };
    let limits = Limits {
        after_a: linger_for(&upstream, settings.linger),
        after_b: linger_for(&conn, settings.linger),
        idle: settings.idle,
        finish_ab: settings
            .half_close
            .finish(destination(&upstream, settings.linger)),
        finish_ba: settings
            .half_close
            .finish(destination(&conn, settings.linger)),
    };
    let (stats, result, how) = carry(&mut conn, &mut upstream, limits, stop).await;
    // A failure on one side (a reset, a broken pipe) or a cut reaches the other side as a
    // reset: closing it cleanly would tell that peer its bytes were delivered when they may
    // not have been. Only the command's own idle timeout is an ordinary close: any other
    // timeout (a WebSocket target's `pongTimeout=`, a kernel `ETIMEDOUT`) is a truncation.
    let clean = match &result {
        Ok(()) => true,
        Err(e) => pump::is_idle_timeout(e),
    };
    if !clean {
        reset_on_close(&conn);
        reset_on_close(&upstream);
    }
    // A clean end is confirmed where the target's transport delivers after its stream is
    // dropped (an SSH channel: its server's close): the client learns of a truncation there
    // as a reset, not as a clean end.
    let (result, clean) = match result {
        Ok(()) => match crate::session::delivered(upstream).await {
            Ok(()) => (Ok(()), true),
            Err(e) => {
                reset_on_close(&conn);
                (Err(e), false)
            }
        },
        Err(e) => (Err(e), clean),
    };
    crate::exporter::ended(
        label,
        stats.a_to_b,
        stats.b_to_a,
        match &result {
            Ok(()) => crate::exporter::End::Clean,
            Err(e) if pump::is_idle_timeout(e) => crate::exporter::End::IdleCut,
            Err(e) if pump::stopped_of(e).is_some() => crate::exporter::End::DrainCut,
            Err(_) => crate::exporter::End::Truncated,
        },
    );
    let line = format!(
        "{prefix}relay {peer} -> {target}{}: {} bytes up, {} bytes down, {:.3}s, {how}",
        via(&conn),
        stats.a_to_b,
        stats.b_to_a,
        started.elapsed().as_secs_f64(),
    );
    match result {
        Ok(()) => line!(info, "{line}"),
        Err(e) => match pump::cut_of(&e) {
            Some(cut) => {
                let (way, delivered, held) = match cut.direction {
                    Direction::AToB => ("up", stats.a_to_b, stats.a_to_b_held),
                    Direction::BToA => ("down", stats.b_to_a, stats.b_to_a_held),
                };
                line!(
                    warn,
                    "{line} (warning: cut: the {way} direction was still open, with nothing \
                     moving for {:?}, after the other ended (--linger); {delivered} bytes had \
                     gone {way}, {held} read but not delivered were dropped; both sides reset)",
                    cut.after
                );
            }
            None if pump::stopped_of(&e).is_some() => line!(
                warn,
                "{line} (warning: {e}; {} bytes up and {} bytes down read but not delivered \
                 were dropped; both sides reset)",
                stats.a_to_b_held,
                stats.b_to_a_held
            ),
            None if clean => line!(info, "{line} ({e})"),
            None => line!(
                warn,
                "{line} (warning: the transfer was truncated: {e}; {} bytes up and {} bytes \
                 down read but not delivered were dropped; both sides reset)",
                stats.a_to_b_held,
                stats.b_to_a_held
            ),
        },
    }
    clean
}

/// How long the direction reading from `source` may stay quiet once the other direction has
/// ended: `--linger`, unless `source` declares that its data ends by itself (an `exec:`
/// program: its exit is the end, however long it works before answering).
fn linger_for(source: &Connection, linger: Duration) -> Linger {
    match source.extensions().get::<endpoints::EndsByItself>() {
        Some(_) => Linger::Forever,
        None => Linger::For(linger),
    }
}

/// Move bytes both ways until both directions end. Plain TCP/unix on both sides (also under
/// a PROXY header, once the bytes that came with it are forwarded), or a socket and a target
/// that declared its descriptors (`exec:`'s pipes): splice in the kernel (Linux); else (TLS, other systems, ...), or if the kernel refuses splice before any byte
/// was taken, the buffered copy. Returns the byte counts, the outcome and how the bytes moved.
#[cfg(target_os = "linux")]
async fn carry(
    conn: &mut Connection,
    upstream: &mut Connection,
    limits: Limits,
    stop: pump::Stop,
) -> (pump::Stats, std::io::Result<()>, &'static str) {
    let early = splice::take_early(conn, upstream);
    if let Err(e) = upstream.write_all(&early).await {
        return (pump::Stats::default(), Err(e), "copied");
    }
    let client = splice::End::of(conn);
    let spliced = if let (Some(a), Some(b)) = (client, splice::End::of(upstream)) {
        match splice::pump(a, b, limits, stop.clone()).await {
            (_, Err(e)) if splice::is_refused(&e) => None,
            done => Some(done),
        }
    } else if let Some(a) = client
        && splice::has_descriptors(upstream)
    {
        // A target whose stream declared its descriptors (`exec:`'s pipes).
        match splice::pump_descriptors(a, upstream, limits, stop.clone()).await {
            (_, Err(e)) if splice::is_refused(&e) => None,
            done => Some(done),
        }
    } else {
        None
    };
    let ((mut stats, result), how) = match spliced {
        Some(done) => (done, "spliced"),
        None => (
            pump_until(&mut *conn, &mut *upstream, limits, stop).await,
            "copied",
        ),
    };
    stats.a_to_b += early.len() as u64;
    (stats, result, how)
}

/// Move bytes both ways until both directions end: the buffered copy (`splice` is Linux-only).
#[cfg(not(target_os = "linux"))]
async fn carry(
    conn: &mut Connection,
    upstream: &mut Connection,
    limits: Limits,
    stop: pump::Stop,
) -> (pump::Stats, std::io::Result<()>, &'static str) {
    let (stats, result) = pump_until(&mut *conn, &mut *upstream, limits, stop).await;
    (stats, result, "copied")
}

/// Where `conn` came from when that is not its peer address: under a `haproxy:` listener the
/// peer is the client the PROXY header named, and the socket's peer (the proxy) is said too.
/// Empty otherwise.
pub(crate) fn via(conn: &Connection) -> String {
    let mut bottom = conn;
    // Bounded: descriptions nest at most `registry::MAX_DEPTH` levels.
    for _ in 0..64 {
        match bottom.beneath() {
            Some(c) => bottom = c,
            None => break,
        }
    }
    if bottom.peer_addr() == conn.peer_addr() {
        return String::new();
    }
    let header = if conn
        .extensions()
        .get::<endpoints::proxy::ProxyHeader>()
        .is_some()
    {
        "PROXY header source; "
    } else {
        ""
    };
    format!(" ({header}connected from {})", bottom.peer_addr())
}

/// Whether `conn` is a TLS connection (its `close_notify` is what `--half-close auto` waits
/// with).
pub(crate) fn is_tls(conn: &Connection) -> bool {
    conn.extensions().get::<endpoints::tls::TlsInfo>().is_some()
}

/// What `conn` does with an end of data, for the half-close policy: a `ws:`/`wss:`
/// connection that agreed on our in-band half-close takes it as a socket does, one with a
/// peer that is not ours only as a Close (held until that peer has been quiet for `quiet`);
/// else TLS or a socket.
pub(crate) fn destination(conn: &Connection, quiet: Duration) -> pump::Destination {
    match conn.extensions().get::<endpoints::ws::WsInfo>() {
        Some(ws) if ws.half_close => pump::Destination::HalfCloses,
        Some(_) => pump::Destination::CloseOnly(quiet),
        None if is_tls(conn) => pump::Destination::Tls,
        None => pump::Destination::HalfCloses,
    }
}

/// Make dropping `conn` send a TCP reset (`SO_LINGER` 0) when a TCP socket is under it: plain,
/// under a PROXY header or under TLS. Unix sockets have no reset (the peer sees EOF or
/// `EPIPE`), so those close normally.
pub(crate) fn reset_on_close(conn: &Connection) {
    if let Some(tcp) = splice::End::under(conn).and_then(splice::End::tcp) {
        // Best effort: the connection is being torn down either way.
        let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_follows_the_open_files_limit() {
        assert_eq!(default_max_connections(1024), (1024 - 32) / 6);
        assert_eq!(default_max_connections(64), 5);
        assert_eq!(default_max_connections(10), 1, "never zero");
        assert_eq!(default_max_connections(u64::MAX), MAX_CONNECTIONS);
    }
}
