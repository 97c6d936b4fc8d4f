//! The AMD extensions of VCEK and VLEK certificates (AMD "Versioned Chip Endorsement Key"
//! specification): the TCB the key was derived for, and (VCEK) the chip's hardware ID.

use crate::error::AttestError;
use crate::x509::{parse_cert, subject_cn};
use x509_parser::der_parser::der::{parse_der_ia5string, parse_der_integer};

const AMD_ARC: &str = "1.3.6.1.4.1.3704.1";

/// What a VCEK/VLEK certificate says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInfo {
    /// `SEV-VCEK` or `SEV-VLEK` (subject CN).
    pub subject_cn: String,
    /// Issuer CN (`SEV-Milan`, `SEV-VLEK-Genoa`, …).
    pub issuer_cn: String,
    /// productName, e.g. `Milan-B0`.
    pub product_name: Option<String>,
    /// blSPL.
    pub bl_spl: Option<u8>,
    /// teeSPL.
    pub tee_spl: Option<u8>,
    /// snpSPL.
    pub snp_spl: Option<u8>,
    /// ucodeSPL.
    pub ucode_spl: Option<u8>,
    /// fmcSPL (Turin).
    pub fmc_spl: Option<u8>,
    /// hwID (VCEK only).
    pub hw_id: Option<Vec<u8>>,
}

fn small_int(v: &[u8]) -> Result<u8, AttestError> {
    let (_, obj) = parse_der_integer(v)
        .map_err(|_| AttestError::malformed("VCEK TCB extension is not an INTEGER"))?;
    let n = obj
        .as_u32()
        .map_err(|_| AttestError::malformed("VCEK TCB extension out of range"))?;
    u8::try_from(n).map_err(|_| AttestError::malformed("VCEK TCB extension out of range"))
}

/// Reads the AMD extensions of a DER certificate.
pub fn key_info(der: &[u8]) -> Result<KeyInfo, AttestError> {
    let cert = parse_cert(der)?;
    let mut info = KeyInfo {
        subject_cn: subject_cn(&cert),
        issuer_cn: cert
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or_default()
            .to_string(),
        ..KeyInfo::default()
    };
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        let Some(rest) = oid.strip_prefix(AMD_ARC) else {
            continue;
        };
        let v = ext.value;
        match rest {
            ".2" => {
                info.product_name = parse_der_ia5string(v)
                    .ok()
                    .and_then(|(_, o)| o.as_str().ok().map(str::to_string))
                    .or_else(|| std::str::from_utf8(v).ok().map(str::to_string));
            }
            ".3.1" => info.bl_spl = Some(small_int(v)?),
            ".3.2" => info.tee_spl = Some(small_int(v)?),
            ".3.3" => info.snp_spl = Some(small_int(v)?),
            ".3.8" => info.ucode_spl = Some(small_int(v)?),
            ".3.9" => info.fmc_spl = Some(small_int(v)?),
            ".4" => {
                // The hardware ID is the raw extension value (some tools wrap it in an OCTET STRING).
                let raw = match v {
                    [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
                    _ => v.to_vec(),
                };
                info.hw_id = Some(raw);
            }
            _ => {}
        }
    }
    Ok(info)
}

impl KeyInfo {
    /// True for a VLEK.
    pub fn is_vlek(&self) -> bool {
        self.subject_cn.contains("VLEK")
    }

    /// The product family from productName or the issuer (`SEV-Milan`, `SEV-VLEK-Genoa`).
    pub fn product(&self) -> Option<super::report::Product> {
        use super::report::Product;
        let hay = format!(
            "{} {}",
            self.product_name.as_deref().unwrap_or(""),
            self.issuer_cn
        );
        [Product::Milan, Product::Genoa, Product::Turin]
            .into_iter()
            .find(|p| hay.contains(p.name()))
    }
}
