//! CKM_RSA_AES_KEY_WRAP, as Azure Key Vault's secure key release uses it: a fresh AES-256 key
//! is encrypted to the recipient's RSA key with OAEP (SHA-1, SHA-256 or SHA-384 by `enc`), and
//! the key material is wrapped under it with AES key wrap with padding (RFC 5649). The blob is
//! the OAEP ciphertext (modulus length) followed by the wrapped material.

use crate::error::CryptoError;
use crate::secret::SecretBytes;
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrapPadded};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OaepAlgorithm,
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};

/// The `enc` of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseEnc {
    /// `CKM_RSA_AES_KEY_WRAP`: OAEP with SHA-1 (the Azure default).
    CkmRsaAesKeyWrap,
    /// `RSA_AES_KEY_WRAP_256`: OAEP with SHA-256.
    RsaAesKeyWrap256,
    /// `RSA_AES_KEY_WRAP_384`: OAEP with SHA-384.
    RsaAesKeyWrap384,
}

impl ReleaseEnc {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CKM_RSA_AES_KEY_WRAP" => Some(Self::CkmRsaAesKeyWrap),
            "RSA_AES_KEY_WRAP_256" => Some(Self::RsaAesKeyWrap256),
            "RSA_AES_KEY_WRAP_384" => Some(Self::RsaAesKeyWrap384),
            _ => None,
        }
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CkmRsaAesKeyWrap => "CKM_RSA_AES_KEY_WRAP",
            Self::RsaAesKeyWrap256 => "RSA_AES_KEY_WRAP_256",
            Self::RsaAesKeyWrap384 => "RSA_AES_KEY_WRAP_384",
        }
    }

    fn oaep(self) -> &'static OaepAlgorithm {
        match self {
            Self::CkmRsaAesKeyWrap => &OAEP_SHA1_MGF1SHA1,
            Self::RsaAesKeyWrap256 => &OAEP_SHA256_MGF1SHA256,
            Self::RsaAesKeyWrap384 => &OAEP_SHA384_MGF1SHA384,
        }
    }
}

/// Wraps `material` for the holder of the RSA key `spki`.
pub fn wrap(enc: ReleaseEnc, spki: &[u8], material: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let lib = |m: &'static str| move |_| CryptoError::Library(m);
    let public = PublicEncryptingKey::from_der(spki)
        .map_err(|_| CryptoError::Invalid("the recipient key is not an RSA public key"))?;
    if public.key_size_bytes() < 256 {
        return Err(CryptoError::Invalid(
            "the recipient RSA key must be at least 2048 bits",
        ));
    }
    let oaep = OaepPublicEncryptingKey::new(public).map_err(lib("OAEP key"))?;
    let mut transfer = [0u8; 32];
    crate::random::fill(&mut transfer)?;
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let n = oaep
        .encrypt(enc.oaep(), &transfer, &mut out, None)
        .map_err(lib("OAEP encryption"))?
        .len();
    out.truncate(n);
    let kek = KeyEncryptionKey::new(&AES_256, &transfer).map_err(lib("AES key"))?;
    let mut wrapped = vec![0u8; material.len() + 16];
    let w = kek
        .wrap_with_padding(material, &mut wrapped)
        .map_err(lib("AES key wrap"))?
        .len();
    wrapped.truncate(w);
    transfer.fill(0);
    out.extend(wrapped);
    Ok(out)
}

/// Unwraps a blob made by [`wrap`] with the recipient's private key (PKCS#8).
pub fn unwrap(enc: ReleaseEnc, pkcs8: &[u8], blob: &[u8]) -> Result<SecretBytes, CryptoError> {
    let key =
        PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKeyMaterial)?;
    let size = key.key_size_bytes();
    let oaep = OaepPrivateDecryptingKey::new(key).map_err(|_| CryptoError::InvalidKeyMaterial)?;
    let (head, tail) = (blob.get(..size), blob.get(size..));
    let (Some(head), Some(tail)) = (head, tail) else {
        return Err(CryptoError::UnwrapFailed);
    };
    let mut transfer = vec![0u8; size];
    let t = oaep
        .decrypt(enc.oaep(), head, &mut transfer, None)
        .map_err(|_| CryptoError::UnwrapFailed)?
        .len();
    transfer.truncate(t);
    let out = kwp_unwrap(&transfer, tail);
    transfer.fill(0);
    out
}

/// AES-256 key unwrap with padding (RFC 5649) of `wrapped` under `transfer`.
pub fn kwp_unwrap(transfer: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
    let kek = KeyEncryptionKey::new(&AES_256, transfer).map_err(|_| CryptoError::UnwrapFailed)?;
    let mut out = vec![0u8; wrapped.len()];
    let n = kek
        .unwrap_with_padding(wrapped, &mut out)
        .map_err(|_| CryptoError::UnwrapFailed)?
        .len();
    out.truncate(n);
    Ok(SecretBytes::new(out))
}

/// The release `enc` whose OAEP hash is SHA-1 (`false`) or SHA-256 (`true`): import methods use
/// the same CKM_RSA_AES_KEY_WRAP layout.
pub fn enc_for_oaep(sha256: bool) -> ReleaseEnc {
    if sha256 {
        ReleaseEnc::RsaAesKeyWrap256
    } else {
        ReleaseEnc::CkmRsaAesKeyWrap
    }
}

/// What AES key wrap takes: RFC 5649 (`pad`) any length from 1 byte, RFC 3394 a multiple of 8
/// bytes, at least 16.
pub fn check_aes_wrap_input(pad: bool, key: &[u8]) -> Result<(), CryptoError> {
    if key.is_empty() || (!pad && (key.len() < 16 || !key.len().is_multiple_of(8))) {
        return Err(CryptoError::Invalid(
            "AES key wrap (RFC 3394) takes a multiple of 8 bytes, at least 16; wrap other lengths with padding (RFC 5649)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;

    #[test]
    fn round_trip_for_each_enc() {
        let pkcs8 =
            crate::keys::generate(sovra_proto::kms::Algorithm::RsaDecryptOaep2048Sha256).unwrap();
        let k = PrivateDecryptingKey::from_pkcs8(pkcs8.expose()).unwrap();
        let spki = k.public_key().as_der().unwrap().as_ref().to_vec();
        let pk = aws_lc_rs::rsa::PublicKey::from_der(&spki).unwrap();
        let rebuilt = crate::der::rsa_spki(
            pk.modulus().big_endian_without_leading_zero(),
            pk.exponent().big_endian_without_leading_zero(),
        );
        assert_eq!(
            rebuilt, spki,
            "SPKI from components matches the library's encoding"
        );
        for enc in [
            ReleaseEnc::CkmRsaAesKeyWrap,
            ReleaseEnc::RsaAesKeyWrap256,
            ReleaseEnc::RsaAesKeyWrap384,
        ] {
            for material in [&[7u8; 32][..], &[1u8; 1217][..], &[9u8; 3][..]] {
                let blob = wrap(enc, &spki, material).unwrap();
                assert_eq!(
                    unwrap(enc, pkcs8.expose(), &blob).unwrap().expose(),
                    material
                );
                let mut bad = blob.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(unwrap(enc, pkcs8.expose(), &bad).is_err());
            }
        }
        let blob = wrap(ReleaseEnc::RsaAesKeyWrap256, &spki, b"x").unwrap();
        assert!(
            unwrap(ReleaseEnc::CkmRsaAesKeyWrap, pkcs8.expose(), &blob).is_err(),
            "enc must match"
        );
    }
}
