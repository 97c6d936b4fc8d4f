//! Opt-in fetching of Intel collateral from a PCS or PCCS (`attestation.intel_pcs_url`): when a
//! TDX or SGX quote arrives without collateral and none in the store fits (missing, or out of
//! its window), Sovra asks the PCS for the TCB info and QE identity of its FMSPC and the CRLs,
//! assembles the bundle, stores it (audited; replacing what it fetched before for that FMSPC)
//! and verifies again. The bundle is verified like imported collateral (Intel-rooted
//! signatures, windows), so the transport adds no trust. Off by default.
//!
//! What was fetched is also refreshed in the background (the scheduler): a day before its TCB
//! info's `nextUpdate`, so quotes do not wait for a fetch, or fail, when collateral turns over.

use super::super::audit::{AuditEvent, EventKind};
use super::Attestation;
use super::collateral::{CollateralKind, CollateralRec, FetchedIntel};
use crate::cache::TtlCache;
use crate::error::Result;
use crate::model;
use crate::records::{Records, Writes};
use crate::services::actions::Action;
use sovra_attest::dcap::{collateral, pcs};
use sovra_store::{Expect, WriteBatch};
use std::time::Duration;

/// Time limit of one fetch.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A PCK CRL can hold many entries.
const MAX_BYTES: usize = 4 << 20;
/// Fetched collateral is refreshed this long before its TCB info's `nextUpdate`.
const REFRESH_AHEAD_SECS: i64 = 24 * 3600;
/// After a background refresh of one FMSPC (successful or not), the next waits this long.
const REFRESH_BACKOFF: Duration = Duration::from_secs(3600);

/// When each FMSPC was last refreshed in the background.
#[derive(Debug)]
pub struct RefreshMemo(TtlCache<String, ()>);

impl Default for RefreshMemo {
    fn default() -> Self {
        Self(TtlCache::new(REFRESH_BACKOFF, 10_000))
    }
}

impl RefreshMemo {
    /// Claims the refresh of `key` unless it was tried within the backoff.
    fn claim(&self, key: &str) -> bool {
        self.0.claim(key.to_string(), ())
    }
}

impl Attestation {
    /// Fetches and stores the Intel collateral for the quote `quote` (binary or base64).
    /// `Ok(None)` when fetching is not configured; `Err` says why nothing was stored.
    pub(super) async fn fetch_intel(
        &self,
        quote: &[u8],
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        if self.base.cfg.attest.intel_pcs_url.is_none() {
            return Ok(None);
        }
        let needs = pcs::needs(quote).map_err(|e| e.to_string())?;
        self.fetch_intel_for(&needs, false).await.map(Some)
    }

