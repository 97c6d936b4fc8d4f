//! Verifier for `Sgx` evidence (not implemented yet).

use crate::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, Verifier, VerifyContext};

/// Verifier for [`EvidenceType::Sgx`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SgxVerifier;

impl Verifier for SgxVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Sgx
    }

    fn verify(
        &self,
        _input: &EvidenceInput<'_>,
        _ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        Err(AttestError::Unsupported(
            "Sgx verification is not implemented yet".into(),
        ))
    }
}
