//! The format of wrapped material: AES-256-GCM under a wrapping key, with associated data that
//! binds the blob to what it belongs to (resource name, version, location, algorithm).
//!
//! `blob = 0x01 || nonce(12) || ciphertext || tag(16)`; the AAD is not stored, the caller
//! recomputes it, so a blob moved to another row fails to unwrap.

use crate::error::CryptoError;
use crate::secret::SecretBytes;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

const FORMAT: u8 = 1;

/// An AES-256 wrapping key.
pub struct WrappingKey(LessSafeKey);

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappingKey([REDACTED])")
    }
}

impl WrappingKey {
    /// Loads a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let k = UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::InvalidKeyMaterial)?;
        Ok(Self(LessSafeKey::new(k)))
    }

    /// Wraps `plaintext` bound to `aad`.
    pub fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| CryptoError::Library("wrap failed"))?;
        out.extend_from_slice(&body);
        zeroize::Zeroize::zeroize(&mut body);
        Ok(out)
    }

    /// Unwraps a blob made by [`WrappingKey::wrap`] with the same `aad`.
    pub fn unwrap(&self, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (format, rest) = blob.split_first().ok_or(CryptoError::UnwrapFailed)?;
        if *format != FORMAT || rest.len() < NONCE_LEN + 16 {
            return Err(CryptoError::UnwrapFailed);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::UnwrapFailed)?;
        let mut buf = ct.to_vec();
        let n = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::UnwrapFailed)?
            .len();
        buf.truncate(n);
        Ok(SecretBytes::new(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_aad_and_detects_edits() {
        let k = WrappingKey::new(&[7u8; 32]).unwrap();
        let blob = k.wrap(b"row-1", b"secret").unwrap();
        assert_eq!(k.unwrap(b"row-1", &blob).unwrap().expose(), b"secret");
        assert_eq!(
            k.unwrap(b"row-2", &blob).unwrap_err(),
            CryptoError::UnwrapFailed
        );
        let mut edited = blob.clone();
        let last = edited.len() - 1;
        edited[last] ^= 1;
        assert!(k.unwrap(b"row-1", &edited).is_err());
        assert!(k.unwrap(b"row-1", &blob[..10]).is_err());
        let other = WrappingKey::new(&[8u8; 32]).unwrap();
        assert!(other.unwrap(b"row-1", &blob).is_err());
    }
}
