//! Key Vault's key lifecycle beyond create and update: recoverable deletion (delete, the
//! deleted keys, recover, purge) and backup/restore, over `Keys`' services of the same names.

use super::keys::{NamePath, bundle, current, ensure_vault, item, page};
use super::wire;
use super::{KvCaller, KvError, KvJson, KvPath, KvResult, Vault, paging};
use crate::error::Error;
use crate::http::AppState;
use crate::http::response::Json;
use crate::model::VersionRec;
use crate::services::keys::Page;
use axum::extract::State;
use axum::http::Uri;
use serde::Deserialize;
use serde_json::{Value, json};
use sovra_proto::ErrorCode;

/// Adds `extra`'s members to the object `v`.
fn merge(mut v: Value, extra: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// `DELETE /keys/{name}`: a recoverable deletion; the answer is the deleted key's bundle.
pub async fn delete(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    // The bundle as it is now (its public key is readable only while the key exists).
    let (key, v) = current(&state, &p, &name).await?;
    let b = bundle(&state, &p, &vault, &key, &v).await?;
    let d = state.sovra.keys().delete_crypto_key(&p, &name).await?;
    Ok(Json(merge(b, wire::deleted(&vault, &d))))
}

fn deleted_bundle(
    vault: &Vault,
    d: &crate::model::DeletedKeyRec,
    v: Option<&VersionRec>,
) -> KvResult<Value> {
    let id = wire::key_id(&d.key.name);
    let mut b = json!({
        "attributes": wire::attributes(&d.key, v),
        "tags": d.key.tags,
    });
    if let (Some(v), Some(o)) = (v, b.as_object_mut()) {
        o.insert(
            "key".into(),
            wire::jwk(wire::kid(vault, id, Some(v.version)), &d.key, v, None)?,
        );
    }
    if let (Some(rp), Some(o)) = (wire::release_policy(&d.key), b.as_object_mut()) {
        o.insert("release_policy".into(), rp);
    }
    Ok(merge(b, wire::deleted(vault, d)))
}

/// `GET /deletedkeys`.
pub async fn list_deleted(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    uri: Uri,
) -> KvResult<Json<Value>> {
    let (max, token) = paging(uri.query())?;
    let listed = state
        .sovra
        .keys()
        .list_deleted_keys(
            &p,
            &vault.ring,
            &Page {
                size: Some(max),
                token,
            },
        )
        .await?;
    let value = listed
        .items
        .iter()
        .map(|d| merge(item(&vault, &d.key, None, false), wire::deleted(&vault, d)))
        .collect();
    Ok(page(
        &vault,
        "/deletedkeys",
        max,
        value,
        listed.next_page_token,
    ))
}

/// `GET /deletedkeys/{name}`.
pub async fn get_deleted(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    let (d, v) = state.sovra.keys().get_deleted_key(&p, &name).await?;
    Ok(Json(deleted_bundle(&vault, &d, v.as_ref())?))
}

/// `DELETE /deletedkeys/{name}`: 204, once the key's retention has ended.
pub async fn purge(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<axum::response::Response> {
    let name = vault.key(&path.name)?;
    state.sovra.keys().purge_deleted_key(&p, &name).await?;
    Ok(crate::http::response::no_content())
}

/// `POST /deletedkeys/{name}/recover`.
pub async fn recover(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    let key = state.sovra.keys().recover_deleted_key(&p, &name).await?;
    let v = super::keys::primary(&key)?;
    Ok(Json(bundle(&state, &p, &vault, &key.key, &v).await?))
}

/// `POST /keys/{name}/backup`: the key and its versions, sealed to this deployment's HSM.
pub async fn backup(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    // The restore request carries the blob as base64url in `{"value": …}`.
    let limit = state.max_body.saturating_sub(32) / 4 * 3;
    let blob = state
        .sovra
        .keys()
        .backup_crypto_key(&p, &name, limit)
        .await?;
    Ok(Json(json!({"value": sovra_crypto::jws::b64url(&blob)})))
}

/// `KeyRestoreParameters`.
#[derive(Debug, Deserialize)]
pub struct RestoreIn {
    value: String,
}

/// `POST /keys/restore`: a backup becomes the key of the same name in this vault.
pub async fn restore(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvJson(req): KvJson<RestoreIn>,
) -> KvResult<Json<Value>> {
    let blob = wire::decode("value", &req.value)?;
    let keys = state.sovra.keys();
    let restored = match keys.restore_crypto_key(&p, &vault.ring, blob.clone()).await {
        Err(e) if e.code == ErrorCode::KeyRingNotFound => {
            ensure_vault(&state, &p, &vault).await?;
            keys.restore_crypto_key(&p, &vault.ring, blob).await?
        }
        r => r?,
    };
    let v = restored.primary.ok_or_else(|| {
        KvError(Error::new(
            ErrorCode::NoPrimaryVersion,
            "the restored key has no current version",
        ))
    })?;
    Ok(Json(bundle(&state, &p, &vault, &restored.key, &v).await?))
}
