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
pub mod guest;
pub mod kds;
pub mod pcs;
pub mod policy;
pub mod providers;
pub mod request;
pub mod signers;
pub mod signing;
pub mod tpm_protocol;

use super::Base;
use super::audit::{AuditEvent, EventKind};
use crate::error::{Error, Result};
use crate::services::actions::Action;
use serde_json::{Map, Value, json};
use sovra_attest::{EvidenceInput, EvidenceType, VerifiedClaims, VerifyContext, verifier_for};
use sovra_crypto::jws::JwsAlg;
use sovra_proto::ErrorCode;
use std::sync::Arc;

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
    /// Fetch external issuers' JWKS from loopback, link-local and private addresses too.
    pub jwks_allow_private: bool,
    /// Intel collateral (TCB info) older than this `tcbEvaluationDataNumber` is refused.
    pub min_tcb_evaluation_data_number: u64,
    /// The minimum SEV-SNP REPORTED_TCB per processor generation for compliance.
    pub snp_min_tcb: sovra_attest::snp::minimum::MinimumTcbs,
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
            jwks_allow_private: false,
            min_tcb_evaluation_data_number: 0,
            snp_min_tcb: sovra_attest::snp::minimum::MinimumTcbs::DEFAULT,
        }
    }
}

/// The attestation service: evidence verification, policies, providers, collateral and the
/// signing keys of tokens, release responses and management statements.
#[derive(Debug)]
pub struct Attestation {
    base: Base,
    /// Verification and policy evaluation run here, off the async runtime.
    work: crate::work::WorkPool,
    /// Signing keys of each use (tokens, release responses, management statements).
    signing: signing::SigningCache,
    /// Collateral and trust anchors.
    collateral: collateral::CollateralCache,
    /// Compiled policies by provider and type.
    policies: policy::PolicyCache,
    /// Reference-value sets.
    refvalues: crate::cache::TtlCell<Arc<Vec<sovra_proto::attest::ReferenceValues>>>,
    /// Recent AMD KDS fetches.
    kds: kds::FetchLimiter,
    /// Recent Intel PCS fetches.
    pcs: kds::FetchLimiter,
    /// Background refreshes of fetched Intel collateral.
    pcs_refresh: pcs::RefreshMemo,
}

impl Attestation {
    /// The service.
    pub fn new(base: Base) -> Self {
        let ttl = base.cfg.cache_ttl;
        Self {
            work: crate::work::WorkPool::new(base.cfg.work_threads, base.cfg.work_queue),
            signing: signing::SigningCache::new(ttl, 8),
            collateral: collateral::CollateralCache::new(ttl),
            policies: policy::PolicyCache::new(ttl),
            refvalues: crate::cache::TtlCell::new(ttl),
            kds: Default::default(),
            pcs: Default::default(),
            pcs_refresh: Default::default(),
            base,
        }
    }

    /// The work pool (its queue feeds `/metrics`).
    pub fn work(&self) -> &crate::work::WorkPool {
        &self.work
    }
}

/// Maps a verifier error to the service error with the same stable code.
pub fn attest_error(e: &sovra_attest::AttestError) -> Error {
    Error::new(e.code(), e.to_string())
}

/// The outcome of one attestation.
#[derive(Debug)]
pub struct Attested {
    /// The token (signed, or unsigned for a draft policy).
    pub token: String,
    /// The token's claims.
    pub claims: Map<String, Value>,
    /// For Azure guest evidence: the vTPM key (RSA n, e) the token is to be sealed to, as the
    /// verifier established it.
    pub sealing_key: Option<(Vec<u8>, Vec<u8>)>,
}

impl Attestation {
    /// Verifies `sub` as `kind` evidence for `provider` and returns a token.
    pub async fn attest(
        &self,
        provider: &str,
        kind: EvidenceType,
        sub: request::Submission,
    ) -> Result<Attested> {
        let started = std::time::Instant::now();
        let sub = Arc::new(sub);
        let result = self.attest_inner(provider, kind, &sub).await;
        let mut ev = AuditEvent::new(self.base.now(), EventKind::Decision, Action::Attest)
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
        self.base
            .audit
            .record(ev.detail(Value::Object(detail)))
            .await?;
        result
    }

