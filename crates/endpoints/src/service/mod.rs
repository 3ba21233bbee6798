//! Long-lived clients and servers on top of endpoints: [`ClientService`] (reconnects with a
//! [`RetryPolicy`]), [`ServerService`] (graceful shutdown), and integrations for axum and
//! hyper-util (and tonic, feature `tonic`).
//!
//! The services record through the `metrics` facade (docs/metrics.md): `ServerService`
//! connections accepted, open and ended; `ClientService` connect failures and connect time;
//! labelled `tunnel` with [`ServerService::start_named`]'s or [`ClientService::name`]'s name.

mod backoff;
mod client;
mod integrations;
mod server;
mod shutdown;

pub use backoff::{Backoff, Jitter, RetryPolicy};
pub use client::{
    ClientService, Connected, FailedAttempt, Lost, LostReason, Phase, ProtocolEnd,
    WhenConnectedError,
};
#[cfg(feature = "axum")]
pub use integrations::{
    AxumListener, ConnectionInfo, PeerAddr, serve_axum, serve_axum_with_shutdown,
};
pub use integrations::{Incoming, incoming};
#[cfg(feature = "tonic")]
pub use integrations::{TonicIo, tonic_incoming};
pub use server::{IntoServerEndpoint, IntoServerEndpoints, ServerService, ShutdownReport};
pub use shutdown::Shutdown;
