//! Verifier for `Nitro` evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::Nitro`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NitroVerifier;

impl Verifier for NitroVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Nitro
    }

    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "Nitro verification is not implemented yet".into(),
        ))
    }
}
