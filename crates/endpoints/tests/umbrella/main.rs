//! The integration tests of this crate, in one binary (fewer to link): each former test
//! file is a module. Tests that change process-wide state (limits, umask, environment,
//! a global provider, counts of open descriptors) stay in binaries of their own.

mod builders;
mod handover;
mod metrics;
mod policy;
mod tor_builders;
mod tracing;
mod ws_builders;
