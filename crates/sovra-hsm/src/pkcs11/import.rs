//! Secure import on a PKCS#11 token: the import job's RSA wrapping key is generated and kept
//! (wrapped) like any HSM key; imported material is opened inside the HSM with
//! CKM_RSA_PKCS_OAEP and CKM_AES_KEY_WRAP_PAD (the CKM_RSA_AES_KEY_WRAP layout, built from
//! mechanisms every token has), checked, and wrapped for storage without leaving it.

use super::key;
use crate::ImportKey;
use crate::keys::GeneratedKey;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sovra_crypto::SignInput;
use sovra_proto::kms::{AlgSpec, Algorithm, EcCurve};

/// Why an import failed inside the HSM.
pub(crate) enum ImportFailure {
    /// The PKCS#11 call failed (the token, or an unsupported mechanism).
    Ck(CkError),
    /// The material is not what it claims to be.
    Invalid(String),
}

impl From<CkError> for ImportFailure {
    fn from(e: CkError) -> Self {
        Self::Ck(e)
    }
}

fn oaep(sha256: bool) -> PkcsOaepParams<'static> {
    if sha256 {
        PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::empty(),
        )
    } else {
        PkcsOaepParams::new(
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        )
    }
}

fn import_alg(bits: u16) -> Algorithm {
    if bits == 3072 {
        Algorithm::RsaDecryptOaep3072Sha256
    } else {
        Algorithm::RsaDecryptOaep4096Sha256
    }
}

/// Generates the RSA wrapping key pair of an import job (session objects).
pub(crate) fn generate(s: &Session, bits: u16) -> Result<(ObjectHandle, ObjectHandle), CkError> {
    let (public, private) = s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::Private(false),
            Attribute::ModulusBits(u64::from(bits).into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Wrap(true),
            Attribute::Encrypt(true),
        ],
        &import_template(),
    )?;
    Ok((private, public))
}

fn import_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Unwrap(true),
        Attribute::Decrypt(true),
    ]
}

/// The SPKI of the import key's public half.
pub(crate) fn public_spki(
    s: &Session,
    public: ObjectHandle,
    bits: u16,
) -> Result<Vec<u8>, CkError> {
    key::public_spki(s, public, import_alg(bits))
}

/// Loads the import job's private key from its stored blob.
fn load_import_key(
    s: &Session,
    kw: ObjectHandle,
    import: &ImportKey<'_>,
) -> Result<ObjectHandle, ImportFailure> {
    s.unwrap_key(
        &Mechanism::AesKeyWrapPad,
        kw,
        import.wrapped,
        &import_template(),
    )
    .map_err(|e| match e {
        e if super::conn::is_connection_lost(&e) => ImportFailure::Ck(e),
        _ => ImportFailure::Invalid("the import job's stored key does not load".into()),
    })
}

fn refused(import: &ImportKey<'_>) -> ImportFailure {
    ImportFailure::Invalid(format!(
        "the wrapped key does not open with this import job's key as {} (wrong job or method, or corrupted)",
        import.method.as_str()
    ))
}

/// Maps an unwrap error: a lost token passes through; a SHA-256 OAEP the token refuses is an
/// unsupported mechanism; anything else is a blob that does not open.
fn unwrap_err<'a>(import: &'a ImportKey<'a>) -> impl Fn(CkError) -> ImportFailure + 'a {
    move |e| match e {
        e if super::conn::is_connection_lost(&e) => ImportFailure::Ck(e),
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
            f,
        ) if import.method.sha256() => {
            ImportFailure::Ck(CkError::Pkcs11(RvError::MechanismParamInvalid, f))
        }
        _ => refused(import),
    }
}

/// Opens `blob` inside the HSM into a session object of `alg`.
fn open_into(
    s: &Session,
    rsa: ObjectHandle,
    import: &ImportKey<'_>,
    blob: &[u8],
    alg: Algorithm,
) -> Result<ObjectHandle, ImportFailure> {
    let template = key::key_template(alg);
    if !import.method.with_aes() {
        if !alg.is_symmetric() {
            return Err(ImportFailure::Invalid(format!(
                "{} wraps only symmetric keys; use an _AES_256 method for {}",
                import.method.as_str(),
                alg.as_str()
            )));
        }
        return s
            .unwrap_key(&Mechanism::RsaPkcsOaep(oaep(true)), rsa, blob, &template)
            .map_err(unwrap_err(import));
    }
    let head_len = usize::from(import.method.bits()) / 8;
    if blob.len() <= head_len {
        return Err(refused(import));
    }
    let (head, tail) = blob.split_at(head_len);
    // Tokens do not all record the length of an unwrapped secret key (SoftHSM2 reports 0), so
    // the padded length is checked here: 32 bytes wrap to 40.
    if alg.is_symmetric() && tail.len() != 40 {
        return Err(ImportFailure::Invalid(format!(
            "{} keys are 32 bytes; the wrapped material is {} bytes long once padded",
            alg.as_str(),
            tail.len().saturating_sub(8)
        )));
    }
    let transfer = s
        .unwrap_key(
            &Mechanism::RsaPkcsOaep(oaep(import.method.sha256())),
            rsa,
            head,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Unwrap(true),
            ],
        )
        .map_err(unwrap_err(import))?;
    let out = s
        .unwrap_key(&Mechanism::AesKeyWrapPad, transfer, tail, &template)
        .map_err(|e| match e {
            e if super::conn::is_connection_lost(&e) => ImportFailure::Ck(e),
            _ => ImportFailure::Invalid(format!(
                "the unwrapped material is not a {} key, or the blob is corrupted",
                alg.as_str()
            )),
        });
    let _ = s.destroy_object(transfer);
    out
}

