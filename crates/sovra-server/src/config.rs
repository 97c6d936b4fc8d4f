//! Server configuration: a TOML file, then environment overrides, then command-line flags.
//!
//! Every field has a default (see [`Config::default`]), so `sovra serve` with no file works.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (database, software HSM, TLS material, admin token).
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Serve plain HTTP (only allowed on loopback addresses).
    pub insecure_http: bool,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// HSM settings.
    pub hsm: HsmConfig,
    /// Per-principal quotas.
    pub quota: QuotaConfig,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Caches.
    pub cache: CacheConfig,
    /// Logging.
    pub log: LogConfig,
    /// The location created on first start. Every node of a deployment serves it: it holds
    /// the deployment-wide keys (row seals, audit chain, token signing keys).
    pub default_location: String,
    /// The locations this node serves (its HSM holds their wrapping keys); empty: every
    /// location its HSM holds. Must include `default_location`.
    pub locations: Vec<String>,
    /// How often scheduled work (rotation, destruction) runs, in seconds.
    pub scheduler_interval_secs: u64,
    /// How long in-flight requests may take to finish on shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// Request-handling threads (0 = one per core).
    pub worker_threads: usize,
    /// The externally reachable base URL (issuer of attestation tokens, JWKS location);
    /// default `https://LISTEN`.
    pub public_url: Option<String>,
    /// Attestation service.
    pub attestation: AttestationConfig,
    /// The Azure Key Vault / Managed HSM compatible keys API.
    pub keyvault: KeyVaultConfig,
}

/// Which key rings the Key Vault API serves as vaults (see docs/azure.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyVaultConfig {
    /// The key ring (in the default location) a request addresses when its host is not in
    /// `vaults`.
    pub key_ring: String,
    /// Vaults by host name (as the client writes it, without the port): host → key ring ID.
    pub vaults: std::collections::BTreeMap<String, String>,
}

impl Default for KeyVaultConfig {
    fn default() -> Self {
        Self {
            key_ring: "keyvault".into(),
            vaults: Default::default(),
        }
    }
}

/// Attestation service settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationConfig {
    /// Token lifetime in seconds (MAA: 8 hours).
    pub token_ttl_secs: u64,
    /// Token signing algorithm: `RS256` (default), `ES256` or `ES384`.
    pub token_alg: String,
    /// Largest evidence request accepted, bytes (fits 8-GPU NVIDIA evidence with chains).
    pub max_evidence_bytes: usize,
    /// Clock skew allowed on a presented token's `nbf`/`exp`, seconds.
    pub clock_skew_secs: u64,
    /// Fetch missing SEV-SNP VCEKs from this AMD KDS base URL (e.g.
    /// `https://kdsintf.amd.com`) or a mirror. Unset (default): never fetch, stay offline.
    pub amd_kds_url: Option<String>,
    /// PEM CA certificates for HTTPS fetches (a mirror with a private CA); default: the
    /// system bundle.
    pub fetch_ca_file: Option<PathBuf>,
    /// Fetch missing Intel collateral from this PCS/PCCS (API v4) base URL (e.g. your PCCS,
    /// or `https://api.trustedservices.intel.com`). Unset (default): never fetch.
    pub intel_pcs_url: Option<String>,
    /// The Intel SGX root CA CRL (for Intel's own PCS:
    /// `https://certificates.trustedservices.intel.com/IntelSGXRootCA.der`); default: the PCCS
    /// route `/sgx/certification/v4/rootcacrl` under `intel_pcs_url`.
    pub intel_root_crl_url: Option<String>,
    /// Let external issuers' JWKS URLs (chosen through the API) reach loopback, link-local and
    /// private addresses; default off, so a JWKS URL cannot probe the server's own network.
    pub jwks_allow_private: bool,
    /// Refuse Intel (TDX/SGX) evidence judged with TCB info older than this
    /// `tcbEvaluationDataNumber`; 0 (default): any Intel-signed collateral inside its window.
    pub min_tcb_evaluation_data_number: u64,
    /// The minimum REPORTED_TCB per SEV-SNP processor generation for the compliance claim.
    pub snp_min_tcb: SnpMinTcbConfig,
}

/// The minimum reported TCB per SEV-SNP generation: `"bootloader=B,tee=T,snp=S,microcode=M"`
/// (`,fmc=F` on Turin; left-out components are 0), or `"none"`: that generation's evidence is
/// never called compliant.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnpMinTcbConfig {
    /// EPYC 7003.
    pub milan: String,
    /// EPYC 9004.
    pub genoa: String,
    /// EPYC 9005.
    pub turin: String,
}

