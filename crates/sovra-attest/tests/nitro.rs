//! AWS Nitro conformance: every document verifies inside its (3-hour) certificate window and
//! reproduces the expected values; mutations fail with the code of the check that catches them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use sovra_attest::nitro::NitroVerifier;
use sovra_attest::{AttestError, EvidenceInput, VerifiedClaims};

struct Case {
    file: &'static str,
    at: &'static str,
    expected: &'static str,
    debug: bool,
}

const CASES: &[Case] = &[
    Case {
        file: "nitro/capejs_attestationDocument.cose",
        at: "2022-09-15T18:00:00Z",
        expected: "expected/nitro_capejs_attestationDocument.json",
        debug: false,
    },
    Case {
        file: "nitro/evervault_ga_debug_2023-09-18.cose",
        at: "2023-09-18T15:00:00Z",
        expected: "expected/nitro_evervault_ga_debug_2023-09-18.json",
        debug: true,
    },
    Case {
        file: "nitro/evervault_ga_debug_2023-09-18.b64",
        at: "2023-09-18T15:00:00Z",
        expected: "expected/nitro_evervault_ga_debug_2023-09-18.json",
        debug: true,
    },
    Case {
        file: "nitro/evervault_beta_debug_2022-10-12.cose",
        at: "2022-10-12T14:00:00Z",
        expected: "expected/nitro_evervault_beta_debug_2022-10-12.json",
        debug: true,
    },
    Case {
        file: "nitro/evervault_nondebug_2023-01-18_extracted_from_cert.cose",
        at: "2023-01-18T14:00:00Z",
        expected: "expected/nitro_evervault_nondebug_2023-01-18_extracted_from_cert.json",
        debug: false,
    },
    Case {
        file: "nitro/evervault_cert_embedding_doc_nondebug_2023-01-18.pem",
        at: "2023-01-18T14:00:00Z",
        expected: "expected/nitro_evervault_nondebug_2023-01-18_extracted_from_cert.json",
        debug: false,
    },
    Case {
        file: "nitro/evervault_debug_2023-01-18_extracted_from_cert.cose",
        at: "2023-01-18T16:00:00Z",
        expected: "expected/nitro_evervault_debug_2023-01-18_extracted_from_cert.json",
        debug: true,
    },
    Case {
        file: "nitro/evervault_cert_embedding_doc_debug_2023-01-18.pem",
        at: "2023-01-18T16:00:00Z",
        expected: "expected/nitro_evervault_debug_2023-01-18_extracted_from_cert.json",
        debug: true,
    },
];

fn verify(doc: &[u8], at: i64, nonce: Option<&[u8]>) -> Result<VerifiedClaims, AttestError> {
    let input = EvidenceInput {
        evidence: doc,
        nonce,
        ..Default::default()
    };
    verify_pinned(&NitroVerifier, &input, at)
}

#[test]
fn every_document_verifies_with_the_expected_values() {
    for c in CASES {
        let v = verify(&read(c.file), unix(c.at), None)
            .unwrap_or_else(|e| panic!("{}: {} {e}", c.file, e.code().as_str()));
        let got = v.to_json();
        let want = read_json(c.expected);
        assert_eq!(got["module_id"], want["module_id"], "{}", c.file);
        assert_eq!(got["digest"], want["digest"]);
        assert_eq!(got["timestamp_ms"], want["timestamp_ms"]);
        assert_eq!(got["pcrs"], want["pcrs"], "{}", c.file);
        for k in ["public_key", "user_data", "nonce"] {
            assert_eq!(got[k], want[k], "{}: {k}", c.file);
        }
        assert_eq!(v.debug(), c.debug, "{}", c.file);
        assert_eq!(v.debug(), want["debug_mode_pcrs_zero"].as_bool().unwrap());
    }
}

#[test]
fn fail_outside_the_certificate_window() {
    let c = &CASES[0];
    assert_eq!(
        code(verify(&read(c.file), unix("2022-09-15T21:00:00Z"), None)),
        "ATTEST_EXPIRED"
    );
    assert_eq!(
        code(verify(&read(c.file), unix("2022-09-15T17:00:00Z"), None)),
        "ATTEST_EXPIRED"
    );
    assert_eq!(
        code(verify(&read(c.file), unix("2026-11-24T00:00:00Z"), None)),
        "ATTEST_EXPIRED"
    );
}

