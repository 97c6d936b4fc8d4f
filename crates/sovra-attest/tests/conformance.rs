//! The one conformance suite every verifier runs: every piece of evidence in the vectors'
//! manifest, through `verifier_for` (as the server calls it), at its pinned time, with the
//! outcome the manifest gives; the per-type knowledge each verifier declares agrees with what it
//! verified; mutated copies never verify with other claims and never panic; and every evidence
//! file in the vectors is either here or listed below as auxiliary, with the reason.
//!
//! The per-type files beside this one check each type's expected values field by field.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use sovra_attest::evidence::{Anchor, Platform, TrustStore};
use sovra_attest::{EvidenceInput, EvidenceType, VerifiedClaims, VerifyContext, verifier_for};
use sovra_proto::ErrorCode;

/// One piece of evidence and what verifying it must give.
struct Vector {
    kind: EvidenceType,
    evidence: &'static str,
    chain: &'static [&'static str],
    collateral: Option<&'static str>,
    anchors: &'static [(Platform, &'static str)],
    nonce: Option<&'static [u8]>,
    at: &'static str,
    /// `None`: verifies; `Some(code)`: refused with that code.
    refused: Option<ErrorCode>,
}

const fn ok(
    kind: EvidenceType,
    evidence: &'static str,
    chain: &'static [&'static str],
    at: &'static str,
) -> Vector {
    Vector {
        kind,
        evidence,
        chain,
        collateral: None,
        anchors: &[],
        nonce: None,
        at,
        refused: None,
    }
}

const fn intel(
    kind: EvidenceType,
    evidence: &'static str,
    collateral: &'static str,
    at: &'static str,
    refused: Option<ErrorCode>,
) -> Vector {
    Vector {
        kind,
        evidence,
        chain: &[],
        collateral: Some(collateral),
        anchors: &[],
        nonce: None,
        at,
        refused,
    }
}

const MILAN: &str = "roots/amd/ask_ark_milan.pem";
const GENOA: &str = "roots/amd/ask_ark_genoa.pem";
const NO_LEVEL: Option<ErrorCode> = Some(ErrorCode::AttestTcbNotAcceptable);
const TPM_ROOT: &[(Platform, &str)] = &[(Platform::Tpm, "roots/google/tpm_ek_root_1.cer")];
const TPM_CHAIN: &[&str] = &["roots/google/tpm_ek_intermediate_2.crt"];
const TDX_90C06F: &str = "tdx/dcapqvl_collateral_90c06f_2026-02-18.json";
const TDX_50806F: &str = "tdx/derived_collateral_50806f_2023-06-18_from_gotdx.json";
const TDX_00806F_SEP: &str = "tdx/derived_collateral_00806f050000_2025-09-29_mixed.json";
const TDX_00806F_JAN: &str = "tdx/derived_collateral_00806f050000_2025-01-21_from_zkdcap.json";

use EvidenceType::*;

