//! `HSM`-level keys of the software HSM: the material is generated in-process and stored
//! wrapped under the location key, like every key of this backend; the type exists so that the
//! same protection level, code path and tests serve both backends.

use crate::HsmError;
use crate::keys::{GeneratedKey, HsmKey, KeyAttributes};
use sovra_crypto::keywrap::{self, ReleaseEnc};
use sovra_crypto::wrap::WrappingKey;
use sovra_crypto::{CryptoError, KeyOps, LoadedKey, SecretBytes, SignInput};
use sovra_proto::kms::{Algorithm, Purpose};

fn key_aad(alg: Algorithm) -> Vec<u8> {
    format!("sovra/soft-hsm/key/v1/{}", alg.as_str()).into_bytes()
}

/// Generates `alg`'s material and wraps it under `kw`.
pub(crate) fn generate(kw: &WrappingKey, alg: Algorithm) -> Result<GeneratedKey, HsmError> {
    let material = sovra_crypto::generate(alg).map_err(|e| HsmError::Device(e.to_string()))?;
    let loaded =
        LoadedKey::load(alg, material.expose()).map_err(|e| HsmError::Device(e.to_string()))?;
    let public_key = match alg.purpose() {
        Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt => Some(
            loaded
                .public_key_der()
                .map_err(|e| HsmError::Device(e.to_string()))?,
        ),
        Purpose::EncryptDecrypt | Purpose::Mac => None,
    };
    let wrapped = kw
        .wrap(&key_aad(alg), material.expose())
        .map_err(|e| HsmError::Device(e.to_string()))?;
    Ok(GeneratedKey {
        wrapped,
        public_key,
        attributes: KeyAttributes {
            local: true,
            sensitive: true,
            always_sensitive: true,
            never_extractable: false,
        },
    })
}

/// Loads a key made by [`generate`]; its public key must be the one stored beside it.
pub(crate) fn load(
    kw: &WrappingKey,
    alg: Algorithm,
    wrapped: &[u8],
    public_key: Option<&[u8]>,
) -> Result<SoftKey, HsmError> {
    let material = kw
        .unwrap(&key_aad(alg), wrapped)
        .map_err(|_| HsmError::Integrity)?;
    let loaded = LoadedKey::load(alg, material.expose()).map_err(|_| HsmError::Integrity)?;
    if let Some(stored) = public_key
        && loaded.public_key_der().ok().as_deref() != Some(stored)
    {
        return Err(HsmError::Integrity);
    }
    Ok(SoftKey { loaded, material })
}

/// A loaded key of the software HSM.
#[derive(Debug)]
pub struct SoftKey {
    loaded: LoadedKey,
    material: SecretBytes,
}

impl KeyOps for SoftKey {
    fn algorithm(&self) -> Algorithm {
        self.loaded.algorithm()
    }
    fn gcm_seal(&self, nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Result<Vec<u8>, CryptoError> {
        KeyOps::gcm_seal(&self.loaded, nonce, aad, pt)
    }
    fn gcm_open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        KeyOps::gcm_open(&self.loaded, nonce, aad, sealed)
    }
    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, CryptoError> {
        self.loaded.sign(input)
    }
    fn verify(&self, input: SignInput<'_>, sig: &[u8]) -> Result<bool, CryptoError> {
        self.loaded.verify(input, sig)
    }
    fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.loaded.oaep_decrypt(ciphertext)
    }
    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.loaded.mac(data)
    }
    fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        self.loaded.public_key_der()
    }
}

impl HsmKey for SoftKey {
    fn wrap_for(&self, enc: ReleaseEnc, spki: &[u8]) -> Result<Vec<u8>, CryptoError> {
        keywrap::wrap(enc, spki, self.material.expose())
    }
}
