//! The collateral store: AMD certificates, Intel collateral bundles and operator trust anchors,
//! imported through the API so verification never has to reach a vendor.

use super::super::auth::Principal;
use super::super::authz::Permission;
use super::Attestation;
use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use serde::{Deserialize, Serialize};
use sovra_attest::TrustStore;
use sovra_attest::evidence::{Anchor, Platform};
use sovra_proto::ErrorCode;
pub use sovra_proto::attest::CollateralKind;
use sovra_store::{Expect, WriteBatch};
use std::sync::Arc;

/// One stored piece of collateral.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollateralRec {
    /// SHA-256 of the content, hex.
    pub id: String,
    /// What it is.
    pub kind: CollateralKind,
    /// Platform of a trust anchor.
    pub platform: Option<String>,
    /// Human description.
    pub description: String,
    /// The content (base64).
    pub content: String,
    /// Import time.
    pub create_time: i64,
    /// For Intel collateral fetched from a PCS: what was asked for, so it can be refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched: Option<FetchedIntel>,
}

impl crate::model::Record for CollateralRec {
    fn name(&self) -> String {
        self.id.clone()
    }
    fn parent(&self) -> String {
        self.kind.as_str().to_owned()
    }
}

/// What an Intel bundle was fetched for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedIntel {
    /// FMSPC, lowercase hex.
    pub fmspc: String,
    /// `platform` or `processor`: the PCK CA whose CRL was fetched.
    pub ca: String,
    /// TDX (rather than SGX) TCB info and QE identity.
    pub tdx: bool,
}

/// What verification uses from the collateral store.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Anchors and certificate pool.
    pub trust: TrustStore,
    /// Intel collateral bundles, newest first. DCAP evidence without collateral tries those
    /// for its FMSPC.
    pub intel: Vec<IntelBundle>,
    /// Certificates whose keys may sign attestation policies (DER).
    pub policy_signers: Vec<Vec<u8>>,
}

/// One stored Intel collateral bundle.
#[derive(Debug)]
pub struct IntelBundle {
    /// FMSPC of its TCB info, lowercase hex.
    pub fmspc: String,
    /// Its TCB info's evaluation data number (higher is newer).
    pub tcb_evaluation_data_number: u64,
    /// The bundle (JSON).
    pub content: Vec<u8>,
}

impl Loaded {
    /// The newest TCB evaluation data number stored for `fmspc`.
    pub fn newest_intel(&self, fmspc: &str) -> Option<u64> {
        self.intel
            .iter()
            .filter(|b| b.fmspc == fmspc)
            .map(|b| b.tcb_evaluation_data_number)
            .max()
    }

    /// The bundles for `fmspc` (all of them when it is not known), newest first.
    pub fn intel_for(&self, fmspc: Option<&str>) -> Vec<&[u8]> {
        self.intel
            .iter()
            .filter(|b| fmspc.is_none_or(|f| b.fmspc == f))
            .map(|b| b.content.as_slice())
            .collect()
    }
}

fn platform(s: &str) -> Result<Platform> {
    Ok(match s {
        "amd" => Platform::Amd,
        "intel" => Platform::Intel,
        "nitro" | "aws" => Platform::AwsNitro,
        "nvidia" => Platform::Nvidia,
        "tpm" => Platform::Tpm,
        other => {
            return Err(Error::invalid(format!(
                "platform {other:?} is not known; use amd, intel, nitro, nvidia or tpm"
            )));
        }
    })
}

fn certs(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let c = sovra_attest::x509::certs_from_pem_or_der(bytes)
        .map_err(|e| Error::invalid(format!("content is not a PEM or DER certificate: {e}")))?;
    if c.is_empty() {
        return Err(Error::invalid("content holds no certificate"));
    }
    for der in &c {
        sovra_attest::x509::parse_cert(der)
            .map_err(|e| Error::invalid(format!("a certificate does not parse: {e}")))?;
    }
    Ok(c)
}

