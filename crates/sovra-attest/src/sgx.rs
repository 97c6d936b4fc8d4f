//! Intel SGX: a v3 (or v5) DCAP quote of an enclave report, verified with Intel collateral
//! (see [`crate::dcap`]).

use crate::claims::VerifiedClaims;
use crate::dcap::{self, quote::Body};
use crate::{AttestError, EvidenceInput, EvidenceType, Verifier, VerifyContext};
use serde_json::{Map, json};
use sovra_proto::hex::encode as hex;

/// Verifier for [`EvidenceType::Sgx`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SgxVerifier;

impl Verifier for SgxVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Sgx
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Intel
    }

    fn maa_attestation_type(&self) -> &'static str {
        "sgx"
    }

    fn maa_route_names(&self) -> &'static [&'static str] {
        &["SgxEnclave", "OpenEnclave"]
    }

    fn maa_claims(&self, v: &VerifiedClaims) -> serde_json::Map<String, serde_json::Value> {
        let serde_json::Value::Object(native) = v.to_json() else {
            return serde_json::Map::new();
        };
        let mut out = serde_json::Map::new();
        for (maa, name) in [
            ("x-ms-sgx-mrenclave", "mr_enclave"),
            ("x-ms-sgx-mrsigner", "mr_signer"),
            ("x-ms-sgx-product-id", "isv_prod_id"),
            ("x-ms-sgx-svn", "isv_svn"),
        ] {
            let paths = [
                name.to_string(),
                format!("body.{name}"),
                name.replace('_', ""),
            ];
            crate::maa::rename(
                &native,
                &mut out,
                &[(maa, &[&paths[0], &paths[1], &paths[2]])],
            );
        }
        crate::maa::rename(
            &native,
            &mut out,
            &[("x-ms-sgx-report-data", &["report_data"])],
        );
        out.insert(
            "x-ms-sgx-is-debuggable".into(),
            serde_json::Value::Bool(v.debug()),
        );
        if let Some(s) = v.tcb_status() {
            out.insert("x-ms-sgx-tcbstatus".into(), serde_json::Value::from(s));
        }
        crate::maa::as_numbers(&mut out, &["x-ms-sgx-product-id", "x-ms-sgx-svn"]);
        out
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
        let Body::Sgx(r) = &v.quote.body else {
            return Err(AttestError::Unsupported(
                "this is a TDX quote: use type tdx".into(),
            ));
        };
        let mut m = Map::new();
        m.insert("quote_version".into(), json!(v.quote.header.version));
        m.insert("cpu_svn".into(), json!(hex(&r.cpu_svn)));
        m.insert("misc_select".into(), json!(format!("{:#x}", r.misc_select)));
        m.insert("attributes".into(), json!(hex(&r.attributes)));
        m.insert("mr_enclave".into(), json!(hex(&r.mr_enclave)));
        m.insert("mr_signer".into(), json!(hex(&r.mr_signer)));
        m.insert("isv_prod_id".into(), json!(r.isv_prod_id));
        m.insert("isv_svn".into(), json!(r.isv_svn));
        let debug = r.attributes.first().is_some_and(|f| f & 0x02 != 0);
        m.insert("fmspc".into(), json!(hex(&v.pck.fmspc)));
        m.insert("advisory_ids".into(), json!(v.status.advisory_ids));
        m.insert("platform_tcb_status".into(), json!(v.platform.status));
        m.insert("qe_tcb_status".into(), json!(v.qe.status));
        m.insert("tcb_date".into(), json!(v.platform.tcb_date));
        m.insert(
            "tcb_evaluation_data_number".into(),
            json!(v.tcb_evaluation_data_number),
        );
        Ok(VerifiedClaims::new(
            EvidenceType::Sgx,
            m,
            r.report_data.to_vec(),
            debug,
            Some(v.status.status.clone()),
            v.root.clone(),
        ))
    }
}
