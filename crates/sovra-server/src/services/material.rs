//! Key material at both protection levels, and the bounded cache of usable keys.
//!
//! * `SOFTWARE`: generated in this process, wrapped by the location's HSM key with the
//!   resource bound as AAD, unwrapped on use into an aws-lc-rs key held in the cache.
//! * `HSM`: generated inside the HSM, wrapped inside it under the location's key-wrapping key;
//!   that blob is then bound to the resource (and to the public key) by the location's HSM key
//!   like any other. On use it is unwrapped inside the HSM into a session object, which the
//!   cache holds; eviction destroys the object.
//!
//! No call into a PKCS#11 HSM runs on the async runtime, so a slow or hung HSM never stalls
//! other requests. Operations with loaded keys (the hot path) run on `hsm_sessions` dedicated
//! threads fed by a bounded queue: under load a thread takes job after job without sleeping,
//! which costs far less than a thread hand-off per call. Generation, loading and release (rare,
//! and key-pair generation can take seconds) run on the blocking pool, at most `hsm_sessions` at
//! once. Every call is bounded by `hsm_call_timeout`; a call that times out, a full queue, or an
//! HSM that is gone answer `HSM_UNAVAILABLE`, and the cached objects of a lost connection are
//! dropped.

use super::Base;
use crate::error::{Error, Result};
use crate::model::{ImportJobRec, VersionRec};
use sovra_crypto::keywrap::{self, ReleaseEnc};
use sovra_crypto::{CryptoError, KeyOps, LoadedKey};
use sovra_hsm::{Hsm, HsmKey, ImportKey, KeyAttributes};
use sovra_proto::ErrorCode;
use sovra_proto::kms::{Algorithm, ImportMethod, ProtectionLevel};
use sovra_proto::names::VersionName;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What the wrapping of a `SOFTWARE` version's material is bound to: its full resource name
/// (which includes the location, key and version number), the location, and the algorithm.
pub fn material_aad(version: &VersionName, alg: Algorithm) -> Vec<u8> {
    format!(
        "sovra/key-material/v1\n{version}\n{}\n{}",
        version.key.location,
        alg.as_str()
    )
    .into_bytes()
}

/// What an `HSM` version's stored blob is bound to: as [`material_aad`], under another label
/// (so a blob of one level is never taken for the other), plus the hash of its public key
/// (so a swapped public key is detected).
/// What a key backup is bound to.
const BACKUP_AAD: &[u8] = b"sovra/key-backup/v1";

fn hsm_aad(version: &VersionName, alg: Algorithm, public_key: Option<&[u8]>) -> Vec<u8> {
    let pk = public_key.map_or_else(
        || "-".to_owned(),
        |p| sovra_proto::hex::encode(&sovra_crypto::sha256(p)),
    );
    format!(
        "sovra/key-material/hsm/v1\n{version}\n{}\n{}\n{pk}",
        version.key.location,
        alg.as_str()
    )
    .into_bytes()
}

/// What an import job's stored wrapping key is bound to: the job, its method and its public key.
fn job_aad(job: &str, method: ImportMethod, spki: &[u8]) -> Vec<u8> {
    format!(
        "sovra/import-job/v1\n{job}\n{}\n{}",
        method.as_str(),
        sovra_proto::hex::encode(&sovra_crypto::sha256(spki))
    )
    .into_bytes()
}

/// A usable key of either level.
#[derive(Debug, Clone)]
pub struct UsableKey {
    ops: Arc<dyn KeyOps>,
    /// Set for `HSM` keys: what releases them inside the HSM.
    hsm: Option<Arc<dyn HsmKey>>,
    /// Its operations cross into a PKCS#11 HSM (so they run on a blocking thread).
    remote: bool,
}

impl UsableKey {
    /// The key's operations.
    pub fn ops(&self) -> &dyn KeyOps {
        &*self.ops
    }
}

