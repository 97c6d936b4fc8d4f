//! Per-principal token buckets for symmetric and asymmetric operations.
//!
//! Each bucket refills continuously at `per_minute / 60` tokens per second and holds at most
//! `per_minute` tokens, so a principal can burst up to a minute's quota and sustain its rate.
//! Buckets are per node (documented in docs/operations.md).

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

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u64, now: Instant) -> Self {
        let cap = per_minute as f64;
        Self {
            tokens: cap,
            capacity: cap,
            per_sec: cap / 60.0,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> Result<(), f64> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / self.per_sec)
        }
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
        let bucket = map
            .entry(key)
            .or_insert_with(|| Bucket::new(per_minute, now));
        if (bucket.capacity - per_minute as f64).abs() > f64::EPSILON {
            *bucket = Bucket::new(per_minute, now);
        }
        bucket.take(now).map_err(|wait| {
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
