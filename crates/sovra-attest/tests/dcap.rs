//! Intel DCAP conformance (TDX and SGX): every quote verifies with its collateral at the pinned
//! time, reproduces the expected body values and the TCB verdicts of dcap-qvl; mutations fail
//! with the code of the check that catches them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use serde_json::Value;
use sovra_attest::EvidenceType;
use sovra_attest::{AttestError, EvidenceInput, VerifiedClaims, verifier_for};

struct Case {
    quote: &'static str,
    collateral: &'static str,
    at: &'static str,
    expected: &'static str,
    kind: EvidenceType,
}

const fn tdx(
    quote: &'static str,
    collateral: &'static str,
    at: &'static str,
    expected: &'static str,
) -> Case {
    Case {
        quote,
        collateral,
        at,
        expected,
        kind: EvidenceType::Tdx,
    }
}

const CASES: &[Case] = &[
    tdx(
        "tdx/dcapqvl_tdx_quote_v4_b0c06f.bin",
        "tdx/dcapqvl_tdx_quote_v4_b0c06f.collateral.json",
        "2025-07-01T00:00:00Z",
        "tdx_dcapqvl_v4_b0c06f",
    ),
    tdx(
        "tdx/gotdx_quote_v5_td15_90c06f.dat",
        "tdx/dcapqvl_collateral_90c06f_2026-02-18.json",
        "2026-03-01T00:00:00Z",
        "tdx_gotdx_v5_td15_90c06f",
    ),
    tdx(
        "tdx/dcapqvl_tdx_quote_v5_90c06f_notcblevel.bin",
        "tdx/dcapqvl_collateral_90c06f_2026-02-18.json",
        "2026-03-01T00:00:00Z",
        "tdx_dcapqvl_v5_notcblevel",
    ),
    tdx(
        "tdx/trustee_tdx_quote_v5_90c06f_notcblevel.dat",
        "tdx/dcapqvl_collateral_90c06f_2026-02-18.json",
        "2026-03-01T00:00:00Z",
        "tdx_trustee_v5_notcblevel",
    ),
    tdx(
        "tdx/gotdx_tdx_prod_quote_SPR_E4_50806f.dat",
        "tdx/derived_collateral_50806f_2023-06-18_from_gotdx.json",
        "2023-06-20T00:00:00Z",
        "tdx_gotdx_spr_e4",
    ),
    tdx(
        "tdx/trustee_tdx_quote_v4_debug_50806f.dat",
        "tdx/derived_collateral_50806f_2023-06-18_from_gotdx.json",
        "2023-06-20T00:00:00Z",
        "tdx_trustee_v4_debug",
    ),
    tdx(
        "tdx/gotdx_gce_cos113_tdx_quote.dat",
        "tdx/derived_collateral_00806f050000_2025-09-29_mixed.json",
        "2025-10-01T00:00:00Z",
        "tdx_gce_cos113",
    ),
    tdx(
        "tdx/dstack_azure_tdx_v4_quote.bin",
        "tdx/derived_collateral_00806f050000_2025-09-29_mixed.json",
        "2025-10-01T00:00:00Z",
        "tdx_dstack_azure",
    ),
    tdx(
        "tdx/dstack_azure_tdx_v4.b64",
        "tdx/derived_collateral_00806f050000_2025-09-29_mixed.json",
        "2025-10-01T00:00:00Z",
        "tdx_dstack_azure",
    ),
    tdx(
        "tdx/zkdcap_tdx_quote_v4_00806f050000.dat",
        "tdx/derived_collateral_00806f050000_2025-01-21_from_zkdcap.json",
        "2025-02-01T00:00:00Z",
        "tdx_zkdcap_00806f",
    ),
    tdx(
        "tdx/zkdcap_tdx_quote_v4_azure.dat",
        "tdx/derived_collateral_00806f050000_2025-01-21_from_zkdcap.json",
        "2025-02-01T00:00:00Z",
        "tdx_zkdcap_azure",
    ),
    Case {
        quote: "sgx/dcapqvl_sgx_quote_v3_00a067110000.bin",
        collateral: "sgx/dcapqvl_sgx_quote_v3_00a067110000.collateral.json",
        at: "2025-07-01T00:00:00Z",
        expected: "sgx_dcapqvl",
        kind: EvidenceType::Sgx,
    },
    Case {
        quote: "sgx/zkdcap_sgx_quote_v3_00906ed50000.bin",
        collateral: "sgx/derived_collateral_sgx_00906ed50000_2025-01-21_from_zkdcap.json",
        at: "2025-02-10T00:00:00Z",
        expected: "sgx_zkdcap",
        kind: EvidenceType::Sgx,
    },
];

