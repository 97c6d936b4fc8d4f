//! Signing keys: created on first use, stored only wrapped by the HSM, published as a JWKS.
//! Rotation makes a new key active and keeps the old ones published until every token they
//! signed has expired.
//!
//! Three sets, never mixed: attestation tokens (published at `/certs`), key-release responses
//! (published at `/release/certs`, header `typ: sovra-key-release+jwt`) and management
//! statements (MAA policy tokens and audit checkpoints: published at `/certs` too, because the
//! MAA SDKs check policy tokens against it, but never accepted as an attestation token at key
//! release). A release response never verifies as an attestation token, nor a policy token or
//! checkpoint as either.

use super::super::audit::{AuditEvent, EventKind};
use super::Attestation;
use crate::error::{Error, Result};
use crate::model;
use crate::records::Writes;
use crate::services::actions::Action;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sovra_crypto::jws::{self, JwsAlg, JwsSigner};
use sovra_store::WriteBatch;
use std::sync::Arc;

/// A stored signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyRec {
    /// Key ID: base64url SHA-256 of the certificate.
    pub kid: String,
    /// `RS256`, `ES256` or `ES384`.
    pub alg: String,
    /// PKCS#8, wrapped by the HSM under the default location, bound to the kid.
    pub wrapped: String,
    /// Self-signed certificate (DER, base64) carrying the public key, for `x5c`.
    pub cert: String,
    /// When it was created.
    pub create_time: i64,
    /// When it stopped signing (None while active).
    pub retire_time: Option<i64>,
    /// When it leaves the JWKS (its last token has expired).
    pub unpublish_time: Option<i64>,
}

impl crate::model::Record for SigningKeyRec {
    fn name(&self) -> String {
        self.kid.clone()
    }
}

/// The loaded keys: the active signer and every published public key.
#[derive(Debug)]
pub struct Keys {
    /// Signs new tokens.
    pub active: JwsSigner,
    /// JWKs of every key still published (active first).
    pub published: Vec<serde_json::Value>,
}

/// Cache of the loaded keys of each use.
pub type SigningCache = crate::cache::TtlCache<KeyUse, Arc<Keys>>;

/// What a set of signing keys signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Attestation tokens.
    Attestation,
    /// Key-release responses.
    Release,
    /// MAA policy tokens and audit checkpoints.
    Management,
}

/// The `typ` header of a release response.
pub const RELEASE_TYP: &str = "sovra-key-release+jwt";

impl KeyUse {
    fn table(self) -> model::Table<SigningKeyRec> {
        match self {
            Self::Attestation => model::ATTEST_SIGNING_KEYS,
            Self::Release => model::RELEASE_SIGNING_KEYS,
            Self::Management => model::MANAGEMENT_SIGNING_KEYS,
        }
    }

    fn aad(self, kid: &str) -> Vec<u8> {
        match self {
            Self::Attestation => format!("sovra:attestation-signing-key:{kid}"),
            Self::Release => format!("sovra:release-signing-key:{kid}"),
            Self::Management => format!("sovra:management-signing-key:{kid}"),
        }
        .into_bytes()
    }

    fn common_name(self) -> &'static str {
        match self {
            Self::Attestation => "Sovra attestation token signing",
            Self::Release => "Sovra key release signing",
            Self::Management => "Sovra policy token and audit checkpoint signing",
        }
    }

    /// Audit action: a signing key of this use was created.
    fn created(self) -> Action {
        match self {
            Self::Attestation => Action::AttestationSigningKeyCreate,
            Self::Release => Action::ReleaseSigningKeyCreate,
            Self::Management => Action::ManagementSigningKeyCreate,
        }
    }

    /// Audit action: a signing key of this use was retired.
    fn retired(self) -> Action {
        match self {
            Self::Attestation => Action::AttestationSigningKeyRetire,
            Self::Release => Action::ReleaseSigningKeyRetire,
            Self::Management => Action::ManagementSigningKeyRetire,
        }
    }

    /// Resource prefix.
    fn name(self) -> &'static str {
        match self {
            Self::Attestation => "attestation",
            Self::Release => "release",
            Self::Management => "management",
        }
    }
}

