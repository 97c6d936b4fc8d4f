//! Randomness from the operating system via aws-lc-rs.

use crate::error::CryptoError;

/// `n` random bytes.
pub fn bytes(n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut v = vec![0u8; n];
    fill(&mut v)?;
    Ok(v)
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Library("random number generator failed"))
}

/// A random identifier of `n` bytes as lowercase hex.
pub fn hex_id(n: usize) -> Result<String, CryptoError> {
    Ok(crate::hex(&bytes(n)?))
}
