//! A per-source-address budget for the requests that need no API token (attestation and TPM
//! challenges, as with MAA): each such request costs a verification, a signature and a durable
//! audit record, so one address cannot flood the store. Callers that present an API token are
//! authenticated instead and not counted here.

use super::AppState;
use crate::error::{Error, Result};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sovra_proto::ErrorCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The peer address of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub IpAddr);

/// Most addresses tracked at once; beyond it, full buckets are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// Token buckets per source address.
#[derive(Debug)]
pub struct AnonLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl AnonLimiter {
    /// `per_second` sustained per address, bursts of twice that; 0 turns the limit off.
    pub fn new(per_second: u64) -> Self {
        let per_second = per_second as f64;
        Self {
            per_second,
            burst: (per_second * 2.0).max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `ip`'s budget, or says how many seconds to wait.
    pub fn admit(&self, ip: IpAddr) -> std::result::Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut m) = self.buckets.lock() else {
            return Ok(());
        };
        if m.len() >= MAX_TRACKED {
            let (rate, burst) = (self.per_second, self.burst);
            m.retain(|_, (t, at)| *t + at.elapsed().as_secs_f64() * rate < burst);
        }
        let now = Instant::now();
        let (tokens, at) = m.get(&ip).copied().unwrap_or((self.burst, now));
        let tokens =
            (tokens + now.duration_since(at).as_secs_f64() * self.per_second).min(self.burst);
        if tokens < 1.0 {
            m.insert(ip, (tokens, now));
            return Err(((1.0 - tokens) / self.per_second).ceil().max(1.0) as u64);
        }
        m.insert(ip, (tokens - 1.0, now));
        Ok(())
    }
}

/// Admits a request that needs no API token: with a valid Sovra API token it is not counted;
/// otherwise (no token, or a token of another service) it spends its address's budget.
#[derive(Debug)]
pub struct Anonymous;

impl FromRequestParts<AppState> for Anonymous {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        // MAA clients send their own (Entra ID) bearer token, which Sovra does not know: only a
        // valid Sovra token exempts a request; anything else counts as anonymous (and is not
        // even looked up, so it leaves no authentication-failure record).
        if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION)
            && h.as_bytes().starts_with(b"Bearer sovra_")
            && state
                .sovra
                .auth()
                .authenticate(Some(h.to_str().unwrap_or("\u{fffd}")))
                .await
                .is_ok()
        {
            return Ok(Anonymous);
        }
        let Some(PeerIp(ip)) = parts.extensions.get::<PeerIp>().copied() else {
            return Ok(Anonymous);
        };
        state.anon.admit(ip).map_err(|secs| {
            let mut e = Error::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "too many requests without an API token from {ip}: retry in {secs} s, or send an API token (limits.anonymous_per_ip_per_second)"
                ),
            );
            e.retry_after = Some(secs);
            e
        })?;
        Ok(Anonymous)
    }
}