/// Usable keys, by version resource name. Bounded: when full, an entry is evicted.
#[derive(Debug)]
pub struct MaterialCache {
    cap: usize,
    map: RwLock<HashMap<String, UsableKey>>,
}

impl MaterialCache {
    /// A cache of at most `cap` keys.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, name: &str) -> Option<UsableKey> {
        self.map.read().ok()?.get(name).cloned()
    }

    // Evicted keys are dropped after the lock is released: dropping an HSM key destroys its
    // session object, a call into the HSM.
    fn put(&self, name: String, k: UsableKey) {
        let mut victim = None;
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.cap
                && let Some(v) = m.keys().next().cloned()
            {
                victim = m.remove(&v);
            }
            m.insert(name, k);
        }
        drop(victim);
    }

    /// Drops a version's key (on destruction, or when its HSM object was lost).
    pub fn evict(&self, name: &str) {
        let gone = self.map.write().ok().and_then(|mut m| m.remove(name));
        drop(gone);
    }

    /// Drops every key loaded into the HSM (its connection was lost: the objects are gone).
    fn evict_remote(&self) {
        let mut gone = Vec::new();
        if let Ok(mut m) = self.map.write() {
            let names: Vec<String> = m
                .iter()
                .filter(|(_, k)| k.remote)
                .map(|(n, _)| n.clone())
                .collect();
            for n in names {
                gone.extend(m.remove(&n));
            }
        }
        drop(gone);
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

/// A new version's material, ready for its row.
#[derive(Debug)]
pub struct NewMaterial {
    /// The stored blob, base64.
    pub material: String,
    /// SubjectPublicKeyInfo (base64) of an `HSM`-level asymmetric key.
    pub public_key: Option<String>,
    /// What the HSM reported about an `HSM`-level key.
    pub hsm_attributes: Option<KeyAttributes>,
}

/// Key material: generation, storage wrapping, loading and the cache of usable keys.
#[derive(Debug)]
pub struct Material {
    hsm: Arc<dyn Hsm>,
    cache: MaterialCache,
    /// Whether the HSM is out of process (PKCS#11), so calls into it block.
    remote: bool,
    calls: Arc<Semaphore>,
    timeout: Duration,
    /// The threads that run operations with loaded PKCS#11 keys.
    ops: crate::work::WorkPool,
    /// The node's `locations` setting (empty: all its HSM holds).
    served: Arc<[String]>,
}

fn integrity(v: &VersionRec, what: &str) -> Error {
    Error::new(
        ErrorCode::IntegrityFailure,
        format!(
            "stored {what} of {} is not valid; the row was altered",
            v.name
        ),
    )
}

fn unavailable(m: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::HsmUnavailable,
        message: "the HSM is unavailable; retry shortly (operators: see the server log)".into(),
        retry_after: Some(1),
        internal: Some(m.into()),
    }
}

/// Maps an operation's error on a key: the HSM's condition, or the caller's mistake.
pub fn crypto_error(e: CryptoError) -> Error {
    match e {
        CryptoError::CiphertextInvalid => Error::new(ErrorCode::CiphertextInvalid, e.to_string()),
        CryptoError::BadDigest { .. } | CryptoError::TooLong { .. } => {
            Error::invalid(e.to_string())
        }
        CryptoError::Unsupported(m) => Error::new(ErrorCode::UnsupportedAlgorithm, m),
        CryptoError::HsmUnavailable(m) => unavailable(m),
        CryptoError::HsmFailure(m) => Error {
            code: ErrorCode::HsmFailure,
            message: "the HSM failed the operation".into(),
            retry_after: None,
            internal: Some(m),
        },
        other => Error::internal(other.to_string()),
    }
}

