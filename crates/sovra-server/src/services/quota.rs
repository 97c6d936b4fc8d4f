//! Per-principal token buckets for symmetric and asymmetric operations.
//!
//! Each bucket refills continuously at `per_minute / 60` tokens per second and holds at most
//! `per_minute` tokens, so a principal can burst up to a minute's quota and sustain its rate.
//! Buckets are per node (documented in docs/operations.md).

use crate::cache::{Rate, TokenBucket};
use crate::error::{Error, Result};
use sovra_proto::ErrorCode;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Which quota an operation counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// AES, HMAC, random.
    Symmetric,
    /// Signatures and asymmetric decryption.
    Asymmetric,
}

/// A principal's bucket, and the per-minute limit it was made for.
#[derive(Debug)]
struct Bucket {
    per_minute: u64,
    bucket: TokenBucket,
}

/// A minute's quota as a rate: bursts of a whole minute's operations.
fn rate(per_minute: u64) -> Rate {
    let cap = per_minute as f64;
    Rate {
        per_second: cap / 60.0,
        burst: cap,
    }
}

/// The quota limiter.
#[derive(Debug)]
pub struct Quotas {
    buckets: Mutex<HashMap<(String, OpClass), Bucket>>,
}

impl Default for Quotas {
    fn default() -> Self {
        Self::new()
    }
}

impl Quotas {
    /// An empty limiter.
    pub fn new() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one operation of `class` for `principal` whose limit is `per_minute`.
    pub fn take(&self, principal: &str, class: OpClass, per_minute: u64) -> Result<()> {
        let now = Instant::now();
        let mut map = self
            .buckets
            .lock()
            .map_err(|_| Error::internal("quota lock poisoned"))?;
        let key = (principal.to_owned(), class);
        let fresh = || Bucket {
            per_minute,
            bucket: TokenBucket::full(rate(per_minute), now),
        };
        let b = map.entry(key).or_insert_with(fresh);
        if b.per_minute != per_minute {
            *b = fresh();
        }
        b.bucket.take(rate(per_minute), now, true).map_err(|wait| {
            let secs = wait.ceil().max(1.0) as u64;
            let what = match class {
                OpClass::Symmetric => "symmetric",
                OpClass::Asymmetric => "asymmetric",
            };
            Error {
                code: ErrorCode::QuotaExceeded,
                message: format!("{what} operation quota of {per_minute} per minute exhausted for principal {principal:?}; retry after {secs} s or ask an administrator to raise it"),
                retry_after: Some(secs),
                internal: None,
            }
        })
    }

    /// Forgets a principal's buckets (after its quota changed).
    pub fn reset(&self, principal: &str) {
        if let Ok(mut m) = self.buckets.lock() {
            m.retain(|(p, _), _| p != principal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_with_retry_after() {
        let q = Quotas::new();
        for _ in 0..60 {
            q.take("alice", OpClass::Asymmetric, 60).unwrap();
        }
        let e = q.take("alice", OpClass::Asymmetric, 60).unwrap_err();
        assert_eq!(e.code, ErrorCode::QuotaExceeded);
        assert_eq!(e.retry_after, Some(1));
        q.take("alice", OpClass::Symmetric, 60).unwrap();
        q.take("bob", OpClass::Asymmetric, 60).unwrap();
    }
}
