//! AWS Nitro Enclaves: the attestation document, a COSE_Sign1 (ES384) over a CBOR map, signed
//! by a per-enclave certificate that chains through the `cabundle` to the AWS Nitro root G1.
//!
//! Checks, in order: COSE_Sign1 structure (tagged or not) with protected `alg` ES384; the
//! document's fields and their types and sizes (AWS's rules); the certificate chain to the
//! pinned root (or an operator anchor), valid at the verification time; the ES384 signature over
//! the COSE Sig_structure; the nonce, if one is expected. A document whose PCR0, PCR1 and PCR2
//! are all zero comes from an enclave in debug mode (`debug`).
//!
//! Inputs: the raw COSE bytes, the same as base64 text, or a PEM certificate whose DNS SANs
//! carry the document as hex labels (the Evervault "cert-embedded" form).

pub mod cbor;

use crate::Verifier;
use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::evidence::{EvidenceInput, EvidenceType, Platform, VerifyContext};
use crate::x509::{parse_cert, verify_chain};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use base64::Engine;
use cbor::Item;
use serde_json::{Map, Value, json};
use sovra_proto::hex::encode as hex;

/// Verifier for [`EvidenceType::Nitro`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NitroVerifier;

fn bad(msg: impl Into<String>) -> AttestError {
    AttestError::malformed(msg.into())
}

/// The COSE bytes from any accepted input form.
pub fn decode_input(b: &[u8]) -> Result<Vec<u8>, AttestError> {
    match b.first() {
        Some(0x84) | Some(0xd2) => return Ok(b.to_vec()),
        _ => {}
    }
    let text = std::str::from_utf8(b)
        .map_err(|_| bad("a Nitro document is COSE bytes, base64 text or a PEM certificate"))?;
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return from_certificate(b);
    }
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.trim_end_matches('='))
        })
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(compact.trim_end_matches('='))
        })
        .map_err(|_| bad("the Nitro document text is not base64"))
}

/// The document carried as hex DNS labels in the SANs of the first certificate of a PEM bundle.
fn from_certificate(pem: &[u8]) -> Result<Vec<u8>, AttestError> {
    use x509_parser::extensions::GeneralName;
    let certs = crate::x509::certs_from_pem_or_der(pem)?;
    let leaf = certs
        .first()
        .ok_or_else(|| bad("the PEM holds no certificate"))?;
    let cert = parse_cert(leaf)?;
    let san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .ok_or_else(|| bad("the certificate has no subjectAltName carrying a Nitro document"))?;
    let mut best = String::new();
    for name in &san.value.general_names {
        if let GeneralName::DNSName(d) = name {
            let hexed: String = d
                .split('.')
                .take_while(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_hexdigit()))
                .collect();
            if hexed.len() > best.len() {
                best = hexed;
            }
        }
    }
    sovra_proto::hex::decode(&best)
        .filter(|b| b.len() > 64)
        .ok_or_else(|| {
            bad("no subjectAltName of the certificate carries a hex-encoded Nitro document")
        })
}

fn bstr<'a>(i: Option<&Item<'a>>, name: &str) -> Result<&'a [u8], AttestError> {
    match i {
        Some(Item::Bytes(b)) => Ok(b),
        _ => Err(bad(format!(
            "attestation document field {name} must be a byte string"
        ))),
    }
}

fn opt_bstr<'a>(
    i: Option<&Item<'a>>,
    name: &str,
    max: usize,
) -> Result<Option<&'a [u8]>, AttestError> {
    match i {
        None | Some(Item::Simple(22)) => Ok(None),
        Some(Item::Bytes(b)) if b.len() <= max => Ok(Some(b)),
        Some(Item::Bytes(_)) => Err(bad(format!("{name} is longer than {max} bytes"))),
        _ => Err(bad(format!("{name} must be a byte string or null"))),
    }
}

fn bstr_header(len: usize, out: &mut Vec<u8>, major: u8) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, len as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

/// COSE Sig_structure for Signature1 with empty external AAD.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(payload.len() + protected.len() + 32);
    s.push(0x84);
    bstr_header(10, &mut s, 3);
    s.extend_from_slice(b"Signature1");
    bstr_header(protected.len(), &mut s, 2);
    s.extend_from_slice(protected);
    s.push(0x40);
    bstr_header(payload.len(), &mut s, 2);
    s.extend_from_slice(payload);
    s
}