impl Material {
    /// The service.
    pub fn new(base: &Base) -> Self {
        Self {
            hsm: base.hsm.clone(),
            cache: MaterialCache::new(base.cfg.material_cache_entries),
            remote: base.hsm.kind() == "pkcs11",
            calls: Arc::new(Semaphore::new(base.cfg.hsm_sessions.max(1))),
            timeout: base.cfg.hsm_call_timeout,
            ops: crate::work::WorkPool::named(
                base.cfg.hsm_sessions.max(1),
                base.cfg.hsm_sessions.max(1) * 64,
                "hsm",
                "HSM calls",
                ErrorCode::HsmUnavailable,
            ),
            served: base.cfg.served_locations.clone().into(),
        }
    }

    /// Refuses a location this node's `locations` setting leaves out, naming it.
    fn check_served(&self, location: &str) -> Result<()> {
        super::check_served(&self.served, location)
    }

    /// Drops the usable key of a version (disabled, destroyed).
    pub fn evict(&self, version: &str) {
        self.cache.evict(version);
    }

    /// A version's stored material, wrapped again for another name of the same location (a
    /// key restored from a backup into another key ring). The material stays as it is inside:
    /// clear only within this process for `SOFTWARE` keys, and still wrapped by the HSM's own
    /// key for `HSM` keys.
    pub(crate) async fn rewrap(
        &self,
        from: &VersionName,
        to: &VersionName,
        v: &VersionRec,
    ) -> Result<String> {
        if from.key.location != to.key.location {
            return Err(Error::invalid(format!(
                "a key of location {} can only be restored into that location (its material is wrapped by that location's HSM key)",
                from.key.location
            )));
        }
        self.check_served(&to.key.location)?;
        let (blob, public) = Self::stored(v)?;
        let (hsm, from, to, alg, level) = (
            self.hsm.clone(),
            from.clone(),
            to.clone(),
            v.algorithm,
            v.protection_level,
        );
        let out = self
            .in_hsm(move || {
                let (old, new) = match level {
                    ProtectionLevel::Software => (material_aad(&from, alg), material_aad(&to, alg)),
                    ProtectionLevel::Hsm => (
                        hsm_aad(&from, alg, public.as_deref()),
                        hsm_aad(&to, alg, public.as_deref()),
                    ),
                };
                let loc = &from.key.location;
                let inner = hsm.unwrap(loc, &old, &blob)?;
                Ok(hsm.wrap(loc, &new, inner.expose())?)
            })
            .await?;
        Ok(sovra_proto::b64::encode(&out))
    }

    /// Seals `data` (a key backup) under `location`'s wrapping key: only an HSM holding that
    /// key — this deployment's, or one restored from its security domain — opens it.
    pub(crate) async fn seal_backup(&self, location: &str, data: Vec<u8>) -> Result<Vec<u8>> {
        self.check_served(location)?;
        let (hsm, loc) = (self.hsm.clone(), location.to_owned());
        self.in_hsm(move || Ok(hsm.wrap(&loc, BACKUP_AAD, &data)?))
            .await
    }

    /// Opens what [`Material::seal_backup`] sealed.
    pub(crate) async fn open_backup(
        &self,
        location: &str,
        blob: Vec<u8>,
    ) -> Result<sovra_crypto::SecretBytes> {
        self.check_served(location)?;
        let (hsm, loc) = (self.hsm.clone(), location.to_owned());
        self.in_hsm(move || {
            hsm.unwrap(&loc, BACKUP_AAD, &blob).map_err(|e| match e {
                e @ (sovra_hsm::HsmError::Unavailable(_)
                | sovra_hsm::HsmError::UnknownLocation(_)) => e.into(),
                _ => Error::invalid(
                    "the backup was not made by this deployment for this location, or was altered",
                ),
            })
        })
        .await
    }

    /// How many usable keys are held.
    pub fn loaded(&self) -> usize {
        self.cache.len()
    }

