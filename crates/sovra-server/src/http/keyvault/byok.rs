//! Key Vault's BYOK: a key-exchange key (KEK, created with `key_ops: ["import"]`) is, in
//! Sovra, an import job of the vault's key ring — an RSA-3072/4096 key generated in the HSM,
//! CKM_RSA_AES_KEY_WRAP (OAEP SHA-1), living 30 days; a `.byok` blob wrapped to it is imported
//! through that job, so the material is opened inside the HSM and never seen in clear.

use super::keys::{NamePath, VersionPath, bundle};
use super::wire::{self, Byok, CreateIn};
use super::{KvError, KvResult, Vault};
use crate::error::Error;
use crate::http::AppState;
use crate::model::ImportJobRec;
use crate::services::auth::Principal;
use crate::services::keys::NewKey;
use crate::services::keys::import::NewImportJob;
use serde_json::{Value, json};
use sovra_proto::ErrorCode;
use sovra_proto::kms::{ImportMethod, ProtectionLevel};

/// A KEK lives as long as an import job may: 30 days.
const KEK_TTL: u64 = 30 * 86_400;

/// Whether a create request asks for a KEK.
pub fn is_kek(req: &CreateIn) -> bool {
    req.key_ops.as_deref().is_some_and(|o| o == ["import"])
}

/// `POST /keys/{name}/create` with `key_ops: ["import"]`.
pub async fn create_kek(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    path: &NamePath,
    req: &CreateIn,
) -> KvResult<Value> {
    req.attributes.check()?;
    vault.key(&path.name)?;
    let method = match (req.kty.as_str(), req.key_size) {
        ("RSA" | "RSA-HSM", Some(3072)) => ImportMethod::RsaOaep3072Sha1Aes256,
        ("RSA" | "RSA-HSM", Some(4096)) => ImportMethod::RsaOaep4096Sha1Aes256,
        ("RSA" | "RSA-HSM", _) => {
            return Err(KvError::unsupported(
                "a KEK in Sovra is RSA-3072 or RSA-4096 (key_size 3072 or 4096)",
            ));
        }
        _ => return Err(KvError::bad("a KEK (key_ops [\"import\"]) is an RSA key")),
    };
    let job = NewImportJob {
        method,
        protection_level: Some(ProtectionLevel::Hsm),
        ttl: Some(KEK_TTL),
    };
    let keys = state.sovra.keys();
    let job = match keys
        .create_import_job(p, &vault.ring, &path.name, job.clone())
        .await
    {
        Err(e) if e.code == ErrorCode::KeyRingNotFound => {
            super::keys::ensure_vault(state, p, vault).await?;
            keys.create_import_job(p, &vault.ring, &path.name, job)
                .await?
        }
        r => r?,
    };
    kek_bundle(vault, &job)
}

/// A KEK as Key Vault shows it: its public key, `key_ops: ["import"]`, and its expiry.
pub fn kek_bundle(vault: &Vault, job: &ImportJobRec) -> KvResult<Value> {
    let id = job.name.rsplit('/').next().unwrap_or(&job.name);
    let spki = sovra_proto::b64::decode(&job.public_key).map_err(|_| {
        KvError(Error::new(
            ErrorCode::IntegrityFailure,
            "a stored import job was altered",
        ))
    })?;
    let mut key = sovra_crypto::jws::VerifyKey::from_spki(None, &spki)
        .map_err(|_| KvError(Error::internal("an import job's key is not RSA")))?
        .public_jwk();
    if let Some(o) = key.as_object_mut() {
        o.insert("kty".into(), json!("RSA-HSM"));
        o.insert("kid".into(), json!(wire::kid(vault, id, None)));
        o.insert("key_ops".into(), json!(["import"]));
    }
    Ok(json!({
        "key": key,
        "attributes": {
            "enabled": true,
            "created": job.create_time,
            "updated": job.create_time,
            "exp": job.expire_time,
            "recoveryLevel": "Purgeable",
            "recoverableDays": 0,
            "exportable": false,
            "hsmPlatform": "1",
        },
        "tags": {},
    }))
}

/// The KEK a path names, if there is no key of that name.
pub async fn kek(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    path: &VersionPath,
) -> KvResult<Value> {
    let job = state
        .sovra
        .keys()
        .get_import_job(p, &vault.ring, &path.name)
        .await
        .map_err(|_| {
            KvError(Error::new(
                ErrorCode::KeyNotFound,
                format!("{} has no key {}", vault.ring, path.name),
            ))
        })?;
    kek_bundle(vault, &job)
}

/// `PUT /keys/{name}` with `key.key_hsm`: the blob is imported through the KEK it names.
pub async fn import(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    path: &NamePath,
    new: NewKey,
    b: Byok,
    attributes: &wire::AttributesIn,
) -> KvResult<Value> {
    let name = vault.key(&path.name)?;
    let keys = state.sovra.keys();
    let job = keys
        .get_import_job(p, &vault.ring, &b.kek)
        .await
        .map_err(|e| match e.code {
            ErrorCode::ImportJobNotFound => KvError(Error::new(
                ErrorCode::KeyNotFound,
                format!("the blob's KEK {} is not a KEK of this vault", b.kek),
            )),
            _ => KvError(e),
        })?;
    let existing = match keys.get_crypto_key(p, &name).await {
        Ok(k) => Some(k),
        Err(e) if e.code == ErrorCode::KeyNotFound => None,
        Err(e) => return Err(e.into()),
    };
    let key = keys
        .import_wrapped(
            p,
            &name,
            new,
            &job,
            &b.candidates,
            b.wrapped,
            b.public_key,
            existing,
        )
        .await?;
    let v = super::keys::primary(&key)?;
    let v = super::keys::apply_attributes(state, p, &name, v, attributes).await?;
    bundle(state, p, vault, &key.key, &v).await
}
