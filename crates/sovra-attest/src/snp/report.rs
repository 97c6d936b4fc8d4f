//! The SEV-SNP attestation report (SEV-SNP ABI, `ATTESTATION_REPORT`, versions 2 to 5): a fixed
//! 1184-byte structure, little-endian, signed over its first 0x2A0 bytes.

use crate::error::AttestError;

/// Size of a report.
pub const REPORT_LEN: usize = 0x4A0;
/// End of the signed part.
pub const SIGNED_LEN: usize = 0x2A0;

/// The processor generation, which decides the TCB layout and the ARK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// EPYC 7003 (Zen 3).
    Milan,
    /// EPYC 9004 (Zen 4).
    Genoa,
    /// EPYC 9005 (Zen 5).
    Turin,
}

impl Product {
    /// The name AMD uses in certificates (`SEV-Milan`, `ARK-Genoa`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// From CPUID family/model (reports v3+).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }
}

/// A TCB version, decoded per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tcb {
    /// Raw 64-bit value.
    pub raw: u64,
    /// Boot loader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Microcode SVN.
    pub microcode: u8,
    /// FMC SVN (Turin only).
    pub fmc: Option<u8>,
}

impl Tcb {
    /// Decodes `raw` for `product` (Milan/Genoa: BL, TEE, -, -, -, -, SNP, UCODE; Turin: FMC,
    /// BL, TEE, SNP, -, -, -, UCODE — byte 0 first).
    pub fn decode(raw: u64, product: Product) -> Self {
        let b = raw.to_le_bytes();
        let [b0, b1, b2, b3, _, _, b6, b7] = b;
        match product {
            Product::Turin => Self {
                raw,
                fmc: Some(b0),
                bootloader: b1,
                tee: b2,
                snp: b3,
                microcode: b7,
            },
            _ => Self {
                raw,
                fmc: None,
                bootloader: b0,
                tee: b1,
                snp: b6,
                microcode: b7,
            },
        }
    }

    /// As a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "bootloader": self.bootloader, "tee": self.tee, "snp": self.snp, "microcode": self.microcode,
        });
        if let (Some(f), Some(o)) = (self.fmc, v.as_object_mut()) {
            o.insert("fmc".into(), f.into());
        }
        v
    }
}

/// Which key signed the report (`flags` bits 2..4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key (cloud provider).
    Vlek,
}

/// A parsed report.
#[derive(Debug, Clone)]
pub struct SnpReport {
    /// The whole report.
    pub raw: Vec<u8>,
    /// Report version (2..=5).
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy.
    pub policy: u64,
    /// Family ID.
    pub family_id: [u8; 16],
    /// Image ID.
    pub image_id: [u8; 16],
    /// VMPL of the request.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// Current TCB (raw).
    pub current_tcb: u64,
    /// Platform info bits.
    pub platform_info: u64,
    /// Flags (author key, mask chip key, signing key).
    pub flags: u32,
    /// Report data supplied by the guest.
    pub report_data: [u8; 64],
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Host data.
    pub host_data: [u8; 32],
    /// ID key digest.
    pub id_key_digest: [u8; 48],
    /// Author key digest.
    pub author_key_digest: [u8; 48],
    /// Report ID.
    pub report_id: [u8; 32],
    /// Report ID of the migration agent.
    pub report_id_ma: [u8; 32],
    /// Reported TCB (raw): the TCB the VCEK is derived from.
    pub reported_tcb: u64,
    /// CPUID family (v3+; 0 before).
    pub cpuid_fam_id: u8,
    /// CPUID model (v3+).
    pub cpuid_mod_id: u8,
    /// CPUID stepping (v3+).
    pub cpuid_step: u8,
    /// Chip ID.
    pub chip_id: [u8; 64],
    /// Committed TCB.
    pub committed_tcb: u64,
    /// Current firmware build, minor, major.
    pub current_version: (u8, u8, u8),
    /// Committed firmware build, minor, major.
    pub committed_version: (u8, u8, u8),
    /// Launch TCB.
    pub launch_tcb: u64,
    /// Signature r (big-endian, 48 bytes).
    pub sig_r: [u8; 48],
    /// Signature s (big-endian, 48 bytes).
    pub sig_s: [u8; 48],
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn arr<const N: usize>(&self, off: usize) -> Result<[u8; N], AttestError> {
        self.0
            .get(off..off + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| {
                AttestError::malformed(format!("SNP report truncated at offset {off:#x}"))
            })
    }
    fn u8(&self, off: usize) -> Result<u8, AttestError> {
        Ok(self.arr::<1>(off)?[0])
    }
    fn u32(&self, off: usize) -> Result<u32, AttestError> {
        Ok(u32::from_le_bytes(self.arr(off)?))
    }
    fn u64(&self, off: usize) -> Result<u64, AttestError> {
        Ok(u64::from_le_bytes(self.arr(off)?))
    }
}

