//! Verifier for `Tdx` evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::Tdx`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TdxVerifier;

impl Verifier for TdxVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Tdx
    }

    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "Tdx verification is not implemented yet".into(),
        ))
    }
}
