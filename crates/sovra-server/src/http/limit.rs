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

/// An address range, `ADDR` or `ADDR/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`.
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((n, w), (x, wx)) = (bits(self.net), bits(ip));
        if w != wx {
            return false;
        }
        let shift = w - u32::from(self.prefix);
        shift >= w || (n >> shift) == (x >> shift)
    }
}

/// Token buckets per source address.
#[derive(Debug)]
pub struct AnonLimiter {
    per_second: f64,
    burst: f64,
    trusted: Vec<Cidr>,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl AnonLimiter {
    /// `per_second` sustained per address, bursts of twice that; 0 turns the limit off.
    pub fn new(per_second: u64) -> Self {
        Self::with_proxies(per_second, Vec::new())
    }

    /// As [`AnonLimiter::new`]; requests from `trusted` proxies are counted against the client
    /// they name in `X-Forwarded-For` (the nearest address that is not itself a trusted proxy).
    pub fn with_proxies(per_second: u64, trusted: Vec<Cidr>) -> Self {
        let per_second = per_second as f64;
        Self {
            per_second,
            burst: (per_second * 2.0).max(1.0),
            trusted,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The client a request stands for: the peer, or behind a trusted proxy the nearest
    /// untrusted address in `X-Forwarded-For`.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        forwarded_for
            .into_iter()
            .flat_map(|h| h.rsplit(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .find(|ip| !trusted(*ip))
            .unwrap_or(peer)
    }

    /// Takes one request from `ip`'s budget, or says how many seconds to wait.
    pub fn admit(&self, ip: IpAddr) -> std::result::Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut m) = self.buckets.lock() else {
            return Ok(());
        };
        // One budget per IPv6 /64: a single host can use a whole /64.
        let ip = match ip {
            IpAddr::V6(v) => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v) & !((1u128 << 64) - 1),
            )),
            v4 => v4,
        };
        if m.len() >= MAX_TRACKED {
            let (rate, burst) = (self.per_second, self.burst);
            m.retain(|_, (t, at)| *t + at.elapsed().as_secs_f64() * rate < burst);
            if m.len() >= MAX_TRACKED {
                // Memory stays bounded even against very many addresses: start over.
                m.clear();
            }
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
        let Some(PeerIp(peer)) = parts.extensions.get::<PeerIp>().copied() else {
            return Ok(Anonymous);
        };
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = state.anon.client(peer, forwarded);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let c = |s| Cidr::parse(s).unwrap();
        assert!(c("10.0.0.0/8").contains(ip("10.1.2.3")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!c("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(c("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(c("2001:db8::/32").contains(ip("2001:db8::1")));
        assert!(!c("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("proxy.example").is_none());
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let l = AnonLimiter::with_proxies(
            1,
            vec![
                Cidr::parse("127.0.0.1").unwrap(),
                Cidr::parse("10.0.0.0/8").unwrap(),
            ],
        );
        // Behind two trusted hops, the nearest untrusted address is the client.
        assert_eq!(
            l.client(ip("127.0.0.1"), Some("198.51.100.9, 10.1.1.1")),
            ip("198.51.100.9")
        );
        // A client cannot pick its own budget by sending the header itself.
        assert_eq!(
            l.client(ip("203.0.113.5"), Some("198.51.100.9")),
            ip("203.0.113.5")
        );
        // Garbage or nothing: the proxy itself.
        assert_eq!(
            l.client(ip("127.0.0.1"), Some("not an address")),
            ip("127.0.0.1")
        );
        assert_eq!(l.client(ip("127.0.0.1"), None), ip("127.0.0.1"));
        // Budgets are per resolved client.
        let a = l.client(ip("127.0.0.1"), Some("198.51.100.1"));
        let b = l.client(ip("127.0.0.1"), Some("198.51.100.2"));
        assert!(l.admit(a).is_ok() && l.admit(a).is_ok());
        assert!(l.admit(a).is_err());
        assert!(l.admit(b).is_ok());
        // IPv6 budgets are per /64.
        assert!(l.admit(ip("2001:db8::1")).is_ok() && l.admit(ip("2001:db8::2")).is_ok());
        assert!(l.admit(ip("2001:db8::ffff")).is_err());
        assert!(l.admit(ip("2001:db8:0:1::1")).is_ok());
    }
}
