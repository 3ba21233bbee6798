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
//!   (hashed entries, `[host]:port`, patterns with `*`, `?` and `!`), a `knownHosts=` file,
//!   or a pinned `fingerprint=`; never off. An unknown key is refused with its fingerprint and
//!   the command that adds it, a changed key loudly, naming the known_hosts line. A key on a
//!   `@revoked` line is refused whatever else vouches for it. `@cert-authority PATTERNS KEY`
//!   lines trust OpenSSH host certificates (`*-cert-v01@openssh.com`, asked for only when such
//!   a line names the host) that the authority signed, for a host certificate, valid now,
//!   naming the host among its principals (or none, as OpenSSH), without critical options;
//!   a certificate that fails is refused saying why (as OpenSSH, its key still counts if
//!   known_hosts records it). Host keys: ed25519, ECDSA, RSA (`rsa-sha2-512/256`, never
//!   `ssh-rsa`'s SHA-1).
//! - **Authentication like OpenSSH**, nothing prompts: the agent's keys (`SSH_AUTH_SOCK`, or
//!   `agent=PATH`), then key files (`keys=`, by default `~/.ssh/id_ed25519`,
//!   `~/.ssh/id_ecdsa` and `~/.ssh/id_rsa`), encrypted ones with a passphrase from
//!   `passphraseFile=` or the variable named by `passphraseEnv=`. RSA keys sign with
//!   `rsa-sha2-512` or `rsa-sha2-256` (the server's `server-sig-algs`), never SHA-1. A refusal
//!   says what was tried and what the server offers.
//! - **Half-close**: shutting the write side sends the channel's `eof`; the server's `eof`
//!   ends reading. A forward cut without `eof` is a reset, not a clean end.
//! - **Nothing lost at the end**: a connection dropped after its shutdown, with every byte
//!   received read, keeps the session open until the server's channel `close` (it comes once
//!   the server wrote every byte on to the far end), at most 30 s; the connection's
//!   [`Delivery`](endpoints_core::Delivery) resolves then, and `endpoints connect` waits for
//!   it before it exits. Dropped with bytes unread or before its shutdown, the channel is
//!   closed at once (an abort). A server that closes the channel first (its far end closed
//!   or reset) fails the writer (`BrokenPipe`) rather than leaving it waiting. A command's
//!   non-zero exit (or a signal) is an error after its output ([`stream::ExitError`]); its
//!   stderr is logged, at most 64 KiB.
//! - **One session**: the first connect opens it; keepalives (`keepalive=`,
//!   `keepaliveMax=`) find a dead one, and the next connect opens a new one; it closes
//!   `idleTimeout=` after its last connection ends.
//!
//! The server side listens through an SSH server (`ssh -R`): `ssh:bastion:listen=8080`
//! (`tcpip-forward`) or `listen=/path` (`streamlocal-forward@openssh.com`); each channel the
//! server opens for a connection there is an accepted connection, its peer the originator's
//! address; `close()` cancels the forward (connections accepted before go on; the session
//! ends with the last of them).
//!
//! Crypto: russh on `ring`, the provider rustls uses here (no second crypto stack), and for
//! RSA the RustCrypto `rsa` crate (0.10, constant-time arithmetic; see docs/security.md on
//! its advisory).
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
