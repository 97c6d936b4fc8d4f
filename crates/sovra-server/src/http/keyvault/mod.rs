//! The Azure Key Vault / Managed HSM keys API (`/keys`, `/deletedkeys`, `/rng`), on the same
//! listener as the native API: unmodified Azure SDKs point at Sovra's URL and work. A request's
//! host names the vault, which is a key ring (docs/azure.md has the mapping of vaults, keys,
//! versions, algorithms and roles). Handlers translate to the native services and back; the
//! errors are Key Vault's shape, `{"error": {"code", "message", "innererror": {"code"}}}`, with
//! Sovra's stable code as the inner code.

mod byok;
mod crypto;
mod keys;
mod lifecycle;
mod rbac;
mod rotation;
mod wire;

use super::AppState;
use crate::error::Error;
use crate::services::auth::Principal;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use serde::de::DeserializeOwned;
use sovra_proto::ErrorCode;
use sovra_proto::names::{KeyRingName, LocationName};
use std::collections::BTreeMap;

/// Whether a route (or OpenAPI path) belongs to the Key Vault API.
pub fn is_keyvault_path(path: &str) -> bool {
    path == "/keys"
        || path == "/deletedkeys"
        || path == "/rng"
        || path.starts_with("/keys/")
        || path.starts_with("/deletedkeys/")
        || path.starts_with(RBAC)
}

/// Where Managed HSM's role definitions and assignments live (below a scope).
const RBAC: &str = "/providers/Microsoft.Authorization/";

/// The api-versions served (the SDKs' current default first).
pub const API_VERSIONS: &[&str] = &["2025-07-01", "7.6", "7.5", "7.4"];

/// The vaults this node serves: the default key ring and any named by host.
#[derive(Debug, Clone)]
pub struct Vaults {
    location: String,
    default_ring: String,
    by_host: BTreeMap<String, String>,
}

impl Vaults {
    /// From the configuration.
    pub fn new(cfg: &crate::config::Config) -> Self {
        Self {
            location: cfg.default_location.clone(),
            default_ring: cfg.keyvault.key_ring.clone(),
            by_host: cfg
                .keyvault
                .vaults
                .iter()
                .map(|(h, r)| (h.to_ascii_lowercase(), r.clone()))
                .collect(),
        }
    }
}

/// A Key Vault error: the native error in Key Vault's body shape.
#[derive(Debug)]
pub struct KvError(pub Error);

impl From<Error> for KvError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// Shorthand for handlers.
pub type KvResult<T> = Result<T, KvError>;

impl KvError {
    fn bad(message: impl Into<String>) -> Self {
        Self(Error::invalid(message))
    }

    fn unsupported(message: impl Into<String>) -> Self {
        Self(Error::new(ErrorCode::OperationUnsupported, message))
    }
}

/// Key Vault's error code for a native one: what the SDKs map to their exception types.
fn kv_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::KeyNotFound | ErrorCode::KeyVersionNotFound | ErrorCode::KeyRingNotFound => {
            "KeyNotFound"
        }
        ErrorCode::Unauthenticated | ErrorCode::TokenInvalid => "Unauthorized",
        ErrorCode::PermissionDenied => "Forbidden",
        ErrorCode::AlreadyExists | ErrorCode::Conflict | ErrorCode::KeyDeleted => "Conflict",
        ErrorCode::PurgeProtected => "Forbidden",
        ErrorCode::QuotaExceeded => "Throttled",
        ErrorCode::PayloadTooLarge => "RequestTooLarge",
        ErrorCode::KeyVersionNotEnabled
        | ErrorCode::KeyVersionDestroyed
        | ErrorCode::KeyVersionExpired
        | ErrorCode::KeyVersionNotYetValid
        | ErrorCode::KeyOperationNotAllowed => "Forbidden",
        ErrorCode::OperationUnsupported => "NotSupported",
        c => match c.http_status() {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            400..=499 => "BadParameter",
            503 => "ServiceUnavailable",
            _ => "InternalServerError",
        },
    }
}

impl IntoResponse for KvError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let Some(detail) = &e.internal {
            tracing::error!(code = %e.code, detail = %detail, "request failed");
        }
        // A disabled key, or an operation its key_ops leave out, is forbidden to use in Key
        // Vault (403), not a bad request.
        let status = match e.code {
            ErrorCode::KeyVersionNotEnabled
            | ErrorCode::KeyVersionDestroyed
            | ErrorCode::KeyVersionExpired
            | ErrorCode::KeyVersionNotYetValid
            | ErrorCode::KeyOperationNotAllowed => 403,
            c => c.http_status(),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({"error": {
            "code": kv_code(e.code),
            "message": e.message,
            "innererror": {"code": e.code.as_str()},
        }});
        let mut resp = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            body.to_string(),
        )
            .into_response();
        if let Some(secs) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The vault a request addresses, and how its identifiers are written.
