//! Handlers of the administration API: tokens, role bindings, quotas, settings, audit.

use super::AppState;
use super::extract::{Caller, JsonBody, PathParams, QueryParams};
use super::response::{Json, no_content};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::model::{RoleBindingRec, SettingsRec, TokenRec};
use crate::services::access::{NewBinding, NewToken};
use crate::services::authz::Permission;
use crate::services::quota::{Limits, PrincipalQuota};
use crate::services::settings::SettingsChanges;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sovra_proto::admin::*;
use sovra_proto::duration;

fn token_info(t: &TokenRec) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        principal: t.principal.clone(),
        description: t.description.clone(),
        create_time: rfc3339(t.create_time),
        expire_time: t.expire_time.map(rfc3339),
        revoked: t.revoked,
    }
}

fn binding(b: &RoleBindingRec) -> RoleBinding {
    RoleBinding {
        id: b.id.clone(),
        principal: b.principal.clone(),
        role: b.role,
        scope: b.scope.clone(),
        create_time: rfc3339(b.create_time),
    }
}

/// `POST /v1/tokens`.
pub async fn create_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(b): JsonBody<CreateTokenRequest>,
) -> Result<Json<CreateTokenResponse>> {
    let ttl = b
        .ttl
        .as_deref()
        .map(|t| duration::parse(t).map_err(|e| Error::invalid(format!("ttl: {e}"))))
        .transpose()?;
    let new = NewToken {
        principal: b.principal,
        description: b.description,
        ttl,
    };
    let issued = s.sovra.access().create_token(&p, new).await?;
    Ok(Json(CreateTokenResponse {
        token: issued.token.as_str().to_owned(),
        info: token_info(&issued.info),
    }))
}

/// `GET /v1/tokens`.
pub async fn list_tokens(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<ListTokensResponse>> {
    Ok(Json(ListTokensResponse {
        tokens: s
            .sovra
            .access()
            .list_tokens(&p)
            .await?
            .iter()
            .map(token_info)
            .collect(),
    }))
}

/// `DELETE /v1/tokens/{id}`.
pub async fn revoke_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<TokenInfo>> {
    Ok(Json(token_info(
        &s.sovra.access().revoke_token(&p, &id).await?,
    )))
}

/// `?principal=`.
#[derive(Debug, Deserialize)]
pub struct PrincipalQuery {
    principal: Option<String>,
}

/// `POST /v1/roleBindings`.
pub async fn create_role_binding(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(b): JsonBody<CreateRoleBindingRequest>,
) -> Result<Json<RoleBinding>> {
    let new = NewBinding {
        principal: b.principal,
        role: b.role,
        scope: b.scope,
        id: None,
    };
    Ok(Json(binding(
        &s.sovra.access().create_role_binding(&p, new).await?,
    )))
}

/// `GET /v1/roleBindings`.
pub async fn list_role_bindings(
    State(s): State<AppState>,
    Caller(p): Caller,
    QueryParams(q): QueryParams<PrincipalQuery>,
) -> Result<Json<ListRoleBindingsResponse>> {
    Ok(Json(ListRoleBindingsResponse {
        role_bindings: s
            .sovra
            .access()
            .list_role_bindings(&p, q.principal.as_deref())
            .await?
            .iter()
            .map(binding)
            .collect(),
    }))
}

/// `DELETE /v1/roleBindings/{principal}/{id}`.
pub async fn delete_role_binding(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((principal, id)): PathParams<(String, String)>,
) -> Result<Response> {
    s.sovra
        .access()
        .delete_role_binding(&p, &principal, &id)
        .await?;
    Ok(no_content())
}

fn quota(q: PrincipalQuota) -> Quota {
    Quota {
        principal: q.principal,
        symmetric_per_minute: q.limits.symmetric_per_minute,
        asymmetric_per_minute: q.limits.asymmetric_per_minute,
        default: q.default,
    }
}

/// `GET /v1/quotas/{principal}`.
pub async fn get_quota(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(principal): PathParams<String>,
) -> Result<Json<Quota>> {
    Ok(Json(quota(
        s.sovra.quotas().get_quota(&p, &principal).await?,
    )))
}

/// `PUT /v1/quotas/{principal}`.
pub async fn set_quota(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(principal): PathParams<String>,
    JsonBody(b): JsonBody<SetQuotaRequest>,
) -> Result<Json<Quota>> {
    let limits = Limits {
        symmetric_per_minute: b.symmetric_per_minute,
        asymmetric_per_minute: b.asymmetric_per_minute,
    };
    Ok(Json(quota(
        s.sovra.quotas().set_quota(&p, &principal, limits).await?,
    )))
}

fn settings(s: &SettingsRec) -> Settings {
    Settings {
        default_location: s.default_location.clone(),
        min_destroy_scheduled_duration: duration::format(s.min_destroy_scheduled_duration),
        default_destroy_scheduled_duration: duration::format(s.default_destroy_scheduled_duration),
        require_disable_before_destroy: s.require_disable_before_destroy,
    }
}

/// `GET /v1/settings`.
pub async fn get_settings(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<Settings>> {
    Ok(Json(settings(&s.sovra.settings().get_settings(&p).await?)))
}

/// `PATCH /v1/settings`.
pub async fn update_settings(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(b): JsonBody<UpdateSettingsRequest>,
) -> Result<Json<Settings>> {
    let seconds = |v: &Option<String>, field: &str| {
        v.as_deref()
            .map(|v| duration::parse(v).map_err(|e| Error::invalid(format!("{field}: {e}"))))
            .transpose()
    };
    let changes = SettingsChanges {
        min_destroy_scheduled_duration: seconds(
            &b.min_destroy_scheduled_duration,
            "minDestroyScheduledDuration",
        )?,
        default_destroy_scheduled_duration: seconds(
            &b.default_destroy_scheduled_duration,
            "defaultDestroyScheduledDuration",
        )?,
        require_disable_before_destroy: b.require_disable_before_destroy,
    };
    Ok(Json(settings(
        &s.sovra.settings().update_settings(&p, changes).await?,
    )))
}

/// The caller and its role bindings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    principal: String,
    token_id: String,
    role_bindings: Vec<RoleBinding>,
}

/// `GET /v1/whoami`.
pub async fn whoami(Caller(p): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        principal: p.name.to_string(),
        token_id: p.token_id.to_string(),
        role_bindings: p
            .bindings()
            .iter()
            .map(|b| RoleBinding {
                id: b.id.clone(),
                principal: b.principal.clone(),
                role: b.role,
                scope: b.scope.clone(),
                create_time: crate::clock::rfc3339(b.create_time),
            })
            .collect(),
    })
}