    async fn attest_inner(
        &self,
        provider: &str,
        kind: EvidenceType,
        sub: &Arc<request::Submission>,
    ) -> Result<Attested> {
        let prov = self.provider(provider).await?;
        // Everything the token needs is loaded first (all cached), so that verification,
        // appraisal and signing run as one job on the work pool.
        let policy = match &sub.draft_policy {
            Some(text) => Policy::Draft(text.clone()),
            None => Policy::Compiled(self.policy_for(&prov.name, kind).await?),
        };
        let keys = match sub.draft_policy {
            Some(_) => None,
            None => Some(self.signing_keys().await?),
        };
        let issuing = Arc::new(Issuing {
            provider: prov.name.clone(),
            issuer: prov.issuer.clone(),
            kind,
            policy,
            refsets: self.reference_value_sets_cached().await?,
            keys,
            now: self.base.now(),
            ttl: self.base.cfg.attest.token_ttl_secs,
            jku: format!("{}/certs", self.base.public_url()),
            min_tcb_evaluation_data_number: self.base.cfg.attest.min_tcb_evaluation_data_number,
            snp_min_tcb: self.base.cfg.attest.snp_min_tcb,
        });
        // MAA's TPM protocol: the request names a challenge this service issued.
        let sub = &match &sub.tpm_context {
            Some((context, claimed)) => {
                let challenge = self.take_tpm_context(context, claimed).await?;
                Arc::new(request::Submission {
                    expected_nonce: Some(challenge),
                    tpm_context: None,
                    ..(**sub).clone()
                })
            }
            None => sub.clone(),
        };
        let activation = verifier_for(kind).activation(&sub.evidence);
        if let Some(a) = activation {
            let verified = self.verify_activated_tpm(&sub.evidence, &a, sub).await?;
            let sub = sub.clone();
            return self
                .work
                .run(move || issue(&issuing, &verified, &sub))
                .await?;
        }
        // The common case: the evidence verifies with what the request and the store hold.
        let loaded = self.loaded_collateral().await?;
        let source = collateral_source(kind, sub, &loaded);
        let first = {
            let (sub, loaded, issuing) = (sub.clone(), loaded.clone(), issuing.clone());
            let now = self.base.now();
            self.work
                .run(move || {
                    verify_now(kind, &sub, &loaded, source, now)
                        .map(|verified| issue(&issuing, &verified, &sub))
                })
                .await?
        };
        match first {
            Ok(done) => done,
            // Missing or stale collateral that a vendor service may provide: fetch, verify again.
            Err(e) => {
                let verified = self.verify_after_fetching(kind, sub, e).await?;
                let sub = sub.clone();
                self.work
                    .run(move || issue(&issuing, &verified, &sub))
                    .await?
            }
        }
    }

    /// Runs the verifier for `kind` with the collateral store's trust, at the current time
    /// (fetching from vendor services when they are configured and the first try lacks
    /// collateral).
    pub async fn verify_evidence(
        &self,
        kind: EvidenceType,
        sub: &Arc<request::Submission>,
    ) -> Result<VerifiedClaims> {
        let loaded = self.loaded_collateral().await?;
        let source = collateral_source(kind, sub, &loaded);
        match self.run_verifier(kind, sub, loaded, source).await? {
            Ok(v) => Ok(v),
            Err(e) => self.verify_after_fetching(kind, sub, e).await,
        }
    }

