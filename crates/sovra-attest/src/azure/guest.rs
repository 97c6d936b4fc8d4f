//! The Azure confidential-VM guest attestation protocol (`POST /attest/AzureGuest`): the
//! `AttestationInfo` JSON the guest attestation library builds from the vTPM and the
//! paravisor, decoded and checked field by field.
//!
//! ```text
//! { "AttestationProtocolVersion", "OSType", "OSDistro", "OSVersionMajor", "OSVersionMinor",
//!   "OSBuild", "TcgLogs", "ClientPayload": {k: b64},
//!   "TpmInfo": { "AikCert", "AikPub" (TPM2B_PUBLIC), "PcrQuote" (TPMS_ATTEST),
//!                "PcrSignature" (raw RSASSA), "EncKeyPub" (TPM2B_PUBLIC),
//!                "EncKeyCertifyInfo" (TPMS_ATTEST), "EncKeyCertifyInfoSignature" (raw RSASSA),
//!                "PcrSet": [i], "PCRs": [{"Index", "Digest"}] },
//!   "IsolationInfo": { "Type": "SevSnp" | "Tdx" | "TrustedLaunch",
//!                      "Evidence": { "Proof", "RunTimeData" } } }
//! ```
//! Byte fields are base64 (standard; URL-safe accepted). The SNP proof is base64 of JSON
//! `{"SnpReport": b64url(report), "VcekCertChain": b64(PEM VCEK ‖ ASK ‖ ARK)}`; the TDX proof
//! is base64 of the TD quote. `RunTimeData` is the paravisor's runtime data (the HCL variable
//! data), whose SHA-256 the hardware report's REPORT_DATA carries.

use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::tpm::certify::{Certified, verify_sealing_key};
use crate::tpm::input::QuoteIn;
use crate::tpm::structs::{self, ALG_SHA256};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// `kid` of the sealing key in the token's `x-ms-runtime.keys`.
pub const EPHEMERAL_KEY_KID: &str = "TpmEphemeralEncryptionKey";
/// PCRs a quote may cover (one SHA-256 bank of 24).
const MAX_PCRS: usize = 24;
/// Entries of `ClientPayload`.
const MAX_PAYLOAD_ENTRIES: usize = 32;
/// Length of a client-payload key, and of an OS string.
const MAX_NAME: usize = 256;

/// The isolation (hardware) evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationType {
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel TDX.
    Tdx,
}

/// A decoded `AttestationInfo`.
#[derive(Debug, Clone)]
pub struct GuestInfo {
    /// `AttestationProtocolVersion`.
    pub protocol_version: String,
    /// OS facts as the guest states them (not measured).
    pub os: Map<String, Value>,
    /// The TCG event log (may be empty).
    pub tcg_log: Vec<u8>,
    /// `ClientPayload`, values as sent (base64).
    pub client_payload: Map<String, Value>,
    /// The AK certificate (DER; may be empty).
    pub aik_cert: Vec<u8>,
    /// The AK (TPM2B_PUBLIC).
    pub aik_pub: Vec<u8>,
    /// The quote (TPMS_ATTEST).
    pub pcr_quote: Vec<u8>,
    /// The quote's raw RSASSA signature.
    pub pcr_signature: Vec<u8>,
    /// The sealing key (TPM2B_PUBLIC).
    pub enc_key_pub: Vec<u8>,
    /// Its certification (TPMS_ATTEST).
    pub enc_key_certify_info: Vec<u8>,
    /// The certification's raw RSASSA signature.
    pub enc_key_certify_signature: Vec<u8>,
    /// SHA-256 PCR values by index.
    pub pcrs: BTreeMap<u32, Vec<u8>>,
    /// Isolation type.
    pub isolation: IsolationType,
    /// SNP report or TD quote.
    pub hw_evidence: Vec<u8>,
    /// The VCEK chain (PEM), SNP only.
    pub vcek_chain: Option<Vec<u8>>,
    /// The paravisor's runtime data.
    pub runtime_data: Vec<u8>,
}

fn bad(m: impl Into<String>) -> AttestError {
    AttestError::malformed(format!("AttestationInfo: {}", m.into()))
}

fn field<'a>(v: &'a Value, path: &str) -> Result<&'a Value, AttestError> {
    path.split('.')
        .try_fold(v, |cur, k| cur.get(k))
        .filter(|x| !x.is_null())
        .ok_or_else(|| bad(format!("{path} is missing")))
}

