//! Microsoft Azure Attestation's own TPM protocol (what the Azure SDKs' `attest_tpm` carries;
//! Microsoft's "TPM and VBS enclave attestation protocol"), the request half: a JWS (`PS256`,
//! `typ: attReq`) signed by the requester's `attest_key`, whose payload holds the service's
//! challenge and the Windows platform evidence:
//!
//! - `aik_cert` (X.509, DER) and `aik_pub` (JWK): the AIK, trusted when its certificate chains
//!   to a CA the operator configured for the TPM platform (an AIK CA vouches that the key is a
//!   restricted TPM key) and certifies exactly `aik_pub`;
//! - `current_claim`: the platform attestation blob Windows' `NCryptCreateClaim`
//!   (`NCRYPT_CLAIM_PLATFORM`) makes: a little-endian header (`PCP_PLATFORM_ATTESTATION_BLOB`,
//!   magic `PADS`, or `PAD2` with the PCR bank), the 24 PCR values of the bank, the quote
//!   (TPMS_ATTEST), the AIK's raw RSASSA signature over it, and a filtered TCG log. The quote's
//!   qualifying data must be the challenge;
//! - `srtm_boot_log`: the TCG log (Windows' WBCL), replayed against the quoted PCRs.
//!
//! `att_type: "vbs"` (a VBS enclave report on top) is not supported. `boot_claim` and the resume
//! and DRTM logs are not used. The service context and the challenge are the caller's to check
//! (`peek` reads them); the challenge arrives here as the expected nonce.

use super::input::QuoteIn;
use super::structs::{self, ALG_SHA1, ALG_SHA256, PublicKey};
use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::evidence::{EvidenceInput, Platform, VerifyContext};
use crate::x509::verify_chain;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use serde_json::{Map, Value, json};
use sovra_crypto::jws::{Jws, b64url_decode};
use std::collections::BTreeMap;

/// `PCP_PLATFORM_ATTESTATION_MAGIC` ('SDAP' as a little-endian u32).
const MAGIC_V1: &[u8; 4] = b"PADS";
/// `PCP_PLATFORM_ATTESTATION_MAGIC2` ('2DAP'): adds the PCR bank.
const MAGIC_V2: &[u8; 4] = b"PAD2";
/// `TPM_VERSION_20`.
const PLATFORM_TPM20: u32 = 2;
/// PCRs a platform blob carries.
const PLATFORM_PCRS: usize = 24;
/// Most custom claims a request may carry, and the longest name and value.
const MAX_CUSTOM_CLAIMS: usize = 64;
const MAX_CLAIM_NAME: usize = 256;
const MAX_CLAIM_VALUE: usize = 4096;

/// Whether `evidence` is this protocol's request (a compact JWS, not Sovra's JSON envelope or a
/// protobuf).
pub fn is_request(evidence: &[u8]) -> bool {
    evidence.starts_with(b"eyJ")
        && evidence.iter().filter(|b| **b == b'.').count() == 2
        && evidence
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

fn bad(m: impl Into<String>) -> AttestError {
    AttestError::malformed(format!("TPM attestation request: {}", m.into()))
}

fn payload(jws: &Jws) -> Result<Map<String, Value>, AttestError> {
    jws.claims()
        .map_err(|_| bad("the JWS payload is not a JSON object"))
}

fn att_data(p: &Map<String, Value>) -> Result<&Map<String, Value>, AttestError> {
    match p.get("att_type").and_then(Value::as_str) {
        Some("basic") => {}
        Some("vbs") => {
            return Err(AttestError::Unsupported(
                "att_type \"vbs\" (a VBS enclave report): Sovra attests the TPM only; send att_type \"basic\"".into(),
            ));
        }
        _ => return Err(bad("att_type must be \"basic\"")),
    }
    p.get("att_data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("att_data is missing"))
}

fn bytes(o: &Map<String, Value>, k: &str) -> Result<Option<Vec<u8>>, AttestError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => b64url_decode(s)
            .map(Some)
            .map_err(|_| bad(format!("{k} is not base64url"))),
        Some(_) => Err(bad(format!("{k} must be a base64url string"))),
    }
}

