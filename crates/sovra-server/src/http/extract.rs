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
        super::limit::authenticate(parts, state).await.map(Caller)
    }
}

/// Parses a JSON body into `T`, naming the offending field on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    // Every JSON body is an object: serde would also read a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::new(
            ErrorCode::InvalidJson,
            "the request body must be a JSON object ({...})",
        ));
    }
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

/// A raw body within the API limit (`limits.max_body_bytes`).
pub struct RawBody(pub axum::body::Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        body_bytes(req, state).await.map(RawBody)
    }
}

/// What a body's `Content-Type` may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json` or `application/*+json`.
    Json,
    /// A JWS or policy text: `text/plain`, `application/jose`, `application/jwt`, or JSON (a
    /// quoted JWS).
    Text,
}

/// Refuses a request whose `Content-Type` is not `media` (a missing header is accepted: the
/// route says what it takes).
pub fn check_media(headers: &axum::http::HeaderMap, media: Media) -> Result<(), Error> {
    let Some(v) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mt = v
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json =
        mt == "application/json" || (mt.starts_with("application/") && mt.ends_with("+json"));
    let ok = match media {
        Media::Json => json,
        Media::Text => {
            json || matches!(
                mt.as_str(),
                "text/plain" | "application/jose" | "application/jwt"
            )
        }
    };
    if ok {
        return Ok(());
    }
    let want = match media {
        Media::Json => "application/json",
        Media::Text => "text/plain (or application/json with the JWS as a JSON string)",
    };
    Err(Error::new(
        ErrorCode::UnsupportedMediaType,
        format!("this route takes Content-Type {want}, not {mt:?}"),
    ))
}

/// The raw body bytes (JSON), with the size limit mapped to `PAYLOAD_TOO_LARGE`.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<axum::body::Bytes, Error> {
    check_media(req.headers(), Media::Json)?;
    let limit = state.max_body;
    read_limited(req, limit, state.body_timeout, || {
        Error::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    })
    .await
}

/// Reads a body of at most `limit` bytes, all of it within `deadline`. Past the limit the rest
/// is read and dropped (up to a bound) before `too_large` is answered, so the client sees the
/// 413 rather than a connection closed under its upload (a broken pipe, without the answer).
pub async fn read_limited(
    req: Request,
    limit: usize,
    deadline: std::time::Duration,
    too_large: impl FnOnce() -> Error,
) -> Result<axum::body::Bytes, Error> {
    match tokio::time::timeout(deadline, read_limited_inner(req, limit, too_large)).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} s (limits.body_timeout_secs); send it at once",
                deadline.as_secs()
            ),
        )),
    }
}

async fn read_limited_inner(
    req: Request,
    limit: usize,
    too_large: impl FnOnce() -> Error,
) -> Result<axum::body::Bytes, Error> {
    use http_body_util::BodyExt;
    const DRAIN_MAX: usize = 64 << 20;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            Error::new(ErrorCode::InvalidJson, "the request body could not be read")
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_MAX {
                break;
            }
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(axum::body::Bytes::from(buf))
}

/// A text body (a JWS or policy text) within the API limit.
pub struct TextBody(pub axum::body::Bytes);

impl FromRequest<AppState> for TextBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_media(req.headers(), Media::Text)?;
        let limit = state.max_body;
        read_limited(req, limit, state.body_timeout, || {
            Error::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        })
        .await
        .map(TextBody)
    }
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
