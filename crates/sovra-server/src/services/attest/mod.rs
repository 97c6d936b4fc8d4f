//! The attestation service: evidence in, a signed token out.
//!
//! ```text
//! request ─► Submission ─► Verifier (sovra-attest) ─► bindings (runtime data, init data)
//!         ─► claims (native + MAA names) ─► provider policy ─► JWT signed by the HSM-held key
//! ```
//! Every attestation, passed or failed, is audited.

pub mod activation;
pub mod claims;
pub mod collateral;
pub mod kds;
pub mod pcs;
pub mod policy;
pub mod providers;
pub mod request;
pub mod signers;
pub mod signing;

use super::Sovra;
use super::audit::{AuditEvent, EventKind};
use crate::error::{Error, Result};
use serde_json::{Map, Value, json};
use sovra_attest::{EvidenceInput, EvidenceType, VerifiedClaims, VerifyContext, verifier_for};
use sovra_crypto::jws::JwsAlg;
use sovra_proto::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

/// Attestation settings.
#[derive(Debug, Clone)]
pub struct AttestConfig {
    /// Token lifetime.
    pub token_ttl_secs: u64,
    /// Signing algorithm of new keys.
    pub token_alg: JwsAlg,
    /// Base URL (issuer prefix, JWKS location).
    pub public_url: String,
    /// Clock skew allowed on a presented token's `nbf`/`exp`, seconds.
    pub clock_skew_secs: i64,
    /// AMD KDS (or mirror) base URL to fetch missing VCEKs from; `None`: never fetch.
    pub amd_kds_url: Option<String>,
    /// CA certificates (PEM) for HTTPS fetches; `None`: the system bundle.
    pub fetch_ca_pem: Option<Vec<u8>>,
    /// Intel PCS/PCCS base URL to fetch missing collateral from; `None`: never fetch.
    pub intel_pcs_url: Option<String>,
    /// Where the Intel SGX root CA CRL is (default: the PCCS route under `intel_pcs_url`).
    pub intel_root_crl_url: Option<String>,
}

impl Default for AttestConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: 8 * 3600,
            token_alg: JwsAlg::Rs256,
            public_url: "https://127.0.0.1:8443".into(),
            clock_skew_secs: 60,
            amd_kds_url: None,
            fetch_ca_pem: None,
            intel_pcs_url: None,
            intel_root_crl_url: None,
        }
    }
}

/// Caches of the attestation service.
#[derive(Debug)]
pub struct AttestState {
    /// Token signing keys.
    pub signing: signing::SigningCache,
    /// Collateral and trust anchors.
    pub collateral: collateral::CollateralCache,
    /// Compiled policies by provider and type.
    pub policies: policy::PolicyCache,
    /// Reference-value sets.
    pub refvalues: Single<Vec<sovra_proto::attest::ReferenceValues>>,
    /// Recent AMD KDS fetches.
    pub kds: kds::FetchLimiter,
    /// Recent Intel PCS fetches.
    pub pcs: kds::FetchLimiter,
    /// Background refreshes of fetched Intel collateral.
    pub pcs_refresh: pcs::RefreshMemo,
}

/// One cached value with a time to live.
#[derive(Debug)]
pub struct Single<T> {
    ttl: Duration,
    inner: std::sync::RwLock<Option<(std::sync::Arc<T>, std::time::Instant)>>,
}

impl<T> Single<T> {
    /// Empty.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: std::sync::RwLock::new(None),
        }
    }

    /// The value, if fresh.
    pub fn get(&self) -> Option<std::sync::Arc<T>> {
        let g = self.inner.read().ok()?;
        let (v, at) = g.as_ref()?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// Stores a value.
    pub fn put(&self, v: std::sync::Arc<T>) {
        if let Ok(mut g) = self.inner.write() {
            *g = Some((v, std::time::Instant::now()));
        }
    }

    /// Drops the value.
    pub fn invalidate(&self) {
        if let Ok(mut g) = self.inner.write() {
            *g = None;
        }
    }
}

impl AttestState {
    /// Empty caches.
    pub fn new(ttl: Duration) -> Self {
        Self {
            signing: Default::default(),
            collateral: collateral::CollateralCache::new(ttl),
            policies: policy::PolicyCache::new(ttl),
            refvalues: Single::new(ttl),
            kds: Default::default(),
            pcs: Default::default(),
            pcs_refresh: Default::default(),
        }
    }
}

