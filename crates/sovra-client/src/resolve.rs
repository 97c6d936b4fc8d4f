//! Name resolution for the client, optionally limited to public addresses: a URL that an API
//! caller chose (an external issuer's JWKS) must not reach the server's own loopback, the cloud
//! metadata service or the private network behind it. Filtering happens at resolution, on the
//! addresses actually connected to, so a name that re-resolves to a private address later is
//! still refused.

use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Whether `ip` is reachable on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (incl. 169.254.169.254), shared (100.64/10), unspecified, multicast or
/// broadcast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_multicast()
                || v.is_broadcast()
                || v.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0)
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves names with the system resolver, keeping only public addresses when asked.
#[derive(Debug, Clone, Copy)]
pub struct Resolver {
    /// Refuse names that resolve only to non-public addresses.
    pub public_only: bool,
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let public_only = self.public_only;
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| !public_only || is_public(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} resolves to no public address", name.as_str()),
                ));
            }
            Ok(kept.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::2",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(
                !is_public(a.parse().unwrap_or_else(|_| unreachable!())),
                "{a}"
            );
        }
        for a in ["8.8.8.8", "2001:4860:4860::8888", "::ffff:1.1.1.1"] {
            assert!(
                is_public(a.parse().unwrap_or_else(|_| unreachable!())),
                "{a}"
            );
        }
    }
}
