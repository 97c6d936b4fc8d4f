//! Claims: the verifier's native claims plus the names Microsoft Azure Attestation uses for the
//! same facts, so policies written for MAA work unchanged.
//!
//! Every native claim is kept as the verifier produced it (binary values as lowercase hex);
//! MAA-named claims are added beside them. `debug` and `tcb_status` are always present.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use sovra_attest::{EvidenceType, VerifiedClaims};
use sovra_proto::ErrorCode;

/// The first of `paths` (dotted, into nested objects) that exists in `m`.
fn find<'a>(m: &'a Map<String, Value>, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|p| {
        let mut parts = p.split('.');
        let mut cur = m.get(parts.next()?)?;
        for part in parts {
            cur = cur.get(part)?;
        }
        Some(cur)
    })
}

/// An integer claim given as a number, a decimal string or a `0x` hex string.
fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| s.parse().ok()),
        _ => None,
    }
}

/// The MAA `x-ms-attestation-type` of an evidence type.
pub fn attestation_type(kind: EvidenceType) -> &'static str {
    match kind {
        EvidenceType::SevSnp => "sevsnpvm",
        EvidenceType::Tdx => "tdxvm",
        EvidenceType::Sgx => "sgx",
        EvidenceType::Tpm => "tpm",
        EvidenceType::AzSnpVtpm | EvidenceType::AzTdxVtpm => "azurevm",
        EvidenceType::Nitro => "nitro",
        EvidenceType::NvidiaGpu => "nvidia-gpu",
    }
}

