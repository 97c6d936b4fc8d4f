//! Shared helpers for the conformance tests: where the vectors are, reading them, mutating them.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sovra_attest::{AttestError, TrustStore, VerifiedClaims, Verifier, VerifyContext};
use std::path::PathBuf;

/// The error code of a verification, or `OK`.
pub fn code(r: Result<VerifiedClaims, AttestError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code().as_str(),
    }
}

/// Verifies `input` with `v` at `now` against the pinned vendor roots only.
pub fn verify_pinned(
    v: &dyn Verifier,
    input: &sovra_attest::EvidenceInput,
    now: i64,
) -> Result<VerifiedClaims, AttestError> {
    v.verify(
        input,
        &VerifyContext {
            now,
            trust: &TrustStore::default(),
        },
    )
}

/// The vectors directory: `$SOVRA_VECTORS`, or `../shared/vectors` beside the repository.
pub fn vectors_dir() -> PathBuf {
    if let Ok(p) = std::env::var("SOVRA_VECTORS") {
        return PathBuf::from(p);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // crates/sovra-attest -> repo root -> ../shared/vectors
    manifest.join("../../../shared/vectors")
}

/// Reads a file under the vectors directory; panics with the path if it is missing.
pub fn read(rel: &str) -> Vec<u8> {
    let p = vectors_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read vector {}: {e} (set SOVRA_VECTORS)",
            p.display()
        )
    })
}

/// Reads and parses a JSON file under the vectors directory.
pub fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Parses an RFC 3339 UTC time like `2024-01-01T00:00:00Z` into Unix seconds.
pub fn unix(rfc3339: &str) -> i64 {
    let b = rfc3339.as_bytes();
    let num = |r: std::ops::Range<usize>| -> i64 { rfc3339[r].parse().unwrap() };
    assert!(b.len() >= 19, "bad time {rfc3339}");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    // days from civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hh * 3600 + mm * 60 + ss
}

/// Returns a copy of `v` with bit `bit` of byte `idx` flipped.
pub fn flip(v: &[u8], idx: usize, bit: u8) -> Vec<u8> {
    let mut out = v.to_vec();
    out[idx] ^= 1 << bit;
    out
}
