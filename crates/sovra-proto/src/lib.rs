//! Wire types and stable error codes of Sovra's native `/v1` API.
//!
//! This crate does no I/O. The server, the client, the CLI and the agent all speak through these
//! types, so a field renamed here is renamed everywhere. JSON field names follow Google Cloud
//! KMS (`camelCase`), binary fields are standard base64, times are RFC 3339 UTC strings and
//! durations are strings like `"86400s"` (`s`, `m`, `h` and `d` suffixes are accepted on input).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod attest;
pub mod b64;
pub mod duration;
pub mod error;
pub mod evidence;
pub mod hex;
pub mod kms;
pub mod names;
pub mod ops;
pub mod security_domain;

pub use error::{ApiError, ErrorCode};
pub use evidence::EvidenceType;