fn subjects(certs: &[Vec<u8>]) -> String {
    certs
        .iter()
        .filter_map(|d| sovra_attest::x509::parse_cert(d).ok())
        .map(|c| sovra_attest::x509::subject_cn(&c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collateral to import.
#[derive(Debug, Clone)]
pub struct NewCollateral {
    /// What it is.
    pub kind: CollateralKind,
    /// The platform a trust anchor is for (amd, intel, nitro, nvidia, tpm).
    pub platform: Option<String>,
    /// The content (certificates PEM or DER, or the Intel JSON bundle).
    pub content: Vec<u8>,
}

impl Attestation {
    /// Imports collateral.
    pub async fn import_collateral(
        &self,
        p: &Principal,
        req: NewCollateral,
    ) -> Result<CollateralRec> {
        // Roots and policy signers change what is trusted: Administrators only. Intermediates
        // and Intel collateral must still chain to a trusted root, so Policy Administrators
        // may import them.
        let NewCollateral {
            kind,
            platform: platform_name,
            content,
        } = req;
        let perm = if kind.changes_trust() {
            Permission::TrustManage
        } else {
            Permission::PolicyManage
        };
        self.base.auth.authorize(p, perm, "*").await?;
        let (description, plat) = match kind {
            CollateralKind::AmdCerts | CollateralKind::Certs | CollateralKind::PolicySigner => {
                (subjects(&certs(&content)?), None)
            }
            CollateralKind::TrustAnchor => {
                let name = platform_name.as_deref().ok_or_else(|| {
                    Error::invalid("a trust-anchor needs platform (amd, intel, nitro, nvidia, tpm)")
                })?;
                platform(name)?;
                (subjects(&certs(&content)?), Some(name.to_string()))
            }
            CollateralKind::Intel => {
                let s = sovra_attest::dcap::collateral::summary(&content).map_err(|e| {
                    Error::invalid(format!(
                        "intel collateral must be the JSON bundle described in docs/evidence/tdx.md: {e}"
                    ))
                })?;
                (
                    format!("Intel collateral for FMSPC {} ({})", s.fmspc, s.tee),
                    None,
                )
            }
        };
        let id = sovra_attest::x509::sha256_hex(&content);
        let rec = CollateralRec {
            id: id.clone(),
            kind,
            platform: plat,
            description,
            content: sovra_proto::b64::encode(&content),
            create_time: self.base.now(),
            fetched: None,
        };
        let mut b = WriteBatch::new();
        b.write(model::COLLATERAL, &rec, Expect::Any)?;
        let mut ev = self
            .base.admin_event(p, Action::CollateralImport, format!("attestation/collateral/{id}"))
            .detail(serde_json::json!({"kind": rec.kind, "platform": rec.platform, "description": rec.description}));
        if rec.kind == CollateralKind::TrustAnchor {
            tracing::warn!(platform = ?rec.platform, subjects = %rec.description, "a trust anchor was added: evidence chaining to it will be accepted");
            ev = ev.detail(serde_json::json!({"kind": rec.kind, "platform": rec.platform, "description": rec.description, "warning": "operator-added root"}));
        }
        b.audit(ev.body());
        self.base.store.commit(b).await?;
        self.collateral.invalidate();
        Ok(rec)
    }

    /// Lists stored collateral.
    pub async fn list_collateral(&self, p: &Principal) -> Result<Vec<CollateralRec>> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        self.collateral_records().await
    }

    /// Removes one piece of collateral.
    pub async fn delete_collateral(&self, p: &Principal, id: &str) -> Result<()> {
        self.base
            .auth
            .authorize(p, Permission::PolicyManage, "attestation")
            .await?;
        let Some(r) = Records::of(&*self.base.store)
            .get(model::COLLATERAL, id)
            .await?
        else {
            return Err(Error::new(
                ErrorCode::CollateralNotFound,
                format!(
                    "no collateral with ID {id}; list it with 'sovra attestation collateral list'"
                ),
            ));
        };
        let rec: CollateralRec = r.value.clone();
        if rec.kind.changes_trust() {
            self.base
                .auth
                .authorize(p, Permission::TrustManage, "*")
                .await?;
        }
        let mut b = WriteBatch::new();
        b.remove(model::COLLATERAL, id, Expect::Rev(r.rev));
        b.audit(
            self.base
                .admin_event(
                    p,
                    Action::CollateralDelete,
                    format!("attestation/collateral/{id}"),
                )
                .body(),
        );
        self.base.store.commit(b).await?;
        self.collateral.invalidate();
        Ok(())
    }

    pub(crate) async fn collateral_records(&self) -> Result<Vec<CollateralRec>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = Records::of(&*self.base.store)
                .scan(model::COLLATERAL, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for r in &page {
                out.push(r.value.clone());
            }
        }
        Ok(out)
    }

    /// Trust store and Intel bundles built from the collateral store (cached).
    pub async fn loaded_collateral(&self) -> Result<Arc<Loaded>> {
        if let Some(l) = self.collateral.get() {
            return Ok(l);
        }
        let mut loaded = Loaded::default();
        let mut recs = self.collateral_records().await?;
        recs.sort_by_key(|r| std::cmp::Reverse(r.create_time));
        for rec in recs {
            let content = sovra_proto::b64::decode(&rec.content)
                .map_err(|_| Error::internal("stored collateral is not base64"))?;
            match rec.kind {
                CollateralKind::AmdCerts | CollateralKind::Certs => {
                    loaded.trust.cert_pool.extend(certs(&content)?)
                }
                CollateralKind::TrustAnchor => {
                    let plat = platform(rec.platform.as_deref().unwrap_or(""))?;
                    for der in certs(&content)? {
                        loaded.trust.anchors.push(Anchor {
                            platform: plat,
                            der,
                        });
                    }
                }
                CollateralKind::Intel => match sovra_attest::dcap::collateral::summary(&content) {
                    Ok(s) => loaded.intel.push(IntelBundle {
                        fmspc: s.fmspc,
                        tcb_evaluation_data_number: s.tcb_evaluation_data_number,
                        content,
                    }),
                    Err(e) => {
                        tracing::warn!(id = %rec.id, error = %e, "stored Intel collateral is unusable; skipped");
                    }
                },
                CollateralKind::PolicySigner => loaded.policy_signers.extend(certs(&content)?),
            }
        }
        // Newest first: the highest TCB evaluation data number wins (a TCB recovery or a PCK
        // revocation is in the newer collateral), then the latest import.
        loaded
            .intel
            .sort_by_key(|b| std::cmp::Reverse(b.tcb_evaluation_data_number));
        let l = Arc::new(loaded);
        self.collateral.put(l.clone());
        Ok(l)
    }
}

impl Attestation {
    /// Checks a policy JWS against the configured policy signers: with signers configured only
    /// a policy signed by one of them is accepted; without, only unsigned policies are.
    /// Returns the signer's subject.
    pub async fn check_policy_signature(
        &self,
        j: &sovra_crypto::jws::Jws,
    ) -> Result<Option<String>> {
        let loaded = self.loaded_collateral().await?;
        let bad = |m: &str| Error::new(ErrorCode::PolicySignatureInvalid, m.to_string());
        if j.is_unsigned() {
            if loaded.policy_signers.is_empty() {
                return Ok(None);
            }
            return Err(bad(
                "this deployment requires policies signed by a configured policy signer",
            ));
        }
        if loaded.policy_signers.is_empty() {
            return Err(bad(
                "the policy is signed but no policy signer is configured; import its certificate as kind policy-signer, or send the policy unsigned",
            ));
        }
        let x5c = j.x5c().map_err(|e| bad(&e.to_string()))?;
        let leaf = x5c
            .first()
            .ok_or_else(|| bad("a signed policy carries its certificate in x5c (or jwk.x5c)"))?;
        if !loaded.policy_signers.contains(leaf) {
            return Err(bad(
                "the policy's signing certificate is not a configured policy signer",
            ));
        }
        let cert = sovra_attest::x509::parse_cert(leaf).map_err(|e| bad(&e.to_string()))?;
        let key = sovra_crypto::jws::VerifyKey::from_spki(None, cert.public_key().raw)
            .map_err(|e| bad(&e.to_string()))?;
        j.verify_with(&key).map_err(|e| bad(&e.to_string()))?;
        Ok(Some(sovra_attest::x509::subject_cn(&cert)))
    }
}

/// Cache of [`Loaded`], refreshed after the metadata TTL (other nodes' imports) or at once
/// after a local change.
pub type CollateralCache = crate::cache::TtlCell<Arc<Loaded>>;
