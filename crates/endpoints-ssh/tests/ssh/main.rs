//! `ssh:` against a real OpenSSH server on loopback.

mod client;
mod conformance;
mod server;
mod trust;
