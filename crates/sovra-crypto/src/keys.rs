//! Key generation and loaded keys, per algorithm.
//!
//! Serialized material: AES and HMAC keys are 32 raw bytes; EC, Ed25519 and RSA keys are
//! PKCS#8 DER. A [`LoadedKey`] holds aws-lc-rs key objects, which free (and cleanse) their
//! memory when dropped.

use crate::error::CryptoError;
use crate::secret::SecretBytes;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{aead, digest, hmac};
use sovra_proto::kms::{AlgSpec, Algorithm, EcCurve, RsaPadding};

/// A hash algorithm named by a caller-supplied digest.
pub use sovra_proto::kms::AlgHash as HashAlg;

fn digest_alg(h: HashAlg) -> &'static digest::Algorithm {
    match h {
        HashAlg::Sha256 => &digest::SHA256,
        HashAlg::Sha384 => &digest::SHA384,
        HashAlg::Sha512 => &digest::SHA512,
    }
}

/// What to sign or verify: the message, or its digest computed by the caller.
#[derive(Debug, Clone, Copy)]
pub enum SignInput<'a> {
    /// The message; the key hashes it.
    Data(&'a [u8]),
    /// A digest; its hash must be the algorithm's.
    Digest(HashAlg, &'a [u8]),
}

/// Generates new key material for `alg`.
pub fn generate(alg: Algorithm) -> Result<SecretBytes, CryptoError> {
    let lib = |_| CryptoError::Library("key generation failed");
    let der = |d: Result<Pkcs8V1Der<'static>, _>| {
        d.map(|d| SecretBytes::from_slice(d.as_ref())).map_err(lib)
    };
    match alg.spec() {
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap | AlgSpec::Hmac { .. } => {
            Ok(SecretBytes::new(crate::random::bytes(32)?))
        }
        AlgSpec::Ecdsa { curve, .. } => {
            let kp = EcdsaKeyPair::generate(ecdsa_alg(curve)).map_err(lib)?;
            let doc = kp.to_pkcs8v1().map_err(lib)?;
            Ok(SecretBytes::from_slice(doc.as_ref()))
        }
        AlgSpec::Ed25519 => {
            let kp = Ed25519KeyPair::generate().map_err(lib)?;
            let doc = kp.to_pkcs8().map_err(lib)?;
            Ok(SecretBytes::from_slice(doc.as_ref()))
        }
        AlgSpec::RsaSign { bits, .. } => {
            let kp = RsaKeyPair::generate(rsa_size(bits)?).map_err(lib)?;
            der(AsDer::<Pkcs8V1Der>::as_der(&kp))
        }
        AlgSpec::RsaOaep { bits, .. } => {
            let k = PrivateDecryptingKey::generate(rsa_size(bits)?).map_err(lib)?;
            der(AsDer::<Pkcs8V1Der>::as_der(&k))
        }
    }
}

fn rsa_size(bits: u16) -> Result<KeySize, CryptoError> {
    match bits {
        2048 => Ok(KeySize::Rsa2048),
        3072 => Ok(KeySize::Rsa3072),
        4096 => Ok(KeySize::Rsa4096),
        _ => Err(CryptoError::Unsupported(
            "RSA keys are 2048, 3072 or 4096 bits",
        )),
    }
}

fn ecdsa_alg(curve: EcCurve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    }
}

fn ecdsa_verify_alg(curve: EcCurve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
    }
}

fn rsa_padding(
    padding: RsaPadding,
    hash: HashAlg,
) -> Result<&'static dyn signature::RsaEncoding, CryptoError> {
    match (padding, hash) {
        (RsaPadding::Pss, HashAlg::Sha256) => Ok(&signature::RSA_PSS_SHA256),
        (RsaPadding::Pss, HashAlg::Sha384) => Ok(&signature::RSA_PSS_SHA384),
        (RsaPadding::Pss, HashAlg::Sha512) => Ok(&signature::RSA_PSS_SHA512),
        (RsaPadding::Pkcs1, HashAlg::Sha256) => Ok(&signature::RSA_PKCS1_SHA256),
        (RsaPadding::Pkcs1, HashAlg::Sha384) => Ok(&signature::RSA_PKCS1_SHA384),
        (RsaPadding::Pkcs1, HashAlg::Sha512) => Ok(&signature::RSA_PKCS1_SHA512),
    }
}

