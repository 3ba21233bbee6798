//! `ssh:`: connect through an SSH server, as `ssh -W` does, to a host and port
//! (`direct-tcpip`) or a unix socket (`direct-streamlocal@openssh.com`), or speak to a
//! command it runs (`exec`, Twisted conch's command endpoint). The SSH server is reached
//! with happy eyeballs by default (`hostname:HOST:22`) or any client description
//! (`endpoint=`). Connections through one endpoint share one SSH session (OpenSSH's
//! ControlMaster): each is a channel.
//!
//! ```text
//! ssh:bastion.example:forward=db.internal\:5432:username=deploy:keys=/etc/deploy/id_ed25519
//! ssh:bastion.example:forward=/run/postgresql/.s.PGSQL.5432
//! ssh:host.example:2222:command=cat:knownHosts=/etc/endpoints/known_hosts
//! ssh:host.example:command=nc\ localhost\ 25:endpoint=socks5\:proxy\:1080\:proxy=tcp\\:127.0.0.1\\:1080
//! ```
//!
//! Link it with `use endpoints_ssh as _;` (the umbrella's feature `ssh`).
//!
//! - **Trust like OpenSSH**: the server's key is checked against `~/.ssh/known_hosts`
//!   (hashed entries, `[host]:port`), a `knownHosts=` file, or a pinned `fingerprint=`;
//!   never off. An unknown key is refused with its fingerprint and the command that adds it,
//!   a changed key loudly, naming the known_hosts line.
//! - **Authentication like OpenSSH**, nothing prompts: the agent's keys (`SSH_AUTH_SOCK`, or
//!   `agent=PATH`), then key files (`keys=`, by default `~/.ssh/id_ed25519` and
//!   `~/.ssh/id_ecdsa`), encrypted ones with a passphrase from `passphraseFile=` or the
//!   variable named by `passphraseEnv=`. A refusal says what was tried and what the server
//!   offers.
//! - **Half-close**: shutting the write side sends the channel's `eof`; the server's `eof`
//!   ends reading. A forward cut without `eof` is a reset, not a clean end. A command's
//!   non-zero exit (or a signal) is an error after its output ([`stream::ExitError`]); its
//!   stderr is logged, at most 64 KiB.
//! - **One session**: the first connect opens it; keepalives (`keepalive=`,
//!   `keepaliveMax=`) find a dead one, and the next connect opens a new one; it closes
//!   `idleTimeout=` after its last connection ends.
//!
//! The server side listens through an SSH server (`ssh -R`): `ssh:bastion:listen=8080`
//! (`tcpip-forward`) or `listen=/path` (`streamlocal-forward@openssh.com`); each channel the
//! server opens for a connection there is an accepted connection, its peer the originator's
//! address; `close()` cancels the forward.
//!
//! Crypto: russh on `ring`, the provider rustls uses here (no second crypto stack).
//! RSA keys are not supported (ed25519 and ECDSA are).
//!
//! Ciphers: `aes256-gcm@openssh.com` first where the CPU has AES instructions (there ring's
//! AES-GCM is several times faster than chacha20-poly1305, and so is the server's), else
//! `chacha20-poly1305@openssh.com` first as OpenSSH; then the other of the two, then AES-CTR.
//! Channels: a 2 MiB window and data packets of up to 64 KiB towards us.

pub mod client;
pub mod params;
pub mod server;
mod session;
pub mod stream;
pub mod trust;

pub use client::{SshClientEndpoint, SshInfo, Target};
pub use params::{CLIENT_PARAMS, CLIENT_TRANSPORT, SERVER_PARAMS};
pub use server::{SshListener, SshServerEndpoint};
