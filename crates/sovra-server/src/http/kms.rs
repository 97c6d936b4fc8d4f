//! Handlers of the key-management API (`/v1/locations/...`). Each extracts, calls one service
//! method, and returns its result; custom verbs (`…/{key}:encrypt`) are dispatched here.

use super::AppState;
use super::extract::{Caller, JsonBody, PathParams, QueryParams, body_bytes, parse_json};
use super::response::Json;
use super::{kms_wire, ops_wire, release_wire};
use crate::error::{Error, Result};
use crate::services::keys::Page;
use crate::services::ops::Target;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sovra_proto::ErrorCode;
use sovra_proto::kms::*;
use sovra_proto::names::{CryptoKeyName, KeyRingName, LocationName, VersionName};

/// `?pageSize=&pageToken=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

impl From<PageQuery> for Page {
    fn from(q: PageQuery) -> Self {
        Page {
            size: q.page_size,
            token: q.page_token,
        }
    }
}

/// `?keyRingId=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRingIdQuery {
    key_ring_id: Option<String>,
}

/// `?cryptoKeyId=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyIdQuery {
    crypto_key_id: Option<String>,
}

/// `?importJobId=` of `POST .../importJobs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportJobIdQuery {
    import_job_id: Option<String>,
}

/// Body of `POST /v1/locations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLocationBody {
    location_id: String,
}

fn required(v: Option<String>, name: &str) -> Result<String> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid(format!("query parameter {name} is required")))
}

/// Splits `id:verb`.
fn split_verb(seg: &str) -> (&str, Option<&str>) {
    match seg.split_once(':') {
        Some((id, verb)) => (id, Some(verb)),
        None => (seg, None),
    }
}

fn no_verb(verb: Option<&str>) -> Result<()> {
    match verb {
        None => Ok(()),
        Some(v) => Err(Error::new(
            ErrorCode::RouteNotFound,
            format!("unknown method :{v} for this resource and HTTP method"),
        )),
    }
}

/// The custom methods (`{name}:{verb}`, POST) of a location.
pub const LOCATION_VERBS: &[&str] = &["generateRandomBytes"];

/// The custom methods of a crypto key.
pub const KEY_VERBS: &[&str] = &[
    "delete",
    "encrypt",
    "decrypt",
    "rotate",
    "updatePrimaryVersion",
    "asymmetricSign",
    "asymmetricVerify",
    "asymmetricDecrypt",
    "macSign",
    "macVerify",
    "wrapKey",
    "unwrapKey",
    "decryptTo",
    "generateDataKeyTo",
    "release",
];

/// The custom methods of a deleted key.
pub const DELETED_KEY_VERBS: &[&str] = &["recover", "purge"];

/// The custom methods of a key version.
pub const VERSION_VERBS: &[&str] = &[
    "destroy",
    "restore",
    "asymmetricSign",
    "asymmetricVerify",
    "asymmetricDecrypt",
    "macSign",
    "macVerify",
    "wrapKey",
    "unwrapKey",
    "release",
];

/// Refuses a verb the resource does not list (so every verb a handler dispatches is in its
/// list, and the OpenAPI test checks each list against the document).
fn listed_verb<'a>(verb: Option<&'a str>, allowed: &[&str]) -> Result<&'a str> {
    match verb {
        Some(v) if allowed.contains(&v) => Ok(v),
        v => Err(unknown_verb(v, allowed)),
    }
}

