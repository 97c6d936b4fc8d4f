//! Stored records: what the service layer keeps in the [`Store`](sovra_store::Store), as JSON.
//! These are not wire types; handlers convert them to [`sovra_proto`] types.

pub use crate::records::{Record, Table};
use crate::services::attest::activation::ChallengeRec;
use crate::services::attest::collateral::CollateralRec;
use crate::services::attest::policy::PolicyRec;
use crate::services::attest::providers::ProviderRec;
use crate::services::attest::signing::SigningKeyRec;
use crate::services::attest::tpm_protocol::TpmContextRec;
use crate::services::release::NonceRec;
use crate::services::release::issuers::TrustedIssuer;
use serde::{Deserialize, Serialize};
use sovra_proto::admin::Role;
use sovra_proto::attest::ReferenceValues;
use sovra_proto::kms::{Algorithm, ProtectionLevel, Purpose, VersionState};
use sovra_store::Collection;
use std::collections::BTreeMap;

/// Locations served by this deployment (name: location ID).
pub const LOCATIONS: Table<LocationRec> = Table::new("locations");
/// Key rings (parent: location name).
pub const KEY_RINGS: Table<KeyRingRec> = Table::new("key_rings");
/// Crypto keys (parent: key ring name; due: next rotation).
pub const CRYPTO_KEYS: Table<CryptoKeyRec> = Table::new("crypto_keys");
/// Key versions (name: [`version_key`]; parent: key name; due: scheduled destruction).
pub const VERSIONS: Table<VersionRec> = Table::new("versions");
/// API tokens (name: token ID).
pub const TOKENS: Table<TokenRec> = Table::new("tokens");
/// Role bindings (name: `{principal}/{id}`; parent: principal).
pub const ROLE_BINDINGS: Table<RoleBindingRec> = Table::new("role_bindings");
/// Quota overrides (name: principal).
pub const QUOTAS: Table<QuotaRec> = Table::new("quotas");
/// Organisation settings (one record, `org`).
pub const SETTINGS: Table<SettingsRec> = Table::new("settings");
/// Attestation token signing keys (name: kid).
pub const ATTEST_SIGNING_KEYS: Table<SigningKeyRec> = Table::new("attest_signing_keys");
/// Attestation providers (name: provider ID).
pub const ATTEST_PROVIDERS: Table<ProviderRec> = Table::new("attest_providers");
/// Attestation policies (name: `{provider}/{type}`, parent: provider).
pub const ATTEST_POLICIES: Table<PolicyRec> = Table::new("attest_policies");
/// Reference-value sets (name: set ID).
pub const REFERENCE_VALUES: Table<ReferenceValues> = Table::new("reference_values");
/// External token issuers trusted for key release (name: issuer URL).
pub const RELEASE_ISSUERS: Table<TrustedIssuer> = Table::new("release_issuers");
/// Server-issued single-use release nonces (name: nonce; due: expiry).
pub const RELEASE_NONCES: Table<NonceRec> = Table::new("release_nonces");
/// TPM credential-activation challenges (name: challenge ID; due: expiry).
pub const TPM_CHALLENGES: Table<ChallengeRec> = Table::new("tpm_challenges");
/// Challenges of MAA's TPM protocol (name: the service context, hex; due: expiry).
pub const TPM_CONTEXTS: Table<TpmContextRec> = Table::new("tpm_contexts");
/// Collateral: certificates, Intel collateral bundles, trust anchors (name: SHA-256 hex;
/// parent: kind).
pub const COLLATERAL: Table<CollateralRec> = Table::new("collateral");
/// Key-release response signing keys (name: kid).
pub const RELEASE_SIGNING_KEYS: Table<SigningKeyRec> = Table::new("release_signing_keys");
/// Signing keys of management statements: MAA policy tokens, audit checkpoints (name: kid).
pub const MANAGEMENT_SIGNING_KEYS: Table<SigningKeyRec> = Table::new("management_signing_keys");
/// The owner root of key attestation (name: `owner`).
pub const OWNER_ROOT: Table<OwnerRootRec> = Table::new("owner_root");
/// Certificates of HSM key-attestation keys, issued by the owner root (name: SHA-256 of the
/// key's SPKI, hex).
pub const ATTESTATION_CERTS: Table<AttestationCertRec> = Table::new("attestation_certs");
/// Import jobs (name: `{ring}/importJobs/{id}`, parent: the ring).
pub const IMPORT_JOBS: Table<ImportJobRec> = Table::new("import_jobs");
/// Security-domain downloads (name: `first`, then a time-ordered id).
pub const SECURITY_DOMAIN_DOWNLOADS: Table<DomainDownloadRec> =
    Table::new("security_domain_downloads");
