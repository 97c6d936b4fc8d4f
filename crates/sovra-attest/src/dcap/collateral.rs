//! Intel collateral in the PCS/PCCS shape (as `dcap-qvl`'s `QuoteCollateralV3` serialises it):
//! TCB info and QE identity (JSON text, each with its ECDSA signature and the issuer chain) and
//! the PCK and root CA CRLs (hex DER).

// `serde_json::Value["key"]` yields `Null` for a missing key or a non-object and never
// panics; it is the only indexing in this file.
#![allow(clippy::indexing_slicing)]

use crate::error::AttestError;
use crate::evidence::{Platform, VerifyContext};
use crate::x509::{parse_cert, verify_chain};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// The collateral bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct Collateral {
    /// PEM chain of the PCK CRL issuer.
    #[serde(default)]
    pub pck_crl_issuer_chain: String,
    /// Root CA CRL (hex DER).
    pub root_ca_crl: String,
    /// PCK CRL (hex DER).
    pub pck_crl: String,
    /// PEM chain of the TCB signing key.
    pub tcb_info_issuer_chain: String,
    /// TCB info JSON text.
    pub tcb_info: String,
    /// Its signature (hex r ‖ s).
    pub tcb_info_signature: String,
    /// PEM chain of the QE identity signing key.
    pub qe_identity_issuer_chain: String,
    /// QE identity JSON text.
    pub qe_identity: String,
    /// Its signature (hex r ‖ s).
    pub qe_identity_signature: String,
}

/// Verified collateral.
#[derive(Debug, Clone)]
pub struct Checked {
    /// TCB info (the `tcbInfo` object).
    pub tcb_info: Value,
    /// QE identity (the `enclaveIdentity` object).
    pub qe_identity: Value,
    /// PCK CRL DER.
    pub pck_crl: Vec<u8>,
    /// Root CA CRL DER.
    pub root_ca_crl: Vec<u8>,
}

fn invalid(m: impl Into<String>) -> AttestError {
    AttestError::CollateralInvalid(m.into())
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2025-06-19T10:16:03Z`).
pub fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn verify_signed_json(
    what: &str,
    text: &str,
    sig_hex: &str,
    chain_pem: &str,
    ctx: &VerifyContext<'_>,
) -> Result<Value, AttestError> {
    let certs = crate::x509::evidence_certs([chain_pem.as_bytes()])?;
    let signer = certs
        .first()
        .ok_or_else(|| invalid(format!("{what}: no issuer chain")))?;
    verify_chain(signer, &certs, Platform::Intel, ctx.trust, ctx.now)
        .map_err(|e| invalid(format!("{what} signing chain: {e}")))?;
    let sig = sovra_proto::hex::decode(sig_hex)
        .ok_or_else(|| invalid(format!("{what}: signature is not hex")))?;
    let cert = parse_cert(signer)?;
    // The signed bytes are the JSON object as served, between the outer braces' key.
    let v: Value =
        serde_json::from_str(text).map_err(|_| invalid(format!("{what} is not JSON")))?;
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(text.as_bytes(), &sig)
    .map_err(|_| {
        invalid(format!(
            "the {what} signature does not verify: it was altered or signed by another key"
        ))
    })?;
    Ok(v)
}

fn window(what: &str, v: &Value, now: i64) -> Result<(), AttestError> {
    let get = |k: &str| v.get(k).and_then(Value::as_str).and_then(rfc3339);
    let (Some(issue), Some(next)) = (get("issueDate"), get("nextUpdate")) else {
        return Err(invalid(format!("{what} has no issueDate/nextUpdate")));
    };
    if now < issue || now >= next {
        return Err(AttestError::Expired(format!(
            "{what} is valid from {} until {} (exclusive); import current collateral",
            v["issueDate"].as_str().unwrap_or(""),
            v["nextUpdate"].as_str().unwrap_or("")
        )));
    }
    Ok(())
}

/// Parses and verifies `bytes`: signatures of TCB info and QE identity by Intel-rooted keys,
/// and their validity windows at the verification time.
pub fn check(bytes: &[u8], ctx: &VerifyContext<'_>) -> Result<Checked, AttestError> {
    let c: Collateral = serde_json::from_slice(bytes).map_err(|e| {
        invalid(format!(
            "the collateral is not the expected JSON bundle: {e}"
        ))
    })?;
    let tcb = verify_signed_json(
        "TCB info",
        &c.tcb_info,
        &c.tcb_info_signature,
        &c.tcb_info_issuer_chain,
        ctx,
    )?;
    let qe = verify_signed_json(
        "QE identity",
        &c.qe_identity,
        &c.qe_identity_signature,
        &c.qe_identity_issuer_chain,
        ctx,
    )?;
    // Accept both the bare object and PCS's {"tcbInfo": …} wrapper.
    let tcb_info = tcb.get("tcbInfo").cloned().unwrap_or(tcb);
    let qe_identity = qe.get("enclaveIdentity").cloned().unwrap_or(qe);
    window("TCB info", &tcb_info, ctx.now)?;
    window("QE identity", &qe_identity, ctx.now)?;
    Ok(Checked {
        tcb_info,
        qe_identity,
        pck_crl: sovra_proto::hex::decode(&c.pck_crl)
            .ok_or_else(|| invalid("pck_crl is not hex DER"))?,
        root_ca_crl: sovra_proto::hex::decode(&c.root_ca_crl)
            .ok_or_else(|| invalid("root_ca_crl is not hex DER"))?,
    })
}

/// What a bundle is for, read without verifying it: enough to index a collateral store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// FMSPC of its TCB info, lowercase hex.
    pub fmspc: String,
    /// `TDX` or `SGX` (TCB info `id`; version 2 TCB info predates TDX and has none).
    pub tee: String,
    /// The TCB info's `nextUpdate`, when present.
    pub next_update: Option<String>,
    /// The TCB info's `tcbEvaluationDataNumber` (0 when absent): higher is newer.
    pub tcb_evaluation_data_number: u64,
}

/// Reads the [`Summary`] of a bundle; fails when it is not the expected JSON bundle.
pub fn summary(bytes: &[u8]) -> Result<Summary, AttestError> {
    let c: Collateral = serde_json::from_slice(bytes).map_err(|e| {
        invalid(format!(
            "the collateral is not the expected JSON bundle: {e}"
        ))
    })?;
    let tcb: Value = serde_json::from_str(&c.tcb_info)
        .map_err(|_| invalid("the collateral's tcb_info is not JSON"))?;
    let tcb = tcb.get("tcbInfo").cloned().unwrap_or(tcb);
    let fmspc = tcb["fmspc"]
        .as_str()
        .filter(|f| f.len() == 12 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| invalid("the collateral's TCB info has no FMSPC (12 hex digits)"))?
        .to_ascii_lowercase();
    Ok(Summary {
        fmspc,
        tee: tcb["id"].as_str().unwrap_or("SGX").to_ascii_uppercase(),
        next_update: tcb["nextUpdate"].as_str().map(str::to_owned),
        tcb_evaluation_data_number: tcb["tcbEvaluationDataNumber"].as_u64().unwrap_or(0),
    })
}