const VECTORS: &[Vector] = &[
    ok(
        SevSnp,
        "snp/virtee_milan_report.hex",
        &["snp/virtee_milan_vcek.der", MILAN],
        "2025-01-01T00:00:00Z",
    ),
    ok(
        SevSnp,
        "snp/virtee_milan_report.bin",
        &["snp/virtee_milan_vcek.der", MILAN],
        "2025-01-01T00:00:00Z",
    ),
    ok(
        SevSnp,
        "snp/gosevguest_milan_attestation.bin",
        &["snp/gosevguest_milan_vcek.der", MILAN],
        "2025-01-01T00:00:00Z",
    ),
    ok(
        SevSnp,
        "snp/trustee_aws_milan_vlek_report.bin",
        &[
            "snp/trustee_aws_milan_vlek.der",
            "roots/amd/ask_ark_milan_vlek.pem",
        ],
        "2025-06-01T00:00:00Z",
    ),
    ok(
        SevSnp,
        "snp/azure_genoa_report_from_hcl.bin",
        &["snp/azure_genoa_vcek.pem", GENOA],
        "2026-01-01T00:00:00Z",
    ),
    ok(
        AzSnpVtpm,
        "azure_snp_vtpm/trustee_evidence-v0.json",
        &[MILAN],
        "2026-01-01T00:00:00Z",
    ),
    ok(
        AzSnpVtpm,
        "azure_snp_vtpm/trustee_evidence-v1.json",
        &[MILAN],
        "2026-01-01T00:00:00Z",
    ),
    ok(
        AzSnpVtpm,
        "azure_snp_vtpm/trustee_evidence-genoa.json",
        &[GENOA],
        "2026-01-01T00:00:00Z",
    ),
    intel(
        AzTdxVtpm,
        "azure_tdx_vtpm/trustee_evidence-v0.json",
        TDX_00806F_SEP,
        "2025-10-01T00:00:00Z",
        None,
    ),
    intel(
        AzTdxVtpm,
        "azure_tdx_vtpm/trustee_evidence-v1.json",
        TDX_00806F_SEP,
        "2025-10-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/dcapqvl_tdx_quote_v4_b0c06f.bin",
        "tdx/dcapqvl_tdx_quote_v4_b0c06f.collateral.json",
        "2025-07-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/gotdx_quote_v5_td15_90c06f.dat",
        TDX_90C06F,
        "2026-03-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/dcapqvl_tdx_quote_v5_90c06f_notcblevel.bin",
        TDX_90C06F,
        "2026-03-01T00:00:00Z",
        NO_LEVEL,
    ),
    intel(
        Tdx,
        "tdx/trustee_tdx_quote_v5_90c06f_notcblevel.dat",
        TDX_90C06F,
        "2026-03-01T00:00:00Z",
        NO_LEVEL,
    ),
    intel(
        Tdx,
        "tdx/gotdx_tdx_prod_quote_SPR_E4_50806f.dat",
        TDX_50806F,
        "2023-06-20T00:00:00Z",
        NO_LEVEL,
    ),
    intel(
        Tdx,
        "tdx/trustee_tdx_quote_v4_debug_50806f.dat",
        TDX_50806F,
        "2023-06-20T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/gotdx_gce_cos113_tdx_quote.dat",
        TDX_00806F_SEP,
        "2025-10-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/dstack_azure_tdx_v4_quote.bin",
        TDX_00806F_SEP,
        "2025-10-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/dstack_azure_tdx_v4.b64",
        TDX_00806F_SEP,
        "2025-10-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/zkdcap_tdx_quote_v4_00806f050000.dat",
        TDX_00806F_JAN,
        "2025-02-01T00:00:00Z",
        None,
    ),
    intel(
        Tdx,
        "tdx/zkdcap_tdx_quote_v4_azure.dat",
        TDX_00806F_JAN,
        "2025-02-01T00:00:00Z",
        None,
    ),
    intel(
        Sgx,
        "sgx/dcapqvl_sgx_quote_v3_00a067110000.bin",
        "sgx/dcapqvl_sgx_quote_v3_00a067110000.collateral.json",
        "2025-07-01T00:00:00Z",
        None,
    ),
    intel(
        Sgx,
        "sgx/zkdcap_sgx_quote_v3_00906ed50000.bin",
        "sgx/derived_collateral_sgx_00906ed50000_2025-01-21_from_zkdcap.json",
        "2025-02-10T00:00:00Z",
        None,
    ),
    Vector {
        kind: Tpm,
        evidence: "tpm/gotpmtools_gce_cos85_nonce9009.pb",
        chain: TPM_CHAIN,
        collateral: None,
        anchors: TPM_ROOT,
        nonce: Some(&[0x90, 0x09]),
        at: "2026-11-24T00:00:00Z",
        refused: None,
    },
    Vector {
        kind: Tpm,
        evidence: "tpm/gotpmtools_gce_cos85_no_nonce.pb",
        chain: TPM_CHAIN,
        collateral: None,
        anchors: TPM_ROOT,
        nonce: None,
        at: "2026-11-24T00:00:00Z",
        refused: None,
    },
    ok(
        Nitro,
        "nitro/capejs_attestationDocument.cose",
        &[],
        "2022-09-15T18:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_ga_debug_2023-09-18.cose",
        &[],
        "2023-09-18T15:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_ga_debug_2023-09-18.b64",
        &[],
        "2023-09-18T15:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_beta_debug_2022-10-12.cose",
        &[],
        "2022-10-12T14:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_nondebug_2023-01-18_extracted_from_cert.cose",
        &[],
        "2023-01-18T14:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_cert_embedding_doc_nondebug_2023-01-18.pem",
        &[],
        "2023-01-18T14:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_debug_2023-01-18_extracted_from_cert.cose",
        &[],
        "2023-01-18T16:00:00Z",
    ),
    ok(
        Nitro,
        "nitro/evervault_cert_embedding_doc_debug_2023-01-18.pem",
        &[],
        "2023-01-18T16:00:00Z",
    ),
    ok(
        NvidiaGpu,
        "nvidia_gpu/nvtrust_hopperAttestationReport.hex.txt",
        &["nvidia_gpu/nvtrust_hopperCertChain.pem"],
        "2026-11-24T00:00:00Z",
    ),
];

