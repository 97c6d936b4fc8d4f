//! The symmetric ciphertext format.
//!
//! `ciphertext = 0x01 || version(u32 BE) || nonce(12) || AES-256-GCM(ct) || tag(16)`.
//! The 5-byte header is authenticated (it prefixes the caller's AAD), so a ciphertext names the
//! key version that made it and cannot be re-labelled.

use crate::error::CryptoError;
use crate::key_ops::KeyOps;
use crate::secret::SecretBytes;
use aws_lc_rs::aead::NONCE_LEN;

const FORMAT: u8 = 1;
const HEADER: usize = 5;
const TAG: usize = 16;

/// Bytes a ciphertext adds to its plaintext.
pub const OVERHEAD: usize = HEADER + NONCE_LEN + TAG;

/// The key version that made `ciphertext`.
pub fn version_of(ciphertext: &[u8]) -> Result<u32, CryptoError> {
    match ciphertext {
        [FORMAT, a, b, c, d, ..] if ciphertext.len() >= OVERHEAD => {
            Ok(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => Err(CryptoError::CiphertextInvalid),
    }
}

fn aad_with_header(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(header.len() + aad.len());
    v.extend_from_slice(header);
    v.extend_from_slice(aad);
    v
}

/// Encrypts `plaintext` with `key` (version `version`), binding `aad`.
pub fn seal(
    key: &dyn KeyOps,
    version: u32,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(FORMAT);
    out.extend_from_slice(&version.to_be_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill_nonce(&mut nonce)?;
    out.extend_from_slice(&nonce);
    let header_aad = aad_with_header(out.get(..HEADER).unwrap_or_default(), aad);
    out.extend(key.gcm_seal(&nonce, &header_aad, plaintext)?);
    Ok(out)
}

/// Decrypts a ciphertext made by [`seal`] with the same key and `aad`.
pub fn open(key: &dyn KeyOps, aad: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
    version_of(ciphertext)?;
    let header = ciphertext
        .get(..HEADER)
        .ok_or(CryptoError::CiphertextInvalid)?;
    let nonce: &[u8; NONCE_LEN] = ciphertext
        .get(HEADER..HEADER + NONCE_LEN)
        .and_then(|n| n.try_into().ok())
        .ok_or(CryptoError::CiphertextInvalid)?;
    let body = ciphertext
        .get(HEADER + NONCE_LEN..)
        .ok_or(CryptoError::CiphertextInvalid)?;
    key.gcm_open(nonce, &aad_with_header(header, aad), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::LoadedKey;
    use sovra_proto::kms::Algorithm;

    fn key() -> LoadedKey {
        LoadedKey::load(Algorithm::Aes256Gcm, &[3u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_tamper() {
        let k = key();
        let ct = seal(&k, 7, b"ctx", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + OVERHEAD);
        assert_eq!(version_of(&ct).unwrap(), 7);
        assert_eq!(open(&k, b"ctx", &ct).unwrap().expose(), b"hello");
        assert_eq!(
            open(&k, b"other", &ct).unwrap_err(),
            CryptoError::CiphertextInvalid
        );
        for i in 0..ct.len() {
            let mut t = ct.clone();
            t[i] ^= 0x80;
            assert!(open(&k, b"ctx", &t).is_err(), "flip at {i} accepted");
        }
        assert!(open(&k, b"ctx", &ct[..ct.len() - 1]).is_err());
        assert!(version_of(&[1, 0, 0]).is_err());
    }
}
