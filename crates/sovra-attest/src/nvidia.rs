//! Verifier for `NvidiaGpu` evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::NvidiaGpu`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NvidiaVerifier;

impl Verifier for NvidiaVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::NvidiaGpu
    }

    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "NvidiaGpu verification is not implemented yet".into(),
        ))
    }
}