/// Files under the evidence directories that are not evidence of their own, and why.
const AUXILIARY: &[(&str, &str)] = &[
    (
        "snp/virtee_turin_vcek_only.der",
        "a Turin VCEK without a report: x509_chain.rs checks its chain and TCB extensions",
    ),
    (
        "tdx/dstack_tcbInfo-tdx-00806f050000_2025-09-29.json",
        "the TCB info inside the mixed 00806f collateral bundle",
    ),
    (
        "tdx/gotdx_gce_cos113_ccel_data.dat",
        "CCEL event log of the GCE quote (dcap.rs replays it to the RTMRs)",
    ),
    (
        "tdx/gotdx_gce_cos113_ccel_table.dat",
        "CCEL ACPI table of the GCE quote",
    ),
    (
        "tdx/gotdx_gce_cos113_nonce.dat",
        "the GCE quote's nonce (dcap.rs binds it)",
    ),
    (
        "tpm/kinvolk_azure_vtpm_quote.bincode",
        "a bare vTPM quote without an AK certificate: nothing makes its key trusted, so it is not evidence Sovra can accept",
    ),
    (
        "tpm/kinvolk_azure_vtpm_akpub.pem",
        "the key of that bare quote",
    ),
    (
        "nitro/evervault_spec_nondebug_correct_pcrs.json",
        "upstream's expectation file",
    ),
    (
        "nitro/evervault_spec_valid_attestation_doc_ga.json",
        "upstream's expectation file",
    ),
    (
        "nvidia_gpu/trustee_hopperAttestationReport-claims.json",
        "upstream's expected claims",
    ),
];

const EVIDENCE_DIRS: &[&str] = &[
    "snp",
    "tdx",
    "sgx",
    "tpm",
    "nitro",
    "nvidia_gpu",
    "azure_snp_vtpm",
    "azure_tdx_vtpm",
];

fn verify(v: &Vector, evidence: &[u8]) -> Result<VerifiedClaims, sovra_attest::AttestError> {
    let chain: Vec<Vec<u8>> = v.chain.iter().map(|p| read(p)).collect();
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let collateral = v.collateral.map(read);
    let trust = TrustStore {
        anchors: v
            .anchors
            .iter()
            .map(|(platform, file)| Anchor {
                platform: *platform,
                der: sovra_attest::x509::certs_from_pem_or_der(&read(file))
                    .unwrap()
                    .remove(0),
            })
            .collect(),
        cert_pool: Vec::new(),
    };
    let input = EvidenceInput {
        evidence,
        cert_chain: &refs,
        collateral: collateral.as_deref(),
        nonce: v.nonce,
        ..Default::default()
    };
    verifier_for(v.kind).verify(
        &input,
        &VerifyContext {
            now: unix(v.at),
            trust: &trust,
        },
    )
}

