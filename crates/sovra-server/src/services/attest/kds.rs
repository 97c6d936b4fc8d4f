//! Opt-in fetching of VCEKs from AMD's Key Distribution Service (`attestation.amd_kds_url`):
//! when an SEV-SNP report arrives without its VCEK and the collateral store has none for its
//! chip and TCB, Sovra asks KDS (or a mirror), checks the answer is a VCEK for that chip, stores
//! it in the collateral store (audited) and verifies again. The certificate still has to chain to
//! the pinned AMD root, so the transport adds no trust. Off by default: Sovra stays offline.
//!
//! Bounded: reports are unauthenticated input and can name any chip, so a URL that failed is not
//! tried again for a minute, and Sovra fetches at most two times a second in all (bursts of ten).

use super::super::audit::{AuditEvent, EventKind};
use super::Attestation;
use super::collateral::{CollateralKind, CollateralRec};
use crate::cache::{Rate, TokenBucket, TtlCache};
use crate::error::Result;
use crate::model;
use crate::records::Writes;
use crate::services::actions::Action;
use sovra_attest::snp::{kds, report, vcek};
use sovra_store::{Expect, WriteBatch};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failed URL is not fetched again for this long.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Fetches allowed in a burst.
const BURST: f64 = 10.0;
/// Fetches allowed per second, sustained.
const PER_SECOND: f64 = 2.0;
/// Time limit of one fetch.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A VCEK is about 1.4 KB.
const MAX_BYTES: usize = 64 * 1024;

/// The shared rate of vendor fetches.
const RATE: Rate = Rate {
    per_second: PER_SECOND,
    burst: BURST,
};

/// Recent vendor fetches (KDS, PCS): a token bucket and the URLs that failed (with when).
#[derive(Debug)]
pub struct FetchLimiter {
    bucket: Mutex<TokenBucket>,
    failed: TtlCache<String, ()>,
}

impl Default for FetchLimiter {
    fn default() -> Self {
        Self {
            bucket: Mutex::new(TokenBucket::full(RATE, Instant::now())),
            failed: TtlCache::new(RETRY_AFTER, 10_000),
        }
    }
}

impl FetchLimiter {
    /// May `url` be fetched now? Records the attempt if so.
    pub(super) fn admit(&self, url: &str) -> std::result::Result<(), String> {
        if self.failed.get(url).is_some() {
            return Err(
                "the same URL was fetched in vain less than a minute ago; retry later".into(),
            );
        }
        self.admit_background()
            .map_err(|_| "too many vendor fetches right now; retry shortly".into())
    }

    /// May a background refresh fetch now? Only the shared rate applies: a refresh is not
    /// held back by a request's failed fetch of the same URL a moment ago.
    pub(super) fn admit_background(&self) -> std::result::Result<(), String> {
        let mut b = self
            .bucket
            .lock()
            .map_err(|_| "the fetch limiter is unavailable".to_string())?;
        b.take(RATE, Instant::now(), true)
            .map_err(|_| "too many vendor fetches right now".to_string())
    }

    pub(super) fn failed(&self, url: &str) {
        self.failed.put(url.to_string(), ());
    }
}

