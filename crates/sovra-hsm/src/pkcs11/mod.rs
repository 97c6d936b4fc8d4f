//! A PKCS#11 HSM (any vendor's module; SoftHSM2 in tests).
//!
//! Per location the token holds two AES-256 token objects, generated inside it as sensitive
//! and non-extractable:
//! * `sovra-location:{location}` encrypts and decrypts (AES-256-GCM, fresh 96-bit IV, the
//!   caller's AAD): it wraps software-level key material and binds every stored blob to its
//!   row. Blob: `0x01 ‖ IV (12) ‖ ciphertext ‖ tag (16)`.
//! * `sovra-location-kw:{location}` wraps and unwraps keys (CKM_AES_KEY_WRAP_PAD): `HSM`-level
//!   keys are generated inside the HSM, wrapped under it for storage and unwrapped into session
//!   objects for use, so their clear material never leaves the HSM.
//!
//! Calls run on a pool of sessions of one connection. An error meaning the token or module is
//! gone marks the connection broken; the next call builds a new one (at most one attempt a
//! second), and until that succeeds operations fail with [`HsmError::Unavailable`].

mod conn;
mod import;
mod key;

pub use key::Pkcs11Key;

use crate::keys::{GeneratedKey, HsmKey};
use crate::{Hsm, HsmError, SecretBytes};
use conn::{Conn, Failure};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sovra_proto::kms::Algorithm;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const BLOB_VERSION: u8 = 1;
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const LABEL_PREFIX: &str = "sovra-location:";
const KW_LABEL_PREFIX: &str = "sovra-location-kw:";
const ATTESTATION_LABEL: &str = "sovra-key-attestation";
/// The label of a new attestation key until it replaces the old one.
const ATTESTATION_NEXT_LABEL: &str = "sovra-key-attestation-next";
/// The shortest time between two attempts to rebuild a lost connection.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// A token, reached through its PKCS#11 module.
pub struct Pkcs11Hsm {
    module: PathBuf,
    token: String,
    pin: Zeroizing<String>,
    conn: Mutex<Option<Arc<Conn>>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Pkcs11Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Hsm")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn lock_err<T>(_: T) -> HsmError {
    HsmError::Device("a PKCS#11 lock is poisoned".into())
}

fn find_key(s: &Session, prefix: &str, location: &str) -> Result<Vec<ObjectHandle>, CkError> {
    s.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(format!("{prefix}{location}").into_bytes()),
    ])
}

fn aes_token_key(label: String, wrapping: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(!wrapping),
        Attribute::Decrypt(!wrapping),
        Attribute::Wrap(wrapping),
        Attribute::Unwrap(wrapping),
        Attribute::Label(label.into_bytes()),
    ]
}

/// The key-wrapping key of `location`, created if this token has none yet (locations created
/// before `HSM`-level keys existed have only the GCM key).
fn kw_key(s: &Session, location: &str) -> Result<Option<ObjectHandle>, CkError> {
    if let Some(k) = find_key(s, KW_LABEL_PREFIX, location)?.into_iter().next() {
        return Ok(Some(k));
    }
    if find_key(s, LABEL_PREFIX, location)?.is_empty() {
        return Ok(None);
    }
    s.generate_key(
        &Mechanism::AesKeyGen,
        &aes_token_key(format!("{KW_LABEL_PREFIX}{location}"), true),
    )
    .map(Some)
}

fn unsupported_or(alg: Algorithm, what: &'static str) -> impl Fn(Failure) -> HsmError {
    move |f| match f {
        Failure::Op(CkError::Pkcs11(
            RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::ArgumentsBad
            | RvError::CurveNotSupported
            | RvError::DomainParamsInvalid
            | RvError::KeySizeRange
            | RvError::TemplateInconsistent
            | RvError::AttributeValueInvalid,
            _,
        )) => HsmError::Unsupported(format!(
            "this HSM cannot generate or use {} keys inside it: it lacks {} (or refuses its \
             parameters); use protection level SOFTWARE for this algorithm, or an HSM that has it",
            alg.as_str(),
            key::mechanism_name(alg)
        )),
        Failure::Op(CkError::Pkcs11(RvError::KeyNotWrappable | RvError::WrappedKeyInvalid, _)) => {
            HsmError::Unsupported(format!(
                "this HSM can generate {} keys but cannot wrap them for storage \
                 (C_WrapKey with CKM_AES_KEY_WRAP_PAD); use protection level SOFTWARE for this \
                 algorithm, or an HSM that can",
                alg.as_str()
            ))
        }
        other => Failure::hsm(what)(other),
    }
}

