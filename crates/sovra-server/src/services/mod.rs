//! The service layer: every operation Sovra offers, independent of HTTP.
//!
//! [`Sovra`] holds the backends (behind the `Store` and `Hsm` traits), the clock and the
//! caches. Its methods are split by concern across this module's files; each takes the
//! authenticated [`Principal`](auth::Principal), checks authorization, does the work, and
//! appends audit records in the same store transaction as the change they describe.

pub mod access;
pub mod anchor;
pub mod attest;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod fetch;
pub mod issuers;
pub mod keys;
pub mod material;
pub mod ops;
pub mod quota;
pub mod release;
pub mod scheduler;
pub mod sealed;
pub mod settings;
pub mod trust;

use crate::cache::TtlCache;
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
    /// The location created at initialisation.
    pub default_location: String,
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
            default_location: "global".into(),
            attest: attest::AttestConfig::default(),
            work_threads: 0,
            work_queue: 256,
            audit_anchor: None,
        }
    }
}

/// The service layer.
#[derive(Debug)]
pub struct Sovra {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hsm: Arc<dyn Hsm>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: Audit,
    pub(crate) auth: Auth,
    pub(crate) quotas: quota::Quotas,
    pub(crate) key_views: TtlCache<String, Arc<keys::KeyView>>,
    pub(crate) quota_limits: TtlCache<String, (u64, u64, bool)>,
    pub(crate) quota_audit: TtlCache<(String, quota::OpClass), ()>,
    pub(crate) material: material::MaterialCache,
    pub(crate) settings: settings::SettingsCache,
    pub(crate) attest: attest::AttestState,
    pub(crate) public_url: std::sync::OnceLock<String>,
    pub(crate) jwks: issuers::JwksCache,
    pub(crate) work: crate::work::WorkPool,
    /// Serialises changes that could remove the last administrator (on this node).
    pub(crate) admin_changes: tokio::sync::Mutex<()>,
    pub(crate) cfg: ServiceConfig,
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
        Self {
            auth: Auth::new(store.clone(), clock.clone(), audit.clone(), cfg.cache_ttl),
            key_views: TtlCache::new(cfg.cache_ttl, 100_000),
            quota_limits: TtlCache::new(cfg.cache_ttl, 100_000),
            quota_audit: TtlCache::new(Duration::from_secs(1), 100_000),
            material: material::MaterialCache::new(cfg.material_cache_entries),
            settings: settings::SettingsCache::new(cfg.cache_ttl),
            attest: attest::AttestState::new(cfg.cache_ttl),
            public_url: std::sync::OnceLock::new(),
            jwks: issuers::JwksCache::default(),
            quotas: quota::Quotas::new(),
            work: crate::work::WorkPool::new(cfg.work_threads, cfg.work_queue),
            admin_changes: tokio::sync::Mutex::new(()),
            audit,
            store,
            hsm,
            clock,
            cfg,
        }
    }

    /// Sets the externally reachable base URL once the listener is bound (when not configured).
    pub fn set_public_url(&self, url: String) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_string());
    }

    /// The externally reachable base URL: token issuer prefix, JWKS location.
    pub fn public_url(&self) -> &str {
        self.public_url
            .get()
            .map_or(self.cfg.attest.public_url.as_str(), String::as_str)
    }

    /// The authentication service.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The audit service.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The store (readiness checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The HSM.
    pub fn hsm(&self) -> &Arc<dyn Hsm> {
        &self.hsm
    }

    /// Now (Unix seconds).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// An administrative audit event by `p` on `resource`.
    pub(crate) fn admin_event(
        &self,
        p: &Principal,
        action: &str,
        resource: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent::new(self.now(), EventKind::Admin, action)
            .principal(&p.name)
            .resource(resource)
    }
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
