//! Intel TDX: a v4 or v5 quote of a TD report (TD 1.0 or 1.5), verified with Intel collateral
//! (see [`crate::dcap`]).

use crate::claims::VerifiedClaims;
use crate::dcap::{self, quote::Body};
use crate::{AttestError, EvidenceInput, EvidenceType, Verifier, VerifyContext};
use serde_json::{Map, json};
use sovra_proto::hex::encode as hex;

/// Verifier for [`EvidenceType::Tdx`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TdxVerifier;

impl Verifier for TdxVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Tdx
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Intel
    }

    fn maa_attestation_type(&self) -> &'static str {
        "tdxvm"
    }

    fn maa_route_names(&self) -> &'static [&'static str] {
        &["TdxVm"]
    }

    fn maa_claims(&self, v: &VerifiedClaims) -> serde_json::Map<String, serde_json::Value> {
        match v.to_json() {
            serde_json::Value::Object(native) => maa_claims_at(&native, "", v),
            _ => serde_json::Map::new(),
        }
    }

    fn vendor_source(&self) -> crate::VendorSource {
        crate::VendorSource::IntelPcs
    }

    fn intel_quote(&self, evidence: &[u8]) -> Option<Vec<u8>> {
        Some(evidence.to_vec())
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        let v = dcap::verify(input, ctx)?;
        let Body::Td(td) = &v.quote.body else {
            return Err(AttestError::Unsupported(
                "this is an SGX quote: use type sgx".into(),
            ));
        };
        let mut m = Map::new();
        m.insert("quote_version".into(), json!(v.quote.header.version));
        m.insert("tee_tcb_svn".into(), json!(hex(&td.tee_tcb_svn)));
        m.insert("mr_seam".into(), json!(hex(&td.mr_seam)));
        m.insert("mr_signer_seam".into(), json!(hex(&td.mr_signer_seam)));
        m.insert("seam_attributes".into(), json!(hex(&td.seam_attributes)));
        m.insert("td_attributes".into(), json!(hex(&td.td_attributes)));
        m.insert("xfam".into(), json!(hex(&td.xfam)));
        m.insert("mr_td".into(), json!(hex(&td.mr_td)));
        m.insert("mr_config_id".into(), json!(hex(&td.mr_config_id)));
        m.insert("mr_owner".into(), json!(hex(&td.mr_owner)));
        m.insert("mr_owner_config".into(), json!(hex(&td.mr_owner_config)));
        for (i, r) in td.rtmr.iter().enumerate() {
            m.insert(format!("rtmr{i}"), json!(hex(r)));
        }
        if let Some(s) = &td.tee_tcb_svn2 {
            m.insert("tee_tcb_svn2".into(), json!(hex(s)));
        }
        if let Some(s) = &td.mr_service_td {
            m.insert("mr_servicetd".into(), json!(hex(s)));
        }
        let attrs = u64::from_le_bytes(td.td_attributes);
        let debug = attrs & 1 == 1;
        m.insert("td_attributes_debug".into(), json!(debug));
        m.insert(
            "td_attributes_septve_disable".into(),
            json!(attrs >> 28 & 1 == 1),
        );
        m.insert("td_attributes_pks".into(), json!(attrs >> 30 & 1 == 1));
        m.insert("td_attributes_perfmon".into(), json!(attrs >> 63 & 1 == 1));
        if let Some(log) = input.event_log {
            // CCEL: a TCG2 log whose "PCR" index is the CC measurement register: 1..4 = RTMR0..3.
            let r = crate::tpm::eventlog::replay(log)?;
            let bank = r
                .pcrs
                .get(&crate::tpm::structs::ALG_SHA384)
                .ok_or_else(|| {
                    AttestError::BindingInvalid("the event log has no SHA-384 digests".into())
                })?;
            for (mr, value) in bank {
                let Some(rtmr) = mr.checked_sub(1).and_then(|i| td.rtmr.get(i as usize)) else {
                    continue;
                };
                if value.as_slice() != rtmr.as_slice() {
                    return Err(AttestError::BindingInvalid(format!(
                        "the event log does not replay to RTMR{}",
                        mr - 1
                    )));
                }
            }
            m.insert("ccel_event_count".into(), json!(r.events));
            m.insert("rtmr_replayed".into(), json!(true));
        }
        m.insert("fmspc".into(), json!(hex(&v.pck.fmspc)));
        m.insert("advisory_ids".into(), json!(v.status.advisory_ids));
        m.insert("platform_tcb_status".into(), json!(v.platform.status));
        m.insert("qe_tcb_status".into(), json!(v.qe.status));
        if let Some(md) = &v.module {
            m.insert("tdx_module_tcb_status".into(), json!(md.status));
        }
        m.insert("tcb_date".into(), json!(v.platform.tcb_date));
        m.insert(
            "tcb_evaluation_data_number".into(),
            json!(v.tcb_evaluation_data_number),
        );
        Ok(VerifiedClaims::new(
            EvidenceType::Tdx,
            m,
            td.report_data.to_vec(),
            debug,
            Some(v.status.status.clone()),
            v.root.clone(),
        ))
    }
}

/// MAA's names for the claims of a TD quote found at `prefix` in `native` (`""` for bare TDX
/// evidence, `"tdx."` inside Azure vTPM evidence).
pub fn maa_claims_at(
    native: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    v: &VerifiedClaims,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (maa, name) in [
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
        let paths = [format!("{prefix}{name}"), format!("{prefix}body.{name}")];
        crate::maa::rename(native, &mut out, &[(maa, &[&paths[0], &paths[1]])]);
    }
    crate::maa::rename(native, &mut out, &[("tdx_report_data", &["report_data"])]);
    out.insert(
        "tdx_td_attributes_debug".into(),
        serde_json::Value::Bool(v.debug()),
    );
    out.insert(
        "dbgstat".into(),
        serde_json::Value::from(if v.debug() { "enabled" } else { "disabled" }),
    );
    if let Some(s) = v.tcb_status() {
        out.insert("attester_tcb_status".into(), serde_json::Value::from(s));
    }
    out
}
