//! Secure key release: an exportable key goes, wrapped to a key only the attested TEE holds, to
//! whoever presents an attestation token that (1) comes from a trusted authority, (2) verifies
//! and is current, and (3) satisfies the key's release policy. Every decision is audited with
//! the clause that failed.

pub mod issuers;

use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use crate::services::Base;
use crate::services::actions::Action;
use crate::services::audit::{AuditEvent, EventKind};
use crate::services::auth::Principal;
use crate::services::authz::Permission;
use crate::services::quota::OpClass;
use issuers::TrustedIssuer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sovra_crypto::jws::{self, Jws, VerifyKey};
use sovra_crypto::keywrap::{self, ReleaseEnc};
use sovra_policy::skr::DenialKind;
use sovra_proto::ErrorCode;
use sovra_proto::kms::{AlgSpec, VersionState};
use sovra_proto::names::{CryptoKeyName, VersionName};
use sovra_store::{Expect, WriteBatch};
use std::sync::Arc;

/// Lifetime of a server-issued nonce, seconds.
const NONCE_TTL: i64 = 300;
/// Prefix of server-issued nonces.
const NONCE_PREFIX: &str = "sn_";

/// A server-issued release nonce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NonceRec {
    /// The nonce (empty in records written before it was kept here).
    #[serde(default)]
    nonce: String,
    expire: i64,
    principal: String,
}

impl crate::model::Record for NonceRec {
    fn name(&self) -> String {
        self.nonce.clone()
    }
    fn due(&self) -> Option<i64> {
        Some(self.expire)
    }
}

fn norm(u: &str) -> String {
    u.trim().trim_end_matches('/').to_string()
}

fn deny(code: ErrorCode, msg: impl Into<String>) -> Error {
    Error::new(code, msg)
}

/// The first RSA encryption key in the token's `x-ms-runtime.keys`, as (kid, SPKI DER).
fn target_key(claims: &Map<String, Value>) -> Result<(String, Vec<u8>)> {
    let keys = claims
        .get("x-ms-runtime")
        .and_then(|r| r.get("keys"))
        .and_then(Value::as_array)
        .ok_or_else(|| deny(ErrorCode::ReleaseNoTargetKey, "the token has no x-ms-runtime.keys: the TEE must bind an RSA encryption key into its runtime data"))?;
    let enc_key = keys.iter().find(|k| {
        k.get("kty").and_then(Value::as_str) == Some("RSA")
            && (k
                .get("key_ops")
                .and_then(Value::as_array)
                .is_some_and(|ops| ops.iter().any(|o| o == "encrypt" || o == "wrapKey"))
                || ["use", "key_use"]
                    .iter()
                    .any(|f| k.get(*f).and_then(Value::as_str) == Some("enc")))
    });
    let k = enc_key.ok_or_else(|| {
        deny(
            ErrorCode::ReleaseNoTargetKey,
            "x-ms-runtime.keys has no RSA key with key_ops [\"encrypt\"] or use \"enc\"",
        )
    })?;
    let field = |f: &str| {
        k.get(f)
            .and_then(Value::as_str)
            .and_then(|s| jws::b64url_decode(s).ok())
            .ok_or_else(|| {
                deny(
                    ErrorCode::ReleaseNoTargetKey,
                    format!("the target key's {f} is not base64url"),
                )
            })
    };
    let kid = k
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok((kid, sovra_crypto::der::rsa_spki(&field("n")?, &field("e")?)))
}

/// Secure key release: nonces, release decisions and the trusted external issuers.
#[derive(Debug)]
pub struct Release {
    base: Base,
    keys: Arc<crate::services::keys::Keys>,
    material: Arc<crate::services::material::Material>,
    quotas: Arc<crate::services::quota::Quotas>,
    attest: Arc<crate::services::attest::Attestation>,
    crypto: Arc<crate::services::ops::Crypto>,
    /// External issuers' key sets.
    jwks: issuers::JwksCache,
}

impl Release {
    /// The service.
    pub fn new(
        base: Base,
        keys: Arc<crate::services::keys::Keys>,
        material: Arc<crate::services::material::Material>,
        quotas: Arc<crate::services::quota::Quotas>,
        attest: Arc<crate::services::attest::Attestation>,
        crypto: Arc<crate::services::ops::Crypto>,
    ) -> Self {
        Self {
            base,
            keys,
            material,
            quotas,
            attest,
            crypto,
            jwks: Default::default(),
        }
    }
}

