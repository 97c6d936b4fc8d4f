//! The TCG PC Client crypto-agile event log: a SHA-1 format header event (the Spec ID event,
//! listing the banks and digest sizes) followed by TCG_PCR_EVENT2 records. Replaying it gives
//! the PCR values it claims; parsed events give boot facts (Secure Boot state, boot apps).

use super::structs::hash_alg;
use crate::error::AttestError;
use std::collections::BTreeMap;

const EV_NO_ACTION: u32 = 0x3;
const EV_SEPARATOR: u32 = 0x4;
const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;

/// The replayed log.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// Bank (TPM hash ID) → PCR index → value.
    pub pcrs: BTreeMap<u16, BTreeMap<u32, Vec<u8>>>,
    /// Number of events.
    pub events: usize,
    /// `SecureBoot` variable measured as enabled, if measured at all.
    pub secure_boot: Option<bool>,
    /// SHA-256 digests of boot applications (EV_EFI_BOOT_SERVICES_APPLICATION), in order.
    pub boot_applications: Vec<Vec<u8>>,
}

struct C<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> C<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AttestError> {
        let end = self.i.checked_add(n).ok_or_else(bad)?;
        let s = self.b.get(self.i..end).ok_or_else(bad)?;
        self.i = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, AttestError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| bad())?,
        ))
    }
    fn u32(&mut self) -> Result<u32, AttestError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| bad())?,
        ))
    }
}

fn bad() -> AttestError {
    AttestError::malformed("the event log is truncated or malformed")
}

/// Parses and replays a crypto-agile log.
pub fn replay(log: &[u8]) -> Result<Replayed, AttestError> {
    let mut c = C { b: log, i: 0 };
    // Header: TCG_PCR_EVENT with the Spec ID event.
    let _pcr = c.u32()?;
    let ty = c.u32()?;
    c.take(20)?;
    let size = c.u32()? as usize;
    let spec = c.take(size)?;
    if ty != EV_NO_ACTION || !spec.starts_with(b"Spec ID Event03\0") {
        return Err(AttestError::Unsupported(
            "only the crypto-agile (TCG2) event log format is supported".into(),
        ));
    }
    let mut s = C { b: spec, i: 24 };
    let n = s.u32()?;
    if n == 0 || n > 8 {
        return Err(bad());
    }
    let mut sizes = BTreeMap::new();
    for _ in 0..n {
        let alg = s.u16()?;
        let sz = s.u16()?;
        sizes.insert(alg, usize::from(sz));
    }
    let mut out = Replayed::default();
    let mut locality = 0u8;
    let mut events = Vec::new();
    while c.i < log.len() {
        // Logs in fixed-size areas (TDX CCEL) are padded with 0xFF or 0x00 after the last event.
        let rest = log.get(c.i..).unwrap_or_default();
        if rest.iter().all(|b| *b == 0xFF) || rest.iter().all(|b| *b == 0) {
            break;
        }
        let pcr = c.u32()?;
        let ty = c.u32()?;
        let count = c.u32()?;
        if count > 8 {
            return Err(bad());
        }
        let mut digests = Vec::new();
        for _ in 0..count {
            let alg = c.u16()?;
            let sz = *sizes.get(&alg).ok_or_else(bad)?;
            digests.push((alg, c.take(sz)?.to_vec()));
        }
        let esize = c.u32()? as usize;
        let data = c.take(esize)?;
        if pcr > 23 {
            return Err(bad());
        }
        if ty == EV_NO_ACTION {
            if pcr == 0 && data.starts_with(b"StartupLocality\0") {
                locality = data.get(16).copied().unwrap_or(0);
            }
            continue;
        }
        events.push((pcr, ty, digests, data));
    }
    for (alg, size) in &sizes {
        let Some(h) = hash_alg(*alg) else { continue };
        let bank = out.pcrs.entry(*alg).or_default();
        for (pcr, _, digests, _) in &events {
            let Some((_, d)) = digests.iter().find(|(a, _)| a == alg) else {
                continue;
            };
            let cur = bank.entry(*pcr).or_insert_with(|| {
                let mut init = vec![0u8; *size];
                if *pcr == 0
                    && let Some(last) = init.last_mut()
                {
                    *last = locality;
                }
                init
            });
            let mut ctx = aws_lc_rs::digest::Context::new(h);
            ctx.update(cur);
            ctx.update(d);
            *cur = ctx.finish().as_ref().to_vec();
        }
    }
    out.events = events.len();
    for (pcr, ty, digests, data) in &events {
        match *ty {
            EV_EFI_VARIABLE_DRIVER_CONFIG if *pcr == 7 => {
                // What was extended is the hash of the event data; a fact is read from the
                // data only when it is what was measured.
                for (alg, d) in digests {
                    if let Some(h) = hash_alg(*alg)
                        && aws_lc_rs::digest::digest(h, data).as_ref() != d.as_slice()
                    {
                        return Err(AttestError::BindingInvalid(
                            "the event log's UEFI variable event in PCR 7 does not hash to its digest: its data is not what was measured".into(),
                        ));
                    }
                }
                if let Some((name, value)) = uefi_variable(data)
                    && name == "SecureBoot"
                {
                    out.secure_boot = Some(value.first() == Some(&1));
                }
            }
            EV_EFI_BOOT_SERVICES_APPLICATION => {
                if let Some((_, d)) = digests
                    .iter()
                    .find(|(a, _)| *a == super::structs::ALG_SHA256)
                {
                    out.boot_applications.push(d.clone());
                }
            }
            EV_SEPARATOR => {}
            _ => {}
        }
    }
    Ok(out)
}

/// UEFI_VARIABLE_DATA: GUID, name length (chars), data length, UTF-16LE name, data.
fn uefi_variable(d: &[u8]) -> Option<(String, &[u8])> {
    let name_len = usize::try_from(u64::from_le_bytes(d.get(16..24)?.try_into().ok()?)).ok()?;
    let data_len = usize::try_from(u64::from_le_bytes(d.get(24..32)?.try_into().ok()?)).ok()?;
    let name_end = 32usize.checked_add(name_len.checked_mul(2)?)?;
    let units: Vec<u16> = d
        .get(32..name_end)?
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes(c.try_into().unwrap_or([0, 0])))
        .collect();
    let data = d.get(name_end..name_end.checked_add(data_len)?)?;
    Some((String::from_utf16_lossy(&units), data))
}
