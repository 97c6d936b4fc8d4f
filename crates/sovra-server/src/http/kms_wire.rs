//! The native wire form of the key hierarchy: what the `Keys` service returns (records and
//! domain values), as the `/v1` API shows it.

use crate::clock::{parse_rfc3339, rfc3339};
use crate::error::{Error, Result};
use crate::model::{ImportJobRec, KeyRingRec, LocationRec, VersionRec};
use crate::services::keys::import::{NewImport, NewImportJob};
use crate::services::keys::{Key, KeyChanges, Listed, NewKey, PolicyText};
use sovra_proto::duration;
use sovra_proto::kms::*;

/// A release policy's text: the document as a JSON string, or the JSON object itself.
fn policy_text(p: ReleasePolicy) -> PolicyText {
    let text = match p.policy {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    PolicyText {
        text,
        immutable: p.immutable,
    }
}

/// A duration field (`"86400s"`), named in the error.
fn seconds(field: &str, d: &str) -> Result<u64> {
    duration::parse(d).map_err(|e| Error::invalid(format!("{field}: {e}")))
}

/// A timestamp field (RFC 3339), named in the error.
fn time(field: &str, t: &str) -> Result<i64> {
    parse_rfc3339(t).map_err(|e| Error::invalid(format!("{field}: {e}")))
}

/// An optional rotation period; empty means none.
fn rotation_period(p: Option<&str>) -> Result<Option<u64>> {
    p.filter(|p| !p.is_empty())
        .map(|p| seconds("rotationPeriod", p))
        .transpose()
}

/// `POST .../cryptoKeys`: the key to create.
pub fn new_key(r: CreateCryptoKeyRequest) -> Result<NewKey> {
    Ok(NewKey {
        purpose: r.purpose,
        template: r.version_template,
        rotation_period: rotation_period(r.rotation_period.as_deref())?,
        next_rotation_time: r
            .next_rotation_time
            .as_deref()
            .map(|t| time("nextRotationTime", t))
            .transpose()?,
        destroy_scheduled_duration: r
            .destroy_scheduled_duration
            .as_deref()
            .map(|d| seconds("destroyScheduledDuration", d))
            .transpose()?,
        labels: r.labels,
        skip_initial_version: r.skip_initial_version_creation,
        exportable: r.exportable.unwrap_or(false),
        release_policy: r.release_policy.map(policy_text),
        tags: Default::default(),
        key_ops: r.key_ops,
    })
}

/// `PATCH .../cryptoKeys/{key}`: the changes (an empty `rotationPeriod` turns rotation off).
pub fn key_changes(r: UpdateCryptoKeyRequest) -> Result<KeyChanges> {
    Ok(KeyChanges {
        rotation_period: r
            .rotation_period
            .as_deref()
            .map(|p| rotation_period(Some(p)))
            .transpose()?,
        next_rotation_time: r
            .next_rotation_time
            .as_deref()
            .map(|t| time("nextRotationTime", t))
            .transpose()?,
        labels: r.labels,
        version_template: r.version_template,
        release_policy: r.release_policy.map(policy_text),
        tags: None,
        key_ops: r.key_ops,
    })
}

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
        attestation: v.attestation.as_ref().map(|jws| KeyAttestation {
            format: KEY_ATTESTATION_FORMAT.into(),
            content: jws.clone(),
        }),
        not_before_time: v.not_before.map(rfc3339),
        expire_time: v.expire_time.map(rfc3339),
    }
}

/// A deleted key, with the version that was its primary (when known).
pub fn deleted_key(
    d: &crate::model::DeletedKeyRec,
    primary: Option<VersionRec>,
) -> DeletedCryptoKey {
    DeletedCryptoKey {
        crypto_key: key(&Key {
            key: d.key.clone(),
            primary,
        }),
        delete_time: rfc3339(d.delete_time),
        purge_time: rfc3339(d.purge_time),
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
            protection_level: Some(r.protection_level),
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
        key_ops: r.key_ops.clone(),
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

/// An import job to create, from its wire form.
pub fn new_import_job(r: CreateImportJobRequest) -> Result<NewImportJob> {
    Ok(NewImportJob {
        method: r.import_method,
        protection_level: r.protection_level,
        ttl: r
            .ttl
            .as_deref()
            .map(duration::parse)
            .transpose()
            .map_err(|e| Error::invalid(format!("ttl: {e}")))?,
    })
}

/// Material to import, from its wire form.
pub fn new_import(r: ImportVersionRequest) -> Result<NewImport> {
    let wrapped = sovra_proto::b64::decode(&r.wrapped_key).map_err(|_| {
        Error::new(
            sovra_proto::ErrorCode::InvalidBase64,
            "field wrappedKey is not valid base64",
        )
    })?;
    let public_key = match r.public_key.as_deref() {
        None => None,
        Some(pem) => Some(
            sovra_crypto::keys::pem_decode("PUBLIC KEY", pem).ok_or_else(|| {
                Error::invalid("publicKey is not a PEM public key (BEGIN PUBLIC KEY)")
            })?,
        ),
    };
    let into = r
        .crypto_key_version
        .as_deref()
        .map(|n| match n.parse::<sovra_proto::names::ResourceName>() {
            Ok(sovra_proto::names::ResourceName::Version(v)) => Ok(v),
            _ => Err(Error::invalid(
                "cryptoKeyVersion must be a version's full name (locations/…/cryptoKeyVersions/N)",
            )),
        })
        .transpose()?;
    Ok(NewImport {
        job: r.import_job,
        algorithm: r.algorithm,
        wrapped,
        public_key,
        into,
    })
}

/// An import job in its wire form (`now` decides whether it is still active).
pub fn import_job(j: &ImportJobRec, now: i64) -> ImportJob {
    ImportJob {
        name: j.name.clone(),
        import_method: j.method,
        protection_level: j.protection_level,
        state: if now < j.expire_time {
            "ACTIVE"
        } else {
            "EXPIRED"
        }
        .into(),
        create_time: rfc3339(j.create_time),
        expire_time: rfc3339(j.expire_time),
        public_key: sovra_proto::b64::decode(&j.public_key)
            .map(|d| sovra_crypto::keys::pem("PUBLIC KEY", &d))
            .unwrap_or_default(),
        attestation: KeyAttestation {
            format: KEY_ATTESTATION_FORMAT.into(),
            content: j.attestation.clone(),
        },
    }
}
