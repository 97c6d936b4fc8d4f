//! The [`Hsm`] trait: where Sovra's root and per-location wrapping keys live, the only thing
//! that can wrap and unwrap key material with them, and where `HSM`-level keys are generated
//! and used.
//!
//! Backends:
//! * [`soft::SoftHsm`]: a software HSM in the data directory. Its root key is sealed under an
//!   unseal key (a file beside it by default, or one the operator keeps elsewhere); location
//!   wrapping keys are sealed under the root. Its boundary is the process.
//! * [`pkcs11::Pkcs11Hsm`] (any vendor HSM; SoftHSM2 in tests): the wrapping keys are
//!   non-extractable token objects and never leave the HSM; `HSM`-level keys are generated,
//!   stored wrapped and used inside it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod keys;
pub mod pkcs11;
pub mod soft;
mod soft_key;

pub use error::HsmError;
pub use keys::{GeneratedKey, HsmKey, KeyAttributes, check_import};
pub use sovra_crypto::SecretBytes;
use sovra_proto::kms::{Algorithm, ImportMethod};

/// An import job's wrapping key, as [`Hsm::generate_import_key`] returned it.
#[derive(Debug, Clone, Copy)]
pub struct ImportKey<'a> {
    /// The wrapped private key.
    pub wrapped: &'a [u8],
    /// How material is wrapped to it.
    pub method: ImportMethod,
}
use std::sync::Arc;

/// A hardware (or software) security module holding Sovra's wrapping keys.
pub trait Hsm: Send + Sync + std::fmt::Debug {
    /// The backend name, e.g. `software` or `pkcs11`.
    fn kind(&self) -> &'static str;

    /// What a security domain must hold to make this HSM's keys usable on a new node (the
    /// software HSM's root and sealed keys). [`HsmError::Unsupported`] where the HSM's own
    /// backup mechanism does that (a PKCS#11 token's keys never leave it in clear).
    fn export_domain(&self) -> Result<SecretBytes, HsmError>;

    /// The locations whose wrapping keys this HSM holds.
    fn locations(&self) -> Result<Vec<String>, HsmError>;

    /// Creates the wrapping keys of `location` (idempotent: existing keys are kept).
    fn create_location(&self, location: &str) -> Result<(), HsmError>;

    /// Wraps `plaintext` under `location`'s wrapping key, bound to `aad`.
    fn wrap(&self, location: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError>;

    /// Unwraps a blob made by [`Hsm::wrap`] with the same location and `aad`.
    fn unwrap(&self, location: &str, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, HsmError>;

    /// The SubjectPublicKeyInfo (DER) of this HSM's key-attestation key: ECDSA P-256, created
    /// inside the HSM on first use, never extractable. It signs key attestation statements.
    fn attestation_public_key(&self) -> Result<Vec<u8>, HsmError>;

    /// Replaces the attestation key with a new one generated inside the HSM and destroys the
    /// old one; returns the new key's SubjectPublicKeyInfo (DER). Statements already made stay
    /// verifiable through the certificate they carry.
    fn rotate_attestation_key(&self) -> Result<Vec<u8>, HsmError>;

    /// Signs `message` (ECDSA P-256 over its SHA-256) with the attestation key; the signature
    /// is `r ‖ s` (64 bytes), as JWS ES256 wants it.
    fn attestation_sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError>;

    /// Generates a key for `alg` inside the HSM and returns it wrapped under `location`'s
    /// key-wrapping key. [`HsmError::Unsupported`] names a mechanism the HSM lacks.
    fn generate_key(&self, location: &str, alg: Algorithm) -> Result<GeneratedKey, HsmError>;

    /// Generates an import job's RSA wrapping key of `bits` inside the HSM and returns it
    /// wrapped under `location`'s key-wrapping key.
    fn generate_import_key(&self, location: &str, bits: u16) -> Result<GeneratedKey, HsmError>;

    /// Opens `blob` (wrapped to the import key as `method` says) inside the HSM into a key of
    /// `alg`, checks it is one, and returns it wrapped for storage like
    /// [`Hsm::generate_key`]. EC keys need `public_key`, which the HSM must sign for.
    fn import_key(
        &self,
        location: &str,
        import: &ImportKey<'_>,
        blob: &[u8],
        alg: Algorithm,
        public_key: Option<&[u8]>,
    ) -> Result<GeneratedKey, HsmError>;

    /// Opens `blob` with the import key and returns the material itself (imports at protection
    /// level SOFTWARE, whose material lives in the Sovra process anyway).
    fn import_material(
        &self,
        location: &str,
        import: &ImportKey<'_>,
        blob: &[u8],
    ) -> Result<SecretBytes, HsmError>;

    /// Loads a key made by [`Hsm::generate_key`] into the HSM for use. `public_key` is the
    /// SubjectPublicKeyInfo returned at generation (asymmetric keys).
    fn load_key(
        &self,
        location: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public_key: Option<&[u8]>,
    ) -> Result<Arc<dyn HsmKey>, HsmError>;
}
