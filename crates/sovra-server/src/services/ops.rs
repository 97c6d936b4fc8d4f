//! Cryptographic operations: encrypt, decrypt, sign, verify, asymmetric decrypt, MAC, public
//! key and random bytes. The hot path reads only caches: tokens, bindings, key views, material.

use super::Base;
use super::audit::{AuditEvent, EventKind};
use super::auth::Principal;
use super::authz::Permission;
use super::keys::KeyView;
use super::material::{UsableKey, crypto_error as crypto_err};
use super::quota::OpClass;
use crate::error::{Error, Result};
use crate::services::actions::Action;
use sovra_crypto::{HashAlg, SignInput, keys::sign_hash, symmetric};
use sovra_proto::kms::{KeyOp, Purpose, RsaPadding, VersionState};
use sovra_proto::names::{CryptoKeyName, LocationName, VersionName};
use sovra_proto::ops::*;
use sovra_proto::{ErrorCode, b64};
use std::sync::Arc;

/// Largest plaintext and AAD accepted (decoded bytes).
pub const MAX_DATA: usize = 64 * 1024;

/// What an operation addresses: a key (its primary version) or one version.
#[derive(Debug, Clone)]
pub enum Target {
    /// The key; its primary version is used.
    Key(CryptoKeyName),
    /// A specific version.
    Version(VersionName),
}

impl Target {
    fn key(&self) -> &CryptoKeyName {
        match self {
            Self::Key(k) => k,
            Self::Version(v) => &v.key,
        }
    }
}

/// Decodes a base64 field, naming it on error, and checks its size.
pub fn decode_field(field: &str, value: &str) -> Result<Vec<u8>> {
    let v = b64::decode(value).map_err(|_| {
        Error::new(
            ErrorCode::InvalidBase64,
            format!("field {field} is not valid base64"),
        )
    })?;
    if v.len() > MAX_DATA {
        return Err(Error::invalid(format!(
            "field {field} is {} bytes; the limit is {MAX_DATA}",
            v.len()
        )));
    }
    Ok(v)
}

/// Refuses data over the size limit.
fn check_len(field: &str, v: &[u8]) -> Result<()> {
    if v.len() > MAX_DATA {
        return Err(Error::invalid(format!(
            "field {field} is {} bytes; the limit is {MAX_DATA}",
            v.len()
        )));
    }
    Ok(())
}

/// What [`Crypto::seal`] produced.
#[derive(Debug)]
pub struct Sealed {
    /// The version that encrypted.
    pub version: String,
    /// The ciphertext (names its version).
    pub ciphertext: Vec<u8>,
}

/// An RSA encryption scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaEncryption {
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256: Sovra's RSA decryption algorithms.
    OaepSha256,
    /// RSA-OAEP with SHA-1 and MGF1-SHA-1: Key Vault's `RSA-OAEP`.
    OaepSha1,
    /// RSAES-PKCS1-v1_5 (Key Vault's `RSA1_5`), decrypted with implicit rejection.
    Pkcs1,
}

impl RsaEncryption {
    fn name(self) -> &'static str {
        match self {
            Self::OaepSha256 => "RSA-OAEP with SHA-256 and MGF1-SHA-256",
            Self::OaepSha1 => "RSA-OAEP with SHA-1 and MGF1-SHA-1",
            Self::Pkcs1 => "RSAES-PKCS1-v1_5",
        }
    }
}

/// What [`Crypto::gcm_encrypt`] produced.
#[derive(Debug, Clone)]
pub struct GcmSealed {
    /// The version that encrypted.
    pub version: String,
    /// The 96-bit IV.
    pub iv: Vec<u8>,
    /// The ciphertext without its tag.
    pub ciphertext: Vec<u8>,
    /// The 128-bit tag.
    pub tag: Vec<u8>,
}

/// What [`Crypto::open`] recovered.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext (zeroized when dropped).
    pub plaintext: sovra_crypto::SecretBytes,
    /// The version that decrypted.
    pub version: String,
    /// Whether that version is the key's primary.
    pub used_primary: bool,
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::EncryptDecrypt => "ENCRYPT_DECRYPT",
        Purpose::AsymmetricSign => "ASYMMETRIC_SIGN",
        Purpose::AsymmetricDecrypt => "ASYMMETRIC_DECRYPT",
        Purpose::Mac => "MAC",
        Purpose::KeyWrap => "KEY_WRAP",
    }
}