#[derive(Debug, Clone)]
pub struct Vault {
    /// The key ring that is the vault.
    pub ring: KeyRingName,
    /// `https://host[:port]` as the client wrote it: every `kid` and `nextLink` starts with it,
    /// so the SDK's follow-up calls come back to the same vault.
    pub base: String,
    /// The api-version the request asked for.
    pub api_version: &'static str,
}

/// The request's host (`Host`, or the authority of an HTTP/2 request), checked to be a host
/// name or address with an optional port.
fn request_host(parts: &Parts) -> KvResult<String> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
        .ok_or_else(|| {
            KvError::bad("the request has no Host header; send the vault's host name")
        })?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !ok {
        return Err(KvError::bad(
            "the Host header is not a host name (with an optional port)",
        ));
    }
    Ok(host.to_ascii_lowercase())
}

/// The host name without its port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h.get(1..).unwrap_or(h));
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// What the 401 challenge names as the resource a token is for: the parent domain of a vault
/// host like `kv1.vault.example` (so the SDKs' default `verify_challenge_resource` check holds),
/// else the host itself.
fn challenge_resource(host: &str) -> String {
    let name = host_name(host);
    let is_ip = name.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    if !is_ip
        && name.matches('.').count() >= 2
        && let Some((_, parent)) = host.split_once('.')
    {
        return format!("https://{parent}");
    }
    format!("https://{host}")
}

impl FromRequestParts<AppState> for Vault {
    type Rejection = KvError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> KvResult<Self> {
        let host = request_host(parts)?;
        let query = parts.uri.query().unwrap_or("");
        let asked = form_urlencoded_get(query, "api-version");
        let api_version = match asked.as_deref() {
            None => {
                return Err(KvError::bad(format!(
                    "the api-version query parameter is required; this vault serves {}",
                    API_VERSIONS.join(", ")
                )));
            }
            Some(v) => API_VERSIONS
                .iter()
                .copied()
                .find(|a| *a == v)
                .ok_or_else(|| {
                    KvError::bad(format!(
                        "api-version {v:?} is not served; use one of {}",
                        API_VERSIONS.join(", ")
                    ))
                })?,
        };
        let v = &state.vaults;
        let ring_id = v
            .by_host
            .get(host_name(&host))
            .unwrap_or(&v.default_ring)
            .clone();
        let ring = LocationName::new(&v.location)
            .and_then(|l| l.key_ring(&ring_id))
            .map_err(Error::from)?;
        Ok(Vault {
            ring,
            base: format!("https://{host}"),
            api_version,
        })
    }
}

/// The first value of `key` in a query string, percent-decoded.
fn form_urlencoded_get(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|x| char::from(*x).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The authenticated caller of a Key Vault request. Without a valid token the answer is the
/// 401 challenge the SDKs expect on their first request (which carries no body), before any
/// body is read.
pub struct KvCaller(pub Principal);

impl FromRequestParts<AppState> for KvCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match super::limit::authenticate(parts, state).await {
            Ok(p) => Ok(KvCaller(p)),
            Err(e) if matches!(e.code, ErrorCode::Unauthenticated | ErrorCode::TokenInvalid) => {
                let host = request_host(parts).unwrap_or_else(|_| "localhost".into());
                let mut resp = KvError(e).into_response();
                let challenge = format!(
                    "Bearer authorization=\"https://{host}/sovra\", resource=\"{}\"",
                    challenge_resource(&host)
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                Err(resp)
            }
            Err(e) => Err(KvError(e).into_response()),
        }
    }
}

/// A JSON body in Key Vault's shape of error. Unknown members are ignored, as Key Vault does
/// (newer SDKs send members older api-versions lack).
pub struct KvJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for KvJson<T> {
    type Rejection = KvError;

    async fn from_request(req: Request, state: &AppState) -> KvResult<Self> {
        let bytes = super::extract::body_bytes(req, state).await?;
        Ok(KvJson(super::extract::parse_json(&bytes)?))
    }
}

/// A path parameter set in Key Vault's shape of error.
pub struct KvPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for KvPath<T> {
    type Rejection = KvError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> KvResult<Self> {
        let super::extract::PathParams(p) =
            super::extract::PathParams::<T>::from_request_parts(parts, state).await?;
        Ok(KvPath(p))
    }
}

