//! Health, readiness, metrics and the OpenAPI document.

use super::AppState;
use super::extract::Caller;
use crate::error::{Error, Result};
use crate::services::authz::Permission;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sovra_proto::ErrorCode;
use std::sync::atomic::Ordering;

/// `GET /healthz`: the process is up.
/// `GET /v1/unseal` on a running node: it is not sealed. (A node sealed by a quorum answers
/// this route, and `POST` shares to it, before it starts: `crate::unseal`.)
pub async fn unseal_status() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "{\"sealed\":false,\"quorum\":0,\"received\":0}",
    )
        .into_response()
}

/// `GET /healthz`.
pub async fn healthz() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "{\"status\":\"ok\"}",
    )
        .into_response()
}

/// `GET /readyz`: the store answers and the server is not shutting down; warnings about the
/// trust configuration (operator anchors active) ride along.
pub async fn readyz(State(s): State<AppState>) -> Result<Response> {
    if !s.ready.load(Ordering::Relaxed) {
        return Err(Error::new(
            ErrorCode::Unavailable,
            "the server is shutting down",
        ));
    }
    s.sovra.store().ping().await?;
    let warnings = s.sovra.trust().trust_warnings().await?;
    let body = if warnings.is_empty() {
        serde_json::json!({"status": "ready"})
    } else {
        serde_json::json!({"status": "ready", "warnings": warnings})
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response())
}

/// `GET /metrics`: Prometheus text format (needs the audit.read permission).
pub async fn metrics(State(s): State<AppState>, Caller(p): Caller) -> Result<Response> {
    s.sovra
        .auth()
        .authorize(&p, Permission::AuditRead, "*")
        .await?;
    let body = s.metrics.render();
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response())
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::OPENAPI,
    )
        .into_response()
}
