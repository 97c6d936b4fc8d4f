//! HSM-held keys: generated inside the HSM, stored wrapped under the location's key-wrapping
//! key, and used as objects inside the HSM (see docs/hsm.md).

use sovra_crypto::keywrap::ReleaseEnc;
use sovra_crypto::{CryptoError, KeyOps};

/// What the HSM reports about a key's material when it was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttributes {
    /// Generated inside the HSM (`CKA_LOCAL`).
    pub local: bool,
    /// Its value cannot be read in clear (`CKA_SENSITIVE`).
    pub sensitive: bool,
    /// It has been sensitive since it was created (`CKA_ALWAYS_SENSITIVE`).
    pub always_sensitive: bool,
    /// It has never been extractable in any form (`CKA_NEVER_EXTRACTABLE`); Sovra's keys are
    /// extractable only by wrapping under the location's key-wrapping key (for storage) or,
    /// for exportable keys, to an attested TEE, so this is false for them.
    pub never_extractable: bool,
}

/// A key generated inside the HSM, ready to be stored.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The material, wrapped inside the HSM under the location's key-wrapping key.
    pub wrapped: Vec<u8>,
    /// SubjectPublicKeyInfo DER of an asymmetric key.
    pub public_key: Option<Vec<u8>>,
    /// The HSM's report on the material.
    pub attributes: KeyAttributes,
}

/// A key loaded into the HSM for use. Dropping it destroys the object in the HSM.
pub trait HsmKey: KeyOps {
    /// Wraps the key for the holder of the RSA key `spki` in the CKM_RSA_AES_KEY_WRAP layout
    /// (OAEP of a fresh AES-256 key, then the material under AES key wrap with padding), with
    /// the clear material staying inside the HSM.
    fn wrap_for(&self, enc: ReleaseEnc, spki: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// Checks that `material` (AES/HMAC: 32 raw bytes; EC, Ed25519, RSA: PKCS#8) is a key of `alg`
/// of the right size, and that an EC key's `public_key` (if given) is its own; returns the
/// loaded key.
pub fn check_import(
    alg: sovra_proto::kms::Algorithm,
    material: &[u8],
    public_key: Option<&[u8]>,
) -> Result<sovra_crypto::LoadedKey, crate::HsmError> {
    use sovra_proto::kms::AlgSpec;
    let bad = |m: String| crate::HsmError::ImportInvalid(m);
    let k = sovra_crypto::LoadedKey::load(alg, material).map_err(|_| {
        bad(format!(
            "the imported material is not a {} key (AES and HMAC: 32 raw bytes; EC and RSA: PKCS#8)",
            alg.as_str()
        ))
    })?;
    if let AlgSpec::RsaSign { bits, .. } | AlgSpec::RsaOaep { bits, .. } = alg.spec() {
        let spki = k.public_key_der().map_err(|e| bad(e.to_string()))?;
        let n = aws_lc_rs::rsa::PublicKey::from_der(&spki)
            .map_err(|_| bad("the imported RSA key has no valid public key".into()))?
            .modulus()
            .big_endian_without_leading_zero()
            .len();
        if n * 8 != usize::from(bits) {
            return Err(bad(format!(
                "the imported RSA key has {} bits; {} needs {bits}",
                n * 8,
                alg.as_str()
            )));
        }
    }
    if let Some(pk) = public_key
        && k.public_key_der().ok().as_deref() != Some(pk)
    {
        return Err(bad(
            "the public key given is not the imported private key's".into(),
        ));
    }
    Ok(k)
}
