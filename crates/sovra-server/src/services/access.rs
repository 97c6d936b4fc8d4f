//! Access administration: API tokens and role bindings (quotas: `quota.rs`).

use super::Base;
use super::auth::{Principal, check_principal, secret_hash};
use super::authz::Permission;
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::model::{self, RoleBindingRec, TokenRec};
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use sovra_proto::ErrorCode;
use sovra_proto::admin::Role;
use sovra_store::{Expect, WriteBatch};

/// A bearer token (`sovra_{id}_{secret}`), wiped from memory when dropped.
pub type TokenSecret = zeroize::Zeroizing<String>;

/// A token to issue.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The principal it signs in as.
    pub principal: String,
    /// What it is for (at most 256 characters).
    pub description: String,
    /// Lifetime in seconds (`None`: until revoked).
    pub ttl: Option<u64>,
}

/// A token just issued: the secret, shown once, and its record.
#[derive(Debug)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: TokenSecret,
    /// Its record (no secret).
    pub info: TokenRec,
}

/// A role to grant.
#[derive(Debug, Clone)]
pub struct NewBinding {
    /// Who.
    pub principal: String,
    /// The role.
    pub role: Role,
    /// Where: `*` or a location, key ring or key name.
    pub scope: String,
    /// The binding's ID, when the caller names it (the Managed HSM API's role assignment
    /// name); otherwise one is generated.
    pub id: Option<String>,
}

/// Checks a caller-chosen binding ID: 1–64 letters, digits and dashes (a GUID fits).
fn check_binding_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::invalid(
            "a role binding ID is 1-64 letters, digits and dashes (a GUID fits)",
        ));
    }
    Ok(())
}

fn rand_err(e: sovra_crypto::CryptoError) -> Error {
    Error::internal(e.to_string())
}

/// Creates a new token secret and its record (not stored).
pub(crate) fn new_token(
    principal: &str,
    description: &str,
    now: i64,
    expire_time: Option<i64>,
) -> Result<(TokenSecret, TokenRec)> {
    let id = sovra_crypto::random::hex_id(8).map_err(rand_err)?;
    let raw = zeroize::Zeroizing::new(sovra_crypto::random::bytes(32).map_err(rand_err)?);
    let encoded = zeroize::Zeroizing::new(sovra_proto::b64::encode(&raw));
    let secret = zeroize::Zeroizing::new(encoded.trim_end_matches('=').replace(['+', '/'], "x"));
    let token = TokenSecret::new(format!("sovra_{id}_{}", secret.as_str()));
    let rec = TokenRec {
        id,
        principal: principal.to_owned(),
        secret_hash: secret_hash(&secret),
        description: description.to_owned(),
        create_time: now,
        expire_time,
        revoked: false,
    };
    Ok((token, rec))
}