/// Native claims plus MAA names.
pub fn normalise(v: &VerifiedClaims, _maa_type: Option<&str>) -> Map<String, Value> {
    let Value::Object(mut m) = v.to_json() else {
        return Map::new();
    };
    let kind = v.evidence_type();
    m.insert(
        "x-ms-attestation-type".into(),
        Value::from(attestation_type(kind)),
    );
    // Where trust came from: a pinned vendor root, or an anchor an operator added.
    m.insert("x-sovra-trust-root".into(), Value::from(v.root().id()));
    m.insert(
        "x-sovra-trust-root-kind".into(),
        Value::from(v.root().kind()),
    );
    let snapshot = m.clone();
    let mut put = |name: &str, paths: &[&str]| {
        if let Some(val) = find(&snapshot, paths) {
            m.insert(name.into(), val.clone());
        }
    };
    match kind {
        EvidenceType::SevSnp | EvidenceType::AzSnpVtpm => {
            let p = if kind == EvidenceType::SevSnp {
                ""
            } else {
                "snp."
            };
            let q = |s: &str| format!("{p}{s}");
            for (maa, native) in [
                ("x-ms-sevsnpvm-launchmeasurement", "measurement"),
                ("x-ms-sevsnpvm-hostdata", "host_data"),
                ("x-ms-sevsnpvm-familyId", "family_id"),
                ("x-ms-sevsnpvm-imageId", "image_id"),
                ("x-ms-sevsnpvm-idkeydigest", "id_key_digest"),
                ("x-ms-sevsnpvm-authorkeydigest", "author_key_digest"),
                ("x-ms-sevsnpvm-reportid", "report_id"),
                ("x-ms-sevsnpvm-chipid", "chip_id"),
                ("x-ms-sevsnpvm-vmpl", "vmpl"),
                ("x-ms-sevsnpvm-guestsvn", "guest_svn"),
                ("x-ms-sevsnpvm-bootloader-svn", "reported_tcb.bootloader"),
                ("x-ms-sevsnpvm-tee-svn", "reported_tcb.tee"),
                ("x-ms-sevsnpvm-snpfw-svn", "reported_tcb.snp"),
                ("x-ms-sevsnpvm-microcode-svn", "reported_tcb.microcode"),
                ("x-ms-sevsnpvm-smt-allowed", "policy_smt_allowed"),
                ("x-ms-sevsnpvm-migration-allowed", "policy_migrate_ma"),
            ] {
                put(maa, &[&q(native), &q(&format!("report.{native}"))]);
            }
            put(
                "x-ms-sevsnpvm-reportdata",
                &[&q("report_data"), "report_data"],
            );
            m.insert("x-ms-sevsnpvm-is-debuggable".into(), Value::Bool(v.debug()));
        }
        EvidenceType::Tdx | EvidenceType::AzTdxVtpm => {
            let p = if kind == EvidenceType::Tdx {
                ""
            } else {
                "tdx."
            };
            for (maa, native) in [
                ("tdx_mrtd", "mr_td"),
                ("tdx_mrseam", "mr_seam"),
                ("tdx_mrsignerseam", "mr_signer_seam"),
                ("tdx_mrconfigid", "mr_config_id"),
                ("tdx_mrowner", "mr_owner"),
                ("tdx_mrownerconfig", "mr_owner_config"),
                ("tdx_rtmr0", "rtmr0"),
                ("tdx_rtmr1", "rtmr1"),
                ("tdx_rtmr2", "rtmr2"),
                ("tdx_rtmr3", "rtmr3"),
                ("tdx_td_attributes", "td_attributes"),
                ("tdx_xfam", "xfam"),
                ("tdx_tee_tcb_svn", "tee_tcb_svn"),
                ("tdx_seam_attributes", "seam_attributes"),
            ] {
                put(
                    maa,
                    &[&format!("{p}{native}"), &format!("{p}body.{native}")],
                );
            }
            put("tdx_report_data", &["report_data"]);
            m.insert("tdx_td_attributes_debug".into(), Value::Bool(v.debug()));
            m.insert(
                "dbgstat".into(),
                Value::from(if v.debug() { "enabled" } else { "disabled" }),
            );
            if let Some(s) = v.tcb_status() {
                m.insert("attester_tcb_status".into(), Value::from(s));
            }
        }
        EvidenceType::Sgx => {
            for (maa, native) in [
                ("x-ms-sgx-mrenclave", "mr_enclave"),
                ("x-ms-sgx-mrsigner", "mr_signer"),
                ("x-ms-sgx-product-id", "isv_prod_id"),
                ("x-ms-sgx-svn", "isv_svn"),
            ] {
                put(
                    maa,
                    &[native, &format!("body.{native}"), &native.replace('_', "")],
                );
            }
            put("x-ms-sgx-report-data", &["report_data"]);
            m.insert("x-ms-sgx-is-debuggable".into(), Value::Bool(v.debug()));
            if let Some(s) = v.tcb_status() {
                m.insert("x-ms-sgx-tcbstatus".into(), Value::from(s));
            }
        }
        EvidenceType::Tpm | EvidenceType::Nitro | EvidenceType::NvidiaGpu => {}
    }
    // Integers MAA policies compare numerically.
    for k in [
        "x-ms-sevsnpvm-vmpl",
        "x-ms-sevsnpvm-guestsvn",
        "x-ms-sgx-product-id",
        "x-ms-sgx-svn",
    ] {
        if let Some(n) = m.get(k).and_then(int) {
            m.insert(k.into(), Value::from(n));
        }
    }
    if matches!(kind, EvidenceType::AzSnpVtpm | EvidenceType::AzTdxVtpm) {
        azure_cvm(kind, &snapshot, &mut m);
    }
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

/// MAA's Azure CVM shape: the hardware TEE's claims nested under `x-ms-isolation-tee` (with
/// the paravisor's runtime data as its `x-ms-runtime`), and the `azurevm` claims Sovra can
/// derive from the evidence. The nested compliance status is set after the policy ran
/// ([`azure_compliance`]).
fn azure_cvm(kind: EvidenceType, native: &Map<String, Value>, m: &mut Map<String, Value>) {
    let snp = kind == EvidenceType::AzSnpVtpm;
    let mut tee = Map::new();
    tee.insert(
        "x-ms-attestation-type".into(),
        Value::from(if snp { "sevsnpvm" } else { "tdxvm" }),
    );
    for (k, v) in m.iter() {
        let hardware = if snp {
            k.starts_with("x-ms-sevsnpvm-")
        } else {
            k.starts_with("tdx_") || k == "dbgstat" || k == "attester_tcb_status"
        };
        if hardware {
            tee.insert(k.clone(), v.clone());
        }
    }
    if let Some(rt) = native.get("runtime") {
        tee.insert("x-ms-runtime".into(), rt.clone());
    }
    m.insert("x-ms-isolation-tee".into(), Value::Object(tee));
    let cfg = native
        .get("runtime")
        .and_then(|r| r.get("vm-configuration"));
    if let Some(id) = cfg.and_then(|c| c.get("vmUniqueId")) {
        m.insert("x-ms-azurevm-vmid".into(), id.clone());
    }
    if let Some(sb) = cfg.and_then(|c| c.get("secure-boot")) {
        m.insert("secureboot".into(), sb.clone());
    }
    if let Some(bank) = native
        .get("pcrs")
        .and_then(|p| p.get("sha256"))
        .and_then(Value::as_object)
    {
        let mut idx: Vec<u64> = bank.keys().filter_map(|k| k.parse().ok()).collect();
        idx.sort_unstable();
        m.insert("x-ms-azurevm-attested-pcrs".into(), Value::from(idx));
    }
}

/// For Azure CVM evidence that the provider's policy judged compliant (it issued
/// `x-ms-compliance-status`), states it in MAA's words inside `x-ms-isolation-tee`, so Azure
/// release policies (`x-ms-isolation-tee.x-ms-compliance-status == azure-compliant-cvm`) work
/// unchanged.
pub fn azure_compliance(kind: EvidenceType, claims: &mut Map<String, Value>) {
    if !matches!(kind, EvidenceType::AzSnpVtpm | EvidenceType::AzTdxVtpm)
        || !claims.contains_key("x-ms-compliance-status")
    {
        return;
    }
    if let Some(Value::Object(tee)) = claims.get_mut("x-ms-isolation-tee") {
        tee.insert(
            "x-ms-compliance-status".into(),
            Value::from("azure-compliant-cvm"),
        );
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
