//! Sovra's cryptography on aws-lc-rs: key-material newtypes that zeroize, key generation and
//! loading per algorithm, the symmetric ciphertext format, and the format of wrapped material.
//!
//! ```
//! use sovra_crypto::{generate, LoadedKey, symmetric};
//! use sovra_proto::kms::Algorithm;
//! let material = generate(Algorithm::Aes256Gcm).unwrap();
//! let key = LoadedKey::load(Algorithm::Aes256Gcm, material.expose()).unwrap();
//! let ct = symmetric::seal(&key, 1, b"aad", b"hello").unwrap();
//! assert_eq!(symmetric::version_of(&ct).unwrap(), 1);
//! assert_eq!(symmetric::open(&key, b"aad", &ct).unwrap().expose(), b"hello");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod der;
pub mod error;
pub mod hybrid;
pub mod jws;
pub mod key_ops;
pub mod keys;
pub mod keywrap;
pub mod quorum;
pub mod random;
pub mod rsa1_5;
pub mod secret;
pub mod shamir;
pub mod symmetric;
pub mod wrap;

pub use error::CryptoError;
pub use key_ops::KeyOps;
pub use keys::{HashAlg, LoadedKey, SignInput, generate};
pub use secret::SecretBytes;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Constant-time equality.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
