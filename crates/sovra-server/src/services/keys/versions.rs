//! Key versions: creation and rotation, the primary version, and the lifecycle (enable, disable, destroy, restore).

use super::*;

impl Keys {
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
            let m = self
                .material
                .generate(&vname, key.algorithm, key.protection_level)
                .await?;
            let v = VersionRec {
                name: vname.to_string(),
                version: n,
                state: VersionState::Enabled,
                algorithm: key.algorithm,
                protection_level: key.protection_level,
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
                None => crate::services::audit::AuditEvent::new(
                    now,
                    crate::services::audit::EventKind::System,
                    cause.action(),
                )
                .resource(v.name.clone()),
            };
            b.audit(
                ev.detail(serde_json::json!({"primary": key.primary, "protectionLevel": v.protection_level, "hsmAttributes": v.hsm_attributes}))
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
    pub async fn rotate(&self, p: &Principal, name: &CryptoKeyName) -> Result<Key> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        let (key, v) = self
            .add_version(Some(p), name, true, NewVersion::Rotated)
            .await?;
        Ok(Key {
            key,
            primary: Some(v),
        })
    }

    /// `POST /v1/{cryptoKey}/cryptoKeyVersions`: a new version (primary only if there is none).
    pub async fn create_version(&self, p: &Principal, name: &CryptoKeyName) -> Result<VersionRec> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        let (_, v) = self
            .add_version(Some(p), name, false, NewVersion::Created)
            .await?;
        Ok(v)
    }

    /// `POST /v1/{cryptoKey}:updatePrimaryVersion`.
    pub async fn update_primary(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        version_id: &str,
    ) -> Result<Key> {
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
                    .admin_event(p, Action::KeyUpdatePrimary, key.name.clone())
                    .detail(serde_json::json!({"primary": n}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(KeyView { key, ..v })
        })
        .await?;
        self.invalidate_key(name);
        Ok(Self::key_from_view(&view))
    }

    // ----- versions ------------------------------------------------------------------------

    pub(super) async fn version_rec(&self, name: &VersionName) -> Result<(VersionRec, u64)> {
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

    pub(super) async fn ensure_key_exists(&self, name: &CryptoKeyName) -> Result<()> {
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
    pub async fn get_version(&self, p: &Principal, name: &VersionName) -> Result<VersionRec> {
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &name.key.to_string())
            .await?;
        self.ensure_key_exists(&name.key).await?;
        Ok(self.version_rec(name).await?.0)
    }

    /// `GET /v1/{cryptoKey}/cryptoKeyVersions`.
    pub async fn list_versions(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        page: &Page,
    ) -> Result<Listed<VersionRec>> {
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
        Ok(Listed {
            items: recs.into_iter().map(|r| r.value).collect(),
            next_page_token: next,
        })
    }

    /// Applies a state change to a version under CAS, with an audit record.
    pub(super) async fn change_version<F>(
        &self,
        p: &Principal,
        name: &VersionName,
        action: Action,
        f: F,
    ) -> Result<VersionRec>
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
                    .detail(serde_json::json!({"from": before, "to": v.state, "destroyTime": v.destroy_time.map(rfc3339), "notBefore": v.not_before.map(rfc3339), "expireTime": v.expire_time.map(rfc3339)}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(v)
        })
        .await?;
        self.invalidate_key(&name.key);
        Ok(v)
    }

    /// `PATCH /v1/{version}` with `state` ENABLED or DISABLED.
    pub async fn set_version_state(
        &self,
        p: &Principal,
        name: &VersionName,
        state: VersionState,
    ) -> Result<VersionRec> {
        if !matches!(state, VersionState::Enabled | VersionState::Disabled) {
            return Err(Error::invalid(
                "state can only be set to ENABLED or DISABLED; use :destroy and :restore for destruction",
            ));
        }
        let action = if state == VersionState::Enabled {
            Action::VersionEnable
        } else {
            Action::VersionDisable
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

    /// Sets a version's activation time and expiry (`Some(None)` clears one; `None` leaves it).
    pub async fn set_version_validity(
        &self,
        p: &Principal,
        name: &VersionName,
        not_before: Option<Option<i64>>,
        expire_time: Option<Option<i64>>,
    ) -> Result<VersionRec> {
        self.change_version(p, name, Action::VersionValidity, |v, _, _, _| {
            if let Some(t) = not_before {
                v.not_before = t;
            }
            if let Some(t) = expire_time {
                v.expire_time = t;
            }
            if let (Some(a), Some(b)) = (v.not_before, v.expire_time)
                && b <= a
            {
                return Err(Error::invalid(
                    "the expiry must come after the activation time",
                ));
            }
            Ok(())
        })
        .await
    }

    /// `POST /v1/{version}:destroy`: schedules destruction after the key's destroyScheduledDuration.
    pub async fn destroy_version(&self, p: &Principal, name: &VersionName) -> Result<VersionRec> {
        self.change_version(p, name, Action::VersionDestroy, |v, now, settings, key| match v.state {
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
    pub async fn restore_version(&self, p: &Principal, name: &VersionName) -> Result<VersionRec> {
        self.change_version(p, name, Action::VersionRestore, |v, _, _, _| {
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
