//! Where AMD's Key Distribution Service (KDS) publishes the VCEK that signed a report: the path
//! `/vcek/v1/{product}/{hwid}?…SPL=…` under the KDS base URL, from the report's chip ID and
//! REPORTED_TCB. Used only when an operator opts in to fetching; the fetched certificate is
//! then verified like any other (chain to the pinned ARK, hwID, TCB extensions).

use super::report::{Product, SigningKey, SnpReport, Tcb};
use sovra_proto::hex::encode as hex;

/// The KDS paths (relative to the KDS base URL) where this report's VCEK may be, most likely
/// first: one path when the report names its processor (v3+), one per generation before.
/// Empty when no VCEK can be fetched: the report is VLEK-signed (VLEKs are not public) or its
/// chip ID is masked.
pub fn vcek_paths(r: &SnpReport) -> Vec<String> {
    let masked = r.flags >> 1 & 1 == 1;
    if masked || !matches!(r.signing_key(), Ok(SigningKey::Vcek)) {
        return Vec::new();
    }
    let products = match Product::from_cpuid(r.cpuid_fam_id, r.cpuid_mod_id) {
        Some(p) => vec![p],
        None => vec![Product::Milan, Product::Genoa],
    };
    products
        .into_iter()
        .map(|p| {
            let t = Tcb::decode(r.reported_tcb, p);
            let (hwid, fmc) = match p {
                // Turin VCEKs are issued per 8-byte hardware ID.
                Product::Turin => (
                    hex(r.chip_id.get(..8).unwrap_or_default()),
                    format!("fmcSPL={}&", t.fmc.unwrap_or(0)),
                ),
                _ => (hex(&r.chip_id), String::new()),
            };
            format!(
                "/vcek/v1/{}/{hwid}?{fmc}blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
                p.name(),
                t.bootloader,
                t.tee,
                t.snp,
                t.microcode
            )
        })
        .collect()
}
