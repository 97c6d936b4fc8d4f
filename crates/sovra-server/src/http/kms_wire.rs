//! The native wire form of the key hierarchy: what the `Keys` service returns (records and
//! domain values), as the `/v1` API shows it.

use crate::clock::rfc3339;
use crate::model::{KeyRingRec, LocationRec, VersionRec};
use crate::services::keys::{Key, Listed};
use sovra_proto::duration;
use sovra_proto::kms::*;

/// A location.
pub fn location(r: &LocationRec) -> Location {
    Location {
        name: format!("locations/{}", r.id),
        location_id: r.id.clone(),
        hsm: r.hsm.clone(),
        create_time: rfc3339(r.create_time),
    }
}

/// A key ring.
pub fn ring(r: &KeyRingRec) -> KeyRing {
    KeyRing {
        name: r.name.clone(),
        create_time: rfc3339(r.create_time),
        audit_data_access: r.audit_data_access,
    }
}

/// A key version.
pub fn version(v: &VersionRec) -> CryptoKeyVersion {
    CryptoKeyVersion {
        name: v.name.clone(),
        state: v.state,
        algorithm: v.algorithm,
        protection_level: v.protection_level,
        create_time: rfc3339(v.create_time),
        destroy_time: v.destroy_time.map(rfc3339),
        destroy_event_time: v.destroy_event_time.map(rfc3339),
    }
}

/// A key and its primary version.
pub fn key(k: &Key) -> CryptoKey {
    let r = &k.key;
    CryptoKey {
        name: r.name.clone(),
        purpose: r.purpose,
        primary: k.primary.as_ref().map(version),
        create_time: rfc3339(r.create_time),
        version_template: VersionTemplate {
            algorithm: r.algorithm,
            protection_level: r.protection_level,
        },
        rotation_period: r.rotation_period.map(duration::format),
        next_rotation_time: r.next_rotation_time.map(rfc3339),
        destroy_scheduled_duration: duration::format(r.destroy_scheduled_duration),
        labels: r.labels.clone(),
        exportable: r.exportable,
        release_policy: r.release_policy.as_ref().map(|text| ReleasePolicy {
            policy: serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
            immutable: r.release_policy_immutable,
        }),
    }
}

/// A page of key rings.
pub fn rings(l: &Listed<KeyRingRec>) -> ListKeyRingsResponse {
    ListKeyRingsResponse {
        key_rings: l.items.iter().map(ring).collect(),
        next_page_token: l.next_page_token.clone(),
    }
}

/// A page of keys.
pub fn keys(l: &Listed<Key>) -> ListCryptoKeysResponse {
    ListCryptoKeysResponse {
        crypto_keys: l.items.iter().map(key).collect(),
        next_page_token: l.next_page_token.clone(),
    }
}

/// A page of versions.
pub fn versions(l: &Listed<VersionRec>) -> ListVersionsResponse {
    ListVersionsResponse {
        crypto_key_versions: l.items.iter().map(version).collect(),
        next_page_token: l.next_page_token.clone(),
    }
}
