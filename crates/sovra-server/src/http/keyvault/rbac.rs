//! Managed HSM local RBAC, as `azure-keyvault-administration`'s `KeyVaultAccessControlClient`
//! calls it: role definitions and role assignments under
//! `/{scope}/providers/Microsoft.Authorization/…`, where the scope is `/` or `/keys` (the
//! vault, that is its key ring) or `/keys/{name}` (one key). A role assignment is a Sovra role
//! binding (its name is the binding's ID); the definitions are the Managed HSM built-in roles
//! that have a Sovra role of the same reach (docs/azure.md). Custom role definitions are not
//! offered: Sovra's roles are fixed.

use super::{KvCaller, KvError, KvJson, KvPath, KvResult, Vault, form_urlencoded_get};
use crate::error::Error;
use crate::http::AppState;
use crate::http::response::Json;
use crate::model::RoleBindingRec;
use crate::services::access::NewBinding;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sovra_proto::ErrorCode;
use sovra_proto::admin::Role;

/// A built-in Managed HSM role that Sovra serves.
struct Definition {
    /// Azure's ID of the role (the same in every managed HSM).
    id: &'static str,
    name: &'static str,
    description: &'static str,
    role: Role,
    data_actions: &'static [&'static str],
}

const DEFINITIONS: [Definition; 4] = [
    Definition {
        id: "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
        name: "Managed HSM Crypto Officer",
        description: "Manages keys and their lifecycle (Sovra's crypto-officer); does not use them.",
        role: Role::CryptoOfficer,
        data_actions: &[
            "Microsoft.KeyVault/managedHsm/keys/read/action",
            "Microsoft.KeyVault/managedHsm/keys/write/action",
            "Microsoft.KeyVault/managedHsm/keys/delete",
            "Microsoft.KeyVault/managedHsm/keys/backup/action",
            "Microsoft.KeyVault/managedHsm/keys/restore/action",
            "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
            "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action",
            "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete",
        ],
    },
    Definition {
        id: "21dbd100-6940-42c2-9190-5d6cb909625b",
        name: "Managed HSM Crypto User",
        description: "Uses keys for cryptography and reads them (Sovra's crypto-user).",
        role: Role::CryptoUser,
        data_actions: &[
            "Microsoft.KeyVault/managedHsm/keys/read/action",
            "Microsoft.KeyVault/managedHsm/keys/encrypt/action",
            "Microsoft.KeyVault/managedHsm/keys/decrypt/action",
            "Microsoft.KeyVault/managedHsm/keys/wrap/action",
            "Microsoft.KeyVault/managedHsm/keys/unwrap/action",
            "Microsoft.KeyVault/managedHsm/keys/sign/action",
            "Microsoft.KeyVault/managedHsm/keys/verify/action",
            "Microsoft.KeyVault/managedHsm/rng/action",
        ],
    },
    Definition {
        id: "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
        name: "Managed HSM Crypto Auditor",
        description: "Reads key metadata, not key material (Sovra's auditor).",
        role: Role::Auditor,
        data_actions: &[
            "Microsoft.KeyVault/managedHsm/keys/read/action",
            "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
        ],
    },
    Definition {
        id: "21dbd100-6940-42c2-9190-5d6cb909625c",
        name: "Managed HSM Crypto Service Release User",
        description: "Releases exportable keys to attested TEEs (Sovra's release-user).",
        role: Role::ReleaseUser,
        data_actions: &["Microsoft.KeyVault/managedHsm/keys/release/action"],
    },
];

fn definition_id(d: &Definition) -> String {
    format!(
        "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{}",
        d.id
    )
}

fn definition_json(d: &Definition) -> Value {
    json!({
        "id": definition_id(d),
        "name": d.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": d.name,
            "description": d.description,
            "type": "AKVBuiltInRole",
            "permissions": [{"actions": [], "notActions": [],
                "dataActions": d.data_actions, "notDataActions": []}],
            "assignableScopes": ["/"],
        },
    })
}

/// The definition a `roleDefinitionId` (full ID or bare GUID) names.
fn definition(id: &str) -> KvResult<&'static Definition> {
    let guid = id.rsplit('/').next().unwrap_or(id).to_ascii_lowercase();
    DEFINITIONS.iter().find(|d| d.id == guid).ok_or_else(|| {
        KvError(Error::new(
            ErrorCode::RoleBindingNotFound,
            format!(
                "role definition {id:?} is not one this vault serves; list them (Crypto Officer, Crypto User, Crypto Auditor, Crypto Service Release User). Administrator roles are granted natively: `sovra roles grant`"
            ),
        ))
    })
}

