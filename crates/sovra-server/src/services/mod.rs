//! The service layer: every operation Sovra offers, independent of HTTP.
//!
//! One service per concern, each owning its state and naming the services it depends on
//! ([`Base`] carries only the backends, the clock, configuration, authorization and audit);
//! [`Sovra`] is the composition root that wires them. Every operation takes the authenticated
//! [`Principal`](auth::Principal), checks authorization, does the work, and appends audit
//! records in the same store transaction as the change they describe.
//!
//! ```text
//! settings   quotas   access (tokens, role bindings)
//! material ◄─ keys (locations, key rings, keys, versions) ◄─ crypto (encrypt, sign, mac, …)
//! attest (evidence, policies, collateral, signing keys) ◄─ release (SKR, issuers) ◄─ trust
//! ```

pub mod access;
pub mod actions;
pub mod anchor;
pub mod attest;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod fetch;
pub mod key_attestation;
pub mod keys;
pub mod material;
pub mod ops;
pub mod quota;
pub mod release;
pub mod scheduler;
pub mod sealed;
pub mod security_domain;
pub mod settings;
pub mod trust;

use crate::clock::Clock;
use crate::error::Result;
use audit::{Audit, AuditEvent, EventKind};
use auth::{Auth, Principal};
use sovra_hsm::Hsm;
use sovra_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the service layer.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Default symmetric operations per minute per principal.
    pub symmetric_per_minute: u64,
    /// Default asymmetric operations per minute per principal.
    pub asymmetric_per_minute: u64,
    /// How long metadata (tokens, bindings, keys, settings) is cached.
    pub cache_ttl: Duration,
    /// How many unwrapped key versions are kept in memory.
    pub material_cache_entries: usize,
    /// The protection level of keys created without one.
    pub default_protection_level: sovra_proto::kms::ProtectionLevel,
    /// Calls into a PKCS#11 HSM that may run at once (its session pool).
    pub hsm_sessions: usize,
    /// How long a call into a PKCS#11 HSM (or the wait for a session) may take before the
    /// request fails with `HSM_UNAVAILABLE`.
    pub hsm_call_timeout: Duration,
    /// The location created at initialisation.
    pub default_location: String,
    /// The locations this node serves (empty: every location its HSM holds).
    pub served_locations: Vec<String>,
    /// Whether the security domain may be downloaded again after the first time
    /// (`hsm.security_domain_downloads = "always"`).
    pub security_domain_repeat: bool,
    /// Attestation service settings.
    pub attest: attest::AttestConfig,
    /// Threads of the work pool (verification, policy evaluation); 0: one per core.
    pub work_threads: usize,
    /// Jobs that may wait for the work pool before requests are refused with `OVERLOADED`.
    pub work_queue: usize,
    /// Where the audit log's sealed checkpoint is kept (none: no anchoring).
    pub audit_anchor: Option<std::path::PathBuf>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            symmetric_per_minute: 30_000,
            asymmetric_per_minute: 3_000,
            cache_ttl: Duration::from_secs(2),
            material_cache_entries: 10_000,
            default_protection_level: sovra_proto::kms::ProtectionLevel::Software,
            hsm_sessions: 16,
            hsm_call_timeout: Duration::from_secs(10),
            default_location: "global".into(),
            security_domain_repeat: false,
            served_locations: Vec::new(),
            attest: attest::AttestConfig::default(),
            work_threads: 0,
            work_queue: 256,
            audit_anchor: None,
        }
    }
}

/// What every service is built on: the backends, the clock, the read-only configuration,
/// authorization and the audit log. It holds no domain state: each service below owns its own.
#[derive(Debug, Clone)]
pub struct Base {
    /// The (sealed) store.
    pub store: Arc<dyn Store>,
    /// The HSM.
    pub hsm: Arc<dyn Hsm>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The audit log.
    pub audit: Audit,
    /// Authentication and authorization.
    pub auth: Arc<Auth>,
    /// Tunables.
    pub cfg: Arc<ServiceConfig>,
    /// The base URL once the listener is bound (when not configured).
    public_url: Arc<std::sync::OnceLock<String>>,
}

