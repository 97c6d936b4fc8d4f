//! SEV-SNP conformance: every SNP vector verifies at a time inside its validity window and
//! reproduces the expected report values; mutated copies fail with the code of the check that
//! catches them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use sovra_attest::evidence::TrustStore;
use sovra_attest::{
    AttestError, EvidenceInput, VerifiedClaims, Verifier, VerifyContext, snp::SnpVerifier,
};

struct Case {
    report: &'static str,
    certs: &'static [&'static str],
    at: &'static str,
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        report: "snp/virtee_milan_report.hex",
        certs: &["snp/virtee_milan_vcek.der", "roots/amd/ask_ark_milan.pem"],
        at: "2025-01-01T00:00:00Z",
        expected: "expected/snp_virtee_milan.json",
    },
    Case {
        report: "snp/gosevguest_milan_attestation.bin",
        certs: &[
            "snp/gosevguest_milan_vcek.der",
            "roots/amd/ask_ark_milan.pem",
        ],
        at: "2025-01-01T00:00:00Z",
        expected: "expected/snp_gosevguest_milan.json",
    },
    Case {
        report: "snp/trustee_aws_milan_vlek_report.bin",
        certs: &[
            "snp/trustee_aws_milan_vlek.der",
            "roots/amd/ask_ark_milan_vlek.pem",
        ],
        at: "2025-06-01T00:00:00Z",
        expected: "expected/snp_trustee_aws_milan_vlek.json",
    },
    Case {
        report: "snp/azure_genoa_report_from_hcl.bin",
        certs: &["snp/azure_genoa_vcek.pem", "roots/amd/ask_ark_genoa.pem"],
        at: "2026-01-01T00:00:00Z",
        expected: "expected/snp_azure_genoa.json",
    },
];

fn verify_with(
    report: &[u8],
    certs: &[Vec<u8>],
    at: i64,
    nonce: Option<&[u8]>,
    trust: &TrustStore,
) -> Result<VerifiedClaims, AttestError> {
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    let input = EvidenceInput {
        evidence: report,
        cert_chain: &refs,
        nonce,
        ..Default::default()
    };
    SnpVerifier.verify(&input, &VerifyContext { now: at, trust })
}

fn run(c: &Case) -> Result<VerifiedClaims, AttestError> {
    let certs: Vec<Vec<u8>> = c.certs.iter().map(|p| read(p)).collect();
    verify_with(
        &read(c.report),
        &certs,
        unix(c.at),
        None,
        &TrustStore::default(),
    )
}

fn raw(c: &Case) -> Vec<u8> {
    let b = read(c.report);
    if b.len() == 1184 {
        b
    } else {
        sovra_proto::hex::decode(
            &String::from_utf8(b)
                .unwrap()
                .split_whitespace()
                .collect::<String>(),
        )
        .unwrap()
    }
}

#[test]
fn every_vector_verifies_with_the_expected_values() {
    for c in CASES {
        let v = run(c).unwrap_or_else(|e| panic!("{}: {} ({e})", c.report, e.code().as_str()));
        let got = v.to_json();
        let want = read_json(c.expected);
        let report = want["report"].as_object().unwrap();
        for (k, w) in report {
            assert_eq!(&got[k], w, "{}: claim {k}", c.report);
        }
        assert_eq!(want["report_sig"], "OK");
        assert_eq!(v.debug(), got["policy_debug"].as_bool().unwrap());
        assert_eq!(got["report_data"], report["report_data"]);
    }
}

#[test]
fn claims_name_the_key_and_product() {
    let milan = run(&CASES[0]).unwrap().to_json();
    assert_eq!(milan["signing_key"], "vcek");
    assert_eq!(milan["product"], "Milan");
    let vlek = run(&CASES[2]).unwrap().to_json();
    assert_eq!(vlek["signing_key"], "vlek");
    assert_eq!(vlek["vmpl"], 1);
    let genoa = run(&CASES[3]).unwrap().to_json();
    assert_eq!(genoa["product"], "Genoa");
}

