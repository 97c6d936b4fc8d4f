//! Attestation policies: one per provider and evidence type, in the MAA policy language or in
//! Rego; compiled once and cached by provider, type and hash. Reference-value sets are offered
//! to every policy as boolean claims `x-sovra-refvalues-{set}`.

use super::super::auth::Principal;
use super::super::authz::Permission;
use super::Attestation;
use crate::cache::TtlCache;
use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sovra_attest::EvidenceType;
use sovra_policy::PolicyError;
use sovra_proto::ErrorCode;
use sovra_proto::attest::ReferenceValues;
use sovra_store::{Expect, WriteBatch};
use std::sync::Arc;
use std::time::Duration;

/// A policy language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// The Microsoft Azure Attestation policy language (1.0, 1.1, 1.2).
    Maa,
    /// Rego (Open Policy Agent; the Confidential Containers convention).
    Rego,
}

impl Language {
    /// Parses `maa` / `rego`.
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s.unwrap_or("maa") {
            "maa" => Ok(Self::Maa),
            "rego" => Ok(Self::Rego),
            other => Err(Error::invalid(format!(
                "policy language {other:?} is not supported; use \"maa\" or \"rego\""
            ))),
        }
    }

    /// The name the API and the audit log use (`maa`, `rego`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Maa => "maa",
            Self::Rego => "rego",
        }
    }
}

/// A stored policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyRec {
    /// Provider.
    pub provider: String,
    /// Evidence type.
    pub evidence_type: String,
    /// Language.
    pub language: Language,
    /// Text.
    pub text: String,
    /// Signer certificate subject, if the policy came signed.
    pub signer: Option<String>,
    /// Last change.
    pub update_time: i64,
}

impl crate::model::Record for PolicyRec {
    fn name(&self) -> String {
        format!("{}/{}", self.provider, self.evidence_type)
    }
    fn parent(&self) -> String {
        self.provider.clone()
    }
}

// One per cached policy; the Rego engine is large, but boxing it buys nothing here.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Maa(sovra_policy::maa::Policy),
    Rego(sovra_policy::rego::RegoPolicy),
}

/// The policy a provider applies to an evidence type.
#[derive(Debug, Clone)]
pub struct PolicyView {
    /// The evidence type.
    pub kind: EvidenceType,
    /// Its language.
    pub language: Language,
    /// Its text.
    pub text: String,
    /// Its hash (MAA's `x-ms-policy-hash`).
    pub hash: String,
    /// The built-in default applies (none was set).
    pub is_default: bool,
    /// Who signed it (policy-signer subject), if it came signed.
    pub signer: Option<String>,
}

/// A compiled policy.
pub struct Compiled {
    language: Language,
    text: String,
    hash: String,
    engine: Engine,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compiled({:?}, {})", self.language, self.hash)
    }
}

/// What a policy decided.
#[derive(Debug)]
pub struct Outcome {
    /// The evidence is authorised.
    pub permitted: bool,
    /// Why not, if the engine says.
    pub reason: Option<String>,
    /// Claims for the token: the incoming claims plus what the policy issued.
    pub claims: Map<String, Value>,
    /// `x-ms-policy-hash` of the policy text.
    pub policy_hash: String,
}

/// The code of a policy that cannot be compiled: which limit it hit, or that it is invalid.
fn policy_error(e: PolicyError) -> Error {
    let code = match &e {
        PolicyError::Syntax { .. } | PolicyError::Invalid(_) | PolicyError::Eval(_) => {
            ErrorCode::PolicyInvalid
        }
        PolicyError::TooLarge { .. } => ErrorCode::PolicyTooLarge,
        PolicyError::TooDeep { .. } => ErrorCode::PolicyTooDeep,
        PolicyError::EvalLimit(_) => ErrorCode::PolicyEvalLimit,
    };
    Error::new(code, e.to_string())
}

impl Compiled {
    /// Compiles `text`.
    pub fn compile(language: Language, text: &str) -> Result<Self> {
        let engine = match language {
            Language::Maa => {
                Engine::Maa(sovra_policy::maa::Policy::parse(text).map_err(policy_error)?)
            }
            Language::Rego => {
                Engine::Rego(sovra_policy::rego::RegoPolicy::compile(text).map_err(policy_error)?)
            }
        };
        Ok(Self {
            language,
            text: text.to_string(),
            hash: sovra_policy::maa::policy_hash(text),
            engine,
        })
    }