/// Deleted keys awaiting recovery or purge (name: the key's, parent: its ring).
pub const DELETED_KEYS: Table<DeletedKeyRec> = Table::new("deleted_keys");
/// Every collection above (sealing an older deployment's records walks them all).
pub const ALL: [Collection; 24] = [
    LOCATIONS.collection(),
    KEY_RINGS.collection(),
    CRYPTO_KEYS.collection(),
    VERSIONS.collection(),
    TOKENS.collection(),
    ROLE_BINDINGS.collection(),
    QUOTAS.collection(),
    SETTINGS.collection(),
    ATTEST_SIGNING_KEYS.collection(),
    ATTEST_PROVIDERS.collection(),
    ATTEST_POLICIES.collection(),
    REFERENCE_VALUES.collection(),
    RELEASE_ISSUERS.collection(),
    RELEASE_NONCES.collection(),
    TPM_CHALLENGES.collection(),
    TPM_CONTEXTS.collection(),
    COLLATERAL.collection(),
    RELEASE_SIGNING_KEYS.collection(),
    MANAGEMENT_SIGNING_KEYS.collection(),
    OWNER_ROOT.collection(),
    ATTESTATION_CERTS.collection(),
    IMPORT_JOBS.collection(),
    SECURITY_DOMAIN_DOWNLOADS.collection(),
    DELETED_KEYS.collection(),
];

/// A deleted key (Key Vault's soft delete): its record, moved out of `crypto_keys` so that no
/// operation finds it, until it is recovered or its retention ends and it is purged. Its
/// versions stay where they were.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeletedKeyRec {
    /// The key as it was.
    pub key: CryptoKeyRec,
    /// When it was deleted.
    pub delete_time: i64,
    /// When it is purged (its versions' material erased): the delete time plus the key's
    /// destroy-scheduled duration, so deleting never destroys sooner than destroying would.
    pub purge_time: i64,
    /// Who deleted it.
    pub principal: String,
}

impl Record for DeletedKeyRec {
    fn name(&self) -> String {
        self.key.name.clone()
    }
    fn parent(&self) -> String {
        parent_of(&self.key.name, "/cryptoKeys/")
    }
    fn due(&self) -> Option<i64> {
        Some(self.purge_time)
    }
}

/// A download of the security domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainDownloadRec {
    /// `first`, or a time-ordered id for later ones.
    pub name: String,
    /// When (Unix seconds).
    pub create_time: i64,
    /// Who asked.
    pub principal: String,
    /// The quorum.
    pub quorum: u8,
    /// SHA-256 of each certificate, hex.
    pub certificates: Vec<String>,
}

impl Record for DomainDownloadRec {
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// An import job: an RSA wrapping key generated inside the HSM that key material is wrapped to
/// for import, until it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportJobRec {
    /// `locations/{loc}/keyRings/{ring}/importJobs/{id}`.
    pub name: String,
    /// The key ring's name.
    pub ring: String,
    /// How material is wrapped to it.
    pub method: sovra_proto::kms::ImportMethod,
    /// Level of the versions imported with it.
    pub protection_level: ProtectionLevel,
    /// Creation time.
    pub create_time: i64,
    /// It accepts imports until then.
    pub expire_time: i64,
    /// The private key as the HSM wrapped it, bound to this job by the location key; base64.
    pub wrapped: String,
    /// The public key (SubjectPublicKeyInfo DER), base64.
    pub public_key: String,
    /// The key attestation statement about the wrapping key.
    pub attestation: String,
}

