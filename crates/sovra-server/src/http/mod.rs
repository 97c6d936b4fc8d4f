//! The HTTP API: routes, shared state and middleware. Handlers are thin: extract, call one
//! service method, map the error.

pub mod admin;
pub mod attest;
pub mod attest_wire;
pub mod extract;
pub mod keyvault;
pub mod kms;
pub mod kms_wire;
pub mod limit;
pub mod methods;
pub mod metrics;
pub mod ops_wire;
pub mod release_wire;
pub mod response;
pub mod system;

use crate::error::Error;
use crate::services::Sovra;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};
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
    /// The key rings the Key Vault API serves as vaults.
    pub vaults: Arc<keyvault::Vaults>,
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
            vaults: Arc::new(keyvault::Vaults::new(cfg)),
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

/// Every route: its path (axum syntax) and its handlers. The OpenAPI test checks the document
/// against this list.
pub fn routes() -> Vec<(String, MethodRouter<AppState>)> {
    const KEY: &str = "/v1/locations/{loc}/keyRings/{ring}/cryptoKeys/{key}";
    const VER: &str =
        "/v1/locations/{loc}/keyRings/{ring}/cryptoKeys/{key}/cryptoKeyVersions/{ver}";
    let mut r = vec![
        (
            "/v1/locations".to_string(),
            get(kms::list_locations).post(kms::create_location),
        ),
        (
            "/v1/locations/{loc}".to_string(),
            get(kms::get_location).post(kms::post_location),
        ),
        (
            "/v1/locations/{loc}/keyRings".to_string(),
            get(kms::list_key_rings).post(kms::create_key_ring),
        ),
        (
            "/v1/locations/{loc}/keyRings/{ring}".to_string(),
            get(kms::get_key_ring).patch(kms::update_key_ring),
        ),
        (
            "/v1/locations/{loc}/keyRings/{ring}/cryptoKeys".to_string(),
            get(kms::list_keys).post(kms::create_key),
        ),
        (
            KEY.to_string(),
            get(kms::get_key).patch(kms::update_key).post(kms::post_key),
        ),
        (format!("{KEY}/publicKey"), get(kms::key_public_key)),
        (
            format!("{KEY}/cryptoKeyVersions:import"),
            post(kms::import_version),
        ),
        (
            "/v1/locations/{loc}/keyRings/{ring}/deletedKeys".to_string(),
            get(kms::list_deleted_keys),
        ),
        (
            "/v1/locations/{loc}/keyRings/{ring}/deletedKeys/{key}".to_string(),
            get(kms::get_deleted_key).post(kms::post_deleted_key),
        ),
        (
            "/v1/locations/{loc}/keyRings/{ring}/importJobs".to_string(),
            get(kms::list_import_jobs).post(kms::create_import_job),
        ),
        (
            "/v1/locations/{loc}/keyRings/{ring}/importJobs/{job}".to_string(),
            get(kms::get_import_job),
        ),
        (
            format!("{KEY}/cryptoKeyVersions"),
            get(kms::list_versions).post(kms::create_version),
        ),
        (
            VER.to_string(),
            get(kms::get_version)
                .patch(kms::update_version)
                .post(kms::post_version),
        ),
        (format!("{VER}/publicKey"), get(kms::version_public_key)),
        (
            "/v1/keyAttestation/roots".to_string(),
            get(kms::key_attestation_roots).put(kms::set_key_attestation_roots),
        ),
        (
            "/v1/keyAttestation:csr".to_string(),
            post(kms::key_attestation_csr),
        ),
        (
            "/v1/keyAttestation:rotate".to_string(),
            post(kms::rotate_key_attestation),
        ),
        (
            "/v1/tokens".to_string(),
            get(admin::list_tokens).post(admin::create_token),
        ),
        (
            "/v1/tokens/{id}".to_string(),
            axum::routing::delete(admin::revoke_token),
        ),
        (
            "/v1/roleBindings".to_string(),
            get(admin::list_role_bindings).post(admin::create_role_binding),
        ),
        (
            "/v1/roleBindings/{principal}/{id}".to_string(),
            axum::routing::delete(admin::delete_role_binding),
        ),
        (
            "/v1/quotas/{principal}".to_string(),
            get(admin::get_quota).put(admin::set_quota),
        ),
        (
            "/v1/settings".to_string(),
            get(admin::get_settings).patch(admin::update_settings),
        ),
        ("/v1/whoami".to_string(), get(admin::whoami)),
        (
            "/v1/securityDomain:download".to_string(),
            post(admin::download_security_domain),
        ),
        ("/v1/audit".to_string(), get(admin::export_audit)),
        ("/v1/audit:verify".to_string(), get(admin::verify_audit)),
        (
            "/v1/audit:checkpoint".to_string(),
            get(admin::audit_checkpoint),
        ),
        (
            "/v1/attest/tpm/challenge".to_string(),
            post(attest::tpm_challenge),
        ),
        (
            "/v1/attest/{type}".to_string(),
            post(attest::attest_default),
        ),
        (
            "/v1/attestation/providers".to_string(),
            get(attest::list_providers),
        ),
        (
            "/v1/attestation/providers/{provider}".to_string(),
            post(attest::create_provider),
        ),
        (
            "/v1/attestation/providers/{provider}/attest/{type}".to_string(),
            post(attest::attest_provider),
        ),
        (
            "/v1/attestation/providers/{provider}/policies/{type}".to_string(),
            get(attest::get_policy)
                .put(attest::set_policy)
                .delete(attest::reset_policy),
        ),
        (
            "/v1/attestation/referenceValues".to_string(),
            get(attest::list_reference_values),
        ),
        (
            "/v1/attestation/referenceValues/{name}".to_string(),
            axum::routing::put(attest::put_reference_values)
                .delete(attest::delete_reference_values),
        ),
        (
            "/v1/attestation/collateral".to_string(),
            get(attest::list_collateral).post(attest::import_collateral),
        ),
        (
            "/v1/attestation/collateral/{id}".to_string(),
            axum::routing::delete(attest::delete_collateral),
        ),
        (
            "/v1/attestation/signingKeys:rotate".to_string(),
            post(attest::rotate_signing_key),
        ),
        (
            "/v1/release/nonces".to_string(),
            post(attest::release_nonce),
        ),
        ("/v1/trust".to_string(), get(attest::trust)),
        (
            "/v1/release/issuers".to_string(),
            get(attest::list_issuers).post(attest::put_issuer),
        ),
        (
            "/attest/{type}".to_string(),
            post(attest::maa_attest_default),
        ),
        (
            "/providers/{provider}/attest/{type}".to_string(),
            post(attest::maa_attest_provider),
        ),
        ("/certs".to_string(), get(attest::certs)),
        ("/release/certs".to_string(), get(attest::release_certs)),
        (
            "/.well-known/openid-configuration".to_string(),
            get(attest::openid_default),
        ),
        (
            "/providers/{provider}/.well-known/openid-configuration".to_string(),
            get(attest::openid_provider),
        ),
        (
            "/policies/{type}".to_string(),
            get(attest::maa_get_policy)
                .put(attest::maa_put_policy)
                .post(attest::maa_reset_policy),
        ),
        (
            "/certificates".to_string(),
            get(attest::maa_get_certificates),
        ),
        (
            "/certificates:add".to_string(),
            post(attest::maa_add_certificate),
        ),
        (
            "/certificates:remove".to_string(),
            post(attest::maa_remove_certificate),
        ),
        ("/healthz".to_string(), get(system::healthz)),
        ("/v1/unseal".to_string(), get(system::unseal_status)),
        ("/readyz".to_string(), get(system::readyz)),
        ("/metrics".to_string(), get(system::metrics)),
        ("/openapi.json".to_string(), get(system::openapi)),
    ];
    r.extend(keyvault::routes());
    r
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let api = routes()
        .into_iter()
        .fold(Router::new(), |r, (path, handlers)| {
            r.route(&path, handlers)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body));
    let m = state.metrics.clone();
    api.layer(axum::middleware::from_fn(methods::guard))
        .layer(axum::middleware::from_fn_with_state(m, metrics::track))
        .with_state(state)
}
