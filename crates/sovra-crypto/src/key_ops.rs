//! [`KeyOps`]: what a usable key offers, whoever holds it. A [`LoadedKey`] holds its material
//! in this process; an HSM-held key is a session object inside the HSM and implements the same
//! trait in `sovra-hsm`, so the symmetric format, signatures and MACs are produced the same way
//! at both protection levels.

use crate::error::CryptoError;
use crate::keys::{LoadedKey, SignInput};
use crate::secret::SecretBytes;
use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use aws_lc_rs::signature::{self, ParsedPublicKey};
use sovra_proto::kms::{AlgHash, AlgSpec, Algorithm, EcCurve, RsaPadding};

/// A key ready for use.
pub trait KeyOps: Send + Sync + std::fmt::Debug {
    /// The key's algorithm.
    fn algorithm(&self) -> Algorithm;

    /// AES-256-GCM: encrypts `plaintext` under `nonce` binding `aad`; returns ciphertext ‖ tag.
    fn gcm_seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// AES-256-GCM: decrypts ciphertext ‖ tag made by [`KeyOps::gcm_seal`].
    fn gcm_open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError>;

    /// Signs data or a digest. ECDSA signatures are DER; RSA and Ed25519 signatures are raw.
    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, CryptoError>;

    /// Verifies a signature made by [`KeyOps::sign`] (with the public key, in software).
    fn verify(&self, input: SignInput<'_>, sig: &[u8]) -> Result<bool, CryptoError> {
        verify_spki(self.algorithm(), &self.public_key_der()?, input, sig)
    }

