//! HSM-held keys on a PKCS#11 token: generation templates, the public key as SPKI, and
//! [`Pkcs11Key`], a session object that every operation runs on inside the HSM.

use super::conn::{Conn, Failure};
use crate::keys::{HsmKey, KeyAttributes};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sovra_crypto::keywrap::ReleaseEnc;
use sovra_crypto::{CryptoError, KeyOps, SecretBytes, SignInput, der};
use sovra_proto::kms::{AlgHash, AlgSpec, Algorithm, EcCurve, RsaPadding};
use std::sync::Weak;

const TAG_BITS: u64 = 128;

/// The PKCS#11 name of the mechanism an algorithm needs, for error messages.
pub(crate) fn mechanism_name(alg: Algorithm) -> &'static str {
    match alg.spec() {
        AlgSpec::Aes256Gcm => "CKM_AES_KEY_GEN / CKM_AES_GCM",
        AlgSpec::AesKeyWrap => "CKM_AES_KEY_GEN / CKM_AES_KEY_WRAP(_PAD)",
        AlgSpec::Hmac { .. } => "CKM_GENERIC_SECRET_KEY_GEN / CKM_SHA256_HMAC",
        AlgSpec::Ecdsa { .. } => "CKM_EC_KEY_PAIR_GEN / CKM_ECDSA",
        AlgSpec::Ed25519 => "CKM_EC_EDWARDS_KEY_PAIR_GEN / CKM_EDDSA",
        AlgSpec::RsaSign {
            padding: RsaPadding::Pss,
            ..
        } => "CKM_RSA_PKCS_KEY_PAIR_GEN / CKM_RSA_PKCS_PSS",
        AlgSpec::RsaSign { .. } => "CKM_RSA_PKCS_KEY_PAIR_GEN / CKM_RSA_PKCS",
        AlgSpec::RsaOaep { .. } => "CKM_RSA_PKCS_KEY_PAIR_GEN / CKM_RSA_PKCS_OAEP",
    }
}

/// The object class and key type of `alg`'s secret or private key.
fn class_and_type(alg: Algorithm) -> (ObjectClass, KeyType) {
    match alg.spec() {
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap => (ObjectClass::SECRET_KEY, KeyType::AES),
        AlgSpec::Hmac { .. } => (ObjectClass::SECRET_KEY, KeyType::GENERIC_SECRET),
        AlgSpec::Ecdsa { .. } => (ObjectClass::PRIVATE_KEY, KeyType::EC),
        AlgSpec::Ed25519 => (ObjectClass::PRIVATE_KEY, KeyType::EC_EDWARDS),
        AlgSpec::RsaSign { .. } | AlgSpec::RsaOaep { .. } => {
            (ObjectClass::PRIVATE_KEY, KeyType::RSA)
        }
    }
}

/// The template of `alg`'s secret or private key object: a session object, sensitive, usable
/// only for the algorithm's purpose, extractable only by wrapping (for storage and release).
pub(crate) fn key_template(alg: Algorithm) -> Vec<Attribute> {
    let (class, kt) = class_and_type(alg);
    let mut t = vec![
        Attribute::Class(class),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
    ];
    t.extend(match alg.spec() {
        AlgSpec::Aes256Gcm => vec![Attribute::Encrypt(true), Attribute::Decrypt(true)],
        AlgSpec::AesKeyWrap => vec![Attribute::Wrap(true), Attribute::Unwrap(true)],
        AlgSpec::Hmac { .. } => vec![Attribute::Sign(true), Attribute::Verify(true)],
        AlgSpec::Ecdsa { .. } | AlgSpec::Ed25519 | AlgSpec::RsaSign { .. } => {
            vec![Attribute::Sign(true)]
        }
        AlgSpec::RsaOaep { .. } => vec![Attribute::Decrypt(true)],
    });
    t
}