fn unknown_verb(verb: Option<&str>, allowed: &[&str]) -> Error {
    let allowed = allowed
        .iter()
        .map(|v| format!(":{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    match verb {
        Some(v) => Error::new(
            ErrorCode::RouteNotFound,
            format!("unknown method :{v}; this resource accepts {allowed}"),
        ),
        None => Error::new(
            ErrorCode::MethodNotAllowed,
            format!("POST on this resource needs a method: {allowed}"),
        ),
    }
}

fn key_name(loc: &str, ring: &str, key: &str) -> Result<CryptoKeyName> {
    Ok(LocationName::new(loc)?.key_ring(ring)?.crypto_key(key)?)
}

fn version_name(loc: &str, ring: &str, key: &str, v: &str) -> Result<VersionName> {
    Ok(key_name(loc, ring, key)?.version(sovra_proto::names::parse_version(v)?))
}

/// `GET /v1/keyAttestation/roots`: the owner root and this HSM's attestation certificate.
pub async fn key_attestation_roots(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<KeyAttestationRoots>> {
    let r = s.sovra.keys().attestation_roots(&p).await?;
    Ok(Json(KeyAttestationRoots {
        owner_root: r.owner_root,
        attestation_certificate: r.attestation_certificate,
    }))
}

/// `POST /v1/keyAttestation:rotate`: a new HSM attestation key (Administrator).
pub async fn rotate_key_attestation(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<RotateKeyAttestationResponse>> {
    Ok(Json(RotateKeyAttestationResponse {
        public_key_sha256: s.sovra.keys().rotate_attestation_key(&p).await?,
    }))
}

/// `POST /v1/keyAttestation:csr`: a CSR for this node's HSM attestation key.
pub async fn key_attestation_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<KeyAttestationCsr>> {
    Ok(Json(KeyAttestationCsr {
        csr: s.sovra.keys().attestation_csr(&p).await?,
    }))
}

/// `PUT /v1/keyAttestation/roots`: install an owner root held by the operator's CA.
pub async fn set_key_attestation_roots(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(req): JsonBody<SetKeyAttestationRootsRequest>,
) -> Result<Json<KeyAttestationRoots>> {
    let der = |field: &str, pem: &str| -> Result<Vec<u8>> {
        let certs = sovra_attest::x509::certs_from_pem_or_der(pem.as_bytes())
            .map_err(|e| Error::new(ErrorCode::InvalidArgument, format!("{field}: {e}")))?;
        match certs.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("{field} must hold exactly one PEM certificate"),
            )),
        }
    };
    let root = der("ownerRoot", &req.owner_root)?;
    let cert = der("attestationCertificate", &req.attestation_certificate)?;
    s.sovra
        .keys()
        .set_attestation_roots(&p, &root, &cert)
        .await?;
    key_attestation_roots(State(s), Caller(p)).await
}

