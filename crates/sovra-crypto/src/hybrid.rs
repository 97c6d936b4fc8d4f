//! A payload sealed to an RSA public key the way Microsoft Azure Attestation seals a guest's
//! token to its vTPM key: AES-256-GCM under a fresh key, that key encrypted with
//! RSAES-PKCS1-v1_5 (the scheme a TPM's `TPM2_RSA_Decrypt` with `TPM_ALG_RSAES` undoes).
//!
//! PKCS#1 v1.5 encryption is offered only here, for that protocol: the holder decrypts inside
//! its TPM and returns nothing to us, so there is no decryption oracle for a padding attack.

use crate::error::CryptoError;
use crate::key_ops::KeyOps;
use crate::keys::LoadedKey;
use sovra_proto::kms::Algorithm;

/// The parts of a sealed payload.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The AES-256 key, RSAES-PKCS1-v1_5-encrypted to the recipient.
    pub encrypted_key: Vec<u8>,
    /// The 96-bit GCM IV.
    pub iv: Vec<u8>,
    /// The ciphertext (without the tag).
    pub ciphertext: Vec<u8>,
    /// The 128-bit GCM tag.
    pub tag: Vec<u8>,
}

/// Seals `plaintext` (authenticating `aad`) to the RSA key `spki` (DER SubjectPublicKeyInfo).
pub fn seal_to_rsa(spki: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))?;
    let enc = aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(pk)
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))?;
    let key = crate::keys::generate(Algorithm::Aes256Gcm)?;
    let mut encrypted_key = vec![0u8; enc.ciphertext_size()];
    let n = enc
        .encrypt(key.expose(), &mut encrypted_key)
        .map_err(|_| CryptoError::Library("RSAES-PKCS1-v1_5 encryption failed"))?
        .len();
    encrypted_key.truncate(n);
    let iv: [u8; 12] = crate::random::bytes(12)?
        .try_into()
        .map_err(|_| CryptoError::Library("random IV of the wrong length"))?;
    let aes = LoadedKey::load(Algorithm::Aes256Gcm, key.expose())?;
    let mut ciphertext = aes.gcm_seal(&iv, aad, plaintext)?;
    let tag = ciphertext.split_off(ciphertext.len().saturating_sub(16));
    Ok(Sealed {
        encrypted_key,
        iv: iv.to_vec(),
        ciphertext,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipient_opens_what_was_sealed_to_it_and_a_changed_tag_fails() {
        let priv_der = crate::keys::generate(Algorithm::RsaDecryptOaep2048Sha256).unwrap();
        let kp = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(priv_der.expose()).unwrap();
        let spki = {
            use aws_lc_rs::encoding::AsDer;
            kp.public_key().as_der().unwrap().as_ref().to_vec()
        };
        let s = seal_to_rsa(&spki, b"Transport Key", b"the token").unwrap();
        let dec = aws_lc_rs::rsa::Pkcs1PrivateDecryptingKey::new(kp).unwrap();
        let mut out = vec![0u8; 256];
        let key = dec.decrypt(&s.encrypted_key, &mut out).unwrap().to_vec();
        let aes = LoadedKey::load(Algorithm::Aes256Gcm, &key).unwrap();
        let iv: [u8; 12] = s.iv.clone().try_into().unwrap();
        let mut sealed = s.ciphertext.clone();
        sealed.extend_from_slice(&s.tag);
        let pt = aes.gcm_open(&iv, b"Transport Key", &sealed).unwrap();
        assert_eq!(pt.expose(), b"the token");
        assert!(aes.gcm_open(&iv, b"other", &sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(aes.gcm_open(&iv, b"Transport Key", &sealed).is_err());
    }
}
