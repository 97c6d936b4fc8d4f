//! Crypto keys: creation, reading, listing, and updates (labels, rotation, release policy).

use super::*;

impl Keys {
    /// `POST /v1/{keyRing}/cryptoKeys?cryptoKeyId=`.
    pub async fn create_crypto_key(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        id: &str,
        req: NewKey,
    ) -> Result<Key> {
        let name = ring.crypto_key(id)?;
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        self.ring_rec(ring).await?;
        if self.is_deleted(&name).await? {
            return Err(Error::new(
                ErrorCode::KeyDeleted,
                format!(
                    "{name} is deleted but recoverable: recover it, or use another name until it is purged"
                ),
            ));
        }
        let template = VersionTemplate {
            algorithm: req
                .template
                .map_or(Algorithm::default_for(req.purpose), |t| t.algorithm),
            protection_level: Some(
                req.template
                    .and_then(|t| t.protection_level)
                    .unwrap_or(self.base.cfg.default_protection_level),
            ),
        };
        check_template(req.purpose, &template)?;
        let level = template.protection_level.unwrap_or_default();
        check_labels(&req.labels)?;
        check_tags(&req.tags)?;
        let (settings, _) = self.settings.settings_rec().await?;
        let destroy_dur = req
            .destroy_scheduled_duration
            .unwrap_or(settings.default_destroy_scheduled_duration);
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
            req.rotation_period,
            req.next_rotation_time,
            now,
        )?;
        if let Some(rp) = &req.release_policy {
            check_release_policy(rp)?;
        }
        let key_ops = match &req.key_ops {
            Some(ops) => allowed_ops(req.purpose, ops)?,
            None => None,
        };
        let mut key = CryptoKeyRec {
            name: name.to_string(),
            purpose: req.purpose,
            create_time: now,
            algorithm: template.algorithm,
            protection_level: level,
            rotation_period,
            next_rotation_time,
            destroy_scheduled_duration: destroy_dur,
            labels: req.labels,
            primary: None,
            version_count: 0,
            exportable: req.exportable,
            release_policy_immutable: req.release_policy.as_ref().is_some_and(|p| p.immutable),
            release_policy: req.release_policy.map(|p| p.text),
            tags: req.tags,
            key_ops,
        };
        if key.exportable && key.release_policy.is_none() {
            return Err(Error::invalid(
                "an exportable key needs a releasePolicy saying which attested TEEs may receive it",
            ));
        }
        let mut first = None;
        if !req.skip_initial_version {
            let vname = name.version(1);
            let m = self
                .material
                .generate(&vname, template.algorithm, level)
                .await?;
            let v = VersionRec {
                name: vname.to_string(),
                version: 1,
                state: VersionState::Enabled,
                algorithm: template.algorithm,
                protection_level: level,
                create_time: now,
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
                attestation: Some(self.attestor.statement(&v).await?),
                ..v
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
            self.base.admin_event(p, Action::KeyCreate, key.name.clone())
                .detail(serde_json::json!({"purpose": key.purpose, "keyOps": key.key_ops, "algorithm": key.algorithm, "protectionLevel": key.protection_level, "hsmAttributes": first.as_ref().and_then(|v| v.hsm_attributes), "rotationPeriod": key.rotation_period, "destroyScheduledDuration": key.destroy_scheduled_duration}))
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => {
                Error::new(ErrorCode::AlreadyExists, format!("{name} already exists"))
            }
            e => e.into(),
        })?;
        self.invalidate_key(&name);
        Ok(Key {
            key,
            primary: first,
        })
    }

    pub(super) fn rotation_fields(
        &self,
        purpose: Purpose,
        period: Option<u64>,
        next: Option<i64>,
        now: i64,
    ) -> Result<(Option<u64>, Option<i64>)> {
        let Some(secs) = period else {
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
        if secs < MIN_ROTATION {
            return Err(Error::invalid(format!(
                "rotationPeriod must be at least {}",
                duration::format(MIN_ROTATION)
            )));
        }
        let next = match next {
            Some(t) if t < now => return Err(Error::invalid("nextRotationTime is in the past")),
            Some(t) => t,
            None => now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        };
        Ok((Some(secs), Some(next)))
    }

    /// `GET /v1/{cryptoKey}`.
    pub async fn get_crypto_key(&self, p: &Principal, name: &CryptoKeyName) -> Result<Key> {
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &name.to_string())
            .await?;
        self.invalidate_key(name);
        Ok(Self::key_from_view(&*self.key_view(name).await?))
    }

    /// `GET /v1/{keyRing}/cryptoKeys`.
    pub async fn list_crypto_keys(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        page: &Page,
    ) -> Result<Listed<Key>> {
        let ring_name = ring.to_string();
        let whole = self.may_list(p, Permission::KeyRead, &ring_name).await?;
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
            keys.push(Key { key: k, primary });
        }
        Ok(Listed {
            items: keys,
            next_page_token: next,
        })
    }

    /// `PATCH /v1/{cryptoKey}`.
    pub async fn update_crypto_key(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        req: KeyChanges,
    ) -> Result<Key> {
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
        if let Some(t) = &req.tags {
            check_tags(t)?;
        }
        if let Some(rp) = &req.release_policy {
            check_release_policy(rp)?;
        }
        let view = with_retries(|| async {
            let v = self.load_key_view(name).await?;
            let mut key = v.key.clone();
            let now = self.base.now();
            let mut policy_change = None;
            if let Some(t) = &req.version_template {
                check_template(key.purpose, t)?;
                key.algorithm = t.algorithm;
                if let Some(level) = t.protection_level {
                    key.protection_level = level;
                }
            }
            if let Some(l) = &req.labels {
                key.labels = l.clone();
            }
            if let Some(t) = &req.tags {
                key.tags = t.clone();
            }
            if let Some(ops) = &req.key_ops {
                key.key_ops = allowed_ops(key.purpose, ops)?;
            }
            if let Some(rp) = &req.release_policy {
                if key.release_policy_immutable {
                    return Err(Error::new(
                        ErrorCode::ReleasePolicyImmutable,
                        "the key's release policy is immutable and can never be changed",
                    ));
                }
                let text = rp.text.clone();
                policy_change = Some(serde_json::json!({
                    "oldPolicySha256": key.release_policy.as_deref().map(|t| sovra_proto::hex::encode(&sovra_crypto::sha256(t.as_bytes()))),
                    "newPolicySha256": sovra_proto::hex::encode(&sovra_crypto::sha256(text.as_bytes())),
                    "immutable": rp.immutable,
                }));
                key.release_policy = Some(text);
                key.release_policy_immutable = rp.immutable;
            }
            if req.rotation_period.is_some() || req.next_rotation_time.is_some() {
                let period = req.rotation_period.unwrap_or(key.rotation_period);
                let (rp, nrt) =
                    self.rotation_fields(key.purpose, period, req.next_rotation_time, now)?;
                key.rotation_period = rp;
                key.next_rotation_time = nrt;
            }
            let mut b = WriteBatch::new();
            b.update(model::CRYPTO_KEYS, &key, v.key_rev)?;
            b.audit(
                self.base.admin_event(p, Action::KeyUpdate, key.name.clone())
                    .detail(serde_json::to_value(&req).unwrap_or_default())
                    .body(),
            );
            if let Some(change) = policy_change {
                b.audit(
                    self.base.admin_event(p, Action::KeyReleasePolicySet, key.name.clone())
                        .detail(change)
                        .body(),
                );
            }
            self.base.store.commit(b).await?;
            Ok(KeyView { key, ..v })
        })
        .await?;
        self.invalidate_key(name);
        Ok(Self::key_from_view(&view))
    }
}
