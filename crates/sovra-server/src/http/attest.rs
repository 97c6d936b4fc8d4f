//! Handlers of the attestation API: native (`/v1/attest…`, `/v1/attestation/…`) and the
//! MAA-compatible surface (`/attest/{type}`, `/certs`, `/.well-known/openid-configuration`,
//! `/policies/{type}`), also per provider under `/providers/{provider}/…`.
//!
//! Attest endpoints need no API token (like MAA): evidence is its own credential, and the token
//! says only what the evidence proves; without a token they spend a per-address budget
//! ([`Anonymous`]). Policy, collateral and provider management need one.

use super::AppState;
use super::attest_wire;
use super::extract::{Caller, PathParams, TextBody, parse_json};
use super::limit::Anonymous;
use super::response::{Json, no_content};
use crate::error::{Error, Result};
use crate::services::attest::activation::TpmIdentity;
use crate::services::attest::policy::{Language, PolicyView};
use crate::services::attest::providers::DEFAULT_PROVIDER;
use crate::services::attest::providers::ProviderView;
use crate::services::auth::Principal;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sovra_attest::EvidenceType;
use sovra_crypto::jws;
use sovra_proto::ErrorCode;
use sovra_proto::attest::*;

/// A request body up to the evidence size limit (larger than the general API limit).
pub struct EvidenceBody(pub Bytes);

impl FromRequest<AppState> for EvidenceBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        super::extract::check_media(req.headers(), super::extract::Media::Json)?;
        evidence_sized(req, state).await.map(Self)
    }
}

/// A text body (an MAA policy JWS) up to the evidence size limit.
pub struct EvidenceText(pub Bytes);

impl FromRequest<AppState> for EvidenceText {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        super::extract::check_media(req.headers(), super::extract::Media::Text)?;
        evidence_sized(req, state).await.map(Self)
    }
}

async fn evidence_sized(req: Request, state: &AppState) -> Result<Bytes> {
    let limit = state.max_evidence;
    super::extract::read_limited(req, limit, state.body_timeout, || {
        Error::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the request is larger than the evidence limit of {limit} bytes (attestation.max_evidence_bytes)"
            ),
        )
    })
    .await
}

fn evidence_type(s: &str) -> Result<EvidenceType> {
    s.parse()
        .map_err(|e: sovra_proto::evidence::UnknownEvidenceType| {
            Error::new(ErrorCode::InvalidArgument, e.to_string())
        })
}

fn maa_type(s: &str) -> Result<EvidenceType> {
    attest_wire::maa_type(s).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("unknown attestation type {s:?}; use SevSnpVm, SgxEnclave, OpenEnclave, TdxVm, Tpm or AzureGuest"),
        )
    })
}

/// The evidence types an MAA policy name governs: `AzureGuest` is one policy for the guests of
/// both isolation types (az-snp-vtpm, az-tdx-vtpm); GET shows the SEV-SNP one.
fn maa_policy_types(s: &str) -> Result<Vec<EvidenceType>> {
    if s == "AzureGuest" {
        return Ok(vec![EvidenceType::AzSnpVtpm, EvidenceType::AzTdxVtpm]);
    }
    maa_type(s).map(|t| vec![t])
}

/// The evidence type whose policy `GET /policies/{type}` shows.
fn maa_policy_shown(s: &str) -> Result<EvidenceType> {
    if s == "AzureGuest" {
        return Ok(EvidenceType::AzSnpVtpm);
    }
    maa_type(s)
}

async fn native_attest(
    s: &AppState,
    provider: &str,
    kind: &str,
    body: &[u8],
) -> Result<Json<AttestResponse>> {
    let kind = evidence_type(kind)?;
    let sub = attest_wire::native(parse_json(body)?)?;
    let a = s.sovra.attest().attest(provider, kind, sub).await?;
    Ok(Json(AttestResponse { token: a.token }))
}

