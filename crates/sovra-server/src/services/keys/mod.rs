//! Locations, key rings, crypto keys and versions: creation, reads, updates, rotation and the
//! version lifecycle (ENABLED ⇄ DISABLED → DESTROY_SCHEDULED → DESTROYED, with restore).

use super::actions::Action;
use super::auth::Principal;
use super::authz::Permission;
pub mod backup;
pub mod crypto_keys;
pub mod deleted;
pub mod import;
pub mod locations;
pub mod rings;
pub mod scheduled;
pub mod versions;

use super::material::Material;
use super::settings::Settings;
use super::{Base, with_retries};
use crate::cache::TtlCache;
use crate::clock::rfc3339;
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

impl Keys {
    /// Whether `p` may list the children of `parent`: `Ok(true)` when it may read all of them,
    /// `Ok(false)` when only some (it holds `perm` on some child, and the listing filters),
    /// and a denial (audited) when none.
    async fn may_list(&self, p: &Principal, perm: Permission, parent: &str) -> Result<bool> {
        if p.can(perm, parent) {
            return Ok(true);
        }
        let prefix = format!("{parent}/");
        if !p.bindings().iter().any(|b| b.scope.starts_with(&prefix)) {
            self.base.auth.authorize(p, perm, parent).await?;
        }
        Ok(false)
    }
}

/// A key as the service returns it: its record and its primary version.
#[derive(Debug, Clone)]
pub struct Key {
    /// The key.
    pub key: CryptoKeyRec,
    /// Its primary version, if it has one.
    pub primary: Option<VersionRec>,
}

/// One page of a listing, and the token of the next one.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts (`None`: this was the last).
    pub next_page_token: Option<String>,
}

/// A release policy to set on a key: its text (checked before it is kept) and whether it may
/// ever change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyText {
    /// The policy document (Azure Key Vault release policy JSON).
    pub text: String,
    /// Once set, the policy can never be changed or removed.
    pub immutable: bool,
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// What the key is for.
    pub purpose: Purpose,
    /// Algorithm and protection level (default: the purpose's default algorithm, SOFTWARE).
    pub template: Option<VersionTemplate>,
    /// Automatic rotation period in seconds (ENCRYPT_DECRYPT keys only).
    pub rotation_period: Option<u64>,
    /// The first automatic rotation (default: a period from now); needs a period.
    pub next_rotation_time: Option<i64>,
    /// How long a destroyed version waits before its material is erased (seconds; default:
    /// the organisation's).
    pub destroy_scheduled_duration: Option<u64>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Create no first version.
    pub skip_initial_version: bool,
    /// May be released to attested TEEs (needs a release policy).
    pub exportable: bool,
    /// Which attested TEEs may receive the key.
    pub release_policy: Option<PolicyText>,
    /// Key Vault tags.
    pub tags: BTreeMap<String, String>,
    /// Limit the key to these operations.
    pub key_ops: Option<Vec<KeyOp>>,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChanges {
    /// A new rotation period in seconds; `Some(None)` turns automatic rotation off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<Option<u64>>,
    /// A new next rotation time (needs a period, given or kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<i64>,
    /// New labels (replacing all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// A new template for versions created from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_template: Option<VersionTemplate>,
    /// A new release policy (Administrator only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_policy: Option<PolicyText>,
    /// New Key Vault tags (replacing all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// The operations the key may be used for from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<KeyOp>>,
}

