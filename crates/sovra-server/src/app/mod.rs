//! The composition root: the only place that names concrete backends. It opens the data
//! directory (store, HSM, TLS material, bootstrap token) and builds the service layer.

use crate::clock::SystemClock;
use crate::config::{Config, HsmBackend, StoreBackend};
use crate::services::{ServiceConfig, Sovra};
use crate::tls::{self, TlsFiles};
use sovra_hsm::Hsm;
use sovra_hsm::soft::{SoftHsm, UnsealKey};
use sovra_store::Store;
use sovra_store::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod recovery;
mod unseal_key;

pub use recovery::{restore_security_domain, seal_by_quorum};
use unseal_key::soft_unseal;
pub use unseal_key::{unseal_quorum, unseal_quorum_path, unseals};

/// An opened deployment.
#[derive(Debug)]
pub struct Opened {
    /// The service layer.
    pub sovra: Arc<Sovra>,
    /// TLS material (None with `insecure_http`).
    pub tls: Option<TlsFiles>,
    /// The bootstrap admin token, if this start created it.
    pub new_admin_token: Option<crate::services::access::TokenSecret>,
}

/// Where the admin token is written on first start.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// Opens the configured store.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, String> {
    match cfg.store.backend {
        StoreBackend::Sqlite => {
            let path = cfg.data_dir.join("sovra.db");
            let s = SqliteStore::open(&path)
                .map_err(|e| format!("cannot open the database {}: {e}", path.display()))?;
            Ok(Arc::new(s))
        }
        StoreBackend::Postgres => {
            let url = cfg
                .store
                .url
                .as_deref()
                .ok_or("store.backend = \"postgres\" needs store.url")?;
            let ca = match &cfg.store.ca_file {
                Some(f) => Some(
                    std::fs::read(f)
                        .map_err(|e| format!("cannot read store.ca_file {}: {e}", f.display()))?,
                ),
                None => None,
            };
            let s = sovra_store::postgres::PgStore::open_with_ca(url, ca.as_deref())
                .await
                .map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
            Ok(Arc::new(s))
        }
    }
}

/// Opens the configured HSM.
pub fn open_hsm(cfg: &Config) -> Result<Arc<dyn Hsm>, String> {
    open_hsm_with(cfg, None)
}

/// Opens the configured HSM; a software HSM with `unseal` when given (a quorum's key).
fn open_hsm_with(
    cfg: &Config,
    unseal: Option<sovra_crypto::SecretBytes>,
) -> Result<Arc<dyn Hsm>, String> {
    match cfg.hsm.backend {
        HsmBackend::Software => {
            let how = match unseal {
                Some(k) => UnsealKey::Bytes(k),
                None => soft_unseal(cfg)?,
            };
            let h = SoftHsm::open(&cfg.data_dir.join("hsm"), how).map_err(|e| e.to_string())?;
            Ok(Arc::new(h))
        }
        HsmBackend::Pkcs11 => {
            let need = |what: &str, var: &str| {
                format!("hsm.backend = \"pkcs11\" needs hsm.{what} (or {var})")
            };
            let module = cfg
                .hsm
                .pkcs11_module
                .as_ref()
                .ok_or_else(|| need("pkcs11_module", "SOVRA_PKCS11_MODULE"))?;
            let label = cfg
                .hsm
                .pkcs11_token_label
                .as_deref()
                .ok_or_else(|| need("pkcs11_token_label", "SOVRA_PKCS11_TOKEN_LABEL"))?;
            let pin_file = cfg
                .hsm
                .pkcs11_pin_file
                .as_ref()
                .ok_or_else(|| need("pkcs11_pin_file", "SOVRA_PKCS11_PIN_FILE"))?;
            let pin = std::fs::read_to_string(pin_file).map_err(|e| {
                format!(
                    "cannot read hsm.pkcs11_pin_file {}: {e}",
                    pin_file.display()
                )
            })?;
            let h = sovra_hsm::pkcs11::Pkcs11Hsm::open(
                module,
                label,
                pin.trim_end_matches(['\n', '\r']),
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(h))
        }
    }
}

pub(crate) fn make_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// A configured vendor URL, which must be http(s).
fn http_url(name: &str, u: &Option<String>) -> Result<Option<String>, String> {
    match u {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            Err(format!("{name} must be an http(s) URL (got {u})"))
        }
        other => Ok(other.clone()),
    }
}

/// Opens the store with every record sealed under an HSM-held key (services/sealed.rs).
pub async fn open_sealed_store(cfg: &Config, hsm: &dyn Hsm) -> Result<Arc<dyn Store>, String> {
    let raw = open_store(cfg).await?;
    let anchored = cfg.data_dir.join("audit.anchor").exists();
    let sealed: Arc<dyn Store> = crate::services::sealed::SealedStore::open(
        raw,
        hsm,
        &cfg.default_location,
        &cfg.data_dir,
        anchored,
    )
    .await?;
    Ok(sealed)
}