    /// Evaluates the policy over `incoming` plus, for each reference-value set in `refsets`,
    /// whether the claims match it. Synchronous: the caller runs it on the work pool.
    pub fn appraise(
        &self,
        incoming: &Map<String, Value>,
        refsets: &[ReferenceValues],
    ) -> Result<Outcome> {
        let mut input = incoming.clone();
        let mut any = false;
        for (set, matched) in reference_value_matches(refsets, incoming) {
            any |= matched;
            input.insert(format!("x-sovra-refvalues-{set}"), Value::Bool(matched));
        }
        input.insert("x-sovra-refvalues-matched".into(), Value::Bool(any));
        let eval_err = |e: PolicyError| match e {
            PolicyError::EvalLimit(_) => Error::new(ErrorCode::PolicyEvalLimit, e.to_string()),
            PolicyError::Syntax { .. }
            | PolicyError::Invalid(_)
            | PolicyError::Eval(_)
            | PolicyError::TooLarge { .. }
            | PolicyError::TooDeep { .. } => Error::new(
                ErrorCode::AttestPolicyDenied,
                format!("the policy failed to evaluate: {e}"),
            ),
        };
        let (permitted, reason, issued) = match &self.engine {
            Engine::Maa(p) => p
                .evaluate(&input)
                .map(|r| (r.authorized, r.reason, r.issued)),
            Engine::Rego(p) => p.evaluate(&input).map(|r| (r.allow, None, r.claims)),
        }
        .map_err(eval_err)?;
        // Verified claims are the verifier's: a policy adds claims, it never changes one
        // (x-ms-runtime names the key a released key is wrapped to).
        let mut claims = incoming.clone();
        for (k, v) in issued {
            match claims.get(&k) {
                Some(have) if *have != v => {
                    return Err(Error::new(
                        ErrorCode::PolicyInvalid,
                        format!(
                            "the policy issues claim {k:?}, which the verifier set to another value; verified claims cannot be changed, issue a claim of another name"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    claims.insert(k, v);
                }
            }
        }
        Ok(Outcome {
            permitted,
            reason,
            claims,
            policy_hash: self.hash.clone(),
        })
    }
}

/// For each reference-value set: whether every claim it names has one of its values.
pub fn reference_value_matches(
    sets: &[ReferenceValues],
    claims: &Map<String, Value>,
) -> Vec<(String, bool)> {
    sets.iter()
        .map(|set| {
            let all = set.values.iter().all(|(claim, accepted)| {
                claims
                    .get(claim)
                    .is_some_and(|v| accepted.iter().any(|a| same(a, v)))
            });
            (set.name.clone(), all)
        })
        .collect()
}

/// Compiled policies by `provider/type`, each remembered with its text hash.
#[derive(Debug)]
pub struct PolicyCache {
    /// The policy in force per `provider/type`, for the metadata TTL.
    map: TtlCache<String, Arc<Compiled>>,
    /// Compiled policies by language and text hash (a text compiles the same for ever).
    by_hash: TtlCache<String, Arc<Compiled>>,
}

impl PolicyCache {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        Self {
            map: TtlCache::new(ttl, 10_000),
            by_hash: TtlCache::new(Duration::MAX, 1000),
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Compiled>> {
        self.map.get(key)
    }

    fn put(&self, key: String, c: Arc<Compiled>) {
        self.map.put(key, c);
    }

    fn invalidate(&self, key: &str) {
        self.map.remove(key);
    }

    /// Compiles `text` unless a policy with the same language and text is already compiled.
    async fn compiled(
        &self,
        work: &crate::work::WorkPool,
        language: Language,
        text: &str,
    ) -> Result<Arc<Compiled>> {
        let key = format!(
            "{}:{}",
            language.name(),
            sovra_policy::maa::policy_hash(text)
        );
        if let Some(c) = self.by_hash.get(&key) {
            return Ok(c);
        }
        let owned = text.to_string();
        let c = Arc::new(
            work.run(move || Compiled::compile(language, &owned))
                .await??,
        );
        self.by_hash.put(key, c.clone());
        Ok(c)
    }
}

fn record_name(provider: &str, kind: EvidenceType) -> String {
    format!("{provider}/{kind}")
}

impl Attestation {
    async fn policy_rec(
        &self,
        provider: &str,
        kind: EvidenceType,
    ) -> Result<Option<(PolicyRec, u64)>> {
        Ok(
            match Records::of(&*self.base.store)
                .get(model::ATTEST_POLICIES, &record_name(provider, kind))
                .await?
            {
                Some(r) => Some((r.value.clone(), r.rev)),
                None => None,
            },
        )
    }

    /// The compiled policy in force for `provider` and `kind` (the built-in default if none).
    pub async fn policy_for(&self, provider: &str, kind: EvidenceType) -> Result<Arc<Compiled>> {
        let key = record_name(provider, kind);
        if let Some(c) = self.policies.get(&key) {
            return Ok(c);
        }
        let c = match self.policy_rec(provider, kind).await? {
            Some((rec, _)) => {
                self.policies
                    .compiled(&self.work, rec.language, &rec.text)
                    .await?
            }
            None => {
                self.policies
                    .compiled(
                        &self.work,
                        Language::Maa,
                        sovra_policy::defaults::for_type(kind),
                    )
                    .await?
            }
        };
        self.policies.put(key, c.clone());
        Ok(c)
    }

    /// The policy of `provider` for `kind`.
    pub async fn get_policy(
        &self,
        p: &Principal,
        provider: &str,
        kind: EvidenceType,
    ) -> Result<PolicyView> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        self.provider(provider).await?;
        let rec = self.policy_rec(provider, kind).await?;
        let c = self.policy_for(provider, kind).await?;
        Ok(PolicyView {
            kind,
            language: c.language,
            text: c.text.clone(),
            hash: c.hash.clone(),
            is_default: rec.is_none(),
            signer: rec.and_then(|(r, _)| r.signer),
        })
    }

    /// Sets the policy (already unwrapped from any JWS; `signer` names a verified signer).
    pub async fn set_policy(
        &self,
        p: &Principal,
        provider: &str,
        kind: EvidenceType,
        language: Language,
        document: &str,
    ) -> Result<PolicyView> {
        self.base
            .auth
            .authorize(p, Permission::PolicyManage, "attestation")
            .await?;
        self.provider(provider).await?;
        // The signer is whoever signed the document, checked here: never the caller's word.
        let (text, signer) = self.policy_text(document).await?;
        let text = text.as_str();
        // Isolated mode (MAA): once policy signers are configured, every policy must be signed
        // by one of them.
        if signer.is_none() && !self.loaded_collateral().await?.policy_signers.is_empty() {
            return Err(Error::new(
                ErrorCode::PolicySignatureInvalid,
                "policy signers are configured (isolated mode): send the policy as a JWS signed by one of them",
            ));
        }
        let c = self.policies.compiled(&self.work, language, text).await?;
        let name = record_name(provider, kind);
        let prev = self.policy_rec(provider, kind).await?;
        let rec = PolicyRec {
            provider: provider.into(),
            evidence_type: kind.as_str().into(),
            language,
            text: text.into(),
            signer: signer.clone(),
            update_time: self.base.now(),
        };
        let mut b = WriteBatch::new();
        let expect = prev
            .as_ref()
            .map_or(Expect::Absent, |(_, rev)| Expect::Rev(*rev));
        b.write(model::ATTEST_POLICIES, &rec, expect)?;
        b.audit(
            self.base.admin_event(p, Action::PolicySet, format!("attestation/providers/{name}"))
                .detail(serde_json::json!({"policyHash": c.hash, "language": language.name(), "signer": signer}))
                .body(),
        );
        self.base.store.commit(b).await?;
        self.policies.invalidate(&name);
        self.get_policy(p, provider, kind).await
    }

    /// Resets the policy to the built-in default.
    pub async fn reset_policy(
        &self,
        p: &Principal,
        provider: &str,
        kind: EvidenceType,
    ) -> Result<PolicyView> {
        self.base
            .auth
            .authorize(p, Permission::PolicyManage, "attestation")
            .await?;
        self.provider(provider).await?;
        let name = record_name(provider, kind);
        if let Some((_, rev)) = self.policy_rec(provider, kind).await? {
            let mut b = WriteBatch::new();
            b.remove(model::ATTEST_POLICIES, name.clone(), Expect::Rev(rev));
            b.audit(
                self.base.admin_event(p, Action::PolicyReset, format!("attestation/providers/{name}"))
                    .detail(serde_json::json!({"policyHash": sovra_policy::maa::policy_hash(sovra_policy::defaults::for_type(kind))}))
                    .body(),
            );
            self.base.store.commit(b).await?;
        }
        self.policies.invalidate(&name);
        self.get_policy(p, provider, kind).await
    }

    // ----- reference values --------------------------------------------------------------

    /// Creates or replaces a reference-value set.
    pub async fn put_reference_values(
        &self,
        p: &Principal,
        name: &str,
        mut rv: ReferenceValues,
    ) -> Result<ReferenceValues> {
        self.base
            .auth
            .authorize(p, Permission::PolicyManage, "attestation")
            .await?;
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::new(
                ErrorCode::InvalidName,
                format!(
                    "reference-value set name {name:?} must be 1-63 characters of letters, digits, '-' and '_'"
                ),
            ));
        }
        if rv.values.is_empty() {
            return Err(Error::invalid(
                "values must name at least one claim with its accepted values",
            ));
        }
        if let Some((claim, _)) = rv
            .values
            .iter()
            .find(|(claim, accepted)| claim.is_empty() || accepted.is_empty())
        {
            return Err(Error::invalid(format!(
                "values: every claim needs a name and at least one accepted value (claim {claim:?})"
            )));
        }
        rv.name = name.into();
        rv.update_time = Some(crate::clock::rfc3339(self.base.now()));
        let mut b = WriteBatch::new();
        b.write(model::REFERENCE_VALUES, &rv, Expect::Any)?;
        b.audit(
            self.base
                .admin_event(
                    p,
                    Action::ReferenceValuesSet,
                    format!("attestation/referenceValues/{name}"),
                )
                .detail(serde_json::json!({"claims": rv.values.keys().collect::<Vec<_>>()}))
                .body(),
        );
        self.base.store.commit(b).await?;
        self.refvalues.invalidate();
        Ok(rv)
    }

    /// Lists reference-value sets.
    pub async fn list_reference_values(&self, p: &Principal) -> Result<Vec<ReferenceValues>> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        self.reference_value_sets().await
    }

