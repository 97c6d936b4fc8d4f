//! NVIDIA H100 conformance: the nvtrust report verifies with its device chain and reproduces the
//! expected measurements and opaque fields; mutations fail with the right code.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use sovra_attest::nvidia::NvidiaVerifier;
use sovra_attest::{AttestError, EvidenceInput, VerifiedClaims};

const REPORT: &str = "nvidia_gpu/nvtrust_hopperAttestationReport.hex.txt";
const CHAIN: &str = "nvidia_gpu/nvtrust_hopperCertChain.pem";
const AT: &str = "2026-11-24T00:00:00Z";

fn report() -> Vec<u8> {
    sovra_proto::hex::decode(std::str::from_utf8(&read(REPORT)).unwrap().trim()).unwrap()
}

fn verify(
    r: &[u8],
    chain: &[Vec<u8>],
    at: i64,
    nonce: Option<&[u8]>,
) -> Result<VerifiedClaims, AttestError> {
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let input = EvidenceInput {
        evidence: r,
        cert_chain: &refs,
        nonce,
        ..Default::default()
    };
    verify_pinned(&NvidiaVerifier, &input, at)
}

#[test]
fn the_report_verifies_with_the_expected_values() {
    // As hex text (the file) and as raw bytes.
    let from_text = verify(&read(REPORT), &[read(CHAIN)], unix(AT), None).unwrap();
    let raw = verify(&report(), &[read(CHAIN)], unix(AT), None).unwrap();
    assert_eq!(from_text, raw);
    let got = raw.to_json();
    let want = read_json("expected/nvidia_nvtrust_hopper.json");
    assert_eq!(got["measurements"], want["measurements"]);
    assert_eq!(got["opaque"], want["opaque"]);
    assert_eq!(got["nonce"], want["request"]["nonce"]);
    assert_eq!(got["responder_nonce"], want["response"]["responder_nonce"]);
    assert_eq!(got["opaque"]["FWID"], want["leaf_fwid"]);
    assert_eq!(got["driver_version"], "550.90.07");
}

#[test]
fn fail_flips_in_measurements_opaque_data_and_signature() {
    let r = report();
    let chain = [read(CHAIN)];
    let at = unix(AT);
    // Request nonce, a measurement, the opaque data, the signature.
    for idx in [10, 37 + 8 + 100, r.len() - 96 - 50, r.len() - 5] {
        assert_eq!(
            code(verify(&flip(&r, idx, 0), &chain, at, None)),
            "ATTEST_SIGNATURE_INVALID",
            "byte {idx}"
        );
    }
}

#[test]
fn fail_truncated_missing_chain_wrong_nonce() {
    let r = report();
    let chain = [read(CHAIN)];
    let at = unix(AT);
    for n in [0, 4, 37, 45, 1000, r.len() - 1] {
        assert_eq!(
            code(verify(&r[..n], &chain, at, None)),
            "ATTEST_MALFORMED",
            "len {n}"
        );
    }
    assert_eq!(code(verify(&r, &[], at, None)), "ATTEST_COLLATERAL_MISSING");
    let nonce = sovra_proto::hex::decode(
        "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb",
    )
    .unwrap();
    assert_eq!(code(verify(&r, &chain, at, Some(&nonce))), "OK");
    assert_eq!(
        code(verify(&r, &chain, at, Some(&[0u8; 32]))),
        "ATTEST_NONCE_MISMATCH"
    );
    // Before the device certificates were issued.
    assert_eq!(
        code(verify(&r, &chain, unix("2021-01-01T00:00:00Z"), None)),
        "ATTEST_EXPIRED"
    );
}

#[test]
fn fail_chain_without_the_root_or_swapped_leaf() {
    let r = report();
    let at = unix(AT);
    let certs = sovra_attest::x509::certs_from_pem_or_der(&read(CHAIN)).unwrap();
    // Leaf alone: no path to the pinned root.
    assert_eq!(
        code(verify(&r, &certs[..1], at, None)),
        "ATTEST_CHAIN_INVALID"
    );
    // The chain in another order puts an intermediate first: its key did not sign the report.
    let mut swapped = certs.clone();
    swapped.swap(0, 1);
    assert_eq!(
        code(verify(&r, &swapped, at, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
}

#[test]
fn zero_padding_after_the_signature_is_accepted_anything_else_is_not() {
    // The Confidential Containers NVIDIA attester sends the report in a zero-padded buffer.
    let r = report();
    let chain = [read(CHAIN)];
    let at = unix(AT);
    let mut padded = r.clone();
    padded.extend_from_slice(&[0u8; 4096 - 2000]);
    assert_eq!(code(verify(&padded, &chain, at, None)), "OK");
    let mut junk = padded.clone();
    let n = junk.len();
    junk[n - 1] = 1;
    assert_eq!(code(verify(&junk, &chain, at, None)), "ATTEST_MALFORMED");
    let mut after = r.clone();
    after.push(0xff);
    assert_eq!(code(verify(&after, &chain, at, None)), "ATTEST_MALFORMED");
}
