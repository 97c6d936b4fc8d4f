//! Scheduled work on keys: destroying versions whose DESTROY_SCHEDULED time has come, and
//! rotating keys whose next rotation time has come. State lives in the store (due times), so
//! the work happens on time across restarts, and is safe with several nodes (each change is a
//! CAS write).

use super::{Keys, NewVersion};
use crate::error::Result;
use crate::model::{self, CryptoKeyRec, VersionRec};
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use crate::services::audit::{AuditEvent, EventKind};
use sovra_proto::kms::VersionState;
use sovra_proto::names::ResourceName;
use sovra_store::WriteBatch;

impl Keys {
    /// Destroys every version due for destruction; returns how many.
    pub async fn destroy_due(&self) -> Result<usize> {
        let now = self.base.now();
        let mut done = 0;
        for r in Records::of(&*self.base.store)
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
                AuditEvent::new(now, EventKind::System, Action::VersionDestroyed)
                    .resource(v.name.clone())
                    .body(),
            );
            match self.base.store.commit(b).await {
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
        let now = self.base.now();
        let mut done = 0;
        for r in Records::of(&*self.base.store)
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
            // Another region's node rotates it (its HSM holds that location's key).
            if !self.base.serves(&name.location) {
                continue;
            }
            match self
                .add_version(None, &name, true, NewVersion::AutoRotated)
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
}
