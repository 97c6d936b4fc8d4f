//! Authentication (bearer API tokens, stored hashed) and authorization checks.
//!
//! Token format: `sovra_{id}_{secret}`. The ID is public (it names the token for listing and
//! revocation); only SHA-256 of the secret is stored. Token and role-binding lookups are cached
//! for `cache_ttl`; a change made on this node invalidates its cache at once, a change made on
//! another node (PostgreSQL deployments) is seen within `cache_ttl`.

use super::audit::{Audit, AuditEvent, EventKind};
use super::authz::{Permission, allowed};
use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::{self, RoleBindingRec, TokenRec};
use crate::records::Records;
use crate::services::actions::Action;
use sovra_proto::ErrorCode;
use sovra_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Principal name.
    pub name: Arc<str>,
    /// The token used.
    pub token_id: Arc<str>,
    bindings: Arc<Vec<RoleBindingRec>>,
}

impl Principal {
    /// Whether the principal may do `perm` on `resource`.
    pub fn can(&self, perm: Permission, resource: &str) -> bool {
        allowed(&self.bindings, perm, resource)
    }

    /// Whether some binding of the principal grants `perm`, at any scope.
    pub fn can_anywhere(&self, perm: Permission) -> bool {
        self.bindings
            .iter()
            .any(|b| super::authz::role_grants(b.role, perm))
    }

    /// The principal's role bindings.
    pub fn bindings(&self) -> &[RoleBindingRec] {
        &self.bindings
    }

    /// A principal with the given bindings (server-internal callers and tests).
    pub fn internal(name: &str, bindings: Vec<RoleBindingRec>) -> Self {
        Self {
            name: name.into(),
            token_id: "internal".into(),
            bindings: Arc::new(bindings),
        }
    }
}

/// The authentication service.
#[derive(Debug)]
pub struct Auth {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: Audit,
    tokens: TtlCache<String, Arc<Authenticated>>,
    bindings: TtlCache<String, Arc<Vec<RoleBindingRec>>>,
}

/// A token as cached for authentication: what to check, and the principal it yields.
#[derive(Debug)]
struct Authenticated {
    secret_hash: [u8; 32],
    revoked: bool,
    expire_time: Option<i64>,
    principal: Principal,
}

/// Checks a principal name.
pub fn check_principal(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "invalid principal {name:?}: use 1 to 63 characters from A-Z, a-z, 0-9, '-', '_', '.', '@'"
            ),
        ))
    }
}

/// Splits `sovra_{id}_{secret}`.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("sovra_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// SHA-256 of a token secret, hex.
pub fn secret_hash(secret: &str) -> String {
    sovra_proto::hex::encode(&sovra_crypto::sha256(secret.as_bytes()))
}

