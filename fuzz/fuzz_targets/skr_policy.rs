#![no_main]
//! Fuzzes the Azure SKR release-policy parser and evaluator: the first line is the policy,
//! the rest the token claims (JSON). Errors are fine; panics are not.
use libfuzzer_sys::fuzz_target;
use sovra_policy::skr::ReleasePolicy;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (policy, claims) = text.split_once('\n').unwrap_or((&text, "{}"));
    let Ok(p) = ReleasePolicy::parse(policy) else { return };
    let claims: serde_json::Value = serde_json::from_str(claims).unwrap_or_default();
    for a in p.issuers() {
        let _ = p.evaluate(a, &claims);
    }
    let _ = p.evaluate("https://other.example", &claims);
});
