//! Key Vault key management: create, get, list, update, rotate; and the operations Sovra does
//! not offer through this API yet, each refused with a message that says so.

use super::wire::{self, CreateIn, UpdateIn};
use super::{KvCaller, KvError, KvJson, KvPath, KvResult, Vault, paging, percent_encode};
use crate::error::Error;
use crate::http::AppState;
use crate::http::response::Json;
use crate::model::{CryptoKeyRec, VersionRec};
use crate::services::auth::Principal;
use crate::services::keys::{Key, KeyChanges, NewKey, Page};
use crate::services::ops::Target;
use axum::extract::State;
use axum::http::Uri;
use serde::Deserialize;
use serde_json::{Value, json};
use sovra_proto::ErrorCode;
use sovra_proto::kms::{Purpose, VersionState, VersionTemplate};
use sovra_proto::names::{CryptoKeyName, VersionName};

/// `{name}` of a key path.
#[derive(Debug, Deserialize)]
pub struct NamePath {
    pub name: String,
}

/// `{name}` and `{version}` (empty or absent: the current version).
#[derive(Debug, Deserialize)]
pub struct VersionPath {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

impl Vault {
    /// The Sovra key a Key Vault key name addresses. Key Vault names are `[0-9a-zA-Z-]`; a
    /// Sovra key ID also allows `_` and is at most 63 characters.
    pub fn key(&self, name: &str) -> KvResult<CryptoKeyName> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(KvError::bad(format!(
                "key name {name:?}: use 1 to 63 of 0-9, a-z, A-Z and '-'"
            )));
        }
        Ok(self.ring.crypto_key(name).map_err(Error::from)?)
    }

    /// The version a path names, or the key's current one.
    pub fn target(&self, p: &VersionPath) -> KvResult<Target> {
        let key = self.key(&p.name)?;
        match p.version.as_deref().filter(|v| !v.is_empty()) {
            None => Ok(Target::Key(key)),
            Some(v) => Ok(Target::Version(version_of(&key, v)?)),
        }
    }
}

/// A version string of a `kid`: Sovra's versions are numbered 1, 2, …
pub fn version_of(key: &CryptoKeyName, v: &str) -> KvResult<VersionName> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(key.version(n))
        }
        _ => Err(KvError(Error::new(
            ErrorCode::KeyVersionNotFound,
            format!("{key} has no version {v:?} (Sovra's versions are numbered 1, 2, …)"),
        ))),
    }
}

/// A key bundle: the version's JWK, attributes, the key's tags and release policy.
pub async fn bundle(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    key: &CryptoKeyRec,
    v: &VersionRec,
) -> KvResult<Value> {
    let id = wire::key_id(&key.name);
    let kid = wire::kid(vault, id, Some(v.version));
    let spki = if matches!(
        key.purpose,
        Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt
    ) && v.state != VersionState::Destroyed
    {
        let name = vault.key(id)?.version(v.version);
        let (_, _, der) = state
            .sovra
            .crypto()
            .public_key_der(p, &Target::Version(name))
            .await?;
        Some(der)
    } else {
        None
    };
    let mut b = json!({
        "key": wire::jwk(kid, key, v, spki.as_deref())?,
        "attributes": wire::attributes(key, Some(v)),
        "tags": key.tags,
    });
    if let (Some(rp), Some(o)) = (wire::release_policy(key), b.as_object_mut()) {
        o.insert("release_policy".into(), rp);
    }
    Ok(b)
}

/// A key and its current version.
pub async fn current(
    state: &AppState,
    p: &Principal,
    name: &CryptoKeyName,
) -> KvResult<(CryptoKeyRec, VersionRec)> {
    let Key { key, primary } = state.sovra.keys().get_crypto_key(p, name).await?;
    let v = primary.ok_or_else(|| {
        KvError(Error::new(
            ErrorCode::NoPrimaryVersion,
            format!("{name} has no current version; rotate the key"),
        ))
    })?;
    Ok((key, v))
}

/// The primary version of a key a service call just made or changed (it always has one).
pub fn primary(key: &Key) -> KvResult<VersionRec> {
    key.primary.clone().ok_or_else(|| {
        KvError(Error::internal(format!(
            "{} has no primary version",
            key.key.name
        )))
    })
}

/// The key and the version a path names (empty: the current one).
pub async fn key_and_version(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    path: &VersionPath,
) -> KvResult<(CryptoKeyRec, VersionRec)> {
    match vault.target(path)? {
        Target::Key(name) => current(state, p, &name).await,
        Target::Version(vname) => {
            let v = state.sovra.keys().get_version(p, &vname).await?;
            let k = state.sovra.keys().get_crypto_key(p, &vname.key).await?.key;
            Ok((k, v))
        }
    }
}

