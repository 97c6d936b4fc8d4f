//! The built-in attestation policy, used by every provider and evidence type until an
//! administrator sets another.
//!
//! Safe defaults: evidence from a debug-mode TEE is refused; evidence whose TCB is not
//! `UpToDate` (TDX and SGX) or below the configured minimum (SEV-SNP) is accepted but not
//! marked compliant, so key-release policies that require `x-ms-compliance-status` refuse it;
//! so is evidence whose chain ends at an operator-added anchor (a test chain, a TPM CA) rather
//! than a pinned vendor root.

use sovra_proto::EvidenceType;

/// The default policy text (MAA language 1.2).
pub const DEFAULT_POLICY: &str = r#"version=1.2;
authorizationrules {
    [type=="debug", value==false] => permit();
};
issuancerules {
    [type=="debug", value==false] && [type=="x-sovra-trust-root-kind", value=="vendor"] && [type=="tcb_status", value=="UpToDate"] => issue(type="x-ms-compliance-status", value="sovra-compliant");
};
"#;

/// The default policy of SEV-SNP evidence (bare, or inside Azure vTPM evidence): AMD has no TCB
/// status, so compliance needs the REPORTED_TCB to reach the operator's minimum for the
/// processor generation (`x-sovra-tcb-minimum-met`, set by the service from
/// `attestation.snp_min_tcb`).
pub const SNP_POLICY: &str = r#"version=1.2;
authorizationrules {
    [type=="debug", value==false] => permit();
};
issuancerules {
    [type=="debug", value==false] && [type=="x-sovra-trust-root-kind", value=="vendor"] && [type=="x-sovra-tcb-minimum-met", value==true] => issue(type="x-ms-compliance-status", value="sovra-compliant");
};
"#;

/// The default policy of evidence whose platform has no TCB status and no other measure of
/// being current (AWS Nitro): compliant only when the claims match a reference-value set
/// (`x-sovra-refvalues-matched`, set by the service when any set matched).
pub const MEASURED_POLICY: &str = r#"version=1.2;
authorizationrules {
    [type=="debug", value==false] => permit();
};
issuancerules {
    [type=="debug", value==false] && [type=="x-sovra-trust-root-kind", value=="vendor"] && [type=="x-sovra-refvalues-matched", value==true] => issue(type="x-ms-compliance-status", value="sovra-compliant");
};
"#;

/// The default policy of a GPU: genuine is not compliant. A GPU's nonce and key are held by
/// whoever talks to it (the host, not a TEE), so its evidence alone never earns the claim.
pub const GPU_POLICY: &str = r#"version=1.2;
authorizationrules {
    [type=="debug", value==false] => permit();
};
issuancerules {
};
"#;

/// The default policy for an evidence type.
pub fn for_type(evidence_type: EvidenceType) -> &'static str {
    match evidence_type {
        EvidenceType::NvidiaGpu => GPU_POLICY,
        EvidenceType::Nitro | EvidenceType::Tpm => MEASURED_POLICY,
        EvidenceType::SevSnp | EvidenceType::AzSnpVtpm => SNP_POLICY,
        EvidenceType::Tdx | EvidenceType::Sgx | EvidenceType::AzTdxVtpm => DEFAULT_POLICY,
    }
}