fn self_signed_cert(alg: JwsAlg, pkcs8: &[u8], cn: &str) -> Result<Vec<u8>> {
    let sig_alg = match alg {
        JwsAlg::Rs256 => &rcgen::PKCS_RSA_SHA256,
        JwsAlg::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        JwsAlg::Es384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8);
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, sig_alg)
        .map_err(|e| Error::internal(format!("signing key for certificate: {e}")))?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::internal(e.to_string()))?;
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    let cert = p
        .self_signed(&kp)
        .map_err(|e| Error::internal(format!("signing certificate: {e}")))?;
    Ok(cert.der().to_vec())
}

impl Attestation {
    fn load_signer(&self, u: KeyUse, rec: &SigningKeyRec) -> Result<JwsSigner> {
        let alg = JwsAlg::parse(&rec.alg)
            .ok_or_else(|| Error::internal(format!("stored signing key alg {}", rec.alg)))?;
        let wrapped = STANDARD
            .decode(&rec.wrapped)
            .map_err(|_| Error::internal("stored signing key is not base64"))?;
        let cert = STANDARD
            .decode(&rec.cert)
            .map_err(|_| Error::internal("stored signing certificate is not base64"))?;
        let pkcs8 =
            self.base
                .hsm
                .unwrap(&self.base.cfg.default_location, &u.aad(&rec.kid), &wrapped)?;
        JwsSigner::load(alg, pkcs8.expose(), rec.kid.clone(), &[cert])
            .map_err(|e| Error::internal(format!("loading signing key: {e}")))
    }

