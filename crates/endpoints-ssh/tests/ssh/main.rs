//! `ssh:` against a real OpenSSH server on loopback.

mod client;
mod conformance;
mod delivery;
mod server;
mod trust;
