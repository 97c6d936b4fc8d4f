//! What an attest request carries, decoded (by the HTTP layer, from the native or the MAA
//! shape), and the check that bound data is what the evidence hashed.

use crate::error::{Error, Result};
use serde_json::Value;
use sovra_proto::ErrorCode;

/// Data the attester bound into its evidence.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The bytes whose hash the evidence carries.
    pub bytes: Vec<u8>,
    /// The same bytes parsed, when the data type is JSON.
    pub json: Option<Value>,
}

/// A decoded submission: everything the verifier, the binding checks and the token need.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// Evidence bytes.
    pub evidence: Vec<u8>,
    /// Certificates travelling with it.
    pub cert_chain: Vec<Vec<u8>>,
    /// Collateral sent with the request.
    pub collateral: Option<Vec<u8>>,
    /// Event log.
    pub event_log: Option<Vec<u8>>,
    /// Nonce the evidence itself must carry.
    pub expected_nonce: Option<Vec<u8>>,
    /// Runtime data.
    pub runtime: Option<Bound>,
    /// Init-time data.
    pub init_time: Option<Bound>,
    /// Echoed as the `nonce` claim.
    pub nonce_claim: Option<Value>,
    /// Policy text to evaluate instead of the configured one (MAA draft policy).
    pub draft_policy: Option<String>,
    /// MAA's TPM protocol: the service context the request names and the challenge it claims
    /// (the context's challenge becomes the expected nonce).
    pub tpm_context: Option<(Vec<u8>, Vec<u8>)>,
}

/// Checks that the evidence's report data starts with SHA-256 or SHA-384 of `data`.
pub fn check_binding(what: &str, report_data: &[u8], data: &[u8]) -> Result<()> {
    use aws_lc_rs::digest::{SHA256, SHA384, digest};
    for alg in [&SHA256, &SHA384] {
        let h = digest(alg, data);
        if report_data.get(..h.as_ref().len()) == Some(h.as_ref()) {
            return Ok(());
        }
    }
    Err(Error::new(
        ErrorCode::AttestReportDataMismatch,
        format!(
            "the evidence's report data does not start with SHA-256 or SHA-384 of the {what}; send the exact bytes the attester hashed"
        ),
    ))
}