/// A 72-byte little-endian signature component as 48 big-endian bytes (the top 24 must be 0).
fn component(le: [u8; 72]) -> Result<[u8; 48], AttestError> {
    let (low, high) = le.split_at(48);
    if high.iter().any(|b| *b != 0) {
        return Err(AttestError::SignatureInvalid(
            "SNP signature component exceeds 384 bits".into(),
        ));
    }
    let mut be = [0u8; 48];
    for (d, s) in be.iter_mut().zip(low.iter().rev()) {
        *d = *s;
    }
    Ok(be)
}

/// Accepts the raw 1184-byte report, or the same as hex text.
pub fn decode_input(bytes: &[u8]) -> Result<Vec<u8>, AttestError> {
    if bytes.len() == REPORT_LEN {
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes)
        .ok()
        .map(|s| s.split_whitespace().collect::<String>());
    match text.and_then(|t| sovra_proto::hex::decode(&t)) {
        Some(b) if b.len() == REPORT_LEN => Ok(b),
        _ => Err(AttestError::malformed(format!(
            "an SEV-SNP report is {REPORT_LEN} bytes (or their hex); got {} bytes",
            bytes.len()
        ))),
    }
}

/// Parses a report.
pub fn parse_report(bytes: &[u8]) -> Result<SnpReport, AttestError> {
    if bytes.len() != REPORT_LEN {
        return Err(AttestError::malformed(format!(
            "an SEV-SNP report is {REPORT_LEN} bytes, got {}",
            bytes.len()
        )));
    }
    let r = R(bytes);
    let version = r.u32(0x00)?;
    if !(2..=5).contains(&version) {
        return Err(AttestError::Unsupported(format!(
            "SNP report version {version} (supported: 2 to 5)"
        )));
    }
    let signature_algo = r.u32(0x34)?;
    if signature_algo != 1 {
        return Err(AttestError::Unsupported(format!(
            "SNP signature algorithm {signature_algo} (only 1, ECDSA P-384 with SHA-384)"
        )));
    }
    let (cpuid_fam_id, cpuid_mod_id, cpuid_step) = if version >= 3 {
        (r.u8(0x188)?, r.u8(0x189)?, r.u8(0x18A)?)
    } else {
        (0, 0, 0)
    };
    Ok(SnpReport {
        version,
        guest_svn: r.u32(0x04)?,
        policy: r.u64(0x08)?,
        family_id: r.arr(0x10)?,
        image_id: r.arr(0x20)?,
        vmpl: r.u32(0x30)?,
        signature_algo,
        current_tcb: r.u64(0x38)?,
        platform_info: r.u64(0x40)?,
        flags: r.u32(0x48)?,
        report_data: r.arr(0x50)?,
        measurement: r.arr(0x90)?,
        host_data: r.arr(0xC0)?,
        id_key_digest: r.arr(0xE0)?,
        author_key_digest: r.arr(0x110)?,
        report_id: r.arr(0x140)?,
        report_id_ma: r.arr(0x160)?,
        reported_tcb: r.u64(0x180)?,
        cpuid_fam_id,
        cpuid_mod_id,
        cpuid_step,
        chip_id: r.arr(0x1A0)?,
        committed_tcb: r.u64(0x1E0)?,
        current_version: (r.u8(0x1E8)?, r.u8(0x1E9)?, r.u8(0x1EA)?),
        committed_version: (r.u8(0x1EC)?, r.u8(0x1ED)?, r.u8(0x1EE)?),
        launch_tcb: r.u64(0x1F0)?,
        sig_r: component(r.arr(0x2A0)?)?,
        sig_s: component(r.arr(0x2A0 + 72)?)?,
        raw: bytes.to_vec(),
    })
}

impl SnpReport {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..SIGNED_LEN).unwrap_or_default()
    }

    /// The signing key named by `flags`.
    pub fn signing_key(&self) -> Result<SigningKey, AttestError> {
        match (self.flags >> 2) & 0x7 {
            0 => Ok(SigningKey::Vcek),
            1 => Ok(SigningKey::Vlek),
            7 => Err(AttestError::Unsupported(
                "the report is unsigned (signing key 7: none)".into(),
            )),
            k => Err(AttestError::malformed(format!(
                "signing key selector {k} is reserved"
            ))),
        }
    }

    /// Policy bit `n`.
    pub fn policy_bit(&self, n: u32) -> bool {
        self.policy >> n & 1 == 1
    }

    /// Debugging allowed by the guest policy (bit 19).
    pub fn debug(&self) -> bool {
        self.policy_bit(19)
    }
}