    /// After a first verification failed with `first`: fetches what a vendor service may
    /// provide (an SNP VCEK or ASK from AMD KDS, Intel collateral from a PCS) and verifies
    /// again; otherwise returns `first` as the service error.
    async fn verify_after_fetching(
        &self,
        kind: EvidenceType,
        sub: &Arc<request::Submission>,
        first: sovra_attest::AttestError,
    ) -> Result<VerifiedClaims> {
        use sovra_attest::AttestError;
        let source = verifier_for(kind).vendor_source();
        let needs_intel = source == sovra_attest::VendorSource::IntelPcs;
        match first {
            AttestError::CollateralMissing(m) if source == sovra_attest::VendorSource::AmdKds => {
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
            // The VCEK came with the evidence but its ASK is neither built in nor stored.
            AttestError::ChainInvalid(m)
                if source == sovra_attest::VendorSource::AmdKds
                    && self.fetch_ask_for(&sub.evidence).await =>
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
            e @ (AttestError::CollateralMissing(_) | AttestError::Expired(_))
                if needs_intel && sub.collateral.is_none() =>
            {
                let fetched = match &verifier_for(kind).intel_quote(&sub.evidence) {
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
            other => Err(attest_error(&other)),
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
        let now = self.base.now();
        self.work
            .run(move || verify_now(kind, &sub, &loaded, source, now))
            .await
    }
}

/// Where the first verification takes Intel collateral from.
fn collateral_source(
    kind: EvidenceType,
    sub: &request::Submission,
    loaded: &collateral::Loaded,
) -> Collateral {
    let needs_intel = verifier_for(kind).vendor_source() == sovra_attest::VendorSource::IntelPcs;
    if !needs_intel || loaded.intel.is_empty() {
        return Collateral::FromRequest;
    }
    let Some(sent) = &sub.collateral else {
        return Collateral::Stored;
    };
    // The attester does not choose: collateral it sends is used only when it is at least as
    // new as the newest the store holds for its FMSPC (older Intel-signed collateral, still in
    // its window, would hide a TCB recovery or a revocation).
    match sovra_attest::dcap::collateral::summary(sent) {
        Ok(s)
            if loaded
                .newest_intel(&s.fmspc)
                .is_some_and(|newest| newest > s.tcb_evaluation_data_number) =>
        {
            Collateral::Stored
        }
        _ => Collateral::FromRequest,
    }
}

/// One verification (CPU only: run it on the work pool).
fn verify_now(
    kind: EvidenceType,
    sub: &request::Submission,
    loaded: &collateral::Loaded,
    source: Collateral,
    now: i64,
) -> std::result::Result<VerifiedClaims, sovra_attest::AttestError> {
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
            verifier.verify(&input(sub, &chain, sub.collateral.as_deref()), &ctx)
        }
        Collateral::Fetched(bundle) => verifier.verify(&input(sub, &chain, Some(&bundle)), &ctx),
        Collateral::Stored => verify_with_stored(kind, &sub.evidence, loaded, |bundle| {
            verifier.verify(&input(sub, &chain, Some(bundle)), &ctx)
        }),
    }
}

/// The policy a token is issued under.
enum Policy {
    /// The provider's (compiled, cached).
    Compiled(Arc<policy::Compiled>),
    /// An MAA draft policy from the request (compiled in the job; the token is unsigned).
    Draft(String),
}

/// What issuing a token needs besides the verified claims, loaded before the job.
struct Issuing {
    provider: String,
    issuer: String,
    kind: EvidenceType,
    policy: Policy,
    refsets: Arc<Vec<sovra_proto::attest::ReferenceValues>>,
    keys: Option<Arc<signing::Keys>>,
    now: i64,
    ttl: u64,
    jku: String,
    min_tcb_evaluation_data_number: u64,
    snp_min_tcb: sovra_attest::snp::minimum::MinimumTcbs,
}

/// Checks the bindings, appraises the claims under the policy and signs the token (CPU only:
/// run it on the work pool).
fn issue(it: &Issuing, verified: &VerifiedClaims, sub: &request::Submission) -> Result<Attested> {
    claims::check_tcb_evaluation(verified, it.min_tcb_evaluation_data_number)?;
    if let Some(rt) = &sub.runtime {
        request::check_binding("runtime data", verified.report_data(), &rt.bytes)?;
    }
    if let Some(init) = &sub.init_time {
        claims::check_init_time(verified, &init.bytes)?;
    }
    let mut incoming = claims::normalise(verified);
    claims::snp_minimum_tcb(verified, &it.snp_min_tcb, &mut incoming);
    if let Some(rt) = &sub.runtime {
        match &rt.json {
            Some(j) => incoming.insert("x-ms-runtime".into(), j.clone()),
            None => {
                // MAA names binary runtime data of an enclave its "enclave held data".
                if claims::attestation_type(it.kind) == "sgx" {
                    incoming.insert(
                        "x-ms-sgx-ehd".into(),
                        Value::from(sovra_crypto::jws::b64url(&rt.bytes)),
                    );
                }
                incoming.insert(
                    "x-ms-runtime-data".into(),
                    Value::from(sovra_proto::hex::encode(&rt.bytes)),
                )
            }
        };
    }
    if let Some(init) = &sub.init_time
        && let Some(j) = &init.json
    {
        incoming.insert("x-ms-inittime".into(), j.clone());
    }
    let outcome = match &it.policy {
        Policy::Compiled(c) => c.appraise(&incoming, &it.refsets)?,
        Policy::Draft(text) => policy::Compiled::compile(policy::Language::Maa, text)?
            .appraise(&incoming, &it.refsets)?,
    };
    let kind = it.kind;
    if !outcome.permitted {
        return Err(Error::new(
            ErrorCode::AttestPolicyDenied,
            format!(
                "the evidence is genuine but the {kind} policy of provider {:?} did not permit it{}",
                it.provider,
                outcome.reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        ));
    }
    let now = it.now;
    let mut claims = outcome.claims;
    verifier_for(kind).after_policy(&mut claims);
    claims.insert("iss".into(), Value::from(it.issuer.clone()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("nbf".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now + it.ttl as i64));
    let jti = sovra_crypto::random::hex_id(16).map_err(|e| Error::internal(e.to_string()))?;
    claims.insert("jti".into(), Value::from(jti));
    claims.insert("x-ms-ver".into(), Value::from("1.0"));
    claims.insert("x-ms-policy-hash".into(), Value::from(outcome.policy_hash));
    if let Some(n) = &sub.nonce_claim {
        claims.insert("nonce".into(), n.clone());
    }
    let body = Value::Object(claims);
    let token = match &it.keys {
        // MAA: a draft policy yields an unsigned token.
        None => {
            let enc =
                |v: &Value| sovra_crypto::jws::b64url(&serde_json::to_vec(v).unwrap_or_default());
            format!(
                "{}.{}.",
                enc(&json!({"alg": "none", "typ": "JWT"})),
                enc(&body)
            )
        }
        Some(keys) => {
            let mut extra = Map::new();
            extra.insert("jku".into(), Value::from(it.jku.clone()));
            keys.active
                .sign_jwt(&body, &extra)
                .map_err(|e| Error::internal(format!("signing the token: {e}")))?
        }
    };
    let Value::Object(claims) = body else {
        return Err(Error::internal("token body is not an object"));
    };
    Ok(Attested {
        token,
        claims,
        sealing_key: sovra_attest::azure::guest::sealing_key(verified),
    })
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
    let fmspc = verifier_for(kind)
        .intel_quote(evidence)
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
