//! The endpoint traits: [`ClientEndpoint`], [`ServerEndpoint`] and [`Listener`].

use std::fmt;
use std::io;

use async_trait::async_trait;

use crate::address::Address;
use crate::connection::Connection;

/// Something that can be connected to. Built from a description such as `tcp:db:5432`.
///
/// `Display` gives the endpoint's canonical description. Errors name the endpoint (see
/// [`io_error`](crate::io_error)).
///
/// Cancellation: dropping the `connect` future cancels the attempt; nothing is left open.
#[async_trait]
pub trait ClientEndpoint: Send + Sync + fmt::Debug + fmt::Display {
    /// Connect. Resolves once the connection is ready for application data (after any
    /// handshake the endpoint performs).
    async fn connect(&self) -> io::Result<Connection>;
}

/// Something that can be listened on. Built from a description such as `tcp:8080`.
///
/// `Display` gives the endpoint's canonical description.
#[async_trait]
pub trait ServerEndpoint: Send + Sync + fmt::Debug + fmt::Display {
    /// Start listening.
    async fn listen(&self) -> io::Result<Box<dyn Listener>>;
}

/// A listening endpoint that yields connections.
///
/// `Display` gives the canonical description of what is really bound (for `tcp:0`, the port
/// the system chose).
#[async_trait]
pub trait Listener: Send + fmt::Debug + fmt::Display {
    /// The next connection.
    ///
    /// Errors that concern one connection (a client that reset before it was accepted, a
    /// failed handshake, a bad PROXY header) never reach the caller; resource exhaustion
    /// (no free descriptors) is waited out with a bounded backoff. An error returned here
    /// means the listener cannot go on. Cancel-safe: dropping the future loses no connection.
    async fn accept(&mut self) -> io::Result<Connection>;

    /// Where the listener is bound.
    fn local_addr(&self) -> io::Result<Address>;

    /// Stop listening. Returns once the address is released: a new listener can bind it at
    /// once. Connections already accepted are not affected.
    async fn close(self: Box<Self>) -> io::Result<()>;
}