    /// Runs `f` (which calls the HSM) on a blocking thread when the HSM is out of process,
    /// bounded in concurrency and time; inline for the in-process software HSM.
    async fn in_hsm<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if !self.remote {
            return f();
        }
        self.blocking(f).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = tokio::time::timeout(self.timeout, self.calls.clone().acquire_owned())
            .await
            .map_err(|_| {
                unavailable(format!(
                    "every HSM session stayed busy for {:?}",
                    self.timeout
                ))
            })?
            .map_err(|_| Error::internal("the HSM call semaphore is closed"))?;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        });
        tokio::time::timeout(self.timeout, task)
            .await
            .map_err(|_| unavailable(format!("the HSM did not answer within {:?}", self.timeout)))?
            .map_err(|e| Error::internal(format!("HSM task: {e}")))?
    }

    /// Runs `f` with the HSM, off the runtime when the HSM is out of process.
    pub(crate) async fn hsm_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Hsm) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let hsm = self.hsm.clone();
        self.in_hsm(move || f(&*hsm)).await
    }

    /// Runs an operation with `key`: on a blocking thread when it is inside a PKCS#11 HSM or
    /// `heavy` (RSA and other asymmetric work), inline otherwise.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        key: &UsableKey,
        heavy: bool,
        f: impl FnOnce(&dyn KeyOps) -> std::result::Result<T, CryptoError> + Send + 'static,
    ) -> Result<T> {
        let ops = key.ops.clone();
        if key.remote {
            let (timeout, queued) = (self.timeout, std::time::Instant::now());
            let job = self.ops.run(move || {
                // The caller gave up on a job that waited out the timeout (a hung HSM):
                // do not send it to the HSM now.
                if queued.elapsed() >= timeout {
                    return Err(unavailable(
                        "an HSM call waited out the timeout in the queue",
                    ));
                }
                Ok(f(&*ops))
            });
            let out = tokio::time::timeout(timeout, job)
                .await
                .map_err(|_| unavailable(format!("the HSM did not answer within {timeout:?}")))
                .and_then(|r| r)
                .and_then(|r| r)?;
            // Only the key's own report that its connection is gone drops the loaded objects
            // (a slow HSM keeps them: reloading would only add work).
            if matches!(out, Err(CryptoError::HsmUnavailable(_))) {
                self.cache.evict_remote();
            }
            return out.map_err(crypto_error);
        }
        if heavy {
            return tokio::task::spawn_blocking(move || f(&*ops))
                .await
                .map_err(|e| Error::internal(format!("key operation task: {e}")))?
                .map_err(crypto_error);
        }
        f(&*ops).map_err(crypto_error)
    }

    /// Generates material for `version` at `level` and wraps it for storage.
    pub(crate) async fn generate(
        &self,
        version: &VersionName,
        alg: Algorithm,
        level: ProtectionLevel,
    ) -> Result<NewMaterial> {
        self.check_served(&version.key.location)?;
        let hsm = self.hsm.clone();
        let version = version.clone();
        match level {
            ProtectionLevel::Software => {
                let material = tokio::task::spawn_blocking(move || sovra_crypto::generate(alg))
                    .await
                    .map_err(|e| Error::internal(format!("key generation task: {e}")))?
                    .map_err(|e| Error::internal(e.to_string()))?;
                let blob = self
                    .in_hsm(move || {
                        Ok(hsm.wrap(
                            &version.key.location,
                            &material_aad(&version, alg),
                            material.expose(),
                        )?)
                    })
                    .await?;
                Ok(NewMaterial {
                    material: sovra_proto::b64::encode(&blob),
                    public_key: None,
                    hsm_attributes: None,
                })
            }
            ProtectionLevel::Hsm => {
                // Key-pair generation is slow even in process: always off the runtime.
                self.blocking(move || {
                    let loc = &version.key.location;
                    let g = hsm.generate_key(loc, alg)?;
                    let aad = hsm_aad(&version, alg, g.public_key.as_deref());
                    let blob = hsm.wrap(loc, &aad, &g.wrapped)?;
                    Ok(NewMaterial {
                        material: sovra_proto::b64::encode(&blob),
                        public_key: g.public_key.as_deref().map(sovra_proto::b64::encode),
                        hsm_attributes: Some(g.attributes),
                    })
                })
                .await
            }
        }
    }

    /// Generates an import job's wrapping key inside the HSM and binds its stored form to the
    /// job: (stored blob base64, SPKI DER, what the HSM reported).
    pub(crate) async fn generate_import_key(
        &self,
        job: &str,
        location: &str,
        method: ImportMethod,
    ) -> Result<(String, Vec<u8>, KeyAttributes)> {
        self.check_served(location)?;
        let (hsm, job, loc) = (self.hsm.clone(), job.to_owned(), location.to_owned());
        self.blocking(move || {
            let g = hsm.generate_import_key(&loc, method.bits())?;
            let spki = g
                .public_key
                .ok_or_else(|| Error::internal("an import key without its public key"))?;
            let blob = hsm.wrap(&loc, &job_aad(&job, method, &spki), &g.wrapped)?;
            Ok((sovra_proto::b64::encode(&blob), spki, g.attributes))
        })
        .await
    }

    /// Opens key material wrapped to `job`'s key as a new version `name` of `alg` at `level`:
    /// inside the HSM for `HSM` (the clear material never leaves it), in process for
    /// `SOFTWARE`. Either way it is checked to be a key of `alg`.
    pub(crate) async fn import(
        &self,
        name: &VersionName,
        alg: Algorithm,
        level: ProtectionLevel,
        job: &ImportJobRec,
        blob: Vec<u8>,
        public_key: Option<Vec<u8>>,
    ) -> Result<NewMaterial> {
        self.check_served(&name.key.location)?;
        let (hsm, name, method) = (self.hsm.clone(), name.clone(), job.method);
        let stored = sovra_proto::b64::decode(&job.wrapped).map_err(|_| {
            Error::new(
                ErrorCode::IntegrityFailure,
                "a stored import job was altered",
            )
        })?;
        let spki = sovra_proto::b64::decode(&job.public_key).map_err(|_| {
            Error::new(
                ErrorCode::IntegrityFailure,
                "a stored import job was altered",
            )
        })?;
        let job_name = job.name.clone();
        self.blocking(move || {
            let loc = &name.key.location;
            let inner = hsm.unwrap(loc, &job_aad(&job_name, method, &spki), &stored)?;
            let import = ImportKey {
                wrapped: inner.expose(),
                method,
            };
            match level {
                ProtectionLevel::Hsm => {
                    let g = hsm.import_key(loc, &import, &blob, alg, public_key.as_deref())?;
                    let aad = hsm_aad(&name, alg, g.public_key.as_deref());
                    let blob = hsm.wrap(loc, &aad, &g.wrapped)?;
                    Ok(NewMaterial {
                        material: sovra_proto::b64::encode(&blob),
                        public_key: g.public_key.as_deref().map(sovra_proto::b64::encode),
                        hsm_attributes: Some(g.attributes),
                    })
                }
                ProtectionLevel::Software => {
                    let m = hsm.import_material(loc, &import, &blob)?;
                    sovra_hsm::check_import(alg, m.expose(), public_key.as_deref())?;
                    let blob = hsm.wrap(loc, &material_aad(&name, alg), m.expose())?;
                    Ok(NewMaterial {
                        material: sovra_proto::b64::encode(&blob),
                        public_key: None,
                        hsm_attributes: None,
                    })
                }
            }
        })
        .await
    }

    fn stored(v: &VersionRec) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let wrapped = v.material.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::KeyVersionDestroyed,
                format!("{} is destroyed; its material no longer exists", v.name),
            )
        })?;
        let blob = sovra_proto::b64::decode(wrapped).map_err(|_| integrity(v, "material"))?;
        let public = v
            .public_key
            .as_deref()
            .map(sovra_proto::b64::decode)
            .transpose()
            .map_err(|_| integrity(v, "public key"))?;
        Ok((blob, public))
    }

    /// The usable key of a version (its state is checked by the caller).
    pub(crate) async fn usable(&self, name: &VersionName, v: &VersionRec) -> Result<UsableKey> {
        self.check_served(&name.key.location)?;
        if let Some(k) = self.cache.get(&v.name) {
            return Ok(k);
        }
        let (blob, public) = Self::stored(v)?;
        let (hsm, name, alg, vname) = (self.hsm.clone(), name.clone(), v.algorithm, v.name.clone());
        let k = match v.protection_level {
            ProtectionLevel::Software => {
                let secret = self
                    .in_hsm(move || {
                        let aad = material_aad(&name, alg);
                        Ok(hsm.unwrap(&name.key.location, &aad, &blob)?)
                    })
                    .await
                    .inspect_err(|e| log_unwrap(&vname, e))?;
                let loaded = LoadedKey::load(alg, secret.expose())
                    .map_err(|e| integrity_load(&vname, &e.to_string()))?;
                UsableKey {
                    ops: Arc::new(loaded),
                    hsm: None,
                    remote: false,
                }
            }
            ProtectionLevel::Hsm => {
                let remote = self.remote;
                let key = self
                    .in_hsm(move || {
                        let loc = &name.key.location;
                        let aad = hsm_aad(&name, alg, public.as_deref());
                        let inner = hsm.unwrap(loc, &aad, &blob)?;
                        Ok(hsm.load_key(loc, alg, inner.expose(), public.as_deref())?)
                    })
                    .await
                    .inspect_err(|e| log_unwrap(&vname, e))?;
                UsableKey {
                    ops: key.clone(),
                    hsm: Some(key),
                    remote,
                }
            }
        };
        self.cache.put(v.name.clone(), k.clone());
        Ok(k)
    }

    /// Wraps a version's material for the holder of the RSA key `spki` (release to an attested
    /// TEE). `HSM` keys are wrapped inside the HSM.
    pub(crate) async fn wrap_for(
        &self,
        name: &VersionName,
        v: &VersionRec,
        enc: ReleaseEnc,
        spki: Vec<u8>,
    ) -> Result<Vec<u8>> {
        self.check_served(&name.key.location)?;
        match v.protection_level {
            ProtectionLevel::Software => {
                let (blob, _) = Self::stored(v)?;
                let (hsm, name, alg, vname) =
                    (self.hsm.clone(), name.clone(), v.algorithm, v.name.clone());
                let material = self
                    .in_hsm(move || {
                        let aad = material_aad(&name, alg);
                        Ok(hsm.unwrap(&name.key.location, &aad, &blob)?)
                    })
                    .await
                    .inspect_err(|e| log_unwrap(&vname, e))?;
                keywrap::wrap(enc, &spki, material.expose()).map_err(release_error)
            }
            ProtectionLevel::Hsm => {
                let key = self.usable(name, v).await?;
                let hsm_key = key
                    .hsm
                    .clone()
                    .ok_or_else(|| Error::internal("an HSM-level key without its HSM object"))?;
                let wrap = move || hsm_key.wrap_for(enc, &spki).map_err(release_error);
                if key.remote {
                    self.blocking(wrap).await
                } else {
                    wrap()
                }
            }
        }
    }
}

/// A release wrap's error: a recipient key that cannot be wrapped to is the token's fault.
fn release_error(e: CryptoError) -> Error {
    match e {
        CryptoError::Invalid(m) => Error::new(
            ErrorCode::ReleaseNoTargetKey,
            format!("cannot wrap to the target key: {m}"),
        ),
        other => crypto_error(other),
    }
}

fn log_unwrap(version: &str, e: &Error) {
    if e.code == ErrorCode::IntegrityFailure {
        tracing::error!(version, error = ?e.internal, "key material failed to unwrap");
    }
}

fn integrity_load(version: &str, e: &str) -> Error {
    Error::new(
        ErrorCode::IntegrityFailure,
        format!("stored material of {version} does not load: {e}"),
    )
}