/// Where in the vault: the vault itself (`/`, `/keys`) or one key (`/keys/{name}`).
enum Scope {
    Vault,
    Key(String),
}

impl Scope {
    fn sovra(&self, v: &Vault) -> KvResult<String> {
        Ok(match self {
            Scope::Vault => v.ring.to_string(),
            Scope::Key(k) => v.key(k)?.to_string(),
        })
    }

    /// Whether a binding at the Sovra scope `s` is listed at this scope: at the vault, every
    /// binding in it; at a key, the key's and the vault's.
    fn lists(&self, v: &Vault, s: &str) -> bool {
        let ring = v.ring.to_string();
        match self {
            Scope::Vault => s == ring || s.starts_with(&format!("{ring}/cryptoKeys/")),
            Scope::Key(k) => s == ring || s == format!("{ring}/cryptoKeys/{k}"),
        }
    }
}

/// The Managed HSM scope of a binding in vault `v`, if it is in it.
fn kv_scope(v: &Vault, s: &str) -> Option<String> {
    let ring = v.ring.to_string();
    if s == ring {
        return Some("/".into());
    }
    s.strip_prefix(&format!("{ring}/cryptoKeys/"))
        .map(|k| format!("/keys/{k}"))
}

fn assignment_json(v: &Vault, b: &RoleBindingRec) -> Option<Value> {
    let d = DEFINITIONS.iter().find(|d| d.role == b.role)?;
    let scope = kv_scope(v, &b.scope)?;
    Some(json!({
        "id": format!("/providers/Microsoft.Authorization/roleAssignments/{}", b.id),
        "name": b.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "scope": scope,
            "roleDefinitionId": definition_id(d),
            "principalId": b.principal,
        },
    }))
}

fn not_found(name: &str) -> KvError {
    KvError(Error::new(
        ErrorCode::RoleBindingNotFound,
        format!("this vault has no role assignment {name:?}"),
    ))
}

/// The body of a role assignment PUT.
#[derive(Debug, Deserialize)]
pub struct AssignmentBody {
    properties: AssignmentProperties,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentProperties {
    role_definition_id: String,
    principal_id: String,
}

fn list_definitions(uri: &Uri) -> KvResult<Json<Value>> {
    let filter = form_urlencoded_get(uri.query().unwrap_or(""), "$filter");
    let wanted = match filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(f) => Some(
            f.strip_prefix("roleName eq '")
                .and_then(|r| r.strip_suffix('\''))
                .ok_or_else(|| KvError::bad("$filter supports roleName eq '<name>' only"))?
                .to_owned(),
        ),
    };
    let value: Vec<Value> = DEFINITIONS
        .iter()
        .filter(|d| wanted.as_deref().is_none_or(|w| w == d.name))
        .map(definition_json)
        .collect();
    Ok(Json(json!({ "value": value })))
}

