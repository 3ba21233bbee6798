//! The names of the metrics `endpoints` records, in one place: the library's listeners,
//! wrappers and services, and the command's tunnels, record under these names through the
//! [`metrics`](https://docs.rs/metrics) facade. Nothing is exported here: with no recorder
//! installed, recording costs a check of a global. An application that installs a recorder
//! (a Prometheus exporter, for one) gets them all; docs/metrics.md lists them with their
//! labels.
//!
//! Names follow Prometheus conventions: counters end in `_total`, durations are `_seconds`,
//! sizes `_bytes`. Labels never hold a description (it may hold secrets) nor anything per
//! client (an address): their values come from small fixed sets, plus the name of a tunnel or
//! service that its operator chose.
//!
//! The `tunnel` label comes from [`scope`]: a listener or wrapper created inside it (in its
//! `listen()`) keeps the name and labels what it records with it. Handles are registered when
//! a listener or service is created, so install the recorder before (and every counter shows
//! from the start, at 0, as Prometheus advises).

use std::future::Future;
use std::io;
use std::sync::Arc;

use metrics::{Counter, Label};

/// Label: the tunnel (`endpoints run`'s name for it) or the service it belongs to.
pub const LABEL_TUNNEL: &str = "tunnel";
/// Label: the layer a handshake failed in: `tls`, `proxy`, `ws` (later `ssh`).
pub const LABEL_LAYER: &str = "layer";
/// Label: why, in a word from a fixed set (`timeout`, `protocol`, `certificate`, ...).
pub const LABEL_REASON: &str = "reason";
/// Label: the direction bytes moved: `up` (from the accepted client to the target) or `down`.
pub const LABEL_DIRECTION: &str = "direction";
/// Label: how a connection ended: `clean`, `truncated`, `drain_cut`, `idle_cut`.
pub const LABEL_END: &str = "end";

/// Counter: connections accepted (after every wrapper's handshake).
pub const CONNECTIONS_ACCEPTED: &str = "endpoints_connections_accepted_total";
/// Gauge: connections open now.
pub const CONNECTIONS_OPEN: &str = "endpoints_connections_open";
/// Counter: connections refused, `reason` `policy` (a type policy or a per-source share) or
/// `limit` (a connection limit).
pub const CONNECTIONS_REFUSED: &str = "endpoints_connections_refused_total";
/// Counter: connections ended, by `end`.
pub const CONNECTIONS_ENDED: &str = "endpoints_connections_ended_total";
/// Counter: bytes carried, by `direction`.
pub const BYTES: &str = "endpoints_bytes_total";
/// Counter: handshakes that failed before a connection was accepted, by `layer` and `reason`.
pub const HANDSHAKE_FAILURES: &str = "endpoints_handshake_failures_total";
/// Counter: connections to a target (a client endpoint) that failed.
pub const CONNECT_FAILURES: &str = "endpoints_connect_failures_total";
/// Histogram: how long a successful connect to a target took.
pub const CONNECT_SECONDS: &str = "endpoints_connect_duration_seconds";
/// Counter: handovers this service has made (its successors that became ready).
pub const HANDOVERS: &str = "endpoints_handovers_total";
/// Gauge: Unix time of the last reload (handover) that took effect, in seconds.
pub const LAST_RELOAD: &str = "endpoints_last_reload_timestamp_seconds";
/// Gauge, always 1: the build, with labels `version`.
pub const BUILD_INFO: &str = "endpoints_build_info";

// The tunnel label: a task-local scope, captured by listeners and services when created.

tokio::task_local! {
    static SCOPE: Arc<str>;
}

/// Run `future` with `name` as the current tunnel: the listeners, wrappers and services
/// created inside it (a `listen()`, a `ServerService::start`) label what they record with
/// `tunnel="NAME"`. Outside any scope they record without a `tunnel` label (Prometheus reads
/// a missing label as the empty string: `{tunnel=""}` selects them).
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// use std::sync::Arc;
/// let name: Arc<str> = "web".into();
/// // Everything the listener records is labelled tunnel="web".
/// let listener = endpoints_util::metrics::scope(name, async {
///     // endpoint.listen().await
/// }).await;
/// # Ok(()) }
/// ```
pub async fn scope<F: Future>(name: Arc<str>, future: F) -> F::Output {
    SCOPE.scope(name, future).await
}

/// The current tunnel name (see [`scope`]), if any.
pub fn current() -> Option<Arc<str>> {
    SCOPE.try_with(Arc::clone).ok()
}

