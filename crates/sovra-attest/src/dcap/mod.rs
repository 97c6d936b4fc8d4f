//! Intel DCAP (ECDSA) quote verification, shared by the TDX and SGX verifiers.
//!
//! Checks, in order: quote layout; the PCK chain (from the quote's certification data) to the
//! pinned Intel SGX root, valid at the time; collateral signatures (TCB info, QE identity) by
//! Intel-rooted keys and their validity windows; PCK and root CA CRLs (current, signed by the
//! right CA, not revoking the chain); the QE report signed by the PCK key; the QE report data
//! binding the attestation key and QE authentication data; the quote signature by the
//! attestation key; FMSPC and PCE-ID of the PCK certificate matching the TCB info; QE identity;
//! TCB levels (platform, TDX module, QE) merged into one status; the nonce, if expected.

// `serde_json::Value["key"]` yields `Null` for a missing key or a non-object and never
// panics; it is the only indexing in this file.
#![allow(clippy::indexing_slicing)]

pub mod collateral;
pub mod pck;
pub mod pcs;
pub mod quote;
pub mod tcb;

use crate::error::AttestError;
use crate::evidence::{EvidenceInput, Platform, VerifyContext};
use crate::x509::{crl_revoked_serials, parse_cert, serial, verify_chain};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use quote::Quote;

/// A verified quote with its collateral verdicts.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The quote.
    pub quote: Quote,
    /// The PCK certificate's SGX extension.
    pub pck: pck::PckInfo,
    /// Merged TCB status.
    pub status: tcb::Status,
    /// Platform status alone.
    pub platform: tcb::Status,
    /// QE status alone.
    pub qe: tcb::Status,
    /// TDX module status, when TEE_TCB_SVN says a module identity applies.
    pub module: Option<tcb::Status>,
    /// The TCB info's evaluation data number.
    pub tcb_evaluation_data_number: Option<u64>,
    /// Where the PCK chain ended.
    pub root: crate::x509::TrustRoot,
}

/// The quote bytes from raw binary or base64 text.
pub fn decode_input(b: &[u8]) -> Result<Vec<u8>, AttestError> {
    if matches!(b.first(), Some(3..=5)) && b.get(1) == Some(&0) {
        return Ok(b.to_vec());
    }
    use base64::Engine;
    let text: String = std::str::from_utf8(b)
        .map_err(|_| AttestError::malformed("a quote is binary, or base64 text"))?
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('='))
        })
        .map_err(|_| AttestError::malformed("the quote is neither a binary quote nor base64"))
}

fn p256_verify(pubkey_xy: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(pubkey_xy);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(msg, sig)
        .is_ok()
}

