//! `systemd:` server endpoint: listen on a socket passed by systemd socket activation.
//!
//! This crate provides:
//!
//! * the `fd:` server prefix: the same, by descriptor number or name, for any family;
//! * the `systemd:` server prefix: adopt an inherited listening socket by index or by name,
//!   after checking it really is a listening stream socket of the named family;
//! * [`init`]: read the activation variables at the start of `main`, take ownership of the
//!   passed descriptors, mark every one close-on-exec, and remove the variables so children
//!   do not inherit them;
//! * [`Activation`]: the passed descriptors and names, with libsystemd's rules; descriptors
//!   handed over another way come as `OwnedFd` ([`Activation::with_descriptors`]);
//! * [`notify`] / [`notify_ready`]: `sd_notify` readiness; [`notify_with_fds`]: the same with
//!   descriptors attached (`FDSTORE=1`), and [`monotonic_usec`] for `RELOADING=1`.
//!
//! The rules are libsystemd's, not Twisted's: `LISTEN_PID` must be this process; without
//! `LISTEN_FDNAMES` every descriptor is named `unknown` (index still works); a name count
//! that differs from `LISTEN_FDS` is an error; a `LISTEN_FDS` above the open-files limit
//! (`RLIMIT_NOFILE`) is an error, found before anything is allocated for it; every passed
//! descriptor is made close-on-exec, even when the variables are inconsistent;
//! `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` are all removed. Each descriptor is adopted
//! by at most one listener: one whose checks fail stays open and available, and none is ever
//! closed twice. Adopted unix sockets are never chmod-ed or removed (twisted#10261).
//!
//! Platforms: Linux and macOS (CI checks the macOS build). The `LISTEN_FDS` protocol is
//! portable; where socket2 cannot ask a socket whether it listens (not Linux), the check uses
//! `SO_ACCEPTCONN` and the local address's family. An abstract `NOTIFY_SOCKET` (`@name`) is
//! Linux-only and is an error elsewhere.
//!
//! # `systemd:` parameters
//!
//! <!-- params: systemd server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `domain` | 1 | one of INET\|INET6\|UNIX | required | address family the inherited socket must have |
//! | `index` | 2 | integer |  | position among the passed descriptors (0 is fd 3); give index or name |
//! | `name` | 3 | text |  | name from LISTEN\_FDNAMES (FileDescriptorName=); give index or name |
//! <!-- /params -->
//!
//! Exactly one of `index` and `name`.
//!
//! # `fd:` parameters
//!
//! `fd:3`, `fd:name=web`: the same passed descriptors, whatever their family (a TCP socket over
//! IPv4 or IPv6, or a unix socket), as daphne's `fd:`, Caddy's `fd/N` and HAProxy's `fd@N`.
//! A descriptor that is not a listening stream socket is refused with what it is (`a pipe`,
//! `an IPv4 datagram socket`, `an IPv4 stream socket that is not listening`, ...) and left
//! open. Only descriptors passed by the `LISTEN_FDS` protocol are adopted: any other number
//! may already belong to this process.
//!
//! <!-- params: fd server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `fd` | 1 | integer |  | descriptor number (3 is the first passed); give fd or name |
//! | `name` |  | text |  | name from LISTEN\_FDNAMES (FileDescriptorName=); give fd or name |
//! <!-- /params -->
//!
//! # Handover
//!
//! Descriptors whose names start with `ep.` were passed by a handover
//! (`endpoints_util::handover`): [`init`] gives them to the `tcp:`, `tcp6:` and `unix:`
//! listeners, which adopt them by description. Listeners adopted with `systemd:` or `fd:` are
//! passed on by a handover too, under their own descriptions: in the successor, `fd:` and
//! `systemd:` descriptions are resolved against those keys first, so `fd:name=web`,
//! `systemd:UNIX:name=web`, `fd:5` and `systemd:UNIX:index=2` find their socket although
//! the successor's `LISTEN_FDNAMES` are keys and its `LISTEN_FDS` counts only what was handed
//! over.
//!
//! # Example
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // First thing, before any thread exists:
//!     endpoints_systemd::init()?;
//!     let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     rt.block_on(async {
//!         let d = "systemd:domain=INET6:name=web".parse()?;
//!         let mut listener = endpoints_core::registry::build_server(&d)?.listen().await?;
//!         endpoints_systemd::notify_ready()?;
//!         loop {
//!             let conn = listener.accept().await?;
//!             drop(conn);
//!         }
//!     })
//! }
//! ```
//!
//! If [`init`] is not called, the variables are read on first use and left in the
//! environment (removing them is only sound before other threads exist). They are read once
//! per process: a later [`init`] keeps that state and only removes the variables.
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod activation;
mod env;
mod fd;
mod fdstore;
mod notify;
mod server;

pub use activation::{Activation, LISTEN_FDS_START, VARIABLES};
pub use fd::{FD_PARAMS, FdServerEndpoint};
pub use fdstore::{MAX_FDS, monotonic_usec, notify_with_fds};
pub use notify::{notify, notify_ready};
pub use server::{SERVER_PARAMS, SocketDomain, SystemdServerEndpoint};

/// Read the socket-activation variables, mark the passed descriptors close-on-exec, and
/// remove the variables from the environment. Call it at the start of `main`, before the
/// tokio runtime or any other thread starts: removing environment variables is only sound
/// while one thread exists (with more, they are left in place and a warning is logged).
///
/// Returns how many descriptors were passed (0 when the process was not activated), or the
/// inconsistency found (for example a `LISTEN_FDNAMES` count that differs from `LISTEN_FDS`,
/// or a `LISTEN_FDS` above the open-files limit). The variables are read once per process;
/// calling `init()` again (or after they were read on first use) keeps that state.
pub fn init() -> Result<usize, InitError> {
    activation::init_state(true).map_err(InitError)
}

/// The activation variables are inconsistent.
#[derive(Debug, Clone)]
pub struct InitError(String);

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "socket activation: {}", self.0)
    }
}

impl std::error::Error for InitError {}