impl Default for SnpMinTcbConfig {
    fn default() -> Self {
        use sovra_attest::snp::minimum::MinimumTcbs;
        let show = |m: Option<sovra_attest::snp::minimum::MinimumTcb>| {
            m.map_or_else(|| "none".to_string(), |m| m.to_string())
        };
        Self {
            milan: show(MinimumTcbs::DEFAULT.milan),
            genoa: show(MinimumTcbs::DEFAULT.genoa),
            turin: show(MinimumTcbs::DEFAULT.turin),
        }
    }
}

impl SnpMinTcbConfig {
    /// The minimums, or what is wrong with one of them.
    pub fn parse(&self) -> Result<sovra_attest::snp::minimum::MinimumTcbs, String> {
        let one = |name: &str, v: &str| match v.trim() {
            "none" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|e| format!("attestation.snp_min_tcb.{name}: {e}, or \"none\"")),
        };
        Ok(sovra_attest::snp::minimum::MinimumTcbs {
            milan: one("milan", &self.milan)?,
            genoa: one("genoa", &self.genoa)?,
            turin: one("turin", &self.turin)?,
        })
    }
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: 8 * 3600,
            token_alg: "RS256".into(),
            max_evidence_bytes: 1 << 20,
            clock_skew_secs: 60,
            amd_kds_url: None,
            fetch_ca_file: None,
            intel_pcs_url: None,
            intel_root_crl_url: None,
            jwks_allow_private: false,
            min_tcb_evaluation_data_number: 0,
            snp_min_tcb: SnpMinTcbConfig::default(),
        }
    }
}

/// TLS.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain to serve instead of the generated one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Extra DNS names / IPs for the generated server certificate.
    pub extra_names: Vec<String>,
}

/// Store backend.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (default) or `postgres`.
    pub backend: StoreBackend,
    /// PostgreSQL connection string (`postgres://…`), for `postgres`. A server that is not on
    /// this machine needs `sslmode=verify-full` (or an explicit `sslmode=disable`).
    pub url: Option<String>,
    /// CA certificates (PEM) for the PostgreSQL server's certificate; default: the system bundle.
    pub ca_file: Option<PathBuf>,
}

/// Which store.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded SQLite in the data directory.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// HSM backend.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct HsmConfig {
    /// `software` (default) or `pkcs11`.
    pub backend: HsmBackend,
    /// Software HSM: file with the unseal key (hex); default `DATA_DIR/hsm/unseal.key`.
    pub unseal_key_file: Option<PathBuf>,
    /// Software HSM: keep the unseal key wrapped by a key inside this PKCS#11 token instead
    /// (`DATA_DIR/hsm/unseal.p11`); the module path.
    pub unseal_pkcs11_module: Option<PathBuf>,
    /// Software HSM: the label of the token that wraps the unseal key.
    pub unseal_pkcs11_token_label: Option<String>,
    /// Software HSM: the file holding that token's user PIN.
    pub unseal_pkcs11_pin_file: Option<PathBuf>,
    /// PKCS#11: module path (e.g. /usr/lib/softhsm/libsofthsm2.so).
    pub pkcs11_module: Option<PathBuf>,
    /// PKCS#11: token label.
    pub pkcs11_token_label: Option<String>,
    /// PKCS#11: file holding the user PIN.
    pub pkcs11_pin_file: Option<PathBuf>,
    /// PKCS#11: calls into the HSM that may run at once (default 16).
    pub sessions: Option<usize>,
    /// PKCS#11: seconds a call into the HSM may take before the request fails with
    /// `HSM_UNAVAILABLE` (default 10).
    pub call_timeout_secs: Option<u64>,
    /// Protection level of keys created without one: `HSM` by default with a PKCS#11 HSM,
    /// `SOFTWARE` with the software HSM.
    pub default_protection_level: Option<sovra_proto::kms::ProtectionLevel>,
    /// Software HSM: whether an Administrator may download the security domain `once` (the
    /// default: later downloads need this set to `always` by whoever configures the node) or
    /// `always`.
    pub security_domain_downloads: Option<SecurityDomainDownloads>,
}

/// How often the security domain may be downloaded through the API.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecurityDomainDownloads {
    /// Once per deployment (its activation); then only after an operator allows more.
    #[default]
    Once,
    /// Whenever an Administrator asks.
    Always,
}

/// Which HSM.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HsmBackend {
    /// Software HSM in the data directory.
    #[default]
    Software,
    /// A PKCS#11 module.
    Pkcs11,
}