#[test]
fn fail_signature_and_payload_flips() {
    let c = &CASES[0];
    let doc = read(c.file);
    let at = unix(c.at);
    // The last 96 bytes are the signature.
    assert_eq!(
        code(verify(&flip(&doc, doc.len() - 10, 0), at, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
    // Inside the module_id text near the start of the payload.
    let pos = doc.windows(9).position(|w| w == b"i-0697c97").unwrap();
    assert_eq!(
        code(verify(&flip(&doc, pos + 3, 0), at, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
    // A PCR value.
    let pcr = sovra_proto::hex::decode("ea4212ee889ba1b4").unwrap();
    let p = doc.windows(8).position(|w| w == pcr.as_slice()).unwrap();
    assert_eq!(
        code(verify(&flip(&doc, p, 1), at, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
}

#[test]
fn fail_truncated_and_malformed() {
    let c = &CASES[0];
    let doc = read(c.file);
    let at = unix(c.at);
    for n in [0, 1, 10, 200, doc.len() / 2, doc.len() - 1] {
        assert_eq!(
            code(verify(&doc[..n], at, None)),
            "ATTEST_MALFORMED",
            "len {n}"
        );
    }
    assert_eq!(
        code(verify(b"not a document", at, None)),
        "ATTEST_MALFORMED"
    );
}

#[test]
fn fail_swapped_cabundle_and_wrong_nonce() {
    let cape = read(CASES[0].file);
    let at = unix(CASES[0].at);
    // Nonce.
    let want = sovra_proto::hex::decode("47b5fba6979cbf7e567e2629").unwrap();
    assert_eq!(code(verify(&cape, at, Some(&want))), "OK");
    assert_eq!(
        code(verify(&cape, at, Some(b"other nonce"))),
        "ATTEST_NONCE_MISMATCH"
    );
    // Replace the first byte of the root in the bundle: the chain no longer reaches the pin.
    let root_tail = read("roots/aws/aws_nitro_enclaves_root_g1.pem");
    let der = sovra_attest::x509::certs_from_pem_or_der(&root_tail)
        .unwrap()
        .remove(0);
    let p = cape
        .windows(64)
        .position(|w| w == &der[der.len() - 64..])
        .unwrap();
    assert_eq!(
        code(verify(&flip(&cape, p + 5, 0), at, None)),
        "ATTEST_CHAIN_INVALID"
    );
}

#[test]
fn never_panics_on_mutations() {
    let c = &CASES[1];
    let doc = read(c.file);
    let at = unix(c.at);
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..1500 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let idx = (seed as usize) % doc.len();
        let v = flip(&doc, idx, (seed >> 40) as u8 % 8);
        // Every byte of a COSE_Sign1 is structure, signed payload or signature.
        assert_ne!(code(verify(&v, at, None)), "OK", "flip at {idx}");
    }
}

/// The document with its `user_data` replaced by `n` bytes (signature no longer valid).
fn with_user_data(doc: &[u8], n: usize) -> Vec<u8> {
    // COSE_Sign1: array(4), protected bstr(4), unprotected {}, payload bstr (2-byte length).
    assert_eq!(doc[..7], [0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0]);
    assert_eq!(doc[7], 0x59);
    let plen = usize::from(u16::from_be_bytes([doc[8], doc[9]]));
    let (payload, rest) = (&doc[10..10 + plen], &doc[10 + plen..]);
    let k = payload.windows(9).position(|w| w == b"user_data").unwrap() + 9;
    assert_eq!(payload[k], 0x58, "user_data is a short bstr in this vector");
    let old = usize::from(payload[k + 1]);
    let mut p = payload[..k].to_vec();
    p.extend([0x59, (n >> 8) as u8, n as u8]);
    p.extend(std::iter::repeat_n(0x41, n));
    p.extend(&payload[k + 2 + old..]);
    let mut out = doc[..7].to_vec();
    out.push(0x59);
    out.extend(u16::try_from(p.len()).unwrap().to_be_bytes());
    out.extend(p);
    out.extend(rest);
    out
}

#[test]
fn user_data_of_up_to_1024_bytes_is_accepted_as_the_aws_cddl_says() {
    // `user_data: bytes .size (0..1024)`: a 1,000-byte field parses (and then, rewritten
    // here, fails only its signature); 1,025 bytes are malformed.
    let c = &CASES[0];
    let doc = read(c.file);
    let at = unix(c.at);
    assert_eq!(
        code(verify(&with_user_data(&doc, 1000), at, None)),
        "ATTEST_SIGNATURE_INVALID"
    );
    assert_eq!(
        code(verify(&with_user_data(&doc, 1025), at, None)),
        "ATTEST_MALFORMED"
    );
}