impl Pkcs11Hsm {
    /// Loads `module`, finds the token labelled `token_label` and logs in as its user.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, HsmError> {
        let conn = Conn::open(module, token_label, pin)?;
        Ok(Self {
            module: module.to_path_buf(),
            token: token_label.to_owned(),
            pin: Zeroizing::new(pin.to_owned()),
            conn: Mutex::new(Some(Arc::new(conn))),
            last_attempt: Mutex::new(None),
        })
    }

    /// The current connection, rebuilt if the last one was lost.
    fn conn(&self) -> Result<Arc<Conn>, HsmError> {
        let mut slot = self.conn.lock().map_err(lock_err)?;
        if let Some(c) = slot.as_ref() {
            if !c.is_broken() {
                return Ok(c.clone());
            }
            // Keys loaded through the old connection hold it weakly; calls in flight hold it
            // strongly. The module is finalised when the last holder lets go, so a new one can
            // only be initialised after that.
            if Arc::strong_count(c) > 1 {
                return Err(HsmError::Unavailable(
                    "the connection to the HSM was lost; waiting for calls in flight to end before reconnecting".into(),
                ));
            }
            *slot = None;
        }
        {
            let mut last = self.last_attempt.lock().map_err(lock_err)?;
            let now = Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < RECONNECT_INTERVAL) {
                return Err(HsmError::Unavailable(
                    "the connection to the HSM was lost; the next reconnection attempt is within a second".into(),
                ));
            }
            *last = Some(now);
        }
        let c = Arc::new(Conn::open(&self.module, &self.token, &self.pin).map_err(
            |e| match e {
                HsmError::Device(m) => HsmError::Unavailable(m),
                other => other,
            },
        )?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs an import step with the location's key-wrapping key, mapping its failures.
    fn import_with<T>(
        &self,
        location: &str,
        imp: &crate::ImportKey<'_>,
        alg: Algorithm,
        f: impl FnOnce(&Session, ObjectHandle) -> Result<T, import::ImportFailure>,
    ) -> Result<T, HsmError> {
        let conn = self.conn()?;
        conn.with_session(|s| {
                let Some(kw) = find_key(s, KW_LABEL_PREFIX, location)?.into_iter().next() else {
                    return Ok(Err(HsmError::UnknownLocation(location.to_owned())));
                };
                match f(s, kw) {
                    Ok(v) => Ok(Ok(v)),
                    Err(import::ImportFailure::Invalid(m)) => Ok(Err(HsmError::ImportInvalid(m))),
                    Err(import::ImportFailure::Ck(e)) if conn::is_connection_lost(&e) => Err(e),
                    Err(import::ImportFailure::Ck(CkError::Pkcs11(
                        RvError::MechanismParamInvalid | RvError::ArgumentsBad,
                        _,
                    ))) if imp.method.sha256() => Ok(Err(HsmError::Unsupported(format!(
                        "this HSM cannot open {} inside it: it lacks CKM_RSA_PKCS_OAEP with SHA-256; create the import job with an _SHA1_ method",
                        imp.method.as_str()
                    )))),
                    Err(import::ImportFailure::Ck(e)) => Ok(Err(unsupported_or(alg, "importing a key into the HSM")(Failure::Op(e)))),
                }
            })
            .map_err(Failure::hsm("importing a key into the HSM"))?
    }

    fn run<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
        map: impl Fn(Failure) -> HsmError,
    ) -> Result<T, HsmError> {
        self.conn()?.with_session(f).map_err(map)
    }
}

/// The key pair (private, public) labelled `label`, if both are there.
fn find_pair(s: &Session, label: &str) -> Result<Option<(ObjectHandle, ObjectHandle)>, CkError> {
    let find = |class| {
        s.find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
    };
    Ok(
        match (
            find(ObjectClass::PRIVATE_KEY)?.into_iter().next(),
            find(ObjectClass::PUBLIC_KEY)?.into_iter().next(),
        ) {
            (Some(private), Some(public)) => Some((private, public)),
            _ => None,
        },
    )
}

/// Labels a key pair `label`.
fn relabel(
    s: &Session,
    (private, public): (ObjectHandle, ObjectHandle),
    label: &str,
) -> Result<(), CkError> {
    for h in [private, public] {
        s.update_attributes(h, &[Attribute::Label(label.as_bytes().to_vec())])?;
    }
    Ok(())
}

/// The attestation key pair (private, public), created as token objects on first use. A new
/// key left by an interrupted rotation (the old one already destroyed) is taken up.
fn attestation_key(s: &Session) -> Result<(ObjectHandle, ObjectHandle), CkError> {
    if let Some(pair) = find_pair(s, ATTESTATION_LABEL)? {
        return Ok(pair);
    }
    if let Some(pair) = find_pair(s, ATTESTATION_NEXT_LABEL)? {
        relabel(s, pair, ATTESTATION_LABEL)?;
        return Ok(pair);
    }
    generate_attestation_key(s, ATTESTATION_LABEL)
}