fn rsa_verify_alg(padding: RsaPadding, hash: HashAlg) -> &'static signature::RsaParameters {
    match (padding, hash) {
        (RsaPadding::Pss, HashAlg::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
        (RsaPadding::Pss, HashAlg::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
        (RsaPadding::Pss, HashAlg::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
        (RsaPadding::Pkcs1, HashAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (RsaPadding::Pkcs1, HashAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (RsaPadding::Pkcs1, HashAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
    }
}

/// The hash an asymmetric-sign algorithm uses (None for Ed25519).
pub fn sign_hash(alg: Algorithm) -> Option<HashAlg> {
    alg.sign_hash()
}

/// A key ready for use.
// Loaded keys live in a bounded cache, one per version; boxing the large variants would add an
// indirection to every operation to save memory nobody misses.
#[allow(clippy::large_enum_variant)]
pub enum LoadedKey {
    /// AES-256-GCM.
    Aes(aead::LessSafeKey),
    /// HMAC-SHA256.
    Hmac(hmac::Key),
    /// AES-256 key wrap (the raw key: aws-lc-rs builds its key-wrap key per use).
    AesKw(SecretBytes),
    /// ECDSA.
    Ecdsa(EcdsaKeyPair, Algorithm),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
    /// RSA signing.
    RsaSign(RsaKeyPair, Algorithm),
    /// RSA decryption: OAEP, and (Key Vault's `RSA1_5`) PKCS#1 v1.5 with implicit rejection.
    RsaOaep(Box<RsaDecrypting>, Algorithm, Vec<u8>),
}

/// An RSA decryption key in both paddings, and its implicit-rejection secret.
pub struct RsaDecrypting {
    oaep: OaepPrivateDecryptingKey,
    pkcs1: Pkcs1PrivateDecryptingKey,
    /// SHA-256 of a label and the private key: only the key's holder can compute it.
    rejection: SecretBytes,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedKey({:?}, [REDACTED])", self.algorithm())
    }
}

impl LoadedKey {
    /// Loads serialized material for `alg`.
    pub fn load(alg: Algorithm, material: &[u8]) -> Result<Self, CryptoError> {
        fn bad<E>(_: E) -> CryptoError {
            CryptoError::InvalidKeyMaterial
        }
        Ok(match alg.spec() {
            AlgSpec::Aes256Gcm => {
                let k = aead::UnboundKey::new(&aead::AES_256_GCM, material).map_err(bad)?;
                Self::Aes(aead::LessSafeKey::new(k))
            }
            AlgSpec::Hmac { .. } => {
                if material.len() != 32 {
                    return Err(CryptoError::InvalidKeyMaterial);
                }
                Self::Hmac(hmac::Key::new(hmac::HMAC_SHA256, material))
            }
            AlgSpec::AesKeyWrap => {
                if material.len() != 32 {
                    return Err(CryptoError::InvalidKeyMaterial);
                }
                Self::AesKw(SecretBytes::from_slice(material))
            }
            AlgSpec::Ecdsa { curve, .. } => Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(ecdsa_alg(curve), material).map_err(bad)?,
                alg,
            ),
            AlgSpec::Ed25519 => Self::Ed25519(Ed25519KeyPair::from_pkcs8(material).map_err(bad)?),
            AlgSpec::RsaOaep { .. } => {
                let k = PrivateDecryptingKey::from_pkcs8(material).map_err(bad)?;
                let spki = k.public_key().as_der().map_err(bad)?.as_ref().to_vec();
                let pkcs1 = Pkcs1PrivateDecryptingKey::new(
                    PrivateDecryptingKey::from_pkcs8(material).map_err(bad)?,
                )
                .map_err(bad)?;
                let mut h = digest::Context::new(&digest::SHA256);
                h.update(crate::rsa1_5::SECRET_LABEL);
                h.update(material);
                let dec = RsaDecrypting {
                    oaep: OaepPrivateDecryptingKey::new(k).map_err(bad)?,
                    pkcs1,
                    rejection: SecretBytes::from_slice(h.finish().as_ref()),
                };
                Self::RsaOaep(Box::new(dec), alg, spki)
            }
            AlgSpec::RsaSign { .. } => {
                Self::RsaSign(RsaKeyPair::from_pkcs8(material).map_err(bad)?, alg)
            }
        })
    }

    /// AES key wrap of `key`: RFC 5649 with `pad` (any length from 1 byte), else RFC 3394 (a
    /// multiple of 8 bytes, at least 16).
    pub fn aes_key_wrap(&self, pad: bool, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap, KeyWrapPadded};
        let Self::AesKw(k) = self else {
            return Err(CryptoError::Unsupported("this key does not wrap keys"));
        };
        crate::keywrap::check_aes_wrap_input(pad, key)?;
        let kek = KeyEncryptionKey::new(&AES_256, k.expose())
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        let mut out = vec![0u8; key.len() + 16];
        let n = if pad {
            kek.wrap_with_padding(key, &mut out)
        } else {
            kek.wrap(key, &mut out)
        }
        .map_err(|_| CryptoError::Invalid("the key is too long to wrap"))?
        .len();
        out.truncate(n);
        Ok(out)
    }

    /// Undoes [`LoadedKey::aes_key_wrap`].
    pub fn aes_key_unwrap(&self, pad: bool, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap, KeyWrapPadded};
        let Self::AesKw(k) = self else {
            return Err(CryptoError::Unsupported("this key does not wrap keys"));
        };
        let kek = KeyEncryptionKey::new(&AES_256, k.expose())
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        let mut out = vec![0u8; wrapped.len()];
        let n = if pad {
            kek.unwrap_with_padding(wrapped, &mut out)
        } else {
            kek.unwrap(wrapped, &mut out)
        }
        .map_err(|_| CryptoError::CiphertextInvalid)?
        .len();
        out.truncate(n);
        Ok(SecretBytes::new(out))
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Aes(_) => Algorithm::Aes256Gcm,
            Self::Hmac(_) => Algorithm::HmacSha256,
            Self::AesKw(_) => Algorithm::Aes256KeyWrap,
            Self::Ecdsa(_, a) | Self::RsaSign(_, a) | Self::RsaOaep(_, a, _) => *a,
            Self::Ed25519(_) => Algorithm::EcSignEd25519,
        }
    }

    /// Signs data or a digest. ECDSA signatures are DER; RSA and Ed25519 signatures are raw.
    pub fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, CryptoError> {
        let lib = |_| CryptoError::Library("signing failed");
        match self {
            Self::Ecdsa(kp, alg) => {
                let sig = match input {
                    SignInput::Data(d) => kp
                        .sign(&aws_lc_rs::rand::SystemRandom::new(), d)
                        .map_err(lib)?,
                    SignInput::Digest(h, d) => {
                        kp.sign_digest(&import_digest(*alg, h, d)?).map_err(lib)?
                    }
                };
                Ok(sig.as_ref().to_vec())
            }
            Self::Ed25519(kp) => match input {
                SignInput::Data(d) => Ok(kp.sign(d).as_ref().to_vec()),
                SignInput::Digest(..) => Err(CryptoError::Unsupported(
                    "Ed25519 signs the message itself; send data, not a digest",
                )),
            },
            Self::RsaSign(kp, alg) => {
                let AlgSpec::RsaSign { padding, hash, .. } = alg.spec() else {
                    return Err(CryptoError::Unsupported("not an RSA signing key"));
                };
                let padding = rsa_padding(padding, hash)?;
                let mut sig = vec![0u8; kp.public_modulus_len()];
                match input {
                    SignInput::Data(d) => kp
                        .sign(padding, &aws_lc_rs::rand::SystemRandom::new(), d, &mut sig)
                        .map_err(lib)?,
                    SignInput::Digest(h, d) => kp
                        .sign_digest(padding, &import_digest(*alg, h, d)?, &mut sig)
                        .map_err(lib)?,
                }
                Ok(sig)
            }
            Self::Aes(_) | Self::AesKw(_) | Self::Hmac(_) | Self::RsaOaep(..) => {
                Err(CryptoError::Unsupported("this key cannot sign"))
            }
        }
    }

    /// Signs `digest` (of `hash`) with an RSA signing key using `padding` and `hash` rather
    /// than the key's own (Key Vault lets one RSA key sign RS256…PS512).
    pub fn sign_rsa(
        &self,
        padding: RsaPadding,
        hash: HashAlg,
        digest: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let Self::RsaSign(kp, _) = self else {
            return Err(CryptoError::Unsupported("not an RSA signing key"));
        };
        let d = rsa_digest(hash, digest)?;
        let mut sig = vec![0u8; kp.public_modulus_len()];
        kp.sign_digest(rsa_padding(padding, hash)?, &d, &mut sig)
            .map_err(|_| CryptoError::Library("signing failed"))?;
        Ok(sig)
    }

    /// Verifies a signature made by [`LoadedKey::sign`].
    pub fn verify(&self, input: SignInput<'_>, sig: &[u8]) -> Result<bool, CryptoError> {
        let (alg, raw_pub): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) = match self {
            Self::Ecdsa(kp, a) => {
                let AlgSpec::Ecdsa { curve, .. } = a.spec() else {
                    return Err(CryptoError::Unsupported("not an ECDSA key"));
                };
                (ecdsa_verify_alg(curve), kp.public_key().as_ref().to_vec())
            }
            Self::Ed25519(kp) => (&signature::ED25519, kp.public_key().as_ref().to_vec()),
            Self::RsaSign(kp, a) => {
                let AlgSpec::RsaSign { padding, hash, .. } = a.spec() else {
                    return Err(CryptoError::Unsupported("not an RSA signing key"));
                };
                (
                    rsa_verify_alg(padding, hash),
                    kp.public_key().as_ref().to_vec(),
                )
            }
            Self::Aes(_) | Self::AesKw(_) | Self::Hmac(_) | Self::RsaOaep(..) => {
                return Err(CryptoError::Unsupported(
                    "this key cannot verify signatures",
                ));
            }
        };
        let key = signature::UnparsedPublicKey::new(alg, raw_pub);
        Ok(match input {
            SignInput::Data(d) => key.verify(d, sig).is_ok(),
            SignInput::Digest(h, d) => {
                if matches!(self, Self::Ed25519(_)) {
                    return Err(CryptoError::Unsupported(
                        "Ed25519 verifies the message itself; send data, not a digest",
                    ));
                }
                key.verify_digest(&import_digest(self.algorithm(), h, d)?, sig)
                    .is_ok()
            }
        })
    }

    /// Decrypts RSA-OAEP-SHA256 ciphertext.
    pub fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.oaep_decrypt_with(&OAEP_SHA256_MGF1SHA256, ciphertext)
    }

    /// Decrypts RSA-OAEP with SHA-1 and MGF1-SHA-1 (Key Vault's `RSA-OAEP`, which its SDKs
    /// use by default): offered by the Key Vault API on the same keys.
    pub fn oaep_sha1_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.oaep_decrypt_with(&OAEP_SHA1_MGF1SHA1, ciphertext)
    }

    fn oaep_decrypt_with(
        &self,
        alg: &'static OaepAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let Self::RsaOaep(k, _, _) = self else {
            return Err(CryptoError::Unsupported(
                "this key cannot decrypt asymmetrically",
            ));
        };
        let mut out = vec![0u8; k.oaep.min_output_size()];
        let n = k
            .oaep
            .decrypt(alg, ciphertext, &mut out, None)
            .map_err(|_| CryptoError::CiphertextInvalid)?
            .len();
        out.truncate(n);
        Ok(SecretBytes::new(out))
    }

    /// Decrypts RSAES-PKCS1-v1_5 ciphertext (Key Vault's `RSA1_5`) with implicit rejection: a
    /// malformed block decrypts to a synthetic message ([`crate::rsa1_5`]), never to an error.
    /// Only a ciphertext of the wrong length (which anyone can see) is refused.
    pub fn rsa1_5_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        let Self::RsaOaep(k, _, _) = self else {
            return Err(CryptoError::Unsupported(
                "this key cannot decrypt asymmetrically",
            ));
        };
        let size = k.pkcs1.key_size_bytes();
        if ciphertext.len() != size {
            return Err(CryptoError::CiphertextInvalid);
        }
        let mut out = SecretBytes::new(vec![0u8; k.pkcs1.min_output_size()]);
        let real = k
            .pkcs1
            .decrypt(ciphertext, out.expose_mut())
            .ok()
            .map(|m| SecretBytes::from_slice(m));
        Ok(crate::rsa1_5::or_synthetic(
            k.rejection.expose(),
            ciphertext,
            size,
            real,
        ))
    }

    /// HMAC of `data`.
    pub fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Self::Hmac(k) = self else {
            return Err(CryptoError::Unsupported("this key cannot compute MACs"));
        };
        Ok(hmac::sign(k, data).as_ref().to_vec())
    }

    /// Checks an HMAC in constant time.
    pub fn mac_verify(&self, data: &[u8], tag: &[u8]) -> Result<bool, CryptoError> {
        let Self::Hmac(k) = self else {
            return Err(CryptoError::Unsupported("this key cannot verify MACs"));
        };
        Ok(hmac::verify(k, data, tag).is_ok())
    }

    /// The SubjectPublicKeyInfo DER of an asymmetric key.
    pub fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        let lib = |_| CryptoError::Library("public key encoding failed");
        let der: PublicKeyX509Der<'static> = match self {
            Self::Ecdsa(kp, _) => kp.public_key().as_der().map_err(lib)?,
            Self::Ed25519(kp) => kp.public_key().as_der().map_err(lib)?,
            Self::RsaSign(kp, _) => kp.public_key().as_der().map_err(lib)?,
            Self::RsaOaep(_, _, spki) => return Ok(spki.clone()),
            Self::Aes(_) | Self::AesKw(_) | Self::Hmac(_) => {
                return Err(CryptoError::Unsupported(
                    "symmetric keys have no public key",
                ));
            }
        };
        Ok(der.as_ref().to_vec())
    }

    /// The public key as PEM (`PUBLIC KEY`).
    pub fn public_key_pem(&self) -> Result<String, CryptoError> {
        Ok(pem("PUBLIC KEY", &self.public_key_der()?))
    }
}

