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