fn required(o: &Map<String, Value>, k: &str) -> Result<Vec<u8>, AttestError> {
    bytes(o, k)?.ok_or_else(|| bad(format!("{k} is missing")))
}

/// The service context and challenge of a request, read before anything is verified (the
/// caller checks the context it issued, then passes the challenge as the expected nonce).
pub fn peek(request: &str) -> Result<(Vec<u8>, Vec<u8>), AttestError> {
    let jws = Jws::parse(request).map_err(|_| bad("request is not a compact JWS"))?;
    let p = payload(&jws)?;
    let d = att_data(&p)?;
    Ok((required(d, "service_context")?, required(d, "challenge")?))
}

/// An RSA public JWK's modulus and exponent, the modulus 2048 to 4096 bits.
fn rsa_jwk(v: Option<&Value>, what: &str) -> Result<(Vec<u8>, Vec<u8>), AttestError> {
    let o = v
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("{what} is missing")))?;
    if o.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(AttestError::Unsupported(format!(
            "{what} must be an RSA key"
        )));
    }
    let n = required(o, "n")?;
    let e = required(o, "e")?;
    let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
    let e: Vec<u8> = e.into_iter().skip_while(|b| *b == 0).collect();
    if !(256..=512).contains(&n.len()) || e.is_empty() || e.len() > 4 {
        return Err(bad(format!(
            "{what} must be RSA with a 2048- to 4096-bit modulus"
        )));
    }
    Ok((n, e))
}

