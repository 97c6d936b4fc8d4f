//! The HTTP API: routes, shared state and middleware. Handlers are thin: extract, call one
//! service method, map the error.

pub mod admin;
pub mod attest;
pub mod extract;
pub mod kms;
pub mod limit;
pub mod methods;
pub mod metrics;
pub mod response;
pub mod system;

use crate::error::Error;
use crate::services::Sovra;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use sovra_proto::ErrorCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The OpenAPI 3.1 document of the native API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// State shared by all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The service layer.
    pub sovra: Arc<Sovra>,
    /// Request metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// False once shutdown has begun.
    pub ready: Arc<AtomicBool>,
    /// Body size limit in bytes.
    pub max_body: usize,
    /// Body size limit of attestation requests (evidence), bytes.
    pub max_evidence: usize,
    /// How long a client has to send a request body.
    pub body_timeout: std::time::Duration,
    /// Budget of requests without an API token, per source address.
    pub anon: Arc<limit::IpBudget>,
    /// Budget of failed authentications, per source address.
    pub auth_failures: Arc<limit::IpBudget>,
    /// Who a request stands for (peer, or the client a trusted proxy names).
    pub clients: Arc<limit::ClientResolver>,
}

impl AppState {
    /// The state for `sovra` under the request limits of `cfg`.
    pub fn new(sovra: Arc<Sovra>, cfg: &crate::config::Config) -> Self {
        use limit::{Cidr, ClientResolver, IpBudget};
        let l = &cfg.limits;
        Self {
            sovra,
            metrics: Arc::default(),
            ready: Arc::new(AtomicBool::new(true)),
            max_body: l.max_body_bytes,
            max_evidence: cfg.attestation.max_evidence_bytes,
            body_timeout: std::time::Duration::from_secs(l.body_timeout_secs),
            anon: Arc::new(IpBudget::new(l.anonymous_per_ip_per_second)),
            auth_failures: Arc::new(IpBudget::new(l.failed_auth_per_ip_per_second)),
            clients: Arc::new(ClientResolver::new(
                l.trusted_proxies
                    .iter()
                    .filter_map(|p| Cidr::parse(p))
                    .collect(),
            )),
        }
    }
}

async fn not_found() -> Error {
    Error::new(
        ErrorCode::RouteNotFound,
        "no such route; see /openapi.json for the API",
    )
}

async fn method_not_allowed() -> Error {
    Error::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept this HTTP method; see /openapi.json",
    )
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    const KEY: &str = "/v1/locations/{loc}/keyRings/{ring}/cryptoKeys/{key}";
    const VER: &str =
        "/v1/locations/{loc}/keyRings/{ring}/cryptoKeys/{key}/cryptoKeyVersions/{ver}";
    let api = Router::new()
        .route(
            "/v1/locations",
            get(kms::list_locations).post(kms::create_location),
        )
        .route(
            "/v1/locations/{loc}",
            get(kms::get_location).post(kms::post_location),
        )
        .route(
            "/v1/locations/{loc}/keyRings",
            get(kms::list_key_rings).post(kms::create_key_ring),
        )
        .route(
            "/v1/locations/{loc}/keyRings/{ring}",
            get(kms::get_key_ring).patch(kms::update_key_ring),
        )
        .route(
            "/v1/locations/{loc}/keyRings/{ring}/cryptoKeys",
            get(kms::list_keys).post(kms::create_key),
        )
        .route(
            KEY,
            get(kms::get_key).patch(kms::update_key).post(kms::post_key),
        )
        .route(&format!("{KEY}/publicKey"), get(kms::key_public_key))
        .route(
            &format!("{KEY}/cryptoKeyVersions"),
            get(kms::list_versions).post(kms::create_version),
        )
        .route(
            VER,
            get(kms::get_version)
                .patch(kms::update_version)
                .post(kms::post_version),
        )
        .route(&format!("{VER}/publicKey"), get(kms::version_public_key))
        .route(
            "/v1/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route(
            "/v1/tokens/{id}",
            axum::routing::delete(admin::revoke_token),
        )
        .route(
            "/v1/roleBindings",
            get(admin::list_role_bindings).post(admin::create_role_binding),
        )
        .route(
            "/v1/roleBindings/{principal}/{id}",
            axum::routing::delete(admin::delete_role_binding),
        )
        .route(
            "/v1/quotas/{principal}",
            get(admin::get_quota).put(admin::set_quota),
        )
        .route(
            "/v1/settings",
            get(admin::get_settings).patch(admin::update_settings),
        )
        .route("/v1/whoami", get(admin::whoami))
        .route("/v1/audit", get(admin::export_audit))
        .route("/v1/audit:verify", get(admin::verify_audit))
        .route("/v1/audit:checkpoint", get(admin::audit_checkpoint))
        .route("/v1/attest/tpm/challenge", post(attest::tpm_challenge))
        .route("/v1/attest/{type}", post(attest::attest_default))
        .route("/v1/attestation/providers", get(attest::list_providers))
        .route(
            "/v1/attestation/providers/{provider}",
            post(attest::create_provider),
        )
        .route(
            "/v1/attestation/providers/{provider}/attest/{type}",
            post(attest::attest_provider),
        )
        .route(
            "/v1/attestation/providers/{provider}/policies/{type}",
            get(attest::get_policy)
                .put(attest::set_policy)
                .delete(attest::reset_policy),
        )
        .route(
            "/v1/attestation/referenceValues",
            get(attest::list_reference_values),
        )
        .route(
            "/v1/attestation/referenceValues/{name}",
            axum::routing::put(attest::put_reference_values)
                .delete(attest::delete_reference_values),
        )
        .route(
            "/v1/attestation/collateral",
            get(attest::list_collateral).post(attest::import_collateral),
        )
        .route(
            "/v1/attestation/collateral/{id}",
            axum::routing::delete(attest::delete_collateral),
        )
        .route(
            "/v1/attestation/signingKeys:rotate",
            post(attest::rotate_signing_key),
        )
        .route("/v1/release/nonces", post(attest::release_nonce))
        .route("/v1/trust", get(attest::trust))
        .route(
            "/v1/release/issuers",
            get(attest::list_issuers).post(attest::put_issuer),
        )
        .route("/attest/{type}", post(attest::maa_attest_default))
        .route(
            "/providers/{provider}/attest/{type}",
            post(attest::maa_attest_provider),
        )
        .route("/certs", get(attest::certs))
        .route("/release/certs", get(attest::release_certs))
        .route(
            "/.well-known/openid-configuration",
            get(attest::openid_default),
        )
        .route(
            "/providers/{provider}/.well-known/openid-configuration",
            get(attest::openid_provider),
        )
        .route(
            "/policies/{type}",
            get(attest::maa_get_policy)
                .put(attest::maa_put_policy)
                .post(attest::maa_reset_policy),
        )
        .route("/certificates", get(attest::maa_get_certificates))
        .route("/certificates:add", post(attest::maa_add_certificate))
        .route("/certificates:remove", post(attest::maa_remove_certificate))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body));
    let m = state.metrics.clone();
    api.layer(axum::middleware::from_fn(methods::guard))
        .layer(axum::middleware::from_fn_with_state(m, metrics::track))
        .with_state(state)
}
