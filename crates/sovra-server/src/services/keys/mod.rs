//! Locations, key rings, crypto keys and versions: creation, reads, updates, rotation and the
//! version lifecycle (ENABLED ⇄ DISABLED → DESTROY_SCHEDULED → DESTROYED, with restore).

use super::auth::Principal;
use super::authz::Permission;
pub mod scheduled;

use super::material::Material;
use super::settings::Settings;
use super::{Base, with_retries};
use crate::cache::TtlCache;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::error::{Error, Result};
use crate::model::{self, CryptoKeyRec, KeyRingRec, LocationRec, VersionRec, version_key};
use crate::records::{Records, Row, Writes};
use sovra_proto::kms::*;
use sovra_proto::names::{CryptoKeyName, KeyRingName, LocationName, VersionName};
use sovra_proto::{ErrorCode, duration};
use sovra_store::WriteBatch;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A key with its ring and versions, as cached for the data plane.
#[derive(Debug, Clone)]
pub struct KeyView {
    /// The key ring.
    pub ring: KeyRingRec,
    /// The key.
    pub key: CryptoKeyRec,
    /// The key's revision.
    pub key_rev: u64,
    /// Versions by number, with their revisions.
    pub versions: BTreeMap<u32, (VersionRec, u64)>,
}

/// Page size bounds.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Shortest automatic rotation period.
const MIN_ROTATION: u64 = 86_400;

/// A page request.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Page size (default 100, at most 1000).
    pub size: Option<usize>,
    /// Token from the previous page.
    pub token: Option<String>,
}

impl Page {
    fn limit(&self) -> Result<usize> {
        match self.size {
            None | Some(0) => Ok(DEFAULT_PAGE),
            Some(n) if n <= MAX_PAGE => Ok(n),
            Some(_) => Err(Error::invalid(format!(
                "pageSize must be at most {MAX_PAGE}"
            ))),
        }
    }

    fn after(&self) -> Result<Option<String>> {
        match &self.token {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => sovra_proto::b64::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(Some)
                .ok_or_else(|| Error::invalid("pageToken is not a token this server issued; pass nextPageToken from the previous page")),
        }
    }
}

fn next_token<T>(records: &[Row<T>], limit: usize) -> Option<String> {
    (records.len() == limit)
        .then(|| {
            records
                .last()
                .map(|r| sovra_proto::b64::encode(r.name.as_bytes()))
        })
        .flatten()
}

/// Wire form of a version.
pub fn version_wire(v: &VersionRec) -> CryptoKeyVersion {
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

fn key_wire(k: &CryptoKeyRec, primary: Option<&VersionRec>) -> CryptoKey {
    CryptoKey {
        name: k.name.clone(),
        purpose: k.purpose,
        primary: primary.map(version_wire),
        create_time: rfc3339(k.create_time),
        version_template: VersionTemplate {
            algorithm: k.algorithm,
            protection_level: k.protection_level,
        },
        rotation_period: k.rotation_period.map(duration::format),
        next_rotation_time: k.next_rotation_time.map(rfc3339),
        destroy_scheduled_duration: duration::format(k.destroy_scheduled_duration),
        labels: k.labels.clone(),
        exportable: k.exportable,
        release_policy: k
            .release_policy
            .as_ref()
            .map(|text| sovra_proto::kms::ReleasePolicy {
                policy: serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
                immutable: k.release_policy_immutable,
            }),
    }
}

/// Checks a release policy and returns its canonical text.
pub(crate) fn release_policy_text(p: &sovra_proto::kms::ReleasePolicy) -> Result<String> {
    let text = match &p.policy {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    sovra_policy::skr::ReleasePolicy::parse(&text)
        .map_err(|e| Error::new(ErrorCode::PolicyInvalid, format!("releasePolicy: {e}")))?;
    Ok(text)
}

fn ring_wire(r: &KeyRingRec) -> KeyRing {
    KeyRing {
        name: r.name.clone(),
        create_time: rfc3339(r.create_time),
        audit_data_access: r.audit_data_access,
    }
}

/// Why a version is added: which also decides when the next scheduled rotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewVersion {
    /// `cryptoKeyVersions.create`: the rotation schedule stays as it was.
    Created,
    /// `cryptoKeys.rotate`: the next rotation is a period from now.
    Rotated,
    /// `cryptoKeys.autoRotate` (the scheduler): the next rotation is the next period boundary.
    AutoRotated,
}

impl NewVersion {
    /// The audit action.
    fn action(self) -> &'static str {
        match self {
            Self::Created => "cryptoKeyVersions.create",
            Self::Rotated => "cryptoKeys.rotate",
            Self::AutoRotated => "cryptoKeys.autoRotate",
        }
    }
}

