//! A PKCS#11 HSM (any vendor's module; SoftHSM2 in tests). Each location's wrapping key is an
//! AES-256 token object generated inside the HSM as sensitive and non-extractable, labelled
//! `sovra-location:{location}`. Wrapping is AES-256-GCM inside the HSM with a fresh 96-bit IV and
//! the caller's AAD; key material never meets the wrapping key outside the HSM.
//!
//! Blob: `0x01 ‖ IV (12) ‖ ciphertext ‖ tag (16)`.

use crate::{Hsm, HsmError, SecretBytes};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::Path;
use std::sync::Mutex;

const BLOB_VERSION: u8 = 1;
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const LABEL_PREFIX: &str = "sovra-location:";

/// A logged-in session on one token.
pub struct Pkcs11Hsm {
    // Fields drop in order: the session closes before the module is finalised.
    session: Mutex<Session>,
    token: String,
    _ctx: Pkcs11,
}

impl std::fmt::Debug for Pkcs11Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Hsm")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn device(what: &str) -> impl Fn(cryptoki::error::Error) -> HsmError + '_ {
    move |e| HsmError::Device(format!("{what}: {e}"))
}

impl Pkcs11Hsm {
    /// Loads `module`, finds the token labelled `token_label` and logs in as its user.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, HsmError> {
        let ctx = Pkcs11::new(module).map_err(|e| {
            HsmError::Device(format!(
                "cannot load the PKCS#11 module {}: {e}",
                module.display()
            ))
        })?;
        ctx.initialize(CInitializeArgs::OsThreads)
            .map_err(device("initialising the PKCS#11 module"))?;
        let mut found = None;
        for slot in ctx
            .get_slots_with_token()
            .map_err(device("listing the PKCS#11 slots"))?
        {
            let info = ctx
                .get_token_info(slot)
                .map_err(device("reading a token's information"))?;
            if info.label().trim_end() == token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| {
            HsmError::Device(format!(
                "no PKCS#11 token is labelled {token_label:?} (hsm.pkcs11_token_label)"
            ))
        })?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(device("opening a PKCS#11 session"))?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.to_owned())))
            .map_err(|e| {
                HsmError::Device(format!(
                    "cannot log in to token {token_label:?} (check hsm.pkcs11_pin_file): {e}"
                ))
            })?;
        Ok(Self {
            session: Mutex::new(session),
            token: token_label.to_owned(),
            _ctx: ctx,
        })
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, Session>, HsmError> {
        self.session
            .lock()
            .map_err(|_| HsmError::Device("the PKCS#11 session lock is poisoned".into()))
    }

    fn key(s: &Session, location: &str) -> Result<Option<ObjectHandle>, HsmError> {
        let found = s
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(format!("{LABEL_PREFIX}{location}").into_bytes()),
            ])
            .map_err(device("looking up a wrapping key"))?;
        Ok(found.into_iter().next())
    }

    fn key_or_unknown(s: &Session, location: &str) -> Result<ObjectHandle, HsmError> {
        Self::key(s, location)?.ok_or_else(|| HsmError::UnknownLocation(location.to_owned()))
    }
}

impl Hsm for Pkcs11Hsm {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn locations(&self) -> Result<Vec<String>, HsmError> {
        let s = self.session()?;
        let keys = s
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .map_err(device("listing wrapping keys"))?;
        let mut out = Vec::new();
        for k in keys {
            let attrs = s
                .get_attributes(k, &[AttributeType::Label])
                .map_err(device("reading a key label"))?;
            for a in attrs {
                if let Attribute::Label(l) = a
                    && let Ok(l) = String::from_utf8(l)
                    && let Some(loc) = l.strip_prefix(LABEL_PREFIX)
                {
                    out.push(loc.to_owned());
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn create_location(&self, location: &str) -> Result<(), HsmError> {
        let s = self.session()?;
        if Self::key(&s, location)?.is_some() {
            return Ok(());
        }
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Label(format!("{LABEL_PREFIX}{location}").into_bytes()),
            ],
        )
        .map_err(device("generating a wrapping key"))?;
        Ok(())
    }

    fn wrap(&self, location: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        let s = self.session()?;
        let key = Self::key_or_unknown(&s, location)?;
        let mut iv = [0u8; IV_LEN];
        aws_lc_rs::rand::fill(&mut iv)
            .map_err(|_| HsmError::Device("no randomness for the IV".into()))?;
        let mut params_iv = iv;
        let params = GcmParams::new(&mut params_iv, aad, TAG_BITS.into())
            .map_err(device("GCM parameters"))?;
        let ct = s
            .encrypt(&Mechanism::AesGcm(params), key, plaintext)
            .map_err(device("wrapping in the HSM"))?;
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
        let s = self.session()?;
        let key = Self::key_or_unknown(&s, location)?;
        let mut iv = <[u8; IV_LEN]>::try_from(iv).map_err(|_| HsmError::Integrity)?;
        let params =
            GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(device("GCM parameters"))?;
        let pt = s
            .decrypt(&Mechanism::AesGcm(params), key, ct)
            .map_err(|e| match e {
                // A failed GCM tag check: CKR_ENCRYPTED_DATA_INVALID by the standard,
                // CKR_GENERAL_ERROR from SoftHSM2.
                cryptoki::error::Error::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError,
                    _,
                ) => HsmError::Integrity,
                other => HsmError::Device(format!("unwrapping in the HSM: {other}")),
            })?;
        Ok(SecretBytes::new(pt))
    }
}
