#![no_main]
//! Fuzzes the bodies of the attest routes as the server decodes them: the native
//! `AttestRequest` and the MAA shapes of every type (report JSON inside base64url, runtime and
//! init-time data, Open Enclave headers). Errors are fine; panics are not.
use libfuzzer_sys::fuzz_target;
use sovra_proto::attest::{AttestRequest, MaaAttestRequest};
use sovra_server::http::attest_wire as request;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<AttestRequest>(data) {
        let _ = request::native(r);
    }
    if let Ok(r) = serde_json::from_slice::<MaaAttestRequest>(data) {
        for ty in ["SevSnpVm", "SgxEnclave", "OpenEnclave", "TdxVm", "Tpm"] {
            let _ = request::maa(ty, r.clone());
        }
    }
});