/// `POST /v1/attest/{type}`: attest with the default provider.
pub async fn attest_default(
    State(s): State<AppState>,
    _: Anonymous,
    PathParams(kind): PathParams<String>,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<AttestResponse>> {
    native_attest(&s, DEFAULT_PROVIDER, &kind, &b).await
}

/// `POST /v1/attestation/providers/{provider}/attest/{type}`.
pub async fn attest_provider(
    State(s): State<AppState>,
    _: Anonymous,
    PathParams((provider, kind)): PathParams<(String, String)>,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<AttestResponse>> {
    native_attest(&s, &provider, &kind, &b).await
}

async fn maa_attest(s: &AppState, provider: &str, ty: &str, body: &[u8]) -> Result<Json<Value>> {
    let token = match ty {
        "AzureGuest" => azure_guest(s, provider, body).await?,
        "Tpm" => return maa_tpm(s, provider, body).await,
        _ => {
            let kind = maa_type(ty)?;
            let sub = attest_wire::maa(ty, parse_json(body)?)?;
            s.sovra.attest().attest(provider, kind, sub).await?.token
        }
    };
    Ok(Json(json!(AttestResponse { token })))
}

/// `POST /attest/Tpm`: MAA's TPM protocol, each message and answer as `{"data": base64url(JSON)}`
/// (init → `{challenge, service_context}`; request → `{report}`); or Sovra's envelope → `{token}`.
async fn maa_tpm(s: &AppState, provider: &str, body: &[u8]) -> Result<Json<Value>> {
    let answer = match attest_wire::maa_tpm(parse_json(body)?)? {
        attest_wire::TpmMessage::Envelope(sub) => {
            let a = s
                .sovra
                .attest()
                .attest(provider, EvidenceType::Tpm, sub)
                .await?;
            return Ok(Json(json!(AttestResponse { token: a.token })));
        }
        attest_wire::TpmMessage::Init => {
            let c = s.sovra.attest().tpm_protocol_init().await?;
            json!({"challenge": jws::b64url(&c.challenge), "service_context": jws::b64url(&c.service_context)})
        }
        attest_wire::TpmMessage::Request(sub) => {
            let a = s
                .sovra
                .attest()
                .attest(provider, EvidenceType::Tpm, sub)
                .await?;
            json!({"report": a.token})
        }
    };
    Ok(Json(
        json!({"data": jws::b64url(answer.to_string().as_bytes())}),
    ))
}

/// `POST /attest/AzureGuest`: the guest attestation library's protocol; the token comes back
/// sealed to the vTPM key the evidence certified.
async fn azure_guest(s: &AppState, provider: &str, body: &[u8]) -> Result<String> {
    let (kind, sub) = attest_wire::azure_guest(&parse_json(body)?)?;
    let a = s.sovra.attest().attest(provider, kind, sub).await?;
    crate::services::attest::guest::seal(&a)
}

/// `POST /attest/{type}` (MAA).
pub async fn maa_attest_default(
    State(s): State<AppState>,
    _: Anonymous,
    PathParams(ty): PathParams<String>,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<Value>> {
    maa_attest(&s, DEFAULT_PROVIDER, &ty, &b).await
}

/// `POST /providers/{provider}/attest/{type}` (MAA, per provider).
pub async fn maa_attest_provider(
    State(s): State<AppState>,
    _: Anonymous,
    PathParams((provider, ty)): PathParams<(String, String)>,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<Value>> {
    maa_attest(&s, &provider, &ty, &b).await
}

/// `GET /certs`: the JWKS.
pub async fn certs(State(s): State<AppState>) -> Result<Response> {
    let mut r = Json(s.sovra.attest().jwks().await?).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    Ok(r)
}

/// `GET /release/certs`: JWKS of the keys that sign key-release responses (never attestation
/// tokens: those are at `/certs`).
pub async fn release_certs(State(s): State<AppState>) -> Result<Response> {
    let mut r = Json(s.sovra.attest().release_jwks().await?).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    Ok(r)
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_default(State(s): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(
        s.sovra
            .attest()
            .openid_configuration(DEFAULT_PROVIDER)
            .await?,
    ))
}

/// `GET /providers/{provider}/.well-known/openid-configuration`.
pub async fn openid_provider(
    State(s): State<AppState>,
    PathParams(p): PathParams<String>,
) -> Result<Json<Value>> {
    Ok(Json(s.sovra.attest().openid_configuration(&p).await?))
}

// ----- policies: native ---------------------------------------------------------------------

fn policy_info(v: &PolicyView) -> PolicyInfo {
    PolicyInfo {
        evidence_type: v.kind.as_str().into(),
        language: v.language.name().into(),
        text: v.text.clone(),
        hash: v.hash.clone(),
        is_default: v.is_default,
        signer: v.signer.clone(),
    }
}

/// `GET /v1/attestation/providers/{provider}/policies/{type}`.
pub async fn get_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((provider, kind)): PathParams<(String, String)>,
) -> Result<Json<PolicyInfo>> {
    Ok(Json(policy_info(
        &s.sovra
            .attest()
            .get_policy(&p, &provider, evidence_type(&kind)?)
            .await?,
    )))
}

/// `PUT /v1/attestation/providers/{provider}/policies/{type}`: text, or an MAA policy JWS.
pub async fn set_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((provider, kind)): PathParams<(String, String)>,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<PolicyInfo>> {
    let req: SetPolicyRequest = parse_json(&b)?;
    let lang = Language::parse(req.language.as_deref())?;
    Ok(Json(policy_info(
        &s.sovra
            .attest()
            .set_policy(&p, &provider, evidence_type(&kind)?, lang, &req.policy)
            .await?,
    )))
}

/// `DELETE /v1/attestation/providers/{provider}/policies/{type}`: back to the default.
pub async fn reset_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams((provider, kind)): PathParams<(String, String)>,
) -> Result<Json<PolicyInfo>> {
    Ok(Json(policy_info(
        &s.sovra
            .attest()
            .reset_policy(&p, &provider, evidence_type(&kind)?)
            .await?,
    )))
}

// ----- policies: MAA --------------------------------------------------------------------------

async fn maa_policy_token(s: &AppState, body: Value) -> Result<Json<Value>> {
    let Value::Object(claims) = body else {
        return Err(Error::internal("policy token claims are not an object"));
    };
    let token = s.sovra.attest().management_token(claims).await?;
    Ok(Json(json!({ "token": token })))
}

/// `GET /policies/{type}` (MAA): `{"token": JWT{"x-ms-policy": unsigned JWS of the policy}}`.
pub async fn maa_get_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(ty): PathParams<String>,
) -> Result<Json<Value>> {
    let info = s
        .sovra
        .attest()
        .get_policy(&p, DEFAULT_PROVIDER, maa_policy_shown(&ty)?)
        .await?;
    let inner = format!(
        "{}.{}.",
        jws::b64url(br#"{"alg":"none"}"#),
        jws::b64url(
            json!({"AttestationPolicy": jws::b64url(info.text.as_bytes())})
                .to_string()
                .as_bytes()
        )
    );
    maa_policy_token(&s, json!({"x-ms-policy": inner})).await
}

/// `PUT /policies/{type}` (MAA; body is the policy JWS as text/plain), and
/// `POST /policies/{type}:reset`.
pub async fn maa_put_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(ty): PathParams<String>,
    EvidenceText(b): EvidenceText,
) -> Result<Json<Value>> {
    let text =
        String::from_utf8(b.to_vec()).map_err(|_| Error::invalid("the policy JWS must be text"))?;
    let jws_text = text.trim().trim_matches('"').to_string();
    let mut view = None;
    for kind in maa_policy_types(&ty)? {
        view = Some(
            s.sovra
                .attest()
                .set_policy(&p, DEFAULT_PROVIDER, kind, Language::Maa, &jws_text)
                .await?,
        );
    }
    let view = view.ok_or_else(|| Error::internal("no evidence type for the policy"))?;
    let hash = jws::b64url(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jws_text.as_bytes()).as_ref(),
    );
    let mut claims = json!({"x-ms-policy-result": "Updated", "x-ms-policy-token-hash": hash});
    // A signed policy names its (verified) signer, as MAA does.
    if view.signer.is_some()
        && let (Some(signer), Some(c)) = (policy_signer_jwk(&jws_text), claims.as_object_mut())
    {
        c.insert("x-ms-policy-signer".into(), signer);
    }
    maa_policy_token(&s, claims).await
}