    /// Fetches, assembles and stores the bundle `needs` describes. A request's fetch
    /// (`background` false) is also held back for a minute after the same URL was fetched.
    async fn fetch_intel_for(
        &self,
        needs: &pcs::Needs,
        background: bool,
    ) -> std::result::Result<Vec<u8>, String> {
        let Some(base) = self.base.cfg.attest.intel_pcs_url.as_deref() else {
            return Err("no PCS is configured".into());
        };
        let base = base.trim_end_matches('/');
        let [tcb, qe, crl, root] = pcs::paths(needs);
        let root_url = self
            .base
            .cfg
            .attest
            .intel_root_crl_url
            .clone()
            .unwrap_or_else(|| format!("{base}{root}"));
        let mut answers = Vec::new();
        for url in [
            format!("{base}{tcb}"),
            format!("{base}{qe}"),
            format!("{base}{crl}"),
            root_url,
        ] {
            if background {
                self.pcs.admit_background()?;
            } else {
                self.pcs.admit(&url)?;
            }
            let got = super::super::fetch::get_with_headers(
                &url,
                self.base.cfg.attest.fetch_ca_pem.clone(),
                TIMEOUT,
                MAX_BYTES,
                false,
            )
            .await;
            // Collateral changes daily at most: whatever the outcome, requests do not ask
            // again for a minute.
            self.pcs.failed(&url);
            match got {
                Ok((body, headers)) => {
                    let chain = headers
                        .iter()
                        .find(|(k, _)| k.as_str().ends_with("-issuer-chain"))
                        .and_then(|(_, v)| v.to_str().ok())
                        .map(pcs::percent_decode)
                        .unwrap_or_default();
                    answers.push(pcs::Answer {
                        body,
                        issuer_chain: chain,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Intel collateral fetch failed");
                    return Err("the PCS did not provide it (details in the server log)".into());
                }
            }
        }
        let [t, q, c, r] = <[pcs::Answer; 4]>::try_from(answers)
            .map_err(|_| "the PCS answers are incomplete".to_string())?;
        let bundle = pcs::assemble(&t, &q, &c, &r.body).map_err(|e| e.to_string())?;
        self.store_intel(&bundle, needs, base)
            .await
            .map_err(|e| e.message)?;
        Ok(bundle)
    }

    /// Stores a fetched bundle, replacing the bundles fetched earlier for the same FMSPC.
    /// Storing what is already stored changes nothing and is not audited again.
    async fn store_intel(&self, bundle: &[u8], needs: &pcs::Needs, base: &str) -> Result<()> {
        let id = sovra_attest::x509::sha256_hex(bundle);
        let tee = if needs.tdx { "TDX" } else { "SGX" };
        let description = format!(
            "Intel collateral for FMSPC {} ({tee}) fetched from {base}",
            needs.fmspc
        );
        let mut b = WriteBatch::new();
        let mut unchanged = false;
        for r in Records::of(&*self.base.store)
            .scan(model::COLLATERAL, None, 10_000)
            .await?
        {
            let old = r.value;
            if old.kind == CollateralKind::Intel && old.description == description {
                if old.id == id && old.fetched.is_some() {
                    unchanged = true;
                } else if old.id != id {
                    b.remove(model::COLLATERAL, old.id.clone(), Expect::Any);
                }
            }
        }
        if unchanged && b.is_empty() {
            return Ok(());
        }
        let rec = CollateralRec {
            id: id.clone(),
            kind: CollateralKind::Intel,
            platform: None,
            description,
            content: sovra_proto::b64::encode(bundle),
            create_time: self.base.now(),
            fetched: Some(FetchedIntel {
                fmspc: needs.fmspc.clone(),
                ca: needs.ca.to_string(),
                tdx: needs.tdx,
            }),
        };
        b.write(model::COLLATERAL, &rec, Expect::Any)?;
        b.audit(
            AuditEvent::new(self.base.now(), EventKind::Admin, Action::CollateralFetch)
                .principal("sovra")
                .resource(format!("attestation/collateral/{id}"))
                .detail(serde_json::json!({"kind": "intel", "fmspc": needs.fmspc, "from": base}))
                .body(),
        );
        self.base.store.commit(b).await?;
        self.collateral.invalidate();
        Ok(())
    }

    /// Refreshes fetched Intel collateral whose TCB info reaches its `nextUpdate` within a day
    /// (or already has), each FMSPC at most once an hour. Returns how many were asked for.
    pub async fn refresh_intel_collateral(&self) -> Result<usize> {
        if self.base.cfg.attest.intel_pcs_url.is_none() {
            return Ok(0);
        }
        let horizon = self.base.now() + REFRESH_AHEAD_SECS;
        let mut asked = 0;
        for rec in self.collateral_records().await? {
            let Some(f) = rec.fetched.as_ref() else {
                continue;
            };
            let due = sovra_proto::b64::decode(&rec.content)
                .ok()
                .and_then(|c| collateral::summary(&c).ok())
                .and_then(|s| s.next_update)
                .and_then(|t| collateral::rfc3339(&t))
                .is_none_or(|next| next <= horizon);
            let key = format!("{}/{}/{}", f.fmspc, f.ca, f.tdx);
            if !due || !self.pcs_refresh.claim(&key) {
                continue;
            }
            asked += 1;
            let ca = if f.ca == "processor" {
                "processor"
            } else {
                "platform"
            };
            let needs = pcs::Needs {
                fmspc: f.fmspc.clone(),
                ca,
                tdx: f.tdx,
            };
            match self.fetch_intel_for(&needs, true).await {
                Ok(_) => tracing::info!(fmspc = %f.fmspc, "Intel collateral refreshed"),
                Err(e) => {
                    tracing::warn!(fmspc = %f.fmspc, error = %e, "Intel collateral refresh failed; next try in an hour")
                }
            }
        }
        Ok(asked)
    }
}
