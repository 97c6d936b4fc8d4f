#![no_main]
//! Fuzzes the MAA policy language end to end: lexer, parser (with its depth and size limits)
//! and evaluator (with its work budget), over claims derived from the input. Errors are fine;
//! panics, stack overflows and runaway time are not.
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use sovra_policy::maa::Policy;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(p) = Policy::parse(&text) else { return };
    let mut claims = Map::new();
    claims.insert("x-ms-attestation-type".into(), json!("sevsnpvm"));
    claims.insert("x-ms-sevsnpvm-vmpl".into(), json!(0));
    claims.insert("x-ms-sevsnpvm-is-debuggable".into(), json!(false));
    claims.insert("x-ms-runtime".into(), json!({"keys": [{"kty": "RSA"}], "nonce": text.len()}));
    claims.insert("s".into(), Value::from(text.chars().take(64).collect::<String>()));
    let _ = p.evaluate(&claims);
});