/// The signing certificate of a policy JWS as a JWK (`x5c`, from the header's `jwk.x5c` as the
/// Azure SDK sends it, or `x5c`), for the `x-ms-policy-signer` claim.
fn policy_signer_jwk(jws_text: &str) -> Option<Value> {
    let header = jws_text.split('.').next()?;
    let header: Value = serde_json::from_slice(&jws::b64url_decode(header).ok()?).ok()?;
    let x5c = header
        .pointer("/jwk/x5c")
        .or_else(|| header.get("x5c"))?
        .as_array()?
        .first()?
        .as_str()?
        .to_owned();
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (kty, alg) = if alg.starts_with("ES") {
        ("EC", alg.to_owned())
    } else {
        ("RSA", "RS256".to_owned())
    };
    Some(json!({"alg": alg, "kty": kty, "use": "sig", "x5c": [x5c]}))
}

/// `POST /policies/{type}:reset` (MAA): the route captures `{type}:reset` as one segment.
pub async fn maa_reset_policy(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(seg): PathParams<String>,
) -> Result<Json<Value>> {
    let Some(ty) = seg.strip_suffix(":reset") else {
        return Err(Error::new(
            ErrorCode::MethodNotAllowed,
            "POST is only for /policies/{type}:reset",
        ));
    };
    for kind in maa_policy_types(ty)? {
        s.sovra
            .attest()
            .reset_policy(&p, DEFAULT_PROVIDER, kind)
            .await?;
    }
    maa_policy_token(&s, json!({"x-ms-policy-result": "Removed"})).await
}