/// Generates an attestation key pair labelled `label` (token objects; the private key
/// sensitive and never extractable).
fn generate_attestation_key(
    s: &Session,
    label: &str,
) -> Result<(ObjectHandle, ObjectHandle), CkError> {
    let label = Attribute::Label(label.as_bytes().to_vec());
    let (public, private) = s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(sovra_crypto::der::OID_P256.to_vec()),
            label.clone(),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label,
        ],
    )?;
    Ok((private, public))
}

impl Hsm for Pkcs11Hsm {
    fn attestation_public_key(&self) -> Result<Vec<u8>, HsmError> {
        self.run(
            |s| {
                let (_, public) = attestation_key(s)?;
                key::public_spki(s, public, Algorithm::EcSignP256Sha256)
            },
            Failure::hsm("reading the key-attestation key"),
        )
    }

    fn rotate_attestation_key(&self) -> Result<Vec<u8>, HsmError> {
        self.run(
            |s| {
                // The new pair first, then the old one goes, then the new one takes the name:
                // at every step the token holds one usable attestation key.
                let next = match find_pair(s, ATTESTATION_NEXT_LABEL)? {
                    Some(p) => p,
                    None => generate_attestation_key(s, ATTESTATION_NEXT_LABEL)?,
                };
                if let Some((private, public)) = find_pair(s, ATTESTATION_LABEL)? {
                    s.destroy_object(private)?;
                    s.destroy_object(public)?;
                }
                relabel(s, next, ATTESTATION_LABEL)?;
                key::public_spki(s, next.1, Algorithm::EcSignP256Sha256)
            },
            Failure::hsm("rotating the key-attestation key"),
        )
    }

