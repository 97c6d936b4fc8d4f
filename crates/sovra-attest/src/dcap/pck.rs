//! The Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1): PPID, TCB (16 CPU
//! SVN components, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type.

use crate::error::AttestError;
use x509_parser::der_parser::ber::BerObject;
use x509_parser::der_parser::der::parse_der;

const SGX_EXT: &str = "1.2.840.113741.1.13.1";

/// What the PCK certificate says about the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PckInfo {
    /// PPID.
    pub ppid: Vec<u8>,
    /// CPU SVN components 1..16.
    pub cpusvn_components: [u8; 16],
    /// PCE SVN.
    pub pcesvn: u16,
    /// PCE ID.
    pub pceid: Vec<u8>,
    /// FMSPC.
    pub fmspc: Vec<u8>,
    /// SGX type (0 standard, 1 scalable, 2 scalable with integrity).
    pub sgx_type: u32,
}

fn bad(m: &str) -> AttestError {
    AttestError::ChainInvalid(format!("PCK certificate SGX extension: {m}"))
}

fn pairs<'a>(o: &'a BerObject<'a>) -> Result<Vec<(String, &'a BerObject<'a>)>, AttestError> {
    let seq = o.as_sequence().map_err(|_| bad("not a sequence"))?;
    let mut out = Vec::new();
    for item in seq {
        let inner = item
            .as_sequence()
            .map_err(|_| bad("entry is not a sequence"))?;
        let (Some(oid), Some(val)) = (inner.first(), inner.get(1)) else {
            return Err(bad("entry without OID and value"));
        };
        let oid = oid
            .as_oid()
            .map_err(|_| bad("entry without OID"))?
            .to_id_string();
        out.push((oid, val));
    }
    Ok(out)
}

fn small(o: &BerObject<'_>) -> Result<u32, AttestError> {
    o.as_u32()
        .or_else(|_| {
            o.as_slice()
                .map(|s| s.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)))
        })
        .map_err(|_| bad("integer expected"))
}

/// Reads the SGX extension of a PCK certificate.
pub fn pck_info(der: &[u8]) -> Result<PckInfo, AttestError> {
    let cert = crate::x509::parse_cert(der)?;
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == SGX_EXT)
        .ok_or_else(|| bad("missing (is this a PCK certificate?)"))?;
    let (_, obj) = parse_der(ext.value).map_err(|_| bad("does not parse"))?;
    let mut info = PckInfo::default();
    for (oid, val) in pairs(&obj)? {
        match oid.strip_prefix(SGX_EXT) {
            Some(".1") => info.ppid = val.as_slice().map_err(|_| bad("PPID"))?.to_vec(),
            Some(".2") => {
                for (t, v) in pairs(val)? {
                    let Some(n) = t
                        .strip_prefix(&format!("{SGX_EXT}.2."))
                        .and_then(|n| n.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    match n {
                        1..=16 => {
                            let svn =
                                u8::try_from(small(v)?).map_err(|_| bad("SVN out of range"))?;
                            if let Some(slot) = info.cpusvn_components.get_mut(n - 1) {
                                *slot = svn;
                            }
                        }
                        17 => {
                            info.pcesvn =
                                u16::try_from(small(v)?).map_err(|_| bad("PCESVN out of range"))?
                        }
                        _ => {}
                    }
                }
            }
            Some(".3") => info.pceid = val.as_slice().map_err(|_| bad("PCE-ID"))?.to_vec(),
            Some(".4") => info.fmspc = val.as_slice().map_err(|_| bad("FMSPC"))?.to_vec(),
            Some(".5") => info.sgx_type = small(val)?,
            _ => {}
        }
    }
    if info.fmspc.len() != 6 || info.pceid.len() != 2 {
        return Err(bad("FMSPC or PCE-ID missing"));
    }
    Ok(info)
}
