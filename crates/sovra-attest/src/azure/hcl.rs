//! Azure confidential VM evidence: the HCL (paravisor) attestation report and the vTPM quote,
//! in the JSON shapes the Confidential Containers trustee uses (version 0: byte arrays;
//! version 1: base64url and hex strings).

use crate::error::AttestError;
use base64::Engine;
use serde_json::Value;

/// Offset of the hardware report inside the HCL report.
const HW_OFFSET: usize = 32;
/// Size of the hardware report area.
const HW_LEN: usize = 1184;

/// The decoded evidence.
#[derive(Debug, Clone)]
pub struct AzureEvidence {
    /// The HCL report.
    pub hcl: Vec<u8>,
    /// The VCEK (SNP).
    pub vcek: Option<Vec<u8>>,
    /// The TD quote (TDX).
    pub td_quote: Option<Vec<u8>>,
    /// TPMS_ATTEST.
    pub quote: Vec<u8>,
    /// Raw RSASSA-PKCS1 v1.5 SHA-256 signature over the quote.
    pub signature: Vec<u8>,
    /// PCR0..23 (SHA-256 bank).
    pub pcrs: Vec<Vec<u8>>,
}

/// The parsed HCL report.
#[derive(Debug, Clone)]
pub struct Hcl {
    /// Header version.
    pub version: u32,
    /// Report type of the runtime-data header: 2 SNP, 4 TDX.
    pub report_type: u32,
    /// Hash of the runtime data: 1 SHA-256, 2 SHA-384, 3 SHA-512.
    pub hash_type: u32,
    /// The hardware report area (SNP report, or TDREPORT + padding).
    pub hw_report: Vec<u8>,
    /// The runtime data (JSON) bytes.
    pub var_data: Vec<u8>,
    /// The runtime data parsed.
    pub runtime: Value,
}

fn bad(m: &str) -> AttestError {
    AttestError::malformed(format!("Azure evidence: {m}"))
}

fn bytes(v: &Value, what: &str) -> Result<Vec<u8>, AttestError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| bad(&format!("{what} must be a byte array")))
            })
            .collect(),
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("-----BEGIN") {
                return Ok(t.as_bytes().to_vec());
            }
            if let Some(h) = sovra_proto::hex::decode(t)
                .filter(|_| t.len() % 2 == 0 && t.bytes().all(|c| c.is_ascii_hexdigit()))
            {
                return Ok(h);
            }
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.trim_end_matches('='))
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD.decode(t.trim_end_matches('='))
                })
                .map_err(|_| bad(&format!("{what} is neither hex nor base64")))
        }
        _ => Err(bad(&format!("{what} is missing"))),
    }
}

/// Decodes the trustee JSON (v0 or v1).
pub fn decode(b: &[u8]) -> Result<AzureEvidence, AttestError> {
    decode_value(&serde_json::from_slice(b).map_err(|_| bad("not JSON"))?)
}

/// Decodes the trustee JSON (v0 or v1), already parsed.
pub fn decode_value(v: &Value) -> Result<AzureEvidence, AttestError> {
    let get = |k: &str| v.get(k).unwrap_or(&Value::Null);
    let quote = if get("tpm_quote").is_null() {
        get("quote")
    } else {
        get("tpm_quote")
    };
    let hcl = if get("hcl_report").is_null() {
        get("report")
    } else {
        get("hcl_report")
    };
    let q = |k: &str| quote.get(k).unwrap_or(&Value::Null);
    let pcrs = match q("pcrs") {
        Value::Array(a) => a
            .iter()
            .map(|p| bytes(p, "a PCR"))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("tpm_quote.pcrs must be a list")),
    };
    Ok(AzureEvidence {
        hcl: bytes(hcl, "hcl_report")?,
        vcek: match get("vcek") {
            Value::Null => None,
            x => Some(bytes(x, "vcek")?),
        },
        td_quote: match get("td_quote") {
            Value::Null => None,
            x => Some(bytes(x, "td_quote")?),
        },
        quote: bytes(q("message"), "tpm_quote.message")?,
        signature: bytes(q("signature"), "tpm_quote.signature")?,
        pcrs,
    })
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, AttestError> {
    b.get(off..off + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| bad("HCL report truncated"))
}