/// Generates `alg`'s key (pair) as session objects; returns the secret or private key and the
/// public key object, if any.
pub(crate) fn generate(
    s: &Session,
    alg: Algorithm,
) -> Result<(ObjectHandle, Option<ObjectHandle>), CkError> {
    let mut private = key_template(alg);
    let public_base = vec![Attribute::Token(false), Attribute::Private(false)];
    match alg.spec() {
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap => {
            private.push(Attribute::ValueLen(32.into()));
            Ok((s.generate_key(&Mechanism::AesKeyGen, &private)?, None))
        }
        AlgSpec::Hmac { .. } => {
            private.push(Attribute::ValueLen(32.into()));
            Ok((
                s.generate_key(&Mechanism::GenericSecretKeyGen, &private)?,
                None,
            ))
        }
        AlgSpec::Ecdsa { curve, .. } => {
            let oid = match curve {
                EcCurve::P256 => der::OID_P256,
                EcCurve::P384 => der::OID_P384,
            };
            let mut public = public_base;
            public.extend([Attribute::EcParams(oid.to_vec()), Attribute::Verify(true)]);
            let (pubk, privk) =
                s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
            Ok((privk, Some(pubk)))
        }
        AlgSpec::Ed25519 => {
            let mut public = public_base;
            public.extend([
                Attribute::EcParams(der::OID_ED25519.to_vec()),
                Attribute::Verify(true),
            ]);
            let (pubk, privk) =
                s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)?;
            Ok((privk, Some(pubk)))
        }
        AlgSpec::RsaSign { bits, .. } | AlgSpec::RsaOaep { bits, .. } => {
            let mut public = public_base;
            public.extend([
                Attribute::ModulusBits(u64::from(bits).into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Encrypt(matches!(alg.spec(), AlgSpec::RsaOaep { .. })),
            ]);
            let (pubk, privk) =
                s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
            Ok((privk, Some(pubk)))
        }
    }
}

/// Checks that the token can use a new key pair the way Sovra will: some tokens accept
/// CKM_RSA_PKCS_OAEP only with SHA-1, which is known only by trying (SHA-256 here).
pub(crate) fn probe(
    s: &Session,
    alg: Algorithm,
    private: ObjectHandle,
    public: Option<ObjectHandle>,
) -> Result<(), CkError> {
    if let (AlgSpec::RsaOaep { .. }, Some(public)) = (alg.spec(), public) {
        let p = || {
            PkcsOaepParams::new(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                PkcsOaepSource::empty(),
            )
        };
        let ct = s.encrypt(&Mechanism::RsaPkcsOaep(p()), public, b"sovra-probe")?;
        s.decrypt(&Mechanism::RsaPkcsOaep(p()), private, &ct)?;
    }
    Ok(())
}

/// The content of a DER OCTET STRING, or `v` itself if it is not one (modules differ in
/// whether `CKA_EC_POINT` is DER-wrapped).
fn octet_string_content(v: &[u8]) -> &[u8] {
    match v {
        [0x04, n, rest @ ..] if usize::from(*n) < 0x80 && rest.len() == usize::from(*n) => rest,
        [0x04, 0x81, n, rest @ ..] if rest.len() == usize::from(*n) => rest,
        _ => v,
    }
}