fn verify(
    kind: EvidenceType,
    quote: &[u8],
    collateral: Option<&[u8]>,
    at: i64,
    nonce: Option<&[u8]>,
) -> Result<VerifiedClaims, AttestError> {
    let input = EvidenceInput {
        evidence: quote,
        collateral,
        nonce,
        ..Default::default()
    };
    verify_pinned(verifier_for(kind), &input, at)
}

fn run(c: &Case) -> Result<VerifiedClaims, AttestError> {
    verify(
        c.kind,
        &read(c.quote),
        Some(&read(c.collateral)),
        unix(c.at),
        None,
    )
}

#[test]
fn every_quote_reproduces_the_expected_values_and_verdicts() {
    for c in CASES {
        let want = read_json(&format!("expected/{}.json", c.expected));
        let verdict =
            String::from_utf8(read(&format!("expected/{}.dcapqvl.txt", c.expected))).unwrap();
        let r = run(c);
        if verdict.contains("No matching TCB level") {
            assert_eq!(code(r), "ATTEST_TCB_NOT_ACCEPTABLE", "{}", c.quote);
            continue;
        }
        let v = r.unwrap_or_else(|e| panic!("{}: {} {e}", c.quote, e.code().as_str()));
        let got = v.to_json();
        for (k, w) in want["body"].as_object().unwrap() {
            let g = &got[k.as_str()];
            match (g, w) {
                (Value::String(a), Value::String(b)) => assert_eq!(
                    a.trim_start_matches("0x"),
                    b.trim_start_matches("0x"),
                    "{}: {k}",
                    c.quote
                ),
                _ => assert_eq!(g, w, "{}: {k}", c.quote),
            }
        }
        assert_eq!(got["fmspc"], want["pck_ext"]["fmspc"], "{}", c.quote);
        assert_eq!(got["advisory_ids"], want["advisory_ids"], "{}", c.quote);
        let status = want["tdx_tcb_status"]
            .as_str()
            .or(want["platform_sgx_tcb_status"].as_str())
            .unwrap();
        assert_eq!(v.tcb_status(), Some(status), "{}", c.quote);
        if verdict.contains("status=") {
            assert!(
                verdict.contains(&format!("status= {status} ")),
                "{}: {verdict}",
                c.quote
            );
        }
        // dcap-qvl refuses debug TDs and TDs without SEPT_VE_DISABLE by its own policy; Sovra
        // reports both facts as claims (its default policy refuses debug).
        if verdict.contains("Debug mode") {
            assert!(v.debug());
        }
        if verdict.contains("SEPT_VE_DISABLE") {
            assert_eq!(got["td_attributes_septve_disable"], false);
        }
    }
}

#[test]
fn fail_flips_in_header_body_signature_and_qe_report() {
    let c = &CASES[0];
    let q = read(c.quote);
    let col = read(c.collateral);
    let at = unix(c.at);
    // Header (qe_svn), body (mr_td), attestation signature, attestation key, QE report.
    for (idx, want) in [
        (8, "ATTEST_SIGNATURE_INVALID"),
        (48 + 200, "ATTEST_SIGNATURE_INVALID"),
        (632 + 4 + 3, "ATTEST_SIGNATURE_INVALID"),
        (632 + 4 + 64 + 5, "ATTEST_BINDING_INVALID"),
        (632 + 4 + 128 + 6 + 100, "ATTEST_SIGNATURE_INVALID"),
    ] {
        assert_eq!(
            code(verify(c.kind, &flip(&q, idx, 0), Some(&col), at, None)),
            want,
            "byte {idx}"
        );
    }
}

#[test]
fn fail_truncated_and_missing_or_wrong_collateral() {
    let c = &CASES[0];
    let q = read(c.quote);
    let col = read(c.collateral);
    let at = unix(c.at);
    for n in [0, 10, 48, 632, 700, 1500] {
        assert_eq!(
            code(verify(c.kind, &q[..n], Some(&col), at, None)),
            "ATTEST_MALFORMED",
            "len {n}"
        );
    }
    assert_eq!(
        code(verify(c.kind, &q, None, at, None)),
        "ATTEST_COLLATERAL_MISSING"
    );
    // Another platform's collateral (FMSPC 90C06F...).
    let other = read("tdx/dcapqvl_collateral_90c06f_2026-02-18.json");
    assert_eq!(
        code(verify(
            c.kind,
            &q,
            Some(&other),
            unix("2026-03-01T00:00:00Z"),
            None
        )),
        "ATTEST_COLLATERAL_MISSING"
    );
    // Edited TCB info: its signature fails.
    let mut v: Value = serde_json::from_slice(&col).unwrap();
    let edited = v["tcb_info"]
        .as_str()
        .unwrap()
        .replace("\"UpToDate\"", "\"Revoked\"");
    v["tcb_info"] = Value::from(edited);
    assert_eq!(
        code(verify(
            c.kind,
            &q,
            Some(&serde_json::to_vec(&v).unwrap()),
            at,
            None
        )),
        "ATTEST_COLLATERAL_INVALID"
    );
    assert_eq!(
        code(verify(c.kind, &q, Some(b"{}"), at, None)),
        "ATTEST_COLLATERAL_INVALID"
    );
}