async fn create(
    s: &AppState,
    v: &Vault,
    p: &crate::services::auth::Principal,
    scope: Scope,
    name: &str,
    body: AssignmentBody,
) -> KvResult<Response> {
    let d = definition(&body.properties.role_definition_id)?;
    let b = s
        .sovra
        .access()
        .create_role_binding(
            p,
            NewBinding {
                principal: body.properties.principal_id,
                role: d.role,
                scope: scope.sovra(v)?,
                id: Some(name.to_owned()),
            },
        )
        .await?;
    let out = assignment_json(v, &b).ok_or_else(|| not_found(name))?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn find(
    s: &AppState,
    v: &Vault,
    p: &crate::services::auth::Principal,
    scope: &Scope,
    name: &str,
) -> KvResult<(RoleBindingRec, Value)> {
    let b = s
        .sovra
        .access()
        .find_role_binding(p, name)
        .await
        .map_err(|e| match e.code {
            ErrorCode::RoleBindingNotFound => not_found(name),
            _ => KvError(e),
        })?;
    if !scope.lists(v, &b.scope) {
        return Err(not_found(name));
    }
    let j = assignment_json(v, &b).ok_or_else(|| not_found(name))?;
    Ok((b, j))
}

async fn list(
    s: &AppState,
    v: &Vault,
    p: &crate::services::auth::Principal,
    scope: &Scope,
    uri: &Uri,
) -> KvResult<Json<Value>> {
    let filter = form_urlencoded_get(uri.query().unwrap_or(""), "$filter");
    let principal = match filter.as_deref().map(str::trim) {
        None | Some("") | Some("atScope()") => None,
        Some(f) => Some(
            f.strip_prefix("principalId eq '")
                .and_then(|r| r.strip_suffix('\''))
                .ok_or_else(|| {
                    KvError::bad("$filter supports atScope() and principalId eq '<id>' only")
                })?
                .to_owned(),
        ),
    };
    let bindings = s
        .sovra
        .access()
        .list_role_bindings(p, principal.as_deref())
        .await?;
    let value: Vec<Value> = bindings
        .iter()
        .filter(|b| scope.lists(v, &b.scope))
        .filter_map(|b| assignment_json(v, b))
        .collect();
    Ok(Json(json!({ "value": value })))
}

// The routes: the same operations at the vault (`/`, `/keys`) and at a key.

/// `GET /{scope}/providers/Microsoft.Authorization/roleDefinitions` (vault scopes).
pub async fn definitions(vault: Vault, KvCaller(_): KvCaller, uri: Uri) -> KvResult<Json<Value>> {
    let _ = vault;
    list_definitions(&uri)
}

/// The same, at a key.
pub async fn key_definitions(
    vault: Vault,
    KvCaller(_): KvCaller,
    KvPath(key): KvPath<String>,
    uri: Uri,
) -> KvResult<Json<Value>> {
    vault.key(&key)?;
    list_definitions(&uri)
}

/// `GET …/roleDefinitions/{id}`.
pub async fn get_definition(
    _vault: Vault,
    KvCaller(_): KvCaller,
    KvPath(id): KvPath<String>,
) -> KvResult<Json<Value>> {
    Ok(Json(definition_json(definition(&id)?)))
}

/// The same, at a key.
pub async fn get_key_definition(
    vault: Vault,
    KvCaller(_): KvCaller,
    KvPath((key, id)): KvPath<(String, String)>,
) -> KvResult<Json<Value>> {
    vault.key(&key)?;
    Ok(Json(definition_json(definition(&id)?)))
}

/// `PUT`/`DELETE …/roleDefinitions/{id}`: custom roles are not offered.
pub async fn change_definition(_vault: Vault, KvCaller(_): KvCaller) -> KvResult<Json<Value>> {
    Err(KvError::unsupported(
        "custom role definitions are not offered: Sovra's roles are fixed (docs/azure.md)",
    ))
}

/// `PUT /{scope}/providers/Microsoft.Authorization/roleAssignments/{name}` (vault scopes).
pub async fn create_assignment(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(name): KvPath<String>,
    KvJson(body): KvJson<AssignmentBody>,
) -> KvResult<Response> {
    create(&s, &vault, &p, Scope::Vault, &name, body).await
}

/// The same, at a key.
pub async fn create_key_assignment(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath((key, name)): KvPath<(String, String)>,
    KvJson(body): KvJson<AssignmentBody>,
) -> KvResult<Response> {
    create(&s, &vault, &p, Scope::Key(key), &name, body).await
}

/// `GET …/roleAssignments/{name}` (vault scopes).
pub async fn get_assignment(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(name): KvPath<String>,
) -> KvResult<Json<Value>> {
    Ok(Json(find(&s, &vault, &p, &Scope::Vault, &name).await?.1))
}

/// The same, at a key.
pub async fn get_key_assignment(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath((key, name)): KvPath<(String, String)>,
) -> KvResult<Json<Value>> {
    Ok(Json(find(&s, &vault, &p, &Scope::Key(key), &name).await?.1))
}

async fn delete(
    s: &AppState,
    v: &Vault,
    p: &crate::services::auth::Principal,
    scope: Scope,
    name: &str,
) -> KvResult<Json<Value>> {
    let (b, j) = find(s, v, p, &scope, name).await?;
    s.sovra
        .access()
        .delete_role_binding(p, &b.principal, &b.id)
        .await?;
    Ok(Json(j))
}

/// `DELETE …/roleAssignments/{name}` (vault scopes).
pub async fn delete_assignment(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(name): KvPath<String>,
) -> KvResult<Json<Value>> {
    delete(&s, &vault, &p, Scope::Vault, &name).await
}

/// The same, at a key.
pub async fn delete_key_assignment(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath((key, name)): KvPath<(String, String)>,
) -> KvResult<Json<Value>> {
    delete(&s, &vault, &p, Scope::Key(key), &name).await
}

/// `GET …/roleAssignments` (vault scopes).
pub async fn assignments(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    uri: Uri,
) -> KvResult<Json<Value>> {
    list(&s, &vault, &p, &Scope::Vault, &uri).await
}

/// The same, at a key.
pub async fn key_assignments(
    State(s): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(key): KvPath<String>,
    uri: Uri,
) -> KvResult<Json<Value>> {
    vault.key(&key)?;
    list(&s, &vault, &p, &Scope::Key(key), &uri).await
}