/// The SubjectPublicKeyInfo of the public key object `h` of `alg`.
pub(crate) fn public_spki(
    s: &Session,
    h: ObjectHandle,
    alg: Algorithm,
) -> Result<Vec<u8>, CkError> {
    let attrs = s.get_attributes(
        h,
        &[
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let (mut point, mut n, mut e) = (None, None, None);
    for a in attrs {
        match a {
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => n = Some(m),
            Attribute::PublicExponent(x) => e = Some(x),
            _ => {}
        }
    }
    let missing = || {
        CkError::Pkcs11(
            RvError::AttributeTypeInvalid,
            cryptoki::context::Function::GetAttributeValue,
        )
    };
    Ok(match alg.spec() {
        AlgSpec::Ecdsa { curve, .. } => {
            let oid = match curve {
                EcCurve::P256 => der::OID_P256,
                EcCurve::P384 => der::OID_P384,
            };
            der::ec_spki(oid, octet_string_content(&point.ok_or_else(missing)?))
        }
        AlgSpec::Ed25519 => der::ed25519_spki(octet_string_content(&point.ok_or_else(missing)?)),
        AlgSpec::RsaSign { .. } | AlgSpec::RsaOaep { .. } => {
            der::rsa_spki(&n.ok_or_else(missing)?, &e.ok_or_else(missing)?)
        }
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap | AlgSpec::Hmac { .. } => return Err(missing()),
    })
}

/// What the token reports about the key object `h`.
pub(crate) fn attributes(s: &Session, h: ObjectHandle) -> Result<KeyAttributes, CkError> {
    let mut out = KeyAttributes {
        local: false,
        sensitive: false,
        always_sensitive: false,
        never_extractable: false,
    };
    for a in s.get_attributes(
        h,
        &[
            AttributeType::Local,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
        ],
    )? {
        match a {
            Attribute::Local(v) => out.local = v,
            Attribute::Sensitive(v) => out.sensitive = v,
            Attribute::AlwaysSensitive(v) => out.always_sensitive = v,
            Attribute::NeverExtractable(v) => out.never_extractable = v,
            _ => {}
        }
    }
    Ok(out)
}

/// A key loaded into the HSM as a session object. Dropping it destroys the object.
pub struct Pkcs11Key {
    pub(crate) handle: ObjectHandle,
    pub(crate) alg: Algorithm,
    pub(crate) spki: Option<Vec<u8>>,
    pub(crate) conn: Weak<Conn>,
    /// An RSA decryption key's implicit-rejection secret, made on first `RSA1_5` use.
    pub(crate) rejection: std::sync::OnceLock<SecretBytes>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Drop for Pkcs11Key {
    fn drop(&mut self) {
        if let Some(c) = self.conn.upgrade()
            && !c.is_broken()
        {
            let h = self.handle;
            // Best effort: a lost session destroys its objects anyway.
            let _ = c.with_session(|s| s.destroy_object(h));
        }
    }
}

/// A failed operation as a [`CryptoError`]; `decrypting` maps the codes a failed decryption
/// returns (the standard's, and CKR_GENERAL_ERROR from SoftHSM2's GCM) to an invalid ciphertext.
fn op_error(decrypting: bool) -> impl Fn(Failure) -> CryptoError {
    move |f| match f {
        Failure::Lost(m) => CryptoError::HsmUnavailable(m),
        Failure::Op(CkError::Pkcs11(
            RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::WrappedKeyInvalid
            | RvError::WrappedKeyLenRange
            | RvError::GeneralError,
            _,
        )) if decrypting => CryptoError::CiphertextInvalid,
        Failure::Op(e) => CryptoError::HsmFailure(e.to_string()),
    }
}

fn hash_mech(h: AlgHash) -> (MechanismType, PkcsMgfType, u64) {
    match h {
        AlgHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32),
        AlgHash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
        AlgHash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64),
    }
}

/// The DER DigestInfo prefix PKCS#1 v1.5 signatures put before the digest.
fn digest_info_prefix(h: AlgHash) -> &'static [u8] {
    match h {
        AlgHash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        AlgHash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        AlgHash::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

impl Pkcs11Key {
    fn run<T>(
        &self,
        decrypting: bool,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<T, CryptoError> {
        let conn = self.conn.upgrade().ok_or_else(|| {
            CryptoError::HsmUnavailable(
                "the HSM connection was reset; the key is reloaded on the next request".into(),
            )
        })?;
        conn.with_session(f).map_err(op_error(decrypting))
    }

    /// An RSA signature of `digest` inside the HSM: PSS (salt as long as the hash) or PKCS#1
    /// v1.5 (with the DigestInfo of `hash`).
    fn rsa_sign_digest(
        &self,
        padding: RsaPadding,
        hash: sovra_proto::kms::AlgHash,
        digest: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match padding {
            RsaPadding::Pss => {
                let (hash_alg, mgf, s_len) = hash_mech(hash);
                let p = PkcsPssParams {
                    hash_alg,
                    mgf,
                    s_len: s_len.into(),
                };
                self.run(false, |s| {
                    s.sign(&Mechanism::RsaPkcsPss(p), self.handle, digest)
                })
            }
            RsaPadding::Pkcs1 => {
                let mut info = digest_info_prefix(hash).to_vec();
                info.extend_from_slice(digest);
                self.run(false, |s| s.sign(&Mechanism::RsaPkcs, self.handle, &info))
            }
        }
    }

    /// RSA-OAEP decryption inside the HSM with `hash` and `mgf` (no label).
    fn oaep(
        &self,
        hash: MechanismType,
        mgf: PkcsMgfType,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if !matches!(self.alg.spec(), AlgSpec::RsaOaep { .. }) {
            return Err(CryptoError::Unsupported(
                "this key cannot decrypt asymmetrically",
            ));
        }
        let p = PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty());
        self.run(true, |s| {
            s.decrypt(&Mechanism::RsaPkcsOaep(p), self.handle, ciphertext)
        })
        .map(SecretBytes::new)
    }
}

/// A session generic secret that carries bytes in or out of a key wrap (their owner's data:
/// readable, gone when the call ends).
fn carrier_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

impl Pkcs11Key {
    /// The key-wrap mechanism, for a key-wrap key: RFC 5649 (`pad`) or RFC 3394.
    fn wrap_mechanism(&self, pad: bool) -> Result<Mechanism<'static>, CryptoError> {
        if self.alg.spec() != AlgSpec::AesKeyWrap {
            return Err(CryptoError::Unsupported("this key does not wrap keys"));
        }
        Ok(if pad {
            Mechanism::AesKeyWrapPad
        } else {
            Mechanism::AesKeyWrap
        })
    }
}

impl KeyOps for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn gcm_seal(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if self.alg.spec() != AlgSpec::Aes256Gcm {
            return Err(CryptoError::Unsupported(
                "this key cannot encrypt symmetrically",
            ));
        }
        let mut iv = *nonce;
        self.run(false, |s| {
            let p = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            s.encrypt(&Mechanism::AesGcm(p), self.handle, plaintext)
        })
    }

    fn gcm_open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if self.alg.spec() != AlgSpec::Aes256Gcm {
            return Err(CryptoError::Unsupported(
                "this key cannot decrypt symmetrically",
            ));
        }
        if sealed.len() < 16 {
            return Err(CryptoError::CiphertextInvalid);
        }
        let mut iv = *nonce;
        self.run(true, |s| {
            let p = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            s.decrypt(&Mechanism::AesGcm(p), self.handle, sealed)
        })
        .map(SecretBytes::new)
    }

    fn sign(&self, input: SignInput<'_>) -> Result<Vec<u8>, CryptoError> {
        match self.alg.spec() {
            AlgSpec::Ecdsa { .. } => {
                let digest = sovra_crypto::keys::message_digest(self.alg, input)?;
                let raw = self.run(false, |s| s.sign(&Mechanism::Ecdsa, self.handle, &digest))?;
                der::ecdsa_sig_der(&raw).ok_or(CryptoError::HsmFailure(
                    "the HSM returned a malformed ECDSA signature".into(),
                ))
            }
            AlgSpec::Ed25519 => match input {
                SignInput::Data(d) => self.run(false, |s| {
                    s.sign(
                        &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                        self.handle,
                        d,
                    )
                }),
                SignInput::Digest(..) => Err(CryptoError::Unsupported(
                    "Ed25519 signs the message itself; send data, not a digest",
                )),
            },
            AlgSpec::RsaSign { padding, hash, .. } => {
                let digest = sovra_crypto::keys::message_digest(self.alg, input)?;
                self.rsa_sign_digest(padding, hash, &digest)
            }
            AlgSpec::Aes256Gcm
            | AlgSpec::AesKeyWrap
            | AlgSpec::Hmac { .. }
            | AlgSpec::RsaOaep { .. } => Err(CryptoError::Unsupported("this key cannot sign")),
        }
    }

    fn sign_rsa(
        &self,
        padding: RsaPadding,
        hash: sovra_proto::kms::AlgHash,
        digest: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if !matches!(self.alg.spec(), AlgSpec::RsaSign { .. }) {
            return Err(CryptoError::Unsupported("not an RSA signing key"));
        }
        let d = sovra_crypto::keys::rsa_digest(hash, digest)?;
        self.rsa_sign_digest(padding, hash, d.as_ref())
    }

    fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.oaep(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, ciphertext)
    }

    fn oaep_sha1_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.oaep(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, ciphertext)
    }

    // The HSM does the raw RSA operation (CKM_RSA_X_509), the same work whatever the block
    // holds; the block is unpadded here without branching on it, and a malformed one gives
    // the synthetic message. The HSM's own CKM_RSA_PKCS would report bad padding as an error
    // (an oracle) after doing different work.
    fn rsa1_5_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        if !matches!(self.alg.spec(), AlgSpec::RsaOaep { .. }) {
            return Err(CryptoError::Unsupported(
                "this key cannot decrypt asymmetrically",
            ));
        }
        let k = self
            .spki
            .as_deref()
            .and_then(|d| aws_lc_rs::rsa::PublicEncryptingKey::from_der(d).ok())
            .map(|p| p.key_size_bytes())
            .ok_or(CryptoError::InvalidKeyMaterial)?;
        if ciphertext.len() != k {
            return Err(CryptoError::CiphertextInvalid);
        }
        let raw = |c: &[u8]| -> Result<SecretBytes, CryptoError> {
            let conn = self.conn.upgrade().ok_or_else(|| {
                CryptoError::HsmUnavailable(
                    "the HSM connection was reset; the key is reloaded on the next request".into(),
                )
            })?;
            let m = conn
                .with_session(|s| s.decrypt(&Mechanism::RsaX509, self.handle, c))
                .map_err(|f| match f {
                    Failure::Op(CkError::Pkcs11(
                        RvError::MechanismInvalid | RvError::KeyFunctionNotPermitted,
                        _,
                    )) => CryptoError::Unsupported(
                        "this HSM does not perform raw RSA (CKM_RSA_X_509), which RSA1_5 with implicit rejection needs; use RSA-OAEP-256",
                    ),
                    f => op_error(true)(f),
                })?;
            let m = SecretBytes::new(m);
            // Left-pad to the modulus length (some tokens drop leading zero bytes).
            let mut em = SecretBytes::new(vec![0u8; k]);
            let at = k.saturating_sub(m.len());
            if let Some(tail) = em.expose_mut().get_mut(at..) {
                tail.copy_from_slice(
                    m.expose()
                        .get(m.len().saturating_sub(k)..)
                        .unwrap_or_default(),
                );
            }
            Ok(em)
        };
        let secret = match self.rejection.get() {
            Some(s) => s,
            None => {
                // SHA-256 of a label and the raw decryption of a fixed block (below the
                // modulus): only the holder of the private key can compute it.
                let mut fixed = vec![0u8; k];
                let label = sovra_crypto::sha256(sovra_crypto::rsa1_5::SECRET_LABEL);
                if let Some(tail) = fixed.get_mut(k.saturating_sub(label.len())..) {
                    tail.copy_from_slice(&label);
                }
                let r = raw(&fixed)?;
                let mut seed = sovra_crypto::rsa1_5::SECRET_LABEL.to_vec();
                seed.extend_from_slice(r.expose());
                let s = SecretBytes::from_slice(&sovra_crypto::sha256(&seed));
                self.rejection.get_or_init(|| s)
            }
        };
        // A ciphertext at or above the modulus is refused by the token: public, no oracle.
        let em = raw(ciphertext).map_err(|_| CryptoError::CiphertextInvalid)?;
        Ok(sovra_crypto::rsa1_5::unpad_or_synthetic(
            secret.expose(),
            ciphertext,
            em.expose(),
        ))
    }

    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !matches!(self.alg.spec(), AlgSpec::Hmac { .. }) {
            return Err(CryptoError::Unsupported("this key cannot compute MACs"));
        }
        self.run(false, |s| s.sign(&Mechanism::Sha256Hmac, self.handle, data))
    }

    // PKCS#11 wraps key objects, not bytes: the input becomes a short-lived generic secret
    // session object that the HSM wraps (and the output of an unwrap is one, read and
    // destroyed). The key-wrap key itself never leaves the HSM.
    fn aes_key_wrap(&self, pad: bool, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mech = self.wrap_mechanism(pad)?;
        sovra_crypto::keywrap::check_aes_wrap_input(pad, key)?;
        let wrapped = self.run(false, |s| {
            let mut t = carrier_template();
            t.push(Attribute::Value(key.to_vec()));
            let input = s.create_object(&t)?;
            let out = s.wrap_key(&mech, self.handle, input);
            s.destroy_object(input)?;
            out
        })?;
        // RFC 5649 records the length before padding; some tokens (SoftHSM 2) record the padded
        // length, so their wrap of a length that is not a multiple of 8 unwraps elsewhere to a
        // longer key. Checked here rather than returned wrong.
        if pad && !key.len().is_multiple_of(8) {
            let back = self.aes_key_unwrap(true, &wrapped)?;
            if back.expose() != key {
                return Err(CryptoError::Unsupported(
                    "this HSM's CKM_AES_KEY_WRAP_PAD does not follow RFC 5649 for lengths that are not a multiple of 8 bytes: wrap a multiple of 8, or use a key of protection level SOFTWARE",
                ));
            }
        }
        Ok(wrapped)
    }

    fn aes_key_unwrap(&self, pad: bool, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        let mech = self.wrap_mechanism(pad)?;
        self.run(true, |s| {
            let out = s.unwrap_key(&mech, self.handle, wrapped, &carrier_template())?;
            let value = s.get_attributes(out, &[AttributeType::Value]);
            s.destroy_object(out)?;
            match value?.into_iter().next() {
                Some(Attribute::Value(v)) => Ok(v),
                _ => Err(CkError::Pkcs11(
                    RvError::AttributeTypeInvalid,
                    cryptoki::context::Function::GetAttributeValue,
                )),
            }
        })
        .map(SecretBytes::new)
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        self.spki.clone().ok_or(CryptoError::Unsupported(
            "symmetric keys have no public key",
        ))
    }
}

