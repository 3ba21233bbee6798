//! Integration tests of `ws:`/`wss:`: one binary, its modules by topic.

// Link the crates under test and the transports the descriptions wrap.
use endpoints_tcp as _;
use endpoints_tls as _;
use endpoints_unix as _;
use endpoints_ws as _;

mod autobahn;
mod browser;
mod common;
mod conformance;
mod hostile;
mod metrics;
mod ours;
mod python;
mod refusals;