    fn attestation_sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let digest = sovra_crypto::sha256(message);
        self.run(
            |s| {
                let (private, _) = attestation_key(s)?;
                s.sign(&Mechanism::Ecdsa, private, &digest)
            },
            Failure::hsm("signing with the key-attestation key"),
        )
    }

    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn export_domain(&self) -> Result<SecretBytes, HsmError> {
        Err(HsmError::Unsupported(
            "the keys of a PKCS#11 HSM never leave it in clear: back them up, and bring them to a new HSM, with the HSM's own mechanism (cloning, backup tokens, a vendor security world); the database holds everything else".into(),
        ))
    }

    fn locations(&self) -> Result<Vec<String>, HsmError> {
        let mut out = self.run(
            |s| {
                let mut out = Vec::new();
                for k in s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])? {
                    for a in s.get_attributes(k, &[AttributeType::Label])? {
                        if let Attribute::Label(l) = a
                            && let Ok(l) = String::from_utf8(l)
                            && let Some(loc) = l.strip_prefix(LABEL_PREFIX)
                        {
                            out.push(loc.to_owned());
                        }
                    }
                }
                Ok(out)
            },
            Failure::hsm("listing wrapping keys"),
        )?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn create_location(&self, location: &str) -> Result<(), HsmError> {
        self.run(
            |s| {
                if find_key(s, LABEL_PREFIX, location)?.is_empty() {
                    s.generate_key(
                        &Mechanism::AesKeyGen,
                        &aes_token_key(format!("{LABEL_PREFIX}{location}"), false),
                    )?;
                }
                kw_key(s, location).map(|_| ())
            },
            Failure::hsm("generating a location's wrapping keys"),
        )
    }

    fn wrap(&self, location: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut iv = [0u8; IV_LEN];
        aws_lc_rs::rand::fill(&mut iv)
            .map_err(|_| HsmError::Device("no randomness for the IV".into()))?;
        let ct = self.run(
            |s| {
                let Some(key) = find_key(s, LABEL_PREFIX, location)?.into_iter().next() else {
                    return Ok(None);
                };
                let mut params_iv = iv;
                let params = GcmParams::new(&mut params_iv, aad, TAG_BITS.into())?;
                s.encrypt(&Mechanism::AesGcm(params), key, plaintext)
                    .map(Some)
            },
            Failure::hsm("wrapping in the HSM"),
        )?;
        let ct = ct.ok_or_else(|| HsmError::UnknownLocation(location.to_owned()))?;
        let mut out = Vec::with_capacity(1 + IV_LEN + ct.len());
        out.push(BLOB_VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, location: &str, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, HsmError> {
        let (&version, rest) = blob.split_first().ok_or(HsmError::Integrity)?;
        if version != BLOB_VERSION || rest.len() < IV_LEN + 16 {
            return Err(HsmError::Integrity);
        }
        let (iv, ct) = rest.split_at(IV_LEN);
        let iv = <[u8; IV_LEN]>::try_from(iv).map_err(|_| HsmError::Integrity)?;
        let pt = self.run(
            |s| {
                let Some(key) = find_key(s, LABEL_PREFIX, location)?.into_iter().next() else {
                    return Ok(None);
                };
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
                s.decrypt(&Mechanism::AesGcm(params), key, ct).map(Some)
            },
            |f| match f {
                // A failed GCM tag check: CKR_ENCRYPTED_DATA_INVALID by the standard,
                // CKR_GENERAL_ERROR from SoftHSM2.
                Failure::Op(CkError::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError,
                    _,
                )) => HsmError::Integrity,
                other => Failure::hsm("unwrapping in the HSM")(other),
            },
        )?;
        Ok(SecretBytes::new(pt.ok_or_else(|| {
            HsmError::UnknownLocation(location.to_owned())
        })?))
    }

    fn generate_key(&self, location: &str, alg: Algorithm) -> Result<GeneratedKey, HsmError> {
        let out = self.run(
            |s| {
                let Some(kw) = kw_key(s, location)? else {
                    return Ok(None);
                };
                let (private, public) = key::generate(s, alg)?;
                let result = (|| {
                    key::probe(s, alg, private, public)?;
                    let public_key = public.map(|p| key::public_spki(s, p, alg)).transpose()?;
                    let attributes = key::attributes(s, private)?;
                    let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kw, private)?;
                    Ok(GeneratedKey {
                        wrapped,
                        public_key,
                        attributes,
                    })
                })();
                let _ = s.destroy_object(private);
                if let Some(p) = public {
                    let _ = s.destroy_object(p);
                }
                result.map(Some)
            },
            unsupported_or(alg, "generating a key in the HSM"),
        )?;
        out.ok_or_else(|| HsmError::UnknownLocation(location.to_owned()))
    }

    fn generate_import_key(&self, location: &str, bits: u16) -> Result<GeneratedKey, HsmError> {
        let out = self.run(
            |s| {
                let Some(kw) = kw_key(s, location)? else {
                    return Ok(None);
                };
                let (private, public) = import::generate(s, bits)?;
                let result = (|| {
                    Ok(GeneratedKey {
                        public_key: Some(import::public_spki(s, public, bits)?),
                        attributes: key::attributes(s, private)?,
                        wrapped: s.wrap_key(&Mechanism::AesKeyWrapPad, kw, private)?,
                    })
                })();
                let _ = s.destroy_object(private);
                let _ = s.destroy_object(public);
                result.map(Some)
            },
            Failure::hsm("generating an import key in the HSM"),
        )?;
        out.ok_or_else(|| HsmError::UnknownLocation(location.to_owned()))
    }

    fn import_key(
        &self,
        location: &str,
        imp: &crate::ImportKey<'_>,
        blob: &[u8],
        alg: Algorithm,
        public_key: Option<&[u8]>,
    ) -> Result<GeneratedKey, HsmError> {
        self.import_with(location, imp, alg, |s, kw| {
            import::import(s, kw, imp, blob, alg, public_key)
        })
    }

    fn import_material(
        &self,
        location: &str,
        imp: &crate::ImportKey<'_>,
        blob: &[u8],
    ) -> Result<SecretBytes, HsmError> {
        self.import_with(location, imp, Algorithm::Aes256Gcm, |s, kw| {
            import::material(s, kw, imp, blob)
        })
    }

    fn load_key(
        &self,
        location: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public_key: Option<&[u8]>,
    ) -> Result<Arc<dyn HsmKey>, HsmError> {
        let conn = self.conn()?;
        let handle = conn
            .with_session(|s| {
                // Normally one key-wrapping key per location; should two nodes have raced to
                // create it, each is tried.
                let kws = find_key(s, KW_LABEL_PREFIX, location)?;
                if kws.is_empty() {
                    return Ok(Err(HsmError::UnknownLocation(location.to_owned())));
                }
                let template = key::key_template(alg);
                for kw in kws {
                    match s.unwrap_key(&Mechanism::AesKeyWrapPad, kw, wrapped, &template) {
                        Ok(h) => return Ok(Ok(h)),
                        Err(e) if conn::is_connection_lost(&e) => return Err(e),
                        Err(_) => {}
                    }
                }
                Ok(Err(HsmError::Integrity))
            })
            .map_err(Failure::hsm("loading a key into the HSM"))??;
        Ok(Arc::new(Pkcs11Key {
            handle,
            alg,
            spki: public_key.map(<[u8]>::to_vec),
            conn: Arc::downgrade(&conn),
            rejection: std::sync::OnceLock::new(),
        }))
    }
}