/// Verifies a DCAP quote with its collateral.
pub fn verify(input: &EvidenceInput<'_>, ctx: &VerifyContext<'_>) -> Result<Verified, AttestError> {
    let raw = decode_input(input.evidence)?;
    let q = quote::parse(&raw)?;
    let collateral = input.collateral.ok_or_else(|| {
        AttestError::CollateralMissing(
            "Intel collateral (TCB info, QE identity, CRLs) is needed: pass it with --collateral or import it with `sovra attestation collateral import --kind intel FILE`".into(),
        )
    })?;
    // PCK chain.
    let chain = crate::x509::evidence_certs([q.pck_chain_pem.as_slice()])?;
    let leaf = chain
        .first()
        .ok_or_else(|| AttestError::malformed("the quote carries no PCK certificate"))?;
    let verified_chain = verify_chain(leaf, &chain, Platform::Intel, ctx.trust, ctx.now)?;
    let pck = pck::pck_info(leaf)?;
    // Collateral.
    let col = collateral::check(collateral, ctx)?;
    if let (Some(ca), Some(root)) = (verified_chain.get(1), verified_chain.last()) {
        let ca_cert = parse_cert(ca)?;
        let root_cert = parse_cert(root)?;
        let leaf_cert = parse_cert(leaf)?;
        let revoked = crl_revoked_serials(&col.pck_crl, &ca_cert, ctx.now)?;
        if revoked.contains(&serial(&leaf_cert)) {
            return Err(AttestError::Revoked(
                "the PCK certificate is revoked by the PCK CRL".into(),
            ));
        }
        let revoked_ca = crl_revoked_serials(&col.root_ca_crl, &root_cert, ctx.now)?;
        if revoked_ca.contains(&serial(&ca_cert)) {
            return Err(AttestError::Revoked(
                "the PCK CA certificate is revoked by the root CA CRL".into(),
            ));
        }
    }
    // QE report by the PCK key.
    let leaf_cert = parse_cert(leaf)?;
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        leaf_cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(&q.qe_report.raw, &q.qe_report_signature)
    .map_err(|_| {
        AttestError::SignatureInvalid(
            "the QE report signature does not verify with the PCK key".into(),
        )
    })?;
    // QE report data = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes.
    let mut ctx_h = digest::Context::new(&digest::SHA256);
    ctx_h.update(&q.attestation_key);
    ctx_h.update(&q.qe_auth_data);
    let h = ctx_h.finish();
    let (head, tail) = q.qe_report.report_data.split_at(32);
    if head != h.as_ref() || tail.iter().any(|b| *b != 0) {
        return Err(AttestError::BindingInvalid(
            "the QE report does not bind the attestation key".into(),
        ));
    }
    if !p256_verify(&q.attestation_key, &q.signed, &q.signature) {
        return Err(AttestError::SignatureInvalid(
            "the quote signature does not verify with the attestation key".into(),
        ));
    }
    // TCB info must be for this platform.
    let fmspc = sovra_proto::hex::encode(&pck.fmspc);
    let tcb_fmspc = col.tcb_info["fmspc"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    if tcb_fmspc != fmspc {
        return Err(AttestError::CollateralMissing(format!(
            "the collateral's TCB info is for FMSPC {tcb_fmspc}, this platform is {fmspc}: import the collateral for FMSPC {fmspc}"
        )));
    }
    let pceid = sovra_proto::hex::encode(&pck.pceid);
    if col.tcb_info["pceId"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase()
        != pceid
    {
        return Err(AttestError::CollateralInvalid(format!(
            "the TCB info's PCE-ID is not {pceid}"
        )));
    }
    let tee_svn = match &q.body {
        quote::Body::Td(t) => Some(t.tee_tcb_svn),
        quote::Body::Sgx(_) => None,
    };
    let expected_id = if tee_svn.is_some() { "TDX" } else { "SGX" };
    if col.tcb_info["id"]
        .as_str()
        .is_some_and(|id| id != expected_id)
    {
        return Err(AttestError::CollateralInvalid(format!(
            "the TCB info is for {}, not {expected_id}",
            col.tcb_info["id"]
        )));
    }
    let qe_status = tcb::qe(&col.qe_identity, &q.qe_report)?;
    let platform = tcb::platform(&col.tcb_info, &pck, tee_svn.as_ref())?;
    let module = match &q.body {
        quote::Body::Td(t) => tcb::tdx_module(&col.tcb_info, &t.tee_tcb_svn, &t.mr_signer_seam)?,
        quote::Body::Sgx(_) => None,
    };
    let mut status = tcb::merge(&platform, &qe_status);
    if let Some(m) = &module {
        status = tcb::merge(&status, m);
    }
    if status.status == "Revoked" {
        return Err(AttestError::TcbNotAcceptable(
            "the platform's TCB is revoked".into(),
        ));
    }
    let report_data = match &q.body {
        quote::Body::Td(t) => t.report_data,
        quote::Body::Sgx(s) => s.report_data,
    };
    if let Some(n) = input.nonce
        && (n.is_empty() || n.len() > 64 || report_data.get(..n.len()) != Some(n))
    {
        return Err(AttestError::NonceMismatch(
            "REPORTDATA does not start with the expected nonce".into(),
        ));
    }
    Ok(Verified {
        root: crate::x509::TrustRoot::of_chain(&verified_chain, Platform::Intel),
        tcb_evaluation_data_number: col.tcb_info["tcbEvaluationDataNumber"].as_u64(),
        quote: q,
        pck,
        status,
        platform,
        qe: qe_status,
        module,
    })
}