pub(crate) fn import_digest(
    alg: Algorithm,
    h: HashAlg,
    d: &[u8],
) -> Result<digest::Digest, CryptoError> {
    let want = sign_hash(alg).ok_or(CryptoError::Unsupported(
        "this algorithm does not sign digests",
    ))?;
    let expected = match want {
        HashAlg::Sha256 => "a 32-byte SHA-256 digest",
        HashAlg::Sha384 => "a 48-byte SHA-384 digest",
        HashAlg::Sha512 => "a 64-byte SHA-512 digest",
    };
    if h != want {
        return Err(CryptoError::BadDigest { expected });
    }
    digest::Digest::import_less_safe(d, digest_alg(want))
        .map_err(|_| CryptoError::BadDigest { expected })
}

/// A caller's digest of `hash`, checked for its length.
pub fn rsa_digest(hash: HashAlg, d: &[u8]) -> Result<digest::Digest, CryptoError> {
    let expected = match hash {
        HashAlg::Sha256 => "a 32-byte SHA-256 digest",
        HashAlg::Sha384 => "a 48-byte SHA-384 digest",
        HashAlg::Sha512 => "a 64-byte SHA-512 digest",
    };
    digest::Digest::import_less_safe(d, digest_alg(hash))
        .map_err(|_| CryptoError::BadDigest { expected })
}

