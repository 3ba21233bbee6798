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