#[test]
fn every_vector_verifies_as_its_manifest_says() {
    for v in VECTORS {
        let verifier = verifier_for(v.kind);
        assert_eq!(verifier.evidence_type(), v.kind);
        assert_eq!(Platform::of(v.kind), verifier.platform());
        let r = verify(v, &read(v.evidence));
        let claims = match (r, v.refused) {
            (Ok(c), None) => c,
            (Err(e), Some(code)) => {
                assert_eq!(e.code(), code, "{}: {e}", v.evidence);
                continue;
            }
            (Ok(_), Some(code)) => panic!(
                "{}: verified, but must be refused with {code:?}",
                v.evidence
            ),
            (Err(e), None) => panic!("{}: {} {e}", v.evidence, e.code().as_str()),
        };
        assert_eq!(claims.evidence_type(), v.kind, "{}", v.evidence);
        // The root is a vendor's unless the vector's chain ends at an anchor it brings.
        let kind = if v.anchors.is_empty() {
            "vendor"
        } else {
            "operator"
        };
        assert_eq!(claims.root().kind(), kind, "{}", v.evidence);
        // What the verifier declares about its type holds for what it verified.
        assert!(!verifier.maa_attestation_type().is_empty());
        let maa = verifier.maa_claims(&claims);
        let native = claims.to_json();
        for (name, value) in &maa {
            assert!(
                native.get(name).is_none(),
                "{}: {name} shadows a native claim",
                v.evidence
            );
            assert!(!value.is_null(), "{}: {name} is null", v.evidence);
        }
        let intel_source = verifier.vendor_source() == sovra_attest::VendorSource::IntelPcs;
        assert_eq!(
            verifier.intel_quote(&read(v.evidence)).is_some(),
            intel_source,
            "{}: an Intel collateral source needs the quote inside",
            v.evidence
        );
    }
}

#[test]
fn mutated_evidence_never_verifies_with_other_claims() {
    for v in VECTORS.iter().filter(|v| v.refused.is_none()) {
        let original = read(v.evidence);
        let claims = verify(v, &original).unwrap().to_json();
        let n = original.len();
        // The first and last bytes, and eight spread across the rest.
        let mut positions: Vec<usize> = (0..8).map(|i| (i * 2 + 1) * n / 17).collect();
        positions.extend([0, n - 1]);
        for at in positions {
            for bit in [0u8, 5] {
                let copy = flip(&original, at, bit);
                if let Ok(c) = verify(v, &copy) {
                    assert_eq!(
                        c.to_json(),
                        claims,
                        "{}: a flip of bit {bit} at byte {at} verified with other claims",
                        v.evidence
                    );
                }
            }
        }
        // Cut short, or empty: refused, never a panic.
        assert!(verify(v, &original[..n / 2]).is_err(), "{}", v.evidence);
        assert!(verify(v, &[]).is_err(), "{}", v.evidence);
    }
}

#[test]
fn every_evidence_file_in_the_vectors_is_in_the_suite() {
    let mut used: Vec<&str> = Vec::new();
    for v in VECTORS {
        used.push(v.evidence);
        used.extend(v.chain.iter());
        used.extend(v.collateral.iter());
    }
    used.extend(AUXILIARY.iter().map(|(f, _)| *f));
    let mut missing = Vec::new();
    for dir in EVIDENCE_DIRS {
        let mut stack = vec![vectors_dir().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    // Extracted parts of a vector (tpm.rs builds its envelope from them).
                    continue;
                }
                let rel = p
                    .strip_prefix(vectors_dir())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if !used.contains(&rel.as_str()) {
                    missing.push(rel);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "vectors neither in the suite nor listed as auxiliary: {missing:?}"
    );
}

#[test]
fn the_turin_vcek_chains_to_the_pinned_turin_root_and_carries_an_fmc_svn() {
    // No Turin report exists among the vectors; its VCEK alone still checks the Turin chain
    // and the Turin-only TCB extension.
    let vcek = read("snp/virtee_turin_vcek_only.der");
    let info = sovra_attest::snp::vcek::key_info(&vcek).unwrap();
    assert_eq!(
        info.product(),
        Some(sovra_attest::snp::report::Product::Turin)
    );
    assert!(info.fmc_spl.is_some(), "{info:?}");
    assert!(!info.is_vlek());
    let pool = sovra_attest::x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_turin_vcek.pem"))
        .unwrap();
    let at = unix("2026-01-01T00:00:00Z");
    let chain =
        sovra_attest::x509::verify_chain(&vcek, &pool, Platform::Amd, &TrustStore::default(), at)
            .unwrap();
    assert_eq!(chain.len(), 3);
    // AMD's Turin ASK is built in: the VCEK alone chains too.
    let alone =
        sovra_attest::x509::verify_chain(&vcek, &[], Platform::Amd, &TrustStore::default(), at)
            .unwrap();
    assert_eq!(alone, chain);
    // Outside its validity (2024-11-06..2031-11-06): refused.
    let late = unix("2032-01-01T00:00:00Z");
    let e =
        sovra_attest::x509::verify_chain(&vcek, &[], Platform::Amd, &TrustStore::default(), late)
            .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AttestExpired);
}