async fn version_bundle(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    path: &VersionPath,
) -> KvResult<Value> {
    match key_and_version(state, p, vault, path).await {
        Ok((key, v)) => bundle(state, p, vault, &key, &v).await,
        // A KEK is an import job, not a key.
        Err(KvError(e)) if e.code == ErrorCode::KeyNotFound && path.version.is_none() => {
            super::byok::kek(state, p, vault, path)
                .await
                .map_err(|_| KvError(e))
        }
        Err(e) => Err(e),
    }
}

/// `GET /keys/{name}/` and `GET /keys/{name}`.
pub async fn get_current(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let path = VersionPath {
        name: path.name,
        version: None,
    };
    Ok(Json(version_bundle(&state, &p, &vault, &path).await?))
}

/// `GET /keys/{name}/{version}`.
pub async fn get_version(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<VersionPath>,
) -> KvResult<Json<Value>> {
    Ok(Json(version_bundle(&state, &p, &vault, &path).await?))
}

/// `POST /keys/{name}/create`: a new key, or a new current version of an existing one (of the
/// same type).
pub async fn create(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
    KvJson(req): KvJson<CreateIn>,
) -> KvResult<Json<Value>> {
    if super::byok::is_kek(&req) {
        return Ok(Json(
            super::byok::create_kek(&state, &p, &vault, &path, &req).await?,
        ));
    }
    req.attributes.check()?;
    let (algorithm, level) = wire::algorithm_for(&req)?;
    let name = vault.key(&path.name)?;
    let keys = state.sovra.keys();
    let key = match keys.get_crypto_key(&p, &name).await {
        Ok(existing) => {
            if existing.key.algorithm != algorithm {
                return Err(KvError::bad(format!(
                    "key {} exists with algorithm {}; a new version must be of the same type and size",
                    path.name,
                    existing.key.algorithm.as_str()
                )));
            }
            keys.rotate(&p, &name).await?
        }
        Err(e) if matches!(e.code, ErrorCode::KeyNotFound | ErrorCode::KeyRingNotFound) => {
            let release_policy = req.release_policy.as_ref().map(|r| r.text()).transpose()?;
            let new = NewKey {
                purpose: algorithm.purpose(),
                template: Some(VersionTemplate {
                    algorithm,
                    protection_level: level,
                }),
                rotation_period: None,
                next_rotation_time: None,
                destroy_scheduled_duration: None,
                labels: Default::default(),
                skip_initial_version: false,
                exportable: req.attributes.exportable.unwrap_or(false),
                release_policy,
                tags: req.tags.clone().unwrap_or_default(),
                key_ops: wire::limited_ops(req.key_ops.as_deref())?,
            };
            match keys
                .create_crypto_key(&p, &vault.ring, &name.crypto_key, new.clone())
                .await
            {
                Err(e) if e.code == ErrorCode::KeyRingNotFound => {
                    ensure_vault(&state, &p, &vault).await?;
                    keys.create_crypto_key(&p, &vault.ring, &name.crypto_key, new)
                        .await?
                }
                r => r?,
            }
        }
        Err(e) => return Err(e.into()),
    };
    let v = primary(&key)?;
    let v = apply_attributes(&state, &p, &name, v, &req.attributes).await?;
    Ok(Json(bundle(&state, &p, &vault, &key.key, &v).await?))
}

/// Applies a request's `enabled`, `nbf` and `exp` to a version.
pub async fn apply_attributes(
    state: &AppState,
    p: &Principal,
    name: &CryptoKeyName,
    mut v: VersionRec,
    a: &wire::AttributesIn,
) -> KvResult<VersionRec> {
    let keys = state.sovra.keys();
    let vname = name.version(v.version);
    if a.dates() {
        v = keys
            .set_version_validity(p, &vname, a.nbf.map(Some), a.exp.map(Some))
            .await?;
    }
    if let Some(enabled) = a.enabled {
        let want = if enabled {
            VersionState::Enabled
        } else {
            VersionState::Disabled
        };
        if v.state != want {
            v = keys.set_version_state(p, &vname, want).await?;
        }
    }
    Ok(v)
}

