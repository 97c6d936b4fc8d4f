//! Sovra's policy engines. Pure: no I/O, no clock.
//!
//! * [`maa`]: the Microsoft Azure Attestation policy language (versions 1.0–1.2), so policies
//!   written for MAA run unchanged.
//! * [`rego`]: Rego policies (the Confidential Containers convention).
//! * [`defaults`]: the built-in attestation policies.
//!
//! Policies are compiled once ([`maa::Policy::parse`], [`rego::RegoPolicy::compile`]) and then
//! evaluated many times against a JSON object of claims.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod defaults;
pub mod error;
pub mod limits;
pub mod maa;
pub mod rego;
pub mod skr;

pub use error::PolicyError;
