//! The composition root: the only place that names concrete backends. It opens the data
//! directory (store, HSM, TLS material, bootstrap token) and builds the service layer.

use crate::clock::SystemClock;
use crate::config::{Config, HsmBackend, StoreBackend};
use crate::services::{ServiceConfig, Sovra};
use crate::tls::{self, TlsFiles};
use sovra_hsm::Hsm;
use sovra_hsm::soft::{SoftHsm, UnsealKey};
use sovra_proto::security_domain::UnsealQuorum;
use sovra_store::Store;
use sovra_store::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// The PKCS#11 "location" whose AES key wraps a software HSM's unseal key.
const UNSEAL_P11_KEY: &str = "sovra-unseal";
const UNSEAL_P11_AAD: &[u8] = b"sovra/unseal-key/v1";

/// The software HSM's unseal key held wrapped by a key inside a PKCS#11 token
/// (`hsm.unseal_pkcs11_*`), in `hsm/unseal.p11`. Made on first start; a node that had an
/// `unseal.key` file moves it into the token (and removes the file) on its first start so
/// configured.
fn pkcs11_unseal(cfg: &Config) -> Result<Option<UnsealKey>, String> {
    let h = &cfg.hsm;
    let (Some(module), Some(label), Some(pin_file)) = (
        &h.unseal_pkcs11_module,
        &h.unseal_pkcs11_token_label,
        &h.unseal_pkcs11_pin_file,
    ) else {
        if h.unseal_pkcs11_module.is_some()
            || h.unseal_pkcs11_token_label.is_some()
            || h.unseal_pkcs11_pin_file.is_some()
        {
            return Err(
                "hsm.unseal_pkcs11_module, hsm.unseal_pkcs11_token_label and hsm.unseal_pkcs11_pin_file go together".into(),
            );
        }
        return Ok(None);
    };
    if h.unseal_key_file.is_some() || std::env::var_os("SOVRA_UNSEAL_KEY").is_some() {
        return Err("the unseal key comes from one place: a PKCS#11 token (hsm.unseal_pkcs11_*) or hsm.unseal_key_file / SOVRA_UNSEAL_KEY, not both".into());
    }
    let pin = std::fs::read_to_string(pin_file).map_err(|e| {
        format!(
            "cannot read hsm.unseal_pkcs11_pin_file {}: {e}",
            pin_file.display()
        )
    })?;
    let token =
        sovra_hsm::pkcs11::Pkcs11Hsm::open(module, label, pin.trim_end_matches(['\n', '\r']))
            .map_err(|e| format!("the PKCS#11 token that holds the unseal key: {e}"))?;
    token
        .create_location(UNSEAL_P11_KEY)
        .map_err(|e| format!("the PKCS#11 token that holds the unseal key: {e}"))?;
    let dir = cfg.data_dir.join("hsm");
    let blob_path = dir.join("unseal.p11");
    if let Ok(blob) = std::fs::read(&blob_path) {
        let key = token.unwrap(UNSEAL_P11_KEY, UNSEAL_P11_AAD, &blob).map_err(|_| {
            format!(
                "{} does not open with the key in PKCS#11 token {label:?}: another token, or the file was altered",
                blob_path.display()
            )
        })?;
        return Ok(Some(UnsealKey::Bytes(key)));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join("unseal.key");
    let key = if dir.join("root.sealed").exists() {
        // An existing node: its unseal key moves into the token.
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "this node's HSM is sealed under a key that is neither in {} nor in the PKCS#11 token: {e}",
                file.display()
            )
        })?;
        sovra_proto::hex::decode(text.trim())
            .filter(|k| k.len() == 32)
            .map(sovra_crypto::SecretBytes::new)
            .ok_or_else(|| format!("{} is not a 64-hex-character key", file.display()))?
    } else {
        sovra_crypto::SecretBytes::new(sovra_crypto::random::bytes(32).map_err(|e| e.to_string())?)
    };
    let blob = token
        .wrap(UNSEAL_P11_KEY, UNSEAL_P11_AAD, key.expose())
        .map_err(|e| format!("wrapping the unseal key in the PKCS#11 token: {e}"))?;
    sovra_hsm::soft::write_private_file(&blob_path, &blob).map_err(|e| e.to_string())?;
    if file.exists() {
        std::fs::remove_file(&file)
            .and_then(|()| std::fs::File::open(&dir)?.sync_all())
            .map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
        tracing::warn!(token = %label, "the software HSM's unseal key moved into the PKCS#11 token; unseal.key was removed");
    }
    Ok(Some(UnsealKey::Bytes(key)))
}

