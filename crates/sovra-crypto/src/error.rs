//! Errors of cryptographic operations.

/// A cryptographic operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Ciphertext is malformed, was altered, or AAD/key do not match.
    #[error(
        "the ciphertext is malformed or was altered, or the key or additional authenticated data differ from encryption"
    )]
    CiphertextInvalid,
    /// Stored key material does not load for its algorithm.
    #[error("key material does not match its algorithm")]
    InvalidKeyMaterial,
    /// A wrapped blob failed authentication (wrong key, altered, or bound to another resource).
    #[error("wrapped material failed its integrity check")]
    UnwrapFailed,
    /// A caller-supplied digest has the wrong length or hash for the algorithm.
    #[error("the digest must be {expected} for this algorithm")]
    BadDigest {
        /// What the algorithm expects.
        expected: &'static str,
    },
    /// The algorithm does not support this operation.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The plaintext is too long for the key.
    #[error("plaintext too long for this key (at most {max} bytes)")]
    TooLong {
        /// Maximum plaintext length.
        max: usize,
    },
    /// A JOSE object (JWS, JWT, JWK) is malformed or does not verify.
    #[error("{0}")]
    Invalid(&'static str),
    /// The underlying library failed (e.g. key generation).
    #[error("cryptographic library failure: {0}")]
    Library(&'static str),
    /// The HSM holding the key cannot be reached now (a retry may succeed).
    #[error("the HSM is unavailable: {0}")]
    HsmUnavailable(String),
    /// The HSM failed or refused the operation.
    #[error("HSM failure: {0}")]
    HsmFailure(String),
}