/// Checks the opened key is one of `alg`; returns its SPKI for asymmetric keys.
fn check(
    s: &Session,
    h: ObjectHandle,
    alg: Algorithm,
    public_key: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, ImportFailure> {
    let invalid = |m: String| ImportFailure::Invalid(m);
    let attrs = s.get_attributes(
        h,
        &[
            AttributeType::ValueLen,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
        ],
    )?;
    let (mut len, mut n, mut e, mut params) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::ValueLen(v) => len = Some(u64::from(v)),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            _ => {}
        }
    }
    match alg.spec() {
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap | AlgSpec::Hmac { .. } => {
            if len.is_some_and(|l| l != 0 && l != 32) {
                return Err(invalid(format!(
                    "{} keys are 32 bytes; the imported key has {}",
                    alg.as_str(),
                    len.map_or("another size".into(), |l| format!("{l} bytes"))
                )));
            }
            Ok(None)
        }
        AlgSpec::RsaSign { bits, .. } | AlgSpec::RsaOaep { bits, .. } => {
            let (Some(n), Some(e)) = (n, e) else {
                return Err(invalid(
                    "the imported RSA key has no public components".into(),
                ));
            };
            let n_bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if n_bits != usize::from(bits) {
                return Err(invalid(format!(
                    "the imported RSA key has {n_bits} bits; {} needs {bits}",
                    alg.as_str()
                )));
            }
            let spki = sovra_crypto::der::rsa_spki(&n, &e);
            if let Some(pk) = public_key
                && pk != spki.as_slice()
            {
                return Err(invalid(
                    "the public key given is not the imported private key's".into(),
                ));
            }
            Ok(Some(spki))
        }
        AlgSpec::Ecdsa { curve, .. } => {
            let oid = match curve {
                EcCurve::P256 => sovra_crypto::der::OID_P256,
                EcCurve::P384 => sovra_crypto::der::OID_P384,
            };
            if params.as_deref() != Some(oid) {
                return Err(invalid(format!(
                    "the imported key is not on the curve of {}",
                    alg.as_str()
                )));
            }
            let pk = public_key.ok_or_else(|| {
                invalid("importing an EC key needs its public key (publicKey): 'sovra keys import' sends it".into())
            })?;
            // The HSM cannot derive an EC public key: it must sign for the one given.
            let digest =
                sovra_crypto::keys::message_digest(alg, SignInput::Data(b"sovra import check"))
                    .map_err(|e| invalid(e.to_string()))?;
            let raw = s.sign(&Mechanism::Ecdsa, h, &digest)?;
            let der = sovra_crypto::der::ecdsa_sig_der(&raw)
                .ok_or_else(|| invalid("the HSM returned a malformed signature".into()))?;
            let ok = sovra_crypto::key_ops::verify_spki(
                alg,
                pk,
                SignInput::Data(b"sovra import check"),
                &der,
            )
            .unwrap_or(false);
            if !ok {
                return Err(invalid(
                    "the public key given is not the imported private key's".into(),
                ));
            }
            Ok(Some(pk.to_vec()))
        }
        AlgSpec::Ed25519 => Err(invalid(
            "Ed25519 keys cannot be imported into this HSM (it cannot wrap them for storage)"
                .into(),
        )),
    }
}

/// Imports `blob` as a key of `alg` and wraps it under `kw` for storage.
pub(crate) fn import(
    s: &Session,
    kw: ObjectHandle,
    import: &ImportKey<'_>,
    blob: &[u8],
    alg: Algorithm,
    public_key: Option<&[u8]>,
) -> Result<GeneratedKey, ImportFailure> {
    let rsa = load_import_key(s, kw, import)?;
    let opened = open_into(s, rsa, import, blob, alg);
    let _ = s.destroy_object(rsa);
    let h = opened?;
    let out = (|| {
        let public_key = check(s, h, alg, public_key)?;
        let attributes = key::attributes(s, h)?;
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kw, h)?;
        Ok(GeneratedKey {
            wrapped,
            public_key,
            attributes,
        })
    })();
    let _ = s.destroy_object(h);
    out
}

/// Opens `blob` and returns the material in clear (SOFTWARE-level imports).
pub(crate) fn material(
    s: &Session,
    kw: ObjectHandle,
    import: &ImportKey<'_>,
    blob: &[u8],
) -> Result<sovra_crypto::SecretBytes, ImportFailure> {
    let rsa = load_import_key(s, kw, import)?;
    let out = (|| {
        if !import.method.with_aes() {
            return s
                .decrypt(&Mechanism::RsaPkcsOaep(oaep(true)), rsa, blob)
                .map(sovra_crypto::SecretBytes::new)
                .map_err(unwrap_err(import));
        }
        let head_len = usize::from(import.method.bits()) / 8;
        if blob.len() <= head_len {
            return Err(refused(import));
        }
        let (head, tail) = blob.split_at(head_len);
        let transfer = sovra_crypto::SecretBytes::new(
            s.decrypt(
                &Mechanism::RsaPkcsOaep(oaep(import.method.sha256())),
                rsa,
                head,
            )
            .map_err(unwrap_err(import))?,
        );
        sovra_crypto::keywrap::kwp_unwrap(transfer.expose(), tail).map_err(|_| refused(import))
    })();
    let _ = s.destroy_object(rsa);
    out
}
