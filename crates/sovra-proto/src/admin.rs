//! Administration: API tokens, role bindings, quotas, organisation settings, audit records.

use serde::{Deserialize, Serialize};

/// A role, after Azure Managed HSM's built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Full control, including tokens, role bindings and settings.
    Administrator,
    /// Manages keys and their lifecycle; cannot use keys for cryptography.
    CryptoOfficer,
    /// Uses keys for cryptography (encrypt, decrypt, sign, verify, MAC) and reads metadata.
    CryptoUser,
    /// Releases exportable keys to attested TEEs.
    ReleaseUser,
    /// Manages attestation policies, reference values, collateral and trusted issuers.
    PolicyAdministrator,
    /// Reads metadata and the audit log; no cryptography.
    Auditor,
    /// Brings existing keys in: creates import jobs and imports versions (nothing else).
    KeyImporter,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Self::Administrator,
        Self::CryptoOfficer,
        Self::CryptoUser,
        Self::ReleaseUser,
        Self::PolicyAdministrator,
        Self::Auditor,
        Self::KeyImporter,
    ];

    /// The wire name, e.g. `CRYPTO_USER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Administrator => "ADMINISTRATOR",
            Self::CryptoOfficer => "CRYPTO_OFFICER",
            Self::CryptoUser => "CRYPTO_USER",
            Self::ReleaseUser => "RELEASE_USER",
            Self::PolicyAdministrator => "POLICY_ADMINISTRATOR",
            Self::Auditor => "AUDITOR",
            Self::KeyImporter => "KEY_IMPORTER",
        }
    }

    /// Parses `CRYPTO_USER`, `crypto-user` or `crypto_user`.
    pub fn parse(s: &str) -> Option<Role> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|r| r.as_str() == norm)
    }
}

/// An API token's metadata (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Token ID (public; used to revoke).
    pub id: String,
    /// The principal the token authenticates.
    pub principal: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When it was created.
    pub create_time: String,
    /// When it stops working, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// The principal (1–63 characters of `[A-Za-z0-9_.@-]`).
    pub principal: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Lifetime such as `"90d"`; absent means no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The one response that carries a token secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenResponse {
    /// The bearer token. Shown once; only its hash is stored.
    pub token: String,
    /// Its metadata.
    pub info: TokenInfo,
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTokensResponse {
    /// All tokens.
    pub tokens: Vec<TokenInfo>,
}

/// A role granted to a principal on a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    /// Binding ID.
    pub id: String,
    /// The principal.
    pub principal: String,
    /// The role.
    pub role: Role,
    /// `*`, or a resource name (location, key ring or key) the role applies at and below.
    pub scope: String,
    /// When it was created.
    pub create_time: String,
}

/// `POST /v1/roleBindings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoleBindingRequest {
    /// The principal.
    pub principal: String,
    /// The role.
    pub role: Role,
    /// `*` or a resource name.
    pub scope: String,
}

/// `GET /v1/roleBindings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRoleBindingsResponse {
    /// The bindings.
    pub role_bindings: Vec<RoleBinding>,
}

/// A principal's quotas (operations per minute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// The principal.
    pub principal: String,
    /// Symmetric operations (AES, HMAC, random) per minute.
    pub symmetric_per_minute: u64,
    /// Asymmetric operations (sign, asymmetric decrypt) per minute.
    pub asymmetric_per_minute: u64,
    /// Whether these are the defaults (no override stored).
    pub default: bool,
}

/// `PUT /v1/quotas/{principal}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetQuotaRequest {
    /// Symmetric operations per minute (1 to 10^9).
    pub symmetric_per_minute: u64,
    /// Asymmetric operations per minute (1 to 10^9).
    pub asymmetric_per_minute: u64,
}

/// Organisation-wide constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The location used when a command names none.
    pub default_location: String,
    /// Smallest `destroyScheduledDuration` a key may have.
    pub min_destroy_scheduled_duration: String,
    /// `destroyScheduledDuration` of keys that name none.
    pub default_destroy_scheduled_duration: String,
    /// Require versions to be DISABLED before they can be scheduled for destruction.
    pub require_disable_before_destroy: bool,
}

/// `PATCH /v1/settings`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSettingsRequest {
    /// New minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_destroy_scheduled_duration: Option<String>,
    /// New default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_destroy_scheduled_duration: Option<String>,
    /// New constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_disable_before_destroy: Option<bool>,
}

/// One audit-log record as exported (JSON lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Hash of the previous record (hex; zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash || seq || body` (hex).
    pub hash: String,
    /// The event.
    pub event: serde_json::Value,
}

/// `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerifyReport {
    /// Number of records checked.
    pub records: u64,
    /// Whether every link holds.
    pub ok: bool,
    /// The first broken record, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken_seq: Option<u64>,
    /// What is wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Hash of the last record (hex).
    pub head_hash: String,
}