    /// Deletes a reference-value set.
    pub async fn delete_reference_values(&self, p: &Principal, name: &str) -> Result<()> {
        self.base
            .auth
            .authorize(p, Permission::PolicyManage, "attestation")
            .await?;
        let Some(r) = Records::of(&*self.base.store)
            .get(model::REFERENCE_VALUES, name)
            .await?
        else {
            return Err(Error::new(
                ErrorCode::ReferenceValuesNotFound,
                format!("no reference-value set {name:?}"),
            ));
        };
        let mut b = WriteBatch::new();
        b.remove(model::REFERENCE_VALUES, name, Expect::Rev(r.rev));
        b.audit(
            self.base
                .admin_event(
                    p,
                    Action::ReferenceValuesDelete,
                    format!("attestation/referenceValues/{name}"),
                )
                .body(),
        );
        self.base.store.commit(b).await?;
        self.refvalues.invalidate();
        Ok(())
    }

    async fn reference_value_sets(&self) -> Result<Vec<ReferenceValues>> {
        let mut out = Vec::new();
        for r in Records::of(&*self.base.store)
            .scan(model::REFERENCE_VALUES, None, 1000)
            .await?
        {
            out.push(r.value.clone());
        }
        Ok(out)
    }

    /// The reference-value sets (cached).
    pub(crate) async fn reference_value_sets_cached(&self) -> Result<Arc<Vec<ReferenceValues>>> {
        Ok(match self.refvalues.get() {
            Some(s) => s,
            None => {
                let s = Arc::new(self.reference_value_sets().await?);
                self.refvalues.put(s.clone());
                s
            }
        })
    }
}

/// Claim equality with hex strings compared case-insensitively.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}