/// Default quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Symmetric operations per minute per principal.
    pub symmetric_per_minute: u64,
    /// Asymmetric operations per minute per principal.
    pub asymmetric_per_minute: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            symmetric_per_minute: 30_000,
            asymmetric_per_minute: 3_000,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Requests without an API token (attestation, TPM challenges) per second per source
    /// address, bursts of twice that; 0: unlimited.
    pub anonymous_per_ip_per_second: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client for
    /// the per-source budgets; no one else's is believed.
    pub trusted_proxies: Vec<String>,
    /// Failed authentications per second per source address, bursts of twice that; past it a
    /// source is refused (429) before its token is looked up. 0: unlimited.
    pub failed_auth_per_ip_per_second: u64,
    /// Threads verifying evidence and evaluating policies (0: one per core).
    pub work_threads: usize,
    /// Verifications that may wait for those threads; past it, requests get 503 OVERLOADED.
    pub work_queue: usize,
    /// Connections served at once (kept below the open-file limit).
    pub max_connections: usize,
    /// Connections from one source address at once (trusted proxies are exempt); 0: no limit.
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body.
    pub body_timeout_secs: u64,
    /// Seconds a connection may go without a byte in either direction before it is closed.
    pub idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            anonymous_per_ip_per_second: 100,
            trusted_proxies: Vec::new(),
            failed_auth_per_ip_per_second: 5,
            work_threads: 0,
            work_queue: 256,
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
        }
    }
}

