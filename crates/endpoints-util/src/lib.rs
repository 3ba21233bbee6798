//! The runtime machinery `endpoints` transports share, kept out of `endpoints-core` so that
//! the plugin contract neither sleeps, spawns nor logs:
//!
//! * [`accept`]: the accept-loop policy every listener shares (skip per-connection errors,
//!   back off on resource exhaustion, log once per episode);
//! * [`upgrade`]: [`UpgradeListener`], which runs a wrapper's
//!   per-connection step (a TLS handshake, a PROXY header) off the accept loop, with a
//!   deadline, a total cap and a per-source share under pressure (`maxPendingPerSource`);
//! * [`handover`]: hand the listening sockets to the next process (the keys listeners are
//!   known by, the inherited sockets, the successor and its readiness pipe);
//! * [`metrics`]: the names of the metrics the library and the command record, the
//!   `tunnel` label's scope, and the handles the upgrade pool records through
//!   (docs/metrics.md);
//! * [`Prefixed`]: a stream that yields bytes already read ahead before the rest (the
//!   `haproxy:` wrapper's header segment, an HTTP proxy's bytes after its answer).
//!
//! A plugin that only needs the traits, the grammar and the registry depends on
//! `endpoints-core` alone (the `stdio:` plugin does); a transport with an accept loop, or a
//! wrapper that upgrades connections, depends on this crate too.
//!
//! # Supported Rust versions
//!
//! The minimum is the workspace `rust-version` (1.89). Raising it is not a breaking change.

pub mod accept;
pub mod handover;
pub mod metrics;
mod prefixed;
pub mod upgrade;

pub use accept::AcceptBackoff;
pub use prefixed::Prefixed;
pub use upgrade::{CountAs, UpgradeListener, UpgradeSettings};