/// `?fromSeq=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    from_seq: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/audit`: records as JSON lines.
pub async fn export_audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response> {
    s.sovra
        .auth()
        .authorize(&p, Permission::AuditRead, "*")
        .await?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(crate::error::Error::invalid(
            "limit must be between 1 and 10000 records",
        ));
    }
    if q.from_seq == Some(0) {
        return Err(crate::error::Error::invalid(
            "fromSeq starts at 1, the first record",
        ));
    }
    let records = s
        .sovra
        .audit()
        .export(q.from_seq.unwrap_or(1).max(1), limit)
        .await?;
    let mut body = String::new();
    for r in records {
        body.push_str(&serde_json::to_string(&r).unwrap_or_default());
        body.push('\n');
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response())
}

/// `GET /v1/audit:verify`.
pub async fn verify_audit(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<AuditVerifyReport>> {
    s.sovra
        .auth()
        .authorize(&p, Permission::AuditRead, "*")
        .await?;
    let c = s.sovra.audit().verify().await?;
    Ok(Json(AuditVerifyReport {
        records: c.records,
        ok: c.first_broken.is_none(),
        first_broken_seq: c.first_broken.as_ref().map(|b| b.0),
        problem: c.first_broken.map(|b| b.1),
        head_hash: sovra_proto::hex::encode(&c.head),
    }))
}

/// `GET /v1/audit:checkpoint`: the sealed checkpoint of the log's head (sequence number and
/// hash), also signed by the token key (`signed`, a JWS verifiable with `/certs`) for
/// anchoring outside this deployment.
pub async fn audit_checkpoint(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<serde_json::Value>> {
    s.sovra
        .auth()
        .authorize(&p, Permission::AuditRead, "*")
        .await?;
    let Some(cp) = s.sovra.audit().checkpoint()? else {
        return Err(crate::error::Error::new(
            sovra_proto::ErrorCode::Unavailable,
            "no audit checkpoint yet (this deployment keeps none, or has not taken the first)",
        ));
    };
    let mut body = serde_json::Map::new();
    body.insert("seq".into(), cp.seq.into());
    body.insert("hash".into(), sovra_proto::hex::encode(&cp.hash).into());
    body.insert("time".into(), crate::clock::rfc3339(cp.time).into());
    body.insert("iss".into(), s.sovra.public_url().into());
    let keys = s.sovra.attest().management_signing_keys().await?;
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), "sovra-audit-checkpoint+jwt".into());
    let signed = keys
        .active
        .sign_bytes(
            &header,
            serde_json::Value::Object(body.clone())
                .to_string()
                .as_bytes(),
            false,
        )
        .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    body.insert("signed".into(), signed.into());
    Ok(Json(serde_json::Value::Object(body)))
}

/// `POST /v1/securityDomain:download`: the security domain, encrypted so that a quorum of the
/// given administrators' certificates opens it (Administrator).
pub async fn download_security_domain(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(b): JsonBody<sovra_proto::security_domain::DownloadSecurityDomainRequest>,
) -> Result<Json<sovra_proto::security_domain::SecurityDomain>> {
    Ok(Json(
        s.sovra
            .security_domains()
            .download(&p, &b.certificates, b.quorum)
            .await?,
    ))
}