fn b64_str(s: &str, what: &str) -> Result<Vec<u8>, AttestError> {
    sovra_proto::b64::decode(s.trim()).map_err(|_| bad(format!("{what} is not base64")))
}

fn b64(v: &Value, path: &str) -> Result<Vec<u8>, AttestError> {
    let s = field(v, path)?
        .as_str()
        .ok_or_else(|| bad(format!("{path} must be a base64 string")))?;
    b64_str(s, path)
}

fn text(v: &Value, path: &str) -> Result<String, AttestError> {
    let b = b64(v, path)?;
    if b.len() > MAX_NAME {
        return Err(bad(format!("{path} is longer than {MAX_NAME} bytes")));
    }
    String::from_utf8(b).map_err(|_| bad(format!("{path} is not UTF-8")))
}

/// Whether `v` (the evidence parsed as JSON) is an `AttestationInfo`.
pub fn is_guest(v: &Value) -> bool {
    v.get("TpmInfo").is_some() && v.get("IsolationInfo").is_some()
}

/// Decodes an `AttestationInfo` (already parsed as JSON).
pub fn decode(v: &Value) -> Result<GuestInfo, AttestError> {
    let mut os = Map::new();
    os.insert("os_type".into(), json!(text(v, "OSType")?));
    os.insert("os_distro".into(), json!(text(v, "OSDistro")?));
    os.insert("os_build".into(), json!(text(v, "OSBuild")?));
    for (k, name) in [
        ("OSVersionMajor", "os_version_major"),
        ("OSVersionMinor", "os_version_minor"),
    ] {
        let n = field(v, k)?
            .as_u64()
            .ok_or_else(|| bad(format!("{k} must be a non-negative integer")))?;
        os.insert(name.into(), json!(n));
    }
    let client_payload = match v.get("ClientPayload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            if m.len() > MAX_PAYLOAD_ENTRIES {
                return Err(bad(format!(
                    "ClientPayload has more than {MAX_PAYLOAD_ENTRIES} entries"
                )));
            }
            for (k, val) in m {
                if k.len() > MAX_NAME {
                    return Err(bad(format!(
                        "a ClientPayload key is longer than {MAX_NAME} bytes"
                    )));
                }
                let s = val
                    .as_str()
                    .ok_or_else(|| bad(format!("ClientPayload.{k} must be a base64 string")))?;
                b64_str(s, &format!("ClientPayload.{k}"))?;
            }
            m.clone()
        }
        Some(_) => return Err(bad("ClientPayload must be an object")),
    };
    let tcg_log = match v.get("TcgLogs").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => b64_str(s, "TcgLogs")?,
        _ => Vec::new(),
    };
    let pcr_list = field(v, "TpmInfo.PCRs")?
        .as_array()
        .ok_or_else(|| bad("TpmInfo.PCRs must be a list"))?;
    if pcr_list.len() > MAX_PCRS {
        return Err(bad(format!(
            "TpmInfo.PCRs has more than {MAX_PCRS} entries"
        )));
    }
    let mut pcrs = BTreeMap::new();
    for p in pcr_list {
        let i = field(p, "Index")?
            .as_u64()
            .filter(|i| *i < MAX_PCRS as u64)
            .ok_or_else(|| bad("a PCR Index must be 0..23"))? as u32;
        let d = b64(p, "Digest")?;
        if d.len() != 32 {
            return Err(bad(format!("PCR {i} is not a SHA-256 value")));
        }
        if pcrs.insert(i, d).is_some() {
            return Err(bad(format!("PCR {i} is given twice")));
        }
    }
    let (isolation, hw_evidence, vcek_chain) = match field(v, "IsolationInfo.Type")?
        .as_str()
        .unwrap_or_default()
    {
        "SevSnp" => {
            let proof = b64(v, "IsolationInfo.Evidence.Proof")?;
            let p: Value = serde_json::from_slice(&proof).map_err(|_| {
                    bad("IsolationInfo.Evidence.Proof must be base64 of JSON {SnpReport, VcekCertChain}")
                })?;
            (
                IsolationType::SevSnp,
                b64(&p, "SnpReport")?,
                Some(b64(&p, "VcekCertChain")?),
            )
        }
        "Tdx" => (
            IsolationType::Tdx,
            b64(v, "IsolationInfo.Evidence.Proof")?,
            None,
        ),
        "TrustedLaunch" => {
            return Err(AttestError::Unsupported(
                    "IsolationInfo.Type TrustedLaunch: a VM without hardware isolation is attested only by its vTPM's AK certificate from Azure's CA, which Sovra does not trust; attest an SEV-SNP or TDX confidential VM".into(),
                ));
        }
        other => {
            return Err(bad(format!(
                "IsolationInfo.Type {other:?} is not SevSnp, Tdx or TrustedLaunch"
            )));
        }
    };
    Ok(GuestInfo {
        protocol_version: field(v, "AttestationProtocolVersion")?
            .as_str()
            .filter(|s| s.len() <= MAX_NAME)
            .ok_or_else(|| bad("AttestationProtocolVersion must be a string"))?
            .to_string(),
        os,
        tcg_log,
        client_payload,
        aik_cert: match v.pointer("/TpmInfo/AikCert").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => b64_str(s, "TpmInfo.AikCert")?,
            _ => Vec::new(),
        },
        aik_pub: b64(v, "TpmInfo.AikPub")?,
        pcr_quote: b64(v, "TpmInfo.PcrQuote")?,
        pcr_signature: b64(v, "TpmInfo.PcrSignature")?,
        enc_key_pub: b64(v, "TpmInfo.EncKeyPub")?,
        enc_key_certify_info: b64(v, "TpmInfo.EncKeyCertifyInfo")?,
        enc_key_certify_signature: b64(v, "TpmInfo.EncKeyCertifyInfoSignature")?,
        pcrs,
        isolation,
        hw_evidence,
        vcek_chain,
        runtime_data: b64(v, "IsolationInfo.Evidence.RunTimeData")?,
    })
}