/// The service layer over an existing deployment's store and HSM, for offline commands (no
/// listener, no bootstrap).
pub async fn open_offline(cfg: &Config) -> Result<Arc<Sovra>, String> {
    open_offline_with(cfg, None).await
}

pub(crate) async fn open_offline_with(
    cfg: &Config,
    unseal: Option<sovra_crypto::SecretBytes>,
) -> Result<Arc<Sovra>, String> {
    let hsm = open_hsm_with(cfg, unseal)?;
    let store = open_sealed_store(cfg, hsm.as_ref()).await?;
    let scfg = ServiceConfig {
        default_location: cfg.default_location.clone(),
        ..ServiceConfig::default()
    };
    Ok(Arc::new(Sovra::new(
        store,
        hsm,
        Arc::new(SystemClock),
        scfg,
    )))
}

/// The TLS files to serve (the configured ones, or the data directory's, generated on first
/// use); none with `insecure_http`.
pub fn tls_files(cfg: &Config) -> Result<Option<TlsFiles>, String> {
    Ok(if cfg.insecure_http {
        None
    } else if let (Some(cert), Some(key)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
        Some(TlsFiles {
            ca_cert: cert.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })
    } else {
        make_private_dir(&cfg.data_dir)?;
        Some(tls::ensure(
            &cfg.data_dir.join("tls"),
            &tls::default_names(&cfg.tls.extra_names),
        )?)
    })
}

/// Opens (initialising on first start) the deployment described by `cfg`.
pub async fn open(cfg: &Config) -> Result<Opened, String> {
    open_with(cfg, None).await
}

/// How a quorum unsealed the node (for [`open_with`]).
#[derive(Debug, Clone)]
pub struct QuorumUnseal {
    /// The unseal key the shares combined into.
    pub key: sovra_crypto::SecretBytes,
    /// The certificate fingerprints of the shares used.
    pub certificates: Vec<String>,
}