/// What a signature covers: the message, or its digest computed by the caller.
#[derive(Debug, Clone)]
pub enum Message {
    /// The message; the key hashes it.
    Data(Vec<u8>),
    /// A digest; its hash must be the algorithm's.
    Digest(HashAlg, Vec<u8>),
}

/// A signature or a MAC, and the version that made it.
#[derive(Debug)]
pub struct Tagged {
    /// The version's resource name.
    pub version: String,
    /// The signature (ECDSA: DER; RSA, Ed25519: raw) or the MAC.
    pub tag: Vec<u8>,
}

/// A wrapped key and the version that wrapped it.
#[derive(Debug)]
pub struct Wrapped {
    /// The version's resource name.
    pub version: String,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
}

/// Whether a signature or MAC held, and the version that checked it.
#[derive(Debug)]
pub struct Checked {
    /// The version's resource name.
    pub version: String,
    /// Whether it held.
    pub valid: bool,
}

/// A plaintext recovered by asymmetric decryption.
#[derive(Debug)]
pub struct Decrypted {
    /// The version's resource name.
    pub version: String,
    /// The plaintext (zeroized when dropped).
    pub plaintext: sovra_crypto::SecretBytes,
}

impl Message {
    fn as_input(&self) -> SignInput<'_> {
        match self {
            Self::Data(d) => SignInput::Data(d),
            Self::Digest(h, d) => SignInput::Digest(*h, d),
        }
    }
}

/// Refuses a key that is not an RSA signing key.
fn rsa_signing(r: &Resolved) -> Result<()> {
    let alg = r.key.ops().algorithm();
    match alg.spec() {
        sovra_proto::kms::AlgSpec::RsaSign { .. } => Ok(()),
        _ => Err(Error::new(
            ErrorCode::UnsupportedAlgorithm,
            format!("{} is {}, not an RSA signing key", r.name, alg.as_str()),
        )),
    }
}

/// A resolved, usable version.
struct Resolved {
    /// The version's resource name.
    name: String,
    view: Arc<KeyView>,
    version: VersionName,
    key: UsableKey,
    primary: bool,
}

/// Cryptographic operations with keys: encrypt, decrypt, sign, verify, MAC, random bytes.
#[derive(Debug)]
pub struct Crypto {
    base: Base,
    keys: Arc<super::keys::Keys>,
    material: Arc<super::material::Material>,
    quotas: Arc<super::quota::Quotas>,
}

impl Crypto {
    /// The service.
    pub fn new(
        base: Base,
        keys: Arc<super::keys::Keys>,
        material: Arc<super::material::Material>,
        quotas: Arc<super::quota::Quotas>,
    ) -> Self {
        Self {
            base,
            keys,
            material,
            quotas,
        }
    }
}

