//! Errors of the verifiers. Each variant has a stable code (see [`AttestError::code`]) that
//! clients and tests match on; the `Display` text says which check failed and what to try.

use sovra_proto::ErrorCode;

/// Why a piece of evidence was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// The evidence could not be parsed: truncated, wrong length, bad encoding, unknown version.
    #[error("malformed evidence: {0}")]
    Malformed(String),
    /// The evidence is well-formed but of a version or variant this verifier does not support.
    #[error("unsupported evidence: {0}")]
    Unsupported(String),
    /// A signature over the evidence (report, quote, document, measurement) does not verify.
    #[error("signature invalid: {0}")]
    SignatureInvalid(String),
    /// A certificate chain does not lead to a trusted root, or a link in it does not verify.
    #[error("certificate chain invalid: {0}")]
    ChainInvalid(String),
    /// A certificate or a piece of collateral is outside its validity window at the given time.
    #[error("expired or not yet valid: {0}")]
    Expired(String),
    /// A certificate in the chain is revoked by a CRL.
    #[error("revoked: {0}")]
    Revoked(String),
    /// Collateral that the evidence needs is missing; the message names what to import.
    #[error("collateral missing: {0}")]
    CollateralMissing(String),
    /// Collateral is present but invalid (bad signature, wrong issuer, inconsistent with the evidence).
    #[error("collateral invalid: {0}")]
    CollateralInvalid(String),
    /// The TCB reported by the evidence is inconsistent with its certificate or collateral.
    #[error("TCB mismatch: {0}")]
    TcbMismatch(String),
    /// The TCB is revoked or not found in the TCB info (no acceptable TCB level).
    #[error("TCB not acceptable: {0}")]
    TcbNotAcceptable(String),
    /// The nonce in the evidence does not match the expected one.
    #[error("nonce mismatch: {0}")]
    NonceMismatch(String),
    /// The report data / user data does not carry the hash of the supplied runtime data.
    #[error("report data mismatch: {0}")]
    ReportDataMismatch(String),
    /// A binding inside the evidence is broken (e.g. QE report does not bind the attestation key,
    /// HCL runtime data hash, PCR digest, event log replay).
    #[error("binding invalid: {0}")]
    BindingInvalid(String),
    /// The evidence comes from a debug-mode TEE where the verifier is told to refuse that.
    #[error("debug TEE refused: {0}")]
    Debug(String),
}

impl AttestError {
    /// The stable error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) => ErrorCode::AttestMalformed,
            Self::Unsupported(_) => ErrorCode::AttestUnsupported,
            Self::SignatureInvalid(_) => ErrorCode::AttestSignatureInvalid,
            Self::ChainInvalid(_) => ErrorCode::AttestChainInvalid,
            Self::Expired(_) => ErrorCode::AttestExpired,
            Self::Revoked(_) => ErrorCode::AttestRevoked,
            Self::CollateralMissing(_) => ErrorCode::AttestCollateralMissing,
            Self::CollateralInvalid(_) => ErrorCode::AttestCollateralInvalid,
            Self::TcbMismatch(_) => ErrorCode::AttestTcbMismatch,
            Self::TcbNotAcceptable(_) => ErrorCode::AttestTcbNotAcceptable,
            Self::NonceMismatch(_) => ErrorCode::AttestNonceMismatch,
            Self::ReportDataMismatch(_) => ErrorCode::AttestReportDataMismatch,
            Self::BindingInvalid(_) => ErrorCode::AttestBindingInvalid,
            Self::Debug(_) => ErrorCode::AttestDebugRefused,
        }
    }

    /// Shorthand for a [`AttestError::Malformed`] error.
    pub fn malformed(msg: impl Into<String>) -> Self {
        Self::Malformed(msg.into())
    }
}