/// The platform attestation blob, parsed.
struct PlatformClaim {
    bank: u16,
    pcrs: BTreeMap<u32, Vec<u8>>,
    quote: Vec<u8>,
    signature: Vec<u8>,
    log: Vec<u8>,
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, AttestError> {
    b.get(i..i + 4)
        .and_then(|x| <[u8; 4]>::try_from(x).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| bad("current_claim is shorter than its header"))
}

fn parse_platform_claim(b: &[u8]) -> Result<PlatformClaim, AttestError> {
    let magic = b.get(..4).ok_or_else(|| bad("current_claim is empty"))?;
    let (header, bank) = if magic == MAGIC_V2 {
        let alg = u32_at(b, 28)?;
        let bank = u16::try_from(alg)
            .ok()
            .filter(|a| matches!(*a, ALG_SHA1 | ALG_SHA256))
            .ok_or_else(|| AttestError::Unsupported(format!("current_claim PCR bank {alg:#x}")))?;
        (32, bank)
    } else if magic == MAGIC_V1 {
        (28, ALG_SHA1)
    } else {
        return Err(bad(
            "current_claim is not a platform attestation blob (magic PADS or PAD2)",
        ));
    };
    if u32_at(b, 4)? != PLATFORM_TPM20 {
        return Err(AttestError::Unsupported(
            "current_claim is from a TPM 1.2; Sovra attests TPM 2.0".into(),
        ));
    }
    if u32_at(b, 8)? as usize != header {
        return Err(bad("current_claim's header size does not fit its magic"));
    }
    let sizes = [
        u32_at(b, 12)?,
        u32_at(b, 16)?,
        u32_at(b, 20)?,
        u32_at(b, 24)?,
    ]
    .map(|s| s as usize);
    let total = sizes.iter().try_fold(header, |a, s| a.checked_add(*s));
    if total != Some(b.len()) {
        return Err(bad("current_claim's lengths do not add up to its size"));
    }
    let digest = if bank == ALG_SHA256 { 32 } else { 20 };
    if sizes[0] != PLATFORM_PCRS * digest {
        return Err(bad(format!(
            "current_claim must hold {PLATFORM_PCRS} PCR values of its bank"
        )));
    }
    let mut at = header;
    let mut part = |len: usize| {
        let p = b.get(at..at + len).unwrap_or_default().to_vec();
        at += len;
        p
    };
    let values = part(sizes[0]);
    let (quote, signature, log) = (part(sizes[1]), part(sizes[2]), part(sizes[3]));
    let pcrs = values
        .chunks(digest)
        .enumerate()
        .map(|(i, v)| (i as u32, v.to_vec()))
        .collect();
    Ok(PlatformClaim {
        bank,
        pcrs,
        quote,
        signature,
        log,
    })
}

/// The raw RSASSA signature as a TPMT_SIGNATURE, with the hash it verifies under (the AIK's
/// scheme is not in the blob: SHA-256, or SHA-1 as Windows' PCP provider quotes).
fn tpmt_signature(key: &PublicKey, raw: &[u8], quote: &[u8]) -> Result<Vec<u8>, AttestError> {
    let len = u16::try_from(raw.len()).map_err(|_| bad("the quote signature is too long"))?;
    let mut last = None;
    for hash in [ALG_SHA256, ALG_SHA1] {
        let mut s = structs::ALG_RSASSA.to_be_bytes().to_vec();
        s.extend_from_slice(&hash.to_be_bytes());
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(raw);
        match structs::verify_signature(key, &s, quote) {
            Ok(_) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| bad("the quote signature")))
}

fn custom_claims(d: &Map<String, Value>) -> Result<Value, AttestError> {
    let list = match d.get("custom_claims") {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("custom_claims must be an array")),
    };
    if list.len() > MAX_CUSTOM_CLAIMS {
        return Err(bad(format!(
            "custom_claims has more than {MAX_CUSTOM_CLAIMS} entries"
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let field = |k: &str, max: usize| -> Result<&str, AttestError> {
            c.get(k)
                .and_then(Value::as_str)
                .filter(|s| s.len() <= max)
                .ok_or_else(|| {
                    bad(format!(
                        "each custom claim needs {k} as a string of at most {max} bytes"
                    ))
                })
        };
        out.push(json!({
            "name": field("name", MAX_CLAIM_NAME)?,
            "value": field("value", MAX_CLAIM_VALUE)?,
            "value_type": field("value_type", MAX_CLAIM_NAME)?,
        }));
    }
    Ok(Value::Array(out))
}

/// Verifies a request (`input.evidence`, the compact JWS) whose challenge the caller issued
/// and passes as `input.nonce`.
pub fn verify(
    input: &EvidenceInput<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedClaims, AttestError> {
    let text = std::str::from_utf8(input.evidence).map_err(|_| bad("request is not text"))?;
    let jws = Jws::parse(text).map_err(|_| bad("request is not a compact JWS"))?;
    if jws.alg() != Some("PS256") || jws.typ() != Some("attReq") {
        return Err(bad(
            "the request's JWS header must be {\"alg\": \"PS256\", \"typ\": \"attReq\"}",
        ));
    }
    let p = payload(&jws)?;
    let d = att_data(&p)?;
    let nonce = input
        .nonce
        .ok_or_else(|| bad("the request needs the challenge of a service context"))?;

    // The requester holds attest_key: it signed the request.
    let (n, e) = rsa_jwk(d.get("attest_key"), "attest_key")?;
    let (h, rest) = text.trim().split_once('.').unwrap_or_default();
    let (pl, sig) = rest.split_once('.').unwrap_or_default();
    let sig = b64url_decode(sig).map_err(|_| bad("the JWS signature is not base64url"))?;
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &signature::RSA_PSS_2048_8192_SHA256,
            format!("{h}.{pl}").as_bytes(),
            &sig,
        )
        .map_err(|_| {
            AttestError::SignatureInvalid("the request is not signed by its attest_key".into())
        })?;
    if required(d, "challenge")? != nonce {
        return Err(AttestError::NonceMismatch(
            "att_data.challenge is not the challenge of the service context".into(),
        ));
    }

    // The AIK: certified by a CA configured for the TPM platform.
    let t = d
        .get("tpm_att_data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("tpm_att_data is missing"))?;
    let aik_cert = required(t, "aik_cert")?;
    let (an, ae) = rsa_jwk(t.get("aik_pub"), "aik_pub")?;
    let e32 = ae.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b));
    let aik = structs::Public {
        raw: Vec::new(),
        name_alg: ALG_SHA256,
        attributes: 0,
        auth_policy: Vec::new(),
        key: PublicKey::Rsa { n: an, e: e32 },
    };
    let mut pool = crate::x509::evidence_certs(input.cert_chain.iter().copied())?;
    pool.extend(ctx.trust.cert_pool.iter().cloned());
    let chain = verify_chain(&aik_cert, &pool, Platform::Tpm, ctx.trust, ctx.now)?;
    if !super::cert_matches(&aik_cert, &aik.key)? {
        return Err(AttestError::BindingInvalid(
            "aik_cert certifies another key than aik_pub".into(),
        ));
    }

    // The quote: by the AIK, over the PCR values sent, qualified by the challenge.
    let claim = parse_platform_claim(&required(t, "current_claim")?)?;
    let quote = QuoteIn {
        signature: tpmt_signature(&aik.key, &claim.signature, &claim.quote)?,
        attest: claim.quote,
        bank: claim.bank,
        pcrs: claim.pcrs,
    };
    let boot_log = bytes(t, "srtm_boot_log")?;
    let log = boot_log
        .as_deref()
        .or(Some(claim.log.as_slice()).filter(|l| !l.is_empty()));
    let q = super::verify_quotes_with_name(
        &aik,
        std::slice::from_ref(&quote),
        log,
        Some(nonce),
        false,
    )?;

    let mut claims = Map::new();
    claims.insert("protocol".into(), json!("maa-tpm"));
    claims.insert(
        "quote_hash".into(),
        json!(
            if quote.signature.get(2..4) == Some(&ALG_SHA1.to_be_bytes()) {
                "sha1"
            } else {
                "sha256"
            }
        ),
    );
    if let Some(rp_id) = d.get("rp_id").and_then(Value::as_str) {
        claims.insert(
            "rp_id".into(),
            json!(rp_id.chars().take(2048).collect::<String>()),
        );
    }
    if let Some(rp) = bytes(d, "rp_data")? {
        claims.insert("rp_data".into(), json!(sovra_crypto::jws::b64url(&rp)));
    }
    claims.insert(
        "attest_key".into(),
        json!({"kty": "RSA", "n": sovra_crypto::jws::b64url(&n), "e": sovra_crypto::jws::b64url(&e)}),
    );
    claims.insert("custom_claims".into(), custom_claims(d)?);
    Ok(super::certified(q, &aik_cert, &chain, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(magic: &[u8; 4], platform: u32, pcrs: usize, tail: &[u8]) -> Vec<u8> {
        let mut b = magic.to_vec();
        let header = if magic == MAGIC_V2 { 32u32 } else { 28 };
        for v in [platform, header, pcrs as u32, 3, 2, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        if magic == MAGIC_V2 {
            b.extend_from_slice(&u32::from(ALG_SHA256).to_le_bytes());
        }
        b.extend(std::iter::repeat_n(0xab, pcrs));
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn a_platform_claim_is_read_only_when_its_header_adds_up() {
        let ok = parse_platform_claim(&blob(MAGIC_V2, 2, 24 * 32, b"qqqssl")).unwrap();
        assert_eq!((ok.bank, ok.pcrs.len()), (ALG_SHA256, 24));
        assert_eq!(
            (ok.quote, ok.signature, ok.log),
            (b"qqq".to_vec(), b"ss".to_vec(), b"l".to_vec())
        );
        let v1 = parse_platform_claim(&blob(MAGIC_V1, 2, 24 * 20, b"qqqssl")).unwrap();
        assert_eq!(v1.bank, ALG_SHA1);
        for (bad, why) in [
            (blob(MAGIC_V2, 2, 24 * 32, b"qqqss"), "short by one"),
            (blob(MAGIC_V2, 2, 24 * 32, b"qqqssll"), "one byte over"),
            (blob(MAGIC_V2, 2, 23 * 32, b"qqqssl"), "23 PCRs"),
            (blob(MAGIC_V2, 1, 24 * 32, b"qqqssl"), "TPM 1.2"),
            (blob(b"XXXX", 2, 24 * 32, b"qqqssl"), "magic"),
            (b"PAD2\x02\x00".to_vec(), "truncated header"),
            (Vec::new(), "empty"),
        ] {
            assert!(parse_platform_claim(&bad).is_err(), "{why}");
        }
        // Lengths near u32::MAX do not wrap around.
        let mut huge = blob(MAGIC_V2, 2, 24 * 32, b"qqqssl");
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_platform_claim(&huge).is_err());
    }
}
