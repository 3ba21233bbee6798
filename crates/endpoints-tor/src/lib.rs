//! `tor:` client and `onion:` server: reach and serve onion services through a Tor daemon,
//! from a description (txtorcon's endpoint strings, as Tahoe-LAFS and magic-wormhole use them).
//!
//! This crate provides:
//!
//! * the `tor:` client: a stream to `host:port` or `NAME.onion:port` through Tor's SOCKS port
//!   (the SOCKS5 handshake of `endpoints-tunnel`). The name is sent to Tor (SOCKS5 address
//!   type 3) and never resolved here: no DNS query leaves this process. Each endpoint gets its
//!   own SOCKS user name, so streams of different descriptions use different circuits
//!   (`IsolateSOCKSAuth`, on by default in Tor); `socksUsername=`/`socksPassword=` choose the
//!   isolation group. Tor's answers become typed errors in words ([`TorRefusal`], with Tor's
//!   extended codes 0xF0..0xF7 for onion services when the SocksPort has `ExtendedErrors`);
//! * the `onion:` server: a v3 onion service added with `ADD_ONION` through the control port,
//!   forwarding to a listener of ours (a unix socket in a private directory, or 127.0.0.1 on a
//!   random port with `local=tcp`); the listener's address is `NAME.onion:PORT`
//!   ([`Address::Name`](endpoints_core::Address::Name)). `listen()` returns once Tor reports the descriptor
//!   uploaded (`HS_DESC UPLOADED`), within `timeout=`, or fails naming the stage that stalled.
//!   The key is ephemeral, or kept in `privateKeyFile=` (created mode 600, refused when group
//!   or others can read it) or in `hiddenServiceDir=` (Tor's own file format) so the address
//!   stays. `close()` removes the service (`DEL_ONION`) and the local listener; a lost control
//!   connection makes `accept()` fail, naming it;
//! * [`inband`]: `halfClose=inband` on both `tor:` and `onion:` (ours at both ends): each
//!   side's end of data travels inside the stream, since Tor ends a whole stream at one
//!   side's end; a stream cut without that end is a reset, never a clean end;
//! * [`control`]: the control protocol with bounded reads (line, reply and line-count caps),
//!   SAFECOOKIE, COOKIE and password-file authentication.
//!
//! * [`launch`]: start a `tor` of our own (txtorcon's `launch`) with a private data
//!   directory (mode 700; a planted symlink refused), wait for its bootstrap with the progress
//!   in the log (bounded; an error naming the stage that stalled), stop it with the handle.
//!   In descriptions: `launch=1` (an `onion:` without `controlPort=` launches, as txtorcon's
//!   does), `torBinary=`, `dataDirectory=`; an `onion:` listener's `close()` stops its Tor, a
//!   `tor:` endpoint's Tor stops after the last connection it made ends.
//!
//! The descriptions use a running Tor (Debian: `apt install tor`) with a `SocksPort` and,
//! for `onion:` and `control=`, a `ControlPort` with `CookieAuthentication 1`; or launch one
//! (`launch=1`; the `tor` program must be installed).
//!
//! # Grammar
//!
//! `tor:` client:
//!
//! <!-- params: tor client -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `host` | 1 | host | required | target host name, `NAME.onion` or IP address; names are resolved by Tor, never here |
//! | `port` | 2 | port | required | target port |
//! | `socksPort` |  | text | `9050` | Tor's SOCKS port: a port on 127.0.0.1, a unix socket path (`/run/tor/socks`), or a client description, escaped |
//! | `socksHostname` |  | host |  | the host of Tor's SOCKS port, with a port number in `socksPort=` (txtorcon's name; default 127.0.0.1) |
//! | `control` |  | text |  | read the SOCKS port from this control port (`GETINFO net/listeners/socks`): a port on 127.0.0.1, a socket path, or a client description, escaped; instead of `socksPort=` |
//! | `controlPasswordFile` |  | path |  | the control port's password, read from this file (otherwise cookie authentication) |
//! | `socksUsername` |  | text |  | SOCKS user name: streams with different names use different circuits (default: one name per endpoint, so each description gets its own circuits) |
//! | `socksPassword` |  | text |  | SOCKS password, for isolation only (Tor checks none); shown as \*\*\* |
//! | `timeout` |  | seconds | `120` | deadline for reaching Tor and its answer (building a circuit, reaching an onion service), in seconds (0: none); with `launch=1`, also for the launched Tor's bootstrap |
//! | `halfClose` |  | one of tor\|inband | `tor` | `inband`: each side's end of data travels inside the stream, so this side's end does not end the answer (Tor itself ends the whole stream at one side's end, cutting what is still on its way back); the onion service must be ours with `halfClose=inband` too; a stream cut without its end marker is then a reset, never a clean end |
//! | `launch` |  | 0/1 |  | `1`: start a `tor` of our own (a private data directory, bootstrap progress in the log), shared by this endpoint's connections and stopped after the last one ends; instead of `socksPort=`/`control=` |
//! | `torBinary` |  | path |  | with `launch=1`: the `tor` program to run (txtorcon's `tor_binary`; default `tor` from PATH) |
//! | `dataDirectory` |  | path |  | with `launch=1`: Tor's data directory, kept (created mode 700; a symlink or a directory group or others can reach is refused; txtorcon's `data_directory`; default a new one, removed after) |
//! <!-- /params -->
//!
//! `onion:` server:
//!
//! <!-- params: onion server -->
//! | parameter | position | type | default | meaning |
//! |---|---|---|---|---|
//! | `port` | 1 | port | required | the onion service's port (what clients connect to at NAME.onion) |
//! | `controlPort` |  | text |  | Tor's control port: a port on 127.0.0.1, a socket path (`/run/tor/control`), or a client description, escaped (without it a Tor of our own is launched, as txtorcon does; with `launch=0`, 9051) |
//! | `controlPasswordFile` |  | path |  | the control port's password, read from this file (otherwise cookie authentication) |
//! | `privateKeyFile` |  | path |  | keep the service key in this file (created mode 600; refused if group or others can read it): the address stays the same across restarts |
//! | `hiddenServiceDir` |  | path |  | keep the key in this directory as Tor does (`hs_ed25519_secret_key`, and `hostname`), created mode 700 |
//! | `version` |  | one of 3 | `3` | onion service version (only v3 exists) |
//! | `clientAuth` |  | list |  | v3 client authorization: the clients' x25519 public keys (base32, 52 characters), comma-separated |
//! | `local` |  | one of unix\|tcp | `unix` | where Tor hands us the streams: `unix` (a socket in a private directory) or `tcp` (127.0.0.1, a random port; use it when Tor runs as another user) |
//! | `localPort` |  | port |  | the port on 127.0.0.1 Tor forwards to (txtorcon's name; implies `local=tcp`; default a random one) |
//! | `waitPublished` |  | 0/1 | `1` | listen() returns once Tor has uploaded the descriptor (HS\_DESC UPLOADED) |
//! | `timeout` |  | seconds | `180` | deadline for reaching Tor (or launching it), adding the service and publishing its descriptor, in seconds (0: none) |
//! | `halfClose` |  | one of tor\|inband | `tor` | `inband`: each side's end of data travels inside the stream (see `tor:`'s `halfClose=`); every client must be our `tor:` with `halfClose=inband` |
//! | `launch` |  | 0/1 |  | start a `tor` of our own for this listener (a private data directory, bootstrap progress in the log), stopped by `close()`; the default when `controlPort=` is not given, as in txtorcon |
//! | `torBinary` |  | path |  | with a launched Tor: the `tor` program to run (txtorcon's `tor_binary`; default `tor` from PATH) |
//! | `dataDirectory` |  | path |  | with a launched Tor: its data directory, kept (created mode 700; a symlink or a directory group or others can reach is refused; txtorcon's `data_directory`; default a new one, removed after) |
//! <!-- /params -->
//!
//! ```text
//! tor:example.com:80
//! tor:host=2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion:port=443:socksPort=9150
//! tor:example.com:443:control=unix\:/run/tor/control
//! tls:example.com:443:endpoint=tor\:example.com\:443
//! tor:example.com:443:launch=1
//! onion:80:controlPort=9051:privateKeyFile=/var/lib/myapp/onion.key
//! ws:onion:80:hiddenServiceDir=/var/lib/myapp/hs
//! ```
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use endpoints_tor as _;
//! let server = endpoints_core::registry::build_server(&"onion:80:privateKeyFile=onion.key".parse()?)?;
//! let mut listener = server.listen().await?;
//! println!("serving at {listener}");
//! let conn = listener.accept().await?;
//! # drop(conn); Ok(()) }
//! ```
//!
//! # Crate feature flags
//!
//! None.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
pub mod control;
pub mod inband;
pub mod launch;
pub mod onion;

pub use client::{TOR_PARAMS, TorEndpoint, TorInfo, TorRefusal, TorStreamError, refusal};
pub use onion::{ONION_PARAMS, OnionEndpoint, OnionInfo, OnionListener};

endpoints_core::register_client! {
    prefix: "tor",
    summary: "connect through Tor's SOCKS port; names (and NAME.onion) resolved by Tor, never here",
    params: TOR_PARAMS,
    build: client::build,
}

endpoints_core::register_server! {
    prefix: "onion",
    summary: "a v3 onion service added through Tor's control port, forwarding to a private local listener",
    params: ONION_PARAMS,
    build: onion::build,
}