#[test]
fn fail_bit_flips_in_the_signed_region_and_signature() {
    let c = &CASES[0];
    let certs: Vec<Vec<u8>> = c.certs.iter().map(|p| read(p)).collect();
    let r = raw(c);
    let t = TrustStore::default();
    // The upstream negative test: bit 0x80 of byte 21 (policy).
    for (idx, bit) in [
        (21usize, 7u8),
        (0x50, 0),
        (0x90, 3),
        (0x29f, 1),
        (0x2A0, 0),
        (0x2A0 + 72 + 5, 2),
    ] {
        assert_eq!(
            code(verify_with(
                &flip(&r, idx, bit),
                &certs,
                unix(c.at),
                None,
                &t
            )),
            "ATTEST_SIGNATURE_INVALID",
            "byte {idx:#x}"
        );
    }
    // Outside the signed region and the signature: still valid.
    assert_eq!(
        code(verify_with(
            &flip(&r, 0x400, 0),
            &certs,
            unix(c.at),
            None,
            &t
        )),
        "OK"
    );
}

#[test]
fn fail_truncated_and_garbage() {
    let c = &CASES[0];
    let certs: Vec<Vec<u8>> = c.certs.iter().map(|p| read(p)).collect();
    let r = raw(c);
    let t = TrustStore::default();
    for n in [0, 1, 0x2A0, 1183] {
        assert_eq!(
            code(verify_with(&r[..n], &certs, unix(c.at), None, &t)),
            "ATTEST_MALFORMED",
            "len {n}"
        );
    }
    let mut v9 = r.clone();
    v9[0] = 9;
    assert_eq!(
        code(verify_with(&v9, &certs, unix(c.at), None, &t)),
        "ATTEST_UNSUPPORTED"
    );
}

#[test]
fn fail_wrong_or_missing_certificates() {
    let t = TrustStore::default();
    let milan = raw(&CASES[0]);
    let at = unix(CASES[0].at);
    // Another chip's VCEK.
    let other = vec![
        read("snp/gosevguest_milan_vcek.der"),
        read("roots/amd/ask_ark_milan.pem"),
    ];
    assert_eq!(
        code(verify_with(&milan, &other, at, None, &t)),
        "ATTEST_BINDING_INVALID"
    );
    // No VCEK at all.
    assert_eq!(
        code(verify_with(
            &milan,
            &[read("roots/amd/ask_ark_milan.pem")],
            at,
            None,
            &t
        )),
        "ATTEST_COLLATERAL_MISSING"
    );
    // The right VCEK alone, or with the wrong product's chain: AMD's ASKs and ARKs are built
    // in, so it verifies offline either way.
    let alone = vec![read("snp/virtee_milan_vcek.der")];
    assert_eq!(code(verify_with(&milan, &alone, at, None, &t)), "OK");
    let swapped = vec![
        read("snp/virtee_milan_vcek.der"),
        read("roots/amd/ask_ark_genoa.pem"),
    ];
    assert_eq!(code(verify_with(&milan, &swapped, at, None, &t)), "OK");
    // A VCEK whose signature was altered: no AMD key issued it.
    let mut forged = read("snp/virtee_milan_vcek.der");
    let n = forged.len();
    forged[n - 10] ^= 0x01;
    assert_eq!(
        code(verify_with(&milan, &[forged], at, None, &t)),
        "ATTEST_CHAIN_INVALID"
    );
    // A VLEK report with the VCEK chain: the built-in ASVK issues it.
    let vlek = raw(&CASES[2]);
    let wrong = vec![
        read("snp/trustee_aws_milan_vlek.der"),
        read("roots/amd/ask_ark_milan.pem"),
    ];
    assert_eq!(
        code(verify_with(&vlek, &wrong, unix(CASES[2].at), None, &t)),
        "OK"
    );
}

