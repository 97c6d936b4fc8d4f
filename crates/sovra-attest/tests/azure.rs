//! Azure confidential VM conformance (SEV-SNP and TDX vTPM): every vector verifies and
//! reproduces the expected values; mutations fail with the code of the check that catches them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use serde_json::Value;
use sovra_attest::{AttestError, EvidenceInput, EvidenceType, VerifiedClaims, verifier_for};

const TDX_COLLATERAL: &str = "tdx/derived_collateral_00806f050000_2025-09-29_mixed.json";

fn snp(file: &str, ark: &str, nonce: Option<&[u8]>) -> Result<VerifiedClaims, AttestError> {
    snp_with(&read(file), &read(ark), nonce)
}

fn snp_bytes(ev: &[u8], nonce: Option<&[u8]>) -> Result<VerifiedClaims, AttestError> {
    snp_with(ev, &read("roots/amd/ask_ark_milan.pem"), nonce)
}

fn snp_with(ev: &[u8], chain: &[u8], nonce: Option<&[u8]>) -> Result<VerifiedClaims, AttestError> {
    let refs: Vec<&[u8]> = vec![chain];
    let input = EvidenceInput {
        evidence: ev,
        cert_chain: &refs,
        nonce,
        ..Default::default()
    };
    verify_pinned(
        verifier_for(EvidenceType::AzSnpVtpm),
        &input,
        unix("2026-01-01T00:00:00Z"),
    )
}

fn tdx(ev: &[u8], collateral: Option<&[u8]>) -> Result<VerifiedClaims, AttestError> {
    let input = EvidenceInput {
        evidence: ev,
        collateral,
        ..Default::default()
    };
    verify_pinned(
        verifier_for(EvidenceType::AzTdxVtpm),
        &input,
        unix("2025-10-01T00:00:00Z"),
    )
}

#[test]
fn snp_vectors_verify_with_the_expected_values() {
    for (file, ark, expected, inner) in [
        (
            "azure_snp_vtpm/trustee_evidence-v0.json",
            "roots/amd/ask_ark_milan.pem",
            "azure_snp_vtpm_v0",
            "azure_snp_vtpm_v0_snp",
        ),
        (
            "azure_snp_vtpm/trustee_evidence-v1.json",
            "roots/amd/ask_ark_milan.pem",
            "azure_snp_vtpm_v1",
            "azure_snp_vtpm_v1_snp",
        ),
        (
            "azure_snp_vtpm/trustee_evidence-genoa.json",
            "roots/amd/ask_ark_genoa.pem",
            "azure_snp_vtpm_genoa",
            "azure_snp_vtpm_genoa_snp",
        ),
    ] {
        let v =
            snp(file, ark, None).unwrap_or_else(|e| panic!("{file}: {} {e}", e.code().as_str()));
        let got = v.to_json();
        let want = read_json(&format!("expected/{expected}.json"));
        assert_eq!(got["pcrs"]["sha256"], want["pcrs"], "{file}");
        assert_eq!(got["extra_data"], want["tpm_quote"]["extra_data"]);
        assert_eq!(got["runtime"]["vm-configuration"], want["vm_configuration"]);
        assert_eq!(
            got["runtime"]["user-data"].as_str().unwrap().to_lowercase(),
            want["user_data"]
        );
        let inner_want = read_json(&format!("expected/{inner}.json"));
        for k in ["measurement", "chip_id", "policy", "report_data"] {
            assert_eq!(got["snp"][k], inner_want["report"][k], "{file}: snp {k}");
        }
    }
}

#[test]
fn tdx_vectors_verify_with_the_expected_values() {
    for (file, expected) in [
        (
            "azure_tdx_vtpm/trustee_evidence-v0.json",
            "azure_tdx_vtpm_v0",
        ),
        (
            "azure_tdx_vtpm/trustee_evidence-v1.json",
            "azure_tdx_vtpm_v1",
        ),
    ] {
        let v = tdx(&read(file), Some(&read(TDX_COLLATERAL)))
            .unwrap_or_else(|e| panic!("{file}: {} {e}", e.code().as_str()));
        let got = v.to_json();
        let want = read_json(&format!("expected/{expected}.json"));
        assert_eq!(got["pcrs"]["sha256"], want["pcrs"], "{file}");
        assert_eq!(got["runtime"]["vm-configuration"], want["vm_configuration"]);
        assert_eq!(got["tdx"]["report_data"], want["hw_report_report_data"]);
        let q = read_json("expected/azure_tdx_vtpm_tdquote.json");
        assert_eq!(v.tcb_status(), q["tdx_tcb_status"].as_str());
        assert_eq!(got["tdx"]["advisory_ids"], q["advisory_ids"]);
        assert_eq!(got["tdx"]["mr_td"], q["body"]["mr_td"]);
    }
}