impl Auth {
    /// The service.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: Audit, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            audit,
            tokens: TtlCache::new(ttl, 100_000),
            bindings: TtlCache::new(ttl, 100_000),
        }
    }

    /// Forgets cached data of a token.
    pub fn invalidate_token(&self, id: &str) {
        self.tokens.remove(id);
    }

    /// Forgets cached role bindings of a principal (and the cached tokens that carry them).
    pub fn invalidate_principal(&self, principal: &str) {
        self.bindings.remove(principal);
        self.tokens
            .remove_where(|_, a| &*a.principal.name == principal);
    }

    async fn token(&self, id: &str) -> Result<Option<Arc<Authenticated>>> {
        if let Some(t) = self.tokens.get(id) {
            return Ok(Some(t));
        }
        let Some(rec) = Records::of(&*self.store).get(model::TOKENS, id).await? else {
            return Ok(None);
        };
        let t: TokenRec = rec.value.clone();
        let mut secret_hash = [0u8; 32];
        let decoded = (0..32)
            .map(|i| {
                t.secret_hash
                    .get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>();
        match decoded {
            Some(v) if v.len() == 32 => secret_hash.copy_from_slice(&v),
            _ => {
                return Err(Error::internal(format!(
                    "token {id}: stored hash is malformed"
                )));
            }
        }
        let bindings = self.bindings_of(&t.principal).await?;
        let principal = Principal {
            name: t.principal.as_str().into(),
            token_id: t.id.as_str().into(),
            bindings,
        };
        let a = Arc::new(Authenticated {
            secret_hash,
            revoked: t.revoked,
            expire_time: t.expire_time,
            principal,
        });
        self.tokens.put(id.to_owned(), a.clone());
        Ok(Some(a))
    }

    /// The role bindings of `principal`.
    pub async fn bindings_of(&self, principal: &str) -> Result<Arc<Vec<RoleBindingRec>>> {
        if let Some(b) = self.bindings.get(principal) {
            return Ok(b);
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.store)
                .list(model::ROLE_BINDINGS, principal, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                out.push(r.value.clone());
            }
        }
        let b = Arc::new(out);
        self.bindings.put(principal.to_owned(), b.clone());
        Ok(b)
    }

    /// The principal of `authorization` if its token is valid and already in the cache: no
    /// store lookup, no audit. Lets known clients through while their address is refused
    /// lookups for too many failures.
    pub fn cached_principal(&self, authorization: Option<&str>) -> Option<Principal> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let (id, secret) = parse_token(token)?;
        let rec = self.tokens.get(id)?;
        let valid = sovra_crypto::ct_eq(&sovra_crypto::sha256(secret.as_bytes()), &rec.secret_hash)
            && !rec.revoked
            && rec.expire_time.is_none_or(|t| t > self.clock.now());
        valid.then(|| rec.principal.clone())
    }

    /// Authenticates an `Authorization` header value sent from `source` (for the audit record
    /// of a failure; failures are aggregated per source and reason).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        source: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        let Some(header) = authorization else {
            return Err(Error::new(
                ErrorCode::Unauthenticated,
                "no credentials: send 'Authorization: Bearer <token>' (set SOVRA_TOKEN for the CLI)",
            ));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim);
        let invalid = |why: &str| {
            Error::new(
                ErrorCode::TokenInvalid,
                format!("the bearer token is {why}; ask an administrator for a valid token"),
            )
        };
        let Some(token) = token else {
            return Err(Error::new(
                ErrorCode::Unauthenticated,
                "the Authorization header must be 'Bearer <token>'",
            ));
        };
        let Some((id, secret)) = parse_token(token) else {
            return Err(invalid("malformed"));
        };
        let Some(rec) = self.token(id).await? else {
            self.deny_unauthenticated(id, "unknown token", source).await;
            return Err(invalid("unknown"));
        };
        if !sovra_crypto::ct_eq(&sovra_crypto::sha256(secret.as_bytes()), &rec.secret_hash) {
            self.deny_unauthenticated(id, "wrong secret", source).await;
            return Err(invalid("unknown"));
        }
        if rec.revoked {
            self.deny_unauthenticated(id, "revoked token", source).await;
            return Err(invalid("revoked"));
        }
        if rec.expire_time.is_some_and(|t| t <= self.clock.now()) {
            self.deny_unauthenticated(id, "expired token", source).await;
            return Err(invalid("expired"));
        }
        Ok(rec.principal.clone())
    }

    async fn deny_unauthenticated(
        &self,
        token_id: &str,
        why: &str,
        source: Option<std::net::IpAddr>,
    ) {
        let source = source.map(|s| s.to_string());
        let mut ev = AuditEvent::new(self.clock.now(), EventKind::Denied, Action::Authenticate)
            .denied(ErrorCode::TokenInvalid.as_str())
            .detail(serde_json::json!({ "tokenId": token_id, "reason": why, "source": source }));
        if token_id.len() > 64 {
            ev = ev.detail(
                serde_json::json!({ "tokenId": "(too long)", "reason": why, "source": source }),
            );
        }
        let key = format!("authenticate|{}|{why}", source.as_deref().unwrap_or("-"));
        self.audit.record_denial(key, ev).await;
    }

    /// Checks that `p` may do `perm` on `resource`; audits and refuses otherwise.
    pub async fn authorize(&self, p: &Principal, perm: Permission, resource: &str) -> Result<()> {
        if p.can(perm, resource) {
            return Ok(());
        }
        let ev = AuditEvent::new(self.clock.now(), EventKind::Denied, Action::Denied(perm))
            .principal(&p.name)
            .resource(resource)
            .denied(ErrorCode::PermissionDenied.as_str());
        self.audit
            .record_denial(format!("{}|{}", perm.name(), p.name), ev)
            .await;
        Err(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "principal {:?} lacks permission {} on {resource}; ask an administrator for a role that grants it",
                p.name,
                perm.name()
            ),
        ))
    }
}
