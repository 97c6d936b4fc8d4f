//! Stored records: what the service layer keeps in the [`Store`](sovra_store::Store), as JSON.
//! These are not wire types; handlers convert them to [`sovra_proto`] types.

use serde::{Deserialize, Serialize};
use sovra_proto::admin::Role;
use sovra_proto::kms::{Algorithm, ProtectionLevel, Purpose, VersionState};
use sovra_store::Collection;
use std::collections::BTreeMap;

/// Locations served by this deployment.
pub const LOCATIONS: Collection = Collection("locations");
/// Key rings (parent: location name).
pub const KEY_RINGS: Collection = Collection("key_rings");
/// Crypto keys (parent: key ring name; due: next rotation).
pub const CRYPTO_KEYS: Collection = Collection("crypto_keys");
/// Key versions (parent: key name; due: scheduled destruction).
pub const VERSIONS: Collection = Collection("versions");
/// API tokens (name: token ID).
pub const TOKENS: Collection = Collection("tokens");
/// Role bindings (parent: principal).
pub const ROLE_BINDINGS: Collection = Collection("role_bindings");
/// Quota overrides (name: principal).
pub const QUOTAS: Collection = Collection("quotas");
/// Organisation settings (one record, `org`).
pub const SETTINGS: Collection = Collection("settings");
/// Attestation token signing keys (name: kid).
pub const ATTEST_SIGNING_KEYS: Collection = Collection("attest_signing_keys");
/// Attestation providers (name: provider ID).
pub const ATTEST_PROVIDERS: Collection = Collection("attest_providers");
/// Attestation policies (name: `{provider}/{type}`, parent: provider).
pub const ATTEST_POLICIES: Collection = Collection("attest_policies");
/// Reference-value sets (name: set ID).
pub const REFERENCE_VALUES: Collection = Collection("reference_values");
/// External token issuers trusted for key release (name: issuer URL).
pub const RELEASE_ISSUERS: Collection = Collection("release_issuers");
/// Server-issued single-use release nonces (name: nonce; due: expiry).
pub const RELEASE_NONCES: Collection = Collection("release_nonces");
/// TPM credential-activation challenges (name: challenge ID; due: expiry).
pub const TPM_CHALLENGES: Collection = Collection("tpm_challenges");
/// Collateral: certificates, Intel collateral bundles, trust anchors (name: SHA-256 hex).
pub const COLLATERAL: Collection = Collection("collateral");
/// Key-release response signing keys (name: kid).
pub const RELEASE_SIGNING_KEYS: Collection = Collection("release_signing_keys");
/// Signing keys of management statements: MAA policy tokens, audit checkpoints (name: kid).
pub const MANAGEMENT_SIGNING_KEYS: Collection = Collection("management_signing_keys");
/// Every collection above (sealing an older deployment's records walks them all).
pub const ALL: [Collection; 18] = [
    LOCATIONS,
    KEY_RINGS,
    CRYPTO_KEYS,
    VERSIONS,
    TOKENS,
    ROLE_BINDINGS,
    QUOTAS,
    SETTINGS,
    ATTEST_SIGNING_KEYS,
    ATTEST_PROVIDERS,
    ATTEST_POLICIES,
    REFERENCE_VALUES,
    RELEASE_ISSUERS,
    RELEASE_NONCES,
    TPM_CHALLENGES,
    COLLATERAL,
    RELEASE_SIGNING_KEYS,
    MANAGEMENT_SIGNING_KEYS,
];

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

/// Serialises a record body.
pub fn to_json<T: Serialize>(v: &T) -> crate::error::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| crate::error::Error::internal(format!("serialise: {e}")))
}

/// Parses a record body.
pub fn from_json<T: for<'de> Deserialize<'de>>(b: &[u8]) -> crate::error::Result<T> {
    serde_json::from_slice(b)
        .map_err(|e| crate::error::Error::internal(format!("stored record does not parse: {e}")))
}

/// The store name of a key version: zero-padded so versions list in numeric order.
pub fn version_key(key_name: &str, n: u32) -> String {
    format!("{key_name}/v/{n:010}")
}