/// Parses the HCL report.
pub fn parse_hcl(b: &[u8]) -> Result<Hcl, AttestError> {
    if b.get(..4) != Some(b"HCLA") {
        return Err(bad("the HCL report does not start with HCLA"));
    }
    let version = u32_at(b, 4)?;
    let hw_report = b
        .get(HW_OFFSET..HW_OFFSET + HW_LEN)
        .ok_or_else(|| bad("HCL report truncated"))?
        .to_vec();
    let base = HW_OFFSET + HW_LEN;
    let _data_size = u32_at(b, base)?;
    let _igvm_version = u32_at(b, base + 4)?;
    let report_type = u32_at(b, base + 8)?;
    let hash_type = u32_at(b, base + 12)?;
    let var_size = u32_at(b, base + 16)? as usize;
    let var_data = b
        .get(
            base + 20
                ..(base + 20)
                    .checked_add(var_size)
                    .ok_or_else(|| bad("size"))?,
        )
        .ok_or_else(|| bad("HCL runtime data truncated"))?
        .to_vec();
    let runtime: Value =
        serde_json::from_slice(&var_data).map_err(|_| bad("the HCL runtime data is not JSON"))?;
    Ok(Hcl {
        version,
        report_type,
        hash_type,
        hw_report,
        var_data,
        runtime,
    })
}

impl Hcl {
    /// The parts of an HCL report that travel apart in the guest attestation protocol: the
    /// hardware report and the runtime data (hashed with SHA-256, as the paravisor does).
    pub fn from_parts(
        report_type: u32,
        hw_report: Vec<u8>,
        var_data: Vec<u8>,
    ) -> Result<Self, AttestError> {
        let runtime: Value = serde_json::from_slice(&var_data)
            .map_err(|_| bad("the runtime data (RunTimeData) is not JSON"))?;
        Ok(Hcl {
            version: 0,
            report_type,
            hash_type: 1,
            hw_report,
            var_data,
            runtime,
        })
    }
}

impl Hcl {
    /// The hash of the runtime data per `hash_type`.
    pub fn var_data_hash(&self) -> Result<Vec<u8>, AttestError> {
        use aws_lc_rs::digest::{SHA256, SHA384, SHA512, digest};
        let alg = match self.hash_type {
            1 => &SHA256,
            2 => &SHA384,
            3 => &SHA512,
            t => return Err(AttestError::Unsupported(format!("HCL hash type {t}"))),
        };
        Ok(digest(alg, &self.var_data).as_ref().to_vec())
    }

    /// The RSA key `kid` (e.g. `HCLAkPub`) from the runtime data: (n, e).
    pub fn rsa_key(&self, kid: &str) -> Result<(Vec<u8>, u32), AttestError> {
        let key = self
            .runtime
            .get("keys")
            .and_then(Value::as_array)
            .and_then(|ks| {
                ks.iter()
                    .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            })
            .ok_or_else(|| {
                AttestError::BindingInvalid(format!("the HCL runtime data has no {kid}"))
            })?;
        let field = |f: &str| {
            key.get(f)
                .and_then(Value::as_str)
                .and_then(|s| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(s.trim_end_matches('='))
                        .ok()
                })
                .ok_or_else(|| bad(&format!("{kid}.{f} is not base64url")))
        };
        let n = field("n")?;
        let e = field("e")?;
        if e.len() > 4 {
            return Err(bad("RSA exponent too large"));
        }
        let e = e.iter().fold(0u32, |a, b| a << 8 | u32::from(*b));
        Ok((n, e))
    }
}