#[test]
fn fail_outside_validity() {
    let c = &CASES[0];
    let certs: Vec<Vec<u8>> = c.certs.iter().map(|p| read(p)).collect();
    let t = TrustStore::default();
    assert_eq!(
        code(verify_with(
            &raw(c),
            &certs,
            unix("2023-01-01T00:00:00Z"),
            None,
            &t
        )),
        "ATTEST_EXPIRED"
    );
    assert_eq!(
        code(verify_with(
            &raw(c),
            &certs,
            unix("2031-01-01T00:00:00Z"),
            None,
            &t
        )),
        "ATTEST_EXPIRED"
    );
    let vlek = &CASES[2];
    let vcerts: Vec<Vec<u8>> = vlek.certs.iter().map(|p| read(p)).collect();
    assert_eq!(
        code(verify_with(
            &raw(vlek),
            &vcerts,
            unix("2026-11-24T00:00:00Z"),
            None,
            &t
        )),
        "ATTEST_EXPIRED"
    );
}

#[test]
fn nonce_is_the_prefix_of_report_data() {
    let c = &CASES[0];
    let certs: Vec<Vec<u8>> = c.certs.iter().map(|p| read(p)).collect();
    let r = raw(c);
    let t = TrustStore::default();
    let rd = &r[0x50..0x90];
    assert_eq!(
        code(verify_with(&r, &certs, unix(c.at), Some(&rd[..32]), &t)),
        "OK"
    );
    assert_eq!(
        code(verify_with(&r, &certs, unix(c.at), Some(rd), &t)),
        "OK"
    );
    let mut wrong = rd[..32].to_vec();
    wrong[0] ^= 1;
    assert_eq!(
        code(verify_with(&r, &certs, unix(c.at), Some(&wrong), &t)),
        "ATTEST_NONCE_MISMATCH"
    );
}

#[test]
fn never_panics_on_mutations() {
    let c = &CASES[3];
    let certs: Vec<Vec<u8>> = c.certs.iter().map(|p| read(p)).collect();
    let r = raw(c);
    let t = TrustStore::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let idx = (seed as usize) % r.len();
        let v = flip(&r, idx, (seed >> 32) as u8 % 8);
        assert_ne!(
            code(verify_with(&v, &certs, unix(c.at), None, &t)),
            "",
            "{idx}"
        );
    }
}

#[test]
fn the_kds_path_of_each_report_names_the_certificate_that_signed_it() {
    use sovra_attest::snp::{kds, parse_report, vcek};
    use sovra_attest::x509::certs_from_pem_or_der;
    let mut vceks = 0;
    for c in CASES {
        let r = parse_report(&raw(c)).unwrap();
        let info = vcek::key_info(&certs_from_pem_or_der(&read(c.certs[0])).unwrap()[0]).unwrap();
        let paths = kds::vcek_paths(&r);
        if info.is_vlek() {
            assert!(paths.is_empty(), "{}: VLEKs are not on KDS", c.report);
            continue;
        }
        vceks += 1;
        // The path that matches the certificate's product is among the candidates, and names
        // its hardware ID and TCB exactly.
        let product = info.product().unwrap().name();
        let p = paths
            .iter()
            .find(|p| p.starts_with(&format!("/vcek/v1/{product}/")))
            .unwrap_or_else(|| panic!("{}: {paths:?}", c.report));
        let hwid = sovra_proto::hex::encode(info.hw_id.as_ref().unwrap());
        assert!(p.contains(&format!("/{hwid}?")), "{p}");
        for (name, v) in [
            ("blSPL", info.bl_spl),
            ("teeSPL", info.tee_spl),
            ("snpSPL", info.snp_spl),
            ("ucodeSPL", info.ucode_spl),
        ] {
            assert!(
                p.contains(&format!("{name}={}", v.unwrap())),
                "{}: {p} vs {name}={v:?}",
                c.report
            );
        }
    }
    assert!(vceks >= 2);
}
