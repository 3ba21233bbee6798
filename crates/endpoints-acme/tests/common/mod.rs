//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub(crate) use endpoints_test_support::capture;
