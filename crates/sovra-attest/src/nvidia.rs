//! NVIDIA Hopper GPUs: an SPDM 1.1 GET_MEASUREMENTS exchange (request with the verifier's nonce,
//! response with the measurement record, NVIDIA opaque data and an ECDSA P-384 signature over
//! the transcript), signed by the GPU's attestation key whose certificate chains to the NVIDIA
//! Device Identity CA.
//!
//! Checks, in order: request and response layout (SPDM 1.1, GET_MEASUREMENTS / MEASUREMENTS,
//! signature requested); the device chain (leaf first, as `--cert-chain`) to the pinned root or
//! an operator anchor, valid at the time; the signature over request ‖ response-without-signature;
//! the FWID in the leaf certificate (TCG DICE extension 2.23.133.5.4.1) equal to the FWID in the
//! opaque data; the requester nonce, if one is expected.

use crate::Verifier;
use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::evidence::{EvidenceInput, EvidenceType, Platform, VerifyContext};
use crate::x509::{parse_cert, verify_chain};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use serde_json::{Map, Value, json};
use sovra_proto::hex::encode as hex;

/// Verifier for [`EvidenceType::NvidiaGpu`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NvidiaVerifier;

const SIG_LEN: usize = 96;
const FWID_OID: &str = "2.23.133.5.4.1";

fn bad(m: impl Into<String>) -> AttestError {
    AttestError::malformed(m.into())
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], AttestError> {
        let end = self
            .i
            .checked_add(n)
            .ok_or_else(|| bad(format!("{what}: length overflow")))?;
        let s = self
            .b
            .get(self.i..end)
            .ok_or_else(|| bad(format!("SPDM report truncated in {what}")))?;
        self.i = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, AttestError> {
        Ok(self.take(1, what)?.first().copied().unwrap_or_default())
    }
    fn le(&mut self, n: usize, what: &str) -> Result<usize, AttestError> {
        Ok(self
            .take(n, what)?
            .iter()
            .rev()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b)))
    }
}

/// The name and rendering of an NVIDIA opaque-data field.
fn opaque_field(t: usize) -> Option<(&'static str, bool)> {
    Some(match t {
        1 => ("CERT_ISSUER_NAME", true),
        2 => ("CERT_AUTHORITY_KEY_IDENTIFIER", false),
        3 => ("DRIVER_VERSION", true),
        4 => ("GPU_INFO", false),
        5 => ("SKU", true),
        6 => ("VBIOS_VERSION", false),
        7 => ("MANUFACTURER_ID", false),
        8 => ("TAMPER_DETECTION", false),
        9 => ("SMC", false),
        10 => ("VPR", false),
        11 => ("NVDEC0_STATUS", false),
        12 => ("MSRSCNT", false),
        13 => ("CPRINFO", false),
        14 => ("BOARD_ID", false),
        15 => ("CHIP_SKU", true),
        16 => ("CHIP_SKU_MOD", true),
        17 => ("PROJECT", true),
        18 => ("PROJECT_SKU", true),
        19 => ("PROJECT_SKU_MOD", true),
        20 => ("FWID", false),
        21 => ("PROTECTED_PCIE_STATUS", false),
        22 => ("SWITCH_PDI", false),
        23 => ("FLOORSWEPT_PORTS", false),
        24 => ("POSITION_ID", false),
        25 => ("LOCK_SWITCH_STATUS", false),
        32 => ("GPU_LINK_CONN", false),
        33 => ("SYS_ENABLE_STATUS", false),
        34 => ("OPAQUE_DATA_VERSION", false),
        35 => ("CHIP_INFO", false),
        36 => ("FEATURE_FLAG", false),
        _ => return None,
    })
}

/// The report bytes from hex text or raw binary.
fn decode_input(b: &[u8]) -> Result<Vec<u8>, AttestError> {
    if b.first() == Some(&0x11) {
        return Ok(b.to_vec());
    }
    let text: String = std::str::from_utf8(b)
        .map_err(|_| bad("an NVIDIA report is SPDM bytes or their hex"))?
        .split_whitespace()
        .collect();
    sovra_proto::hex::decode(&text).ok_or_else(|| bad("the NVIDIA report text is not hex"))
}

/// The FWID (last 48 bytes of the TCG DICE FWID extension) of a certificate, if present.
fn cert_fwid(der: &[u8]) -> Result<Option<Vec<u8>>, AttestError> {
    let c = parse_cert(der)?;
    Ok(c.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == FWID_OID)
        .and_then(|e| e.value.len().checked_sub(48).and_then(|s| e.value.get(s..)))
        .map(<[u8]>::to_vec))
}

