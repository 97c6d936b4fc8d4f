//! TCB status per Intel's rules: the first TCB level of the TCB info whose SGX components,
//! PCESVN (and, for TDX, TDX components) are all at or below the platform's gives the platform
//! status; the QE identity's levels give the QE status; TDX module identities give the module's.

// `serde_json::Value["key"]` yields `Null` for a missing key or a non-object and never
// panics; it is the only indexing in this file.
#![allow(clippy::indexing_slicing)]

use super::pck::PckInfo;
use crate::error::AttestError;
use serde_json::Value;

/// A TCB status with its advisories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `UpToDate`, `SWHardeningNeeded`, `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`,
    /// `OutOfDate`, `OutOfDateConfigurationNeeded`, `Revoked`.
    pub status: String,
    /// Intel security advisories that apply.
    pub advisory_ids: Vec<String>,
    /// The matched level's TCB date.
    pub tcb_date: Option<String>,
}

fn rank(s: &str) -> u8 {
    match s {
        "UpToDate" => 0,
        "SWHardeningNeeded" => 1,
        "ConfigurationNeeded" => 2,
        "ConfigurationAndSWHardeningNeeded" => 3,
        "OutOfDate" => 4,
        "OutOfDateConfigurationNeeded" => 5,
        _ => 6,
    }
}

/// Combines two statuses: the worse one, with an out-of-date part and a configuration part
/// together giving `OutOfDateConfigurationNeeded`.
pub fn merge(a: &Status, b: &Status) -> Status {
    let config = |s: &str| s.contains("Configuration");
    let out = |s: &str| s.starts_with("OutOfDate");
    let status = if (out(&a.status) && config(&b.status)) || (out(&b.status) && config(&a.status)) {
        "OutOfDateConfigurationNeeded".to_string()
    } else if rank(&a.status) >= rank(&b.status) {
        a.status.clone()
    } else {
        b.status.clone()
    };
    let mut advisory_ids: Vec<String> = a
        .advisory_ids
        .iter()
        .chain(&b.advisory_ids)
        .cloned()
        .collect();
    advisory_ids.sort();
    advisory_ids.dedup();
    Status {
        status,
        advisory_ids,
        tcb_date: a.tcb_date.clone().or_else(|| b.tcb_date.clone()),
    }
}

