//! Test-only helpers that start real components (never stand-ins) for Sovra's tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod pg;
pub mod softhsm;
