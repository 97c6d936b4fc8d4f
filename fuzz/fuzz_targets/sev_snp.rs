#![no_main]
//! Fuzzes the SevSnp verifier with arbitrary evidence bytes: it must return an error, never panic.
use libfuzzer_sys::fuzz_target;
use sovra_attest::{EvidenceInput, EvidenceType, TrustStore, VerifyContext, verifier_for};

fuzz_target!(|data: &[u8]| {
    let trust = TrustStore::default();
    let ctx = VerifyContext { now: 1_700_000_000, trust: &trust };
    let input = EvidenceInput { evidence: data, ..Default::default() };
    let _ = verifier_for(EvidenceType::SevSnp).verify(&input, &ctx);
});