/// [`open`], with the software HSM unsealed by a quorum when `quorum` is given.
pub async fn open_with(cfg: &Config, quorum: Option<QuorumUnseal>) -> Result<Opened, String> {
    make_private_dir(&cfg.data_dir)?;
    let quorum_how = quorum.as_ref().map(|q| {
        format!(
            "unsealed by a quorum of administrators (certificates {})",
            q.certificates.join(", ")
        )
    });
    let hsm = open_hsm_with(cfg, quorum.map(|q| q.key))?;
    let store = open_sealed_store(cfg, hsm.as_ref()).await?;
    let anchor = cfg.data_dir.join("audit.anchor");
    let scfg = ServiceConfig {
        audit_anchor: Some(anchor),
        work_threads: cfg.limits.work_threads,
        work_queue: cfg.limits.work_queue,
        symmetric_per_minute: cfg.quota.symmetric_per_minute,
        asymmetric_per_minute: cfg.quota.asymmetric_per_minute,
        cache_ttl: Duration::from_millis(cfg.cache.metadata_ttl_ms),
        material_cache_entries: cfg.cache.material_entries,
        default_protection_level: cfg.hsm.default_protection_level.unwrap_or(
            if cfg.hsm.backend == crate::config::HsmBackend::Pkcs11 {
                sovra_proto::kms::ProtectionLevel::Hsm
            } else {
                sovra_proto::kms::ProtectionLevel::Software
            },
        ),
        hsm_sessions: cfg.hsm.sessions.unwrap_or(16).clamp(1, 1024),
        hsm_call_timeout: Duration::from_secs(
            cfg.hsm.call_timeout_secs.unwrap_or(10).clamp(1, 600),
        ),
        default_location: cfg.default_location.clone(),
        served_locations: cfg.locations.clone(),
        security_domain_repeat: cfg.hsm.security_domain_downloads
            == Some(crate::config::SecurityDomainDownloads::Always),
        attest: crate::services::attest::AttestConfig {
            token_ttl_secs: cfg.attestation.token_ttl_secs,
            clock_skew_secs: i64::try_from(cfg.attestation.clock_skew_secs)
                .map_err(|_| "attestation.clock_skew_secs is too large")?,
            amd_kds_url: http_url("attestation.amd_kds_url", &cfg.attestation.amd_kds_url)?,
            intel_pcs_url: http_url("attestation.intel_pcs_url", &cfg.attestation.intel_pcs_url)?,
            jwks_allow_private: cfg.attestation.jwks_allow_private,
            min_tcb_evaluation_data_number: cfg.attestation.min_tcb_evaluation_data_number,
            snp_min_tcb: cfg.attestation.snp_min_tcb.parse()?,
            intel_root_crl_url: http_url(
                "attestation.intel_root_crl_url",
                &cfg.attestation.intel_root_crl_url,
            )?,
            fetch_ca_pem: cfg
                .attestation
                .fetch_ca_file
                .as_ref()
                .map(|f| {
                    std::fs::read(f)
                        .map_err(|e| format!("attestation.fetch_ca_file {}: {e}", f.display()))
                })
                .transpose()?,
            token_alg: sovra_crypto::jws::JwsAlg::parse(&cfg.attestation.token_alg)
                .ok_or("attestation.token_alg must be RS256, ES256 or ES384")?,
            public_url: cfg
                .public_url
                .clone()
                .unwrap_or_else(|| {
                    let scheme = if cfg.insecure_http { "http" } else { "https" };
                    format!("{scheme}://{}", cfg.listen)
                })
                .trim_end_matches('/')
                .to_string(),
        },
    };
    // Whether the audit log has history (a missing anchor is then worth a warning).
    let had_history = !store
        .audit_range(1, 1)
        .await
        .map_err(|e| e.to_string())?
        .is_empty();
    let sovra = Arc::new(Sovra::new(store.clone(), hsm, Arc::new(SystemClock), scfg));
    sovra
        .keys()
        .ensure_default_location()
        .await
        .map_err(|e| format!("cannot initialise the default location: {e}"))?;
    // A node of one region holds only its locations' keys.
    if !cfg.locations.is_empty() {
        let extra: Vec<String> = sovra
            .hsm()
            .locations()
            .unwrap_or_default()
            .into_iter()
            .filter(|l| !cfg.locations.contains(l))
            .collect();
        if !extra.is_empty() {
            tracing::warn!(
                ?extra,
                "this node's HSM holds wrapping keys of locations its `locations` setting leaves out; it does not serve them (restore it with the setting in place to hold only its own)"
            );
        }
    }
    // The attestation token signing key exists from the first start (not created under load).
    sovra
        .attest()
        .signing_keys()
        .await
        .map_err(|e| format!("cannot initialise the attestation signing key: {e}"))?;
    // Compare the log with its anchor before serving (a shortened log is reported at once).
    if let Err(e) = sovra
        .audit()
        .advance_anchor_at_start(sovra.now(), had_history)
        .await
    {
        tracing::warn!(error = %e, "audit checkpoint failed");
    }
    // Audited after the log was compared with its anchor.
    let opened = match cfg.hsm.backend {
        _ if quorum_how.is_some() => quorum_how.unwrap_or_default(),
        HsmBackend::Software if cfg.hsm.unseal_pkcs11_token_label.is_some() => format!(
            "unsealed with a key wrapped by PKCS#11 token {:?}",
            cfg.hsm
                .unseal_pkcs11_token_label
                .as_deref()
                .unwrap_or_default()
        ),
        HsmBackend::Software if std::env::var_os("SOVRA_UNSEAL_KEY").is_some() => {
            "unsealed with SOVRA_UNSEAL_KEY".to_owned()
        }
        HsmBackend::Software if cfg.hsm.unseal_key_file.is_some() => {
            "unsealed with hsm.unseal_key_file".to_owned()
        }
        HsmBackend::Software => "unsealed with the data directory's unseal.key".to_owned(),
        HsmBackend::Pkcs11 => format!(
            "logged in to PKCS#11 token {:?}",
            cfg.hsm.pkcs11_token_label.as_deref().unwrap_or_default()
        ),
    };
    sovra
        .record_hsm_open(&opened)
        .await
        .map_err(|e| format!("cannot audit the HSM's opening: {e}"))?;
    for w in sovra.trust().trust_warnings().await.unwrap_or_default() {
        tracing::warn!("{w}");
    }
    let token_path = admin_token_path(&cfg.data_dir);
    let has_tokens = !store
        .scan(crate::model::TOKENS.collection(), None, 1)
        .await
        .map_err(|e| e.to_string())?
        .is_empty();
    let new_admin_token = if has_tokens {
        None
    } else {
        let token = sovra
            .access()
            .bootstrap_admin()
            .await
            .map_err(|e| format!("cannot create the admin token: {e}"))?;
        let line = zeroize::Zeroizing::new(format!("{}\n", token.as_str()));
        sovra_hsm::soft::write_private_file(&token_path, line.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", token_path.display()))?;
        Some(token)
    };
    let tls = tls_files(cfg)?;
    Ok(Opened {
        sovra,
        tls,
        new_admin_token,
    })
}