/// The labels for `name`'s metrics: `tunnel` if there is one, then `rest`.
pub fn labels(tunnel: Option<&Arc<str>>, rest: &[(&'static str, &'static str)]) -> Vec<Label> {
    let mut v = Vec::with_capacity(rest.len() + 1);
    if let Some(t) = tunnel {
        v.push(Label::new(LABEL_TUNNEL, t.clone()));
    }
    v.extend(rest.iter().map(|&(k, val)| Label::new(k, val)));
    v
}

/// The layer a handshake failed in (the value of [`LABEL_LAYER`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// `tls:`/`ssl:` (and `acme:`'s handshakes).
    Tls,
    /// `haproxy:` (the PROXY header).
    Proxy,
    /// `ws:` (the WebSocket upgrade).
    Ws,
}

impl Layer {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Tls => "tls",
            Layer::Proxy => "proxy",
            Layer::Ws => "ws",
        }
    }
}

/// Why a handshake failed (the value of [`LABEL_REASON`] on [`HANDSHAKE_FAILURES`]): a word
/// from a fixed set, never the error's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The deadline passed (a silent or slow client).
    Timeout,
    /// The peer spoke something else, or broke the protocol (not TLS, a bad PROXY header,
    /// not an HTTP upgrade).
    Protocol,
    /// A certificate was refused, by either side.
    Certificate,
    /// The request was understood and refused by policy (a `ws:` path, origin or token; an
    /// untrusted PROXY sender).
    Refused,
    /// The connection failed beneath (reset, closed mid-handshake).
    Io,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 5] = [
        Reason::Timeout,
        Reason::Protocol,
        Reason::Certificate,
        Reason::Refused,
        Reason::Io,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Protocol => "protocol",
            Reason::Certificate => "certificate",
            Reason::Refused => "refused",
            Reason::Io => "io",
        }
    }

    /// Wrap `error` so that [`Reason::of`] reads this reason from it; its kind and text are
    /// kept (it displays as `error`).
    pub fn tag(self, error: io::Error) -> io::Error {
        io::Error::new(
            error.kind(),
            Tagged {
                reason: self,
                error,
            },
        )
    }

    /// The reason of a failed handshake: the one it was [tagged](Self::tag) with, else by its
    /// kind (`TimedOut`: timeout; `InvalidData`/`InvalidInput`: protocol;
    /// `PermissionDenied`/`ConnectionRefused`: refused; anything else: io).
    pub fn of(error: &io::Error) -> Reason {
        if let Some(t) = error.get_ref().and_then(|e| e.downcast_ref::<Tagged>()) {
            return t.reason;
        }
        match error.kind() {
            io::ErrorKind::TimedOut => Reason::Timeout,
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => Reason::Protocol,
            io::ErrorKind::PermissionDenied | io::ErrorKind::ConnectionRefused => Reason::Refused,
            _ => Reason::Io,
        }
    }
}

/// An error tagged with its [`Reason`].
#[derive(Debug)]
struct Tagged {
    reason: Reason,
    error: io::Error,
}

impl std::fmt::Display for Tagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Tagged {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// The handshake-failure counters of one listener and layer, one per [`Reason`], registered
/// when created (with no recorder installed they are no-ops: counting costs nothing).
#[derive(Clone, Debug)]
pub struct HandshakeFailures {
    by_reason: [Counter; 5],
}

impl HandshakeFailures {
    /// The counters for `layer` under `tunnel`.
    pub fn new(layer: Layer, tunnel: Option<&Arc<str>>) -> Self {
        let by_reason = Reason::ALL.map(|r| {
            metrics::counter!(
                HANDSHAKE_FAILURES,
                labels(
                    tunnel,
                    &[(LABEL_LAYER, layer.as_str()), (LABEL_REASON, r.as_str())]
                )
            )
        });
        Self { by_reason }
    }

    /// Count one failure for `reason`.
    pub fn failed(&self, reason: Reason) {
        self.by_reason[reason as usize].increment(1);
    }
}

/// The refused-connection counters of one listener (`reason` `policy` and `limit`).
#[derive(Clone, Debug)]
pub struct Refused {
    /// A per-source share, a type policy.
    pub policy: Counter,
    /// A connection limit, a full waiting room.
    pub limit: Counter,
}

impl Refused {
    /// The counters under `tunnel`.
    pub fn new(tunnel: Option<&Arc<str>>) -> Self {
        let make = |reason| {
            metrics::counter!(
                CONNECTIONS_REFUSED,
                labels(tunnel, &[(LABEL_REASON, reason)])
            )
        };
        Self {
            policy: make("policy"),
            limit: make("limit"),
        }
    }
}
