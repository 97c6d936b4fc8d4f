//! The scheduler: runs each service's scheduled work every tick (key destruction and rotation,
//! expiry of nonces and challenges, refresh of fetched Intel collateral, the audit anchor).

use super::Sovra;
use std::sync::Arc;
use std::time::Duration;

impl Sovra {
    /// Runs the scheduler until `shutdown` resolves.
    pub async fn run_scheduler(
        self: Arc<Self>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.keys.destroy_due().await {
                tracing::warn!(error = %e, "scheduled destruction pass failed");
            }
            if let Err(e) = self.keys.rotate_due().await {
                tracing::warn!(error = %e, "scheduled rotation pass failed");
            }
            if let Err(e) = self.keys.purge_due().await {
                tracing::warn!(error = %e, "deleted-key purge pass failed");
            }
            if let Err(e) = self.release.expire_nonces().await {
                tracing::warn!(error = %e, "release nonce cleanup failed");
            }
            if let Err(e) = self.attest.expire_challenges().await {
                tracing::warn!(error = %e, "TPM challenge cleanup failed");
            }
            if let Err(e) = self.attest.refresh_intel_collateral().await {
                tracing::warn!(error = %e, "Intel collateral refresh pass failed");
            }
            self.base.audit.flush_denials().await;
            if let Err(e) = self.base.audit.advance_anchor(self.base.now()).await {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {
                    self.base.audit.flush_denials().await;
                    if let Err(e) = self.base.audit.advance_anchor(self.base.now()).await {
                        tracing::warn!(error = %e, "audit checkpoint failed");
                    }
                    return;
                }
            }
        }
    }
}