/// Checks a role-binding scope: `*` or a location, key ring or key name.
fn check_scope(scope: &str) -> Result<()> {
    if scope == "*" {
        return Ok(());
    }
    match scope.parse::<sovra_proto::names::ResourceName>() {
        Ok(sovra_proto::names::ResourceName::Version(_)) => {
            Err(Error::invalid("scope cannot be a key version; use its key"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("scope must be '*' or a resource name: {e}"),
        )),
    }
}

/// API tokens and role bindings.
#[derive(Debug)]
pub struct Access {
    base: Base,
    /// Serialises changes that could remove the last administrator (on this node).
    admin_changes: tokio::sync::Mutex<()>,
}

impl Access {
    /// The service.
    pub fn new(base: Base) -> Self {
        Self {
            base,
            admin_changes: tokio::sync::Mutex::new(()),
        }
    }
}

impl Access {
    /// Creates the bootstrap administrator (first start only): a token for `admin` and an
    /// Administrator binding at `*`. Returns the token.
    pub async fn bootstrap_admin(&self) -> Result<TokenSecret> {
        self.grant_administrator(
            "admin",
            "bootstrap administrator token",
            "bootstrap-admin".into(),
            None,
            Action::Bootstrap,
        )
        .await
    }

    /// Break-glass for a deployment that lost every administrator (`sovra admin recover`,
    /// offline: whoever runs it holds the database and what unseals the HSM, since every row is
    /// sealed under an HSM-held key). A new token for `principal`, expiring after `ttl_secs`,
    /// and an Administrator binding at `*`; audited as `admin.recover`. Returns the token.
    pub async fn recover_administrator(
        &self,
        principal: &str,
        ttl_secs: i64,
    ) -> Result<TokenSecret> {
        super::auth::check_principal(principal)?;
        if !(60..=7 * 86_400).contains(&ttl_secs) {
            return Err(Error::invalid(
                "the recovery token's lifetime must be between 1 minute and 7 days",
            ));
        }
        let tag = sovra_crypto::random::hex_id(4).map_err(rand_err)?;
        self.grant_administrator(
            principal,
            "break-glass administrator token (sovra admin recover)",
            format!("recovery-{tag}"),
            Some(self.base.now() + ttl_secs),
            Action::AdminRecover,
        )
        .await
    }

    async fn grant_administrator(
        &self,
        principal: &str,
        description: &str,
        binding_id: String,
        expire_time: Option<i64>,
        action: Action,
    ) -> Result<TokenSecret> {
        let now = self.base.now();
        let (token, rec) = new_token(principal, description, now, expire_time)?;
        let bind = RoleBindingRec {
            id: binding_id,
            principal: principal.into(),
            role: Role::Administrator,
            scope: "*".into(),
            create_time: now,
        };
        let mut b = WriteBatch::new();
        b.create(model::TOKENS, &rec)?;
        b.create(model::ROLE_BINDINGS, &bind)?;
        let mut detail = serde_json::json!({"tokenId": rec.id, "role": "ADMINISTRATOR", "scope": "*", "bindingId": bind.id});
        if let (Some(t), Some(d)) = (expire_time, detail.as_object_mut()) {
            d.insert("expireTime".into(), rfc3339(t).into());
        }
        b.audit(
            super::audit::AuditEvent::new(now, super::audit::EventKind::System, action)
                .resource(format!("principals/{principal}"))
                .detail(detail)
                .body(),
        );
        self.base.store.commit(b).await?;
        Ok(token)
    }

    /// `POST /v1/tokens`.
    pub async fn create_token(&self, p: &Principal, req: NewToken) -> Result<IssuedToken> {
        self.base
            .auth
            .authorize(p, Permission::AccessManage, "*")
            .await?;
        check_principal(&req.principal)?;
        if req.description.len() > 256 {
            return Err(Error::invalid("description is longer than 256 characters"));
        }
        let now = self.base.now();
        let expire = match req.ttl {
            Some(0) => return Err(Error::invalid("ttl must be positive")),
            Some(secs) => Some(now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))),
            None => None,
        };
        let (token, rec) = new_token(&req.principal, &req.description, now, expire)?;
        let mut b = WriteBatch::new();
        b.create(model::TOKENS, &rec)?;
        b.audit(self.base.admin_event(p, Action::TokenCreate, format!("tokens/{}", rec.id)).detail(serde_json::json!({"principal": rec.principal, "expireTime": rec.expire_time.map(rfc3339)})).body());
        self.base.store.commit(b).await?;
        Ok(IssuedToken { token, info: rec })
    }

    /// `GET /v1/tokens`.
    pub async fn list_tokens(&self, p: &Principal) -> Result<Vec<TokenRec>> {
        self.base
            .auth
            .authorize(p, Permission::AccessRead, "*")
            .await?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.base.store)
                .list(model::TOKENS, "", after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                out.push(r.value.clone());
            }
        }
        Ok(out)
    }

    /// `DELETE /v1/tokens/{id}`: revokes (the record is kept for the audit trail).
    pub async fn revoke_token(&self, p: &Principal, id: &str) -> Result<TokenRec> {
        self.base
            .auth
            .authorize(p, Permission::AccessManage, "*")
            .await?;
        if &*p.token_id == id {
            return Err(Error::new(
                ErrorCode::OwnAccess,
                "this is the token the request is signed in with: revoke it from another token (create one first)",
            ));
        }
        let _serial = self.admin_changes.lock().await;
        self.keep_an_administrator(Removal::Token(id)).await?;
        let out = super::with_retries(|| async {
            let r = Records::of(&*self.base.store)
                .get(model::TOKENS, id)
                .await?
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::TokenNotFound,
                        format!("no token with ID {id:?}; list them with 'sovra tokens list'"),
                    )
                })?;
            let mut t: TokenRec = r.value.clone();
            t.revoked = true;
            let mut b = WriteBatch::new();
            b.update(model::TOKENS, &t, r.rev)?;
            b.audit(
                self.base
                    .admin_event(p, Action::TokenRevoke, format!("tokens/{id}"))
                    .detail(serde_json::json!({"principal": t.principal}))
                    .body(),
            );
            self.base.store.commit(b).await?;
            Ok(t)
        })
        .await?;
        self.base.auth.invalidate_token(id);
        Ok(out)
    }

    /// Refuses a change that would leave no usable administrator: a principal with an
    /// Administrator binding at `*` and a token that is neither revoked nor expired. Without
    /// one nobody could ever grant a role again.
    async fn keep_an_administrator(&self, removing: Removal<'_>) -> Result<()> {
        let now = self.base.now();
        let mut admins = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.base.store)
                .scan(model::ROLE_BINDINGS, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                let b: RoleBindingRec = r.value.clone();
                if is_org_admin(&b) && removing != Removal::Binding(&r.name) {
                    admins.insert(b.principal);
                }
            }
        }
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.base.store)
                .scan(model::TOKENS, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                let t: TokenRec = r.value.clone();
                let usable = !t.revoked && t.expire_time.is_none_or(|e| e > now);
                if usable && removing != Removal::Token(&t.id) && admins.contains(&t.principal) {
                    return Ok(());
                }
            }
        }
        Err(Error::new(
            ErrorCode::LastAdministrator,
            "this would leave no administrator who can sign in (an ADMINISTRATOR binding at * with a valid token); grant the role to another principal first",
        ))
    }

    /// `POST /v1/roleBindings`.
    pub async fn create_role_binding(
        &self,
        p: &Principal,
        req: NewBinding,
    ) -> Result<RoleBindingRec> {
        self.base
            .auth
            .authorize(p, Permission::AccessManage, "*")
            .await?;
        check_principal(&req.principal)?;
        check_scope(&req.scope)?;
        let existing = self.base.auth.bindings_of(&req.principal).await?;
        let same = existing
            .iter()
            .find(|b| b.role == req.role && b.scope == req.scope);
        let id = match (&req.id, same) {
            // Granting what is already granted changes nothing.
            (None, Some(b)) => return Ok(b.clone()),
            (None, None) => sovra_crypto::random::hex_id(8).map_err(rand_err)?,
            // A named binding must be new, by name and by meaning.
            (Some(_), Some(b)) => {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "principal {:?} already has this role at this scope (role binding {:?})",
                        req.principal, b.id
                    ),
                ));
            }
            (Some(id), None) => {
                check_binding_id(id)?;
                if self.all_role_bindings().await?.iter().any(|b| b.id == *id) {
                    return Err(Error::new(
                        ErrorCode::AlreadyExists,
                        format!("role binding {id:?} already exists"),
                    ));
                }
                id.clone()
            }
        };
        let rec = RoleBindingRec {
            id,
            principal: req.principal.clone(),
            role: req.role,
            scope: req.scope.clone(),
            create_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        b.create(model::ROLE_BINDINGS, &rec)?;
        b.audit(self.base.admin_event(p, Action::RoleBindingCreate, format!("roleBindings/{}", rec.id)).detail(serde_json::json!({"principal": rec.principal, "role": rec.role, "scope": rec.scope})).body());
        self.base.store.commit(b).await?;
        self.base.auth.invalidate_principal(&rec.principal);
        Ok(rec)
    }

    /// `GET /v1/roleBindings[?principal=]`.
    pub async fn list_role_bindings(
        &self,
        p: &Principal,
        principal: Option<&str>,
    ) -> Result<Vec<RoleBindingRec>> {
        self.base
            .auth
            .authorize(p, Permission::AccessRead, "*")
            .await?;
        if let Some(pr) = principal {
            check_principal(pr)?;
            return Ok(self.base.auth.bindings_of(pr).await?.to_vec());
        }
        self.all_role_bindings().await
    }

    /// The role binding with ID `id`, whoever holds it.
    pub async fn find_role_binding(&self, p: &Principal, id: &str) -> Result<RoleBindingRec> {
        self.base
            .auth
            .authorize(p, Permission::AccessRead, "*")
            .await?;
        self.all_role_bindings()
            .await?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::RoleBindingNotFound,
                    format!("there is no role binding {id:?}; list them with 'sovra roles list'"),
                )
            })
    }

    async fn all_role_bindings(&self) -> Result<Vec<RoleBindingRec>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.base.store)
                .scan(model::ROLE_BINDINGS, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                out.push(r.value.clone());
            }
        }
        Ok(out)
    }

    /// `DELETE /v1/roleBindings/{principal}/{id}`.
    pub async fn delete_role_binding(
        &self,
        p: &Principal,
        principal: &str,
        id: &str,
    ) -> Result<()> {
        self.base
            .auth
            .authorize(p, Permission::AccessManage, "*")
            .await?;
        check_principal(principal)?;
        let name = format!("{principal}/{id}");
        let _serial = self.admin_changes.lock().await;
        let r = Records::of(&*self.base.store)
            .get(model::ROLE_BINDINGS, &name)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::RoleBindingNotFound, format!("principal {principal:?} has no role binding {id:?}; list them with 'sovra roles list'")))?;
        let rec: RoleBindingRec = r.value.clone();
        if is_org_admin(&rec) {
            if rec.principal == *p.name {
                return Err(Error::new(
                    ErrorCode::OwnAccess,
                    "an administrator cannot remove their own Administrator role; another administrator can",
                ));
            }
            self.keep_an_administrator(Removal::Binding(&name)).await?;
        }
        let mut b = WriteBatch::new();
        b.remove(model::ROLE_BINDINGS, name, Expect::Rev(r.rev));
        b.audit(
            self.base
                .admin_event(p, Action::RoleBindingDelete, format!("roleBindings/{id}"))
                .detail(serde_json::json!({"principal": principal}))
                .body(),
        );
        self.base.store.commit(b).await?;
        self.base.auth.invalidate_principal(principal);
        Ok(())
    }
}

/// What a change takes away from the set of administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal<'a> {
    /// The role binding with this record name (`principal/id`).
    Binding(&'a str),
    /// The token with this ID.
    Token(&'a str),
}

/// An organisation-wide Administrator binding.
fn is_org_admin(b: &RoleBindingRec) -> bool {
    b.role == sovra_proto::admin::Role::Administrator && b.scope == "*"
}
