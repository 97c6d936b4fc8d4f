//! Per-principal quotas for symmetric and asymmetric operations, enforced by token buckets.
//!
//! Each bucket refills continuously at `per_minute / 60` tokens per second and holds at most
//! `per_minute` tokens, so a principal can burst up to a minute's quota and sustain its rate.
//! Buckets are per node (documented in docs/operations.md).

use super::Base;
use super::auth::{Principal, check_principal};
use super::authz::Permission;
use crate::cache::{Rate, TokenBucket, TtlCache};
use crate::error::{Error, Result};
use crate::model::{self, QuotaRec};
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use sovra_proto::ErrorCode;
use sovra_store::{Expect, WriteBatch};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A principal's per-minute operation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Symmetric operations (encrypt, decrypt, MAC) per minute.
    pub symmetric_per_minute: u64,
    /// Asymmetric operations (sign, asymmetric decrypt, release, attestation) per minute.
    pub asymmetric_per_minute: u64,
}

/// A principal's quota, and whether it is the configured default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalQuota {
    /// The principal.
    pub principal: String,
    /// Its limits.
    pub limits: Limits,
    /// No override is stored: the configured default applies.
    pub default: bool,
}

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

/// The token buckets of every principal and class.
#[derive(Debug)]
pub struct Buckets {
    buckets: Mutex<HashMap<(String, OpClass), Bucket>>,
}

impl Default for Buckets {
    fn default() -> Self {
        Self::new()
    }
}

impl Buckets {
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
        let q = Buckets::new();
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

/// Per-principal quotas: the limits (an override, or the configured default) and the buckets
/// that enforce them on this node.
#[derive(Debug)]
pub struct Quotas {
    base: Base,
    buckets: Buckets,
    /// Each principal's limits, for the metadata TTL.
    limits: TtlCache<String, (u64, u64, bool)>,
    /// Principals and classes whose denial was audited in the last second.
    audited: TtlCache<(String, OpClass), ()>,
}

impl Quotas {
    /// The service.
    pub fn new(base: Base) -> Self {
        Self {
            buckets: Buckets::new(),
            limits: TtlCache::new(base.cfg.cache_ttl, 100_000),
            audited: TtlCache::new(std::time::Duration::from_secs(1), 100_000),
            base,
        }
    }

    /// The quota limits of `principal`.
    pub(crate) async fn quota_of(&self, principal: &str) -> Result<(u64, u64, bool)> {
        Ok(match self.limits.get(principal) {
            Some(q) => q,
            None => {
                let q = match Records::of(&*self.base.store)
                    .get(model::QUOTAS, principal)
                    .await?
                {
                    Some(r) => {
                        let q: QuotaRec = r.value.clone();
                        (q.symmetric_per_minute, q.asymmetric_per_minute, false)
                    }
                    None => (
                        self.base.cfg.symmetric_per_minute,
                        self.base.cfg.asymmetric_per_minute,
                        true,
                    ),
                };
                self.limits.put(principal.to_owned(), q);
                q
            }
        })
    }

    /// Takes one operation of `class` from `p`'s quota.
    pub(crate) async fn take(&self, p: &Principal, class: OpClass) -> Result<()> {
        let (sym, asym, _) = self.quota_of(&p.name).await?;
        let limit = match class {
            OpClass::Symmetric => sym,
            OpClass::Asymmetric => asym,
        };
        if let Err(e) = self.buckets.take(&p.name, class, limit) {
            // Quota denials are audited, but at most once per second per principal and class to
            // keep a flood from flooding the log.
            if self.should_audit(&p.name, class) {
                let ev = super::audit::AuditEvent::new(
                    self.base.now(),
                    super::audit::EventKind::Denied,
                    Action::Quota,
                )
                .principal(&p.name)
                .denied(ErrorCode::QuotaExceeded.as_str())
                .detail(serde_json::json!({"class": format!("{class:?}"), "perMinute": limit}));
                self.base.audit.record_best_effort(ev).await;
            }
            return Err(e);
        }
        Ok(())
    }

    fn should_audit(&self, principal: &str, class: OpClass) -> bool {
        let key = (principal.to_owned(), class);
        if self.audited.get(&key).is_some() {
            return false;
        }
        self.audited.put(key, ());
        true
    }

    /// `GET /v1/quotas/{principal}`.
    pub async fn get_quota(&self, p: &Principal, principal: &str) -> Result<PrincipalQuota> {
        if *p.name != *principal {
            self.base
                .auth
                .authorize(p, Permission::AccessRead, "*")
                .await?;
        }
        check_principal(principal)?;
        let (s, a, d) = self.quota_of(principal).await?;
        Ok(PrincipalQuota {
            principal: principal.to_owned(),
            limits: Limits {
                symmetric_per_minute: s,
                asymmetric_per_minute: a,
            },
            default: d,
        })
    }

    /// `PUT /v1/quotas/{principal}`.
    pub async fn set_quota(
        &self,
        p: &Principal,
        principal: &str,
        req: Limits,
    ) -> Result<PrincipalQuota> {
        self.base
            .auth
            .authorize(p, Permission::AccessManage, "*")
            .await?;
        check_principal(principal)?;
        for (field, v) in [
            ("symmetricPerMinute", req.symmetric_per_minute),
            ("asymmetricPerMinute", req.asymmetric_per_minute),
        ] {
            if !(1..=1_000_000_000).contains(&v) {
                return Err(Error::invalid(format!(
                    "{field} must be between 1 and 1000000000"
                )));
            }
        }
        let rec = QuotaRec {
            principal: principal.to_owned(),
            symmetric_per_minute: req.symmetric_per_minute,
            asymmetric_per_minute: req.asymmetric_per_minute,
        };
        let mut b = WriteBatch::new();
        b.write(model::QUOTAS, &rec, Expect::Any)?;
        b.audit(
            self.base
                .admin_event(p, Action::QuotaSet, format!("quotas/{principal}"))
                .detail(serde_json::to_value(req).unwrap_or_default())
                .body(),
        );
        self.base.store.commit(b).await?;
        self.limits.remove(principal);
        self.buckets.reset(principal);
        Ok(PrincipalQuota {
            principal: principal.to_owned(),
            limits: req,
            default: false,
        })
    }
}
