//! Secure import (BYOK), after Cloud KMS: an import job holds an RSA wrapping key generated
//! inside the HSM; a client wraps its key to it (`sovra keys import` does so from a PEM, DER
//! or raw file), and the material becomes a new version, opened inside the HSM for `HSM` keys.
//! Jobs are not used up: a failed import leaves the job as it was, and the same material can
//! be imported again (as a new version) until the job expires.

use super::*;
use crate::model::ImportJobRec;

/// Import jobs last 3 days by default, at most 30.
const DEFAULT_TTL: u64 = 3 * 86_400;
const MAX_TTL: u64 = 30 * 86_400;
/// Largest wrapped key accepted (an RSA-4096 PKCS#8 wrapped for RSA-4096 is about 3 KB).
const MAX_WRAPPED: usize = 16 * 1024;

/// An import job to create.
#[derive(Debug, Clone)]
pub struct NewImportJob {
    /// How material will be wrapped.
    pub method: ImportMethod,
    /// Level of versions imported with it (default: the deployment's).
    pub protection_level: Option<ProtectionLevel>,
    /// Lifetime in seconds (default 3 days).
    pub ttl: Option<u64>,
}

/// Key material to import as a new version.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// The import job's resource name.
    pub job: String,
    /// The material's algorithm.
    pub algorithm: Algorithm,
    /// The wrapped material.
    pub wrapped: Vec<u8>,
    /// An EC key's public key (SPKI DER).
    pub public_key: Option<Vec<u8>>,
    /// Re-import into this DESTROYED, formerly imported version of the key.
    pub into: Option<VersionName>,
}

/// The fixed nonce and AAD of an AES key's check value: an empty plaintext sealed once under
/// them (random nonces of real encryptions meet this one with probability 2^-96).
const KCV_NONCE: [u8; 12] = [0xff; 12];
const KCV_AAD: &[u8] = b"sovra/key-check-value/v1";

