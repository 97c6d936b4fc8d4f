//! Verifier for `Tpm` evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::Tpm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TpmVerifier;

impl Verifier for TpmVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Tpm
    }

    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "Tpm verification is not implemented yet".into(),
        ))
    }
}