/// Verifies an RSA signature with `padding` and `hash` over `digest` with the public key `spki`.
pub fn verify_rsa_spki(
    padding: RsaPadding,
    hash: HashAlg,
    spki: &[u8],
    digest: &[u8],
    sig: &[u8],
) -> Result<bool, CryptoError> {
    let key = signature::ParsedPublicKey::new(rsa_verify_alg(padding, hash), spki)
        .map_err(|_| CryptoError::InvalidKeyMaterial)?;
    Ok(key
        .verify_digest_sig(&rsa_digest(hash, digest)?, sig)
        .is_ok())
}

/// What an asymmetric-sign algorithm signs: the hash of the message, or the caller's digest once
/// checked against the algorithm's hash and length.
pub fn message_digest(alg: Algorithm, input: SignInput<'_>) -> Result<Vec<u8>, CryptoError> {
    let h = sign_hash(alg).ok_or(CryptoError::Unsupported(
        "this algorithm signs the message itself, not a digest",
    ))?;
    Ok(match input {
        SignInput::Data(d) => digest::digest(digest_alg(h), d).as_ref().to_vec(),
        SignInput::Digest(given, d) => import_digest(alg, given, d)?.as_ref().to_vec(),
    })
}

/// A private key of `alg` as PKCS#8 DER, from PKCS#8, SEC1 (EC) or PKCS#1 (RSA) DER.
/// Symmetric keys are returned as they are.
pub fn to_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Vec<u8>, CryptoError> {
    fn bad<E>(_: E) -> CryptoError {
        CryptoError::Invalid("not a private key of this algorithm (PKCS#8, SEC1 or PKCS#1)")
    }
    Ok(match alg.spec() {
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap | AlgSpec::Hmac { .. } => der.to_vec(),
        AlgSpec::Ecdsa { curve, .. } => EcdsaKeyPair::from_private_key_der(ecdsa_alg(curve), der)
            .map_err(bad)?
            .to_pkcs8v1()
            .map_err(bad)?
            .as_ref()
            .to_vec(),
        AlgSpec::Ed25519 => Ed25519KeyPair::from_pkcs8(der)
            .map_err(bad)?
            .to_pkcs8()
            .map_err(bad)?
            .as_ref()
            .to_vec(),
        AlgSpec::RsaSign { .. } | AlgSpec::RsaOaep { .. } => {
            let kp = RsaKeyPair::from_pkcs8(der)
                .or_else(|_| RsaKeyPair::from_der(der))
                .map_err(bad)?;
            AsDer::<Pkcs8V1Der>::as_der(&kp)
                .map_err(bad)?
                .as_ref()
                .to_vec()
        }
    })
}