impl Record for ImportJobRec {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn parent(&self) -> String {
        self.ring.clone()
    }
}

/// The owner root: a CA certificate and its key (PKCS#8 ECDSA P-256, wrapped by the HSM under
/// the default location's key), created at first use. Its only use is to certify HSM
/// key-attestation keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnerRootRec {
    /// Always `owner`.
    pub name: String,
    /// The certificate, DER, base64.
    pub cert: String,
    /// The wrapped private key, base64 (absent when the operator's own CA certifies).
    pub key: Option<String>,
    /// The location whose HSM key wraps it.
    pub location: String,
}

impl Record for OwnerRootRec {
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// An HSM key-attestation key's certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttestationCertRec {
    /// SHA-256 of the key's SubjectPublicKeyInfo, hex.
    pub name: String,
    /// The certificate, DER, base64 (issued by the owner root).
    pub cert: String,
}

impl Record for AttestationCertRec {
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocationRec {
    /// Location ID.
    pub id: String,
    /// HSM backend name.
    pub hsm: String,
    /// Creation time.
    pub create_time: i64,
}

/// A key ring.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRingRec {
    /// Full name.
    pub name: String,
    /// Creation time.
    pub create_time: i64,
    /// Audit data-plane operations.
    #[serde(default)]
    pub audit_data_access: bool,
}

/// A crypto key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CryptoKeyRec {
    /// Full name.
    pub name: String,
    /// Purpose.
    pub purpose: Purpose,
    /// Creation time.
    pub create_time: i64,
    /// Algorithm of new versions.
    pub algorithm: Algorithm,
    /// Protection level of new versions.
    pub protection_level: ProtectionLevel,
    /// Rotation period in seconds.
    pub rotation_period: Option<u64>,
    /// Next automatic rotation.
    pub next_rotation_time: Option<i64>,
    /// Seconds a version stays DESTROY_SCHEDULED.
    pub destroy_scheduled_duration: u64,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Primary version number.
    pub primary: Option<u32>,
    /// Number of versions created so far (the next version is this + 1).
    pub version_count: u32,
    /// May be released to attested TEEs.
    #[serde(default)]
    pub exportable: bool,
    /// Release policy (JSON text, Azure SKR grammar).
    #[serde(default)]
    pub release_policy: Option<String>,
    /// The release policy can never change.
    #[serde(default)]
    pub release_policy_immutable: bool,
    /// Tags set through the Key Vault API (free-form strings, unlike labels).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The only operations allowed (absent: all the purpose offers). Sealed with the row, so a
    /// database writer cannot widen it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<sovra_proto::kms::KeyOp>>,
}

/// A key version. `material` is the wrapped key material (base64), absent once destroyed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRec {
    /// Full resource name.
    pub name: String,
    /// Version number.
    pub version: u32,
    /// State.
    pub state: VersionState,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Protection level.
    pub protection_level: ProtectionLevel,
    /// Creation time.
    pub create_time: i64,
    /// Scheduled destruction time.
    pub destroy_time: Option<i64>,
    /// Actual destruction time.
    pub destroy_event_time: Option<i64>,
    /// Wrapped material, base64.
    pub material: Option<String>,
    /// SubjectPublicKeyInfo DER (base64) of an `HSM`-level asymmetric key; bound to the
    /// material's wrapping, so a changed value fails the key's load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// What the HSM reported about an `HSM`-level key's material when it was generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm_attributes: Option<sovra_hsm::KeyAttributes>,
    /// The key attestation statement made at creation (compact JWS, ES256, signed by the
    /// HSM's attestation key; see docs/hsm.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
    /// Imported versions: a fingerprint of the material computed with the key itself (hex),
    /// kept after destruction so the same material, and only it, can be imported again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_check: Option<String>,
    /// Before this time the version is not used at all (Key Vault's `nbf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// From this time the version no longer encrypts, signs, MACs or is released; it still
    /// decrypts and verifies what it made (Key Vault's `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<i64>,
}

