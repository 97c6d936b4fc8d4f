//! Integration tests: the real `sovra` binary on a free loopback port, driven through the real
//! CLI and client, the way a user would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

mod access;
mod attest;
mod azure_guest;
mod azure_sdk;
mod azure_vtpm;
mod bad_input;
mod client;
mod durability;
mod hostile;
mod hsm_keys;
mod lifecycle;
mod maa_tpm;
mod pkcs11;
mod postgres;
mod regions;
mod release;
mod security_domain;
mod simsgx;
mod tour;
mod tpm;
mod trust;
