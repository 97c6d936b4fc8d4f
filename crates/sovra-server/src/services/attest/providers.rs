//! Attestation providers (tenants): each has its own policies and its own issuer URL. The
//! provider `default` always exists and serves the MAA-compatible root endpoints.

use super::super::auth::Principal;
use super::super::authz::Permission;
use super::Attestation;
use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use serde::{Deserialize, Serialize};
use sovra_proto::ErrorCode;
use sovra_store::WriteBatch;

/// The provider that always exists.
pub const DEFAULT_PROVIDER: &str = "default";

/// A stored provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderRec {
    /// ID.
    pub name: String,
    /// Creation time.
    pub create_time: i64,
}

impl crate::model::Record for ProviderRec {
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A provider as the service uses it.
#[derive(Debug, Clone)]
pub struct ProviderView {
    /// ID.
    pub name: String,
    /// Token issuer.
    pub issuer: String,
    /// Creation time.
    pub create_time: i64,
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidName,
            format!("provider ID {id:?} must be 1-63 characters of a-z, 0-9 and '-'"),
        ))
    }
}

impl Attestation {
    /// The issuer URL of `provider`: the base URL for `default`, else `BASE/providers/ID`.
    pub fn issuer_of(&self, provider: &str) -> String {
        if provider == DEFAULT_PROVIDER {
            self.base.public_url().to_string()
        } else {
            format!("{}/providers/{provider}", self.base.public_url())
        }
    }

    /// Looks a provider up (`default` needs no record).
    pub async fn provider(&self, name: &str) -> Result<ProviderView> {
        check_id(name)?;
        if name == DEFAULT_PROVIDER {
            return Ok(ProviderView {
                name: name.into(),
                issuer: self.issuer_of(name),
                create_time: 0,
            });
        }
        let rec = Records::of(&*self.base.store)
            .get(model::ATTEST_PROVIDERS, name)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::ProviderNotFound,
                    format!("attestation provider {name:?} does not exist; create it with `sovra attestation providers create {name}`"),
                )
            })?;
        let rec: ProviderRec = rec.value.clone();
        Ok(ProviderView {
            issuer: self.issuer_of(&rec.name),
            name: rec.name,
            create_time: rec.create_time,
        })
    }

    /// Creates a provider.
    pub async fn create_provider(&self, p: &Principal, name: &str) -> Result<ProviderView> {
        self.base
            .auth
            .authorize(p, Permission::PolicyManage, "attestation")
            .await?;
        check_id(name)?;
        if name == DEFAULT_PROVIDER {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                "the default provider always exists",
            ));
        }
        let rec = ProviderRec {
            name: name.into(),
            create_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        b.create(model::ATTEST_PROVIDERS, &rec)?;
        b.audit(
            self.base
                .admin_event(
                    p,
                    Action::ProviderCreate,
                    format!("attestation/providers/{name}"),
                )
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| {
            let e = Error::from(e);
            if e.code == ErrorCode::Conflict {
                Error::new(
                    ErrorCode::AlreadyExists,
                    format!("provider {name:?} already exists"),
                )
            } else {
                e
            }
        })?;
        Ok(ProviderView {
            issuer: self.issuer_of(&rec.name),
            name: rec.name,
            create_time: rec.create_time,
        })
    }

    /// Lists providers (`default` first).
    pub async fn list_providers(&self, p: &Principal) -> Result<Vec<ProviderView>> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        let mut out = vec![self.provider(DEFAULT_PROVIDER).await?];
        for r in Records::of(&*self.base.store)
            .scan(model::ATTEST_PROVIDERS, None, 1000)
            .await?
        {
            let rec: ProviderRec = r.value.clone();
            out.push(ProviderView {
                issuer: self.issuer_of(&rec.name),
                name: rec.name,
                create_time: rec.create_time,
            });
        }
        Ok(out)
    }

    /// OpenID Connect discovery metadata for `provider`.
    pub async fn openid_configuration(&self, provider: &str) -> Result<serde_json::Value> {
        let prov = self.provider(provider).await?;
        Ok(serde_json::json!({
            "issuer": prov.issuer,
            "jwks_uri": format!("{}/certs", self.base.public_url()),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "ES384"],
            "response_types_supported": ["token", "none"],
            "claims_supported": ["iss", "iat", "nbf", "exp", "jti", "nonce", "x-ms-ver",
                "x-ms-attestation-type", "x-ms-compliance-status", "x-ms-policy-hash", "x-ms-runtime"],
        }))
    }
}