impl Base {
    /// Whether this node serves `location` (by its `locations` setting; all when unset).
    pub fn serves(&self, location: &str) -> bool {
        check_served(&self.cfg.served_locations, location).is_ok()
    }

    /// [`Base::serves`], as an error naming the location and what this node serves.
    pub fn check_served(&self, location: &str) -> Result<()> {
        check_served(&self.cfg.served_locations, location)
    }

    /// Now (Unix seconds).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The externally reachable base URL: token issuer prefix, JWKS location.
    pub fn public_url(&self) -> &str {
        self.public_url
            .get()
            .map_or(self.cfg.attest.public_url.as_str(), String::as_str)
    }

    /// An administrative audit event by `p` on `resource`.
    pub(crate) fn admin_event(
        &self,
        p: &Principal,
        action: actions::Action,
        resource: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent::new(self.now(), EventKind::Admin, action)
            .principal(&p.name)
            .resource(resource)
    }
}

/// The service layer: the composition root that builds each service with what it depends on.
/// HTTP handlers and the CLI call the service that owns the operation.
#[derive(Debug)]
pub struct Sovra {
    base: Base,
    settings: Arc<settings::Settings>,
    quotas: Arc<quota::Quotas>,
    access: Arc<access::Access>,
    material: Arc<material::Material>,
    keys: Arc<keys::Keys>,
    crypto: Arc<ops::Crypto>,
    attest: Arc<attest::Attestation>,
    release: Arc<release::Release>,
    trust: trust::Trust,
    security_domains: security_domain::SecurityDomains,
}

impl Sovra {
    /// Builds the service layer over the given backends.
    pub fn new(
        store: Arc<dyn Store>,
        hsm: Arc<dyn Hsm>,
        clock: Arc<dyn Clock>,
        cfg: ServiceConfig,
    ) -> Self {
        let mut audit = Audit::new(store.clone());
        if let Some(path) = &cfg.audit_anchor {
            audit = audit.with_anchor(anchor::Anchor {
                path: path.clone(),
                hsm: hsm.clone(),
                location: cfg.default_location.clone(),
            });
        }
        let auth = Arc::new(Auth::new(
            store.clone(),
            clock.clone(),
            audit.clone(),
            cfg.cache_ttl,
        ));
        let base = Base {
            store,
            hsm,
            clock,
            audit,
            auth,
            cfg: Arc::new(cfg),
            public_url: Arc::default(),
        };
        let settings = Arc::new(settings::Settings::new(base.clone()));
        let quotas = Arc::new(quota::Quotas::new(base.clone()));
        let access = Arc::new(access::Access::new(base.clone()));
        let material = Arc::new(material::Material::new(&base));
        let attestor = Arc::new(key_attestation::KeyAttestor::new(
            base.clone(),
            material.clone(),
        ));
        let keys = Arc::new(keys::Keys::new(
            base.clone(),
            settings.clone(),
            material.clone(),
            attestor,
        ));
        let crypto = Arc::new(ops::Crypto::new(
            base.clone(),
            keys.clone(),
            material.clone(),
            quotas.clone(),
        ));
        let attest = Arc::new(attest::Attestation::new(base.clone()));
        let release = Arc::new(release::Release::new(
            base.clone(),
            keys.clone(),
            material.clone(),
            quotas.clone(),
            attest.clone(),
            crypto.clone(),
        ));
        let trust = trust::Trust::new(base.clone(), attest.clone(), release.clone());
        let security_domains =
            security_domain::SecurityDomains::new(base.clone(), material.clone());
        Self {
            base,
            settings,
            quotas,
            access,
            material,
            keys,
            crypto,
            attest,
            release,
            trust,
            security_domains,
        }
    }

    /// Sets the externally reachable base URL once the listener is bound (when not configured).
    pub fn set_public_url(&self, url: String) {
        let _ = self
            .base
            .public_url
            .set(url.trim_end_matches('/').to_string());
    }

