//! The guest side of secure key release (DESIGN.md, steps ① to ⑦): inside a confidential VM,
//! make an ephemeral RSA key, bind it (and the server's nonce) into TEE evidence, attest, ask
//! for the key, and unwrap it inside the guest.
//!
//! Evidence collectors: [`collect::ConfigfsTsm`] (SEV-SNP and TDX through the kernel's
//! configfs-tsm interface), [`collect::SevGuest`] (`/dev/sev-guest` on older kernels),
//! [`tpm::TpmCollector`] (TPM-only machines, tpm2-tools), [`azure::AzureVtpm`] (Azure
//! confidential VMs: HCL report and quote from the vTPM) and [`simsnp::SimulatedSnp`]
//! (SNP-format reports signed by a test chain made at runtime, for machines without SEV
//! hardware; the server trusts it only when an operator adds its root as a trust anchor).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod azure;
pub mod collect;
pub mod flow;
pub mod simsnp;
pub mod tpm;

/// An agent failure, with a stable code where the server gave one.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server refused a step (code and message from the server).
    #[error("{step}: {code}: {message}")]
    Server {
        /// Which step.
        step: &'static str,
        /// Stable error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Evidence could not be collected.
    #[error("collecting evidence: {0}")]
    Collect(String),
    /// A local cryptographic or decoding step failed.
    #[error("{0}")]
    Local(String),
}