/// `GET /v1/locations`.
pub async fn list_locations(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<ListLocationsResponse>> {
    Ok(Json(ListLocationsResponse {
        locations: s
            .sovra
            .keys()
            .list_locations(&p)
            .await?
            .iter()
            .map(kms_wire::location)
            .collect(),
    }))
}

/// `POST /v1/locations`.
pub async fn create_location(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(b): JsonBody<CreateLocationBody>,
) -> Result<Json<Location>> {
    Ok(Json(kms_wire::location(
        &s.sovra.keys().create_location(&p, &b.location_id).await?,
    )))
}

/// `GET /v1/locations/{loc}`.
pub async fn get_location(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(loc): PathParams<String>,
) -> Result<Json<Location>> {
    let (id, verb) = split_verb(&loc);
    no_verb(verb)?;
    Ok(Json(kms_wire::location(
        &s.sovra
            .keys()
            .get_location(&p, &LocationName::new(id)?)
            .await?,
    )))
}

/// `POST /v1/locations/{loc}:generateRandomBytes`.
pub async fn post_location(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(loc): PathParams<String>,
    req: Request,
) -> Result<Response> {
    let (id, verb) = split_verb(&loc);
    let loc = LocationName::new(id)?;
    match Some(listed_verb(verb, LOCATION_VERBS)?) {
        Some("generateRandomBytes") => {
            let body = parse_json(&body_bytes(req, &s).await?)?;
            Ok(
                Json(ops_wire::generate_random(s.sovra.crypto(), &p, &loc, &body).await?)
                    .into_response(),
            )
        }
        v => Err(unknown_verb(v, LOCATION_VERBS)),
    }
}

/// `GET /v1/locations/{loc}/keyRings`.
pub async fn list_key_rings(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(loc): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<ListKeyRingsResponse>> {
    Ok(Json(kms_wire::rings(
        &s.sovra
            .keys()
            .list_key_rings(&p, &LocationName::new(&loc)?, &q.into())
            .await?,
    )))
}

/// `POST /v1/locations/{loc}/keyRings?keyRingId=`.
pub async fn create_key_ring(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(loc): PathParams<String>,
    QueryParams(q): QueryParams<KeyRingIdQuery>,
    JsonBody(body): JsonBody<CreateKeyRingRequest>,
) -> Result<Json<KeyRing>> {
    let id = required(q.key_ring_id, "keyRingId")?;
    Ok(Json(kms_wire::ring(
        &s.sovra
            .keys()
            .create_key_ring(&p, &LocationName::new(&loc)?, &id, body.audit_data_access)
            .await?,
    )))
}

/// `GET /v1/locations/{loc}/keyRings/{ring}`.
pub async fn get_key_ring(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
) -> Result<Json<KeyRing>> {
    Ok(Json(kms_wire::ring(
        &s.sovra
            .keys()
            .get_key_ring(&p, &LocationName::new(&loc)?.key_ring(&ring)?)
            .await?,
    )))
}

/// `PATCH /v1/locations/{loc}/keyRings/{ring}`.
pub async fn update_key_ring(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<UpdateKeyRingRequest>,
) -> Result<Json<KeyRing>> {
    Ok(Json(kms_wire::ring(
        &s.sovra
            .keys()
            .update_key_ring(
                &p,
                &LocationName::new(&loc)?.key_ring(&ring)?,
                body.audit_data_access,
            )
            .await?,
    )))
}

fn ring_name(loc: &str, ring: &str) -> Result<KeyRingName> {
    Ok(LocationName::new(loc)?.key_ring(ring)?)
}

/// `GET .../keyRings/{ring}/cryptoKeys`.
pub async fn list_keys(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<ListCryptoKeysResponse>> {
    Ok(Json(kms_wire::keys(
        &s.sovra
            .keys()
            .list_crypto_keys(&p, &ring_name(&loc, &ring)?, &q.into())
            .await?,
    )))
}

/// `GET .../keyRings/{ring}/deletedKeys`.
pub async fn list_deleted_keys(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<ListDeletedCryptoKeysResponse>> {
    let l = s
        .sovra
        .keys()
        .list_deleted_keys(&p, &ring_name(&loc, &ring)?, &q.into())
        .await?;
    Ok(Json(ListDeletedCryptoKeysResponse {
        deleted_keys: l
            .items
            .iter()
            .map(|d| kms_wire::deleted_key(d, None))
            .collect(),
        next_page_token: l.next_page_token,
    }))
}

/// `GET .../keyRings/{ring}/deletedKeys/{key}`.
pub async fn get_deleted_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
) -> Result<Json<DeletedCryptoKey>> {
    let (id, verb) = split_verb(&key);
    no_verb(verb)?;
    let (d, v) = s
        .sovra
        .keys()
        .get_deleted_key(&p, &key_name(&loc, &ring, id)?)
        .await?;
    Ok(Json(kms_wire::deleted_key(&d, v)))
}

/// `POST .../keyRings/{ring}/deletedKeys/{key}:recover|:purge`.
pub async fn post_deleted_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
    JsonBody(_): JsonBody<sovra_proto::kms::Empty>,
) -> Result<Response> {
    let (id, verb) = split_verb(&key);
    let name = key_name(&loc, &ring, id)?;
    let keys = s.sovra.keys();
    Ok(match listed_verb(verb, DELETED_KEY_VERBS)? {
        "recover" => {
            Json(kms_wire::key(&keys.recover_deleted_key(&p, &name).await?)).into_response()
        }
        _ => {
            keys.purge_deleted_key(&p, &name).await?;
            Json(sovra_proto::kms::Empty {}).into_response()
        }
    })
}

/// `POST .../keyRings/{ring}/cryptoKeys?cryptoKeyId=`.
pub async fn create_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<KeyIdQuery>,
    JsonBody(body): JsonBody<CreateCryptoKeyRequest>,
) -> Result<Json<CryptoKey>> {
    let id = required(q.crypto_key_id, "cryptoKeyId")?;
    Ok(Json(kms_wire::key(
        &s.sovra
            .keys()
            .create_crypto_key(&p, &ring_name(&loc, &ring)?, &id, kms_wire::new_key(body)?)
            .await?,
    )))
}

/// `GET .../cryptoKeys/{key}`.
pub async fn get_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
) -> Result<Json<CryptoKey>> {
    let (id, verb) = split_verb(&key);
    no_verb(verb)?;
    Ok(Json(kms_wire::key(
        &s.sovra
            .keys()
            .get_crypto_key(&p, &key_name(&loc, &ring, id)?)
            .await?,
    )))
}

/// `PATCH .../cryptoKeys/{key}`.
pub async fn update_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
    JsonBody(body): JsonBody<UpdateCryptoKeyRequest>,
) -> Result<Json<CryptoKey>> {
    Ok(Json(kms_wire::key(
        &s.sovra
            .keys()
            .update_crypto_key(
                &p,
                &key_name(&loc, &ring, &key)?,
                kms_wire::key_changes(body)?,
            )
            .await?,
    )))
}

