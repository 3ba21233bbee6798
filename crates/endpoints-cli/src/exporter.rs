//! The command's metrics (issue 32): each tunnel's connections, bytes, target connects and
//! ends, recorded through the `metrics` facade under the names of
//! [`endpoints::util::metrics`] with the label `tunnel` (`run`'s name for it; `relay` for the
//! `relay` command), and, for `endpoints run` with `metrics = "DESC"`, served as Prometheus
//! text exposition on `GET /metrics` at that server description (anything else: 404).
//!
//! The recorder is [`crate::prometheus`]'s; the listener is one of ours (any description:
//! `tcp:`, `unix:`, `tls:` with client certificates, `haproxy:`), answered by the small HTTP/1
//! responder below. With no recorder installed
//! (`relay`, `run` without `metrics`), recording costs a check of a global.
//!
//! Counters are this process's: a reload (a handover) starts them again from zero in the
//! successor, which Prometheus's `rate()` and `increase()` take as a counter reset.

use std::sync::OnceLock;
use std::time::Duration;

use endpoints::util::metrics as names;
use metrics::{counter, gauge, histogram};

use crate::prometheus::Handle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Fail;

/// How a relayed connection ended (the `end` label).
#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    Clean,
    Truncated,
    DrainCut,
    IdleCut,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Truncated => "truncated",
            Self::DrainCut => "drain_cut",
            Self::IdleCut => "idle_cut",
        }
    }
}

/// The installed recorder's handle (`run` with `metrics = ...`).
static HANDLE: OnceLock<Handle> = OnceLock::new();

/// Install the Prometheus recorder (once, before any tunnel records) and set the build info.
pub(crate) fn install() -> Result<(), Fail> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = Handle::default();
    metrics::set_global_recorder(handle.clone())
        .map_err(|e| Fail::Run(format!("metrics: cannot install the recorder: {e}")))?;
    let _ = HANDLE.set(handle);
    describe();
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    counter!(names::HANDOVERS).absolute(0);
    if endpoints::util::handover::started_by_handover() {
        reloaded();
    }
    Ok(())
}

/// The help lines of the exposition.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::CONNECTIONS_ACCEPTED,
        "Connections accepted, by tunnel."
    );
    describe_gauge!(names::CONNECTIONS_OPEN, "Connections open now, by tunnel.");
    describe_counter!(
        names::CONNECTIONS_REFUSED,
        "Connections refused by policy or limit, by tunnel (the command queues at its limit)."
    );
    describe_counter!(
        names::CONNECTIONS_ENDED,
        "Connections ended, by tunnel and how."
    );
    describe_counter!(
        names::BYTES,
        Unit::Bytes,
        "Bytes relayed, by tunnel and direction."
    );
    describe_counter!(
        names::CONNECT_FAILURES,
        "Connections to a tunnel's target that failed."
    );
    describe_histogram!(
        names::CONNECT_SECONDS,
        Unit::Seconds,
        "How long a successful connect to a tunnel's target took."
    );
    describe_counter!(
        names::HANDOVERS,
        "Handovers (reloads) that started this process."
    );
    describe_gauge!(
        names::LAST_RELOAD,
        Unit::Seconds,
        "Unix time this process took over from its predecessor (0: it did not)."
    );
    describe_gauge!(names::BUILD_INFO, "Always 1: the build, by version.");
}

/// This process took over from a predecessor (a reload).
fn reloaded() {
    counter!(names::HANDOVERS).increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!(names::LAST_RELOAD).set(now);
}

