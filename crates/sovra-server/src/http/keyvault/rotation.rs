//! Key Vault's rotation policies, over Sovra's automatic rotation: one `Rotate` action after
//! a time since creation is the key's rotation period.

use super::keys::NamePath;
use super::wire;
use super::{KvCaller, KvError, KvJson, KvPath, KvResult, Vault};
use crate::http::AppState;
use crate::http::response::Json;
use crate::model::CryptoKeyRec;
use crate::services::keys::KeyChanges;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

fn rotation_policy(vault: &Vault, key: &CryptoKeyRec) -> Value {
    let actions: Vec<Value> = key
        .rotation_period
        .map(|secs| json!({"trigger": {"timeAfterCreate": wire::iso_from_secs(secs)}, "action": {"type": "Rotate"}}))
        .into_iter()
        .collect();
    json!({
        "id": format!("{}/keys/{}/rotationpolicy", vault.base, wire::key_id(&key.name)),
        "lifetimeActions": actions,
        "attributes": {"created": key.create_time, "updated": key.create_time},
    })
}

/// `GET /keys/{name}/rotationpolicy`: the key's automatic rotation as a policy.
pub async fn get_rotation_policy(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    let key = state.sovra.keys().get_crypto_key(&p, &name).await?.key;
    Ok(Json(rotation_policy(&vault, &key)))
}

/// `KeyRotationPolicy` (`id`, `created` and `updated` are read-only and ignored).
#[derive(Debug, Deserialize)]
pub struct RotationPolicyIn {
    #[allow(dead_code)]
    id: Option<String>,
    #[serde(rename = "lifetimeActions", default)]
    lifetime_actions: Vec<LifetimeActionIn>,
    attributes: Option<RotationAttributesIn>,
}

/// `LifetimeAction`.
#[derive(Debug, Deserialize)]
pub struct LifetimeActionIn {
    trigger: TriggerIn,
    action: ActionIn,
}

/// `LifetimeActionsTrigger`.
#[derive(Debug, Deserialize)]
pub struct TriggerIn {
    #[serde(rename = "timeAfterCreate")]
    time_after_create: Option<String>,
    #[serde(rename = "timeBeforeExpiry")]
    time_before_expiry: Option<String>,
}

/// `LifetimeActionsType`.
#[derive(Debug, Deserialize)]
pub struct ActionIn {
    #[serde(rename = "type")]
    kind: String,
}

/// `KeyRotationPolicyAttributes`.
#[derive(Debug, Deserialize)]
pub struct RotationAttributesIn {
    #[serde(rename = "expiryTime")]
    expiry_time: Option<String>,
    #[allow(dead_code)]
    created: Option<i64>,
    #[allow(dead_code)]
    updated: Option<i64>,
}

/// `PUT /keys/{name}/rotationpolicy`: one `Rotate` action after a time since creation sets
/// the key's rotation period; none turns automatic rotation off.
pub async fn set_rotation_policy(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<NamePath>,
    KvJson(req): KvJson<RotationPolicyIn>,
) -> KvResult<Json<Value>> {
    let name = vault.key(&path.name)?;
    if req
        .attributes
        .as_ref()
        .is_some_and(|a| a.expiry_time.is_some())
    {
        return Err(KvError::unsupported(
            "attributes.expiryTime is not offered: Sovra's versions do not expire; leave it out",
        ));
    }
    let mut period = None;
    for a in &req.lifetime_actions {
        let after = a.trigger.time_after_create.as_deref();
        if a.trigger.time_before_expiry.is_some() && after.is_some() {
            return Err(KvError::bad(
                "a trigger is timeAfterCreate or timeBeforeExpiry, not both",
            ));
        }
        match (a.action.kind.to_ascii_lowercase().as_str(), after) {
            ("rotate", Some(d)) if period.is_none() => period = Some(wire::iso_duration(d)?),
            ("rotate", Some(_)) => return Err(KvError::bad("at most one Rotate action")),
            ("rotate", None) => {
                return Err(KvError::unsupported(
                    "a Rotate action triggered before expiry is not offered (versions do not expire); use timeAfterCreate",
                ));
            }
            ("notify", _) => {
                return Err(KvError::unsupported(
                    "Notify actions are not offered: Sovra sends no notifications; watch the audit log",
                ));
            }
            (other, _) => {
                return Err(KvError::bad(format!(
                    "action type {other:?} is not Rotate or Notify"
                )));
            }
        }
    }
    let changes = KeyChanges {
        rotation_period: Some(period),
        ..KeyChanges::default()
    };
    let key = state
        .sovra
        .keys()
        .update_crypto_key(&p, &name, changes)
        .await?
        .key;
    Ok(Json(rotation_policy(&vault, &key)))
}