/// An API token (only the hash of its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRec {
    /// Public ID.
    pub id: String,
    /// Principal.
    pub principal: String,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Creation time.
    pub create_time: i64,
    /// Expiry.
    pub expire_time: Option<i64>,
    /// Revoked.
    pub revoked: bool,
}

/// A role binding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleBindingRec {
    /// ID.
    pub id: String,
    /// Principal.
    pub principal: String,
    /// Role.
    pub role: Role,
    /// Scope.
    pub scope: String,
    /// Creation time.
    pub create_time: i64,
}

/// A quota override.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaRec {
    /// Principal.
    pub principal: String,
    /// Symmetric operations per minute.
    pub symmetric_per_minute: u64,
    /// Asymmetric operations per minute.
    pub asymmetric_per_minute: u64,
}

/// Organisation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettingsRec {
    /// Default location.
    pub default_location: String,
    /// Minimum destroy-scheduled duration (seconds).
    pub min_destroy_scheduled_duration: u64,
    /// Default destroy-scheduled duration (seconds).
    pub default_destroy_scheduled_duration: u64,
    /// Disable before destroy.
    pub require_disable_before_destroy: bool,
}

impl SettingsRec {
    /// The defaults: 24 h minimum, 30 days default, no disable-before-destroy.
    pub fn defaults(default_location: &str) -> Self {
        Self {
            default_location: default_location.to_owned(),
            min_destroy_scheduled_duration: 86_400,
            default_destroy_scheduled_duration: 30 * 86_400,
            require_disable_before_destroy: false,
        }
    }
}

/// The store name of a key version: zero-padded so versions list in numeric order.
pub fn version_key(key_name: &str, n: u32) -> String {
    format!("{key_name}/v/{n:010}")
}

/// The part of a resource name before `/{segment}/…` (its parent resource).
fn parent_of(name: &str, segment: &str) -> String {
    name.rsplit_once(segment)
        .map_or_else(String::new, |(p, _)| p.to_owned())
}

impl Record for LocationRec {
    fn name(&self) -> String {
        self.id.clone()
    }
}

impl Record for KeyRingRec {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn parent(&self) -> String {
        parent_of(&self.name, "/keyRings/")
    }
}

impl Record for CryptoKeyRec {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn parent(&self) -> String {
        parent_of(&self.name, "/cryptoKeys/")
    }
    fn due(&self) -> Option<i64> {
        self.next_rotation_time
    }
}

impl Record for VersionRec {
    fn name(&self) -> String {
        version_key(&self.parent(), self.version)
    }
    fn parent(&self) -> String {
        parent_of(&self.name, "/cryptoKeyVersions/")
    }
    fn due(&self) -> Option<i64> {
        match self.state {
            VersionState::DestroyScheduled => self.destroy_time,
            VersionState::Enabled | VersionState::Disabled | VersionState::Destroyed => None,
        }
    }
}

impl Record for TokenRec {
    fn name(&self) -> String {
        self.id.clone()
    }
}

impl Record for RoleBindingRec {
    fn name(&self) -> String {
        format!("{}/{}", self.principal, self.id)
    }
    fn parent(&self) -> String {
        self.principal.clone()
    }
}

impl Record for QuotaRec {
    fn name(&self) -> String {
        self.principal.clone()
    }
}

/// The name of the one settings record.
pub const SETTINGS_NAME: &str = "org";

impl Record for SettingsRec {
    fn name(&self) -> String {
        SETTINGS_NAME.to_owned()
    }
}

impl Record for ReferenceValues {
    fn name(&self) -> String {
        self.name.clone()
    }
}
