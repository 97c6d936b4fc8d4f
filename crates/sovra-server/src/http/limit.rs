//! Budgets per source address, for what a caller can cost Sovra before it is authenticated:
//!
//! * requests that need no API token (attestation and TPM challenges, as with MAA): each costs a
//!   verification, a signature and a durable audit record;
//! * failed authentications on every route: each costs a store lookup and (aggregated) audit.
//!
//! The source is the connection's peer, or behind a configured reverse proxy the client its
//! `X-Forwarded-For` names. IPv4 peers on a dual-stack listener (`::ffff:a.b.c.d`) count as the
//! IPv4 address they are; IPv6 addresses count per /64.

use super::AppState;
use crate::cache::{Rate, TokenBucket};
use crate::error::{Error, Result};
use crate::services::auth::Principal;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sovra_proto::ErrorCode;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
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
        if prefix > max {
            return None;
        }
        // An IPv4-mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range it maps.
        match (addr, addr.to_canonical()) {
            (IpAddr::V6(_), v4 @ IpAddr::V4(_)) => Some(Self {
                net: v4,
                prefix: prefix.checked_sub(96)?,
            }),
            (_, net) => Some(Self { net, prefix }),
        }
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> (u128, u32) {
            match a.to_canonical() {
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

/// Who a request stands for: the peer, or behind a trusted proxy the client it names.
#[derive(Debug, Default)]
pub struct ClientResolver {
    trusted: Vec<Cidr>,
}

impl ClientResolver {
    /// Believes `X-Forwarded-For` only from `trusted` proxies.
    pub fn new(trusted: Vec<Cidr>) -> Self {
        Self { trusted }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_proxy(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client: the peer, or behind a trusted proxy the nearest address in
    /// `X-Forwarded-For` that is not itself a trusted proxy. Several `X-Forwarded-For` headers
    /// are one list, in order (RFC 9110 §5.3); proxies append, so the list is read from the
    /// right, and reading stops at the first entry that is not an address.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_proxy(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).collect();
        let mut client = peer;
        for e in entries.iter().rev() {
            let Ok(ip) = e.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.is_proxy(client) {
                break;
            }
        }
        client
    }

    /// The client of a request, from its peer address and headers.
    pub fn of(&self, parts: &Parts) -> Option<IpAddr> {
        let PeerIp(peer) = parts.extensions.get::<PeerIp>().copied()?;
        Some(self.client(peer, forwarded(&parts.headers)))
    }
}

fn forwarded(h: &HeaderMap) -> impl Iterator<Item = &str> {
    h.get_all("x-forwarded-for")
        .into_iter()
        .filter_map(|v| v.to_str().ok())
}

/// Token buckets per source address.
#[derive(Debug)]
pub struct IpBudget {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

/// The key a source is counted under: IPv4 as is, IPv6 per /64 (one host can use a whole /64).
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

impl IpBudget {
    /// `per_second` sustained per address, bursts of twice that; 0 turns the budget off.
    pub fn new(per_second: u64) -> Self {
        let per_second = per_second as f64;
        Self {
            rate: Rate {
                per_second,
                burst: (per_second * 2.0).max(1.0),
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one from `ip`'s budget, or says how many seconds to wait.
    pub fn admit(&self, ip: IpAddr) -> std::result::Result<(), u64> {
        self.take(ip, true)
    }

    /// Whether `ip` has budget left, without spending it.
    pub fn check(&self, ip: IpAddr) -> std::result::Result<(), u64> {
        self.take(ip, false)
    }

    fn take(&self, ip: IpAddr, spend: bool) -> std::result::Result<(), u64> {
        let rate = self.rate;
        if rate.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut m) = self.buckets.lock() else {
            return Ok(());
        };
        let ip = bucket_of(ip);
        let now = Instant::now();
        if m.len() >= MAX_TRACKED {
            m.retain(|_, b| !b.is_full(rate, now));
            if m.len() >= MAX_TRACKED {
                // Memory stays bounded even against very many addresses: start over.
                m.clear();
            }
        }
        let mut b = m
            .get(&ip)
            .copied()
            .unwrap_or_else(|| TokenBucket::full(rate, now));
        let r = b.take(rate, now, spend);
        // A check that finds budget left records nothing (no entry per address merely seen).
        if spend || r.is_err() {
            m.insert(ip, b);
        }
        r.map_err(|wait| wait.ceil().max(1.0) as u64)
    }
}

fn too_many(why: String, secs: u64) -> Error {
    let mut e = Error::new(ErrorCode::QuotaExceeded, why);
    e.retry_after = Some(secs);
    e
}

/// Authenticates the `Authorization` header of `parts`, within the source's budget of failed
/// authentications: a source that has spent it is refused with 429 before any lookup, and each
/// failure spends one.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let source = state.clients.of(parts);
    if header.is_some()
        && let Some(ip) = source
        && let Err(secs) = state.auth_failures.check(ip)
    {
        // A token this node authenticated moments ago still works: no lookup is needed.
        if let Some(p) = state.sovra.auth().cached_principal(header) {
            return Ok(p);
        }
        return Err(too_many(
            format!(
                "too many failed authentications from {ip}: retry in {secs} s with a valid API token (limits.failed_auth_per_ip_per_second)"
            ),
            secs,
        ));
    }
    let r = state.sovra.auth().authenticate(header, source).await;
    if let (Err(e), Some(ip)) = (&r, source)
        && e.code == ErrorCode::TokenInvalid
    {
        let _ = state.auth_failures.admit(ip);
    }
    r
}

/// Admits a request that needs no API token: with a valid Sovra API token of a principal that
/// holds a role it is not counted; otherwise (no token, a token of another service, an invalid
/// or roleless token) it spends its source's budget.
#[derive(Debug)]
pub struct Anonymous;

impl FromRequestParts<AppState> for Anonymous {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        // MAA clients send their own (Entra ID) bearer token, which Sovra does not know: it is
        // not even looked up, so it leaves no authentication-failure record.
        let sovra_token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .is_some_and(|h| h.as_bytes().starts_with(b"Bearer sovra_"));
        if sovra_token {
            match authenticate(parts, state).await {
                Ok(p) if !p.bindings().is_empty() => return Ok(Anonymous),
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::QuotaExceeded => return Err(e),
                Err(_) => {}
            }
        }
        let Some(ip) = state.clients.of(parts) else {
            return Ok(Anonymous);
        };
        state.anon.admit(ip).map_err(|secs| {
            too_many(
                format!(
                    "too many requests without an API token from {ip}: retry in {secs} s, or send an API token (limits.anonymous_per_ip_per_second)"
                ),
                secs,
            )
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
        // A dual-stack listener sees IPv4 peers as mapped addresses.
        assert!(c("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(c("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("::ffff:10.0.0.0/90").is_none());
        assert!(Cidr::parse("proxy.example").is_none());
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let r = ClientResolver::new(vec![
            Cidr::parse("127.0.0.1").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ]);
        let one = |h: &'static str| std::iter::once(h);
        // Behind two trusted hops, the nearest untrusted address is the client.
        assert_eq!(
            r.client(ip("127.0.0.1"), one("198.51.100.9, 10.1.1.1")),
            ip("198.51.100.9")
        );
        // Several headers are one list, in order.
        assert_eq!(
            r.client(
                ip("127.0.0.1"),
                ["203.0.113.1, 198.51.100.9", "10.1.1.1"].into_iter()
            ),
            ip("198.51.100.9")
        );
        // A mapped peer is the proxy it is; a mapped client is its IPv4 address.
        assert_eq!(
            r.client(ip("::ffff:127.0.0.1"), one("::ffff:198.51.100.9")),
            ip("198.51.100.9")
        );
        // A client cannot pick its own budget by sending the header itself.
        assert_eq!(
            r.client(ip("203.0.113.5"), one("198.51.100.9")),
            ip("203.0.113.5")
        );
        // Garbage stops the walk: the last hop the proxies vouch for.
        assert_eq!(
            r.client(ip("127.0.0.1"), one("198.51.100.9, not an address")),
            ip("127.0.0.1")
        );
        assert_eq!(
            r.client(ip("127.0.0.1"), std::iter::empty()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn budgets_are_per_client_v4_and_per_64_v6() {
        let l = IpBudget::new(1);
        let (a, b) = (ip("198.51.100.1"), ip("198.51.100.2"));
        assert!(l.check(a).is_ok() && l.admit(a).is_ok() && l.admit(a).is_ok());
        assert!(l.admit(a).is_err() && l.check(a).is_err());
        assert!(l.admit(b).is_ok());
        // Mapped and plain IPv4 are one client, and not every IPv4 client at once.
        let m = IpBudget::new(1);
        assert!(m.admit(ip("::ffff:192.0.2.1")).is_ok() && m.admit(ip("192.0.2.1")).is_ok());
        assert!(m.admit(ip("::ffff:192.0.2.1")).is_err());
        assert!(m.admit(ip("::ffff:192.0.2.2")).is_ok());
        // IPv6 budgets are per /64.
        assert!(l.admit(ip("2001:db8::1")).is_ok() && l.admit(ip("2001:db8::2")).is_ok());
        assert!(l.admit(ip("2001:db8::ffff")).is_err());
        assert!(l.admit(ip("2001:db8:0:1::1")).is_ok());
    }
}
