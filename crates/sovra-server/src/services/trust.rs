//! The trust configuration in one view: what makes evidence "genuine" and which tokens count
//! for release. Vendor roots are pinned in the binary; everything else here (platform trust
//! anchors, policy signers, external issuers) is added by Administrators only
//! (`Permission::TrustManage`), audited, and reported as a warning while operator anchors are
//! active.

use super::Base;
use super::attest::Attestation;
use super::attest::collateral::CollateralKind;
use super::auth::Principal;
use super::authz::Permission;
use super::release::Release;
use crate::error::Result;
use serde::Serialize;
use sovra_attest::evidence::Platform;
use sovra_attest::x509::pinned;
use std::sync::Arc;

/// A root pinned in the binary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedRoot {
    /// Platform (`amd`, `intel`, `nitro`, `nvidia`).
    pub platform: &'static str,
    /// Name.
    pub name: &'static str,
    /// SHA-256 of its DER.
    pub sha256: &'static str,
}

/// Something an Administrator added to what is trusted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedTrust {
    /// Collateral ID (SHA-256 of the content).
    pub id: String,
    /// Platform of a trust anchor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The certificates' subjects.
    pub subjects: String,
    /// When it was added (RFC 3339).
    pub create_time: String,
}

/// An external token issuer trusted for release.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerTrust {
    /// The issuer.
    pub issuer: String,
    /// Pinned certificates.
    pub pinned_certificates: usize,
    /// The JWKS it is followed at, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// Where Sovra may fetch vendor collateral (configuration, not API).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorFetch {
    /// AMD KDS.
    pub amd_kds_url: Option<String>,
    /// Intel PCS/PCCS.
    pub intel_pcs_url: Option<String>,
    /// Intel root CA CRL.
    pub intel_root_crl_url: Option<String>,
}

/// The whole trust configuration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustView {
    /// Vendor roots pinned in the binary.
    pub pinned_roots: Vec<PinnedRoot>,
    /// Operator-added roots: evidence chaining to one is accepted as genuine, with
    /// `x-sovra-trust-root-kind: operator` in its token.
    pub operator_anchors: Vec<AddedTrust>,
    /// Certificates whose keys may sign attestation policies (isolated mode when any).
    pub policy_signers: Vec<AddedTrust>,
    /// External issuers whose tokens release keys (when a key's policy names them).
    pub external_issuers: Vec<IssuerTrust>,
    /// Vendor services Sovra fetches collateral from.
    pub vendor_fetch: VendorFetch,
    /// What an operator should know (operator anchors active).
    pub warnings: Vec<String>,
}

fn pinned_roots() -> Vec<PinnedRoot> {
    let mut out = Vec::new();
    for (platform, name) in [
        (Platform::Amd, "amd"),
        (Platform::Intel, "intel"),
        (Platform::AwsNitro, "nitro"),
        (Platform::Nvidia, "nvidia"),
    ] {
        for fp in pinned::for_platform(platform) {
            out.push(PinnedRoot {
                platform: name,
                name: pinned::name_of(fp).unwrap_or("(unnamed)"),
                sha256: fp,
            });
        }
    }
    out
}

/// The trust configuration view: pinned roots, operator anchors, policy signers, issuers.
#[derive(Debug)]
pub struct Trust {
    base: Base,
    attest: Arc<Attestation>,
    release: Arc<Release>,
}

impl Trust {
    /// The service.
    pub fn new(base: Base, attest: Arc<Attestation>, release: Arc<Release>) -> Self {
        Self {
            base,
            attest,
            release,
        }
    }
}

impl Trust {
    /// The trust configuration (readable with the policy-read permission).
    pub async fn trust_configuration(&self, p: &Principal) -> Result<TrustView> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        let mut anchors = Vec::new();
        let mut signers = Vec::new();
        for r in self.attest.collateral_records().await? {
            if !r.kind.changes_trust() {
                continue;
            }
            let item = AddedTrust {
                id: r.id.clone(),
                platform: r.platform.clone(),
                subjects: r.description.clone(),
                create_time: crate::clock::rfc3339(r.create_time),
            };
            if r.kind == CollateralKind::TrustAnchor {
                anchors.push(item);
            } else {
                signers.push(item);
            }
        }
        let external_issuers = self
            .release
            .list_trusted_issuers(p)
            .await?
            .into_iter()
            .map(|i| IssuerTrust {
                pinned_certificates: i.certificates.len(),
                jwks_uri: i.jwks_uri,
                issuer: i.issuer,
            })
            .collect();
        let a = &self.base.cfg.attest;
        Ok(TrustView {
            pinned_roots: pinned_roots(),
            warnings: anchor_warnings(anchors.len()),
            operator_anchors: anchors,
            policy_signers: signers,
            external_issuers,
            vendor_fetch: VendorFetch {
                amd_kds_url: a.amd_kds_url.clone(),
                intel_pcs_url: a.intel_pcs_url.clone(),
                intel_root_crl_url: a.intel_root_crl_url.clone(),
            },
        })
    }

    /// Warnings about the trust configuration, for the log and `/readyz` (no detail that
    /// would tell an anonymous caller what is trusted).
    pub async fn trust_warnings(&self) -> Result<Vec<String>> {
        let n = self
            .attest
            .collateral_records()
            .await?
            .iter()
            .filter(|r| r.kind == CollateralKind::TrustAnchor)
            .count();
        let mut w = anchor_warnings(n);
        w.extend(self.base.audit.anchor_warning());
        Ok(w)
    }
}

fn anchor_warnings(n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    vec![format!(
        "{n} operator-added trust anchor{} active: evidence chaining to {} is accepted as genuine (tokens say x-sovra-trust-root-kind: operator); see GET /v1/trust",
        if n == 1 { " is" } else { "s are" },
        if n == 1 { "it" } else { "them" }
    )]
}