#[test]
fn fail_nonce_pcr_signature_and_runtime_data_edits() {
    let file = "azure_snp_vtpm/trustee_evidence-v1.json";
    assert_eq!(
        code(snp(file, "roots/amd/ask_ark_milan.pem", Some(b"challenge"))),
        "OK"
    );
    assert_eq!(
        code(snp(file, "roots/amd/ask_ark_milan.pem", Some(b"other"))),
        "ATTEST_NONCE_MISMATCH"
    );
    let v: Value = serde_json::from_slice(&read(file)).unwrap();
    // A PCR value.
    let mut e = v.clone();
    e["tpm_quote"]["pcrs"][7] = Value::from("00".repeat(32));
    assert_eq!(
        code(snp_bytes(&serde_json::to_vec(&e).unwrap(), None)),
        "ATTEST_BINDING_INVALID"
    );
    // The quote signature.
    let mut e = v.clone();
    let sig = e["tpm_quote"]["signature"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    e["tpm_quote"]["signature"] = Value::from(flipped);
    assert_eq!(
        code(snp_bytes(&serde_json::to_vec(&e).unwrap(), None)),
        "ATTEST_SIGNATURE_INVALID"
    );
    // The runtime data inside the HCL report (a letter of vmUniqueId): no longer bound.
    use base64::Engine;
    let eng = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut hcl = eng
        .decode(v["hcl_report"].as_str().unwrap().trim_end_matches('='))
        .unwrap();
    let pos = hcl.windows(8).position(|w| w == b"26F8BC30").unwrap();
    hcl[pos] = b'3';
    let mut e = v.clone();
    e["hcl_report"] = Value::from(eng.encode(&hcl));
    assert_eq!(
        code(snp_bytes(&serde_json::to_vec(&e).unwrap(), None)),
        "ATTEST_REPORT_DATA_MISMATCH"
    );
    // The SNP report inside the HCL report.
    let mut hcl2 = eng
        .decode(v["hcl_report"].as_str().unwrap().trim_end_matches('='))
        .unwrap();
    hcl2[32 + 0x90] ^= 1;
    let mut e = v.clone();
    e["hcl_report"] = Value::from(eng.encode(&hcl2));
    assert_eq!(
        code(snp_bytes(&serde_json::to_vec(&e).unwrap(), None)),
        "ATTEST_SIGNATURE_INVALID"
    );
}

#[test]
fn fail_missing_pieces_and_wrong_type() {
    let t = read("azure_tdx_vtpm/trustee_evidence-v1.json");
    assert_eq!(code(tdx(&t, None)), "ATTEST_COLLATERAL_MISSING");
    assert_eq!(code(snp_bytes(&t, None)), "ATTEST_UNSUPPORTED");
    assert_eq!(
        code(tdx(
            &read("azure_snp_vtpm/trustee_evidence-v1.json"),
            Some(&read(TDX_COLLATERAL))
        )),
        "ATTEST_UNSUPPORTED"
    );
    assert_eq!(code(snp_bytes(b"{}", None)), "ATTEST_MALFORMED");
    assert_eq!(code(snp_bytes(b"not json", None)), "ATTEST_MALFORMED");
    let v = read("azure_snp_vtpm/trustee_evidence-v1.json");
    for n in [1, 100, v.len() / 2] {
        assert_eq!(
            code(snp_bytes(&v[..n], None)),
            "ATTEST_MALFORMED",
            "len {n}"
        );
    }
    // Without the AMD chain the VCEK still verifies: AMD's ASKs and ARKs are built in.
    let ev = read("azure_snp_vtpm/trustee_evidence-v1.json");
    let input = EvidenceInput {
        evidence: &ev,
        ..Default::default()
    };
    let r = verify_pinned(
        verifier_for(EvidenceType::AzSnpVtpm),
        &input,
        unix("2026-01-01T00:00:00Z"),
    );
    assert_eq!(code(r), "OK");
}
