//! `exec:` client endpoint: a program started for each connection, whose stdin and stdout are
//! the connection (socat's `EXEC`, websocat's `exec:`, Twisted's `ProcessEndpoint` as text).
//!
//! This crate provides:
//!
//! * the `exec:` client: the program and its arguments as positional fields, run directly
//!   (no shell, unless the description names one: `exec:sh:-c:...`); the environment is
//!   inherited, with additions (`env=NAME=value`, repeatable) and removals (`unsetEnv=`, or
//!   `clearEnv=1`); a working directory (`cwd=`); stderr logged line by line at WARN with
//!   the program's name and pid (bounded: see below), inherited or dropped (`stderr=`);
//! * the connection: writes go to the child's stdin, reads come from its stdout, and shutting
//!   down the write side closes its stdin (the child reads end of file). Local and peer
//!   addresses are `Unnamed`; [`ExecInfo`] in the extensions has the pid and the program,
//!   and [`EndsByItself`](endpoints_core::EndsByItself) says its exit is its end (below).
//!   The pipes are declared ([`Descriptors`](endpoints_core::Descriptors)), so that `endpoints
//!   relay` splices them to and from the socket, inside the kernel;
//! * `env=` values shown nowhere: the canonical form, `Display`, `Debug` and every error say
//!   `env=NAME=***` (the child gets the value);
//! * the exit status as part of the stream: the end of stdout is an end of stream only once
//!   the program has exited with status 0. A non-zero status or a signal makes that read an
//!   error ([`ExitError`]) that names the program, the status and the last lines of stderr.
//!   A program that cannot be started fails `connect()`, naming the path searched;
//! * nothing left behind: the child leads a process group of its own. Dropping the connection
//!   sends SIGTERM to the group, SIGKILL after `grace=` (default 5 s), and reaps the child,
//!   in a task, so no zombie stays; once the program exits by itself, what it left running in
//!   its group gets the same. The child starts with descriptors 0, 1 and 2 only: every other
//!   one, even one this process inherited without close-on-exec or another thread opened
//!   without it while the child started, is closed in the child, between fork and exec
//!   (marked close-on-exec there with one `close_range(2)` call on Linux 5.11 and later, else
//!   one by one). This process's descriptors keep their flags: a pipe it passes to its own
//!   children keeps working. A program that owns all its descriptors may opt in to marking
//!   them in the whole process instead ([`set_process_wide_cloexec`]), which lets std start
//!   the child with `posix_spawn` (about twice the rate of connections that each start a
//!   child); the `endpoints` command does.
//!
//! # What ends a connection
//!
//! While the program runs, its exit is the end. Its stdout ending is not the end until it has
//! exited (with status 0: a clean end; otherwise an [`ExitError`]), and a program may be quiet
//! as long as it likes: an inetd-style handler that reads its request, then works before it
//! answers, is not cut. The connection says so to relays with
//! [`EndsByItself`](endpoints_core::EndsByItself) in its extensions: `endpoints relay` does
//! not apply its `--linger` to the direction that reads from the program. What ends it
//! otherwise: dropping the connection (the program is ended, as above), or the relay's
//! `--idle-timeout` or drain deadline, and a peer's reset.
//!
//! It composes like any client: under TLS (`tls:host=db:port=5432:endpoint=exec\:ssh\:-W\:db\\\:5432\:bastion`),
//! behind a PROXY header (`haproxy:exec:...`), and as `endpoints relay`'s target (a child
//! per relayed connection, as socat's `fork` + `EXEC`).
//!
//! A description that runs a program is as powerful as a shell: an application reading
//! descriptions from someone it does not trust refuses `exec` with a type policy
//! (`endpoints_core::registry::TypePolicy`; docs/security.md).
//!
//! # Grammar
//!
//! `exec:<program>[:<argument>...][:option=value...]`. Each positional field after the
//! program is one argument, as given: escape `:` and `\` in it with `\`, and `=` too (an
//! argument with an unescaped `=` reads as an option; the error says so and suggests the
//! escaped form). An empty field is an empty argument.
//!
//! ```text
//! exec:cat
//! exec:socat:-:TCP\:127.0.0.1\:5432
//! exec:ssh:-W:db\:5432:bastion.example:grace=2
//! exec:sh:-c:exec nc -U /run/app.sock:stderr=inherit
//! exec:python3:-u:serve.py:cwd=/srv/app:env=PYTHONPATH=lib:unsetEnv=http_proxy,https_proxy
//! ```
//!
//! <!-- params: exec client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `program` | 1 | text | required | the program: a path, or a name searched in PATH; its arguments are the positional fields after it (no shell: name one, as in `exec:sh:-c:...`) |
//! | `env` |  | text |  | `NAME=value` set in the child's environment; repeat `env=` for more; the value is shown as `***` |
//! | `unsetEnv` |  | list |  | names removed from the inherited environment (comma-separated) |
//! | `clearEnv` |  | 0/1 | `0` | 1: do not inherit this process's environment (`env=` still adds) |
//! | `cwd` |  | path |  | the child's working directory (default: this process's) |
//! | `stderr` |  | one of log\|inherit\|drop | `log` | the child's stderr: `log` (line by line at WARN with the program's name, bounded), `inherit` (this process's stderr) or `drop` |
//! | `grace` |  | seconds | `5` | on close, how long the child's process group has between SIGTERM and SIGKILL |
//! <!-- /params -->
//!
//! With `stderr=log` a line is cut at [`MAX_LINE`] bytes, at most [`MAX_LOGGED`] lines are
//! logged per child (then one line says the rest is not, and a last one counts them), and the
//! pipe is always drained, so a child that writes a lot to stderr never blocks. Control
//! characters are escaped, so the child cannot forge log lines. The last [`TAIL_LINES`] lines
//! go into the error of a failed exit.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use endpoints_exec as _;
//!
//! let client = endpoints_core::registry::build_client(&"exec:tr:a-z:A-Z".parse()?)?;
//! let mut conn = client.connect().await?;
//! conn.write_all(b"hello").await?;
//! conn.shutdown().await?; // closes tr's stdin
//! let mut out = String::new();
//! conn.read_to_string(&mut out).await?; // Ok: tr exited with status 0
//! assert_eq!(out, "HELLO");
//!
//! let failing = endpoints_core::registry::build_client(&"exec:sh:-c:echo oops >&2; exit 3".parse()?)?;
//! let mut conn = failing.connect().await?;
//! let e = conn.read_to_end(&mut Vec::new()).await.unwrap_err();
//! assert!(e.to_string().contains("exited with status 3"), "{e}");
//! assert!(e.to_string().contains("oops"), "{e}");
//! # Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None. Unix only (process groups and signals).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod parse;
mod stderr;
mod stream;
mod sys;

pub use client::{ExecClientEndpoint, ExecInfo, Stderr, set_process_wide_cloexec};
pub use parse::PARAMS;
pub use stderr::{MAX_LINE, MAX_LOGGED, TAIL_LINES};
pub use stream::{ExecStream, ExitError};