#[test]
fn fail_outside_the_collateral_window() {
    let c = &CASES[0];
    let q = read(c.quote);
    let col = read(c.collateral);
    // The window is [2025-06-19T10:32:27Z, 2025-07-19T10:00:35Z).
    assert_eq!(
        code(verify(
            c.kind,
            &q,
            Some(&col),
            unix("2025-07-20T00:00:00Z"),
            None
        )),
        "ATTEST_EXPIRED"
    );
    assert_eq!(
        code(verify(
            c.kind,
            &q,
            Some(&col),
            unix("2025-06-19T10:20:00Z"),
            None
        )),
        "ATTEST_EXPIRED"
    );
}

#[test]
fn types_and_nonce() {
    let c = &CASES[6];
    let q = read(c.quote);
    let col = read(c.collateral);
    let at = unix(c.at);
    // The GCE quote's report data is all zero (the nonce file says so).
    let nonce = read("tdx/gotdx_gce_cos113_nonce.dat");
    assert_eq!(
        code(verify(
            c.kind,
            &q,
            Some(&col),
            at,
            Some(&nonce[..nonce.len().min(64)])
        )),
        "OK"
    );
    assert_eq!(
        code(verify(c.kind, &q, Some(&col), at, Some(b"not the nonce"))),
        "ATTEST_NONCE_MISMATCH"
    );
    // A TDX quote is not SGX evidence and vice versa.
    assert_eq!(
        code(verify(EvidenceType::Sgx, &q, Some(&col), at, None)),
        "ATTEST_UNSUPPORTED"
    );
    let s = &CASES[11];
    assert_eq!(
        code(verify(
            EvidenceType::Tdx,
            &read(s.quote),
            Some(&read(s.collateral)),
            unix(s.at),
            None
        )),
        "ATTEST_UNSUPPORTED"
    );
    // The debug TD is flagged.
    assert!(run(&CASES[5]).unwrap().debug());
    assert!(!run(&CASES[0]).unwrap().debug());
}

#[test]
fn never_panics_on_mutations() {
    let c = &CASES[11];
    let q = read(c.quote);
    let col = read(c.collateral);
    let at = unix(c.at);
    let pem_start = q.windows(10).position(|w| w == b"-----BEGIN").unwrap();
    let mut seed = 0xdead_beef_cafe_f00du64;
    for _ in 0..1500 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let idx = (seed as usize) % q.len();
        let m = flip(&q, idx, (seed >> 24) as u8 % 8);
        // Everything before the PCK chain is structure or signed; nothing verifies. (In the PEM
        // text some flips only change whitespace, which PEM decoding rightly ignores.)
        let got = code(verify(c.kind, &m, Some(&col), at, None));
        if idx < pem_start {
            assert_ne!(got, "OK", "flip at {idx}");
        }
    }
}

#[test]
fn ccel_event_log_replays_to_the_rtmrs() {
    let c = &CASES[6];
    let q = read(c.quote);
    let col = read(c.collateral);
    let at = unix(c.at);
    let log = read("tdx/gotdx_gce_cos113_ccel_data.dat");
    let with_log = |l: &[u8]| {
        let input = EvidenceInput {
            evidence: &q,
            collateral: Some(&col),
            event_log: Some(l),
            ..Default::default()
        };
        verify_pinned(verifier_for(EvidenceType::Tdx), &input, at)
    };
    let v = with_log(&log).unwrap().to_json();
    assert_eq!(v["ccel_event_count"], 43);
    assert_eq!(v["rtmr_replayed"], true);
    // Edit the first SHA-384 digest of a measured event (CC MR 1..4): RTMR replay fails.
    let u32_at = |i: usize| u32::from_le_bytes(log[i..i + 4].try_into().unwrap()) as usize;
    let mut i = 32 + u32_at(28);
    let target = loop {
        let (mr, ty, count) = (u32_at(i), u32_at(i + 4), u32_at(i + 8));
        let mut j = i + 12;
        let first_digest = j + 2;
        for _ in 0..count {
            j += 2 + 48;
        }
        let size = u32_at(j);
        if ty != 3 && (1..=4).contains(&mr) {
            break first_digest;
        }
        i = j + 4 + size;
    };
    let mut edited = log.clone();
    edited[target] ^= 1;
    assert_eq!(code(with_log(&edited)), "ATTEST_BINDING_INVALID");
    assert_eq!(code(with_log(&log[..100])), "ATTEST_MALFORMED");
}

