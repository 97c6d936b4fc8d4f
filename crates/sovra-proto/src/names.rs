//! Resource names: `locations/{loc}/keyRings/{ring}/cryptoKeys/{key}/cryptoKeyVersions/{n}`.
//!
//! IDs are 1–63 characters of `[A-Za-z0-9_-]`; version numbers are positive integers.

use std::fmt;
use std::str::FromStr;

/// Why a resource name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

/// Checks a location, key ring or key ID.
pub fn check_id(kind: &str, id: &str) -> Result<(), NameError> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NameError(format!(
            "invalid {kind} ID {id:?}: use 1 to 63 characters from A-Z, a-z, 0-9, '-' and '_'"
        )))
    }
}

/// `locations/{loc}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationName {
    /// Location ID.
    pub location: String,
}

/// `locations/{loc}/keyRings/{ring}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRingName {
    /// Location ID.
    pub location: String,
    /// Key ring ID.
    pub key_ring: String,
}

/// `locations/{loc}/keyRings/{ring}/cryptoKeys/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CryptoKeyName {
    /// Location ID.
    pub location: String,
    /// Key ring ID.
    pub key_ring: String,
    /// Crypto key ID.
    pub crypto_key: String,
}

/// `locations/{loc}/keyRings/{ring}/cryptoKeys/{key}/cryptoKeyVersions/{n}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionName {
    /// The key the version belongs to.
    pub key: CryptoKeyName,
    /// Version number, from 1.
    pub version: u32,
}

impl LocationName {
    /// A checked location name.
    pub fn new(location: &str) -> Result<Self, NameError> {
        check_id("location", location)?;
        Ok(Self {
            location: location.to_owned(),
        })
    }

    /// A key ring in this location.
    pub fn key_ring(&self, id: &str) -> Result<KeyRingName, NameError> {
        check_id("key ring", id)?;
        Ok(KeyRingName {
            location: self.location.clone(),
            key_ring: id.to_owned(),
        })
    }
}

impl KeyRingName {
    /// The location.
    pub fn location_name(&self) -> LocationName {
        LocationName {
            location: self.location.clone(),
        }
    }

    /// A key in this ring.
    pub fn crypto_key(&self, id: &str) -> Result<CryptoKeyName, NameError> {
        check_id("crypto key", id)?;
        Ok(CryptoKeyName {
            location: self.location.clone(),
            key_ring: self.key_ring.clone(),
            crypto_key: id.to_owned(),
        })
    }
}

impl CryptoKeyName {
    /// The key ring.
    pub fn key_ring_name(&self) -> KeyRingName {
        KeyRingName {
            location: self.location.clone(),
            key_ring: self.key_ring.clone(),
        }
    }

    /// Version `n` of this key.
    pub fn version(&self, n: u32) -> VersionName {
        VersionName {
            key: self.clone(),
            version: n,
        }
    }
}

impl fmt::Display for LocationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "locations/{}", self.location)
    }
}

impl fmt::Display for KeyRingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "locations/{}/keyRings/{}", self.location, self.key_ring)
    }
}

impl fmt::Display for CryptoKeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "locations/{}/keyRings/{}/cryptoKeys/{}",
            self.location, self.key_ring, self.crypto_key
        )
    }
}

impl fmt::Display for VersionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/cryptoKeyVersions/{}", self.key, self.version)
    }
}

/// Any resource name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceName {
    /// A location.
    Location(LocationName),
    /// A key ring.
    KeyRing(KeyRingName),
    /// A crypto key.
    CryptoKey(CryptoKeyName),
    /// A key version.
    Version(VersionName),
}

impl FromStr for ResourceName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim_matches('/').split('/').collect();
        let bad = || {
            NameError(format!(
                "invalid resource name {s:?}: expected locations/LOC[/keyRings/RING[/cryptoKeys/KEY[/cryptoKeyVersions/N]]]"
            ))
        };
        match parts.as_slice() {
            ["locations", l] => Ok(Self::Location(LocationName::new(l)?)),
            ["locations", l, "keyRings", r] => {
                Ok(Self::KeyRing(LocationName::new(l)?.key_ring(r)?))
            }
            ["locations", l, "keyRings", r, "cryptoKeys", k] => Ok(Self::CryptoKey(
                LocationName::new(l)?.key_ring(r)?.crypto_key(k)?,
            )),
            [
                "locations",
                l,
                "keyRings",
                r,
                "cryptoKeys",
                k,
                "cryptoKeyVersions",
                v,
            ] => {
                let key = LocationName::new(l)?.key_ring(r)?.crypto_key(k)?;
                Ok(Self::Version(key.version(parse_version(v)?)))
            }
            _ => Err(bad()),
        }
    }
}

/// Parses a version number (a positive decimal integer).
pub fn parse_version(v: &str) -> Result<u32, NameError> {
    // Digits only: `u32::from_str` would also take "+1", another name for version 1.
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<u32>() {
        Ok(n) if digits && n > 0 && !v.starts_with('0') => Ok(n),
        _ => Err(NameError(format!(
            "invalid version {v:?}: expected a positive integer such as 1"
        ))),
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Location(n) => n.fmt(f),
            Self::KeyRing(n) => n.fmt(f),
            Self::CryptoKey(n) => n.fmt(f),
            Self::Version(n) => n.fmt(f),
        }
    }
}

/// Whether a role-binding `scope` covers resource `name`: `*` covers everything; otherwise the
/// name must equal the scope or lie below it on a path-segment boundary.
pub fn scope_covers(scope: &str, name: &str) -> bool {
    if scope == "*" {
        return true;
    }
    let scope = scope.trim_end_matches('/');
    name == scope || (name.starts_with(scope) && name.as_bytes().get(scope.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_level() {
        for s in [
            "locations/global",
            "locations/global/keyRings/r1",
            "locations/global/keyRings/r1/cryptoKeys/k_1",
            "locations/eu-west/keyRings/r1/cryptoKeys/k/cryptoKeyVersions/12",
        ] {
            assert_eq!(s.parse::<ResourceName>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn fail_bad_names() {
        for s in [
            "",
            "locations",
            "locations/a b",
            "locations/g/keyRings/r/cryptoKeys/k/cryptoKeyVersions/0",
            "locations/g/keyRings/r/cryptoKeys/k/cryptoKeyVersions/01",
            "keyRings/r",
        ] {
            assert!(s.parse::<ResourceName>().is_err(), "{s}");
        }
        assert!(check_id("key", &"a".repeat(64)).is_err());
    }

    #[test]
    fn scopes_stop_at_segment_boundaries() {
        assert!(scope_covers("*", "locations/global"));
        assert!(scope_covers(
            "locations/global/keyRings/a",
            "locations/global/keyRings/a/cryptoKeys/k"
        ));
        assert!(scope_covers(
            "locations/global/keyRings/a",
            "locations/global/keyRings/a"
        ));
        assert!(!scope_covers(
            "locations/global/keyRings/a",
            "locations/global/keyRings/ab"
        ));
        assert!(!scope_covers(
            "locations/global/keyRings/a/cryptoKeys/k",
            "locations/global/keyRings/a"
        ));
    }
}