impl Attestation {
    /// Fetches the VCEK of the SNP report in `evidence` from KDS and stores it. `Ok(false)`
    /// when fetching is not configured; `Err` says why nothing was stored.
    pub(super) async fn fetch_vcek(&self, evidence: &[u8]) -> std::result::Result<bool, String> {
        let Some(base) = self.base.cfg.attest.amd_kds_url.as_deref() else {
            return Ok(false);
        };
        let raw = report::decode_input(evidence).map_err(|e| e.to_string())?;
        let r = report::parse_report(&raw).map_err(|e| e.to_string())?;
        let paths = kds::vcek_paths(&r);
        if paths.is_empty() {
            return Err(
                "the report is signed by a VLEK or masks its chip ID: KDS cannot serve its key"
                    .into(),
            );
        }
        let mut why = String::new();
        for path in paths {
            let url = format!("{}{path}", base.trim_end_matches('/'));
            if let Err(e) = self.kds.admit(&url) {
                why = e;
                continue;
            }
            let got = super::super::fetch::get(
                &url,
                self.base.cfg.attest.fetch_ca_pem.clone(),
                TIMEOUT,
                MAX_BYTES,
            )
            .await
            .and_then(|der| {
                let info = vcek::key_info(&der).map_err(|e| format!("{url}: {e}"))?;
                let for_chip = info.hw_id.as_ref().is_some_and(|id| {
                    !id.is_empty() && r.chip_id.get(..id.len()) == Some(id.as_slice())
                });
                if info.subject_cn.contains("VCEK") && for_chip {
                    Ok(der)
                } else {
                    Err(format!("{url} did not answer this chip's VCEK"))
                }
            });
            match got {
                Ok(der) => {
                    self.store_fetched(&der, &url)
                        .await
                        .map_err(|e| e.message)?;
                    let _ = self.fetch_ask(base, &path).await;
                    return Ok(true);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "VCEK fetch from KDS failed");
                    self.kds.failed(&url);
                    // The mirror's address and its answer stay in the server log.
                    why = "KDS did not provide a VCEK for this chip and TCB (details in the server log)".into();
                }
            }
        }
        Err(why)
    }

    /// Fetches the ASK for the report in `evidence` (whose VCEK was given but whose chain is
    /// incomplete). True if a chain was stored.
    pub(super) async fn fetch_ask_for(&self, evidence: &[u8]) -> bool {
        let Some(base) = self.base.cfg.attest.amd_kds_url.clone() else {
            return false;
        };
        let Ok(r) = report::decode_input(evidence).and_then(|raw| report::parse_report(&raw))
        else {
            return false;
        };
        // Most likely product first (reports before v3 do not name it); stop at the first chain.
        for path in kds::vcek_paths(&r) {
            if self.fetch_ask(&base, &path).await {
                return true;
            }
        }
        false
    }

    /// Fetches the ASK (with the ARK) of the VCEK at `vcek_path` from KDS (`cert_chain`) unless
    /// it is built in or the collateral store already has it. Only the pinned ARK is ever a
    /// trust anchor; the ARK in this answer is an extra copy the chain check ignores.
    async fn fetch_ask(&self, base: &str, vcek_path: &str) -> bool {
        let product: Vec<&str> = vcek_path.split('/').take(4).collect();
        let Some(name) = product.get(3) else {
            return false;
        };
        let ask_cn = format!("SEV-{name}");
        // AMD's published ASKs are built in; only an unknown product needs the fetch.
        let built_in = sovra_attest::x509::pinned::embedded(sovra_attest::evidence::Platform::Amd)
            .iter()
            .any(|d| {
                sovra_attest::x509::parse_cert(d)
                    .is_ok_and(|c| sovra_attest::x509::subject_cn(&c) == ask_cn)
            });
        if built_in {
            return false;
        }
        if let Ok(l) = self.loaded_collateral().await {
            let have = l.trust.cert_pool.iter().any(|d| {
                sovra_attest::x509::parse_cert(d)
                    .is_ok_and(|c| sovra_attest::x509::subject_cn(&c) == ask_cn)
            });
            if have {
                return false;
            }
        }
        let url = format!(
            "{}{}/cert_chain",
            base.trim_end_matches('/'),
            product.join("/")
        );
        if self.kds.admit(&url).is_err() {
            return false;
        }
        let got = super::super::fetch::get(
            &url,
            self.base.cfg.attest.fetch_ca_pem.clone(),
            TIMEOUT,
            MAX_BYTES,
        )
        .await
        .and_then(|pem| {
            let certs =
                sovra_attest::x509::certs_from_pem_or_der(&pem).map_err(|e| e.to_string())?;
            if certs.is_empty() {
                return Err(format!("{url} holds no certificate"));
            }
            Ok(pem)
        });
        match got {
            Ok(pem) => match self.store_fetched(&pem, &url).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(url = %url, error = %e.message, "storing the fetched ASK failed");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "ASK fetch from KDS failed");
                self.kds.failed(&url);
                false
            }
        }
    }

    async fn store_fetched(&self, der: &[u8], url: &str) -> Result<()> {
        let id = sovra_attest::x509::sha256_hex(der);
        let rec = CollateralRec {
            id: id.clone(),
            kind: CollateralKind::AmdCerts,
            platform: None,
            description: format!("fetched from {url}"),
            content: sovra_proto::b64::encode(der),
            create_time: self.base.now(),
            fetched: None,
        };
        let mut b = WriteBatch::new();
        b.write(model::COLLATERAL, &rec, Expect::Any)?;
        b.audit(
            AuditEvent::new(self.base.now(), EventKind::Admin, Action::CollateralFetch)
                .principal("sovra")
                .resource(format!("attestation/collateral/{id}"))
                .detail(serde_json::json!({"kind": "amd-certs", "url": url}))
                .body(),
        );
        self.base.store.commit(b).await?;
        self.collateral.invalidate();
        Ok(())
    }
}