/// `GET /certificates` (MAA): the policy-management certificates, in a signed token.
pub async fn maa_get_certificates(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Value>> {
    let keys = s.sovra.attest().policy_signer_jwks(&p).await?;
    maa_policy_token(&s, json!({"x-ms-policy-certificates": {"keys": keys}})).await
}

async fn maa_change_certificate(
    s: &AppState,
    p: &Principal,
    body: &[u8],
    add: bool,
) -> Result<Json<Value>> {
    // The SDK sends the JWS as a JSON string; accept the bare JWS too.
    let text = std::str::from_utf8(body).map_err(|_| Error::invalid("the body is not UTF-8"))?;
    let jws = serde_json::from_str::<String>(text).unwrap_or_else(|_| text.trim().to_string());
    let (thumb, present) = s.sovra.attest().change_policy_signer(p, &jws, add).await?;
    maa_policy_token(
        s,
        json!({"x-ms-certificate-thumbprint": thumb,
               "x-ms-policycertificates-result": if present { "IsPresent" } else { "IsAbsent" }}),
    )
    .await
}

/// `POST /certificates:add` (MAA): body = a JWS signed by a current policy-management
/// certificate, `{"policyCertificate": {"kty", "x5c": [DER]}}`.
pub async fn maa_add_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    TextBody(b): TextBody,
) -> Result<Json<Value>> {
    maa_change_certificate(&s, &p, &b, true).await
}

/// `POST /certificates:remove` (MAA); the last certificate cannot be removed.
pub async fn maa_remove_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    TextBody(b): TextBody,
) -> Result<Json<Value>> {
    maa_change_certificate(&s, &p, &b, false).await
}

// ----- providers, reference values, collateral, keys -------------------------------------------

fn provider(v: &ProviderView) -> Provider {
    Provider {
        name: v.name.clone(),
        issuer: v.issuer.clone(),
        create_time: crate::clock::rfc3339(v.create_time),
    }
}

