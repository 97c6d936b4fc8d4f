//! Recoverable deletion of keys (Key Vault's soft delete). Deleting moves the key's record to
//! `deleted_keys`: every operation then finds no key, and its versions stay untouched. Recover
//! moves it back. Purge erases the versions (material and rows) and frees the name; it happens
//! when the retention ends — the key's destroy-scheduled duration after the deletion — and not
//! before, on request or otherwise: deleting a key never destroys it sooner than scheduling
//! its versions' destruction would.

use super::*;
use crate::model::DeletedKeyRec;
use crate::services::audit::{AuditEvent, EventKind};

impl Keys {
    /// Deletes a key recoverably. It ends in the destruction of every version, so it takes the
    /// right to destroy versions as well as to manage keys.
    pub async fn delete_crypto_key(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
    ) -> Result<DeletedKeyRec> {
        for perm in [Permission::KeyManage, Permission::VersionManage] {
            self.base.auth.authorize(p, perm, &name.to_string()).await?;
        }
        let key_str = name.to_string();
        let d = with_retries(|| async {
            let kr = Records::of(&*self.base.store)
                .get(model::CRYPTO_KEYS, &key_str)
                .await?
                .ok_or_else(|| not_found(ErrorCode::KeyNotFound, "crypto key", &key_str))?;
            let key: CryptoKeyRec = kr.value.clone();
            let now = self.base.now();
            let retention = i64::try_from(key.destroy_scheduled_duration).unwrap_or(i64::MAX);
            let d = DeletedKeyRec {
                purge_time: now.saturating_add(retention),
                delete_time: now,
                principal: p.name.to_string(),
                key,
            };
            let mut b = WriteBatch::new();
            b.delete(
                model::CRYPTO_KEYS.collection(),
                key_str.clone(),
                sovra_store::Expect::Rev(kr.rev),
            );
            b.create(model::DELETED_KEYS, &d)?;
            b.audit(
                self.base
                    .admin_event(p, Action::KeyDelete, key_str.clone())
                    .detail(serde_json::json!({"purgeTime": rfc3339(d.purge_time)}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(d)
        })
        .await?;
        self.invalidate_key(name);
        Ok(d)
    }

    async fn deleted_rec(&self, name: &CryptoKeyName) -> Result<(DeletedKeyRec, u64)> {
        let key_str = name.to_string();
        let r = Records::of(&*self.base.store)
            .get(model::DELETED_KEYS, &key_str)
            .await?
            .ok_or_else(|| {
                Error::new(ErrorCode::KeyNotFound, format!("no deleted key {key_str}"))
            })?;
        Ok((r.value.clone(), r.rev))
    }

    /// Whether a key of this name is deleted but not yet purged.
    pub(crate) async fn is_deleted(&self, name: &CryptoKeyName) -> Result<bool> {
        Ok(Records::of(&*self.base.store)
            .get(model::DELETED_KEYS, &name.to_string())
            .await?
            .is_some())
    }

    /// A deleted key, with the version that was its primary.
    pub async fn get_deleted_key(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
    ) -> Result<(DeletedKeyRec, Option<VersionRec>)> {
        self.base
            .auth
            .authorize(p, Permission::KeyRead, &name.to_string())
            .await?;
        let (d, _) = self.deleted_rec(name).await?;
        let primary = match d.key.primary {
            Some(n) => Some(self.version_rec(&name.version(n)).await?.0),
            None => None,
        };
        Ok((d, primary))
    }

    /// The deleted keys of a key ring.
    pub async fn list_deleted_keys(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        page: &Page,
    ) -> Result<Listed<DeletedKeyRec>> {
        let ring_name = ring.to_string();
        let whole = self.may_list(p, Permission::KeyRead, &ring_name).await?;
        let limit = page.limit()?;
        let recs = Records::of(&*self.base.store)
            .list(
                model::DELETED_KEYS,
                &ring_name,
                page.after()?.as_deref(),
                limit,
            )
            .await?;
        let next = next_token(&recs, limit);
        Ok(Listed {
            items: recs
                .into_iter()
                .map(|r| r.value)
                .filter(|d| whole || p.can(Permission::KeyRead, &d.key.name))
                .collect(),
            next_page_token: next,
        })
    }

    /// Recovers a deleted key as it was.
    pub async fn recover_deleted_key(&self, p: &Principal, name: &CryptoKeyName) -> Result<Key> {
        self.base
            .auth
            .authorize(p, Permission::KeyManage, &name.to_string())
            .await?;
        let key_str = name.to_string();
        with_retries(|| async {
            let (d, rev) = self.deleted_rec(name).await?;
            let mut b = WriteBatch::new();
            b.delete(
                model::DELETED_KEYS.collection(),
                key_str.clone(),
                sovra_store::Expect::Rev(rev),
            );
            b.create(model::CRYPTO_KEYS, &d.key)?;
            b.audit(
                self.base
                    .admin_event(p, Action::KeyRecover, key_str.clone())
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(())
        })
        .await?;
        self.invalidate_key(name);
        let v = self.load_key_view(name).await?;
        Ok(Self::key_from_view(&v))
    }

    /// Purges a deleted key whose retention has ended (sooner is refused: `PURGE_PROTECTED`).
    pub async fn purge_deleted_key(&self, p: &Principal, name: &CryptoKeyName) -> Result<()> {
        self.base
            .auth
            .authorize(p, Permission::VersionManage, &name.to_string())
            .await?;
        let (d, rev) = self.deleted_rec(name).await?;
        let now = self.base.now();
        if d.purge_time > now {
            return Err(Error::new(
                ErrorCode::PurgeProtected,
                format!(
                    "{name} can be purged from {} (its destroy-scheduled duration after deletion); until then it can only be recovered",
                    rfc3339(d.purge_time)
                ),
            ));
        }
        self.purge(Some(p), name, &d, rev).await
    }

    /// Erases a deleted key's versions (material and rows) and its record, in one batch.
    async fn purge(
        &self,
        p: Option<&Principal>,
        name: &CryptoKeyName,
        d: &DeletedKeyRec,
        rev: u64,
    ) -> Result<()> {
        let key_str = name.to_string();
        let now = self.base.now();
        let mut b = WriteBatch::new();
        let mut after: Option<String> = None;
        let mut erased = Vec::new();
        loop {
            let page = Records::of(&*self.base.store)
                .list(model::VERSIONS, &key_str, after.as_deref(), 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                b.delete(
                    model::VERSIONS.collection(),
                    r.name.clone(),
                    sovra_store::Expect::Rev(r.rev),
                );
                erased.push(r.value.name.clone());
            }
        }
        b.delete(
            model::DELETED_KEYS.collection(),
            key_str.clone(),
            sovra_store::Expect::Rev(rev),
        );
        let detail =
            serde_json::json!({"versions": erased.len(), "deleteTime": rfc3339(d.delete_time)});
        let ev = match p {
            Some(p) => self
                .base
                .admin_event(p, Action::KeyPurge, key_str.clone())
                .detail(detail),
            None => AuditEvent::new(now, EventKind::System, Action::KeyPurged)
                .resource(key_str.clone())
                .detail(detail),
        };
        b.audit(ev.body());
        self.base.store.commit(b).await?;
        for v in &erased {
            self.material.evict(v);
        }
        self.invalidate_key(name);
        tracing::info!(key = %key_str, versions = erased.len(), "deleted key purged");
        Ok(())
    }

    /// Purges every deleted key whose retention has ended; returns how many.
    pub async fn purge_due(&self) -> Result<usize> {
        let now = self.base.now();
        let mut done = 0;
        for r in Records::of(&*self.base.store)
            .due(model::DELETED_KEYS, now, 100)
            .await?
        {
            let d: DeletedKeyRec = r.value.clone();
            if d.purge_time > now {
                continue;
            }
            let Ok(sovra_proto::names::ResourceName::CryptoKey(name)) =
                d.key.name.parse::<sovra_proto::names::ResourceName>()
            else {
                continue;
            };
            match self.purge(None, &name, &d, r.rev).await {
                Ok(()) => done += 1,
                // Recovered or purged meanwhile (by a request, or another node).
                Err(e) if e.code == ErrorCode::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}
