//! What the workspace's tests share, in one dev-only crate (not published), so that each
//! fixture exists once:
//!
//! - [`peers`]: real peer programs (haproxy, openssl, socat, microsocks, pebble, Twisted)
//!   found, or the test skipped with a printed reason, except under `CI=true`, where a
//!   missing peer fails the test;
//! - [`Pki`]: a throw-away PKI (a CA, server and client leaves, an expired leaf, an
//!   unrelated CA, SNI and self-signed certificates);
//! - [`certbot::Certbot`]: a certbot `live/`/`archive/` tree, renewed as certbot renews;
//! - [`serve`]: listen on a description, and echo on any listener;
//! - [`capture`]: a tracing subscriber that keeps every event as a line, for tests that read
//!   the library's logs;
//! - [`metrics`]: a metrics recorder that keeps what the library records, for tests.
//!
//! Use it as a dev-dependency only:
//!
//! ```toml
//! [dev-dependencies]
//! endpoints-test-support.workspace = true
//! ```
//!
//! ```no_run
//! if !endpoints_test_support::peers::twisted() {
//!     return; // printed why; under CI=true this panicked instead
//! }
//! let pki = endpoints_test_support::Pki::new("doc");
//! let _ca = pki.path("ca.pem");
//! ```
//!
//! No cargo features.

#![allow(missing_docs)] // test fixtures: each item says what it holds where it is not obvious

pub mod capture;
pub mod certbot;
pub mod metrics;
pub mod peers;
mod pki;
pub mod serve;

pub use pki::Pki;
pub mod sshd;
