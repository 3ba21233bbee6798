//! The integration tests of this crate, in one binary (fewer to link): each former test
//! file is a module. Tests that change process-wide state (limits, umask, environment,
//! a global provider, counts of open descriptors) stay in binaries of their own.

mod client;
mod fuzz;
mod haproxy;
mod header_at_accept;
mod hints;
mod metrics;
mod per_source;
mod proxy;
mod warn;