/// Maps a verifier error to the service error with the same stable code.
pub fn attest_error(e: &sovra_attest::AttestError) -> Error {
    let code = ErrorCode::from_wire(e.code()).unwrap_or(ErrorCode::AttestMalformed);
    Error::new(code, e.to_string())
}

/// The outcome of one attestation.
#[derive(Debug)]
pub struct Attested {
    /// The token (signed, or unsigned for a draft policy).
    pub token: String,
    /// The token's claims.
    pub claims: Map<String, Value>,
}

impl Sovra {
    /// Verifies `sub` as `kind` evidence for `provider` and returns a token.
    pub async fn attest(
        &self,
        provider: &str,
        kind: EvidenceType,
        sub: request::Submission,
        maa_type: Option<&str>,
    ) -> Result<Attested> {
        let started = std::time::Instant::now();
        let sub = Arc::new(sub);
        let result = self.attest_inner(provider, kind, &sub, maa_type).await;
        let mut ev = AuditEvent::new(self.now(), EventKind::Decision, "attestation.attest")
            .resource(format!("attestation/providers/{provider}"));
        let mut detail = Map::new();
        detail.insert("evidenceType".into(), Value::from(kind.as_str()));
        detail.insert(
            "micros".into(),
            Value::from(started.elapsed().as_micros() as u64),
        );
        match &result {
            Ok(a) => {
                detail.insert(
                    "jti".into(),
                    a.claims.get("jti").cloned().unwrap_or(Value::Null),
                );
                detail.insert(
                    "policyHash".into(),
                    a.claims
                        .get("x-ms-policy-hash")
                        .cloned()
                        .unwrap_or(Value::Null),
                );
            }
            Err(e) => {
                ev = ev.denied(e.code.as_str());
                detail.insert("reason".into(), Value::from(e.message.clone()));
            }
        }
        self.audit.record(ev.detail(Value::Object(detail))).await?;
        result
    }

