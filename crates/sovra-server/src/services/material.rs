//! Key material: generation, wrapping under the location's HSM key with the resource bound as
//! AAD, unwrapping, and the bounded in-memory cache of unwrapped keys.

use super::Base;
use crate::error::{Error, Result};
use crate::model::VersionRec;
use sovra_crypto::LoadedKey;
use sovra_hsm::Hsm;
use sovra_proto::ErrorCode;
use sovra_proto::kms::Algorithm;
use sovra_proto::names::VersionName;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What the wrapping of a version's material is bound to: its full resource name (which
/// includes the location, key and version number), the location, and the algorithm.
pub fn material_aad(version: &VersionName, alg: Algorithm) -> Vec<u8> {
    format!(
        "sovra/key-material/v1\n{version}\n{}\n{}",
        version.key.location,
        alg.as_str()
    )
    .into_bytes()
}

/// Unwrapped keys, by version resource name. Bounded: when full, an entry is evicted; evicted
/// keys are dropped, and aws-lc-rs cleanses their memory.
#[derive(Debug)]
pub struct MaterialCache {
    cap: usize,
    map: RwLock<HashMap<String, Arc<LoadedKey>>>,
}

impl MaterialCache {
    /// A cache of at most `cap` keys.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, name: &str) -> Option<Arc<LoadedKey>> {
        self.map.read().ok()?.get(name).cloned()
    }

    fn put(&self, name: String, k: Arc<LoadedKey>) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.cap
                && let Some(victim) = m.keys().next().cloned()
            {
                m.remove(&victim);
            }
            m.insert(name, k);
        }
    }

    /// Drops a version's key (on destruction).
    pub fn evict(&self, name: &str) {
        if let Ok(mut m) = self.map.write() {
            m.remove(name);
        }
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Key material: generated and wrapped by the HSM, unwrapped on use and kept in a bounded
/// cache of loaded keys.
#[derive(Debug)]
pub struct Material {
    hsm: Arc<dyn Hsm>,
    cache: MaterialCache,
}

impl Material {
    /// The service.
    pub fn new(base: &Base) -> Self {
        Self {
            hsm: base.hsm.clone(),
            cache: MaterialCache::new(base.cfg.material_cache_entries),
        }
    }

    /// Drops the loaded key of a version (disabled, destroyed).
    pub fn evict(&self, version: &str) {
        self.cache.evict(version);
    }

    /// How many loaded keys are held.
    pub fn loaded(&self) -> usize {
        self.cache.len()
    }

    /// Generates material for `version` and wraps it under its location's HSM key.
    pub(crate) async fn generate_wrapped(
        &self,
        version: &VersionName,
        alg: Algorithm,
    ) -> Result<String> {
        let material = tokio::task::spawn_blocking(move || sovra_crypto::generate(alg))
            .await
            .map_err(|e| Error::internal(format!("key generation task: {e}")))?
            .map_err(|e| Error::internal(e.to_string()))?;
        let blob = self.hsm.wrap(
            &version.key.location,
            &material_aad(version, alg),
            material.expose(),
        )?;
        Ok(sovra_proto::b64::encode(&blob))
    }

    /// The loaded key of an ENABLED-or-not version (state is checked by the caller).
    pub(crate) fn loaded_key(&self, name: &VersionName, v: &VersionRec) -> Result<Arc<LoadedKey>> {
        let key_str = v.name.as_str();
        if let Some(k) = self.cache.get(key_str) {
            return Ok(k);
        }
        let secret = self.raw_material(name, v)?;
        let k = Arc::new(LoadedKey::load(v.algorithm, secret.expose()).map_err(|e| {
            Error::new(
                ErrorCode::IntegrityFailure,
                format!("stored material of {} does not load: {e}", v.name),
            )
        })?);
        self.cache.put(v.name.clone(), k.clone());
        Ok(k)
    }

    /// The unwrapped material of a version (not cached): for release to an attested TEE.
    pub(crate) fn raw_material(
        &self,
        name: &VersionName,
        v: &VersionRec,
    ) -> Result<sovra_crypto::SecretBytes> {
        let wrapped = v.material.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::KeyVersionDestroyed,
                format!("{} is destroyed; its material no longer exists", v.name),
            )
        })?;
        let blob = sovra_proto::b64::decode(wrapped).map_err(|_| {
            Error::new(
                ErrorCode::IntegrityFailure,
                format!(
                    "stored material of {} is not base64; the row was altered",
                    v.name
                ),
            )
        })?;
        let secret = self
            .hsm
            .unwrap(&name.key.location, &material_aad(name, v.algorithm), &blob)
            .map_err(|e| {
                tracing::error!(version = %v.name, error = %e, "key material failed to unwrap");
                Error::from(e)
            })?;
        Ok(secret)
    }
}
