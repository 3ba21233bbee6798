//! `stdio:` server endpoint: a listener whose one connection is this process's stdin and
//! stdout.
//!
//! Useful wherever something else made the connection and handed it over as standard input
//! and output: inetd, `ssh -o ProxyCommand=...`, systemd socket units with `Accept=yes`, or a
//! pipe in a test. This crate is also the worked example of a third-party plugin: it depends
//! on `endpoints-core` only and registers itself when linked (`use endpoints_stdio as _;`);
//! `docs/writing-a-plugin.md` walks through it.
//!
//! # `stdio:` parameters
//!
//! None. `stdio` and `stdio:` are the same. (Twisted ignores any arguments; unknown ones are
//! an error here.)
//!
//! The first `accept()` returns the connection (local and peer address `Unnamed`); the next
//! `accept()` fails, so an accept loop ends after the one connection. Reading sees EOF when
//! stdin ends; shutting down writing flushes stdout.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use endpoints_stdio as _;
//!
//! let mut listener = endpoints_core::registry::build_server(&"stdio".parse()?)?.listen().await?;
//! let mut conn = listener.accept().await?;
//! let mut line = Vec::new();
//! conn.read_to_end(&mut line).await?;
//! conn.write_all(&line).await?;
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

use std::fmt;
use std::io;

use endpoints_core::params::Param;
use endpoints_core::{
    Address, Connection, Description, ErrorKind, Listener, ParseError, ServerEndpoint, async_trait,
};

/// `stdio:` takes no parameters.
pub static PARAMS: &[Param] = &[];

/// The `stdio:` server endpoint.
#[derive(Debug, Default)]
pub struct StdioEndpoint;

impl fmt::Display for StdioEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdio")
    }
}

#[async_trait]
impl ServerEndpoint for StdioEndpoint {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        Ok(Box::new(StdioListener { taken: false }))
    }
}

/// The listener: one connection, then none.
#[derive(Debug)]
pub struct StdioListener {
    taken: bool,
}

impl fmt::Display for StdioListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdio")
    }
}

#[async_trait]
impl Listener for StdioListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        if self.taken {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "`stdio` has one connection, already accepted",
            ));
        }
        self.taken = true;
        let stream = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        Ok(Connection::new(stream, Address::Unnamed, Address::Unnamed))
    }

    fn local_addr(&self) -> io::Result<Address> {
        Ok(Address::Unnamed)
    }

    async fn close(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

fn build(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    // Only the prefix, and empty fields (`stdio:` is accepted, as in Twisted).
    let prefix_at = d.fields().iter().position(|f| f.is_positional());
    for (i, f) in d.fields().iter().enumerate() {
        if Some(i) == prefix_at || (f.is_positional() && f.value().is_empty()) {
            continue;
        }
        let what = match f.key() {
            Some(k) => format!("unknown parameter `{k}` for `stdio` (it takes none)"),
            None => format!(
                "unexpected positional field `{}`: `stdio` takes none",
                f.value()
            ),
        };
        let span = f.key_span().unwrap_or_else(|| f.span());
        return Err(d.error(ErrorKind::UnknownParameter, span, what));
    }
    Ok(Box::new(StdioEndpoint))
}

endpoints_core::register_server! {
    prefix: "stdio",
    summary: "one connection made of stdin and stdout (inetd, ssh ProxyCommand, Accept=yes)",
    params: PARAMS,
    build: build,
}