fn not_found(code: ErrorCode, what: &str, name: &str) -> Error {
    Error::new(code, format!("{what} {name} does not exist"))
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > 64 {
        return Err(Error::invalid("at most 64 labels"));
    }
    for (k, v) in labels {
        let ok_k = !k.is_empty()
            && k.len() <= 63
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let ok_v = v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok_k || !ok_v {
            return Err(Error::invalid(format!(
                "label {k:?}={v:?}: keys and values use up to 63 of a-z, 0-9, '_' and '-' (keys non-empty)"
            )));
        }
    }
    Ok(())
}

fn check_template(purpose: Purpose, t: &VersionTemplate) -> Result<()> {
    if t.algorithm.purpose() != purpose {
        return Err(Error::invalid(format!(
            "algorithm {} is for purpose {:?}, not {:?}; choose an algorithm of the key's purpose",
            t.algorithm.as_str(),
            t.algorithm.purpose(),
            purpose
        )));
    }
    if t.protection_level == ProtectionLevel::Hsm {
        return Err(Error::new(
            ErrorCode::ProtectionLevelUnavailable,
            "protection level HSM (material generated and used inside the HSM) is not available yet; use SOFTWARE (material is still wrapped by the HSM at rest)",
        ));
    }
    Ok(())
}

/// Locations, key rings, crypto keys and their versions: the key hierarchy and its lifecycle.
#[derive(Debug)]
pub struct Keys {
    base: Base,
    settings: Arc<Settings>,
    material: Arc<Material>,
    /// Each key with its ring and versions, for the metadata TTL.
    views: TtlCache<String, Arc<KeyView>>,
}

impl Keys {
    /// The service.
    pub fn new(base: Base, settings: Arc<Settings>, material: Arc<Material>) -> Self {
        Self {
            views: TtlCache::new(base.cfg.cache_ttl, 100_000),
            base,
            settings,
            material,
        }
    }
}

impl Keys {
    // ----- locations -----------------------------------------------------------------------

