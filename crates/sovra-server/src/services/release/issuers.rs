//! External token issuers trusted for key release: another attestation service (MAA, another
//! Sovra, a trustee) whose tokens Sovra accepts when a key's release policy names it. Each is
//! pinned by its signing certificates (works offline), or named by a JWKS URL that Sovra fetches
//! over HTTPS (checked against the CA certificates configured with it, else the system's), keeps
//! for ten minutes, and fetches again early when a token names a key it does not hold (at most
//! every 5 seconds per issuer, so unknown `kid`s cannot make Sovra hammer the issuer).

use super::Release;
use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use crate::services::auth::Principal;
use crate::services::authz::Permission;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sovra_crypto::jws::VerifyKey;
use sovra_proto::ErrorCode;
use sovra_store::{Expect, WriteBatch};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a fetched JWKS is used before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// Least time between two fetches of one issuer's JWKS.
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a fetched JWKS is used while the issuer cannot be reached.
const JWKS_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// Largest JWKS accepted.
const JWKS_MAX_BYTES: usize = 256 * 1024;
/// Time limit of one JWKS fetch.
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);

/// An external token issuer trusted for release.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The `iss` of its tokens (trailing `/` ignored).
    pub issuer: String,
    /// Certificates (PEM) whose keys sign its tokens (pinned; no network needed).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// HTTPS URL of its JSON Web Key Set (e.g. `https://attest.example/certs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// CA certificates (PEM) that the JWKS server's TLS certificate must chain to; default:
    /// the system's CA bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificates: Vec<String>,
}

impl crate::model::Record for TrustedIssuer {
    fn name(&self) -> String {
        self.issuer.clone()
    }
}

/// Fetched key sets, per issuer.
#[derive(Debug, Default)]
pub struct JwksCache {
    sets: Mutex<HashMap<String, Fetched>>,
}

#[derive(Debug, Clone)]
struct Fetched {
    keys: Vec<Value>,
    at: Instant,
}

fn norm(u: &str) -> String {
    u.trim_end_matches('/').to_string()
}

fn unavailable(iss: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::ReleaseIssuerUnavailable,
        format!("cannot fetch the key set of trusted issuer {iss}: {why}"),
    )
}

fn pinned_keys(ti: &TrustedIssuer) -> Vec<VerifyKey> {
    let mut keys = Vec::new();
    for pem in &ti.certificates {
        for der in sovra_attest::x509::certs_from_pem_or_der(pem.as_bytes()).unwrap_or_default() {
            if let Ok(c) = sovra_attest::x509::parse_cert(&der)
                && let Ok(k) = VerifyKey::from_spki(None, c.public_key().raw)
            {
                keys.push(k);
            }
        }
    }
    keys
}

impl JwksCache {
    fn get(&self, iss: &str) -> Option<Fetched> {
        self.sets.lock().ok()?.get(iss).cloned()
    }

    fn put(&self, iss: &str, keys: Vec<Value>) {
        if let Ok(mut m) = self.sets.lock() {
            m.insert(
                iss.to_string(),
                Fetched {
                    keys,
                    at: Instant::now(),
                },
            );
        }
    }

    fn forget(&self, iss: &str) {
        if let Ok(mut m) = self.sets.lock() {
            m.remove(iss);
        }
    }
}

/// Fetches `uri` (HTTPS) and returns its `keys`; unless `allow_private`, only from public
/// addresses.
async fn fetch_jwks(ti: &TrustedIssuer, uri: &str, allow_private: bool) -> Result<Vec<Value>> {
    if !uri.starts_with("https://") {
        return Err(unavailable(&ti.issuer, "the JWKS URL is not https://"));
    }
    let ca = (!ti.ca_certificates.is_empty()).then(|| ti.ca_certificates.join("\n").into_bytes());
    let body = crate::services::fetch::get_with_headers(
        uri,
        ca,
        JWKS_TIMEOUT,
        JWKS_MAX_BYTES,
        !allow_private,
    )
    .await
    .map(|(b, _)| b)
    .map_err(|e| unavailable(&ti.issuer, e))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| unavailable(&ti.issuer, format!("{uri} is not JSON")))?;
    v.get("keys")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| unavailable(&ti.issuer, format!("{uri} has no \"keys\" list")))
}

fn usable(keys: &[Value]) -> Vec<VerifyKey> {
    keys.iter()
        .filter_map(|k| VerifyKey::from_jwk(k).ok())
        .collect()
}