    async fn attest_inner(
        &self,
        provider: &str,
        kind: EvidenceType,
        sub: &Arc<request::Submission>,
        maa_type: Option<&str>,
    ) -> Result<Attested> {
        let prov = self.provider(provider).await?;
        let activation = match kind {
            EvidenceType::Tpm => serde_json::from_slice::<Value>(&sub.evidence)
                .ok()
                .and_then(|v| v.get("activation").cloned()),
            _ => None,
        };
        let verified = match activation {
            Some(a) => self.verify_activated_tpm(&sub.evidence, &a, sub).await?,
            None => self.verify_evidence(kind, sub).await?,
        };
        if let Some(rt) = &sub.runtime {
            request::check_binding("runtime data", verified.report_data(), &rt.bytes)?;
        }
        if let Some(it) = &sub.init_time {
            claims::check_init_time(&verified, &it.bytes)?;
        }
        let mut incoming = claims::normalise(&verified, maa_type);
        if let Some(rt) = &sub.runtime {
            match &rt.json {
                Some(j) => incoming.insert("x-ms-runtime".into(), j.clone()),
                None => incoming.insert(
                    "x-ms-runtime-data".into(),
                    Value::from(sovra_attest::hex::encode(&rt.bytes)),
                ),
            };
        }
        if let Some(it) = &sub.init_time
            && let Some(j) = &it.json
        {
            incoming.insert("x-ms-inittime".into(), j.clone());
        }
        let outcome = match &sub.draft_policy {
            Some(text) => {
                let text = text.clone();
                let compiled = self
                    .work
                    .run(move || policy::Compiled::compile(policy::Language::Maa, &text))
                    .await??;
                Arc::new(compiled).appraise(&incoming, self).await?
            }
            None => {
                self.policy_for(&prov.name, kind)
                    .await?
                    .appraise(&incoming, self)
                    .await?
            }
        };
        if !outcome.permitted {
            return Err(Error::new(
                ErrorCode::AttestPolicyDenied,
                format!(
                    "the evidence is genuine but the {kind} policy of provider {provider:?} did not permit it{}",
                    outcome.reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            ));
        }
        let now = self.now();
        let mut claims = outcome.claims;
        claims::azure_compliance(kind, &mut claims);
        claims.insert("iss".into(), Value::from(prov.issuer.clone()));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("nbf".into(), Value::from(now));
        claims.insert(
            "exp".into(),
            Value::from(now + self.cfg.attest.token_ttl_secs as i64),
        );
        let jti = sovra_crypto::random::hex_id(16).map_err(|e| Error::internal(e.to_string()))?;
        claims.insert("jti".into(), Value::from(jti));
        claims.insert("x-ms-ver".into(), Value::from("1.0"));
        claims.insert("x-ms-policy-hash".into(), Value::from(outcome.policy_hash));
        if let Some(n) = &sub.nonce_claim {
            claims.insert("nonce".into(), n.clone());
        }
        let body = Value::Object(claims);
        let token = if sub.draft_policy.is_some() {
            // MAA: a draft policy yields an unsigned token.
            let enc =
                |v: &Value| sovra_crypto::jws::b64url(&serde_json::to_vec(v).unwrap_or_default());
            format!(
                "{}.{}.",
                enc(&json!({"alg": "none", "typ": "JWT"})),
                enc(&body)
            )
        } else {
            let keys = self.signing_keys().await?;
            let mut extra = Map::new();
            extra.insert(
                "jku".into(),
                Value::from(format!("{}/certs", self.public_url())),
            );
            keys.active
                .sign_jwt(&body, &extra)
                .map_err(|e| Error::internal(format!("signing the token: {e}")))?
        };
        let Value::Object(claims) = body else {
            return Err(Error::internal("token body is not an object"));
        };
        Ok(Attested { token, claims })
    }

    /// Runs the verifier for `kind` with the collateral store's trust, at the current time.
    pub async fn verify_evidence(
        &self,
        kind: EvidenceType,
        sub: &Arc<request::Submission>,
    ) -> Result<VerifiedClaims> {
        use sovra_attest::AttestError;
        let loaded = self.loaded_collateral().await?;
        let needs_intel = matches!(
            kind,
            EvidenceType::Tdx | EvidenceType::Sgx | EvidenceType::AzTdxVtpm
        );
        let source = if sub.collateral.is_some() || !needs_intel || loaded.intel.is_empty() {
            Collateral::FromRequest
        } else {
            Collateral::Stored
        };
        let first = self.run_verifier(kind, sub, loaded, source).await?;
        // The quote inside (Azure TDX evidence carries its TD quote in the JSON).
        let quote = || match kind {
            EvidenceType::AzTdxVtpm => sovra_attest::azure::hcl::decode(&sub.evidence)
                .ok()
                .and_then(|ev| ev.td_quote),
            _ => Some(sub.evidence.clone()),
        };
        match first {
            Err(AttestError::CollateralMissing(m)) if kind == EvidenceType::SevSnp => {
                match self.fetch_vcek(&sub.evidence).await {
                    Ok(true) => {
                        let loaded = self.loaded_collateral().await?;
                        self.run_verifier(kind, sub, loaded, Collateral::FromRequest)
                            .await?
                            .map_err(|e| attest_error(&e))
                    }
                    Ok(false) => Err(attest_error(&AttestError::CollateralMissing(m))),
                    Err(why) => Err(attest_error(&AttestError::CollateralMissing(format!(
                        "{m} (fetching it from AMD KDS failed: {why})"
                    )))),
                }
            }
            // The VCEK came with the evidence but its ASK is neither there nor stored.
            Err(AttestError::ChainInvalid(m))
                if kind == EvidenceType::SevSnp && self.fetch_ask_for(&sub.evidence).await =>
            {
                let loaded = self.loaded_collateral().await?;
                self.run_verifier(kind, sub, loaded, Collateral::FromRequest)
                    .await?
                    .map_err(|e| attest_error(&e))
                    .inspect_err(|_| {
                        tracing::debug!(first = %m, "SNP chain still invalid after fetching the ASK");
                    })
            }
            // Intel collateral missing or out of its window: a PCS may have current collateral.
            Err(e @ (AttestError::CollateralMissing(_) | AttestError::Expired(_)))
                if needs_intel && sub.collateral.is_none() =>
            {
                let fetched = match &quote() {
                    Some(q) => self.fetch_intel(q).await,
                    None => Err("the evidence carries no TD quote".into()),
                };
                match fetched {
                    Ok(Some(bundle)) => {
                        let loaded = self.loaded_collateral().await?;
                        self.run_verifier(kind, sub, loaded, Collateral::Fetched(bundle))
                            .await?
                            .map_err(|e| attest_error(&e))
                    }
                    Ok(None) => Err(attest_error(&e)),
                    Err(why) => Err(attest_error(&match e {
                        AttestError::Expired(m) => AttestError::Expired(format!(
                            "{m} (fetching current collateral from the PCS failed: {why})"
                        )),
                        AttestError::CollateralMissing(m) => AttestError::CollateralMissing(
                            format!("{m} (fetching it from the PCS failed: {why})"),
                        ),
                        other => other,
                    })),
                }
            }
            other => other.map_err(|e| attest_error(&e)),
        }
    }

    /// Runs one verification on the work pool (off the async runtime). The outer error is the
    /// pool's (overloaded), the inner one the verifier's.
    async fn run_verifier(
        &self,
        kind: EvidenceType,
        sub: &Arc<request::Submission>,
        loaded: Arc<collateral::Loaded>,
        source: Collateral,
    ) -> Result<std::result::Result<VerifiedClaims, sovra_attest::AttestError>> {
        let sub = sub.clone();
        let now = self.now();
        self.work
            .run(move || {
                let chain: Vec<&[u8]> = sub.cert_chain.iter().map(Vec::as_slice).collect();
                let ctx = VerifyContext {
                    now,
                    trust: &loaded.trust,
                };
                let verifier = verifier_for(kind);
                fn input<'a>(
                    sub: &'a request::Submission,
                    chain: &'a [&'a [u8]],
                    collateral: Option<&'a [u8]>,
                ) -> EvidenceInput<'a> {
                    EvidenceInput {
                        evidence: &sub.evidence,
                        cert_chain: chain,
                        collateral,
                        event_log: sub.event_log.as_deref(),
                        nonce: sub.expected_nonce.as_deref(),
                    }
                }
                match source {
                    Collateral::FromRequest => {
                        verifier.verify(&input(&sub, &chain, sub.collateral.as_deref()), &ctx)
                    }
                    Collateral::Fetched(bundle) => {
                        verifier.verify(&input(&sub, &chain, Some(&bundle)), &ctx)
                    }
                    Collateral::Stored => {
                        verify_with_stored(kind, &sub.evidence, &loaded, |bundle| {
                            verifier.verify(&input(&sub, &chain, Some(bundle)), &ctx)
                        })
                    }
                }
            })
            .await
    }
}

