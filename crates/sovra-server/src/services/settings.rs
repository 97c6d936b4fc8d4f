//! Organisation settings: constraints that apply to every key.

use super::Base;
use super::auth::Principal;
use super::authz::Permission;
use crate::cache::TtlCell;
use crate::error::{Error, Result};
use crate::model::{self, SettingsRec};
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use sovra_proto::duration;
use sovra_store::{Expect, WriteBatch};

/// Organisation settings (destruction delays, disable-before-destroy).
#[derive(Debug)]
pub struct Settings {
    base: Base,
    /// The settings and their revision, for the metadata TTL.
    cache: TtlCell<(SettingsRec, u64)>,
}

impl Settings {
    /// The service.
    pub fn new(base: Base) -> Self {
        let cache = TtlCell::new(base.cfg.cache_ttl);
        Self { base, cache }
    }
}

/// Changes to the settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsChanges {
    /// The shortest destruction delay a key may have (seconds).
    pub min_destroy_scheduled_duration: Option<u64>,
    /// The destruction delay of keys that do not choose one (seconds).
    pub default_destroy_scheduled_duration: Option<u64>,
    /// Whether a version must be DISABLED before it can be destroyed.
    pub require_disable_before_destroy: Option<bool>,
}

impl Settings {
    /// The current settings and their revision (defaults if never stored).
    pub(crate) async fn settings_rec(&self) -> Result<(SettingsRec, u64)> {
        if let Some(cur) = self.cache.get() {
            return Ok(cur);
        }
        let (s, rev) = match Records::of(&*self.base.store)
            .get(model::SETTINGS, model::SETTINGS_NAME)
            .await?
        {
            Some(r) => (r.value.clone(), r.rev),
            None => (SettingsRec::defaults(&self.base.cfg.default_location), 0),
        };
        self.cache.put((s.clone(), rev));
        Ok((s, rev))
    }

    /// `GET /v1/settings`.
    pub async fn get_settings(&self, p: &Principal) -> Result<SettingsRec> {
        self.base
            .auth
            .authorize(p, Permission::SettingsRead, "*")
            .await?;
        Ok(self.settings_rec().await?.0)
    }

    /// `PATCH /v1/settings`.
    pub async fn update_settings(
        &self,
        p: &Principal,
        req: SettingsChanges,
    ) -> Result<SettingsRec> {
        self.base
            .auth
            .authorize(p, Permission::SettingsManage, "*")
            .await?;
        self.cache.invalidate();
        let out = super::with_retries(|| async {
            self.cache.invalidate();
            let (mut s, rev) = self.settings_rec().await?;
            if let Some(v) = req.min_destroy_scheduled_duration {
                s.min_destroy_scheduled_duration = v;
            }
            if let Some(v) = req.default_destroy_scheduled_duration {
                s.default_destroy_scheduled_duration = v;
            }
            if let Some(v) = req.require_disable_before_destroy {
                s.require_disable_before_destroy = v;
            }
            if s.default_destroy_scheduled_duration < s.min_destroy_scheduled_duration {
                return Err(Error::invalid(format!(
                    "defaultDestroyScheduledDuration ({}) is below minDestroyScheduledDuration ({}); raise it",
                    duration::format(s.default_destroy_scheduled_duration),
                    duration::format(s.min_destroy_scheduled_duration)
                )));
            }
            let mut b = WriteBatch::new();
            let expect = if rev == 0 { Expect::Absent } else { Expect::Rev(rev) };
            b.write(model::SETTINGS, &s, expect)?;
            let detail = serde_json::json!({
                "defaultLocation": s.default_location,
                "minDestroyScheduledDuration": duration::format(s.min_destroy_scheduled_duration),
                "defaultDestroyScheduledDuration": duration::format(s.default_destroy_scheduled_duration),
                "requireDisableBeforeDestroy": s.require_disable_before_destroy,
            });
            b.audit(self.base.admin_event(p, Action::SettingsUpdate, "settings").detail(detail).body());
            self.base.store.commit(b).await?;
            Ok(s)
        })
        .await?;
        self.cache.invalidate();
        Ok(out)
    }
}
