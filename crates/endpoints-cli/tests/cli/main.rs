//! The integration tests of this crate, in one binary (fewer to link): each former test
//! file is a module. Tests that change process-wide state (limits, umask, environment,
//! a global provider, counts of open descriptors) stay in binaries of their own.

mod acme;
mod cli;
mod data_paths;
mod doc_tables;
mod drain;
mod echo_server;
mod exec;
mod handover;
mod logs;
mod run;
mod secrets;
mod transfers;
mod usage;
mod ws;
