//! The built-in attestation policy, used by every provider and evidence type until an
//! administrator sets another.
//!
//! Safe defaults: evidence from a debug-mode TEE is refused; evidence whose TCB is not
//! `UpToDate` (where the platform has a TCB status, i.e. TDX and SGX) is accepted but not
//! marked compliant, so key-release policies that require `x-ms-compliance-status` refuse it;
//! so is evidence whose chain ends at an operator-added anchor (a test chain, a TPM CA) rather
//! than a pinned vendor root.

/// The default policy text (MAA language 1.2).
pub const DEFAULT_POLICY: &str = r#"version=1.2;
authorizationrules {
    [type=="debug", value==false] => permit();
};
issuancerules {
    [type=="debug", value==false] && [type=="x-sovra-trust-root-kind", value=="vendor"] && [type=="tcb_status", value=="UpToDate"] => issue(type="x-ms-compliance-status", value="sovra-compliant");
    [type=="debug", value==false] && [type=="x-sovra-trust-root-kind", value=="vendor"] && ![type=="tcb_status"] => issue(type="x-ms-compliance-status", value="sovra-compliant");
};
"#;

/// The default policy for an evidence type (currently the same for all).
pub fn for_type(_evidence_type: &str) -> &'static str {
    DEFAULT_POLICY
}