impl Keys {
    /// `POST /v1/{keyRing}/importJobs?importJobId=`.
    pub async fn create_import_job(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        id: &str,
        req: NewImportJob,
    ) -> Result<ImportJobRec> {
        sovra_proto::names::check_id("importJobId", id)?;
        let name = format!("{ring}/importJobs/{id}");
        self.base
            .auth
            .authorize(p, Permission::KeyImport, &ring.to_string())
            .await?;
        self.ring_rec(ring).await?;
        let ttl = req.ttl.unwrap_or(DEFAULT_TTL);
        if !(3600..=MAX_TTL).contains(&ttl) {
            return Err(Error::invalid(
                "ttl must be between 1h and 30d (an import job's key should not live long)",
            ));
        }
        if Records::of(&*self.base.store)
            .get(model::IMPORT_JOBS, &name)
            .await?
            .is_some()
        {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists"),
            ));
        }
        let level = req
            .protection_level
            .unwrap_or(self.base.cfg.default_protection_level);
        let (wrapped, spki, attributes) = self
            .material
            .generate_import_key(&name, &ring.location, req.method)
            .await?;
        let now = self.base.now();
        let mut job = ImportJobRec {
            name: name.clone(),
            ring: ring.to_string(),
            method: req.method,
            protection_level: level,
            create_time: now,
            expire_time: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            wrapped,
            public_key: sovra_proto::b64::encode(&spki),
            attestation: String::new(),
        };
        job.attestation = self.attestor.job_statement(&job, attributes).await?;
        let mut b = WriteBatch::new();
        b.create(model::IMPORT_JOBS, &job)?;
        b.audit(
            self.base
                .admin_event(p, Action::ImportJobCreate, name.clone())
                .detail(serde_json::json!({"importMethod": req.method, "protectionLevel": level, "expireTime": rfc3339(job.expire_time)}))
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => {
                Error::new(ErrorCode::AlreadyExists, format!("{name} already exists"))
            }
            e => e.into(),
        })?;
        Ok(job)
    }

    async fn import_job(&self, name: &str) -> Result<ImportJobRec> {
        Ok(Records::of(&*self.base.store)
            .get(model::IMPORT_JOBS, name)
            .await?
            .ok_or_else(|| not_found(ErrorCode::ImportJobNotFound, "import job", name))?
            .value)
    }

    /// `GET /v1/{keyRing}/importJobs/{id}`.
    pub async fn get_import_job(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        id: &str,
    ) -> Result<ImportJobRec> {
        sovra_proto::names::check_id("importJobId", id)?;
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &ring.to_string())
            .await?;
        self.import_job(&format!("{ring}/importJobs/{id}")).await
    }

    /// `GET /v1/{keyRing}/importJobs`.
    pub async fn list_import_jobs(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        page: &Page,
    ) -> Result<Listed<ImportJobRec>> {
        let ring_name = ring.to_string();
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &ring_name)
            .await?;
        self.ring_rec(ring).await?;
        let limit = page.limit()?;
        let recs = Records::of(&*self.base.store)
            .list(
                model::IMPORT_JOBS,
                &ring_name,
                page.after()?.as_deref(),
                limit,
            )
            .await?;
        let next = next_token(&recs, limit);
        Ok(Listed {
            items: recs.into_iter().map(|r| r.value).collect(),
            next_page_token: next,
        })
    }

    /// `POST /v1/{cryptoKey}/cryptoKeyVersions:import`: the material becomes a new version
    /// (primary if the key has none).
    pub async fn import_version(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        req: NewImport,
    ) -> Result<VersionRec> {
        let key_str = name.to_string();
        self.base
            .auth
            .authorize(p, Permission::KeyImport, &key_str)
            .await?;
        if req.wrapped.len() > MAX_WRAPPED {
            return Err(Error::invalid(format!(
                "wrappedKey is {} bytes; the limit is {MAX_WRAPPED}",
                req.wrapped.len()
            )));
        }
        let ring = format!("locations/{}/keyRings/{}", name.location, name.key_ring);
        if !req.job.starts_with(&format!("{ring}/importJobs/")) {
            return Err(Error::invalid(format!(
                "importJob must be a job of the key's ring ({ring}/importJobs/ID)"
            )));
        }
        let job = self.import_job(&req.job).await?;
        if self.base.now() >= job.expire_time {
            return Err(Error::new(
                ErrorCode::ImportJobExpired,
                format!(
                    "{} expired at {}; create a new import job",
                    job.name,
                    rfc3339(job.expire_time)
                ),
            ));
        }
        let job_spki = sovra_proto::b64::decode(&job.public_key).map_err(|_| {
            Error::new(
                ErrorCode::IntegrityFailure,
                "a stored import job was altered",
            )
        })?;
        let v = with_retries(|| async {
            let kr = Records::of(&*self.base.store)
                .get(model::CRYPTO_KEYS, &key_str)
                .await?
                .ok_or_else(|| not_found(ErrorCode::KeyNotFound, "crypto key", &key_str))?;
            let mut key: CryptoKeyRec = kr.value.clone();
            if req.algorithm.purpose() != key.purpose {
                return Err(Error::new(
                    ErrorCode::WrongPurpose,
                    format!(
                        "{} is a {:?} algorithm; {} is a {:?} key",
                        req.algorithm.as_str(),
                        req.algorithm.purpose(),
                        key.name,
                        key.purpose
                    ),
                ));
            }
            if job.protection_level != key.protection_level {
                return Err(Error::invalid(format!(
                    "{} imports {:?}-level versions; {} is {:?}: use an import job of the key's level",
                    job.name, job.protection_level, key.name, key.protection_level
                )));
            }
            if let Some(into) = &req.into {
                return self
                    .reimport(p, name, into, &req, &job, &job_spki)
                    .await;
            }
            let n = key
                .version_count
                .checked_add(1)
                .ok_or_else(|| Error::invalid("the key has too many versions"))?;
            let vname = name.version(n);
            let m = self
                .material
                .import(
                    &vname,
                    req.algorithm,
                    job.protection_level,
                    &job,
                    req.wrapped.clone(),
                    req.public_key.clone(),
                )
                .await?;
            let v = VersionRec {
                name: vname.to_string(),
                version: n,
                state: VersionState::Enabled,
                algorithm: req.algorithm,
                protection_level: job.protection_level,
                create_time: self.base.now(),
                destroy_time: None,
                destroy_event_time: None,
                material: Some(m.material),
                public_key: m.public_key,
                hsm_attributes: m.hsm_attributes,
                attestation: None,
                key_check: None,
                not_before: None,
                expire_time: None,
            };
            let v = VersionRec {
                attestation: Some(self.attestor.import_statement(&v, &job_spki).await?),
                key_check: Some(self.key_check(&vname, &v).await?),
                ..v
            };
            key.version_count = n;
            if key.primary.is_none() {
                key.primary = Some(n);
            }
            let mut b = WriteBatch::new();
            b.update(model::CRYPTO_KEYS, &key, kr.rev)?;
            b.create(model::VERSIONS, &v)?;
            b.audit(
                self.base
                    .admin_event(p, Action::VersionImport, v.name.clone())
                    .detail(serde_json::json!({"importJob": job.name, "importMethod": job.method, "algorithm": v.algorithm, "protectionLevel": v.protection_level}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(v)
        })
        .await?;
        self.invalidate_key(name);
        Ok(v)
    }

    /// A fingerprint of a version's material, computed with the key (inside the HSM for `HSM`
    /// keys): AES, the tag of an empty plaintext under a fixed nonce; AES key wrap, the wrap of
    /// 16 zero bytes; HMAC, the MAC of a fixed string; asymmetric keys, the SHA-256 of the
    /// public key.
    async fn key_check(&self, vname: &VersionName, v: &VersionRec) -> Result<String> {
        let key = self.material.usable(vname, v).await?;
        let purpose = v.algorithm.purpose();
        let check = self
            .material
            .call(&key, false, move |ops| match purpose {
                Purpose::EncryptDecrypt => ops.gcm_seal(&KCV_NONCE, KCV_AAD, &[]),
                Purpose::Mac => ops.mac(KCV_AAD),
                Purpose::KeyWrap => ops.aes_key_wrap(false, &[0; 16]),
                Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt => ops
                    .public_key_der()
                    .map(|d| sovra_crypto::sha256(&d).to_vec()),
            })
            .await?;
        Ok(sovra_proto::hex::encode(&check))
    }

    /// Imports material again into a DESTROYED version that was imported, if it is the
    /// material the version held (its key check value): the version is ENABLED again.
    async fn reimport(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        into: &VersionName,
        req: &NewImport,
        job: &ImportJobRec,
        job_spki: &[u8],
    ) -> Result<VersionRec> {
        if &into.key != name {
            return Err(Error::invalid(format!(
                "cryptoKeyVersion {into} is not a version of {name}"
            )));
        }
        let vr = Records::of(&*self.base.store)
            .get(
                model::VERSIONS,
                &version_key(&name.to_string(), into.version),
            )
            .await?
            .ok_or_else(|| {
                not_found(
                    ErrorCode::KeyVersionNotFound,
                    "key version",
                    &into.to_string(),
                )
            })?;
        let old: VersionRec = vr.value.clone();
        let Some(expected) = old.key_check.clone() else {
            return Err(Error::new(
                ErrorCode::InvalidStateTransition,
                format!("{into} was not imported: only imported versions are imported again"),
            ));
        };
        if old.state != VersionState::Destroyed {
            return Err(Error::new(
                ErrorCode::InvalidStateTransition,
                format!(
                    "{into} is {:?}: only a DESTROYED version is imported again",
                    old.state
                ),
            ));
        }
        if req.algorithm != old.algorithm || job.protection_level != old.protection_level {
            return Err(Error::new(
                ErrorCode::ImportInvalid,
                format!(
                    "{into} held a {} key at level {:?}; this import is {} at {:?}",
                    old.algorithm.as_str(),
                    old.protection_level,
                    req.algorithm.as_str(),
                    job.protection_level
                ),
            ));
        }
        let m = self
            .material
            .import(
                into,
                req.algorithm,
                job.protection_level,
                job,
                req.wrapped.clone(),
                req.public_key.clone(),
            )
            .await?;
        let v = VersionRec {
            state: VersionState::Enabled,
            destroy_time: None,
            destroy_event_time: None,
            material: Some(m.material),
            public_key: m.public_key,
            hsm_attributes: m.hsm_attributes,
            ..old
        };
        let check = self.key_check(into, &v).await;
        if check.as_ref().ok() != Some(&expected) {
            self.material.evict(&v.name);
            check?;
            return Err(Error::new(
                ErrorCode::ImportInvalid,
                format!(
                    "the material is not the one {into} held: a destroyed version is imported again only with its own key"
                ),
            ));
        }
        let v = VersionRec {
            attestation: Some(self.attestor.import_statement(&v, job_spki).await?),
            ..v
        };
        let mut b = WriteBatch::new();
        b.update(model::VERSIONS, &v, vr.rev)?;
        b.audit(
            self.base
                .admin_event(p, Action::VersionImport, v.name.clone())
                .detail(serde_json::json!({"importJob": job.name, "importMethod": job.method, "algorithm": v.algorithm, "protectionLevel": v.protection_level, "reimport": true}))
                .body(),
        );
        if let Err(e) = self.base.store.commit(b).await {
            self.material.evict(&v.name);
            return Err(e.into());
        }
        self.invalidate_key(name);
        Ok(v)
    }
}

/// How long each of the Key Vault API's own import jobs is used before the next one is made,
/// and how long it lives (so one in use never expires under a request).
const CLEAR_JOB_PERIOD: i64 = 20 * 86_400;
const CLEAR_JOB_TTL: u64 = 30 * 86_400;

impl Keys {
    /// The import job through which material that arrived in clear (a Key Vault JWK import)
    /// enters: made by the service in the ring, one per protection level and 20-day period.
    async fn clear_import_job(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        level: ProtectionLevel,
    ) -> Result<ImportJobRec> {
        let period = self.base.now().div_euclid(CLEAR_JOB_PERIOD);
        let tag = match level {
            ProtectionLevel::Software => "software",
            ProtectionLevel::Hsm => "hsm",
        };
        let id = format!("keyvault-{tag}-{period}");
        let name = format!("{ring}/importJobs/{id}");
        if let Some(r) = Records::of(&*self.base.store)
            .get(model::IMPORT_JOBS, &name)
            .await?
        {
            return Ok(r.value.clone());
        }
        let req = NewImportJob {
            method: ImportMethod::RsaOaep3072Sha256Aes256,
            protection_level: Some(level),
            ttl: Some(CLEAR_JOB_TTL),
        };
        match self.create_import_job(p, ring, &id, req).await {
            Err(e) if e.code == ErrorCode::AlreadyExists => self.import_job(&name).await,
            r => r,
        }
    }

    /// Imports key material given in clear (PKCS#8, or 32 raw bytes for AES) as the new
    /// current version of `name`, creating the key (with `new`) if it does not exist. The
    /// material goes the way every import goes — wrapped to an import job's key and opened
    /// inside the HSM for `HSM` keys — so it is checked, attested and audited the same.
    pub async fn import_clear(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        new: NewKey,
        material: &[u8],
        public_key: Option<Vec<u8>>,
    ) -> Result<Key> {
        let template = new
            .template
            .ok_or_else(|| Error::internal("import_clear without a template"))?;
        let alg = template.algorithm;
        let level = template
            .protection_level
            .unwrap_or(self.base.cfg.default_protection_level);
        let ring = name.key_ring_name();
        let existing = match self.get_crypto_key(p, name).await {
            Ok(k) => Some(k),
            Err(e) if e.code == ErrorCode::KeyNotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(k) = &existing
            && (k.key.algorithm != alg || k.key.protection_level != level)
        {
            return Err(Error::invalid(format!(
                "{name} is {} at protection level {:?}; an imported version must be the same",
                k.key.algorithm.as_str(),
                k.key.protection_level
            )));
        }
        // The material is checked before anything is written, so a key that is refused
        // leaves no empty key behind (the import path checks it again, inside the HSM).
        sovra_hsm::check_import(alg, material, public_key.as_deref())?;
        let job = self.clear_import_job(p, &ring, level).await?;
        let spki = sovra_proto::b64::decode(&job.public_key).map_err(|_| {
            Error::new(
                ErrorCode::IntegrityFailure,
                "a stored import job was altered",
            )
        })?;
        let wrapped = sovra_crypto::keywrap::wrap(
            sovra_crypto::keywrap::ReleaseEnc::RsaAesKeyWrap256,
            &spki,
            material,
        )
        .map_err(|e| Error::internal(format!("wrapping to the import key: {e}")))?;
        self.import_wrapped(p, name, new, &job, &[alg], wrapped, public_key, existing)
            .await
    }

    /// Imports material wrapped to the import job `job` (a Key Vault BYOK blob, or what
    /// [`Keys::import_clear`] wrapped) as the new current version of `name`, as the first of
    /// `candidates` it is a key of (a BYOK blob does not say an RSA key's size), creating the
    /// key if `existing` is `None` and removing it again if nothing could be imported.
    #[allow(clippy::too_many_arguments)]
    pub async fn import_wrapped(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        new: NewKey,
        job: &ImportJobRec,
        candidates: &[Algorithm],
        wrapped: Vec<u8>,
        public_key: Option<Vec<u8>>,
        existing: Option<Key>,
    ) -> Result<Key> {
        let first = *candidates
            .first()
            .ok_or_else(|| Error::internal("import without a candidate algorithm"))?;
        if let Some(k) = &existing
            && (k.key.purpose != first.purpose() || k.key.protection_level != job.protection_level)
        {
            return Err(Error::invalid(format!(
                "{name} is a {:?} key at protection level {:?}; the imported key must be the same",
                k.key.purpose, k.key.protection_level
            )));
        }
        let created = existing.is_none();
        if created {
            let new = NewKey {
                purpose: first.purpose(),
                template: Some(VersionTemplate {
                    algorithm: first,
                    protection_level: Some(job.protection_level),
                }),
                skip_initial_version: true,
                ..new
            };
            self.create_crypto_key(p, &name.key_ring_name(), &name.crypto_key, new)
                .await?;
        }
        let mut result = Err(Error::invalid("nothing to import"));
        for alg in candidates {
            result = self
                .import_version(
                    p,
                    name,
                    NewImport {
                        job: job.name.clone(),
                        algorithm: *alg,
                        wrapped: wrapped.clone(),
                        public_key: public_key.clone(),
                        into: None,
                    },
                )
                .await;
            match &result {
                Err(e) if e.code == ErrorCode::ImportInvalid => continue,
                _ => break,
            }
        }
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                if created {
                    self.discard_empty_key(p, name).await?;
                }
                return Err(e);
            }
        };
        if created && v.algorithm != first {
            let changes = KeyChanges {
                version_template: Some(VersionTemplate {
                    algorithm: v.algorithm,
                    protection_level: Some(job.protection_level),
                }),
                ..KeyChanges::default()
            };
            self.update_crypto_key(p, name, changes).await?;
        }
        let key = self.get_crypto_key(p, name).await?;
        if key.key.primary == Some(v.version) {
            return Ok(key);
        }
        self.update_primary(p, name, &v.version.to_string()).await
    }

    /// Removes a key that has never had a version (one created for an import that was then
    /// refused), audited.
    async fn discard_empty_key(&self, p: &Principal, name: &CryptoKeyName) -> Result<()> {
        let key_str = name.to_string();
        let Some(r) = Records::of(&*self.base.store)
            .get(model::CRYPTO_KEYS, &key_str)
            .await?
        else {
            return Ok(());
        };
        if r.value.version_count != 0 {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        b.delete(
            model::CRYPTO_KEYS.collection(),
            key_str.clone(),
            sovra_store::Expect::Rev(r.rev),
        );
        b.audit(self.base.admin_event(p, Action::KeyDiscard, key_str).body());
        self.base.store.commit(b).await?;
        self.invalidate_key(name);
        Ok(())
    }
}