/// A tunnel starts: its series exist from now on, at zero.
pub(crate) fn tunnel_started(tunnel: &str) {
    let t = tunnel.to_owned();
    counter!(names::CONNECTIONS_ACCEPTED, names::LABEL_TUNNEL => t.clone()).absolute(0);
    gauge!(names::CONNECTIONS_OPEN, names::LABEL_TUNNEL => t.clone()).set(0.0);
    for reason in ["policy", "limit"] {
        counter!(names::CONNECTIONS_REFUSED, names::LABEL_TUNNEL => t.clone(), names::LABEL_REASON => reason)
            .absolute(0);
    }
    for dir in ["up", "down"] {
        counter!(names::BYTES, names::LABEL_TUNNEL => t.clone(), names::LABEL_DIRECTION => dir)
            .absolute(0);
    }
    counter!(names::CONNECT_FAILURES, names::LABEL_TUNNEL => t.clone()).absolute(0);
    for end in [End::Clean, End::Truncated, End::DrainCut, End::IdleCut] {
        counter!(names::CONNECTIONS_ENDED, names::LABEL_TUNNEL => t.clone(), names::LABEL_END => end.as_str())
            .absolute(0);
    }
}

/// A connection was accepted.
pub(crate) fn accepted(tunnel: &str) {
    counter!(names::CONNECTIONS_ACCEPTED, names::LABEL_TUNNEL => tunnel.to_owned()).increment(1);
    gauge!(names::CONNECTIONS_OPEN, names::LABEL_TUNNEL => tunnel.to_owned()).increment(1.0);
}

/// A connection's task ended (relayed or echoed).
pub(crate) fn closed(tunnel: &str) {
    gauge!(names::CONNECTIONS_OPEN, names::LABEL_TUNNEL => tunnel.to_owned()).decrement(1.0);
}

/// The target answered after `took`.
pub(crate) fn connected(tunnel: &str, took: Duration) {
    histogram!(names::CONNECT_SECONDS, names::LABEL_TUNNEL => tunnel.to_owned())
        .record(took.as_secs_f64());
}

/// The connect to the target failed (or was cut by a drain: `stopped`); the client is reset.
pub(crate) fn connect_failed(tunnel: &str, stopped: bool) {
    if !stopped {
        counter!(names::CONNECT_FAILURES, names::LABEL_TUNNEL => tunnel.to_owned()).increment(1);
    }
    let end = if stopped {
        End::DrainCut
    } else {
        End::Truncated
    };
    ended(tunnel, 0, 0, end);
}

/// A relayed connection ended, having carried `up` and `down` bytes.
pub(crate) fn ended(tunnel: &str, up: u64, down: u64, end: End) {
    let t = tunnel.to_owned();
    counter!(names::BYTES, names::LABEL_TUNNEL => t.clone(), names::LABEL_DIRECTION => "up")
        .increment(up);
    counter!(names::BYTES, names::LABEL_TUNNEL => t.clone(), names::LABEL_DIRECTION => "down")
        .increment(down);
    counter!(names::CONNECTIONS_ENDED, names::LABEL_TUNNEL => t, names::LABEL_END => end.as_str())
        .increment(1);
}

/// The longest request head the responder reads.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many scrapes at once (more wait in the listen queue).
const MAX_SCRAPES: usize = 16;

/// Serve `GET /metrics` on `listener` until the process ends. Each connection: one request,
/// one answer, closed (`Connection: close`).
pub(crate) async fn serve(mut listener: Box<dyn endpoints::Listener>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok(conn) => {
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = answer(conn).await {
                        tracing::debug!(target: crate::log::OWN, "metrics: {e}");
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
            Err(e) => {
                line!(warn, "metrics: {listener}: {e}; no longer serving metrics");
                return;
            }
        }
    }
}

/// Read one request head and answer it.
async fn answer(mut conn: endpoints::Connection) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(true);
            }
        }
    };
    let complete: bool = match tokio::time::timeout(HEAD_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    };
    if !complete {
        return Ok(());
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let (status, body): (&str, String) = match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("");
            let path = path.split('?').next().unwrap_or("");
            match (req.method, path) {
                (Some("GET"), "/metrics") => (
                    "200 OK",
                    HANDLE.get().map(Handle::render).unwrap_or_default(),
                ),
                _ => (
                    "404 Not Found",
                    "not found: the metrics are at GET /metrics\n".into(),
                ),
            }
        }
        _ => ("400 Bad Request", "bad request\n".into()),
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(reply.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.flush().await?;
    conn.shutdown().await
}