/// `GET /v1/attestation/providers`.
pub async fn list_providers(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<Value>> {
    let list: Vec<Provider> = s
        .sovra
        .attest()
        .list_providers(&p)
        .await?
        .iter()
        .map(provider)
        .collect();
    Ok(Json(json!({ "providers": list })))
}

/// `POST /v1/attestation/providers/{provider}`.
pub async fn create_provider(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<Provider>> {
    Ok(Json(provider(
        &s.sovra.attest().create_provider(&p, &name).await?,
    )))
}

/// `GET /v1/attestation/referenceValues`.
pub async fn list_reference_values(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Value>> {
    Ok(Json(
        json!({"referenceValues": s.sovra.attest().list_reference_values(&p).await?}),
    ))
}

/// `PUT /v1/attestation/referenceValues/{name}`.
pub async fn put_reference_values(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(name): PathParams<String>,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<ReferenceValues>> {
    Ok(Json(
        s.sovra
            .attest()
            .put_reference_values(&p, &name, parse_json(&b)?)
            .await?,
    ))
}

/// `DELETE /v1/attestation/referenceValues/{name}`.
pub async fn delete_reference_values(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(name): PathParams<String>,
) -> Result<Response> {
    s.sovra.attest().delete_reference_values(&p, &name).await?;
    Ok(no_content())
}

fn collateral_info(r: &crate::services::attest::collateral::CollateralRec) -> CollateralInfo {
    CollateralInfo {
        id: r.id.clone(),
        kind: r.kind.as_str().to_owned(),
        platform: r.platform.clone(),
        description: r.description.clone(),
        create_time: crate::clock::rfc3339(r.create_time),
    }
}

/// `GET /v1/attestation/collateral`.
pub async fn list_collateral(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<Value>> {
    let list: Vec<CollateralInfo> = s
        .sovra
        .attest()
        .list_collateral(&p)
        .await?
        .iter()
        .map(collateral_info)
        .collect();
    Ok(Json(json!({ "collateral": list })))
}

/// `POST /v1/attestation/collateral`.
pub async fn import_collateral(
    State(s): State<AppState>,
    Caller(p): Caller,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<CollateralInfo>> {
    let req: ImportCollateralRequest = parse_json(&b)?;
    let kind = CollateralKind::parse(&req.kind).ok_or_else(|| {
        Error::invalid(format!(
            "kind {:?} is not known; use amd-certs, certs (intermediates for any platform), intel, trust-anchor or policy-signer",
            req.kind
        ))
    })?;
    let new = crate::services::attest::collateral::NewCollateral {
        kind,
        platform: req.platform,
        content: sovra_proto::b64::decode(&req.content)
            .map_err(|_| Error::new(ErrorCode::InvalidBase64, "content is not valid base64"))?,
    };
    Ok(Json(collateral_info(
        &s.sovra.attest().import_collateral(&p, new).await?,
    )))
}

/// `DELETE /v1/attestation/collateral/{id}`.
pub async fn delete_collateral(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response> {
    s.sovra.attest().delete_collateral(&p, &id).await?;
    Ok(no_content())
}

/// `POST /v1/attestation/signingKeys:rotate` (`{"alg": "RS256"|"ES256"|"ES384"}` optional).
pub async fn rotate_signing_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    super::extract::RawBody(body): super::extract::RawBody,
) -> Result<Json<Value>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rotate {
        alg: Option<String>,
    }
    let req: Rotate = parse_json(&body)?;
    let alg = match req.alg.as_deref() {
        None => None,
        Some(a) => Some(
            jws::JwsAlg::parse(a)
                .ok_or_else(|| Error::invalid("alg must be RS256, ES256 or ES384"))?,
        ),
    };
    let (kid, alg) = s.sovra.attest().rotate_signing_key(&p, alg).await?;
    Ok(Json(json!({"kid": kid, "alg": alg.name()})))
}

/// `POST /v1/release/nonces`: a single-use nonce for the next release.
pub async fn release_nonce(
    State(s): State<AppState>,
    Caller(p): Caller,
    super::extract::JsonBody(_): super::extract::JsonBody<sovra_proto::kms::Empty>,
) -> Result<Json<Value>> {
    Ok(Json(super::release_wire::nonce(
        s.sovra.release().release_nonce(&p).await?,
    )))
}

/// `GET /v1/release/issuers`.
pub async fn list_issuers(State(s): State<AppState>, Caller(p): Caller) -> Result<Json<Value>> {
    Ok(Json(
        json!({"issuers": s.sovra.release().list_trusted_issuers(&p).await?}),
    ))
}

/// `POST /v1/release/issuers`: trust an external token issuer (pinned certificates or JWKS URL).
pub async fn put_issuer(
    State(s): State<AppState>,
    Caller(p): Caller,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<crate::services::release::issuers::TrustedIssuer>> {
    Ok(Json(
        s.sovra
            .release()
            .put_trusted_issuer(&p, parse_json(&b)?)
            .await?,
    ))
}

/// Body of `POST /v1/attest/tpm/challenge`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChallengeRequest {
    /// EK public area (TPMT_PUBLIC, or TPM2B_PUBLIC), base64.
    ek_public: String,
    /// EK certificate (DER or PEM), base64.
    ek_certificate: String,
    /// Intermediates of the EK certificate, base64.
    #[serde(default)]
    ek_cert_chain: Vec<String>,
    /// AK public area (TPMT_PUBLIC or TPM2B_PUBLIC), base64.
    ak_public: String,
}

/// `POST /v1/attest/tpm/challenge`: credential activation for TPM-only machines.
pub async fn tpm_challenge(
    State(s): State<AppState>,
    _: Anonymous,
    EvidenceBody(b): EvidenceBody,
) -> Result<Json<Value>> {
    use crate::services::ops::decode_field;
    let req: ChallengeRequest = parse_json(&b)?;
    let mut ek_cert_chain = Vec::with_capacity(req.ek_cert_chain.len());
    for (i, c) in req.ek_cert_chain.iter().enumerate() {
        ek_cert_chain.push(decode_field(&format!("ekCertChain[{i}]"), c)?);
    }
    let tpm = TpmIdentity {
        ek_public: decode_field("ekPublic", &req.ek_public)?,
        ek_certificate: decode_field("ekCertificate", &req.ek_certificate)?,
        ek_cert_chain,
        ak_public: decode_field("akPublic", &req.ak_public)?,
    };
    let c = s.sovra.attest().tpm_challenge(tpm).await?;
    Ok(Json(json!({
        "challengeId": c.id,
        "credential": sovra_proto::b64::encode(&c.credential),
        "expireTime": crate::clock::rfc3339(c.expire),
    })))
}

/// `GET /v1/trust`: the trust configuration (pinned roots, operator anchors, policy signers,
/// external issuers, vendor fetching).
pub async fn trust(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<crate::services::trust::TrustView>> {
    Ok(Json(s.sovra.trust().trust_configuration(&p).await?))
}