/// A raw RSASSA-PKCS1-v1_5 SHA-256 signature as a TPMT_SIGNATURE.
pub(crate) fn rsassa_sha256(raw: &[u8]) -> Result<Vec<u8>, AttestError> {
    let len = u16::try_from(raw.len()).map_err(|_| AttestError::malformed("signature too long"))?;
    let mut sig = vec![0x00, 0x14, 0x00, 0x0B];
    sig.extend_from_slice(&len.to_be_bytes());
    sig.extend_from_slice(raw);
    Ok(sig)
}

/// The TPM half of guest evidence, once the hardware report vouched for the runtime data:
/// the AK is the runtime data's `HCLAkPub` (and the AK certificate, if sent, is of that key);
/// the quote verifies over the PCRs given and the TCG log replays to them; the sealing key is
/// certified by the AK and bound to the quoted PCRs. Returns the quote's findings and the
/// guest's own claims (OS facts, client payload, the sealing key as a JWK).
pub fn verify_tpm(
    g: &GuestInfo,
    hcl_ak: (Vec<u8>, u32),
    nonce: Option<&[u8]>,
) -> Result<(crate::tpm::Quoted, Map<String, Value>), AttestError> {
    let ak = structs::parse_public_2b(&g.aik_pub)?;
    ak.check_attestation_key()?;
    if ak.key
        != (structs::PublicKey::Rsa {
            n: hcl_ak.0,
            e: hcl_ak.1,
        })
    {
        return Err(AttestError::BindingInvalid(
            "TpmInfo.AikPub is not the HCLAkPub the hardware report vouches for".into(),
        ));
    }
    if !g.aik_cert.is_empty() && !crate::tpm::cert_matches(&g.aik_cert, &ak.key)? {
        return Err(AttestError::BindingInvalid(
            "TpmInfo.AikCert certifies another key than TpmInfo.AikPub".into(),
        ));
    }
    let quote = QuoteIn {
        attest: g.pcr_quote.clone(),
        signature: rsassa_sha256(&g.pcr_signature)?,
        bank: ALG_SHA256,
        pcrs: g.pcrs.clone(),
    };
    let log = (!g.tcg_log.is_empty()).then_some(g.tcg_log.as_slice());
    let q = crate::tpm::verify_quotes(&ak, std::slice::from_ref(&quote), log, nonce)?;
    let selections = structs::parse_attest(&g.pcr_quote)?.selections;
    let (n, e) = verify_sealing_key(
        &ak,
        Certified {
            public: &g.enc_key_pub,
            info: &g.enc_key_certify_info,
            signature: &rsassa_sha256(&g.enc_key_certify_signature)?,
        },
        &selections,
        &g.pcrs,
    )?;
    let e = e.to_be_bytes();
    let e = e
        .get(e.iter().position(|b| *b != 0).unwrap_or(3)..)
        .unwrap_or(&e);
    let b64url = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let mut guest = g.os.clone();
    guest.insert("protocol_version".into(), json!(g.protocol_version));
    guest.insert(
        "client_payload".into(),
        Value::Object(g.client_payload.clone()),
    );
    guest.insert(
        "encryption_key".into(),
        json!({"kid": EPHEMERAL_KEY_KID, "kty": "RSA", "key_ops": ["encrypt"],
            "n": b64url(&n), "e": b64url(e)}),
    );
    Ok((q, guest))
}

