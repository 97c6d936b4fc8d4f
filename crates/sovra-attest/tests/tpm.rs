//! TPM 2.0 conformance on the GCE Shielded VM attestations: the AK certificate chains to the
//! configured Google CA, every quote verifies, PCR digests and the event-log replay match the
//! expected values; mutations fail with the code of the check that catches them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use serde_json::{Value, json};
use sovra_attest::evidence::{Anchor, Platform, TrustStore};
use sovra_attest::tpm::TpmVerifier;
use sovra_attest::{AttestError, EvidenceInput, VerifiedClaims, Verifier, VerifyContext};

const AT: &str = "2026-11-24T00:00:00Z";

fn trust() -> TrustStore {
    let root = sovra_attest::x509::certs_from_pem_or_der(&read("roots/google/tpm_ek_root_1.cer"))
        .unwrap()
        .remove(0);
    TrustStore {
        anchors: vec![Anchor {
            platform: Platform::Tpm,
            der: root,
        }],
        cert_pool: vec![],
    }
}

fn verify_with(
    ev: &[u8],
    trust: &TrustStore,
    nonce: Option<&[u8]>,
    log: Option<&[u8]>,
) -> Result<VerifiedClaims, AttestError> {
    let inter = read("roots/google/tpm_ek_intermediate_2.crt");
    let chain: Vec<&[u8]> = vec![&inter];
    let input = EvidenceInput {
        evidence: ev,
        cert_chain: &chain,
        nonce,
        event_log: log,
        ..Default::default()
    };
    TpmVerifier.verify(
        &input,
        &VerifyContext {
            now: unix(AT),
            trust,
        },
    )
}

/// The JSON envelope built from the extracted parts of a vector.
fn envelope(dir: &str) -> Value {
    let b64 = |p: &str| sovra_proto_b64(&read(&format!("{dir}/{p}")));
    let mut quotes = vec![];
    for bank in ["sha1", "sha256", "sha384"] {
        quotes.push(json!({
            "quote": b64(&format!("quote_{bank}.tpms_attest")),
            "signature": b64(&format!("quote_{bank}.tpmt_signature")),
            "pcrs": {"hash": bank, "values": read_json(&format!("{dir}/pcrs_{bank}.json"))},
        }));
    }
    json!({"ak_pub": b64("ak_pub.tpmt_public"), "ak_cert": b64("ak_cert.der"), "event_log": b64("event_log.bin"), "quotes": quotes})
}

fn sovra_proto_b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn both_vectors_verify_with_the_expected_values() {
    for (file, expected, nonce) in [
        (
            "tpm/gotpmtools_gce_cos85_nonce9009.pb",
            "expected/tpm_gce_cos85_nonce9009.json",
            Some(vec![0x90u8, 0x09]),
        ),
        (
            "tpm/gotpmtools_gce_cos85_no_nonce.pb",
            "expected/tpm_gce_cos85_no_nonce.json",
            None,
        ),
    ] {
        let v = verify_with(&read(file), &trust(), nonce.as_deref(), None)
            .unwrap_or_else(|e| panic!("{file}: {} {e}", e.code().as_str()));
        let got = v.to_json();
        let want = read_json(expected);
        assert_eq!(got["ak_name"], want["ak"]["name"], "{file}");
        assert_eq!(got["ak_cert_sha256"], want["ak_cert"]["sha256"]);
        assert_eq!(got["event_count"], want["event_count"]);
        for bank in ["sha1", "sha256", "sha384"] {
            let q = &want["quotes"][bank];
            assert_eq!(got["extra_data"], q["extra_data"], "{file} {bank}");
            for (idx, val) in q["pcrs"].as_object().unwrap() {
                assert_eq!(
                    &got["pcrs"][bank][idx.as_str()],
                    val,
                    "{file} {bank} PCR {idx}"
                );
            }
        }
        assert_eq!(
            got["firmware_version"],
            want["quotes"]["sha384"]["firmware_version"]
        );
    }
}

#[test]
fn the_json_envelope_is_equivalent() {
    let env = envelope("tpm/gce_cos85_nonce9009_extracted");
    let v = verify_with(
        env.to_string().as_bytes(),
        &trust(),
        Some(&[0x90, 0x09]),
        None,
    )
    .unwrap();
    let pb = verify_with(
        &read("tpm/gotpmtools_gce_cos85_nonce9009.pb"),
        &trust(),
        None,
        None,
    )
    .unwrap();
    assert_eq!(v.to_json()["pcrs"], pb.to_json()["pcrs"]);
}

