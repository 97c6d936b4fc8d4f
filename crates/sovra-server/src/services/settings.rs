//! Organisation settings: constraints that apply to every key.

use super::Base;
use super::auth::Principal;
use super::authz::Permission;
use crate::cache::TtlCell;
use crate::error::{Error, Result};
use crate::model::{self, SettingsRec};
use crate::records::{Records, Writes};
use sovra_proto::admin::{Settings as SettingsWire, UpdateSettingsRequest};
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

/// Wire form of settings.
pub fn to_wire(s: &SettingsRec) -> SettingsWire {
    SettingsWire {
        default_location: s.default_location.clone(),
        min_destroy_scheduled_duration: duration::format(s.min_destroy_scheduled_duration),
        default_destroy_scheduled_duration: duration::format(s.default_destroy_scheduled_duration),
        require_disable_before_destroy: s.require_disable_before_destroy,
    }
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
    pub async fn get_settings(&self, p: &Principal) -> Result<SettingsWire> {
        self.base
            .auth
            .authorize(p, Permission::SettingsRead, "*")
            .await?;
        Ok(to_wire(&self.settings_rec().await?.0))
    }

    /// `PATCH /v1/settings`.
    pub async fn update_settings(
        &self,
        p: &Principal,
        req: UpdateSettingsRequest,
    ) -> Result<SettingsWire> {
        self.base
            .auth
            .authorize(p, Permission::SettingsManage, "*")
            .await?;
        self.cache.invalidate();
        let out = super::with_retries(|| async {
            self.cache.invalidate();
            let (mut s, rev) = self.settings_rec().await?;
            let parse = |v: &str, field: &str| duration::parse(v).map_err(|e| Error::invalid(format!("{field}: {e}")));
            if let Some(v) = &req.min_destroy_scheduled_duration {
                s.min_destroy_scheduled_duration = parse(v, "minDestroyScheduledDuration")?;
            }
            if let Some(v) = &req.default_destroy_scheduled_duration {
                s.default_destroy_scheduled_duration = parse(v, "defaultDestroyScheduledDuration")?;
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
            b.audit(self.base.admin_event(p, "settings.update", "settings").detail(serde_json::to_value(to_wire(&s)).unwrap_or_default()).body());
            self.base.store.commit(b).await?;
            Ok(s)
        })
        .await?;
        self.cache.invalidate();
        Ok(to_wire(&out))
    }
}