    /// An RSA signing key's signature of `digest` with `padding` and `hash` (any of the six,
    /// not only the key's own).
    fn sign_rsa(
        &self,
        padding: RsaPadding,
        hash: AlgHash,
        digest: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// Decrypts RSA-OAEP-SHA256 ciphertext.
    fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError>;

    /// Decrypts RSA-OAEP ciphertext made with SHA-1 and MGF1-SHA-1 (Key Vault's `RSA-OAEP`).
    fn oaep_sha1_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError>;

    /// Decrypts RSAES-PKCS1-v1_5 ciphertext (Key Vault's `RSA1_5`) with implicit rejection: a
    /// malformed block gives a synthetic message, never an error ([`crate::rsa1_5`]).
    fn rsa1_5_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError>;

    /// HMAC of `data`.
    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError>;

    /// Checks an HMAC in constant time.
    fn mac_verify(&self, data: &[u8], tag: &[u8]) -> Result<bool, CryptoError> {
        Ok(crate::ct_eq(&self.mac(data)?, tag))
    }

    /// AES key wrap of `key`: RFC 5649 with `pad`, else RFC 3394.
    fn aes_key_wrap(&self, pad: bool, key: &[u8]) -> Result<Vec<u8>, CryptoError>;

    /// Undoes [`KeyOps::aes_key_wrap`]; fails when the integrity check fails.
    fn aes_key_unwrap(&self, pad: bool, wrapped: &[u8]) -> Result<SecretBytes, CryptoError>;

    /// The SubjectPublicKeyInfo DER of an asymmetric key.
    fn public_key_der(&self) -> Result<Vec<u8>, CryptoError>;

    /// The public key as PEM (`PUBLIC KEY`).
    fn public_key_pem(&self) -> Result<String, CryptoError> {
        Ok(crate::keys::pem("PUBLIC KEY", &self.public_key_der()?))
    }
}

/// The aws-lc-rs verification algorithm of a signing algorithm.
fn verification_alg(
    alg: Algorithm,
) -> Result<&'static dyn signature::VerificationAlgorithm, CryptoError> {
    Ok(match alg.spec() {
        AlgSpec::Ecdsa {
            curve: EcCurve::P256,
            ..
        } => &signature::ECDSA_P256_SHA256_ASN1,
        AlgSpec::Ecdsa {
            curve: EcCurve::P384,
            ..
        } => &signature::ECDSA_P384_SHA384_ASN1,
        AlgSpec::Ed25519 => &signature::ED25519,
        AlgSpec::RsaSign { padding, hash, .. } => match (padding, hash) {
            (RsaPadding::Pss, AlgHash::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
            (RsaPadding::Pss, AlgHash::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
            (RsaPadding::Pss, AlgHash::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
            (RsaPadding::Pkcs1, AlgHash::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (RsaPadding::Pkcs1, AlgHash::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (RsaPadding::Pkcs1, AlgHash::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        },
        AlgSpec::Aes256Gcm
        | AlgSpec::AesKeyWrap
        | AlgSpec::Hmac { .. }
        | AlgSpec::RsaOaep { .. } => {
            return Err(CryptoError::Unsupported(
                "this key cannot verify signatures",
            ));
        }
    })
}

/// Verifies `sig` over `input` with the public key `spki` (SubjectPublicKeyInfo DER) of `alg`.
pub fn verify_spki(
    alg: Algorithm,
    spki: &[u8],
    input: SignInput<'_>,
    sig: &[u8],
) -> Result<bool, CryptoError> {
    let key = ParsedPublicKey::new(verification_alg(alg)?, spki)
        .map_err(|_| CryptoError::InvalidKeyMaterial)?;
    Ok(match input {
        SignInput::Data(d) => key.verify_sig(d, sig).is_ok(),
        SignInput::Digest(h, d) => {
            if alg.sign_hash().is_none() {
                return Err(CryptoError::Unsupported(
                    "Ed25519 verifies the message itself; send data, not a digest",
                ));
            }
            key.verify_digest_sig(&crate::keys::import_digest(alg, h, d)?, sig)
                .is_ok()
        }
    })
}

impl KeyOps for LoadedKey {
    fn algorithm(&self) -> Algorithm {
        LoadedKey::algorithm(self)
    }

    fn gcm_seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let LoadedKey::Aes(k) = self else {
            return Err(CryptoError::Unsupported(
                "this key cannot encrypt symmetrically",
            ));
        };
        let mut buf = plaintext.to_vec();
        k.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError::Library("encryption failed"))?;
        Ok(buf)
    }

    fn gcm_open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let LoadedKey::Aes(k) = self else {
            return Err(CryptoError::Unsupported(
                "this key cannot decrypt symmetrically",
            ));
        };
        let mut buf = sealed.to_vec();
        let n = k
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| CryptoError::CiphertextInvalid)?
            .len();
        buf.truncate(n);
        Ok(SecretBytes::new(buf))
    }

    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, CryptoError> {
        LoadedKey::sign(self, input)
    }

    fn verify(&self, input: SignInput<'_>, sig: &[u8]) -> Result<bool, CryptoError> {
        LoadedKey::verify(self, input, sig)
    }

    fn sign_rsa(
        &self,
        padding: RsaPadding,
        hash: AlgHash,
        digest: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        LoadedKey::sign_rsa(self, padding, hash, digest)
    }

    fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        LoadedKey::oaep_decrypt(self, ciphertext)
    }

    fn oaep_sha1_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        LoadedKey::oaep_sha1_decrypt(self, ciphertext)
    }

    fn rsa1_5_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        LoadedKey::rsa1_5_decrypt(self, ciphertext)
    }

    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        LoadedKey::mac(self, data)
    }

    fn mac_verify(&self, data: &[u8], tag: &[u8]) -> Result<bool, CryptoError> {
        LoadedKey::mac_verify(self, data, tag)
    }

    fn aes_key_wrap(&self, pad: bool, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        LoadedKey::aes_key_wrap(self, pad, key)
    }

    fn aes_key_unwrap(&self, pad: bool, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        LoadedKey::aes_key_unwrap(self, pad, wrapped)
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        LoadedKey::public_key_der(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_spki_agrees_with_the_loaded_key() {
        for &a in Algorithm::ALL {
            if a.purpose() != sovra_proto::kms::Purpose::AsymmetricSign {
                continue;
            }
            let k = LoadedKey::load(a, crate::generate(a).unwrap().expose()).unwrap();
            let spki = k.public_key_der().unwrap();
            let sig = LoadedKey::sign(&k, SignInput::Data(b"msg")).unwrap();
            assert!(
                verify_spki(a, &spki, SignInput::Data(b"msg"), &sig).unwrap(),
                "{a:?}"
            );
            assert!(
                !verify_spki(a, &spki, SignInput::Data(b"msh"), &sig).unwrap(),
                "{a:?}"
            );
        }
    }
}