#[test]
fn fail_untrusted_ak_wrong_nonce_and_tampering() {
    let pb = read("tpm/gotpmtools_gce_cos85_nonce9009.pb");
    // No configured CA: the AK is not trusted.
    assert_eq!(
        code(verify_with(&pb, &TrustStore::default(), None, None)),
        "ATTEST_CHAIN_INVALID"
    );
    assert_eq!(
        code(verify_with(&pb, &trust(), Some(b"other"), None)),
        "ATTEST_NONCE_MISMATCH"
    );
    let env = envelope("tpm/gce_cos85_nonce9009_extracted");
    // An edited PCR value no longer hashes to the quoted digest.
    let mut e = env.clone();
    e["quotes"][1]["pcrs"]["values"]["7"] = json!("00".repeat(32));
    assert_eq!(
        code(verify_with(e.to_string().as_bytes(), &trust(), None, None)),
        "ATTEST_BINDING_INVALID"
    );
    // A flipped byte of the quote (its extraData) breaks the signature.
    let mut q = read("tpm/gce_cos85_nonce9009_extracted/quote_sha256.tpms_attest");
    let last = q.len() - 1;
    q[last] ^= 1;
    let mut e = env.clone();
    e["quotes"][1]["quote"] = json!(sovra_proto_b64(&q));
    assert_eq!(
        code(verify_with(e.to_string().as_bytes(), &trust(), None, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
    // A flipped signature byte.
    let mut s = read("tpm/gce_cos85_nonce9009_extracted/quote_sha256.tpmt_signature");
    s[40] ^= 1;
    let mut e = env.clone();
    e["quotes"][1]["signature"] = json!(sovra_proto_b64(&s));
    assert_eq!(
        code(verify_with(e.to_string().as_bytes(), &trust(), None, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
    // A certificate for another key (the CA's own) in place of the AK certificate.
    let mut e = env.clone();
    e["ak_cert"] = json!(sovra_proto_b64(&read(
        "roots/google/tpm_ek_intermediate_2.crt"
    )));
    assert_eq!(
        code(verify_with(e.to_string().as_bytes(), &trust(), None, None)),
        "ATTEST_BINDING_INVALID"
    );
    // An edited event log digest no longer replays to the quoted PCRs.
    let mut log = read("tpm/gce_cos85_nonce9009_extracted/event_log.bin");
    let header = 32 + u32::from_le_bytes(log[28..32].try_into().unwrap()) as usize;
    log[header + 14] ^= 1;
    assert_eq!(
        code(verify_with(&pb, &trust(), None, Some(&log))),
        "ATTEST_BINDING_INVALID"
    );
}

/// The offset of the SecureBoot variable's value byte in the event log (UTF-16LE name, then
/// the one-byte value).
fn secure_boot_value_at(log: &[u8]) -> usize {
    let name: Vec<u8> = "SecureBoot"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    log.windows(name.len())
        .position(|w| w == name.as_slice())
        .unwrap()
        + name.len()
}

#[test]
fn secure_boot_is_read_only_from_event_data_that_was_measured() {
    let pb = read("tpm/gotpmtools_gce_cos85_nonce9009.pb");
    let mut log = read("tpm/gce_cos85_nonce9009_extracted/event_log.bin");
    let v = verify_with(&pb, &trust(), None, Some(&log)).unwrap();
    let measured = v.to_json()["secure_boot"].as_bool().unwrap();
    // The data says the opposite, the digests (hence the replay) are unchanged: refused, not
    // reported as the opposite.
    let at = secure_boot_value_at(&log);
    log[at] = u8::from(!measured);
    assert_eq!(
        code(verify_with(&pb, &trust(), None, Some(&log))),
        "ATTEST_BINDING_INVALID"
    );
}

#[test]
fn fail_truncated_and_never_panics() {
    let pb = read("tpm/gotpmtools_gce_cos85_nonce9009.pb");
    for n in [0, 1, 10, 300, 1000] {
        assert_ne!(
            code(verify_with(&pb[..n], &trust(), None, None)),
            "OK",
            "len {n}"
        );
    }
    let mut seed = 0x0bad_cafe_1234_5678u64;
    for _ in 0..800 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let idx = (seed as usize) % pb.len();
        let _ = verify_with(
            &flip(&pb, idx, (seed >> 32) as u8 % 8),
            &trust(),
            None,
            None,
        );
    }
}
