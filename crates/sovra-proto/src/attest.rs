//! Attestation: native requests and responses, and the MAA-compatible shapes.
//!
//! Binary fields are base64 (standard or URL-safe, padded or not; see [`crate::b64`]).

use serde::{Deserialize, Serialize};

/// Data the attester binds into its evidence (MAA `runtimeData` / `initTimeData`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundData {
    /// The bytes (base64url in MAA; either alphabet accepted).
    pub data: String,
    /// `Binary` or `JSON` (then the bytes are UTF-8 JSON and become the `x-ms-runtime` claim).
    #[serde(rename = "dataType", default)]
    pub data_type: Option<String>,
}

/// `POST /v1/attest/{type}` (and per provider): evidence in, token out.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AttestRequest {
    /// The evidence exactly as the platform produced it.
    pub evidence: String,
    /// Certificates travelling with the evidence (each a PEM bundle or a DER certificate).
    #[serde(default)]
    pub cert_chain: Vec<String>,
    /// Collateral (Intel PCS/PCCS JSON for tdx/sgx) if not taken from the collateral store.
    #[serde(default)]
    pub collateral: Option<String>,
    /// Event log to replay (TCG crypto-agile log, CCEL).
    #[serde(default)]
    pub event_log: Option<String>,
    /// Runtime data whose SHA-256 (or SHA-384) the evidence's report data must start with.
    #[serde(default)]
    pub runtime_data: Option<BoundData>,
    /// Init-time data (SNP: its SHA-256 must equal HOST_DATA).
    #[serde(default)]
    pub init_time_data: Option<BoundData>,
    /// The nonce the evidence itself must carry (hex), checked by the verifier.
    #[serde(default)]
    pub expected_nonce: Option<String>,
    /// A value echoed in the token's `nonce` claim.
    #[serde(default)]
    pub nonce: Option<serde_json::Value>,
}

/// The response of every attest endpoint: `{"token": JWT}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttestResponse {
    /// The signed attestation token.
    pub token: String,
}

/// MAA `POST /attest/{SevSnpVm|SgxEnclave|OpenEnclave|TdxVm|Tpm}` body.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MaaAttestRequest {
    /// SevSnpVm / OpenEnclave: base64url evidence.
    #[serde(default)]
    pub report: Option<String>,
    /// SgxEnclave / TdxVm: base64url quote.
    #[serde(default)]
    pub quote: Option<String>,
    /// Tpm: base64url of a message of MAA's TPM protocol (`{"type": "aikcert"}` or
    /// `{"request": JWS}`), or of Sovra's TPM evidence envelope.
    #[serde(default)]
    pub data: Option<String>,
    /// Runtime data.
    #[serde(default)]
    pub runtime_data: Option<BoundData>,
    /// Init-time data.
    #[serde(default)]
    pub init_time_data: Option<BoundData>,
    /// Evaluate with this policy text instead of the configured one; the token is unsigned.
    #[serde(default)]
    pub draft_policy_for_attestation: Option<String>,
    /// Echoed in the token's `nonce` claim (a string or a number).
    #[serde(default)]
    pub nonce: Option<serde_json::Value>,
}

/// An attestation provider (tenant): its own policies, its own issuer URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Provider ID.
    pub name: String,
    /// The `iss` of its tokens.
    pub issuer: String,
    /// Creation time, RFC 3339.
    pub create_time: String,
}

/// A policy of one provider for one evidence type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyInfo {
    /// Evidence type.
    pub evidence_type: String,
    /// `maa` or `rego`.
    pub language: String,
    /// The policy text.
    pub text: String,
    /// `x-ms-policy-hash` of the text.
    pub hash: String,
    /// True while the built-in default applies.
    pub is_default: bool,
    /// Subject of the certificate that signed it, if it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

/// `PUT …/policies/{type}` (native).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetPolicyRequest {
    /// `maa` (default) or `rego`.
    #[serde(default)]
    pub language: Option<String>,
    /// The policy text, or a JWS (MAA format) whose body carries it, signed or not.
    pub policy: String,
}

/// A named set of accepted measurements policies can refer to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReferenceValues {
    /// Set ID (e.g. `snp-prod-images`).
    #[serde(default)]
    pub name: String,
    /// Claim name → accepted values (lowercase hex for binary claims).
    pub values: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
    /// Last update, RFC 3339 (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
}

/// `POST /v1/attestation/collateral`: certificates or Intel collateral to keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportCollateralRequest {
    /// `amd-certs` (PEM/DER certificates: ASK, ASVK, ARK, VCEK, VLEK), `intel` (PCS/PCCS JSON
    /// bundle as in Sovra's docs), or `trust-anchor` (a root to trust for `platform`).
    pub kind: String,
    /// Platform for `trust-anchor`: amd, intel, nitro, nvidia, tpm.
    #[serde(default)]
    pub platform: Option<String>,
    /// The content, base64.
    pub content: String,
}

/// What a piece of stored collateral is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CollateralKind {
    /// AMD certificates (ASK, ASVK, ARK, VCEK, VLEK): chain candidates.
    AmdCerts,
    /// Intermediate certificates for any platform: chain candidates.
    Certs,
    /// An Intel PCS/PCCS bundle (TCB info, QE identity, CRLs, chains).
    Intel,
    /// A root trusted for one platform (operator-added).
    TrustAnchor,
    /// A certificate whose key may sign attestation policies (isolated mode).
    PolicySigner,
}

impl CollateralKind {
    /// Every kind.
    pub const ALL: [CollateralKind; 5] = [
        Self::AmdCerts,
        Self::Certs,
        Self::Intel,
        Self::TrustAnchor,
        Self::PolicySigner,
    ];

    /// The name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmdCerts => "amd-certs",
            Self::Certs => "certs",
            Self::Intel => "intel",
            Self::TrustAnchor => "trust-anchor",
            Self::PolicySigner => "policy-signer",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether collateral of this kind changes what is trusted (a root, or a policy signer):
    /// only an Administrator imports or removes it.
    pub fn changes_trust(self) -> bool {
        match self {
            Self::TrustAnchor | Self::PolicySigner => true,
            Self::AmdCerts | Self::Certs | Self::Intel => false,
        }
    }
}

/// One stored piece of collateral.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollateralInfo {
    /// ID (SHA-256 of the content, hex).
    pub id: String,
    /// Kind as imported.
    pub kind: String,
    /// Platform for trust anchors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// What it is (certificate subjects, FMSPC).
    pub description: String,
    /// Import time, RFC 3339.
    pub create_time: String,
}