/// Caches.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Metadata cache lifetime, milliseconds (bounds how stale another node's change can be).
    pub metadata_ttl_ms: u64,
    /// Unwrapped key versions kept in memory.
    pub material_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            metadata_ttl_ms: 2000,
            material_entries: 10_000,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `sovra_server=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("sovra-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            insecure_http: false,
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            hsm: HsmConfig::default(),
            quota: QuotaConfig::default(),
            limits: LimitsConfig::default(),
            cache: CacheConfig::default(),
            log: LogConfig::default(),
            default_location: "global".into(),
            locations: Vec::new(),
            scheduler_interval_secs: 5,
            shutdown_grace_secs: 30,
            worker_threads: 0,
            public_url: None,
            attestation: AttestationConfig::default(),
            keyvault: KeyVaultConfig::default(),
        }
    }
}

/// The environment variables that override configuration, and the field each sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SOVRA_DATA_DIR", "data_dir"),
    ("SOVRA_KEYVAULT_KEY_RING", "keyvault.key_ring"),
    ("SOVRA_LISTEN", "listen"),
    ("SOVRA_STORE_BACKEND", "store.backend"),
    ("SOVRA_STORE_URL", "store.url"),
    ("SOVRA_STORE_CA_FILE", "store.ca_file"),
    ("SOVRA_HSM_BACKEND", "hsm.backend"),
    ("SOVRA_UNSEAL_KEY_FILE", "hsm.unseal_key_file"),
    ("SOVRA_PKCS11_MODULE", "hsm.pkcs11_module"),
    ("SOVRA_PKCS11_TOKEN_LABEL", "hsm.pkcs11_token_label"),
    ("SOVRA_PKCS11_PIN_FILE", "hsm.pkcs11_pin_file"),
    ("SOVRA_UNSEAL_PKCS11_MODULE", "hsm.unseal_pkcs11_module"),
    (
        "SOVRA_UNSEAL_PKCS11_TOKEN_LABEL",
        "hsm.unseal_pkcs11_token_label",
    ),
    ("SOVRA_UNSEAL_PKCS11_PIN_FILE", "hsm.unseal_pkcs11_pin_file"),
    ("SOVRA_HSM_SESSIONS", "hsm.sessions"),
    ("SOVRA_HSM_CALL_TIMEOUT_SECS", "hsm.call_timeout_secs"),
    (
        "SOVRA_HSM_DEFAULT_PROTECTION_LEVEL",
        "hsm.default_protection_level",
    ),
    (
        "SOVRA_HSM_SECURITY_DOMAIN_DOWNLOADS",
        "hsm.security_domain_downloads",
    ),
    (
        "SOVRA_QUOTA_SYMMETRIC_PER_MINUTE",
        "quota.symmetric_per_minute",
    ),
    (
        "SOVRA_QUOTA_ASYMMETRIC_PER_MINUTE",
        "quota.asymmetric_per_minute",
    ),
    ("SOVRA_MAX_BODY_BYTES", "limits.max_body_bytes"),
    (
        "SOVRA_LIMITS_ANONYMOUS_PER_IP_PER_SECOND",
        "limits.anonymous_per_ip_per_second",
    ),
    (
        "SOVRA_LIMITS_FAILED_AUTH_PER_IP_PER_SECOND",
        "limits.failed_auth_per_ip_per_second",
    ),
    ("SOVRA_LIMITS_WORK_THREADS", "limits.work_threads"),
    ("SOVRA_LIMITS_WORK_QUEUE", "limits.work_queue"),
    ("SOVRA_LIMITS_MAX_CONNECTIONS", "limits.max_connections"),
    (
        "SOVRA_LIMITS_MAX_CONNECTIONS_PER_IP",
        "limits.max_connections_per_ip",
    ),
    (
        "SOVRA_LIMITS_HEADER_TIMEOUT_SECS",
        "limits.header_timeout_secs",
    ),
    ("SOVRA_LIMITS_BODY_TIMEOUT_SECS", "limits.body_timeout_secs"),
    ("SOVRA_LIMITS_IDLE_TIMEOUT_SECS", "limits.idle_timeout_secs"),
    ("SOVRA_LOG_FORMAT", "log.format"),
    ("SOVRA_LOG_LEVEL", "log.level"),
    ("SOVRA_SCHEDULER_INTERVAL_SECS", "scheduler_interval_secs"),
    ("SOVRA_WORKER_THREADS", "worker_threads"),
    ("SOVRA_PUBLIC_URL", "public_url"),
    (
        "SOVRA_ATTESTATION_TOKEN_TTL_SECS",
        "attestation.token_ttl_secs",
    ),
    ("SOVRA_ATTESTATION_TOKEN_ALG", "attestation.token_alg"),
    (
        "SOVRA_ATTESTATION_CLOCK_SKEW_SECS",
        "attestation.clock_skew_secs",
    ),
    ("SOVRA_ATTESTATION_AMD_KDS_URL", "attestation.amd_kds_url"),
    (
        "SOVRA_ATTESTATION_FETCH_CA_FILE",
        "attestation.fetch_ca_file",
    ),
    (
        "SOVRA_ATTESTATION_INTEL_PCS_URL",
        "attestation.intel_pcs_url",
    ),
    (
        "SOVRA_ATTESTATION_INTEL_ROOT_CRL_URL",
        "attestation.intel_root_crl_url",
    ),
    ("SOVRA_CACHE_METADATA_TTL_MS", "cache.metadata_ttl_ms"),
    (
        "SOVRA_ATTESTATION_JWKS_ALLOW_PRIVATE",
        "attestation.jwks_allow_private",
    ),
    (
        "SOVRA_ATTESTATION_MIN_TCB_EVALUATION_DATA_NUMBER",
        "attestation.min_tcb_evaluation_data_number",
    ),
    (
        "SOVRA_ATTESTATION_SNP_MIN_TCB_MILAN",
        "attestation.snp_min_tcb.milan",
    ),
    (
        "SOVRA_ATTESTATION_SNP_MIN_TCB_GENOA",
        "attestation.snp_min_tcb.genoa",
    ),
    (
        "SOVRA_ATTESTATION_SNP_MIN_TCB_TURIN",
        "attestation.snp_min_tcb.turin",
    ),
];

/// Environment overrides of list settings: comma-separated (empty = an empty list).
const ENV_LIST_OVERRIDES: &[(&str, &str)] = &[
    ("SOVRA_LIMITS_TRUSTED_PROXIES", "limits.trusted_proxies"),
    ("SOVRA_LOCATIONS", "locations"),
];

impl Config {
    /// Loads `file` (if given), then applies environment overrides from `env`.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut table: toml::Table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read config file {}: {e}", p.display()))?;
                text.parse()
                    .map_err(|e| format!("config file {} is not valid TOML: {e}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (var, field) in ENV_OVERRIDES {
            if let Some(v) = env(var) {
                set_path(&mut table, field, scalar(&v));
            }
        }
        for (var, field) in ENV_LIST_OVERRIDES {
            if let Some(v) = env(var) {
                let items = v
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(|i| toml::Value::String(i.to_owned()))
                    .collect();
                set_path(&mut table, field, toml::Value::Array(items));
            }
        }
        let cfg: Config = table
            .try_into()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks cross-field rules.
    pub fn check(&self) -> Result<(), String> {
        if self.insecure_http && !self.listen.ip().is_loopback() {
            return Err(format!(
                "plain HTTP is only allowed on loopback addresses, not {}; remove --insecure-http or listen on 127.0.0.1",
                self.listen
            ));
        }
        if self.store.backend == StoreBackend::Postgres && self.store.url.is_none() {
            return Err("store.backend = \"postgres\" needs store.url (or SOVRA_STORE_URL)".into());
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err("tls.cert_file and tls.key_file go together".into());
        }
        if let Some(bad) = self
            .limits
            .trusted_proxies
            .iter()
            .find(|p| crate::http::limit::Cidr::parse(p).is_none())
        {
            return Err(format!(
                "limits.trusted_proxies: {bad:?} is not an address or CIDR range (e.g. 10.0.0.0/8)"
            ));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err("limits.max_body_bytes must be at least 1024".into());
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.header_timeout_secs", l.header_timeout_secs),
            ("limits.body_timeout_secs", l.body_timeout_secs),
            ("limits.idle_timeout_secs", l.idle_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(format!("{name} must be between 1 and 3600 seconds"));
            }
        }
        if l.max_connections == 0 || l.work_queue == 0 {
            return Err("limits.max_connections and limits.work_queue must be at least 1".into());
        }
        sovra_proto::names::check_id("location", &self.default_location).map_err(|e| e.0)?;
        sovra_proto::names::check_id("key ring", &self.keyvault.key_ring)
            .map_err(|e| format!("keyvault.key_ring: {}", e.0))?;
        for (host, ring) in &self.keyvault.vaults {
            sovra_proto::names::check_id("key ring", ring)
                .map_err(|e| format!("keyvault.vaults.{host:?}: {}", e.0))?;
        }
        for l in &self.locations {
            sovra_proto::names::check_id("location", l)
                .map_err(|e| format!("locations: {}", e.0))?;
        }
        if !self.locations.is_empty() && !self.locations.contains(&self.default_location) {
            return Err(format!(
                "locations must include the default location {:?}: every node serves it (it holds the deployment-wide keys)",
                self.default_location
            ));
        }
        self.attestation.snp_min_tcb.parse()?;
        Ok(())
    }
}

/// Sets `a.b.c = value` in a TOML table, parsing numbers and booleans.
fn scalar(value: &str) -> toml::Value {
    if let Ok(n) = value.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = value.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(value.to_owned())
    }
}

fn set_path(table: &mut toml::Table, path: &str, v: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            return;
        };
        t = inner;
    }
    t.insert(last.to_owned(), v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sovra.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\n[quota]\nsymmetric_per_minute = 5\n",
        )
        .unwrap();
        let env = |k: &str| (k == "SOVRA_QUOTA_SYMMETRIC_PER_MINUTE").then(|| "7".to_string());
        let c = Config::load(Some(&f), env).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.quota.symmetric_per_minute, 7);
        assert_eq!(c.quota.asymmetric_per_minute, 3000);
    }

    #[test]
    fn list_settings_from_the_environment() {
        let env = |k: &str| {
            (k == "SOVRA_LIMITS_TRUSTED_PROXIES").then(|| " 10.0.0.0/8, 192.0.2.7 ,".to_string())
        };
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.limits.trusted_proxies, ["10.0.0.0/8", "192.0.2.7"]);
        c.check().unwrap();
        let env =
            |k: &str| (k == "SOVRA_LIMITS_TRUSTED_PROXIES").then(|| "10.0.0.0/99".to_string());
        let err = Config::load(None, env).and_then(|c| c.check()).unwrap_err();
        assert!(err.contains("10.0.0.0/99"), "{err}");
    }

    #[test]
    fn snp_minimums_from_file_and_environment() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sovra.toml");
        std::fs::write(
            &f,
            "[attestation.snp_min_tcb]\nmilan = \"bootloader=4,snp=24,microcode=213\"\n",
        )
        .unwrap();
        let env = |k: &str| (k == "SOVRA_ATTESTATION_SNP_MIN_TCB_GENOA").then(|| "none".into());
        let m = Config::load(Some(&f), env)
            .unwrap()
            .attestation
            .snp_min_tcb
            .parse()
            .unwrap();
        assert_eq!(m.milan.unwrap().microcode, 213);
        assert_eq!(m.genoa, None);
        let env = |k: &str| (k == "SOVRA_ATTESTATION_SNP_MIN_TCB_TURIN").then(|| "fw=1".into());
        let err = Config::load(None, env).unwrap_err();
        assert!(err.contains("attestation.snp_min_tcb.turin"), "{err}");
    }

    #[test]
    fn fail_unknown_key_and_public_http() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sovra.toml");
        std::fs::write(&f, "listn = \"x\"\n").unwrap();
        assert!(
            Config::load(Some(&f), |_| None)
                .unwrap_err()
                .contains("listn")
        );
        std::fs::write(&f, "listen = \"0.0.0.0:80\"\ninsecure_http = true\n").unwrap();
        assert!(
            Config::load(Some(&f), |_| None)
                .unwrap_err()
                .contains("loopback")
        );
    }
}