impl HsmKey for Pkcs11Key {
    fn wrap_for(&self, enc: ReleaseEnc, spki: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let public = aws_lc_rs::rsa::PublicKey::from_der(spki)
            .map_err(|_| CryptoError::Invalid("the recipient key is not an RSA public key"))?;
        if public.modulus().big_endian_without_leading_zero().len() < 256 {
            return Err(CryptoError::Invalid(
                "the recipient RSA key must be at least 2048 bits",
            ));
        }
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let (hash, mgf, lacking) = match enc {
            ReleaseEnc::CkmRsaAesKeyWrap => (
                MechanismType::SHA1,
                PkcsMgfType::MGF1_SHA1,
                "this HSM cannot wrap with CKM_RSA_PKCS_OAEP (SHA-1) inside it",
            ),
            ReleaseEnc::RsaAesKeyWrap256 => (
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                "this HSM cannot wrap with CKM_RSA_PKCS_OAEP using SHA-256 inside it; request enc CKM_RSA_AES_KEY_WRAP (OAEP with SHA-1) for this key",
            ),
            ReleaseEnc::RsaAesKeyWrap384 => (
                MechanismType::SHA384,
                PkcsMgfType::MGF1_SHA384,
                "this HSM cannot wrap with CKM_RSA_PKCS_OAEP using SHA-384 inside it; request enc CKM_RSA_AES_KEY_WRAP (OAEP with SHA-1) for this key",
            ),
        };
        let conn = self.conn.upgrade().ok_or_else(|| {
            CryptoError::HsmUnavailable(
                "the HSM connection was reset; the key is reloaded on the next request".into(),
            )
        })?;
        let result = conn.with_session(|s| {
            // CKM_RSA_AES_KEY_WRAP built from the mechanisms every token has: a fresh
            // AES-256 session key wraps the material (KWP) and is itself wrapped to the
            // recipient (OAEP); neither leaves the HSM in clear.
            let recipient = s.create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Token(false),
                Attribute::Modulus(n.clone()),
                Attribute::PublicExponent(e.clone()),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
            ])?;
            let transfer = s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(false),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(true),
                    Attribute::Wrap(true),
                ],
            );
            let out = transfer.and_then(|t| {
                let p = PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty());
                let head = s.wrap_key(&Mechanism::RsaPkcsOaep(p), recipient, t);
                let tail = head.and_then(|mut head| {
                    head.extend(s.wrap_key(&Mechanism::AesKeyWrapPad, t, self.handle)?);
                    Ok(head)
                });
                let _ = s.destroy_object(t);
                tail
            });
            let _ = s.destroy_object(recipient);
            out
        });
        result.map_err(|f| match f {
            Failure::Op(CkError::Pkcs11(
                RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
                _,
            )) => CryptoError::Unsupported(lacking),
            other => op_error(false)(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sovra_testkit::softhsm;
    use std::sync::{Arc, OnceLock};

    /// SoftHSM2 reads `SOFTHSM2_CONF` when the module initialises, so the test body runs in a
    /// child process of this test binary with that variable set.
    #[test]
    fn rsa1_5_unpads_the_tokens_raw_rsa_and_rejects_malformed_blocks_implicitly() {
        let name = "pkcs11::key::tests::rsa1_5_unpads_the_tokens_raw_rsa_and_rejects_malformed_blocks_implicitly";
        let Ok(pin) = std::env::var("SOVRA_TEST_PKCS11_PIN") else {
            let token = softhsm::Token::new("rsa1-5");
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .env("SOFTHSM2_CONF", token.conf())
                .env("SOVRA_TEST_PKCS11_PIN", &token.pin)
                .args([name, "--exact", "--nocapture"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && text.contains("1 passed"), "{text}");
            return;
        };
        let hsm =
            super::super::Pkcs11Hsm::open(std::path::Path::new(softhsm::MODULE), "rsa1-5", &pin)
                .unwrap();
        let conn = hsm.conn().unwrap();
        // SoftHSM2 has no OAEP with SHA-256, so Sovra refuses to create RSA decryption keys on
        // it; the pair is made here directly, as on an HSM that has it.
        let alg = Algorithm::RsaDecryptOaep2048Sha256;
        let (private, spki) = conn
            .with_session(|s| {
                let (private, public) = generate(s, alg)?;
                let public = public.ok_or(CkError::NotSupported)?;
                Ok((private, public_spki(s, public, alg)?))
            })
            .unwrap();
        let key = || Pkcs11Key {
            handle: private,
            alg,
            spki: Some(spki.clone()),
            conn: Arc::downgrade(&conn),
            rejection: OnceLock::new(),
        };
        let k = key();
        let ct = sovra_crypto::keys::pkcs1_encrypt(&spki, b"legacy").unwrap();
        assert_eq!(k.rsa1_5_decrypt(&ct).unwrap().expose(), b"legacy");
        let mut bad = ct.clone();
        bad[9] ^= 1;
        let a = k.rsa1_5_decrypt(&bad).unwrap();
        assert_ne!(a.expose(), b"legacy");
        // Stable, also for the key loaded afresh: its secret comes from the key itself.
        let again = key();
        assert_eq!(a, again.rsa1_5_decrypt(&bad).unwrap());
        assert_eq!(
            k.rsa1_5_decrypt(&ct[1..]).unwrap_err(),
            CryptoError::CiphertextInvalid
        );
        std::mem::forget(again);
    }
}
