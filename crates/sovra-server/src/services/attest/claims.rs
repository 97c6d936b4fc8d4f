//! Claims: the verifier's native claims plus the names Microsoft Azure Attestation uses for the
//! same facts, so policies written for MAA work unchanged.
//!
//! Every native claim is kept as the verifier produced it (binary values as lowercase hex);
//! MAA-named claims are added beside them. `debug` and `tcb_status` are always present.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use sovra_attest::{EvidenceType, VerifiedClaims};
use sovra_proto::ErrorCode;

use sovra_attest::maa::find;

/// The MAA `x-ms-attestation-type` of an evidence type.
pub fn attestation_type(kind: EvidenceType) -> &'static str {
    sovra_attest::verifier_for(kind).maa_attestation_type()
}

/// Native claims plus MAA names (each verifier knows its type's) and where trust came from.
pub fn normalise(v: &VerifiedClaims) -> Map<String, Value> {
    let Value::Object(mut m) = v.to_json() else {
        return Map::new();
    };
    let verifier = sovra_attest::verifier_for(v.evidence_type());
    m.insert(
        "x-ms-attestation-type".into(),
        Value::from(verifier.maa_attestation_type()),
    );
    // Where trust came from: a pinned vendor root, or an anchor an operator added.
    m.insert("x-sovra-trust-root".into(), Value::from(v.root().id()));
    m.insert(
        "x-sovra-trust-root-kind".into(),
        Value::from(v.root().kind()),
    );
    m.extend(verifier.maa_claims(v));
    m
}

/// For SEV-SNP evidence (bare or inside Azure vTPM evidence): whether its REPORTED_TCB
/// reaches the operator's minimum for its processor generation (`x-sovra-tcb-minimum-met`),
/// the minimum it was judged against (`x-sovra-tcb-minimum`, `null` when the generation has
/// none) and, when it does not, why (`x-sovra-tcb-minimum-reason`). The default SNP policy
/// issues the compliance claim only when the minimum is met.
pub fn snp_minimum_tcb(
    v: &VerifiedClaims,
    mins: &sovra_attest::snp::minimum::MinimumTcbs,
    claims: &mut Map<String, Value>,
) {
    use sovra_attest::snp::minimum;
    let Some((product, _)) = v.snp_tcb() else {
        return;
    };
    let Some(verdict) = minimum::evaluate_claims(v, mins) else {
        return;
    };
    claims.insert(
        "x-sovra-tcb-minimum-met".into(),
        Value::Bool(verdict.is_current()),
    );
    claims.insert(
        "x-sovra-tcb-minimum".into(),
        minimum::to_json(mins.of(product), product),
    );
    if let Some(reason) = verdict.reason() {
        claims.insert("x-sovra-tcb-minimum-reason".into(), Value::from(reason));
    }
}

/// SNP: SHA-256 of the init-time data must equal HOST_DATA. Other types have no init-time
/// slot, so init-time data is refused for them.
pub fn check_init_time(v: &VerifiedClaims, data: &[u8]) -> Result<()> {
    let Value::Object(m) = v.to_json() else {
        return Err(Error::internal("claims are not an object"));
    };
    let host_data = find(&m, &["host_data", "report.host_data", "snp.host_data"])
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::invalid(format!(
                "initTimeData is only meaningful for SEV-SNP evidence (HOST_DATA), not {}",
                v.evidence_type()
            ))
        })?;
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    if sovra_proto::hex::encode(h.as_ref()) == host_data {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::AttestReportDataMismatch,
            "HOST_DATA is not SHA-256 of the init-time data",
        ))
    }
}

/// Intel evidence: the collateral it was judged with must be at least as new as the operator's
/// minimum `tcbEvaluationDataNumber` (0: any).
pub fn check_tcb_evaluation(v: &VerifiedClaims, min: u64) -> Result<()> {
    if min == 0 {
        return Ok(());
    }
    let Value::Object(m) = v.to_json() else {
        return Ok(());
    };
    let Some(n) = find(
        &m,
        &[
            "tcb_evaluation_data_number",
            "tdx.tcb_evaluation_data_number",
        ],
    ) else {
        return Ok(());
    };
    match n.as_u64() {
        Some(n) if n >= min => Ok(()),
        got => Err(Error::new(
            sovra_proto::ErrorCode::AttestCollateralInvalid,
            format!(
                "the Intel collateral's tcbEvaluationDataNumber ({}) is below the minimum of {min} (attestation.min_tcb_evaluation_data_number): import or fetch current collateral",
                got.map_or("none".to_string(), |n| n.to_string())
            ),
        )),
    }
}
