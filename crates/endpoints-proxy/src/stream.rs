//! How a `haproxy:` connection sits over the connection beneath: [`Prefixed`] (from
//! `endpoints-util`) with the bytes that arrived with the header, declared as a [`Layer`].

use endpoints_core::{Connection, Layer};
pub use endpoints_util::Prefixed;

/// How a `haproxy:` connection sits over the connection beneath: the bytes that arrived with
/// the header, then that connection's bytes unchanged. Callers reach the socket through
/// [`Connection::beneath`] and [`Connection::buffered_above`], without naming [`Prefixed`].
pub(crate) static LAYER: Layer<Prefixed<Connection>> =
    Layer::<Prefixed<Connection>>::new(Prefixed::get_ref, Prefixed::get_mut)
        .passing_bytes_through(|p| p.buffered().len(), Prefixed::take_buffered);