impl Release {
    /// The keys that may have signed a token of `ti` naming `kid`: pinned certificates, then the
    /// issuer's JWKS (cached; fetched again when `kid` is new and the last fetch is not recent).
    pub(crate) async fn issuer_keys(
        &self,
        ti: &TrustedIssuer,
        kid: Option<&str>,
    ) -> Result<Vec<VerifyKey>> {
        let mut keys = pinned_keys(ti);
        let Some(uri) = &ti.jwks_uri else {
            return Ok(keys);
        };
        let cached = self.jwks.get(&ti.issuer);
        let has_kid = |f: &Fetched| {
            kid.is_none_or(|kid| {
                f.keys
                    .iter()
                    .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            })
        };
        let fresh = match &cached {
            Some(f) if f.at.elapsed() < JWKS_TTL && has_kid(f) => Some(f.keys.clone()),
            Some(f) if f.at.elapsed() < JWKS_MIN_INTERVAL => Some(f.keys.clone()),
            _ => None,
        };
        let set = match fresh {
            Some(k) => k,
            None => match fetch_jwks(ti, uri, self.base.cfg.attest.jwks_allow_private).await {
                Ok(k) => {
                    self.jwks.put(&ti.issuer, k.clone());
                    k
                }
                // The issuer is unreachable: a key set fetched earlier still serves, for a
                // while (a key the issuer has withdrawn must not be trusted for ever).
                Err(e) => match cached {
                    Some(f) if f.at.elapsed() > JWKS_MAX_STALE => {
                        return Err(unavailable(
                            &ti.issuer,
                            format!(
                                "{} (and the key set fetched {} s ago is older than the {} s it may be used without a refresh)",
                                e.message,
                                f.at.elapsed().as_secs(),
                                JWKS_MAX_STALE.as_secs()
                            ),
                        ));
                    }
                    Some(f) => {
                        tracing::warn!(issuer = %ti.issuer, error = %e.message, "JWKS fetch failed; using the cached key set");
                        f.keys
                    }
                    None if keys.is_empty() => return Err(e),
                    None => Vec::new(),
                },
            },
        };
        keys.extend(usable(&set));
        Ok(keys)
    }

    /// Adds (or replaces) an external issuer trusted for release.
    pub async fn put_trusted_issuer(
        &self,
        p: &Principal,
        mut ti: TrustedIssuer,
    ) -> Result<TrustedIssuer> {
        self.base
            .auth
            .authorize(p, Permission::TrustManage, "*")
            .await?;
        ti.issuer = norm(&ti.issuer);
        if !(ti.issuer.starts_with("https://") || ti.issuer.starts_with("http://")) {
            return Err(Error::invalid("issuer must be the URL tokens carry in iss"));
        }
        // Sovra's own tokens are checked with its own keys; an "external" issuer of the same
        // name would let pinned certificates stand in for them.
        let own = norm(self.base.public_url());
        if ti.issuer == own || ti.issuer.starts_with(&format!("{own}/providers/")) {
            return Err(Error::invalid(format!(
                "{} is this server's own issuer; its tokens are already trusted with its own keys",
                ti.issuer
            )));
        }
        if ti.certificates.is_empty() && ti.jwks_uri.is_none() {
            return Err(Error::invalid(
                "give certificates (PEM certificates of the issuer's signing keys) or jwksUri (the HTTPS URL of its key set)",
            ));
        }
        if let Some(uri) = &ti.jwks_uri
            && !uri
                .strip_prefix("https://")
                .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        {
            return Err(Error::invalid(
                "jwksUri must be an https:// URL with a host",
            ));
        }
        for (what, pems) in [
            ("certificates", &ti.certificates),
            ("caCertificates", &ti.ca_certificates),
        ] {
            for pem in pems {
                let certs = sovra_attest::x509::certs_from_pem_or_der(pem.as_bytes())
                    .map_err(|e| Error::invalid(format!("a {what} entry does not parse: {e}")))?;
                if certs.is_empty() {
                    return Err(Error::invalid(format!(
                        "a {what} entry holds no PEM certificate"
                    )));
                }
            }
        }
        let mut b = WriteBatch::new();
        b.write(model::RELEASE_ISSUERS, &ti, Expect::Any)?;
        b.audit(
            self.base
                .admin_event(
                    p,
                    Action::IssuerPut,
                    format!("release/issuers/{}", ti.issuer),
                )
                .body(),
        );
        self.base.store.commit(b).await?;
        self.jwks.forget(&ti.issuer);
        Ok(ti)
    }

    /// Lists external issuers.
    pub async fn list_trusted_issuers(&self, p: &Principal) -> Result<Vec<TrustedIssuer>> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        let mut out = Vec::new();
        for r in Records::of(&*self.base.store)
            .scan(model::RELEASE_ISSUERS, None, 1000)
            .await?
        {
            out.push(r.value.clone());
        }
        Ok(out)
    }
}
