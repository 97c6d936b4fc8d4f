//! Verifier for `SevSnp` evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::SevSnp`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SnpVerifier;

impl Verifier for SnpVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::SevSnp
    }

    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "SevSnp verification is not implemented yet".into(),
        ))
    }
}