    /// The externally reachable base URL: token issuer prefix, JWKS location.
    pub fn public_url(&self) -> &str {
        self.base.public_url()
    }

    /// Organisation settings.
    pub fn settings(&self) -> &settings::Settings {
        &self.settings
    }

    /// Per-principal quotas.
    pub fn quotas(&self) -> &quota::Quotas {
        &self.quotas
    }

    /// Tokens and role bindings.
    pub fn access(&self) -> &access::Access {
        &self.access
    }

    /// Locations, key rings, keys and versions.
    pub fn keys(&self) -> &keys::Keys {
        &self.keys
    }

    /// Cryptographic operations with keys.
    pub fn crypto(&self) -> &ops::Crypto {
        &self.crypto
    }

    /// The attestation service.
    pub fn attest(&self) -> &attest::Attestation {
        &self.attest
    }

    /// Secure key release and trusted issuers.
    pub fn release(&self) -> &release::Release {
        &self.release
    }

    /// The trust configuration view.
    pub fn trust(&self) -> &trust::Trust {
        &self.trust
    }

    /// Security-domain export.
    pub fn security_domains(&self) -> &security_domain::SecurityDomains {
        &self.security_domains
    }

    /// The authentication service.
    pub fn auth(&self) -> &Auth {
        &self.base.auth
    }

    /// The audit service.
    pub fn audit(&self) -> &Audit {
        &self.base.audit
    }

    /// Audits that the HSM was opened at start: which backend, how it was unsealed or logged
    /// in to, and the locations it holds keys for.
    pub async fn record_hsm_open(&self, how: &str) -> crate::error::Result<()> {
        let hsm = self.base.hsm.clone();
        let locations = self
            .material
            .hsm_call(move |h| Ok(h.locations()?))
            .await
            .unwrap_or_default();
        let ev = audit::AuditEvent::new(
            self.now(),
            audit::EventKind::System,
            actions::Action::HsmOpen,
        )
        .resource(format!("hsm/{}", hsm.kind()))
        .detail(serde_json::json!({"backend": hsm.kind(), "opened": how, "locations": locations}));
        self.base.audit.record(ev).await
    }

    /// Audits an administrative HSM event done offline (`sovra security-domain upload`,
    /// `sovra unseal init`): no principal, the HSM as resource.
    pub async fn record_offline_hsm_event(
        &self,
        action: actions::Action,
        detail: serde_json::Value,
    ) -> crate::error::Result<()> {
        let ev = audit::AuditEvent::new(self.now(), audit::EventKind::Admin, action)
            .resource(format!("hsm/{}", self.base.hsm.kind()))
            .detail(detail);
        self.base.audit.record(ev).await
    }

    /// The store (readiness checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.base.store
    }

    /// The HSM.
    pub fn hsm(&self) -> &Arc<dyn Hsm> {
        &self.base.hsm
    }

    /// Now (Unix seconds).
    pub fn now(&self) -> i64 {
        self.base.now()
    }

    /// Unwrapped key material held in memory (metrics).
    pub fn material(&self) -> &material::Material {
        &self.material
    }
}

/// Refuses `location` unless `served` (a node's `locations` setting; empty: all) has it.
pub(crate) fn check_served(served: &[String], location: &str) -> Result<()> {
    if served.is_empty() || served.iter().any(|l| l == location) {
        return Ok(());
    }
    Err(crate::error::Error::new(
        sovra_proto::ErrorCode::LocationNotServed,
        format!(
            "this node serves locations {}, not {location:?}: send the request to a node of that location's region",
            served.join(", ")
        ),
    ))
}

/// Retries `f` while it fails with a concurrent-modification conflict (at most 8 times).
pub(crate) async fn with_retries<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.code == sovra_proto::ErrorCode::Conflict && attempt < 8 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(2u64 << attempt)).await;
            }
            other => return other,
        }
    }
}