impl Verifier for NitroVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Nitro
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::AwsNitro
    }

    fn maa_attestation_type(&self) -> &'static str {
        "nitro"
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        let cose = decode_input(input.evidence)?;
        let top = cbor::decode(&cose)?;
        let top = match top {
            Item::Tag(18, inner) => *inner,
            other => other,
        };
        let Item::Array(parts) = top else {
            return Err(bad("COSE_Sign1 must be an array of four items"));
        };
        let [
            Item::Bytes(protected),
            _unprotected,
            Item::Bytes(payload),
            Item::Bytes(signature),
        ] = parts.as_slice()
        else {
            return Err(bad(
                "COSE_Sign1 must be [protected bstr, unprotected map, payload bstr, signature bstr]",
            ));
        };
        let alg = match cbor::decode(protected)? {
            Item::Map(m) => m
                .into_iter()
                .find(|(k, _)| *k == Item::Uint(1))
                .map(|(_, v)| v),
            _ => None,
        };
        if alg != Some(Item::Nint(34)) {
            return Err(AttestError::Unsupported(
                "the COSE protected header must say alg ES384 (-35)".into(),
            ));
        }
        let doc = cbor::decode(payload)?;
        let module_id = match doc.get("module_id") {
            Some(Item::Text(t)) if !t.is_empty() => *t,
            _ => return Err(bad("module_id must be a non-empty text string")),
        };
        match doc.get("digest") {
            Some(Item::Text("SHA384")) => {}
            _ => return Err(bad("digest must be \"SHA384\"")),
        }
        let timestamp = match doc.get("timestamp") {
            Some(Item::Uint(t)) if *t > 0 => *t,
            _ => return Err(bad("timestamp must be a positive integer (ms)")),
        };
        let mut pcrs = Map::new();
        let mut pcr_values: Vec<(u64, &[u8])> = Vec::new();
        match doc.get("pcrs") {
            Some(Item::Map(m)) if !m.is_empty() && m.len() <= 32 => {
                for (k, v) in m {
                    let (Item::Uint(i), Item::Bytes(b)) = (k, v) else {
                        return Err(bad("pcrs must map indexes to byte strings"));
                    };
                    if *i >= 32 || ![32, 48, 64].contains(&b.len()) {
                        return Err(bad(format!("PCR {i} has an invalid index or length")));
                    }
                    pcrs.insert(i.to_string(), json!(hex(b)));
                    pcr_values.push((*i, b));
                }
            }
            _ => return Err(bad("pcrs must be a map of 1 to 32 entries")),
        }
        let certificate = bstr(doc.get("certificate"), "certificate")?;
        let cabundle: Vec<Vec<u8>> = match doc.get("cabundle") {
            Some(Item::Array(a)) if a.len() > crate::x509::MAX_EVIDENCE_CERTS => {
                return Err(bad(format!(
                    "cabundle holds more than {} certificates",
                    crate::x509::MAX_EVIDENCE_CERTS
                )));
            }
            Some(Item::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|c| match c {
                    Item::Bytes(b) if !b.is_empty() && b.len() <= 1024 => Ok(b.to_vec()),
                    _ => Err(bad(
                        "cabundle entries must be certificates of 1 to 1024 bytes",
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad("cabundle must be a non-empty array")),
        };
        let public_key = opt_bstr(doc.get("public_key"), "public_key", 1024)?;
        // The AWS CDDL: `bytes .size (0..1024)` for all three.
        let user_data = opt_bstr(doc.get("user_data"), "user_data", 1024)?;
        let nonce = opt_bstr(doc.get("nonce"), "nonce", 1024)?;

        let chain = verify_chain(
            certificate,
            &cabundle,
            Platform::AwsNitro,
            ctx.trust,
            ctx.now,
        )?;
        let leaf = parse_cert(certificate)?;
        UnparsedPublicKey::new(
            &ECDSA_P384_SHA384_FIXED,
            leaf.public_key().subject_public_key.data.as_ref(),
        )
        .verify(&sig_structure(protected, payload), signature)
        .map_err(|_| {
            AttestError::SignatureInvalid(
                "the COSE signature over the attestation document does not verify".into(),
            )
        })?;
        if let Some(expected) = input.nonce
            && nonce != Some(expected)
        {
            return Err(AttestError::NonceMismatch(
                "the document's nonce is not the expected one".into(),
            ));
        }
        let zero = |i: u64| {
            pcr_values
                .iter()
                .any(|(n, b)| *n == i && b.iter().all(|x| *x == 0))
        };
        let debug = zero(0) && zero(1) && zero(2);
        let mut m = Map::new();
        m.insert("module_id".into(), json!(module_id));
        m.insert("digest".into(), json!("SHA384"));
        m.insert("timestamp_ms".into(), json!(timestamp));
        for (i, v) in &pcrs {
            m.insert(format!("pcr{i}"), v.clone());
        }
        m.insert("pcrs".into(), Value::Object(pcrs));
        let opt = |b: Option<&[u8]>| b.map_or(Value::Null, |b| json!(hex(b)));
        m.insert("public_key".into(), opt(public_key));
        m.insert("user_data".into(), opt(user_data));
        m.insert("nonce".into(), opt(nonce));
        // report_data: the user data if any, else the nonce (what a runtime-data hash binds to).
        let bound = user_data.or(nonce).unwrap_or_default().to_vec();
        Ok(VerifiedClaims::new(
            EvidenceType::Nitro,
            m,
            bound,
            debug,
            None,
            crate::x509::TrustRoot::of_chain(&chain, Platform::AwsNitro),
        ))
    }
}
