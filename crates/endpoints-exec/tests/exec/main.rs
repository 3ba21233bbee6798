//! The integration tests of this crate, in one binary (fewer to link): each module is one
//! item of issue 27. The tests that count this process's descriptors and children are in
//! `tests/counts.rs`, a binary of their own.

#[path = "../common/mod.rs"]
mod common;

mod cleanup;
mod compose;
mod grammar;
mod stream;