/// The query parameters of a listing: `maxresults` (1–25) and `$skiptoken`.
fn paging(parts_query: Option<&str>) -> KvResult<(usize, Option<String>)> {
    let q = parts_query.unwrap_or("");
    let max = match form_urlencoded_get(q, "maxresults") {
        None => 25,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n,
            _ => return Err(KvError::bad("maxresults must be an integer from 1 to 25")),
        },
    };
    let token = form_urlencoded_get(q, "$skiptoken").filter(|t| !t.is_empty());
    if token
        .as_deref()
        .is_some_and(|t| sovra_proto::b64::decode(t).is_err())
    {
        return Err(KvError::bad(
            "$skiptoken is not a token this vault issued; follow the previous page's nextLink",
        ));
    }
    Ok((max, token))
}

/// Every Key Vault route (axum syntax), for the router and the OpenAPI test. The empty version
/// segment (`/keys/{name}/`, `/keys/{name}//encrypt`) means the key's current version.
pub fn routes() -> Vec<(String, MethodRouter<AppState>)> {
    let mut r: Vec<(String, MethodRouter<AppState>)> = vec![
        ("/keys".into(), get(keys::list_keys)),
        ("/keys/restore".into(), post(lifecycle::restore)),
        (
            "/keys/{name}".into(),
            put(keys::import)
                .delete(lifecycle::delete)
                .get(keys::get_current),
        ),
        (
            "/keys/{name}/".into(),
            get(keys::get_current).patch(keys::update_current),
        ),
        ("/keys/{name}/create".into(), post(keys::create)),
        ("/keys/{name}/rotate".into(), post(keys::rotate)),
        ("/keys/{name}/backup".into(), post(lifecycle::backup)),
        ("/keys/{name}/versions".into(), get(keys::list_versions)),
        (
            "/keys/{name}/rotationpolicy".into(),
            get(rotation::get_rotation_policy).put(rotation::set_rotation_policy),
        ),
        (
            "/keys/{name}/{version}".into(),
            get(keys::get_version).patch(keys::update_version),
        ),
        ("/deletedkeys".into(), get(lifecycle::list_deleted)),
        (
            "/deletedkeys/{name}".into(),
            get(lifecycle::get_deleted).delete(lifecycle::purge),
        ),
        (
            "/deletedkeys/{name}/recover".into(),
            post(lifecycle::recover),
        ),
        ("/rng".into(), post(crypto::random)),
    ];
    let ops: [(&str, MethodRouter<AppState>); 6] = [
        ("encrypt", post(crypto::encrypt)),
        ("decrypt", post(crypto::decrypt)),
        ("wrapkey", post(crypto::wrap_key)),
        ("unwrapkey", post(crypto::unwrap_key)),
        ("sign", post(crypto::sign)),
        ("verify", post(crypto::verify)),
    ];
    // `/keys/{name}/{op}` too: what the empty version segment becomes when a client or proxy
    // collapses `//` (a version is a number, never an operation's name).
    for (op, h) in ops {
        r.push((format!("/keys/{{name}}/{{version}}/{op}"), h.clone()));
        r.push((format!("/keys/{{name}}//{op}"), h.clone()));
        r.push((format!("/keys/{{name}}/{op}"), h));
    }
    // Managed HSM local RBAC, at the vault (`/`, `/keys`) and at a key.
    for vault in ["", "/keys"] {
        r.push((
            format!("{vault}{RBAC}roleDefinitions"),
            get(rbac::definitions),
        ));
        r.push((
            format!("{vault}{RBAC}roleDefinitions/{{id}}"),
            get(rbac::get_definition)
                .put(rbac::change_definition)
                .delete(rbac::change_definition),
        ));
        r.push((
            format!("{vault}{RBAC}roleAssignments"),
            get(rbac::assignments),
        ));
        r.push((
            format!("{vault}{RBAC}roleAssignments/{{name}}"),
            get(rbac::get_assignment)
                .put(rbac::create_assignment)
                .delete(rbac::delete_assignment),
        ));
    }
    r.push((
        format!("/keys/{{key}}{RBAC}roleDefinitions"),
        get(rbac::key_definitions),
    ));
    r.push((
        format!("/keys/{{key}}{RBAC}roleDefinitions/{{id}}"),
        get(rbac::get_key_definition)
            .put(rbac::change_definition)
            .delete(rbac::change_definition),
    ));
    r.push((
        format!("/keys/{{key}}{RBAC}roleAssignments"),
        get(rbac::key_assignments),
    ));
    r.push((
        format!("/keys/{{key}}{RBAC}roleAssignments/{{name}}"),
        get(rbac::get_key_assignment)
            .put(rbac::create_key_assignment)
            .delete(rbac::delete_key_assignment),
    ));
    for version in ["{version}/", "/", ""] {
        r.push((
            format!("/keys/{{name}}/{version}release"),
            post(crypto::release),
        ));
        r.push((
            format!("/keys/{{name}}/{version}attestation"),
            get(keys::attestation),
        ));
    }
    r
}
