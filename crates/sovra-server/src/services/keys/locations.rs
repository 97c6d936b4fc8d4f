//! Locations: the regions whose wrapping keys this deployment's HSM holds.

use super::*;

impl Keys {
    /// Creates the default location at first start if the store has none.
    pub async fn ensure_default_location(&self) -> Result<()> {
        let id = self.base.cfg.default_location.clone();
        LocationName::new(&id)?;
        if Records::of(&*self.base.store)
            .get(model::LOCATIONS, &id)
            .await?
            .is_some()
        {
            if !self.base.hsm.locations()?.contains(&id) {
                return Err(Error::internal(format!(
                    "the HSM holds no wrapping key for the configured location {id:?}; is this the HSM this database was created with?"
                )));
            }
            return Ok(());
        }
        self.base.hsm.create_location(&id)?;
        let rec = LocationRec {
            id: id.clone(),
            hsm: self.base.hsm.kind().to_owned(),
            create_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        b.create(model::LOCATIONS, &rec)?;
        b.audit(
            crate::services::audit::AuditEvent::new(
                self.base.now(),
                crate::services::audit::EventKind::System,
                Action::LocationCreate,
            )
            .resource(format!("locations/{id}"))
            .body(),
        );
        match self.base.store.commit(b).await {
            Ok(_) | Err(sovra_store::StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn location_rec(&self, loc: &LocationName) -> Result<LocationRec> {
        let r = Records::of(&*self.base.store)
            .get(model::LOCATIONS, &loc.location)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::LocationNotFound,
                    format!("{loc} does not exist; list locations with 'sovra locations list'"),
                )
            })?;
        Ok(r.value)
    }

    /// `POST /v1/locations` (creates the location's wrapping key in the HSM).
    pub async fn create_location(&self, p: &Principal, id: &str) -> Result<LocationRec> {
        self.base
            .auth
            .authorize(p, Permission::LocationManage, "*")
            .await?;
        let name = LocationName::new(id)?;
        self.base.check_served(id)?;
        if Records::of(&*self.base.store)
            .get(model::LOCATIONS, id)
            .await?
            .is_some()
        {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists"),
            ));
        }
        self.base.hsm.create_location(id)?;
        let rec = LocationRec {
            id: id.to_owned(),
            hsm: self.base.hsm.kind().to_owned(),
            create_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        b.create(model::LOCATIONS, &rec)?;
        b.audit(
            self.base
                .admin_event(p, Action::LocationCreate, name.to_string())
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

    /// `GET /v1/locations`: the locations the principal can read.
    pub async fn list_locations(&self, p: &Principal) -> Result<Vec<LocationRec>> {
        let recs = Records::of(&*self.base.store)
            .scan(model::LOCATIONS, None, 10_000)
            .await?;
        let mut out = Vec::new();
        for r in recs {
            let l: LocationRec = r.value.clone();
            if p.can(Permission::LocationRead, &format!("locations/{}", l.id)) {
                out.push(l);
            }
        }
        if out.is_empty() {
            self.base
                .auth
                .authorize(p, Permission::LocationRead, "locations")
                .await?;
        }
        Ok(out)
    }

    /// `GET /v1/locations/{loc}`.
    pub async fn get_location(&self, p: &Principal, loc: &LocationName) -> Result<LocationRec> {
        self.base
            .auth
            .authorize(p, Permission::LocationRead, &loc.to_string())
            .await?;
        self.location_rec(loc).await
    }

    // ----- key rings -----------------------------------------------------------------------
}
