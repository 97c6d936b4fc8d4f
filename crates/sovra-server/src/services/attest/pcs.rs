//! Opt-in fetching of Intel collateral from a PCS or PCCS (`attestation.intel_pcs_url`): when a
//! TDX or SGX quote arrives without collateral and none in the store fits (missing, or out of
//! its window), Sovra asks the PCS for the TCB info and QE identity of its FMSPC and the CRLs,
//! assembles the bundle, stores it (audited; replacing what it fetched before for that FMSPC)
//! and verifies again. The bundle is verified like imported collateral (Intel-rooted
//! signatures, windows), so the transport adds no trust. Off by default.

use super::super::Sovra;
use super::super::audit::{AuditEvent, EventKind};
use super::collateral::CollateralRec;
use crate::error::Result;
use crate::model;
use sovra_attest::dcap::pcs;
use sovra_store::{Expect, WriteBatch};
use std::time::Duration;

/// Time limit of one fetch.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A PCK CRL can hold many entries.
const MAX_BYTES: usize = 4 << 20;

impl Sovra {
    /// Fetches and stores the Intel collateral for the quote `quote` (binary or base64).
    /// `Ok(None)` when fetching is not configured; `Err` says why nothing was stored.
    pub(super) async fn fetch_intel(
        &self,
        quote: &[u8],
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let Some(base) = self.cfg.attest.intel_pcs_url.as_deref() else {
            return Ok(None);
        };
        let base = base.trim_end_matches('/');
        let needs = pcs::needs(quote).map_err(|e| e.to_string())?;
        let [tcb, qe, crl, root] = pcs::paths(&needs);
        let root_url = self
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
            self.attest.pcs.admit(&url)?;
            let got = super::super::fetch::get_with_headers(
                &url,
                self.cfg.attest.fetch_ca_pem.clone(),
                TIMEOUT,
                MAX_BYTES,
            )
            .await;
            // Collateral changes daily at most: whatever the outcome, not again for a minute.
            self.attest.pcs.failed(&url);
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
        self.store_intel(&bundle, &needs, base)
            .await
            .map_err(|e| e.message)?;
        Ok(Some(bundle))
    }

    /// Stores a fetched bundle, replacing the bundles fetched earlier for the same FMSPC.
    async fn store_intel(&self, bundle: &[u8], needs: &pcs::Needs, base: &str) -> Result<()> {
        let id = sovra_attest::x509::sha256_hex(bundle);
        let tee = if needs.tdx { "TDX" } else { "SGX" };
        let description = format!(
            "Intel collateral for FMSPC {} ({tee}) fetched from {base}",
            needs.fmspc
        );
        let mut b = WriteBatch::new();
        for r in self.store.scan(model::COLLATERAL, None, 10_000).await? {
            if let Ok(old) = model::from_json::<CollateralRec>(&r.data)
                && old.kind == "intel"
                && old.description == description
                && old.id != id
            {
                b.delete(model::COLLATERAL, old.id.clone(), Expect::Any);
            }
        }
        let rec = CollateralRec {
            id: id.clone(),
            kind: "intel".into(),
            platform: None,
            description,
            content: sovra_proto::b64::encode(bundle),
            create_time: self.now(),
        };
        b.put(
            model::COLLATERAL,
            id.clone(),
            rec.kind.clone(),
            model::to_json(&rec)?,
            None,
            Expect::Any,
        );
        b.audit(
            AuditEvent::new(self.now(), EventKind::Admin, "attestation.collateral.fetch")
                .principal("sovra")
                .resource(format!("attestation/collateral/{id}"))
                .detail(serde_json::json!({"kind": "intel", "fmspc": needs.fmspc, "from": base}))
                .body(),
        );
        self.store.commit(b).await?;
        self.attest.collateral.invalidate();
        Ok(())
    }
}