/// `POST .../cryptoKeys/{key}:{verb}`.
pub async fn post_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
    req: Request,
) -> Result<Response> {
    let (id, verb) = split_verb(&key);
    let name = key_name(&loc, &ring, id)?;
    let sv = &s.sovra;
    let body = body_bytes(req, &s).await?;
    let target = Target::Key(name.clone());
    Ok(match Some(listed_verb(verb, KEY_VERBS)?) {
        Some("encrypt") => {
            Json(ops_wire::encrypt(sv.crypto(), &p, &name, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("decrypt") => {
            Json(ops_wire::decrypt(sv.crypto(), &p, &name, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("rotate") => {
            let _: sovra_proto::kms::Empty = parse_json(&body)?;
            Json(kms_wire::key(&sv.keys().rotate(&p, &name).await?)).into_response()
        }
        Some("delete") => {
            let _: sovra_proto::kms::Empty = parse_json(&body)?;
            let d = sv.keys().delete_crypto_key(&p, &name).await?;
            Json(kms_wire::deleted_key(&d, None)).into_response()
        }
        Some("updatePrimaryVersion") => {
            let b: UpdatePrimaryVersionRequest = parse_json(&body)?;
            Json(kms_wire::key(
                &sv.keys()
                    .update_primary(&p, &name, &b.crypto_key_version_id)
                    .await?,
            ))
            .into_response()
        }
        Some("asymmetricSign") => {
            Json(ops_wire::asymmetric_sign(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("asymmetricVerify") => {
            Json(ops_wire::asymmetric_verify(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("asymmetricDecrypt") => {
            Json(ops_wire::asymmetric_decrypt(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("macSign") => {
            Json(ops_wire::mac_sign(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("decryptTo") => Json(
            release_wire::decrypt_to(sv.release(), &p, &name, parse_json(&body)?, false).await?,
        )
        .into_response(),
        Some("generateDataKeyTo") => {
            Json(release_wire::decrypt_to(sv.release(), &p, &name, parse_json(&body)?, true).await?)
                .into_response()
        }
        Some("release") => {
            Json(release_wire::release(sv.release(), &p, &name, None, parse_json(&body)?).await?)
                .into_response()
        }
        Some("macVerify") => {
            Json(ops_wire::mac_verify(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("wrapKey") => {
            Json(ops_wire::wrap_key(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("unwrapKey") => {
            Json(ops_wire::unwrap_key(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        v => return Err(unknown_verb(v, KEY_VERBS)),
    })
}

/// `GET .../cryptoKeys/{key}/publicKey`.
pub async fn key_public_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
) -> Result<Json<sovra_proto::ops::PublicKey>> {
    Ok(Json(
        s.sovra
            .crypto()
            .public_key(&p, &Target::Key(key_name(&loc, &ring, &key)?))
            .await?,
    ))
}

/// `GET .../cryptoKeys/{key}/cryptoKeyVersions`.
pub async fn list_versions(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<ListVersionsResponse>> {
    Ok(Json(kms_wire::versions(
        &s.sovra
            .keys()
            .list_versions(&p, &key_name(&loc, &ring, &key)?, &q.into())
            .await?,
    )))
}

/// `POST .../cryptoKeys/{key}/cryptoKeyVersions`.
pub async fn create_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
    JsonBody(_body): JsonBody<sovra_proto::kms::Empty>,
) -> Result<Json<CryptoKeyVersion>> {
    Ok(Json(kms_wire::version(
        &s.sovra
            .keys()
            .create_version(&p, &key_name(&loc, &ring, &key)?)
            .await?,
    )))
}

/// `POST .../importJobs?importJobId=`.
pub async fn create_import_job(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<ImportJobIdQuery>,
    JsonBody(body): JsonBody<CreateImportJobRequest>,
) -> Result<Json<ImportJob>> {
    let id = required(q.import_job_id, "importJobId")?;
    let job = s
        .sovra
        .keys()
        .create_import_job(
            &p,
            &ring_name(&loc, &ring)?,
            &id,
            kms_wire::new_import_job(body)?,
        )
        .await?;
    Ok(Json(kms_wire::import_job(&job, s.sovra.now())))
}

/// `GET .../importJobs`.
pub async fn list_import_jobs(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<ListImportJobsResponse>> {
    let l = s
        .sovra
        .keys()
        .list_import_jobs(&p, &ring_name(&loc, &ring)?, &q.into())
        .await?;
    let now = s.sovra.now();
    Ok(Json(ListImportJobsResponse {
        import_jobs: l
            .items
            .iter()
            .map(|j| kms_wire::import_job(j, now))
            .collect(),
        next_page_token: l.next_page_token,
    }))
}

/// `GET .../importJobs/{id}`.
pub async fn get_import_job(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, id)): PathParams<(String, String, String)>,
) -> Result<Json<ImportJob>> {
    let job = s
        .sovra
        .keys()
        .get_import_job(&p, &ring_name(&loc, &ring)?, &id)
        .await?;
    Ok(Json(kms_wire::import_job(&job, s.sovra.now())))
}

/// `POST .../cryptoKeyVersions:import`.
pub async fn import_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key)): PathParams<(String, String, String)>,
    JsonBody(body): JsonBody<ImportVersionRequest>,
) -> Result<Json<CryptoKeyVersion>> {
    Ok(Json(kms_wire::version(
        &s.sovra
            .keys()
            .import_version(
                &p,
                &key_name(&loc, &ring, &key)?,
                kms_wire::new_import(body)?,
            )
            .await?,
    )))
}

/// `GET .../cryptoKeyVersions/{v}`.
pub async fn get_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key, v)): PathParams<(String, String, String, String)>,
) -> Result<Json<CryptoKeyVersion>> {
    let (id, verb) = split_verb(&v);
    no_verb(verb)?;
    Ok(Json(kms_wire::version(
        &s.sovra
            .keys()
            .get_version(&p, &version_name(&loc, &ring, &key, id)?)
            .await?,
    )))
}

/// `PATCH .../cryptoKeyVersions/{v}` (state).
pub async fn update_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key, v)): PathParams<(String, String, String, String)>,
    JsonBody(body): JsonBody<UpdateVersionRequest>,
) -> Result<Json<CryptoKeyVersion>> {
    Ok(Json(kms_wire::version(
        &s.sovra
            .keys()
            .set_version_state(&p, &version_name(&loc, &ring, &key, &v)?, body.state)
            .await?,
    )))
}

/// `POST .../cryptoKeyVersions/{v}:{verb}`.
pub async fn post_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key, v)): PathParams<(String, String, String, String)>,
    req: Request,
) -> Result<Response> {
    let (id, verb) = split_verb(&v);
    let name = version_name(&loc, &ring, &key, id)?;
    let sv = &s.sovra;
    let body = body_bytes(req, &s).await?;
    let target = Target::Version(name.clone());
    Ok(match Some(listed_verb(verb, VERSION_VERBS)?) {
        Some("destroy") => {
            let _: sovra_proto::kms::Empty = parse_json(&body)?;
            Json(kms_wire::version(
                &sv.keys().destroy_version(&p, &name).await?,
            ))
            .into_response()
        }
        Some("restore") => {
            let _: sovra_proto::kms::Empty = parse_json(&body)?;
            Json(kms_wire::version(
                &sv.keys().restore_version(&p, &name).await?,
            ))
            .into_response()
        }
        Some("asymmetricSign") => {
            Json(ops_wire::asymmetric_sign(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("asymmetricVerify") => {
            Json(ops_wire::asymmetric_verify(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("asymmetricDecrypt") => {
            Json(ops_wire::asymmetric_decrypt(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("macSign") => {
            Json(ops_wire::mac_sign(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("release") => Json(
            release_wire::release(
                sv.release(),
                &p,
                &name.key,
                Some(name.version),
                parse_json(&body)?,
            )
            .await?,
        )
        .into_response(),
        Some("macVerify") => {
            Json(ops_wire::mac_verify(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("wrapKey") => {
            Json(ops_wire::wrap_key(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        Some("unwrapKey") => {
            Json(ops_wire::unwrap_key(sv.crypto(), &p, &target, &parse_json(&body)?).await?)
                .into_response()
        }
        v => return Err(unknown_verb(v, VERSION_VERBS)),
    })
}

/// `GET .../cryptoKeyVersions/{v}/publicKey`.
pub async fn version_public_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((loc, ring, key, v)): PathParams<(String, String, String, String)>,
) -> Result<Json<sovra_proto::ops::PublicKey>> {
    Ok(Json(
        s.sovra
            .crypto()
            .public_key(&p, &Target::Version(version_name(&loc, &ring, &key, &v)?))
            .await?,
    ))
}