/// Where a verification takes its Intel collateral from.
enum Collateral {
    /// The request's own (or none).
    FromRequest,
    /// The store's bundles for the quote's FMSPC, newest first.
    Stored,
    /// A bundle just fetched from the PCS.
    Fetched(Vec<u8>),
}

/// Tries the stored bundles for the quote's FMSPC, newest first; keeps the most specific
/// failure if none fits.
fn verify_with_stored<'a>(
    kind: EvidenceType,
    evidence: &[u8],
    loaded: &'a collateral::Loaded,
    mut verify: impl FnMut(&'a [u8]) -> std::result::Result<VerifiedClaims, sovra_attest::AttestError>,
) -> std::result::Result<VerifiedClaims, sovra_attest::AttestError> {
    use sovra_attest::AttestError;
    let quote = match kind {
        EvidenceType::AzTdxVtpm => sovra_attest::azure::hcl::decode(evidence)
            .ok()
            .and_then(|ev| ev.td_quote),
        _ => Some(evidence.to_vec()),
    };
    let fmspc = quote
        .and_then(|q| sovra_attest::dcap::pcs::needs(&q).ok())
        .map(|n| n.fmspc);
    let mut last = Err(AttestError::CollateralMissing(match &fmspc {
        Some(f) => format!(
            "the collateral store has no Intel collateral for this platform (FMSPC {f}): import it with `sovra attestation collateral import --kind intel FILE`"
        ),
        None => "no Intel collateral".into(),
    }));
    for bundle in loaded.intel_for(fmspc.as_deref()) {
        match verify(bundle) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let missing = matches!(e, AttestError::CollateralMissing(_));
                if last
                    .as_ref()
                    .is_err_and(|l| matches!(l, AttestError::CollateralMissing(_)) || !missing)
                {
                    last = Err(e);
                }
            }
        }
    }
    last
}