/// Where the software HSM's unseal key comes from: a PKCS#11 token (`hsm.unseal_pkcs11_*`),
/// `hsm.unseal_key_file`, `SOVRA_UNSEAL_KEY`, or the data directory's `unseal.key`.
fn soft_unseal(cfg: &Config) -> Result<UnsealKey, String> {
    if unseal_quorum_path(cfg).exists() {
        return Err(format!(
            "the software HSM is sealed by a quorum of administrators ({}): start the node with `sovra serve` and have them run `sovra unseal submit`",
            unseal_quorum_path(cfg).display()
        ));
    }
    if let Some(k) = pkcs11_unseal(cfg)? {
        return Ok(k);
    }
    Ok(
        match (
            &cfg.hsm.unseal_key_file,
            std::env::var("SOVRA_UNSEAL_KEY").ok(),
        ) {
            (Some(f), _) => UnsealKey::File(f.clone()),
            (None, Some(hex)) => {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
                    .filter(|b| b.len() == 32)
                    .ok_or("SOVRA_UNSEAL_KEY must be 64 hex characters")?;
                UnsealKey::Bytes(sovra_crypto::SecretBytes::new(bytes))
            }
            (None, None) => UnsealKey::DefaultFile,
        },
    )
}

/// Where a software HSM sealed by a quorum keeps its split unseal key.
pub fn unseal_quorum_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("hsm").join("unseal-quorum.json")
}

/// The quorum this node's software HSM is sealed by, if it is (`sovra unseal init`).
pub fn unseal_quorum(cfg: &Config) -> Result<Option<UnsealQuorum>, String> {
    if cfg.hsm.backend != HsmBackend::Software {
        return Ok(None);
    }
    let path = unseal_quorum_path(cfg);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if cfg.hsm.unseal_key_file.is_some() || std::env::var_os("SOVRA_UNSEAL_KEY").is_some() {
        return Err(format!(
            "the software HSM is sealed by a quorum ({}); hsm.unseal_key_file and SOVRA_UNSEAL_KEY do not apply to it: unset them",
            path.display()
        ));
    }
    let q: UnsealQuorum = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    if q.format != sovra_proto::security_domain::UNSEAL_FORMAT
        || q.quorum < 2
        || usize::from(q.quorum) > q.shares.len()
    {
        return Err(format!(
            "{} is not a quorum this version reads",
            path.display()
        ));
    }
    Ok(Some(q))
}

