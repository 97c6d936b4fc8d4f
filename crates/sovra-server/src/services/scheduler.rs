//! Scheduled work: destroying versions whose DESTROY_SCHEDULED time has come, rotating keys
//! whose next rotation time has come, and refreshing fetched Intel collateral before it expires. State lives in the store (due times), so the work happens
//! on time across restarts, and is safe with several nodes (each change is a CAS write).

use super::Sovra;
use super::audit::{AuditEvent, EventKind};
use crate::error::Result;
use crate::model::{self, CryptoKeyRec, VersionRec};
use crate::records::{Records, Writes};
use sovra_proto::kms::VersionState;
use sovra_proto::names::ResourceName;
use sovra_store::{Expect, WriteBatch};
use std::sync::Arc;
use std::time::Duration;

impl Sovra {
    /// Destroys every version due for destruction; returns how many.
    pub async fn destroy_due(&self) -> Result<usize> {
        let now = self.now();
        let mut done = 0;
        for r in Records::of(&*self.store)
            .due(model::VERSIONS, now, 500)
            .await?
        {
            let mut v: VersionRec = r.value.clone();
            if v.state != VersionState::DestroyScheduled || v.destroy_time.is_none_or(|t| t > now) {
                continue;
            }
            v.state = VersionState::Destroyed;
            v.material = None;
            v.destroy_event_time = Some(now);
            let mut b = WriteBatch::new();
            b.update(model::VERSIONS, &v, r.rev)?;
            b.audit(
                AuditEvent::new(now, EventKind::System, "cryptoKeyVersions.destroyed")
                    .resource(v.name.clone())
                    .body(),
            );
            match self.store.commit(b).await {
                Ok(_) => {
                    done += 1;
                    self.material.evict(&v.name);
                    if let Ok(ResourceName::Version(n)) = v.name.parse::<ResourceName>() {
                        self.invalidate_key(&n.key);
                    }
                    tracing::info!(version = %v.name, "key version destroyed");
                }
                Err(sovra_store::StoreError::Conflict { .. }) => {} // changed meanwhile (restored, or another node did it)
                Err(e) => return Err(e.into()),
            }
        }
        Ok(done)
    }

    /// Rotates every key whose next rotation time has come; returns how many.
    pub async fn rotate_due(&self) -> Result<usize> {
        let now = self.now();
        let mut done = 0;
        for r in Records::of(&*self.store)
            .due(model::CRYPTO_KEYS, now, 500)
            .await?
        {
            let k: CryptoKeyRec = r.value.clone();
            if k.next_rotation_time.is_none_or(|t| t > now) {
                continue;
            }
            let Ok(ResourceName::CryptoKey(name)) = k.name.parse::<ResourceName>() else {
                continue;
            };
            match self
                .add_version(None, &name, true, super::keys::NewVersion::AutoRotated)
                .await
            {
                Ok((_, v)) => {
                    done += 1;
                    tracing::info!(version = %v.name, "key rotated on schedule");
                }
                Err(e) => {
                    tracing::warn!(key = %k.name, error = %e, "scheduled rotation failed; will retry")
                }
            }
        }
        Ok(done)
    }

    /// Deletes expired release nonces and TPM challenges; returns how many.
    pub async fn expire_release_nonces(&self) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for c in [
            model::RELEASE_NONCES.collection(),
            model::TPM_CHALLENGES.collection(),
        ] {
            for r in self.store.due(c, now, 1000).await? {
                let mut b = WriteBatch::new();
                b.delete(c, r.name.clone(), Expect::Rev(r.rev));
                // One consumed or removed meanwhile by another node is fine.
                if self.store.commit(b).await.is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Runs the scheduler until `shutdown` resolves.
    pub async fn run_scheduler(
        self: Arc<Self>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.destroy_due().await {
                tracing::warn!(error = %e, "scheduled destruction pass failed");
            }
            if let Err(e) = self.rotate_due().await {
                tracing::warn!(error = %e, "scheduled rotation pass failed");
            }
            if let Err(e) = self.expire_release_nonces().await {
                tracing::warn!(error = %e, "release nonce cleanup failed");
            }
            if let Err(e) = self.refresh_intel_collateral().await {
                tracing::warn!(error = %e, "Intel collateral refresh pass failed");
            }
            self.audit.flush_denials().await;
            if let Err(e) = self.audit.advance_anchor(self.now()).await {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {
                    self.audit.flush_denials().await;
                    if let Err(e) = self.audit.advance_anchor(self.now()).await {
                        tracing::warn!(error = %e, "audit checkpoint failed");
                    }
                    return;
                }
            }
        }
    }
}
