//! `sovra evidence verify`: verify attestation evidence offline, as of a pinned time.
//!
//! Nothing is fetched: trust comes from the pinned vendor roots, the certificates given with
//! `--cert-chain`, and roots the operator adds with `--trust-anchor`.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, say};
use clap::{Args, Subcommand};
use sovra_attest::evidence::Anchor;
use sovra_attest::{EvidenceInput, EvidenceType, TrustStore, VerifyContext, verifier_for};
use std::path::{Path, PathBuf};

/// `sovra evidence …`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Verify evidence offline and print its claims as one JSON object.
    Verify(VerifyArgs),
}

/// `sovra evidence verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Evidence type: sev-snp, az-snp-vtpm, az-tdx-vtpm, tdx, sgx, tpm, nitro, nvidia-gpu.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: String,
    /// Verification time (RFC 3339, e.g. 2025-01-01T00:00:00Z); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Certificates that travel with the evidence (PEM bundle or DER); repeatable.
    #[arg(long = "cert-chain", value_name = "FILE")]
    pub cert_chain: Vec<PathBuf>,
    /// Collateral (Intel PCS/PCCS JSON for tdx/sgx).
    #[arg(long, value_name = "FILE")]
    pub collateral: Option<PathBuf>,
    /// The nonce the evidence must carry (hex).
    #[arg(long, value_name = "HEX")]
    pub nonce: Option<String>,
    /// Event log to replay (TCG crypto-agile log, or CCEL for TDX).
    #[arg(long = "event-log", value_name = "FILE")]
    pub event_log: Option<PathBuf>,
    /// An extra root certificate to trust for this evidence type's platform (e.g. a TPM AK/EK
    /// CA, or the root of a simulated SNP chain); repeatable.
    #[arg(long = "trust-anchor", value_name = "FILE")]
    pub trust_anchor: Vec<PathBuf>,
    /// The evidence file, exactly as the platform produced it.
    pub evidence: PathBuf,
}

/// Runs `sovra evidence …`.
pub fn run(g: &Global, cmd: EvidenceCmd) -> Result<()> {
    match cmd {
        EvidenceCmd::Verify(a) => verify(g, a),
    }
}

fn read(p: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(p)
        .map_err(|e| CliError::Usage(format!("cannot read {what} {}: {e}", p.display())))
}

fn verify(g: &Global, a: VerifyArgs) -> Result<()> {
    let kind: EvidenceType = a
        .kind
        .parse()
        .map_err(|e: sovra_proto::evidence::UnknownEvidenceType| CliError::Usage(e.to_string()))?;
    let now = match &a.at {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| CliError::Usage(format!("--at {t:?} is not an RFC 3339 time: {e}")))?
            .unix_timestamp(),
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let evidence = read(&a.evidence, "evidence")?;
    let chain: Vec<Vec<u8>> = a
        .cert_chain
        .iter()
        .map(|p| read(p, "certificate chain"))
        .collect::<Result<_>>()?;
    let chain_refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let collateral = a
        .collateral
        .as_deref()
        .map(|p| read(p, "collateral"))
        .transpose()?;
    let event_log = a
        .event_log
        .as_deref()
        .map(|p| read(p, "event log"))
        .transpose()?;
    let nonce = a
        .nonce
        .as_deref()
        .map(|h| {
            sovra_proto::hex::decode(h.trim())
                .ok_or_else(|| CliError::Usage("--nonce must be hex".into()))
        })
        .transpose()?;
    let mut trust = TrustStore::default();
    for p in &a.trust_anchor {
        for der in sovra_attest::x509::certs_from_pem_or_der(&read(p, "trust anchor")?)
            .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?
        {
            trust.anchors.push(Anchor {
                platform: sovra_attest::evidence::Platform::of(kind),
                der,
            });
        }
    }
    let input = EvidenceInput {
        evidence: &evidence,
        cert_chain: &chain_refs,
        collateral: collateral.as_deref(),
        event_log: event_log.as_deref(),
        nonce: nonce.as_deref(),
    };
    let ctx = VerifyContext { now, trust: &trust };
    let claims = verifier_for(kind)
        .verify(&input, &ctx)
        .map_err(|e| CliError::Coded {
            code: e.code().as_str().into(),
            message: e.to_string(),
        })?;
    let json = claims.to_json();
    // The claims are the output in both modes: one JSON object.
    emit(g, &json, |j| {
        say(&serde_json::to_string(j).unwrap_or_default())
    });
    Ok(())
}