impl Verifier for NvidiaVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::NvidiaGpu
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Nvidia
    }

    fn maa_attestation_type(&self) -> &'static str {
        "nvidia-gpu"
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        let report = decode_input(input.evidence)?;
        let mut c = Cur { b: &report, i: 0 };
        let (rv, rc, p1, p2) = (
            c.u8("request")?,
            c.u8("request")?,
            c.u8("request")?,
            c.u8("request")?,
        );
        if rv != 0x11 || rc != 0xE0 {
            return Err(AttestError::Unsupported(format!(
                "expected an SPDM 1.1 GET_MEASUREMENTS request, found version {rv:#x} code {rc:#x}"
            )));
        }
        if p1 & 1 != 1 {
            return Err(bad("the request did not ask for a signature"));
        }
        let req_nonce = c.take(32, "request nonce")?;
        let slot = c.u8("request slot")?;
        let (sv, sc) = (c.u8("response")?, c.u8("response")?);
        if sv != 0x11 || sc != 0x60 {
            return Err(AttestError::Unsupported(format!(
                "expected an SPDM 1.1 MEASUREMENTS response, found version {sv:#x} code {sc:#x}"
            )));
        }
        c.take(2, "response params")?;
        let blocks = c.u8("number of blocks")?;
        let record_len = c.le(3, "record length")?;
        let record = c.take(record_len, "measurement record")?;
        let resp_nonce = c.take(32, "responder nonce")?;
        let opaque_len = c.le(2, "opaque length")?;
        let opaque = c.take(opaque_len, "opaque data")?;
        let signed_len = c.i;
        let signature = c.take(SIG_LEN, "signature")?;
        // The Confidential Containers NVIDIA attester sends the report in a zero-padded
        // buffer: zeros after the signature are padding; anything else is refused.
        if report
            .get(c.i..)
            .is_some_and(|rest| rest.iter().any(|b| *b != 0))
        {
            return Err(bad("non-zero bytes after the SPDM signature"));
        }
        // Measurement blocks.
        let mut measurements = Map::new();
        let mut r = Cur { b: record, i: 0 };
        for _ in 0..blocks {
            let index = r.u8("measurement index")?;
            let _spec = r.u8("measurement spec")?;
            let size = r.le(2, "measurement size")?;
            let m = r.take(size, "measurement")?;
            let mut d = Cur { b: m, i: 0 };
            let _ty = d.u8("DMTF type")?;
            let vs = d.le(2, "DMTF size")?;
            measurements.insert(index.to_string(), json!(hex(d.take(vs, "DMTF value")?)));
        }
        if r.i != record.len() {
            return Err(bad(
                "the measurement record length does not match its blocks",
            ));
        }
        // Opaque data: (type u16, size u16, value)*.
        let mut fields = Map::new();
        let mut fwid = None;
        let mut o = Cur { b: opaque, i: 0 };
        while o.i < opaque.len() {
            let t = o.le(2, "opaque type")?;
            let s = o.le(2, "opaque size")?;
            let v = o.take(s, "opaque value")?;
            if t == 20 {
                fwid = Some(v.to_vec());
            }
            if let Some((name, text)) = opaque_field(t) {
                let val = if text {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                } else {
                    hex(v)
                };
                fields.insert(name.into(), json!(val));
            }
        }
        // Chain and signature.
        let certs = crate::x509::evidence_certs(input.cert_chain.iter().copied())?;
        let leaf = certs.first().ok_or_else(|| {
            AttestError::CollateralMissing(
                "the GPU's certificate chain is missing: pass it (leaf first) with --cert-chain"
                    .into(),
            )
        })?;
        let chain = verify_chain(leaf, &certs, Platform::Nvidia, ctx.trust, ctx.now)?;
        let leaf_cert = parse_cert(leaf)?;
        let message = report.get(..signed_len).unwrap_or_default();
        UnparsedPublicKey::new(
            &ECDSA_P384_SHA384_FIXED,
            leaf_cert.public_key().subject_public_key.data.as_ref(),
        )
        .verify(message, signature)
        .map_err(|_| {
            AttestError::SignatureInvalid(
                "the SPDM measurement signature does not verify with the GPU's key".into(),
            )
        })?;
        if let (Some(cert), Some(op)) = (cert_fwid(leaf)?, &fwid)
            && &cert != op
        {
            return Err(AttestError::BindingInvalid(
                "the FWID in the opaque data differs from the one in the device certificate".into(),
            ));
        }
        if let Some(n) = input.nonce
            && n != req_nonce
        {
            return Err(AttestError::NonceMismatch(
                "the SPDM request carries another nonce".into(),
            ));
        }
        let mut m = Map::new();
        m.insert("nonce".into(), json!(hex(req_nonce)));
        m.insert("responder_nonce".into(), json!(hex(resp_nonce)));
        m.insert("slot".into(), json!(slot));
        m.insert("measurement_request".into(), json!(p2));
        m.insert("measurements".into(), Value::Object(measurements));
        m.insert("opaque".into(), Value::Object(fields));
        if let Some(d) = m
            .get("opaque")
            .and_then(|o| o.get("DRIVER_VERSION"))
            .cloned()
        {
            m.insert("driver_version".into(), d);
        }
        Ok(VerifiedClaims::new(
            EvidenceType::NvidiaGpu,
            m,
            req_nonce.to_vec(),
            false,
            None,
            crate::x509::TrustRoot::of_chain(&chain, Platform::Nvidia),
        ))
    }
}