    /// Creates the default location at first start if the store has none.
    pub async fn ensure_default_location(&self) -> Result<()> {
        let id = self.base.cfg.default_location.clone();
        LocationName::new(&id)?;
        if Records::of(&*self.base.store)
            .get(model::LOCATIONS, &id)
            .await?
            .is_some()
        {
            if !self.base.hsm.locations()?.contains(&id) {
                return Err(Error::internal(format!(
                    "the HSM holds no wrapping key for the configured location {id:?}; is this the HSM this database was created with?"
                )));
            }
            return Ok(());
        }
        self.base.hsm.create_location(&id)?;
        let rec = LocationRec {
            id: id.clone(),
            hsm: self.base.hsm.kind().to_owned(),
            create_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        b.create(model::LOCATIONS, &rec)?;
        b.audit(
            super::audit::AuditEvent::new(
                self.base.now(),
                super::audit::EventKind::System,
                "locations.create",
            )
            .resource(format!("locations/{id}"))
            .body(),
        );
        match self.base.store.commit(b).await {
            Ok(_) | Err(sovra_store::StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn location_wire(&self, r: &LocationRec) -> Location {
        Location {
            name: format!("locations/{}", r.id),
            location_id: r.id.clone(),
            hsm: r.hsm.clone(),
            create_time: rfc3339(r.create_time),
        }
    }

    async fn location_rec(&self, loc: &LocationName) -> Result<LocationRec> {
        let r = Records::of(&*self.base.store)
            .get(model::LOCATIONS, &loc.location)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::LocationNotFound,
                    format!("{loc} does not exist; list locations with 'sovra locations list'"),
                )
            })?;
        Ok(r.value)
    }

    /// `POST /v1/locations` (creates the location's wrapping key in the HSM).
    pub async fn create_location(&self, p: &Principal, id: &str) -> Result<Location> {
        self.base
            .auth
            .authorize(p, Permission::LocationManage, "*")
            .await?;
        let name = LocationName::new(id)?;
        if Records::of(&*self.base.store)
            .get(model::LOCATIONS, id)
            .await?
            .is_some()
        {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists"),
            ));
        }
        self.base.hsm.create_location(id)?;
        let rec = LocationRec {
            id: id.to_owned(),
            hsm: self.base.hsm.kind().to_owned(),
            create_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        b.create(model::LOCATIONS, &rec)?;
        b.audit(
            self.base
                .admin_event(p, "locations.create", name.to_string())
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => {
                Error::new(ErrorCode::AlreadyExists, format!("{name} already exists"))
            }
            e => e.into(),
        })?;
        Ok(self.location_wire(&rec))
    }

    /// `GET /v1/locations`: the locations the principal can read.
    pub async fn list_locations(&self, p: &Principal) -> Result<Vec<Location>> {
        let recs = Records::of(&*self.base.store)
            .scan(model::LOCATIONS, None, 10_000)
            .await?;
        let mut out = Vec::new();
        for r in recs {
            let l: LocationRec = r.value.clone();
            if p.can(Permission::LocationRead, &format!("locations/{}", l.id)) {
                out.push(self.location_wire(&l));
            }
        }
        if out.is_empty() {
            self.base
                .auth
                .authorize(p, Permission::LocationRead, "locations")
                .await?;
        }
        Ok(out)
    }

    /// `GET /v1/locations/{loc}`.
    pub async fn get_location(&self, p: &Principal, loc: &LocationName) -> Result<Location> {
        self.base
            .auth
            .authorize(p, Permission::LocationRead, &loc.to_string())
            .await?;
        Ok(self.location_wire(&self.location_rec(loc).await?))
    }

    // ----- key rings -----------------------------------------------------------------------

    async fn ring_rec(&self, name: &KeyRingName) -> Result<(KeyRingRec, u64)> {
        let r = Records::of(&*self.base.store)
            .get(model::KEY_RINGS, &name.to_string())
            .await?
            .ok_or_else(|| not_found(ErrorCode::KeyRingNotFound, "key ring", &name.to_string()))?;
        Ok((r.value.clone(), r.rev))
    }

    /// `POST /v1/locations/{loc}/keyRings?keyRingId=`.
    pub async fn create_key_ring(
        &self,
        p: &Principal,
        loc: &LocationName,
        id: &str,
        req: CreateKeyRingRequest,
    ) -> Result<KeyRing> {
        let name = loc.key_ring(id)?;
        self.base
            .auth
            .authorize(p, Permission::KeyRingManage, &name.to_string())
            .await?;
        self.location_rec(loc).await?;
        let rec = KeyRingRec {
            name: name.to_string(),
            create_time: self.base.now(),
            audit_data_access: req.audit_data_access,
        };
        let mut b = WriteBatch::new();
        b.create(model::KEY_RINGS, &rec)?;
        b.audit(
            self.base
                .admin_event(p, "keyRings.create", rec.name.clone())
                .detail(serde_json::json!({"auditDataAccess": rec.audit_data_access}))
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => {
                Error::new(ErrorCode::AlreadyExists, format!("{name} already exists"))
            }
            e => e.into(),
        })?;
        Ok(ring_wire(&rec))
    }

    /// `GET /v1/{keyRing}`.
    pub async fn get_key_ring(&self, p: &Principal, name: &KeyRingName) -> Result<KeyRing> {
        self.base
            .auth
            .authorize(p, Permission::KeyRingRead, &name.to_string())
            .await?;
        Ok(ring_wire(&self.ring_rec(name).await?.0))
    }

    /// `GET /v1/locations/{loc}/keyRings`.
    pub async fn list_key_rings(
        &self,
        p: &Principal,
        loc: &LocationName,
        page: &Page,
    ) -> Result<ListKeyRingsResponse> {
        let loc_name = loc.to_string();
        let whole = p.can(Permission::KeyRingRead, &loc_name);
        if !whole
            && !p
                .bindings()
                .iter()
                .any(|b| b.scope.starts_with(&format!("{loc_name}/")))
        {
            self.base
                .auth
                .authorize(p, Permission::KeyRingRead, &loc_name)
                .await?;
        }
        self.location_rec(loc).await?;
        let limit = page.limit()?;
        let recs = Records::of(&*self.base.store)
            .list(model::KEY_RINGS, &loc_name, page.after()?.as_deref(), limit)
            .await?;
        let next = next_token(&recs, limit);
        let mut rings = Vec::new();
        for r in &recs {
            let k: KeyRingRec = r.value.clone();
            if whole || p.can(Permission::KeyRingRead, &k.name) {
                rings.push(ring_wire(&k));
            }
        }
        Ok(ListKeyRingsResponse {
            key_rings: rings,
            next_page_token: next,
        })
    }

    /// `PATCH /v1/{keyRing}`.
    pub async fn update_key_ring(
        &self,
        p: &Principal,
        name: &KeyRingName,
        req: UpdateKeyRingRequest,
    ) -> Result<KeyRing> {
        self.base
            .auth
            .authorize(p, Permission::KeyRingManage, &name.to_string())
            .await?;
        let out = with_retries(|| async {
            let (mut rec, rev) = self.ring_rec(name).await?;
            if let Some(a) = req.audit_data_access {
                rec.audit_data_access = a;
            }
            let mut b = WriteBatch::new();
            b.update(model::KEY_RINGS, &rec, rev)?;
            b.audit(
                self.base
                    .admin_event(p, "keyRings.update", rec.name.clone())
                    .detail(serde_json::json!({"auditDataAccess": rec.audit_data_access}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(rec)
        })
        .await?;
        // Cached key views embed their ring (its audit setting): drop them all.
        let prefix = format!("{name}/");
        self.views.remove_where(|k, _| k.starts_with(&prefix));
        Ok(ring_wire(&out))
    }

    // ----- keys ----------------------------------------------------------------------------

    /// The cached view of a key (ring, key, versions).
    pub(crate) async fn key_view(&self, name: &CryptoKeyName) -> Result<Arc<KeyView>> {
        self.key_view_named(name, name.to_string()).await
    }

    /// [`Self::key_view`] when the caller already has the name as a string.
    pub(crate) async fn key_view_named(
        &self,
        name: &CryptoKeyName,
        key_str: String,
    ) -> Result<Arc<KeyView>> {
        if let Some(v) = self.views.get(&key_str) {
            return Ok(v);
        }
        let v = Arc::new(self.load_key_view(name).await?);
        self.views.put(key_str, v.clone());
        Ok(v)
    }

    async fn load_key_view(&self, name: &CryptoKeyName) -> Result<KeyView> {
        let key_str = name.to_string();
        let kr = Records::of(&*self.base.store)
            .get(model::CRYPTO_KEYS, &key_str)
            .await?
            .ok_or_else(|| not_found(ErrorCode::KeyNotFound, "crypto key", &key_str))?;
        let key: CryptoKeyRec = kr.value.clone();
        let (ring, _) = self.ring_rec(&name.key_ring_name()).await?;
        let mut versions = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.base.store)
                .list(model::VERSIONS, &key_str, after.as_deref(), 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                let v: VersionRec = r.value.clone();
                versions.insert(v.version, (v, r.rev));
            }
        }
        Ok(KeyView {
            ring,
            key,
            key_rev: kr.rev,
            versions,
        })
    }

    pub(crate) fn invalidate_key(&self, name: &CryptoKeyName) {
        self.views.remove(&name.to_string());
    }

    fn key_wire_from_view(v: &KeyView) -> CryptoKey {
        let primary = v
            .key
            .primary
            .and_then(|n| v.versions.get(&n))
            .map(|(r, _)| r);
        key_wire(&v.key, primary)
    }

    /// `POST /v1/{keyRing}/cryptoKeys?cryptoKeyId=`.
    pub async fn create_crypto_key(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        id: &str,
        req: CreateCryptoKeyRequest,
    ) -> Result<CryptoKey> {
        let name = ring.crypto_key(id)?;
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        self.ring_rec(ring).await?;
        let template = req.version_template.unwrap_or(VersionTemplate {
            algorithm: Algorithm::default_for(req.purpose),
            protection_level: ProtectionLevel::Software,
        });
        check_template(req.purpose, &template)?;
        check_labels(&req.labels)?;
        let (settings, _) = self.settings.settings_rec().await?;
        let destroy_dur = match &req.destroy_scheduled_duration {
            Some(d) => duration::parse(d)
                .map_err(|e| Error::invalid(format!("destroyScheduledDuration: {e}")))?,
            None => settings.default_destroy_scheduled_duration,
        };
        if destroy_dur < settings.min_destroy_scheduled_duration {
            return Err(Error::invalid(format!(
                "destroyScheduledDuration {} is below the organisation minimum {}",
                duration::format(destroy_dur),
                duration::format(settings.min_destroy_scheduled_duration)
            )));
        }
        let now = self.base.now();
        let (rotation_period, next_rotation_time) = self.rotation_fields(
            req.purpose,
            req.rotation_period.as_deref(),
            req.next_rotation_time.as_deref(),
            now,
        )?;
        let mut key = CryptoKeyRec {
            name: name.to_string(),
            purpose: req.purpose,
            create_time: now,
            algorithm: template.algorithm,
            protection_level: template.protection_level,
            rotation_period,
            next_rotation_time,
            destroy_scheduled_duration: destroy_dur,
            labels: req.labels.clone(),
            primary: None,
            version_count: 0,
            exportable: req.exportable.unwrap_or(false),
            release_policy: req
                .release_policy
                .as_ref()
                .map(release_policy_text)
                .transpose()?,
            release_policy_immutable: req.release_policy.as_ref().is_some_and(|p| p.immutable),
        };
        if key.exportable && key.release_policy.is_none() {
            return Err(Error::invalid(
                "an exportable key needs a releasePolicy saying which attested TEEs may receive it",
            ));
        }
        let mut first = None;
        if !req.skip_initial_version_creation {
            let vname = name.version(1);
            let material = self
                .material
                .generate_wrapped(&vname, template.algorithm)
                .await?;
            let v = VersionRec {
                name: vname.to_string(),
                version: 1,
                state: VersionState::Enabled,
                algorithm: template.algorithm,
                protection_level: template.protection_level,
                create_time: now,
                destroy_time: None,
                destroy_event_time: None,
                material: Some(material),
            };
            key.primary = Some(1);
            key.version_count = 1;
            first = Some(v);
        }
        // The key first, then its first version.
        let mut b = WriteBatch::new();
        b.create(model::CRYPTO_KEYS, &key)?;
        if let Some(v) = &first {
            b.create(model::VERSIONS, v)?;
        }
        b.audit(
            self.base.admin_event(p, "cryptoKeys.create", key.name.clone())
                .detail(serde_json::json!({"purpose": key.purpose, "algorithm": key.algorithm, "rotationPeriod": key.rotation_period, "destroyScheduledDuration": key.destroy_scheduled_duration}))
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => {
                Error::new(ErrorCode::AlreadyExists, format!("{name} already exists"))
            }
            e => e.into(),
        })?;
        self.invalidate_key(&name);
        Ok(key_wire(&key, first.as_ref()))
    }

    fn rotation_fields(
        &self,
        purpose: Purpose,
        period: Option<&str>,
        next: Option<&str>,
        now: i64,
    ) -> Result<(Option<u64>, Option<i64>)> {
        let Some(period) = period.filter(|p| !p.is_empty()) else {
            if next.is_some() {
                return Err(Error::invalid("nextRotationTime needs a rotationPeriod"));
            }
            return Ok((None, None));
        };
        if purpose != Purpose::EncryptDecrypt {
            return Err(Error::invalid(
                "automatic rotation is only for ENCRYPT_DECRYPT keys (asymmetric and MAC keys are rotated by creating versions)",
            ));
        }
        let secs =
            duration::parse(period).map_err(|e| Error::invalid(format!("rotationPeriod: {e}")))?;
        if secs < MIN_ROTATION {
            return Err(Error::invalid(format!(
                "rotationPeriod must be at least {}",
                duration::format(MIN_ROTATION)
            )));
        }
        let next = match next {
            Some(t) => {
                let t = parse_rfc3339(t)
                    .map_err(|e| Error::invalid(format!("nextRotationTime: {e}")))?;
                if t < now {
                    return Err(Error::invalid("nextRotationTime is in the past"));
                }
                t
            }
            None => now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        };
        Ok((Some(secs), Some(next)))
    }

    /// `GET /v1/{cryptoKey}`.
    pub async fn get_crypto_key(&self, p: &Principal, name: &CryptoKeyName) -> Result<CryptoKey> {
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &name.to_string())
            .await?;
        self.invalidate_key(name);
        Ok(Self::key_wire_from_view(&*self.key_view(name).await?))
    }

    /// `GET /v1/{keyRing}/cryptoKeys`.
    pub async fn list_crypto_keys(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        page: &Page,
    ) -> Result<ListCryptoKeysResponse> {
        let ring_name = ring.to_string();
        let whole = p.can(Permission::KeyRead, &ring_name);
        if !whole
            && !p
                .bindings()
                .iter()
                .any(|b| b.scope.starts_with(&format!("{ring_name}/")))
        {
            self.base
                .auth
                .authorize(p, Permission::KeyRead, &ring_name)
                .await?;
        }
        self.ring_rec(ring).await?;
        let limit = page.limit()?;
        let recs = Records::of(&*self.base.store)
            .list(
                model::CRYPTO_KEYS,
                &ring_name,
                page.after()?.as_deref(),
                limit,
            )
            .await?;
        let next = next_token(&recs, limit);
        let mut keys = Vec::new();
        for r in &recs {
            let k: CryptoKeyRec = r.value.clone();
            if !(whole || p.can(Permission::KeyRead, &k.name)) {
                continue;
            }
            let primary = match k.primary {
                Some(n) => Records::of(&*self.base.store)
                    .get(model::VERSIONS, &version_key(&k.name, n))
                    .await?
                    .map(|r| r.value),
                None => None,
            };
            keys.push(key_wire(&k, primary.as_ref()));
        }
        Ok(ListCryptoKeysResponse {
            crypto_keys: keys,
            next_page_token: next,
        })
    }

    /// `PATCH /v1/{cryptoKey}`.
    pub async fn update_crypto_key(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        req: UpdateCryptoKeyRequest,
    ) -> Result<CryptoKey> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        // Who may receive a key is not the key custodian's call alone: changing a release
        // policy after creation is an Administrator's.
        if req.release_policy.is_some() {
            self.base
                .auth
                .authorize(p, Permission::ReleasePolicyManage, &name.to_string())
                .await?;
        }
        if let Some(l) = &req.labels {
            check_labels(l)?;
        }
        let view = with_retries(|| async {
            let v = self.load_key_view(name).await?;
            let mut key = v.key.clone();
            let now = self.base.now();
            let mut policy_change = None;
            if let Some(t) = &req.version_template {
                check_template(key.purpose, t)?;
                key.algorithm = t.algorithm;
                key.protection_level = t.protection_level;
            }
            if let Some(l) = &req.labels {
                key.labels = l.clone();
            }
            if let Some(rp) = &req.release_policy {
                if key.release_policy_immutable {
                    return Err(Error::new(
                        ErrorCode::ReleasePolicyImmutable,
                        "the key's release policy is immutable and can never be changed",
                    ));
                }
                let text = release_policy_text(rp)?;
                policy_change = Some(serde_json::json!({
                    "oldPolicySha256": key.release_policy.as_deref().map(|t| sovra_proto::hex::encode(&sovra_crypto::sha256(t.as_bytes()))),
                    "newPolicySha256": sovra_proto::hex::encode(&sovra_crypto::sha256(text.as_bytes())),
                    "immutable": rp.immutable,
                }));
                key.release_policy = Some(text);
                key.release_policy_immutable = rp.immutable;
            }
            if req.rotation_period.is_some() || req.next_rotation_time.is_some() {
                let period = match &req.rotation_period {
                    Some(p) => Some(p.clone()),
                    None => key.rotation_period.map(duration::format),
                };
                let (rp, nrt) = self.rotation_fields(
                    key.purpose,
                    period.as_deref(),
                    req.next_rotation_time.as_deref(),
                    now,
                )?;
                key.rotation_period = rp;
                key.next_rotation_time = nrt;
            }
            let mut b = WriteBatch::new();
            b.update(model::CRYPTO_KEYS, &key, v.key_rev)?;
            b.audit(
                self.base.admin_event(p, "cryptoKeys.update", key.name.clone())
                    .detail(serde_json::to_value(&req).unwrap_or_default())
                    .body(),
            );
            if let Some(change) = policy_change {
                b.audit(
                    self.base.admin_event(p, "cryptoKeys.releasePolicy.set", key.name.clone())
                        .detail(change)
                        .body(),
                );
            }
            self.base.store.commit(b).await?;
            Ok(KeyView { key, ..v })
        })
        .await?;
        self.invalidate_key(name);
        Ok(Self::key_wire_from_view(&view))
    }

    /// Creates a new version of `name`; makes it primary if `make_primary` or the key has none.
    /// `actor` is the principal (or `None` for the scheduler).
    pub(crate) async fn add_version(
        &self,
        actor: Option<&Principal>,
        name: &CryptoKeyName,
        make_primary: bool,
        cause: NewVersion,
    ) -> Result<(CryptoKeyRec, VersionRec)> {
        let out = with_retries(|| async {
            let kr = Records::of(&*self.base.store)
                .get(model::CRYPTO_KEYS, &name.to_string())
                .await?
                .ok_or_else(|| {
                    not_found(ErrorCode::KeyNotFound, "crypto key", &name.to_string())
                })?;
            let mut key: CryptoKeyRec = kr.value.clone();
            let n = key
                .version_count
                .checked_add(1)
                .ok_or_else(|| Error::invalid("the key has too many versions"))?;
            let vname = name.version(n);
            let now = self.base.now();
            let v = VersionRec {
                name: vname.to_string(),
                version: n,
                state: VersionState::Enabled,
                algorithm: key.algorithm,
                protection_level: key.protection_level,
                create_time: now,
                destroy_time: None,
                destroy_event_time: None,
                material: Some(
                    self.material
                        .generate_wrapped(&vname, key.algorithm)
                        .await?,
                ),
            };
            key.version_count = n;
            if make_primary || key.primary.is_none() {
                key.primary = Some(n);
            }
            if let (Some(period), Some(next)) = (key.rotation_period, key.next_rotation_time)
                && cause != NewVersion::Created
            {
                let step = i64::try_from(period).unwrap_or(i64::MAX);
                let mut t = next;
                while t <= now {
                    t = t.saturating_add(step);
                }
                if cause == NewVersion::Rotated {
                    t = now.saturating_add(step);
                }
                key.next_rotation_time = Some(t);
            }
            let mut b = WriteBatch::new();
            b.update(model::CRYPTO_KEYS, &key, kr.rev)?;
            b.create(model::VERSIONS, &v)?;
            let ev = match actor {
                Some(p) => self.base.admin_event(p, cause.action(), v.name.clone()),
                None => super::audit::AuditEvent::new(
                    now,
                    super::audit::EventKind::System,
                    cause.action(),
                )
                .resource(v.name.clone()),
            };
            b.audit(
                ev.detail(serde_json::json!({"primary": key.primary}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok((key, v))
        })
        .await?;
        self.invalidate_key(name);
        Ok(out)
    }

    /// `POST /v1/{cryptoKey}:rotate`: a new version, made primary.
    pub async fn rotate(&self, p: &Principal, name: &CryptoKeyName) -> Result<CryptoKey> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        let (key, v) = self
            .add_version(Some(p), name, true, NewVersion::Rotated)
            .await?;
        Ok(key_wire(&key, Some(&v)))
    }

    /// `POST /v1/{cryptoKey}/cryptoKeyVersions`: a new version (primary only if there is none).
    pub async fn create_version(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
    ) -> Result<CryptoKeyVersion> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        let (_, v) = self
            .add_version(Some(p), name, false, NewVersion::Created)
            .await?;
        Ok(version_wire(&v))
    }

    /// `POST /v1/{cryptoKey}:updatePrimaryVersion`.
    pub async fn update_primary(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        version_id: &str,
    ) -> Result<CryptoKey> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        let n = sovra_proto::names::parse_version(version_id).map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("cryptoKeyVersionId: {e}"),
            )
        })?;
        let view = with_retries(|| async {
            let v = self.load_key_view(name).await?;
            let (ver, _) = v.versions.get(&n).ok_or_else(|| {
                not_found(
                    ErrorCode::KeyVersionNotFound,
                    "key version",
                    &name.version(n).to_string(),
                )
            })?;
            if ver.state != VersionState::Enabled {
                return Err(Error::new(
                    ErrorCode::KeyVersionNotEnabled,
                    format!(
                        "{} is {:?}; only an ENABLED version can be primary",
                        ver.name, ver.state
                    ),
                ));
            }
            let mut key = v.key.clone();
            key.primary = Some(n);
            let mut b = WriteBatch::new();
            b.update(model::CRYPTO_KEYS, &key, v.key_rev)?;
            b.audit(
                self.base
                    .admin_event(p, "cryptoKeys.updatePrimaryVersion", key.name.clone())
                    .detail(serde_json::json!({"primary": n}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(KeyView { key, ..v })
        })
        .await?;
        self.invalidate_key(name);
        Ok(Self::key_wire_from_view(&view))
    }

    // ----- versions ------------------------------------------------------------------------

    async fn version_rec(&self, name: &VersionName) -> Result<(VersionRec, u64)> {
        let r = Records::of(&*self.base.store)
            .get(
                model::VERSIONS,
                &version_key(&name.key.to_string(), name.version),
            )
            .await?
            .ok_or_else(|| {
                let _ = &name;
                not_found(
                    ErrorCode::KeyVersionNotFound,
                    "key version",
                    &name.to_string(),
                )
            })?;
        Ok((r.value.clone(), r.rev))
    }

    async fn ensure_key_exists(&self, name: &CryptoKeyName) -> Result<()> {
        if Records::of(&*self.base.store)
            .get(model::CRYPTO_KEYS, &name.to_string())
            .await?
            .is_none()
        {
            return Err(not_found(
                ErrorCode::KeyNotFound,
                "crypto key",
                &name.to_string(),
            ));
        }
        Ok(())
    }

    /// `GET /v1/{version}`.
    pub async fn get_version(&self, p: &Principal, name: &VersionName) -> Result<CryptoKeyVersion> {
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &name.key.to_string())
            .await?;
        self.ensure_key_exists(&name.key).await?;
        Ok(version_wire(&self.version_rec(name).await?.0))
    }

    /// `GET /v1/{cryptoKey}/cryptoKeyVersions`.
    pub async fn list_versions(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        page: &Page,
    ) -> Result<ListVersionsResponse> {
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &name.to_string())
            .await?;
        self.ensure_key_exists(name).await?;
        let limit = page.limit()?;
        let recs = Records::of(&*self.base.store)
            .list(
                model::VERSIONS,
                &name.to_string(),
                page.after()?.as_deref(),
                limit,
            )
            .await?;
        let next = next_token(&recs, limit);
        let versions = recs.iter().map(|r| version_wire(&r.value)).collect();
        Ok(ListVersionsResponse {
            crypto_key_versions: versions,
            next_page_token: next,
        })
    }

    /// Applies a state change to a version under CAS, with an audit record.
    async fn change_version<F>(
        &self,
        p: &Principal,
        name: &VersionName,
        action: &str,
        f: F,
    ) -> Result<CryptoKeyVersion>
    where
        F: Fn(&mut VersionRec, i64, &crate::model::SettingsRec, &CryptoKeyRec) -> Result<()>,
    {
        self.base
            .auth
            .authorize(p, Permission::VersionManage, &name.key.to_string())
            .await?;
        let key_str = name.key.to_string();
        let v = with_retries(|| async {
            let kr = Records::of(&*self.base.store).get(model::CRYPTO_KEYS, &key_str).await?.ok_or_else(|| not_found(ErrorCode::KeyNotFound, "crypto key", &key_str))?;
            let key: CryptoKeyRec = kr.value.clone();
            let (mut v, rev) = self.version_rec(name).await?;
            let before = v.state;
            let (settings, _) = self.settings.settings_rec().await?;
            f(&mut v, self.base.now(), &settings, &key)?;
            let mut b = WriteBatch::new();
            b.update(model::VERSIONS, &v, rev)?;
            b.audit(
                self.base.admin_event(p, action, v.name.clone())
                    .detail(serde_json::json!({"from": before, "to": v.state, "destroyTime": v.destroy_time.map(rfc3339)}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(v)
        })
        .await?;
        self.invalidate_key(&name.key);
        Ok(version_wire(&v))
    }

    /// `PATCH /v1/{version}` with `state` ENABLED or DISABLED.
    pub async fn set_version_state(
        &self,
        p: &Principal,
        name: &VersionName,
        state: VersionState,
    ) -> Result<CryptoKeyVersion> {
        if !matches!(state, VersionState::Enabled | VersionState::Disabled) {
            return Err(Error::invalid(
                "state can only be set to ENABLED or DISABLED; use :destroy and :restore for destruction",
            ));
        }
        let action = if state == VersionState::Enabled {
            "cryptoKeyVersions.enable"
        } else {
            "cryptoKeyVersions.disable"
        };
        self.change_version(p, name, action, |v, _, _, _| {
            match (v.state, state) {
                (VersionState::Enabled | VersionState::Disabled, _) => {
                    v.state = state;
                    Ok(())
                }
                (s, _) => Err(Error::new(
                    ErrorCode::InvalidStateTransition,
                    format!("{} is {s:?}; it can only be enabled or disabled while ENABLED or DISABLED (restore it first if it is scheduled for destruction)", v.name),
                )),
            }
        })
        .await
    }

    /// `POST /v1/{version}:destroy`: schedules destruction after the key's destroyScheduledDuration.
    pub async fn destroy_version(
        &self,
        p: &Principal,
        name: &VersionName,
    ) -> Result<CryptoKeyVersion> {
        self.change_version(p, name, "cryptoKeyVersions.destroy", |v, now, settings, key| match v.state {
            VersionState::Enabled if settings.require_disable_before_destroy => Err(Error::new(
                ErrorCode::DisableBeforeDestroyRequired,
                format!("the organisation requires versions to be DISABLED before destruction; disable {} first", v.name),
            )),
            VersionState::Enabled | VersionState::Disabled => {
                let dur = key.destroy_scheduled_duration.max(settings.min_destroy_scheduled_duration);
                v.state = VersionState::DestroyScheduled;
                v.destroy_time = Some(now.saturating_add(i64::try_from(dur).unwrap_or(i64::MAX)));
                Ok(())
            }
            s => Err(Error::new(ErrorCode::InvalidStateTransition, format!("{} is already {s:?}", v.name))),
        })
        .await
    }

    /// `POST /v1/{version}:restore`: cancels a scheduled destruction; the version becomes DISABLED.
    pub async fn restore_version(
        &self,
        p: &Principal,
        name: &VersionName,
    ) -> Result<CryptoKeyVersion> {
        self.change_version(p, name, "cryptoKeyVersions.restore", |v, _, _, _| {
            match v.state {
                VersionState::DestroyScheduled => {
                    v.state = VersionState::Disabled;
                    v.destroy_time = None;
                    Ok(())
                }
                s => Err(Error::new(
                    ErrorCode::InvalidStateTransition,
                    format!(
                        "{} is {s:?}; only a DESTROY_SCHEDULED version can be restored",
                        v.name
                    ),
                )),
            }
        })
        .await
    }
}