/// The TEE a key or secret goes to: its attestation token, the nonce bound into its evidence
/// (if any), and how to wrap to its key.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The attestation token (Sovra's or a trusted external issuer's).
    pub token: String,
    /// The nonce the token must carry in `x-ms-runtime.nonce`.
    pub nonce: Option<String>,
    /// Wrapping to the TEE's key.
    pub enc: ReleaseEnc,
}

/// What `decrypt_to` hands to the recipient TEE.
#[derive(Debug, Clone)]
pub enum ToTee {
    /// The plaintext of this ciphertext (`:decryptTo`).
    Decrypt {
        /// A ciphertext of the key.
        ciphertext: Vec<u8>,
    },
    /// A fresh 256-bit data key, also returned sealed under the key (`:generateDataKeyTo`).
    GenerateDataKey,
}

/// A release statement: a compact JWS signed by Sovra's release key whose payload carries the
/// wrapped key or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRelease {
    /// The compact JWS.
    pub jws: String,
}

/// A single-use release nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedNonce {
    /// The nonce (`sn_…`), to bind into the evidence.
    pub nonce: String,
    /// When it expires (Unix seconds).
    pub expire: i64,
}

impl Release {
    /// Verifies an attestation token from a trusted authority; returns issuer and claims.
    async fn verify_target(&self, token: &str) -> Result<(String, Map<String, Value>)> {
        let j = Jws::parse(token).map_err(|e| {
            deny(
                ErrorCode::ReleaseTokenInvalid,
                format!("the target token is malformed: {e}"),
            )
        })?;
        if j.is_unsigned() {
            return Err(deny(
                ErrorCode::ReleaseTokenInvalid,
                "the target token is unsigned (alg none)",
            ));
        }
        let claims = j
            .claims()
            .map_err(|e| deny(ErrorCode::ReleaseTokenInvalid, e.to_string()))?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .map(norm)
            .ok_or_else(|| {
                deny(
                    ErrorCode::ReleaseTokenInvalid,
                    "the target token has no iss",
                )
            })?;
        // Own providers first, then configured external issuers.
        let mut keys: Vec<VerifyKey> = Vec::new();
        let own = iss == norm(self.base.public_url())
            || iss
                .strip_prefix(&format!("{}/providers/", norm(self.base.public_url())))
                .is_some_and(|p| !p.contains('/'));
        if own {
            let provider = iss
                .rsplit_once("/providers/")
                .map(|(_, p)| p.to_string())
                .unwrap_or_else(|| crate::services::attest::providers::DEFAULT_PROVIDER.into());
            self.attest.provider(&provider).await.map_err(|_| {
                deny(
                    ErrorCode::ReleaseUntrustedIssuer,
                    format!("{iss} is not one of this server's attestation providers"),
                )
            })?;
            for jwk in &self.attest.signing_keys().await?.published {
                if let Ok(k) = VerifyKey::from_jwk(jwk) {
                    keys.push(k);
                }
            }
        } else if let Some(rec) = Records::of(&*self.base.store)
            .get(model::RELEASE_ISSUERS, &iss)
            .await?
        {
            let ti: TrustedIssuer = rec.value.clone();
            keys = self.issuer_keys(&ti, j.kid()).await?;
        } else {
            return Err(deny(
                ErrorCode::ReleaseUntrustedIssuer,
                format!(
                    "tokens from {iss} are not trusted: it is neither an attestation provider of this server nor a configured issuer"
                ),
            ));
        }
        let kid = j.kid();
        let verified = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            .any(|k| j.verify_with(k).is_ok());
        if !verified {
            return Err(deny(
                ErrorCode::ReleaseTokenInvalid,
                format!("the target token's signature does not verify with any key of {iss}"),
            ));
        }
        let now = self.base.now();
        let skew = self.base.cfg.attest.clock_skew_secs;
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|e| e + skew < now)
        {
            return Err(deny(
                ErrorCode::ReleaseTokenExpired,
                "the target token has expired (or has no exp): attest again",
            ));
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|n| n - skew > now)
        {
            return Err(deny(
                ErrorCode::ReleaseTokenExpired,
                "the target token is not valid yet",
            ));
        }
        Ok((iss, claims))
    }

    /// Issues a single-use nonce for the next release (the agent binds it into its evidence).
    ///
    /// Only a principal that may release some key gets one, and each counts against its
    /// asymmetric quota: nonces are stored until they expire, so they are not free.
    pub async fn release_nonce(&self, p: &Principal) -> Result<IssuedNonce> {
        if !p.can_anywhere(Permission::Release) {
            // Denied, and audited, as any other operation the caller may not do.
            self.base
                .auth
                .authorize(p, Permission::Release, "release/nonces")
                .await?;
        }
        self.quotas.take(p, OpClass::Asymmetric).await?;
        let nonce = format!(
            "{NONCE_PREFIX}{}",
            sovra_crypto::random::hex_id(16).map_err(|e| Error::internal(e.to_string()))?
        );
        let expire = self.base.now() + NONCE_TTL;
        let mut b = WriteBatch::new();
        b.create(
            model::RELEASE_NONCES,
            &NonceRec {
                nonce: nonce.clone(),
                expire,
                principal: p.name.to_string(),
            },
        )?;
        self.base.store.commit(b).await?;
        Ok(IssuedNonce { nonce, expire })
    }

    /// Checks the nonce for freshness: it must be one this server issued (`sn_…`), unused,
    /// unexpired, issued to the principal now asking, and bound inside the evidence: carried in
    /// the token's `x-ms-runtime.nonce`, which the attestation service checked against the
    /// report data. The top-level `nonce` claim is only echoed from the attest request and
    /// proves nothing. Returns the store revision to consume.
    async fn check_nonce(
        &self,
        p: &Principal,
        nonce: &str,
        claims: &Map<String, Value>,
    ) -> Result<u64> {
        let bound = claims
            .get("x-ms-runtime")
            .and_then(|r| r.get("nonce"))
            .is_some_and(|v| v.as_str() == Some(nonce));
        if !bound {
            return Err(deny(
                ErrorCode::ReleaseNonceInvalid,
                "the target token does not carry the nonce in its runtime data (x-ms-runtime.nonce, bound into the evidence); an echoed nonce claim proves no freshness",
            ));
        }
        let unknown = || {
            deny(
                ErrorCode::ReleaseNonceInvalid,
                "the nonce is not one this server issued, or was already used: request a new one (POST /v1/release/nonces)",
            )
        };
        if !nonce.starts_with(NONCE_PREFIX) {
            return Err(unknown());
        }
        let rec = Records::of(&*self.base.store)
            .get(model::RELEASE_NONCES, nonce)
            .await?
            .ok_or_else(unknown)?;
        let n: NonceRec = rec.value.clone();
        if n.expire < self.base.now() {
            return Err(deny(
                ErrorCode::ReleaseNonceInvalid,
                "the nonce has expired: request a new one",
            ));
        }
        if n.principal != *p.name {
            return Err(deny(
                ErrorCode::ReleaseNonceInvalid,
                "the nonce was issued to another principal",
            ));
        }
        Ok(rec.rev)
    }

    /// `POST /v1/{key or version}:release`.
    pub async fn release(
        &self,
        p: &Principal,
        key: &CryptoKeyName,
        version: Option<u32>,
        to: &Recipient,
    ) -> Result<SignedRelease> {
        let result = self.release_inner(p, key, version, to).await;
        let granted = |(_, (iss, version, kid)): &(SignedRelease, (String, String, String))| json!({"granted": true, "issuer": iss, "version": version, "targetKid": kid});
        self.decided(
            p,
            Action::Release,
            key,
            &result,
            granted,
            json!({"enc": to.enc.name()}),
        )
        .await?;
        result.map(|(r, _)| r)
    }

    /// Audits a release decision: granted with `granted(result)`, or denied with the code and
    /// the reason added to `denied`.
    async fn decided<T>(
        &self,
        p: &Principal,
        action: Action,
        key: &CryptoKeyName,
        result: &Result<T>,
        granted: impl FnOnce(&T) -> Value,
        mut denied: Value,
    ) -> Result<()> {
        let ev = AuditEvent::new(self.base.now(), EventKind::Decision, action)
            .principal(&p.name)
            .resource(key.to_string());
        let ev = match result {
            Ok(r) => ev.detail(granted(r)),
            Err(e) => {
                if let Some(d) = denied.as_object_mut() {
                    d.insert("granted".into(), Value::Bool(false));
                    d.insert("reason".into(), Value::from(e.message.clone()));
                }
                ev.denied(e.code.as_str()).detail(denied)
            }
        };
        self.base.audit.record(ev).await
    }

    async fn release_inner(
        &self,
        p: &Principal,
        key: &CryptoKeyName,
        version: Option<u32>,
        to: &Recipient,
    ) -> Result<(SignedRelease, (String, String, String))> {
        self.base
            .auth
            .authorize(p, Permission::Release, &key.to_string())
            .await?;
        let enc = to.enc;
        let view = self.keys.key_view(key).await?;
        if !view.key.exportable {
            return Err(deny(
                ErrorCode::KeyNotExportable,
                format!("{key} is not exportable: it can never leave Sovra"),
            ));
        }
        let policy_text = view.key.release_policy.clone().ok_or_else(|| {
            deny(
                ErrorCode::KeyNotExportable,
                format!("{key} has no release policy"),
            )
        })?;
        let policy = sovra_policy::skr::ReleasePolicy::parse(&policy_text)
            .map_err(|e| Error::internal(format!("stored release policy: {e}")))?;
        let n = version.or(view.key.primary).ok_or_else(|| {
            Error::new(
                ErrorCode::NoPrimaryVersion,
                format!("{key} has no primary version"),
            )
        })?;
        let vname: VersionName = key.version(n);
        let (rec, _) = view.versions.get(&n).ok_or_else(|| {
            Error::new(
                ErrorCode::KeyVersionNotFound,
                format!("{vname} does not exist"),
            )
        })?;
        if rec.state != VersionState::Enabled {
            return Err(Error::new(
                ErrorCode::KeyVersionNotEnabled,
                format!("{vname} is not ENABLED; only enabled versions are released"),
            ));
        }
        crate::services::keys::check_validity(rec, self.base.now(), true)?;
        let (iss, _claims, consume, kid, spki) = self
            .admit(p, &policy, &to.token, to.nonce.as_deref())
            .await?;
        let blob = self.material.wrap_for(&vname, rec, enc, spki).await?;
        self.consume_nonce(consume, to.nonce.as_deref()).await?;
        let key_hsm = json!({
            "schema_version": "1.0",
            "header": {"kid": kid, "alg": "dir", "enc": enc.name()},
            "ciphertext": jws::b64url(&blob),
        });
        // Key Vault's key types (it has none for Ed25519: released as an EC key, as before).
        let kty = match rec.algorithm.spec() {
            AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap | AlgSpec::Hmac { .. } => "oct-HSM",
            AlgSpec::Ecdsa { .. } | AlgSpec::Ed25519 => "EC-HSM",
            AlgSpec::RsaSign { .. } | AlgSpec::RsaOaep { .. } => "RSA-HSM",
        };
        let payload = json!({
            "request": {"enc": enc.name(), "kid": key.to_string(), "nonce": to.nonce},
            "response": {"key": {
                "key": {"kid": vname.to_string(), "kty": kty, "algorithm": rec.algorithm, "key_hsm": jws::b64url(key_hsm.to_string().as_bytes())},
                "attributes": {"enabled": true, "exportable": true, "created": rec.create_time},
                "release_policy": {"data": jws::b64url(policy_text.as_bytes()), "immutable": view.key.release_policy_immutable},
            }},
        });
        let keys = self.attest.release_signing_keys().await?;
        let jws = keys
            .active
            .sign_bytes(&release_header(), payload.to_string().as_bytes(), false)
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok((SignedRelease { jws }, (iss, vname.to_string(), kid)))
    }

    /// Admits a target token for `policy`: trusted and verified, policy satisfied, nonce
    /// carried (and, if server-issued, still unused); returns the issuer, the claims, the nonce
    /// revision to consume, and the TEE key (kid, SPKI) to wrap to.
    async fn admit(
        &self,
        p: &Principal,
        policy: &sovra_policy::skr::ReleasePolicy,
        target: &str,
        nonce: Option<&str>,
    ) -> Result<(String, Map<String, Value>, Option<u64>, String, Vec<u8>)> {
        let (iss, claims) = self.verify_target(target).await?;
        policy
            .evaluate(&iss, &Value::Object(claims.clone()))
            .map_err(|d| {
                deny(
                    match d.kind {
                        DenialKind::UntrustedAuthority => ErrorCode::ReleaseUntrustedIssuer,
                        DenialKind::ClaimMismatch => ErrorCode::ReleasePolicyDenied,
                    },
                    d.message,
                )
            })?;
        let consume = match nonce {
            Some(n) => Some(self.check_nonce(p, n, &claims).await?),
            None if policy.require_nonce => {
                return Err(deny(
                    ErrorCode::ReleaseNonceInvalid,
                    "the key's release policy requires a nonce: request one and bind it into the evidence",
                ));
            }
            None => None,
        };
        let (kid, spki) = target_key(&claims)?;
        Ok((iss, claims, consume, kid, spki))
    }

    /// Marks a server-issued nonce used (single use across nodes).
    async fn consume_nonce(&self, rev: Option<u64>, nonce: Option<&str>) -> Result<()> {
        if let (Some(rev), Some(nonce)) = (rev, nonce) {
            let mut b = WriteBatch::new();
            b.remove(model::RELEASE_NONCES, nonce.to_string(), Expect::Rev(rev));
            self.base.store.commit(b).await.map_err(|_| {
                deny(
                    ErrorCode::ReleaseNonceInvalid,
                    "the nonce was used by a concurrent request",
                )
            })?;
        }
        Ok(())
    }

    /// Attested decrypt (`:decryptTo`) or data-key generation (`:generateDataKeyTo`): the
    /// plaintext exists in clear only inside Sovra and, wrapped, inside the attested TEE. The key
    /// needs a release policy but need not be exportable; the caller needs Crypto User.
    pub async fn decrypt_to(
        &self,
        p: &Principal,
        key: &CryptoKeyName,
        to: &Recipient,
        what: ToTee,
        aad: &[u8],
    ) -> Result<SignedRelease> {
        let generate = matches!(what, ToTee::GenerateDataKey);
        let action = if generate {
            Action::GenerateDataKeyTo
        } else {
            Action::DecryptTo
        };
        let result = self.decrypt_to_inner(p, key, to, what, aad).await;
        let granted = |_: &SignedRelease| json!({"granted": true});
        self.decided(p, action, key, &result, granted, json!({}))
            .await?;
        result
    }

    async fn decrypt_to_inner(
        &self,
        p: &Principal,
        key: &CryptoKeyName,
        to: &Recipient,
        what: ToTee,
        aad: &[u8],
    ) -> Result<SignedRelease> {
        let generate = matches!(what, ToTee::GenerateDataKey);
        let perm = if generate {
            Permission::Encrypt
        } else {
            Permission::Decrypt
        };
        self.base.auth.authorize(p, perm, &key.to_string()).await?;
        let enc = to.enc;
        let view = self.keys.key_view(key).await?;
        let policy_text = view.key.release_policy.clone().ok_or_else(|| {
            deny(
                ErrorCode::KeyNotExportable,
                format!("{key} has no release policy, so nothing it protects can go to a TEE"),
            )
        })?;
        let policy = sovra_policy::skr::ReleasePolicy::parse(&policy_text)
            .map_err(|e| Error::internal(format!("stored release policy: {e}")))?;
        let (_, _, consume, kid, spki) = self
            .admit(p, &policy, &to.token, to.nonce.as_deref())
            .await?;
        let mut out = Map::new();
        let secret = match what {
            ToTee::GenerateDataKey => {
                let dk = sovra_crypto::SecretBytes::new(
                    sovra_crypto::random::bytes(32).map_err(|e| Error::internal(e.to_string()))?,
                );
                let sealed = self.crypto.seal(p, key, dk.expose(), aad).await?;
                out.insert(
                    "ciphertext".into(),
                    Value::from(sovra_proto::b64::encode(&sealed.ciphertext)),
                );
                out.insert("name".into(), Value::from(sealed.version));
                dk
            }
            ToTee::Decrypt { ciphertext } => {
                self.crypto.open(p, key, &ciphertext, aad).await?.plaintext
            }
        };
        let blob = keywrap::wrap(enc, &spki, secret.expose()).map_err(|e| {
            deny(
                ErrorCode::ReleaseNoTargetKey,
                format!("cannot wrap to the target key: {e}"),
            )
        })?;
        self.consume_nonce(consume, to.nonce.as_deref()).await?;
        out.insert(
            "wrapped".into(),
            json!({"header": {"kid": kid, "alg": "dir", "enc": enc.name()}, "ciphertext": jws::b64url(&blob)}),
        );
        let keys = self.attest.release_signing_keys().await?;
        let jws = keys
            .active
            .sign_bytes(
                &release_header(),
                Value::Object(out).to_string().as_bytes(),
                false,
            )
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(SignedRelease { jws })
    }
}

/// The protected header a release response carries besides `alg`/`kid`/`x5c`.
fn release_header() -> Map<String, Value> {
    let mut h = Map::new();
    h.insert(
        "typ".into(),
        crate::services::attest::signing::RELEASE_TYP.into(),
    );
    h
}

impl Release {
    /// Deletes expired release nonces; returns how many.
    pub async fn expire_nonces(&self) -> Result<usize> {
        expire(
            &*self.base.store,
            model::RELEASE_NONCES.collection(),
            self.base.now(),
        )
        .await
    }
}

/// Deletes the records of `c` whose due time has passed; returns how many.
pub(crate) async fn expire(
    store: &dyn sovra_store::Store,
    c: sovra_store::Collection,
    now: i64,
) -> Result<usize> {
    let mut n = 0;
    for r in store.due(c, now, 1000).await? {
        let mut b = WriteBatch::new();
        b.delete(c, r.name.clone(), Expect::Rev(r.rev));
        // One consumed or removed meanwhile by another node is fine.
        if store.commit(b).await.is_ok() {
            n += 1;
        }
    }
    Ok(n)
}
