//! Key rings: the containers of keys within a location.

use super::*;

impl Keys {
    pub(super) async fn ring_rec(&self, name: &KeyRingName) -> Result<(KeyRingRec, u64)> {
        let r = Records::of(&*self.base.store)
            .get(model::KEY_RINGS, &name.to_string())
            .await?
            .ok_or_else(|| not_found(ErrorCode::KeyRingNotFound, "key ring", &name.to_string()))?;
        Ok((r.value.clone(), r.rev))
    }

    /// `POST /v1/locations/{loc}/keyRings?keyRingId=`.
    pub async fn create_key_ring(
        &self,
        p: &Principal,
        loc: &LocationName,
        id: &str,
        audit_data_access: bool,
    ) -> Result<KeyRingRec> {
        let name = loc.key_ring(id)?;
        self.base
            .auth
            .authorize(p, Permission::KeyRingManage, &name.to_string())
            .await?;
        self.location_rec(loc).await?;
        let rec = KeyRingRec {
            name: name.to_string(),
            create_time: self.base.now(),
            audit_data_access,
        };
        let mut b = WriteBatch::new();
        b.create(model::KEY_RINGS, &rec)?;
        b.audit(
            self.base
                .admin_event(p, Action::KeyRingCreate, rec.name.clone())
                .detail(serde_json::json!({"auditDataAccess": rec.audit_data_access}))
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => {
                Error::new(ErrorCode::AlreadyExists, format!("{name} already exists"))
            }
            e => e.into(),
        })?;
        Ok(rec)
    }

    /// `GET /v1/{keyRing}`.
    pub async fn get_key_ring(&self, p: &Principal, name: &KeyRingName) -> Result<KeyRingRec> {
        self.base
            .auth
            .authorize(p, Permission::KeyRingRead, &name.to_string())
            .await?;
        Ok(self.ring_rec(name).await?.0)
    }

    /// `GET /v1/locations/{loc}/keyRings`.
    pub async fn list_key_rings(
        &self,
        p: &Principal,
        loc: &LocationName,
        page: &Page,
    ) -> Result<Listed<KeyRingRec>> {
        let loc_name = loc.to_string();
        let whole = self.may_list(p, Permission::KeyRingRead, &loc_name).await?;
        self.location_rec(loc).await?;
        let limit = page.limit()?;
        let recs = Records::of(&*self.base.store)
            .list(model::KEY_RINGS, &loc_name, page.after()?.as_deref(), limit)
            .await?;
        let next = next_token(&recs, limit);
        let mut rings = Vec::new();
        for r in &recs {
            let k: KeyRingRec = r.value.clone();
            if whole || p.can(Permission::KeyRingRead, &k.name) {
                rings.push(k);
            }
        }
        Ok(Listed {
            items: rings,
            next_page_token: next,
        })
    }

    /// `PATCH /v1/{keyRing}`.
    pub async fn update_key_ring(
        &self,
        p: &Principal,
        name: &KeyRingName,
        audit_data_access: Option<bool>,
    ) -> Result<KeyRingRec> {
        self.base
            .auth
            .authorize(p, Permission::KeyRingManage, &name.to_string())
            .await?;
        let out = with_retries(|| async {
            let (mut rec, rev) = self.ring_rec(name).await?;
            if let Some(a) = audit_data_access {
                rec.audit_data_access = a;
            }
            let mut b = WriteBatch::new();
            b.update(model::KEY_RINGS, &rec, rev)?;
            b.audit(
                self.base
                    .admin_event(p, Action::KeyRingUpdate, rec.name.clone())
                    .detail(serde_json::json!({"auditDataAccess": rec.audit_data_access}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(rec)
        })
        .await?;
        // Cached key views embed their ring (its audit setting): drop them all.
        let prefix = format!("{name}/");
        self.views.remove_where(|k, _| k.starts_with(&prefix));
        Ok(out)
    }

    // ----- keys ----------------------------------------------------------------------------
}
