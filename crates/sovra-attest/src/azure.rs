//! Verifiers for Azure confidential-VM evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::AzSnpVtpm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AzSnpVtpmVerifier;

/// Verifier for [`EvidenceType::AzTdxVtpm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AzTdxVtpmVerifier;

impl Verifier for AzSnpVtpmVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::AzSnpVtpm
    }
    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "az-snp-vtpm verification is not implemented yet".into(),
        ))
    }
}

impl Verifier for AzTdxVtpmVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::AzTdxVtpm
    }
    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "az-tdx-vtpm verification is not implemented yet".into(),
        ))
    }
}