/// The bundle's pieces as a PCS/PCCS v4 serves them: JSON bodies with the signed object as
/// text, issuer chains percent-encoded in headers, CRLs as DER (PCK) and hex text (root, PCCS).
fn as_pcs_answers(
    bundle: &Value,
) -> (
    sovra_attest::dcap::pcs::Answer,
    sovra_attest::dcap::pcs::Answer,
    sovra_attest::dcap::pcs::Answer,
    Vec<u8>,
) {
    use sovra_attest::dcap::pcs::{Answer, percent_decode};
    let s = |k: &str| bundle[k].as_str().unwrap().to_string();
    let encode = |pem: String| -> String {
        pem.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let header = |k: &str| percent_decode(&encode(s(k)));
    (
        Answer {
            body: format!(
                r#"{{"tcbInfo":{},"signature":"{}"}}"#,
                s("tcb_info"),
                s("tcb_info_signature")
            )
            .into_bytes(),
            issuer_chain: header("tcb_info_issuer_chain"),
        },
        Answer {
            body: format!(
                r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
                s("qe_identity"),
                s("qe_identity_signature")
            )
            .into_bytes(),
            issuer_chain: header("qe_identity_issuer_chain"),
        },
        Answer {
            body: sovra_proto::hex::decode(&s("pck_crl")).unwrap(),
            issuer_chain: header("pck_crl_issuer_chain"),
        },
        s("root_ca_crl").into_bytes(),
    )
}

#[test]
fn collateral_fetched_from_a_pcs_verifies_like_the_imported_bundle() {
    use sovra_attest::dcap::pcs;
    for c in &CASES[..2] {
        let n = pcs::needs(&read(c.quote)).unwrap();
        assert!(n.tdx);
        assert_eq!(n.ca, "platform");
        let bundle: Value = serde_json::from_slice(&read(c.collateral)).unwrap();
        let fmspc =
            serde_json::from_str::<Value>(bundle["tcb_info"].as_str().unwrap()).unwrap()["fmspc"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
        assert_eq!(n.fmspc, fmspc);
        let [tcb_path, qe_path, crl_path, _] = pcs::paths(&n);
        assert_eq!(
            tcb_path,
            format!("/tdx/certification/v4/tcb?fmspc={}", fmspc.to_uppercase())
        );
        assert_eq!(qe_path, "/tdx/certification/v4/qe/identity");
        assert_eq!(
            crl_path,
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der"
        );
        let (tcb, qe, crl, root) = as_pcs_answers(&bundle);
        let assembled = pcs::assemble(&tcb, &qe, &crl, &root).unwrap();
        let at = unix(c.at);
        let want = run(c).unwrap().to_json();
        let got = verify(c.kind, &read(c.quote), Some(&assembled), at, None)
            .unwrap()
            .to_json();
        assert_eq!(got, want, "{}", c.quote);
        // A PCS answer whose signed object was re-serialised no longer verifies.
        let mut reformatted = tcb.clone();
        let v: Value = serde_json::from_slice(&tcb.body).unwrap();
        reformatted.body = serde_json::to_vec_pretty(&v).unwrap();
        let bad = pcs::assemble(&reformatted, &qe, &crl, &root).unwrap();
        assert_eq!(
            code(verify(c.kind, &read(c.quote), Some(&bad), at, None)),
            "ATTEST_COLLATERAL_INVALID"
        );
    }
}

#[test]
fn a_bundle_is_indexed_by_the_fmspc_its_quotes_need() {
    use sovra_attest::dcap::{collateral, pcs};
    for c in CASES {
        let s = collateral::summary(&read(c.collateral)).unwrap();
        let n = pcs::needs(&read(c.quote)).unwrap();
        assert_eq!(s.fmspc, n.fmspc, "{}", c.quote);
        let tee = if c.kind == EvidenceType::Sgx {
            "SGX"
        } else {
            "TDX"
        };
        assert_eq!(s.tee, tee, "{}", c.collateral);
        assert!(s.next_update.is_some(), "{}", c.collateral);
    }
    for bad in [&b"{}"[..], b"not json", br#"{"tcb_info": "{}"}"#] {
        assert!(matches!(
            collateral::summary(bad),
            Err(AttestError::CollateralInvalid(_))
        ));
    }
}