/// Creates the vault's key ring on first use (the caller needs the right to).
pub async fn ensure_vault(state: &AppState, p: &Principal, vault: &Vault) -> KvResult<()> {
    let loc = vault.ring.location_name();
    match state
        .sovra
        .keys()
        .create_key_ring(p, &loc, &vault.ring.key_ring, false)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code == ErrorCode::AlreadyExists => Ok(()),
        Err(e) if e.code == ErrorCode::PermissionDenied => Err(KvError(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "the vault's key ring {} does not exist yet and you may not create it: ask an administrator to create it",
                vault.ring
            ),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `POST /keys/{name}/rotate`.
pub async fn rotate(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    let key = state.sovra.keys().rotate(&p, &name).await?;
    let v = primary(&key)?;
    Ok(Json(bundle(&state, &p, &vault, &key.key, &v).await?))
}

async fn update(
    state: &AppState,
    p: &Principal,
    vault: &Vault,
    path: VersionPath,
    req: UpdateIn,
) -> KvResult<Value> {
    req.attributes.check()?;
    let (key, v) = key_and_version(state, p, vault, &path).await?;
    let name = vault.key(&path.name)?;
    let key_ops = wire::limited_ops(req.key_ops.as_deref())?;
    if req
        .attributes
        .exportable
        .is_some_and(|e| e != key.exportable)
    {
        return Err(KvError::bad(
            "attributes.exportable is set when a key is created and never changes",
        ));
    }
    let keys = state.sovra.keys();
    let mut key = key;
    if req.tags.is_some() || req.release_policy.is_some() || key_ops.is_some() {
        let changes = KeyChanges {
            tags: req.tags.clone(),
            release_policy: req.release_policy.as_ref().map(|r| r.text()).transpose()?,
            key_ops,
            ..KeyChanges::default()
        };
        key = keys.update_crypto_key(p, &name, changes).await?.key;
    }
    let v = apply_attributes(state, p, &name, v, &req.attributes).await?;
    bundle(state, p, vault, &key, &v).await
}

/// `PATCH /keys/{name}/`: the current version.
pub async fn update_current(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
    KvJson(req): KvJson<UpdateIn>,
) -> KvResult<Json<Value>> {
    let path = VersionPath {
        name: path.name,
        version: None,
    };
    Ok(Json(update(&state, &p, &vault, path, req).await?))
}

/// `PATCH /keys/{name}/{version}`.
pub async fn update_version(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<VersionPath>,
    KvJson(req): KvJson<UpdateIn>,
) -> KvResult<Json<Value>> {
    Ok(Json(update(&state, &p, &vault, path, req).await?))
}

/// A `KeyItem`: the key's (or a version's) id, attributes and tags.
pub fn item(
    vault: &Vault,
    key: &CryptoKeyRec,
    v: Option<&VersionRec>,
    version_in_kid: bool,
) -> Value {
    let id = wire::key_id(&key.name);
    json!({
        "kid": wire::kid(vault, id, v.filter(|_| version_in_kid).map(|v| v.version)),
        "attributes": wire::attributes(key, v),
        "tags": key.tags,
    })
}

/// A page of a listing at `path`, with the link to the next one.
pub fn page(
    vault: &Vault,
    path: &str,
    max: usize,
    value: Vec<Value>,
    token: Option<String>,
) -> Json<Value> {
    Json(json!({"value": value, "nextLink": next_link(vault, path, max, token)}))
}

fn next_link(vault: &Vault, path: &str, max: usize, token: Option<String>) -> Value {
    token.map_or(Value::Null, |t| {
        json!(format!(
            "{}{path}?api-version={}&$skiptoken={}&maxresults={max}",
            vault.base,
            vault.api_version,
            percent_encode(&t)
        ))
    })
}

/// `GET /keys`.
pub async fn list_keys(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    uri: Uri,
) -> KvResult<Json<Value>> {
    let (max, token) = paging(uri.query())?;
    let asked = Page {
        size: Some(max),
        token,
    };
    let listed = match state
        .sovra
        .keys()
        .list_crypto_keys(&p, &vault.ring, &asked)
        .await
    {
        Ok(l) => l,
        // A vault nobody has created a key in yet is empty.
        Err(e) if e.code == ErrorCode::KeyRingNotFound => {
            return Ok(page(&vault, "/keys", max, Vec::new(), None));
        }
        Err(e) => return Err(e.into()),
    };
    let value = listed
        .items
        .iter()
        .map(|k| item(&vault, &k.key, k.primary.as_ref(), false))
        .collect();
    Ok(page(&vault, "/keys", max, value, listed.next_page_token))
}

/// `GET /keys/{name}/versions`.
pub async fn list_versions(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
    uri: Uri,
) -> KvResult<Json<Value>> {
    let (max, token) = paging(uri.query())?;
    let name = vault.key(&path.name)?;
    let keys = state.sovra.keys();
    let key = keys.get_crypto_key(&p, &name).await?.key;
    let listed = keys
        .list_versions(
            &p,
            &name,
            &Page {
                size: Some(max),
                token,
            },
        )
        .await?;
    let value = listed
        .items
        .iter()
        .map(|v| item(&vault, &key, Some(v), true))
        .collect();
    let at = format!("/keys/{}/versions", path.name);
    Ok(page(&vault, &at, max, value, listed.next_page_token))
}

/// `PUT /keys/{name}`: a JWK with its private members becomes the key's new current version
/// (the key is created if it does not exist). The material takes the import path: wrapped to
/// an import job's key of the vault's ring, opened in the HSM for `HSM` keys.
pub async fn import(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
    KvJson(req): KvJson<wire::ImportIn>,
) -> KvResult<Json<Value>> {
    req.attributes.check()?;
    let name = vault.key(&path.name)?;
    if let Some(b) = wire::byok(&req)? {
        let new = NewKey {
            purpose: sovra_proto::kms::Purpose::EncryptDecrypt,
            template: None,
            rotation_period: None,
            next_rotation_time: None,
            destroy_scheduled_duration: None,
            labels: Default::default(),
            skip_initial_version: true,
            exportable: req.attributes.exportable.unwrap_or(false),
            release_policy: req.release_policy.as_ref().map(|r| r.text()).transpose()?,
            tags: req.tags.clone().unwrap_or_default(),
            // Checked against the purpose of the key type the blob turns out to hold.
            key_ops: wire::limited_ops(req.key.key_ops.as_deref())?,
        };
        return Ok(Json(
            super::byok::import(&state, &p, &vault, &path, new, b, &req.attributes).await?,
        ));
    }
    let imp = wire::imported(&req)?;
    let new = NewKey {
        purpose: imp.algorithm.purpose(),
        template: Some(VersionTemplate {
            algorithm: imp.algorithm,
            protection_level: imp.level,
        }),
        rotation_period: None,
        next_rotation_time: None,
        destroy_scheduled_duration: None,
        labels: Default::default(),
        skip_initial_version: true,
        exportable: req.attributes.exportable.unwrap_or(false),
        release_policy: req.release_policy.as_ref().map(|r| r.text()).transpose()?,
        tags: req.tags.clone().unwrap_or_default(),
        key_ops: wire::limited_ops(req.key.key_ops.as_deref())?,
    };
    let keys = state.sovra.keys();
    let run = || {
        keys.import_clear(
            &p,
            &name,
            new.clone(),
            imp.material.expose(),
            imp.public_key.clone(),
        )
    };
    let key = match run().await {
        Err(e) if e.code == ErrorCode::KeyRingNotFound => {
            ensure_vault(&state, &p, &vault).await?;
            run().await?
        }
        r => r?,
    };
    let v = primary(&key)?;
    let v = apply_attributes(&state, &p, &name, v, &req.attributes).await?;
    Ok(Json(bundle(&state, &p, &vault, &key.key, &v).await?))
}

/// `GET /keys/{name}/{version}/attestation` (7.6): the version's bundle with Sovra's key
/// attestation statement (a JWS signed by the HSM's attestation key, naming the version, its
/// origin and the HSM's attributes of its material) and the certificates that verify it.
pub async fn attestation(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<VersionPath>,
) -> KvResult<Json<Value>> {
    let (key, v) = key_and_version(&state, &p, &vault, &path).await?;
    let statement = v.attestation.clone().ok_or_else(|| {
        KvError(Error::new(
            ErrorCode::KeyVersionNotFound,
            format!(
                "{} has no key attestation statement (it was created before Sovra made them)",
                v.name
            ),
        ))
    })?;
    let roots = state.sovra.keys().attestation_roots(&p).await?;
    let mut b = bundle(&state, &p, &vault, &key, &v).await?;
    let stmt = sovra_crypto::jws::b64url(statement.as_bytes());
    let mut att = json!({
        "certificatePemFile": sovra_crypto::jws::b64url(format!("{}{}", roots.attestation_certificate, roots.owner_root).as_bytes()),
        "privateKeyAttestation": stmt,
        "version": "sovra-key-statement/1",
    });
    if matches!(
        key.purpose,
        Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt
    ) && let Some(o) = att.as_object_mut()
    {
        o.insert("publicKeyAttestation".into(), json!(stmt));
    }
    if let Some(a) = b.get_mut("attributes").and_then(Value::as_object_mut) {
        a.insert("attestation".into(), att);
    }
    Ok(Json(b))
}