/// Checks `asked` against what a `purpose` key offers: a non-empty subset. Returns what to
/// store: `None` when it is everything the purpose offers (no limit).
pub(crate) fn allowed_ops(purpose: Purpose, asked: &[KeyOp]) -> Result<Option<Vec<KeyOp>>> {
    let offered = purpose.key_ops();
    let names = |ops: &[KeyOp]| {
        ops.iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if asked.is_empty() {
        return Err(Error::invalid(format!(
            "keyOps is empty, which would make the key unusable; name at least one of: {}",
            names(offered)
        )));
    }
    if let Some(o) = asked.iter().find(|o| !offered.contains(o)) {
        return Err(Error::invalid(format!(
            "keyOps {:?} is not an operation of a {} key; it offers {}",
            o.as_str(),
            serde_json::to_value(purpose)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            names(offered)
        )));
    }
    let mut ops = asked.to_vec();
    ops.sort_unstable();
    ops.dedup();
    Ok((ops.len() < offered.len()).then_some(ops))
}

/// Checks a release policy's text.
pub(crate) fn check_release_policy(p: &PolicyText) -> Result<()> {
    sovra_policy::skr::ReleasePolicy::parse(&p.text)
        .map(|_| ())
        .map_err(|e| Error::new(ErrorCode::PolicyInvalid, format!("releasePolicy: {e}")))
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
    fn action(self) -> Action {
        match self {
            Self::Created => Action::VersionCreate,
            Self::Rotated => Action::KeyRotate,
            Self::AutoRotated => Action::KeyAutoRotate,
        }
    }
}

/// Whether `v` may be used at `now`: not before its activation time, and, for an operation
/// that makes something new with it (encrypt, sign, MAC, release), not from its expiry on.
pub(crate) fn check_validity(v: &VersionRec, now: i64, makes_new: bool) -> Result<()> {
    if let Some(t) = v.not_before
        && now < t
    {
        return Err(Error::new(
            ErrorCode::KeyVersionNotYetValid,
            format!("{} is not valid before {}", v.name, rfc3339(t)),
        ));
    }
    if let Some(t) = v.expire_time
        && makes_new
        && now >= t
    {
        return Err(Error::new(
            ErrorCode::KeyVersionExpired,
            format!(
                "{} expired at {}: it still decrypts and verifies, but no longer encrypts, signs or is released; rotate the key",
                v.name,
                rfc3339(t)
            ),
        ));
    }
    Ok(())
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

/// Key Vault's limits on tags: at most 15, names up to 512 characters, values up to 256.
fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > 15 {
        return Err(Error::invalid("at most 15 tags"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 512 || v.chars().count() > 256 {
            return Err(Error::invalid(format!(
                "tag {k:?}: names are 1 to 512 characters, values up to 256"
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
    Ok(())
}

/// Locations, key rings, crypto keys and their versions: the key hierarchy and its lifecycle.
#[derive(Debug)]
pub struct Keys {
    base: Base,
    settings: Arc<Settings>,
    material: Arc<Material>,
    attestor: Arc<crate::services::key_attestation::KeyAttestor>,
    /// Each key with its ring and versions, for the metadata TTL.
    views: TtlCache<String, Arc<KeyView>>,
}

impl Keys {
    /// The service.
    pub fn new(
        base: Base,
        settings: Arc<Settings>,
        material: Arc<Material>,
        attestor: Arc<crate::services::key_attestation::KeyAttestor>,
    ) -> Self {
        Self {
            views: TtlCache::new(base.cfg.cache_ttl, 100_000),
            base,
            settings,
            material,
            attestor,
        }
    }

    /// A CSR for this node's HSM attestation key (administrators: it feeds the trust chain).
    pub async fn attestation_csr(&self, p: &Principal) -> Result<String> {
        self.base
            .auth
            .authorize(p, Permission::TrustManage, "*")
            .await?;
        self.attestor.csr().await
    }

    /// Replaces this HSM's key-attestation key (administrators); returns the new key's
    /// SHA-256.
    pub async fn rotate_attestation_key(&self, p: &Principal) -> Result<String> {
        self.base
            .auth
            .authorize(p, Permission::TrustManage, "*")
            .await?;
        self.attestor.rotate(p).await
    }

    /// Installs an owner root held by the operator's CA and this HSM's certificate from it
    /// (administrators: it changes what verifiers trust).
    pub async fn set_attestation_roots(
        &self,
        p: &Principal,
        owner_root: &[u8],
        attestation_certificate: &[u8],
    ) -> Result<()> {
        self.base
            .auth
            .authorize(p, Permission::TrustManage, "*")
            .await?;
        self.attestor
            .set_roots(owner_root, attestation_certificate)
            .await
    }

    /// The owner root and this HSM's attestation certificate (any signed-in principal).
    pub async fn attestation_roots(
        &self,
        _p: &Principal,
    ) -> Result<crate::services::key_attestation::AttestationRoots> {
        self.attestor.roots().await
    }
}

impl Keys {
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

    pub(super) async fn load_key_view(&self, name: &CryptoKeyName) -> Result<KeyView> {
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

    pub(super) fn key_from_view(v: &KeyView) -> Key {
        let primary = v
            .key
            .primary
            .and_then(|n| v.versions.get(&n))
            .map(|(r, _)| r.clone());
        Key {
            key: v.key.clone(),
            primary,
        }
    }
}
