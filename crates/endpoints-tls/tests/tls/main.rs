//! The integration tests of this crate, in one binary (fewer to link): each former test
//! file is a module. Tests that change process-wide state (limits, umask, environment,
//! a global provider, counts of open descriptors) stay in binaries of their own.

use endpoints_test_support as common;

mod certbot;
mod client_errors;
mod default_key;
mod hints;
mod metrics;
mod openssl;
mod self_signed_and_pins;
mod tls;
mod twisted;
mod twisted_servers;
