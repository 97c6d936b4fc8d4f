//! Request extraction that turns every client mistake into a JSON error with a stable code:
//! the caller (bearer token), JSON bodies (size limit, syntax, types, unknown fields), path and
//! query parameters.

use super::AppState;
use crate::error::Error;
use crate::services::auth::Principal;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sovra_proto::ErrorCode;

/// The authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        state.sovra.auth().authenticate(header).await.map(Caller)
    }
}

/// Parses a JSON body into `T`, naming the offending field on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = inner.to_string();
        let msg = if path == "." || path.is_empty() {
            format!("invalid JSON body: {what}")
        } else {
            format!("invalid JSON body at {path}: {what}")
        };
        Error::new(ErrorCode::InvalidJson, msg)
    })
}

/// A JSON body, limited in size by the router's body limit.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The raw body bytes, with the size limit mapped to `PAYLOAD_TOO_LARGE`.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<axum::body::Bytes, Error> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "the request body is larger than the limit of {} bytes",
                        state.max_body
                    ),
                )
            } else {
                Error::new(ErrorCode::InvalidJson, "the request body could not be read")
            }
        })
}

/// Path parameters.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<T> {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| {
                Error::new(
                    ErrorCode::InvalidName,
                    format!("invalid path: {}", e.body_text()),
                )
            })
    }
}

/// Query parameters.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("invalid query string: {}", e.body_text()),
                )
            })
    }
}