/// RSA-OAEP (SHA-256, MGF1-SHA-256) encryption of `data` to the RSA key `spki`.
pub fn oaep_sha256_encrypt(spki: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    oaep_encrypt(&OAEP_SHA256_MGF1SHA256, spki, data)
}

/// RSA-OAEP with SHA-1 and MGF1-SHA-1 to the public key `spki` (Key Vault's `RSA-OAEP`).
pub fn oaep_sha1_encrypt(spki: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    oaep_encrypt(&OAEP_SHA1_MGF1SHA1, spki, data)
}

fn oaep_encrypt(
    alg: &'static OaepAlgorithm,
    spki: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))?;
    let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk)
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))?;
    let max = enc.max_plaintext_size(alg);
    if data.len() > max {
        return Err(CryptoError::TooLong { max });
    }
    let mut out = vec![0u8; enc.ciphertext_size()];
    let n = enc
        .encrypt(alg, data, &mut out, None)
        .map_err(|_| CryptoError::Library("RSA-OAEP encryption failed"))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// RSAES-PKCS1-v1_5 to the public key `spki` (Key Vault's `RSA1_5`; encryption is no oracle).
pub fn pkcs1_encrypt(spki: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))?;
    let enc = aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(pk)
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))?;
    let max = enc.max_plaintext_size();
    if data.len() > max {
        return Err(CryptoError::TooLong { max });
    }
    let mut out = vec![0u8; enc.ciphertext_size()];
    let n = enc
        .encrypt(data, &mut out)
        .map_err(|_| CryptoError::Library("RSA PKCS#1 v1.5 encryption failed"))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// The DER inside the first PEM block labelled `label`, if any.