fn level_status(level: &Value) -> Status {
    Status {
        status: level["tcbStatus"].as_str().unwrap_or("Unknown").to_string(),
        advisory_ids: level["advisoryIDs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        tcb_date: level["tcbDate"].as_str().map(str::to_string),
    }
}

/// SVN of component `i` (0-based) in a level's `tcb`: v3 arrays or v2 `sgxtcbcompNNsvn`.
fn comp(tcb: &Value, key: &str, v2: &str, i: usize) -> Option<u64> {
    match tcb.get(key).and_then(Value::as_array) {
        Some(a) => a.get(i).and_then(|c| c.get("svn")).and_then(Value::as_u64),
        None => tcb
            .get(format!("{v2}{:02}svn", i + 1))
            .and_then(Value::as_u64),
    }
}

/// The platform TCB status from the TCB info (and the TD's TEE_TCB_SVN for TDX).
pub fn platform(
    tcb_info: &Value,
    pck: &PckInfo,
    tee_tcb_svn: Option<&[u8; 16]>,
) -> Result<Status, AttestError> {
    let levels = tcb_info["tcbLevels"]
        .as_array()
        .ok_or_else(|| AttestError::CollateralInvalid("TCB info has no tcbLevels".into()))?;
    // TDX components 0 and 1 belong to the TDX module when its major version is not 0.
    let tdx_start = match tee_tcb_svn {
        Some(t) if t.get(1).copied().unwrap_or(0) > 0 => 2,
        _ => 0,
    };
    for level in levels {
        let tcb = &level["tcb"];
        let sgx_ok = (0..16).all(|i| {
            comp(tcb, "sgxtcbcomponents", "sgxtcbcomp", i).is_some_and(|want| {
                u64::from(pck.cpusvn_components.get(i).copied().unwrap_or(0)) >= want
            })
        });
        let pce_ok = tcb["pcesvn"]
            .as_u64()
            .is_some_and(|want| u64::from(pck.pcesvn) >= want);
        let tdx_ok = match tee_tcb_svn {
            None => true,
            Some(t) => (tdx_start..16).all(|i| {
                comp(tcb, "tdxtcbcomponents", "tdxtcbcomp", i)
                    .is_some_and(|want| u64::from(t.get(i).copied().unwrap_or(0)) >= want)
            }),
        };
        if sgx_ok && pce_ok && tdx_ok {
            return Ok(level_status(level));
        }
    }
    Err(AttestError::TcbNotAcceptable(
        "no TCB level of the TCB info matches this platform (its TCB is older than every level Intel lists)".into(),
    ))
}

/// The TDX module's status from `tdxModuleIdentities` (only when TEE_TCB_SVN[1] > 0).
pub fn tdx_module(
    tcb_info: &Value,
    tee_tcb_svn: &[u8; 16],
    mr_signer_seam: &[u8],
) -> Result<Option<Status>, AttestError> {
    let major = tee_tcb_svn.get(1).copied().unwrap_or(0);
    if major == 0 {
        return Ok(None);
    }
    let id = format!("TDX_{major:02}");
    let Some(idents) = tcb_info["tdxModuleIdentities"].as_array() else {
        return Ok(None);
    };
    let ident = idents
        .iter()
        .find(|m| m["id"].as_str() == Some(id.as_str()))
        .ok_or_else(|| {
            AttestError::TcbNotAcceptable(format!("the TCB info lists no TDX module identity {id}"))
        })?;
    let signer = ident["mrsigner"]
        .as_str()
        .and_then(sovra_proto::hex::decode)
        .unwrap_or_default();
    if signer != mr_signer_seam {
        return Err(AttestError::TcbMismatch(format!(
            "MRSIGNERSEAM does not match the TDX module identity {id}"
        )));
    }
    let svn = u64::from(tee_tcb_svn.first().copied().unwrap_or(0));
    for level in ident["tcbLevels"].as_array().into_iter().flatten() {
        if level["tcb"]["isvsvn"]
            .as_u64()
            .is_some_and(|want| svn >= want)
        {
            return Ok(Some(level_status(level)));
        }
    }
    Err(AttestError::TcbNotAcceptable(format!(
        "no TCB level of TDX module identity {id} matches SVN {svn}"
    )))
}

/// The QE's status from the QE identity, after checking MRSIGNER, ISVPRODID, MISCSELECT and
/// ATTRIBUTES (under their masks).
pub fn qe(identity: &Value, qe: &super::quote::SgxReport) -> Result<Status, AttestError> {
    let hexv = |k: &str| {
        identity[k]
            .as_str()
            .and_then(sovra_proto::hex::decode)
            .unwrap_or_default()
    };
    if hexv("mrsigner") != qe.mr_signer {
        return Err(AttestError::CollateralInvalid(
            "the QE's MRSIGNER is not the one in the QE identity".into(),
        ));
    }
    if identity["isvprodid"].as_u64() != Some(u64::from(qe.isv_prod_id)) {
        return Err(AttestError::CollateralInvalid(
            "the QE's ISVPRODID is not the one in the QE identity".into(),
        ));
    }
    let masked =
        |val: &[u8], mask: &[u8]| -> Vec<u8> { val.iter().zip(mask).map(|(a, b)| a & b).collect() };
    let word = |k: &str| {
        identity[k]
            .as_str()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    let misc_mask = word("miscselectMask");
    if qe.misc_select & misc_mask != word("miscselect") & misc_mask {
        return Err(AttestError::CollateralInvalid(
            "the QE's MISCSELECT does not match the QE identity".into(),
        ));
    }
    let attr_mask = hexv("attributesMask");
    if masked(&qe.attributes, &attr_mask) != masked(&hexv("attributes"), &attr_mask) {
        return Err(AttestError::CollateralInvalid(
            "the QE's ATTRIBUTES do not match the QE identity".into(),
        ));
    }
    for level in identity["tcbLevels"].as_array().into_iter().flatten() {
        if level["tcb"]["isvsvn"]
            .as_u64()
            .is_some_and(|want| u64::from(qe.isv_svn) >= want)
        {
            return Ok(level_status(level));
        }
    }
    Err(AttestError::TcbNotAcceptable(format!(
        "no TCB level of the QE identity matches QE ISVSVN {}",
        qe.isv_svn
    )))
}
