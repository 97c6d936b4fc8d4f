#![no_main]
//! Fuzzes what Sovra reads from vendor services and collateral files: the Intel collateral
//! bundle, PCS answers (signed-object extraction, percent-encoded chains, CRL forms), and what
//! a quote or SNP report says to fetch, and how a stored bundle is indexed. Errors are fine;
//! panics are not.
use libfuzzer_sys::fuzz_target;
use sovra_attest::dcap::{collateral, pcs};
use sovra_attest::{TrustStore, VerifyContext};

fuzz_target!(|data: &[u8]| {
    let trust = TrustStore::default();
    let ctx = VerifyContext { now: 1_750_000_000, trust: &trust };
    let _ = collateral::check(data, &ctx);
    let _ = collateral::summary(data);
    let text = String::from_utf8_lossy(data);
    let _ = pcs::member_text(&text, "tcbInfo");
    let _ = pcs::percent_decode(&text);
    let answer = pcs::Answer { body: data.to_vec(), issuer_chain: text.to_string() };
    let _ = pcs::assemble(&answer, &answer, &answer, data);
    let _ = pcs::needs(data);
    if let Ok(r) = sovra_attest::snp::parse_report(data) {
        let _ = sovra_attest::snp::kds::vcek_paths(&r);
    }
});