pub fn pem_decode(label: &str, text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text.get(start..)?.find(&end)?;
    let b64: String = text
        .get(start..stop)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// PEM-encodes DER with `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(alg: Algorithm) {
        let m = generate(alg).unwrap();
        let k = LoadedKey::load(alg, m.expose()).unwrap();
        assert_eq!(k.algorithm(), alg);
        let sig = k.sign(SignInput::Data(b"msg")).unwrap();
        assert!(k.verify(SignInput::Data(b"msg"), &sig).unwrap());
        assert!(!k.verify(SignInput::Data(b"msh"), &sig).unwrap());
        if let Some(h) = sign_hash(alg) {
            let d = digest::digest(digest_alg(h), b"msg");
            let sig2 = k.sign(SignInput::Digest(h, d.as_ref())).unwrap();
            assert!(k.verify(SignInput::Data(b"msg"), &sig2).unwrap());
            assert!(k.sign(SignInput::Digest(h, &d.as_ref()[1..])).is_err());
        }
        assert!(
            k.public_key_pem()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }

    #[test]
    fn sign_algorithms() {
        for a in [
            Algorithm::EcSignP256Sha256,
            Algorithm::EcSignP384Sha384,
            Algorithm::EcSignEd25519,
            Algorithm::RsaSignPss2048Sha256,
            Algorithm::RsaSignPkcs12048Sha256,
        ] {
            roundtrip(a);
        }
    }

    #[test]
    fn oaep_and_hmac() {
        let m = generate(Algorithm::RsaDecryptOaep2048Sha256).unwrap();
        let k = LoadedKey::load(Algorithm::RsaDecryptOaep2048Sha256, m.expose()).unwrap();
        let spki = k.public_key_der().unwrap();
        let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki).unwrap();
        let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
        let mut ct = vec![0u8; enc.ciphertext_size()];
        let ct = enc
            .encrypt(&OAEP_SHA256_MGF1SHA256, b"secret", &mut ct, None)
            .unwrap()
            .to_vec();
        assert_eq!(k.oaep_decrypt(&ct).unwrap().expose(), b"secret");
        assert!(k.oaep_decrypt(&ct[1..]).is_err());

        let m = generate(Algorithm::HmacSha256).unwrap();
        let k = LoadedKey::load(Algorithm::HmacSha256, m.expose()).unwrap();
        let t = k.mac(b"x").unwrap();
        assert!(k.mac_verify(b"x", &t).unwrap());
        assert!(!k.mac_verify(b"y", &t).unwrap());
    }

    #[test]
    fn every_algorithm_generates_loads_and_works_for_its_purpose() {
        use sovra_proto::kms::Purpose;
        for &a in Algorithm::ALL {
            let k = LoadedKey::load(a, generate(a).unwrap().expose()).unwrap();
            assert_eq!(k.algorithm(), a);
            match a.purpose() {
                Purpose::AsymmetricSign => {
                    let sig = k.sign(SignInput::Data(b"msg")).unwrap();
                    assert!(k.verify(SignInput::Data(b"msg"), &sig).unwrap(), "{a:?}");
                    assert!(!k.verify(SignInput::Data(b"msh"), &sig).unwrap(), "{a:?}");
                    if let Some(h) = sign_hash(a) {
                        let d = digest::digest(digest_alg(h), b"msg");
                        let sig = k.sign(SignInput::Digest(h, d.as_ref())).unwrap();
                        assert!(k.verify(SignInput::Data(b"msg"), &sig).unwrap(), "{a:?}");
                    }
                    if let AlgSpec::RsaSign { bits, .. } = a.spec() {
                        let spki = k.public_key_der().unwrap();
                        assert!(spki.len() > usize::from(bits) / 8, "{a:?}");
                    }
                }
                Purpose::AsymmetricDecrypt => {
                    let spki = k.public_key_der().unwrap();
                    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki).unwrap();
                    let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
                    let mut ct = vec![0u8; enc.ciphertext_size()];
                    let ct = enc
                        .encrypt(&OAEP_SHA256_MGF1SHA256, b"secret", &mut ct, None)
                        .unwrap()
                        .to_vec();
                    assert_eq!(k.oaep_decrypt(&ct).unwrap().expose(), b"secret");
                }
                Purpose::EncryptDecrypt => {
                    let ct = crate::symmetric::seal(&k, 1, b"aad", b"pt").unwrap();
                    let pt = crate::symmetric::open(&k, b"aad", &ct).unwrap();
                    assert_eq!(pt.expose(), b"pt");
                }
                Purpose::Mac => {
                    let t = k.mac(b"x").unwrap();
                    assert!(k.mac_verify(b"x", &t).unwrap());
                }
                Purpose::KeyWrap => {
                    for (pad, key) in [
                        (true, &b"twenty bytes of key!"[..]),
                        (false, &[7u8; 32][..]),
                    ] {
                        let w = k.aes_key_wrap(pad, key).unwrap();
                        assert_eq!(k.aes_key_unwrap(pad, &w).unwrap().expose(), key);
                        assert!(k.aes_key_unwrap(!pad, &w).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn aes_key_wrap_is_rfc_3394() {
        // RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
        let hex = |s: &str| sovra_proto::hex::decode(s).unwrap();
        let kek = LoadedKey::load(
            Algorithm::Aes256KeyWrap,
            &hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        )
        .unwrap();
        let data = hex("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
        let want =
            hex("28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
        assert_eq!(kek.aes_key_wrap(false, &data).unwrap(), want);
        assert_eq!(kek.aes_key_unwrap(false, &want).unwrap().expose(), data);
        let mut bad = want.clone();
        bad[3] ^= 1;
        assert!(kek.aes_key_unwrap(false, &bad).is_err());
        assert!(kek.aes_key_wrap(false, &[1; 20]).is_err());
        assert!(kek.aes_key_wrap(true, &[]).is_err());
    }

    #[test]
    fn fail_wrong_material() {
        assert!(LoadedKey::load(Algorithm::Aes256Gcm, &[0u8; 16]).is_err());
        assert!(LoadedKey::load(Algorithm::EcSignP256Sha256, b"junk").is_err());
    }
}
