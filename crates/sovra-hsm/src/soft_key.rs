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
        Purpose::EncryptDecrypt | Purpose::Mac | Purpose::KeyWrap => None,
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

const IMPORT_KEY_AAD: &[u8] = b"sovra/soft-hsm/import-key/v1";

/// Generates an import job's RSA wrapping key and wraps it under `kw`.
pub(crate) fn generate_import(kw: &WrappingKey, bits: u16) -> Result<GeneratedKey, HsmError> {
    let alg = match bits {
        3072 => Algorithm::RsaDecryptOaep3072Sha256,
        4096 => Algorithm::RsaDecryptOaep4096Sha256,
        _ => {
            return Err(HsmError::Device(
                "import keys are RSA-3072 or RSA-4096".into(),
            ));
        }
    };
    let mut g = generate(kw, alg)?;
    // Rewrapped under the import-key label, so it can never be loaded as a key version.
    let material = kw
        .unwrap(&key_aad(alg), &g.wrapped)
        .map_err(|_| HsmError::Integrity)?;
    g.wrapped = kw
        .wrap(IMPORT_KEY_AAD, material.expose())
        .map_err(|e| HsmError::Device(e.to_string()))?;
    Ok(g)
}

/// Opens `blob` with the import key wrapped under `kw`.
pub(crate) fn open_import(
    kw: &WrappingKey,
    import: &crate::ImportKey<'_>,
    blob: &[u8],
) -> Result<SecretBytes, HsmError> {
    let pkcs8 = kw
        .unwrap(IMPORT_KEY_AAD, import.wrapped)
        .map_err(|_| HsmError::Integrity)?;
    let refused = |_| {
        HsmError::ImportInvalid(format!(
            "the wrapped key does not open with this import job's key as {} (wrong job or method, or corrupted)",
            import.method.as_str()
        ))
    };
    if import.method.with_aes() {
        keywrap::unwrap(
            keywrap::enc_for_oaep(import.method.sha256()),
            pkcs8.expose(),
            blob,
        )
        .map_err(refused)
    } else {
        let alg = match import.method.bits() {
            3072 => Algorithm::RsaDecryptOaep3072Sha256,
            _ => Algorithm::RsaDecryptOaep4096Sha256,
        };
        LoadedKey::load(alg, pkcs8.expose())
            .map_err(|_| HsmError::Integrity)?
            .oaep_decrypt(blob)
            .map_err(refused)
    }
}

/// Imports `blob` as a key of `alg`, wrapped under `kw` as [`generate`] wraps.
pub(crate) fn import(
    kw: &WrappingKey,
    import: &crate::ImportKey<'_>,
    blob: &[u8],
    alg: Algorithm,
    public_key: Option<&[u8]>,
) -> Result<GeneratedKey, HsmError> {
    let material = open_import(kw, import, blob)?;
    let loaded = crate::keys::check_import(alg, material.expose(), public_key)?;
    let public_key = match alg.purpose() {
        Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt => Some(
            loaded
                .public_key_der()
                .map_err(|e| HsmError::Device(e.to_string()))?,
        ),
        Purpose::EncryptDecrypt | Purpose::Mac | Purpose::KeyWrap => None,
    };
    let wrapped = kw
        .wrap(&key_aad(alg), material.expose())
        .map_err(|e| HsmError::Device(e.to_string()))?;
    Ok(GeneratedKey {
        wrapped,
        public_key,
        attributes: KeyAttributes {
            local: false,
            sensitive: true,
            always_sensitive: false,
            never_extractable: false,
        },
    })
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
    fn sign_rsa(
        &self,
        padding: sovra_proto::kms::RsaPadding,
        hash: sovra_proto::kms::AlgHash,
        digest: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.loaded.sign_rsa(padding, hash, digest)
    }
    fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.loaded.oaep_decrypt(ciphertext)
    }
    fn oaep_sha1_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.loaded.oaep_sha1_decrypt(ciphertext)
    }
    fn rsa1_5_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.loaded.rsa1_5_decrypt(ciphertext)
    }
    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.loaded.mac(data)
    }
    fn aes_key_wrap(&self, pad: bool, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.loaded.aes_key_wrap(pad, key)
    }
    fn aes_key_unwrap(&self, pad: bool, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.loaded.aes_key_unwrap(pad, wrapped)
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
