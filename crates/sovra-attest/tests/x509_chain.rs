//! The shared chain builder against real AMD chains.
mod common;
use common::*;
use sovra_attest::evidence::{Platform, TrustStore};
use sovra_attest::x509;

#[test]
fn milan_vcek_chains_to_pinned_ark() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let pool = x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_milan.pem")).unwrap();
    let chain = x509::verify_chain(
        &vcek,
        &pool,
        Platform::Amd,
        &TrustStore::default(),
        unix("2024-06-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(chain.len(), 3);
}

#[test]
fn fail_vcek_without_ask_names_what_is_missing() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let err = x509::verify_chain(
        &vcek,
        &[],
        Platform::Amd,
        &TrustStore::default(),
        unix("2024-06-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ATTEST_CHAIN_INVALID");
}

#[test]
fn fail_wrong_generation_chain() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let pool = x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_genoa.pem")).unwrap();
    assert!(
        x509::verify_chain(
            &vcek,
            &pool,
            Platform::Amd,
            &TrustStore::default(),
            unix("2024-06-01T00:00:00Z")
        )
        .is_err()
    );
}

#[test]
fn fail_tampered_ask_signature() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let mut pool = x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_milan.pem")).unwrap();
    let n = pool[0].len();
    pool[0][n - 10] ^= 1; // inside the ASK's signature
    let err = x509::verify_chain(
        &vcek,
        &pool,
        Platform::Amd,
        &TrustStore::default(),
        unix("2024-06-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ATTEST_CHAIN_INVALID");
}

#[test]
fn fail_before_validity() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let pool = x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_milan.pem")).unwrap();
    let err = x509::verify_chain(
        &vcek,
        &pool,
        Platform::Amd,
        &TrustStore::default(),
        unix("2015-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ATTEST_EXPIRED");
}
