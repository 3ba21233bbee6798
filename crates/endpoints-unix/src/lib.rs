//! `unix:` server and client endpoints.
//!
//! This crate provides:
//!
//! * [`UnixServerEndpoint`] / [`UnixListener`]: a socket file that never exists with broader
//!   permissions than `mode`, not even for an instant (the mode is set on the socket before
//!   `bind`, and an owner or group is set before group/other bits are opened); an `flock` on
//!   `<address>.lock` for the listener's lifetime; takeover of a stale socket only (one that
//!   refuses connections), never of a live one; `close()` that
//!   removes the socket and the lock file it created; a socket handed over by a previous
//!   process (`endpoints_util::handover`) keeps its file and lock in place, and removes them
//!   only once this process owns them (it signalled readiness): a successor that fails
//!   before that leaves both to the previous process, which still serves; and once the
//!   listeners are in systemd's descriptor store (`handover::stored`), closing leaves both
//!   for the next start;
//! * [`UnixClientEndpoint`], with an optional check that a live server holds the lock;
//! * [`PeerCredentials`] (pid, uid, gid) on every connection, in its extensions;
//! * Linux abstract names, written `@name` (no file, no mode, no lock); on other systems
//!   (macOS builds too, checked in CI) `@name` is a parse error that says they are Linux-only.
//!
//! # `unix:` server parameters
//!
//! <!-- params: unix server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `address` | 1 | path | required | socket path, or `@name` for a Linux abstract socket |
//! | `mode` | 2 | octal mode | `666` | permission bits of the socket file, set before it exists |
//! | `backlog` | 3 | integer | `1024` | accept queue length |
//! | `lockfile` | 4 | 0/1 | `1` | hold &lt;address&gt;.lock (flock) and take over a stale socket (one that refuses connections) |
//! | `owner` |  | text |  | user name or uid to own the socket file |
//! | `group` |  | text |  | group name or gid of the socket file |
//! <!-- /params -->
//!
//! With `lockfile=1`: a live owner makes `listen` fail with "in use by another process" and
//! its socket is left alone; of any number of processes racing for one path, exactly one wins.
//! An existing socket file is taken over only when it is stale, that is when a connection to it
//! is refused: if anything accepts (a server that does not use the lock: Python's
//! `socket.bind()`, nginx, a systemd socket unit, a `lockfile=0` listener), `listen` fails
//! with `AddrInUse` naming the path and the file is left alone. Anything at the path that is
//! not a socket is an error, never removed. Twisted's lock (a symbolic link
//! `<address>.lock -> "<pid>"`) is recognised: a live pid means in use, a dead one is stale
//! and the link is removed (never its target). The lock path is opened with `O_NOFOLLOW`; any
//! other symbolic link there is an error and is left alone. After `bind`, owner, group and
//! mode are set without following symbolic links. With `lockfile=0` an existing file makes
//! `listen` fail with "address in use".
//!
//! # `unix:` client parameters
//!
//! <!-- params: unix client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `path` | 1 | path | required | socket path, or `@name` for a Linux abstract socket |
//! | `timeout` |  | seconds | `30` | connect deadline in seconds (0: none) |
//! | `lockfile` |  | 0/1 | `0` | 1: connect only if a live server holds &lt;path&gt;.lock |
//! | `checkPID` |  | 0/1 |  | the same as `lockfile` (Twisted's documented name) |
//! <!-- /params -->
//!
//! `checkPID=0` means off (in Twisted any `checkPID` value was truthy).
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_core::registry::{build_client, build_server};
//! use endpoints_unix::PeerCredentials;
//! use endpoints_unix as _;
//!
//! let dir = std::env::temp_dir().join(format!("endpoints-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("app.sock");
//! let desc = format!("unix:{}:mode=600", path.display());
//! let mut listener = build_server(&desc.parse()?)?.listen().await?;
//! let client = build_client(&format!("unix:{}", path.display()).parse()?)?;
//! let (_c, s) = tokio::join!(client.connect(), listener.accept());
//! let creds = *s?.extensions().get::<PeerCredentials>().ok_or("no credentials")?;
//! assert_eq!(creds.pid, Some(std::process::id() as i32));
//! listener.close().await?;
//! assert!(!path.exists());
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
mod client;
mod listener;
mod lock;
mod parse;
mod server;
mod sys;

pub use address::{MAX_PATH_LEN, PeerCredentials, UnixAddress};
pub use client::UnixClientEndpoint;
pub use listener::UnixListener;
pub use parse::{CLIENT_PARAMS, SERVER_PARAMS};
pub use server::{UnixServerConfig, UnixServerEndpoint};
