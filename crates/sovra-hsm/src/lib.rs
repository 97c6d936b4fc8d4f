//! The [`Hsm`] trait: where Sovra's root and per-location wrapping keys live, and the only
//! thing that can wrap and unwrap key material with them.
//!
//! Backends:
//! * [`soft::SoftHsm`]: a software HSM in the data directory. Its root key is sealed under an
//!   unseal key (a file beside it by default, or one the operator keeps elsewhere); location
//!   wrapping keys are sealed under the root.
//! * [`pkcs11::Pkcs11Hsm`] (any vendor HSM; SoftHSM2 in tests): the wrapping keys are
//!   non-extractable token objects and never leave the HSM.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod pkcs11;
pub mod soft;

pub use error::HsmError;
pub use sovra_crypto::SecretBytes;

/// A hardware (or software) security module holding Sovra's wrapping keys.
pub trait Hsm: Send + Sync + std::fmt::Debug {
    /// The backend name, e.g. `software` or `pkcs11`.
    fn kind(&self) -> &'static str;

    /// The locations whose wrapping keys this HSM holds.
    fn locations(&self) -> Result<Vec<String>, HsmError>;

    /// Creates the wrapping key of `location` (idempotent: an existing key is kept).
    fn create_location(&self, location: &str) -> Result<(), HsmError>;

    /// Wraps `plaintext` under `location`'s wrapping key, bound to `aad`.
    fn wrap(&self, location: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError>;

    /// Unwraps a blob made by [`Hsm::wrap`] with the same location and `aad`.
    fn unwrap(&self, location: &str, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, HsmError>;
}
