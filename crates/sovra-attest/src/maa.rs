//! Microsoft Azure Attestation's names for verified facts: each verifier adds the MAA-named
//! claims of its evidence beside its native ones ([`crate::Verifier::maa_claims`]), so
//! policies written for MAA work unchanged. These are the helpers they share.

use serde_json::{Map, Value};

/// The first of `paths` (dotted, into nested objects) that exists in `m`.
pub fn find<'a>(m: &'a Map<String, Value>, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|p| {
        let mut parts = p.split('.');
        let mut cur = m.get(parts.next()?)?;
        for part in parts {
            cur = cur.get(part)?;
        }
        Some(cur)
    })
}

/// An integer claim given as a number, a decimal string or a `0x` hex string.
pub fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| s.parse().ok()),
        _ => None,
    }
}

/// Copies native claims to MAA names: for each `(maa, paths)`, the first path of `native`
/// that exists becomes `out[maa]`.
pub fn rename(
    native: &Map<String, Value>,
    out: &mut Map<String, Value>,
    names: &[(&str, &[&str])],
) {
    for (maa, paths) in names {
        if let Some(v) = find(native, paths) {
            out.insert((*maa).into(), v.clone());
        }
    }
}

/// Turns the named claims of `out` into numbers (MAA policies compare them numerically).
pub fn as_numbers(out: &mut Map<String, Value>, names: &[&str]) {
    for k in names {
        if let Some(n) = out.get(*k).and_then(int) {
            out.insert((*k).into(), Value::from(n));
        }
    }
}