/// The sealing key (RSA n, e as big-endian bytes) of verified guest evidence, from the
/// verifier's own claims (never from what a policy issued).
pub fn sealing_key(v: &VerifiedClaims) -> Option<(Vec<u8>, Vec<u8>)> {
    let j = v.to_json();
    let k = j.get("guest")?.get("encryption_key")?;
    let d = |f: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(k.get(f)?.as_str()?)
            .ok()
    };
    Some((d("n")?, d("e")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Value {
        let b = |x: &[u8]| sovra_proto::b64::encode(x);
        json!({
            "AttestationProtocolVersion": "2.0", "OSType": b(b"Linux"), "OSDistro": b(b"x"),
            "OSVersionMajor": 1, "OSVersionMinor": 0, "OSBuild": b(b"y"), "TcgLogs": "",
            "ClientPayload": {"nonce": b(b"n")},
            "TpmInfo": {"AikCert": "", "AikPub": b(&[0, 2, 0, 1]), "PcrQuote": b(&[0xff; 8]),
                "PcrSignature": b(&[1; 256]), "EncKeyPub": b(&[0, 0]), "EncKeyCertifyInfo": b(&[]),
                "EncKeyCertifyInfoSignature": b(&[]), "PcrSet": [0],
                "PCRs": [{"Index": 0, "Digest": b(&[0; 32])}]},
            "IsolationInfo": {"Type": "SevSnp", "Evidence": {
                "Proof": b(json!({"SnpReport": "AA", "VcekCertChain": "AA"}).to_string().as_bytes()),
                "RunTimeData": b(b"{}")}}
        })
    }

    #[test]
    fn hostile_attestation_info_is_refused_without_panicking() {
        let good = info();
        assert!(decode(&good).is_ok());
        // Every field missing, or of the wrong type, is a malformed-evidence error.
        let mut paths = Vec::new();
        for (k, v) in good.as_object().unwrap() {
            paths.push(format!("/{k}"));
            if let Value::Object(m) = v {
                paths.extend(m.keys().map(|c| format!("/{k}/{c}")));
            }
        }
        for p in &paths {
            for bad in [Value::Null, json!(7), json!("%%%"), json!({"a": [1]})] {
                let mut v = good.clone();
                *v.pointer_mut(p).unwrap() = bad;
                if let Ok(g) = decode(&v) {
                    // Optional fields may go; what decodes still never panics in the checks.
                    let _ = verify_tpm(&g, (vec![1; 256], 65537), None);
                }
            }
        }
        // Bounds: PCR indexes, repeated PCRs, payload size.
        let mut v = good.clone();
        v["TpmInfo"]["PCRs"] = json!([{"Index": 24, "Digest": ""}]);
        assert!(decode(&v).is_err());
        let mut v = good.clone();
        let pcr = json!({"Index": 1, "Digest": sovra_proto::b64::encode(&[0; 32])});
        v["TpmInfo"]["PCRs"] = json!([pcr.clone(), pcr]);
        assert!(decode(&v).is_err());
        let mut v = good.clone();
        v["ClientPayload"] = Value::Object(
            (0..=MAX_PAYLOAD_ENTRIES)
                .map(|i| (i.to_string(), json!("AA")))
                .collect(),
        );
        assert!(decode(&v).is_err());
        // Garbage TPM structures are errors.
        let g = decode(&good).unwrap();
        assert!(verify_tpm(&g, (vec![1; 256], 65537), None).is_err());
    }
}
