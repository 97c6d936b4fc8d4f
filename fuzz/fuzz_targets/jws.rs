#![no_main]
//! Fuzzes JWS/JWT and JWK parsing: compact serialisation, header and claims decoding, x5c,
//! keys from JWKs, and a verification attempt with each. Errors are fine; panics are not.
use libfuzzer_sys::fuzz_target;
use sovra_crypto::jws::{Jws, VerifyKey};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(j) = Jws::parse(text.trim()) {
        let _ = j.claims();
        let _ = (j.alg(), j.kid(), j.is_unsigned());
        if let Ok(chain) = j.x5c()
            && let Some(leaf) = chain.first()
        {
            let _ = sovra_attest::x509::parse_cert(leaf);
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let keys = v.get("keys").and_then(|k| k.as_array()).cloned().unwrap_or_else(|| vec![v]);
        for k in keys.iter().take(8) {
            if let Ok(key) = VerifyKey::from_jwk(k)
                && let Ok(j) = Jws::parse("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
            {
                let _ = j.verify_with(&key);
            }
        }
    }
});
