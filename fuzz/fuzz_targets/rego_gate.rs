#![no_main]
//! Fuzzes the gate in front of the Rego engine (size, bracket nesting, parse work, refused
//! built-ins) and, for text the gate admits, compilation and a bounded evaluation.
use libfuzzer_sys::fuzz_target;
use sovra_policy::rego::{RegoPolicy, gate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if gate(&text).is_err() || text.len() > 4096 {
        return;
    }
    if let Ok(p) = RegoPolicy::compile(&text) {
        let _ = p.evaluate(&serde_json::Map::new());
    }
});