impl Crypto {
    async fn resolve(
        &self,
        p: &Principal,
        target: &Target,
        perm: Permission,
        (purpose, op): (Purpose, KeyOp),
        class: OpClass,
        version_override: Option<u32>,
    ) -> Result<Resolved> {
        let key_name = target.key();
        let key_str = key_name.to_string();
        if !p.can(perm, &key_str) {
            self.base.auth.authorize(p, perm, &key_str).await?;
        }
        let mut view = self.keys.key_view_named(key_name, key_str).await?;
        if view.key.purpose != purpose {
            return Err(Error::new(
                ErrorCode::WrongPurpose,
                format!(
                    "{} has purpose {}; this operation needs a {} key",
                    view.key.name,
                    purpose_name(view.key.purpose),
                    purpose_name(purpose)
                ),
            ));
        }
        if let Some(ops) = &view.key.key_ops
            && !ops.contains(&op)
        {
            return Err(Error::new(
                ErrorCode::KeyOperationNotAllowed,
                format!(
                    "{} is limited to {}; {} is not among them (a Crypto Officer can change its keyOps)",
                    view.key.name,
                    ops.iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    op.as_str()
                ),
            ));
        }
        let n = match (version_override, target) {
            (Some(n), _) => n,
            (None, Target::Version(v)) => v.version,
            (None, Target::Key(_)) => view.key.primary.ok_or_else(|| {
                Error::new(
                    ErrorCode::NoPrimaryVersion,
                    format!(
                        "{} has no primary version; create one with 'sovra keys rotate'",
                        view.key.name
                    ),
                )
            })?,
        };
        if !view.versions.contains_key(&n) {
            // The version may be newer than the cached view.
            self.keys.invalidate_key(key_name);
            view = self.keys.key_view(key_name).await?;
        }
        let version = key_name.version(n);
        let (rec, _) = view.versions.get(&n).ok_or_else(|| {
            Error::new(
                ErrorCode::KeyVersionNotFound,
                format!("key version {version} does not exist"),
            )
        })?;
        match rec.state {
            VersionState::Enabled => {}
            VersionState::Destroyed => {
                return Err(Error::new(
                    ErrorCode::KeyVersionDestroyed,
                    format!("{version} is DESTROYED; its material no longer exists"),
                ));
            }
            s => {
                return Err(Error::new(
                    ErrorCode::KeyVersionNotEnabled,
                    format!(
                        "{version} is {}; enable it (or restore it) to use it",
                        serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        super::keys::check_validity(
            rec,
            self.base.now(),
            // MAC keys sign and verify under one permission: `mac` checks expiry itself.
            matches!(perm, Permission::Encrypt | Permission::Sign),
        )?;
        self.quotas.take(p, class).await?;
        let key = self.material.usable(&version, rec).await?;
        let primary = view.key.primary == Some(n);
        let name = rec.name.clone();
        Ok(Resolved {
            name,
            view,
            version,
            key,
            primary,
        })
    }

    async fn data_access(&self, p: &Principal, r: &Resolved, action: Action) -> Result<()> {
        if r.view.ring.audit_data_access {
            let ev = AuditEvent::new(self.base.now(), EventKind::DataAccess, action)
                .principal(&p.name)
                .resource(r.name.clone());
            self.base.audit.record(ev).await?;
        }
        Ok(())
    }

    /// Encrypts `plaintext` with the key's primary version (`aad` is needed again to decrypt).
    pub async fn seal(
        &self,
        p: &Principal,
        key: &CryptoKeyName,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Sealed> {
        check_len("plaintext", plaintext)?;
        check_len("additionalAuthenticatedData", aad)?;
        let r = self
            .resolve(
                p,
                &Target::Key(key.clone()),
                Permission::Encrypt,
                (Purpose::EncryptDecrypt, KeyOp::Encrypt),
                OpClass::Symmetric,
                None,
            )
            .await?;
        let (n, aad_owned, pt) = (r.version.version, aad.to_vec(), plaintext.to_vec());
        let ciphertext = self
            .material
            .call(&r.key, false, move |k| {
                symmetric::seal(k, n, &aad_owned, &pt)
            })
            .await?;
        self.data_access(p, &r, Action::Encrypt).await?;
        Ok(Sealed {
            version: r.name.clone(),
            ciphertext,
        })
    }

    /// Decrypts with the version the ciphertext names.
    pub async fn open(
        &self,
        p: &Principal,
        key: &CryptoKeyName,
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Opened> {
        let n = symmetric::version_of(ciphertext).map_err(|_| {
            Error::new(
                ErrorCode::CiphertextInvalid,
                "the ciphertext is malformed or truncated (it was not produced by Sovra's encrypt)",
            )
        })?;
        if n == 0 {
            return Err(Error::new(
                ErrorCode::CiphertextInvalid,
                "the ciphertext names version 0, which never exists",
            ));
        }
        let r = self.resolve(p, &Target::Key(key.clone()), Permission::Decrypt, (Purpose::EncryptDecrypt, KeyOp::Decrypt), OpClass::Symmetric, Some(n)).await.map_err(|e| {
            if e.code == ErrorCode::KeyVersionNotFound {
                Error::new(ErrorCode::CiphertextInvalid, format!("the ciphertext names version {n}, which {key} does not have: it belongs to another key or was altered"))
            } else {
                e
            }
        })?;
        let (aad_owned, ct) = (aad.to_vec(), ciphertext.to_vec());
        let plaintext = self
            .material
            .call(&r.key, false, move |k| symmetric::open(k, &aad_owned, &ct))
            .await?;
        self.data_access(p, &r, Action::Decrypt).await?;
        Ok(Opened {
            plaintext,
            version: r.name.clone(),
            used_primary: r.primary,
        })
    }

    /// Signs a message or its digest.
    pub async fn sign(&self, p: &Principal, target: &Target, input: Message) -> Result<Tagged> {
        let r = self
            .resolve(
                p,
                target,
                Permission::Sign,
                (Purpose::AsymmetricSign, KeyOp::Sign),
                OpClass::Asymmetric,
                None,
            )
            .await?;
        if let Message::Digest(h, _) = &input {
            let h = *h;
            match sign_hash(r.key.ops().algorithm()) {
                None => {
                    return Err(Error::new(
                        ErrorCode::UnsupportedAlgorithm,
                        format!(
                            "{} signs the message itself; send data, not a digest",
                            r.key.ops().algorithm().as_str()
                        ),
                    ));
                }
                Some(want) if want != h => {
                    let name = match want {
                        HashAlg::Sha256 => "SHA-256",
                        HashAlg::Sha384 => "SHA-384",
                        HashAlg::Sha512 => "SHA-512",
                    };
                    return Err(Error::invalid(format!(
                        "{} signs {name} digests; send that digest or the data",
                        r.key.ops().algorithm().as_str()
                    )));
                }
                Some(_) => {}
            }
        }
        let sig = self
            .material
            .call(&r.key, true, move |k| k.sign(input.as_input()))
            .await?;
        self.data_access(p, &r, Action::AsymmetricSign).await?;
        Ok(Tagged {
            version: r.name.clone(),
            tag: sig,
        })
    }

    /// Verifies a signature over a message or its digest.
    pub async fn verify(
        &self,
        p: &Principal,
        target: &Target,
        input: &Message,
        sig: &[u8],
    ) -> Result<Checked> {
        let r = self
            .resolve(
                p,
                target,
                Permission::Verify,
                (Purpose::AsymmetricSign, KeyOp::Verify),
                OpClass::Asymmetric,
                None,
            )
            .await?;
        let valid = r
            .key
            .ops()
            .verify(input.as_input(), sig)
            .map_err(crypto_err)?;
        Ok(Checked {
            version: r.name.clone(),
            valid,
        })
    }

    /// Decrypts RSA-OAEP-SHA256 ciphertext.
    pub async fn decrypt_asymmetric(
        &self,
        p: &Principal,
        target: &Target,
        ciphertext: &[u8],
    ) -> Result<Decrypted> {
        self.decrypt_rsa(
            p,
            target,
            ciphertext,
            RsaEncryption::OaepSha256,
            KeyOp::Decrypt,
        )
        .await
    }

    /// Decrypts RSA ciphertext made with `scheme` (OAEP-SHA-1 and PKCS#1 v1.5 only through the
    /// Key Vault API, whose SDKs use them). PKCS#1 v1.5 never fails on a malformed block: it
    /// gives a synthetic message instead (implicit rejection), so it is no padding oracle.
    pub async fn decrypt_rsa(
        &self,
        p: &Principal,
        target: &Target,
        ciphertext: &[u8],
        scheme: RsaEncryption,
        op: KeyOp,
    ) -> Result<Decrypted> {
        let ct = ciphertext.to_vec();
        let r = self
            .resolve(
                p,
                target,
                Permission::AsymmetricDecrypt,
                (Purpose::AsymmetricDecrypt, op),
                OpClass::Asymmetric,
                None,
            )
            .await?;
        let pt = self
            .material
            .call(&r.key, true, move |k| match scheme {
                RsaEncryption::OaepSha256 => k.oaep_decrypt(&ct),
                RsaEncryption::OaepSha1 => k.oaep_sha1_decrypt(&ct),
                RsaEncryption::Pkcs1 => k.rsa1_5_decrypt(&ct),
            })
            .await
            .map_err(|e| {
                if e.code != ErrorCode::CiphertextInvalid {
                    e
                } else if scheme == RsaEncryption::Pkcs1 {
                    Error::new(ErrorCode::CiphertextInvalid, "RSA1_5 decryption failed: the ciphertext is not as long as this version's modulus, or not below it")
                } else {
                    Error::new(ErrorCode::CiphertextInvalid, format!("RSA-OAEP decryption failed: the ciphertext was not made with this version's public key ({}) or was altered", scheme.name()))
                }
            })?;
        self.data_access(p, &r, Action::AsymmetricDecrypt).await?;
        Ok(Decrypted {
            version: r.name.clone(),
            plaintext: pt,
        })
    }

    /// Computes an HMAC of `data`.
    pub async fn mac(&self, p: &Principal, target: &Target, data: &[u8]) -> Result<Tagged> {
        check_len("data", data)?;
        let r = self
            .resolve(
                p,
                target,
                Permission::Mac,
                (Purpose::Mac, KeyOp::Sign),
                OpClass::Symmetric,
                None,
            )
            .await?;
        if let Some((rec, _)) = r.view.versions.get(&r.version.version) {
            super::keys::check_validity(rec, self.base.now(), true)?;
        }
        let d = data.to_vec();
        let mac = self
            .material
            .call(&r.key, false, move |k| k.mac(&d))
            .await?;
        self.data_access(p, &r, Action::MacSign).await?;
        Ok(Tagged {
            version: r.name.clone(),
            tag: mac,
        })
    }

    /// Checks an HMAC of `data`.
    pub async fn verify_mac(
        &self,
        p: &Principal,
        target: &Target,
        data: &[u8],
        mac: &[u8],
    ) -> Result<Checked> {
        check_len("data", data)?;
        let r = self
            .resolve(
                p,
                target,
                Permission::Mac,
                (Purpose::Mac, KeyOp::Verify),
                OpClass::Symmetric,
                None,
            )
            .await?;
        let (d, tag) = (data.to_vec(), mac.to_vec());
        let valid = self
            .material
            .call(&r.key, false, move |k| k.mac_verify(&d, &tag))
            .await?;
        self.data_access(p, &r, Action::MacVerify).await?;
        Ok(Checked {
            version: r.name.clone(),
            valid,
        })
    }

    /// AES key wrap of `key` with the version `target` names (the primary for a key): RFC 5649
    /// when `pad`, else RFC 3394.
    pub async fn wrap_key(
        &self,
        p: &Principal,
        target: &Target,
        key: &[u8],
        pad: bool,
    ) -> Result<Wrapped> {
        check_len("key", key)?;
        sovra_crypto::keywrap::check_aes_wrap_input(pad, key)
            .map_err(|e| Error::invalid(format!("{e} (mode AES_KEY_WRAP_PAD)")))?;
        let r = self
            .resolve(
                p,
                target,
                Permission::Encrypt,
                (Purpose::KeyWrap, KeyOp::WrapKey),
                OpClass::Symmetric,
                None,
            )
            .await?;
        let k = key.to_vec();
        let wrapped = self
            .material
            .call(&r.key, false, move |ops| ops.aes_key_wrap(pad, &k))
            .await?;
        self.data_access(p, &r, Action::WrapKey).await?;
        Ok(Wrapped {
            version: r.name.clone(),
            wrapped,
        })
    }

    /// Undoes [`Crypto::wrap_key`] with the version `target` names (the primary for a key);
    /// a wrapped key of another version or mode, or altered, is `CIPHERTEXT_INVALID`.
    pub async fn unwrap_key(
        &self,
        p: &Principal,
        target: &Target,
        wrapped: &[u8],
        pad: bool,
    ) -> Result<Decrypted> {
        check_len("wrappedKey", wrapped)?;
        let r = self
            .resolve(
                p,
                target,
                Permission::Decrypt,
                (Purpose::KeyWrap, KeyOp::UnwrapKey),
                OpClass::Symmetric,
                None,
            )
            .await?;
        let w = wrapped.to_vec();
        let plaintext = self
            .material
            .call(&r.key, true, move |ops| ops.aes_key_unwrap(pad, &w))
            .await?;
        self.data_access(p, &r, Action::UnwrapKey).await?;
        Ok(Decrypted {
            version: r.name.clone(),
            plaintext,
        })
    }

    /// The public key of an asymmetric version, PEM.
    pub async fn public_key(&self, p: &Principal, target: &Target) -> Result<PublicKey> {
        let (name, algorithm, der) = self.public_key_der(p, target).await?;
        Ok(PublicKey {
            pem: sovra_crypto::keys::pem("PUBLIC KEY", &der),
            algorithm,
            name: name.to_string(),
        })
    }

    /// The public key of an asymmetric version: its name, algorithm and SubjectPublicKeyInfo
    /// (DER).
    pub async fn public_key_der(
        &self,
        p: &Principal,
        target: &Target,
    ) -> Result<(VersionName, sovra_proto::kms::Algorithm, Vec<u8>)> {
        let key_name = target.key();
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &key_name.to_string())
            .await?;
        let view = self.keys.key_view(key_name).await?;
        if !matches!(
            view.key.purpose,
            Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt
        ) {
            return Err(Error::new(
                ErrorCode::WrongPurpose,
                format!(
                    "{} is a {} key; only asymmetric keys have a public key",
                    view.key.name,
                    purpose_name(view.key.purpose)
                ),
            ));
        }
        let n = match target {
            Target::Version(v) => v.version,
            Target::Key(_) => view.key.primary.ok_or_else(|| {
                Error::new(
                    ErrorCode::NoPrimaryVersion,
                    format!("{} has no primary version", view.key.name),
                )
            })?,
        };
        let version = key_name.version(n);
        let (rec, _) = view.versions.get(&n).ok_or_else(|| {
            Error::new(
                ErrorCode::KeyVersionNotFound,
                format!("key version {version} does not exist"),
            )
        })?;
        if rec.state == VersionState::Destroyed {
            return Err(Error::new(
                ErrorCode::KeyVersionDestroyed,
                format!("{version} is DESTROYED"),
            ));
        }
        let key = self.material.usable(&version, rec).await?;
        let der = key.ops().public_key_der().map_err(crypto_err)?;
        Ok((version, rec.algorithm, der))
    }

    /// RSA encryption with an asymmetric decryption key's public key, on the server (Key
    /// Vault's `encrypt`/`wrapKey`): anyone with the public key can do it, but a request to the
    /// server is held to the version's state and dates like any other use.
    pub async fn encrypt_asymmetric(
        &self,
        p: &Principal,
        target: &Target,
        plaintext: &[u8],
        scheme: RsaEncryption,
        op: KeyOp,
    ) -> Result<Tagged> {
        check_len("value", plaintext)?;
        let r = self
            .resolve(
                p,
                target,
                Permission::Encrypt,
                (Purpose::AsymmetricDecrypt, op),
                OpClass::Asymmetric,
                None,
            )
            .await?;
        let spki = r.key.ops().public_key_der().map_err(crypto_err)?;
        let ct = match scheme {
            RsaEncryption::OaepSha256 => sovra_crypto::keys::oaep_sha256_encrypt(&spki, plaintext),
            RsaEncryption::OaepSha1 => sovra_crypto::keys::oaep_sha1_encrypt(&spki, plaintext),
            RsaEncryption::Pkcs1 => sovra_crypto::keys::pkcs1_encrypt(&spki, plaintext),
        }
        .map_err(|_| {
            Error::invalid(format!(
                "the plaintext is too long for {} with this key",
                scheme.name()
            ))
        })?;
        self.data_access(p, &r, Action::Encrypt).await?;
        Ok(Tagged {
            version: r.name.clone(),
            tag: ct,
        })
    }

    /// An RSA signature of a `hash` digest with `padding`, by any RSA signing key whatever its
    /// own padding and hash (Key Vault lets one RSA key sign RS256 to PS512).
    pub async fn sign_rsa_as(
        &self,
        p: &Principal,
        target: &Target,
        padding: RsaPadding,
        hash: HashAlg,
        digest: &[u8],
    ) -> Result<Tagged> {
        let r = self
            .resolve(
                p,
                target,
                Permission::Sign,
                (Purpose::AsymmetricSign, KeyOp::Sign),
                OpClass::Asymmetric,
                None,
            )
            .await?;
        rsa_signing(&r)?;
        let d = digest.to_vec();
        let sig = self
            .material
            .call(&r.key, true, move |k| k.sign_rsa(padding, hash, &d))
            .await?;
        self.data_access(p, &r, Action::AsymmetricSign).await?;
        Ok(Tagged {
            version: r.name.clone(),
            tag: sig,
        })
    }

    /// Verifies what [`Crypto::sign_rsa_as`] made.
    pub async fn verify_rsa_as(
        &self,
        p: &Principal,
        target: &Target,
        padding: RsaPadding,
        hash: HashAlg,
        digest: &[u8],
        sig: &[u8],
    ) -> Result<Checked> {
        let r = self
            .resolve(
                p,
                target,
                Permission::Verify,
                (Purpose::AsymmetricSign, KeyOp::Verify),
                OpClass::Asymmetric,
                None,
            )
            .await?;
        rsa_signing(&r)?;
        let spki = r.key.ops().public_key_der().map_err(crypto_err)?;
        let valid = sovra_crypto::keys::verify_rsa_spki(padding, hash, &spki, digest, sig)
            .map_err(crypto_err)?;
        Ok(Checked {
            version: r.name.clone(),
            valid,
        })
    }

    /// AES-256-GCM as Key Vault's `A256GCM` does it: a fresh 96-bit IV, and the IV, ciphertext
    /// and tag returned apart (not Sovra's self-describing ciphertext).
    pub async fn gcm_encrypt(
        &self,
        p: &Principal,
        target: &Target,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<GcmSealed> {
        check_len("value", plaintext)?;
        check_len("aad", aad)?;
        let r = self
            .resolve(
                p,
                target,
                Permission::Encrypt,
                (Purpose::EncryptDecrypt, KeyOp::Encrypt),
                OpClass::Symmetric,
                None,
            )
            .await?;
        let iv: [u8; 12] = sovra_crypto::random::bytes(12)
            .map_err(crypto_err)?
            .try_into()
            .map_err(|_| Error::internal("random IV of the wrong length"))?;
        let (aad_owned, pt) = (aad.to_vec(), plaintext.to_vec());
        let mut sealed = self
            .material
            .call(&r.key, false, move |k| k.gcm_seal(&iv, &aad_owned, &pt))
            .await?;
        let tag = sealed.split_off(sealed.len().saturating_sub(16));
        self.data_access(p, &r, Action::Encrypt).await?;
        Ok(GcmSealed {
            version: r.name.clone(),
            iv: iv.to_vec(),
            ciphertext: sealed,
            tag,
        })
    }

    /// Opens what [`Crypto::gcm_encrypt`] made (IV of 12 bytes, tag of 16).
    pub async fn gcm_decrypt(
        &self,
        p: &Principal,
        target: &Target,
        sealed: &GcmSealed,
        aad: &[u8],
    ) -> Result<Decrypted> {
        check_len("value", &sealed.ciphertext)?;
        check_len("aad", aad)?;
        let iv: [u8; 12] = sealed.iv.as_slice().try_into().map_err(|_| {
            Error::invalid(format!("iv is {} bytes; A256GCM uses 12", sealed.iv.len()))
        })?;
        if sealed.tag.len() != 16 {
            return Err(Error::invalid(format!(
                "tag is {} bytes; A256GCM uses 16",
                sealed.tag.len()
            )));
        }
        let r = self
            .resolve(
                p,
                target,
                Permission::Decrypt,
                (Purpose::EncryptDecrypt, KeyOp::Decrypt),
                OpClass::Symmetric,
                None,
            )
            .await?;
        let mut ct = sealed.ciphertext.clone();
        ct.extend_from_slice(&sealed.tag);
        let aad_owned = aad.to_vec();
        let plaintext = self
            .material
            .call(&r.key, false, move |k| k.gcm_open(&iv, &aad_owned, &ct))
            .await
            .map_err(|e| {
                if e.code == ErrorCode::CiphertextInvalid {
                    Error::new(
                        ErrorCode::CiphertextInvalid,
                        "A256GCM decryption failed: the ciphertext, IV, tag or AAD was altered, or it was made with another key version",
                    )
                } else {
                    e
                }
            })?;
        self.data_access(p, &r, Action::Decrypt).await?;
        Ok(Decrypted {
            version: r.name.clone(),
            plaintext,
        })
    }

    /// Random bytes from the server's RNG.
    pub async fn generate_random(
        &self,
        p: &Principal,
        loc: &LocationName,
        length: u32,
    ) -> Result<sovra_crypto::SecretBytes> {
        self.base
            .auth
            .authorize(p, Permission::Random, &loc.to_string())
            .await?;
        if !(1..=1024).contains(&length) {
            return Err(Error::invalid("lengthBytes must be between 1 and 1024"));
        }
        self.quotas.take(p, OpClass::Symmetric).await?;
        let n = usize::try_from(length).unwrap_or(0);
        Ok(sovra_crypto::SecretBytes::new(
            sovra_crypto::random::bytes(n).map_err(crypto_err)?,
        ))
    }
}
