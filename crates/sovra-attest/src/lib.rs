//! Sovra's attestation verifiers.
//!
//! Each evidence type has one [`Verifier`]. A verifier takes the raw evidence exactly as a
//! platform produced it (plus any collateral and certificates that travel with it), checks every
//! signature, certificate chain, TCB rule and binding, and only then returns
//! [`VerifiedClaims`]. Nothing here does I/O: trust anchors, collateral and the verification time
//! are parameters, so verifying "as of" a pinned date is an ordinary call.
//!
//! ```text
//! raw evidence ──► Verifier::verify(input, ctx) ──► VerifiedClaims ──► policy
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod claims;
pub mod error;
pub mod evidence;
pub mod key_statement;
pub mod maa;
pub mod x509;

pub mod azure;
pub mod dcap;
pub mod nitro;
pub mod nvidia;
pub mod sgx;
pub mod snp;
pub mod tdx;
pub mod tpm;

pub use claims::VerifiedClaims;
pub use error::AttestError;
pub use evidence::{EvidenceInput, EvidenceType, TrustStore, VerifyContext};

/// A verifier for one evidence type.
pub trait Verifier: Send + Sync + std::fmt::Debug {
    /// The evidence type this verifier accepts.
    fn evidence_type(&self) -> EvidenceType;

    /// Checks `input` completely and returns its claims, or the first check that failed.
    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError>;

    /// The certificate hierarchy that roots this type's evidence (where operator-added trust
    /// anchors for it go).
    fn platform(&self) -> evidence::Platform;

    /// MAA's `x-ms-attestation-type` for this evidence.
    fn maa_attestation_type(&self) -> &'static str;

    /// The names MAA's `/attest/{type}` route gives this evidence type, if it has one.
    fn maa_route_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The MAA-named claims of `v` (added beside the native claims).
    fn maa_claims(&self, _v: &VerifiedClaims) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    /// Adjusts the claims a policy issued (Azure CVMs restate compliance in MAA's words).
    fn after_policy(&self, _issued: &mut serde_json::Map<String, serde_json::Value>) {}

    /// Where vendor collateral missing from the request and the store may be fetched from,
    /// when the operator opts in.
    fn vendor_source(&self) -> VendorSource {
        VendorSource::None
    }

    /// The Intel quote inside `evidence` (its FMSPC chooses the Intel collateral).
    fn intel_quote(&self, _evidence: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// The credential-activation step `evidence` carries, if its type has one (TPM: the
    /// answer to a server-issued challenge).
    fn activation(&self, _evidence: &[u8]) -> Option<serde_json::Value> {
        None
    }
}

/// Where a type's missing vendor collateral may be fetched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorSource {
    /// Nowhere: the evidence carries all it needs, or the operator imports it.
    None,
    /// AMD's Key Distribution Service (VCEK, ASK).
    AmdKds,
    /// Intel's PCS or a PCCS (TCB info, QE identity, CRLs).
    IntelPcs,
}

/// Returns the verifier for `kind`.
pub fn verifier_for(kind: EvidenceType) -> &'static dyn Verifier {
    match kind {
        EvidenceType::SevSnp => &snp::SnpVerifier,
        EvidenceType::AzSnpVtpm => &azure::AzSnpVtpmVerifier,
        EvidenceType::AzTdxVtpm => &azure::AzTdxVtpmVerifier,
        EvidenceType::Tdx => &tdx::TdxVerifier,
        EvidenceType::Sgx => &sgx::SgxVerifier,
        EvidenceType::Tpm => &tpm::TpmVerifier,
        EvidenceType::Nitro => &nitro::NitroVerifier,
        EvidenceType::NvidiaGpu => &nvidia::NvidiaVerifier,
    }
}