/// Whether `key` unseals this node's software HSM root (a quorum's combined shares).
pub fn unseals(cfg: &Config, key: &sovra_crypto::SecretBytes) -> bool {
    SoftHsm::check_unseal(&cfg.data_dir.join("hsm"), key)
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

fn make_private_dir(dir: &Path) -> Result<(), String> {
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

/// Restores this node's software HSM from an opened security domain (`sovra security-domain
/// upload`, offline): only into a node whose HSM holds no keys, only over a database that holds
/// a deployment, and only if the restored HSM unseals that database's keys; otherwise nothing
/// is left behind. Audited (`securityDomain.upload`, with `detail`). Returns the locations
/// whose keys the node now holds.
pub async fn restore_security_domain(
    cfg: &Config,
    domain: &[u8],
    detail: serde_json::Value,
) -> Result<Vec<String>, crate::error::Error> {
    use crate::error::Error;
    use sovra_proto::ErrorCode;
    if cfg.hsm.backend != HsmBackend::Software {
        return Err(Error::new(
            ErrorCode::SecurityDomainUnsupported,
            "this node is configured with a PKCS#11 HSM, whose keys come back with the HSM's own backup mechanism (docs/hsm.md); a security domain restores the software HSM",
        ));
    }
    let failed = |m: String| Error::new(ErrorCode::Unavailable, m);
    make_private_dir(&cfg.data_dir).map_err(failed)?;
    let raw = open_store(cfg).await.map_err(failed)?;
    if !crate::services::sealed::holds_deployment(raw.as_ref())
        .await
        .map_err(failed)?
    {
        return Err(Error::new(
            ErrorCode::SecurityDomainInvalid,
            "this node's database holds no deployment to restore the keys of: point the node at the deployment's database (store settings) first",
        ));
    }
    drop(raw);
    let dir = cfg.data_dir.join("hsm");
    // A node of one region keeps only its locations' keys (`locations`).
    let keep = (!cfg.locations.is_empty()).then_some(cfg.locations.as_slice());
    let hsm = SoftHsm::restore(&dir, soft_unseal(cfg).map_err(failed)?, domain, keep).map_err(
        |e| match e {
            sovra_hsm::HsmError::Io(m) if m.contains("already holds") => {
                Error::new(ErrorCode::AlreadyExists, m)
            }
            other => Error::new(
                ErrorCode::SecurityDomainInvalid,
                format!("the security domain does not restore: {other}"),
            ),
        },
    )?;
    if let Err(e) = open_sealed_store(cfg, &hsm).await {
        for f in ["root.sealed", "keys.json", "unseal.key"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        return Err(Error::new(
            ErrorCode::SecurityDomainInvalid,
            format!(
                "this security domain is not this database's deployment; nothing was restored ({e})"
            ),
        ));
    }
    drop(hsm);
    let sovra = open_offline(cfg).await.map_err(failed)?;
    let locations = sovra.hsm().locations().unwrap_or_default();
    sovra
        .record_offline_hsm_event(
            crate::services::actions::Action::SecurityDomainUpload,
            detail,
        )
        .await?;
    Ok(locations)
}

/// Makes every start of this node need `quorum` of the administrators whose certificates are
/// given (`sovra unseal init`, offline, node stopped): the software HSM's root is sealed under
/// a new unseal key, split among them (`hsm/unseal-quorum.json`), and the unseal key file in
/// the data directory is removed. Audited (`hsm.sealByQuorum`).
pub async fn seal_by_quorum(
    cfg: &Config,
    certificates: &[String],
    quorum: u8,
) -> Result<UnsealQuorum, crate::error::Error> {
    use crate::error::Error;
    use sovra_proto::ErrorCode;
    if cfg.hsm.backend != HsmBackend::Software {
        return Err(Error::invalid(
            "a PKCS#11 HSM is opened with its own PIN or its vendor's quorum (M-of-N smart cards); quorum unsealing is for the software HSM",
        ));
    }
    let failed = |m: String| Error::new(ErrorCode::Unavailable, m);
    let path = unseal_quorum_path(cfg);
    if path.exists() {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!(
                "{} exists: this node is already sealed by a quorum",
                path.display()
            ),
        ));
    }
    let now = crate::clock::Clock::now(&SystemClock);
    let holders = crate::services::security_domain::holders(certificates, quorum, now)?;
    let dir = cfg.data_dir.join("hsm");
    if !dir.join("root.sealed").exists() {
        return Err(Error::invalid(format!(
            "{} holds no software HSM yet: start the node once first",
            dir.display()
        )));
    }
    let how = soft_unseal(cfg).map_err(failed)?;
    let default_file = matches!(how, UnsealKey::DefaultFile);
    let hsm = SoftHsm::open(&dir, how).map_err(|e| failed(e.to_string()))?;
    let key = sovra_crypto::SecretBytes::new(
        sovra_crypto::random::bytes(32).map_err(|e| failed(e.to_string()))?,
    );
    let spkis: Vec<&[u8]> = holders.iter().map(|h| h.spki.as_slice()).collect();
    let shares = sovra_crypto::quorum::share_out(key.expose(), &spkis, quorum)
        .map_err(|e| Error::internal(format!("splitting the unseal key: {e}")))?;
    let q = UnsealQuorum {
        format: sovra_proto::security_domain::UNSEAL_FORMAT.into(),
        create_time: crate::clock::rfc3339(now),
        quorum,
        shares: holders
            .iter()
            .zip(&shares)
            .map(
                |(h, (enc, commitment))| sovra_proto::security_domain::UnsealShare {
                    certificate_sha256: h.certificate_sha256.clone(),
                    public_key_sha256: h.public_key_sha256(),
                    encrypted_share: sovra_proto::b64::encode(enc),
                    commitment: sovra_proto::hex::encode(commitment),
                },
            )
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&q).map_err(|e| Error::internal(e.to_string()))?;
    // The quorum first, then the root under its key (one rename), then the old key file: a
    // crash in between leaves a node the old key still opens (remove unseal-quorum.json).
    sovra_hsm::soft::write_private_file(&path, &json).map_err(|e| failed(e.to_string()))?;
    hsm.reseal(&key).map_err(|e| failed(e.to_string()))?;
    drop(hsm);
    if default_file {
        std::fs::remove_file(dir.join("unseal.key"))
            .and_then(|()| std::fs::File::open(&dir)?.sync_all())
            .map_err(|e| {
                failed(format!(
                    "cannot remove {}: {e}",
                    dir.join("unseal.key").display()
                ))
            })?;
    }
    let sovra = open_offline_with(cfg, Some(key)).await.map_err(failed)?;
    sovra
        .record_offline_hsm_event(
            crate::services::actions::Action::HsmSealByQuorum,
            serde_json::json!({
            "quorum": quorum,
            "certificates": holders.iter().map(|h| h.certificate_sha256.as_str()).collect::<Vec<_>>(),
            }),
        )
        .await?;
    Ok(q)
}

/// The service layer over an existing deployment's store and HSM, for offline commands (no
/// listener, no bootstrap).
pub async fn open_offline(cfg: &Config) -> Result<Arc<Sovra>, String> {
    open_offline_with(cfg, None).await
}

async fn open_offline_with(
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