    async fn create_signing_key(
        &self,
        u: KeyUse,
        alg: JwsAlg,
        retire: Vec<(SigningKeyRec, u64)>,
    ) -> Result<()> {
        let pkcs8 = jws::generate(alg).map_err(|e| Error::internal(e.to_string()))?;
        let cert = self_signed_cert(alg, pkcs8.expose(), u.common_name())?;
        let kid =
            jws::b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert).as_ref());
        let wrapped = self.base.hsm.wrap(
            &self.base.cfg.default_location,
            &u.aad(&kid),
            pkcs8.expose(),
        )?;
        let now = self.base.now();
        let rec = SigningKeyRec {
            kid: kid.clone(),
            alg: alg.name().into(),
            wrapped: STANDARD.encode(wrapped),
            cert: STANDARD.encode(&cert),
            create_time: now,
            retire_time: None,
            unpublish_time: None,
        };
        let mut b = WriteBatch::new();
        b.create(u.table(), &rec)?;
        let mut detail = serde_json::json!({"kid": kid, "alg": alg.name()});
        if !retire.is_empty()
            && let Some(d) = detail.as_object_mut()
        {
            let kids: Vec<&str> = retire.iter().map(|(r, _)| r.kid.as_str()).collect();
            d.insert("retiredKids".into(), serde_json::json!(kids));
        }
        for (mut old, rev) in retire {
            old.retire_time = Some(now);
            old.unpublish_time = Some(now + self.base.cfg.attest.token_ttl_secs as i64 + 300);
            b.update(u.table(), &old, rev)?;
        }
        b.audit(
            AuditEvent::new(now, EventKind::System, u.created())
                .resource(format!("{}/signingKeys/{kid}", u.name()))
                .detail(detail)
                .body(),
        );
        self.base.store.commit(b).await?;
        self.signing.remove(&u);
        Ok(())
    }

    async fn signing_records(&self, u: KeyUse) -> Result<Vec<(SigningKeyRec, u64)>> {
        let rows = crate::records::Records::of(&*self.base.store)
            .scan(u.table(), None, 1000)
            .await?;
        Ok(rows.into_iter().map(|r| (r.value, r.rev)).collect())
    }

    /// The loaded signing keys, creating the first one (RS256 by default) if there is none.
    ///
    /// Nodes sharing a store may create a first key at the same time. They converge: the newest
    /// unretired key (ties broken by kid) is active everywhere, and any other unretired key is
    /// retired here, staying published until the tokens it may have signed have expired.
    pub async fn signing_keys(&self) -> Result<Arc<Keys>> {
        self.keys_for(KeyUse::Attestation).await
    }

    /// The loaded release-response signing keys (created on first use, like the token keys).
    pub async fn release_signing_keys(&self) -> Result<Arc<Keys>> {
        self.keys_for(KeyUse::Release).await
    }

    /// The loaded management-statement signing keys (MAA policy tokens, audit checkpoints).
    pub async fn management_signing_keys(&self) -> Result<Arc<Keys>> {
        self.keys_for(KeyUse::Management).await
    }

    async fn keys_for(&self, u: KeyUse) -> Result<Arc<Keys>> {
        if let Some(k) = self.signing.get(&u) {
            return Ok(k);
        }
        let mut recs = self.signing_records(u).await?;
        if !recs.iter().any(|(r, _)| r.retire_time.is_none()) {
            match self
                .create_signing_key(u, self.base.cfg.attest.token_alg, Vec::new())
                .await
            {
                Ok(())
                | Err(Error {
                    code: sovra_proto::ErrorCode::AlreadyExists | sovra_proto::ErrorCode::Conflict,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
            recs = self.signing_records(u).await?;
        }
        if recs.iter().filter(|(r, _)| r.retire_time.is_none()).count() > 1 {
            self.retire_losers(u, &recs).await?;
            recs = self.signing_records(u).await?;
        }
        let now = self.base.now();
        recs.sort_by(|(a, _), (b, _)| (b.create_time, &b.kid).cmp(&(a.create_time, &a.kid)));
        let active = recs
            .iter()
            .find(|(r, _)| r.retire_time.is_none())
            .ok_or_else(|| Error::internal("no active token signing key"))?;
        let active = self.load_signer(u, &active.0)?;
        let mut published = vec![active.jwk()];
        for (r, _) in &recs {
            if r.kid != active.kid() && r.unpublish_time.is_none_or(|t| t > now) {
                published.push(self.load_signer(u, r)?.jwk());
            }
        }
        let keys = Arc::new(Keys { active, published });
        self.signing.put(u, keys.clone());
        Ok(keys)
    }

    /// Retires every unretired key but the winner (newest, then greatest kid). A conflict means
    /// another node did it first.
    async fn retire_losers(&self, u: KeyUse, recs: &[(SigningKeyRec, u64)]) -> Result<()> {
        let mut live: Vec<_> = recs
            .iter()
            .filter(|(r, _)| r.retire_time.is_none())
            .collect();
        live.sort_by(|(a, _), (b, _)| (b.create_time, &b.kid).cmp(&(a.create_time, &a.kid)));
        let Some(((winner, _), losers)) = live.split_first() else {
            return Ok(());
        };
        let now = self.base.now();
        let mut b = WriteBatch::new();
        for (old, rev) in losers {
            let mut old = old.clone();
            old.retire_time = Some(now);
            old.unpublish_time = Some(now + self.base.cfg.attest.token_ttl_secs as i64 + 300);
            b.update(u.table(), &old, *rev)?;
            b.audit(
                AuditEvent::new(now, EventKind::System, u.retired())
                    .resource(format!("{}/signingKeys/{}", u.name(), old.kid))
                    .detail(serde_json::json!({
                        "kid": old.kid,
                        "activeKid": winner.kid,
                        "reason": "another node created a signing key at the same time",
                    }))
                    .body(),
            );
        }
        match self.base.store.commit(b).await.map_err(Error::from) {
            Ok(_)
            | Err(Error {
                code: sovra_proto::ErrorCode::Conflict | sovra_proto::ErrorCode::AlreadyExists,
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Rotates the token signing key: a new key of `alg` signs from now on; the old one stays
    /// in the JWKS until its tokens have expired.
    pub async fn rotate_signing_key(
        &self,
        p: &super::super::auth::Principal,
        alg: Option<JwsAlg>,
    ) -> Result<(String, JwsAlg)> {
        self.base
            .auth
            .authorize(
                p,
                crate::services::authz::Permission::PolicyManage,
                "attestation",
            )
            .await?;
        let recs = self.signing_records(KeyUse::Attestation).await?;
        let current: Vec<_> = recs
            .into_iter()
            .filter(|(r, _)| r.retire_time.is_none())
            .collect();
        let alg = alg.unwrap_or(self.base.cfg.attest.token_alg);
        self.create_signing_key(KeyUse::Attestation, alg, current)
            .await?;
        let keys = self.signing_keys().await?;
        Ok((keys.active.kid().to_string(), alg))
    }

    /// The JWKS document at `/certs`: the attestation token keys, then the management
    /// statement keys (which the MAA SDKs check policy tokens against).
    pub async fn jwks(&self) -> Result<serde_json::Value> {
        let tokens = self.signing_keys().await?;
        let management = self.management_signing_keys().await?;
        let keys: Vec<&serde_json::Value> = tokens
            .published
            .iter()
            .chain(&management.published)
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// The published release-response keys as a JWKS document.
    pub async fn release_jwks(&self) -> Result<serde_json::Value> {
        let keys = self.release_signing_keys().await?;
        Ok(serde_json::json!({ "keys": keys.published }))
    }
}
