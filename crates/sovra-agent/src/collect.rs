//! Evidence collectors: produce TEE evidence that carries 64 bytes of report data.

use crate::AgentError;
use crate::simsnp::SimulatedSnp;
use sovra_proto::EvidenceType;
use std::path::{Path, PathBuf};

/// Collected evidence, ready for `POST /v1/attest/{type}`.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Sovra evidence type (`sev-snp`, `tdx`, …).
    pub kind: EvidenceType,
    /// The evidence bytes.
    pub evidence: Vec<u8>,
    /// Certificates that travel with it (PEM or DER).
    pub cert_chain: Vec<Vec<u8>>,
}

/// Something that makes evidence binding `report_data`.
pub trait Collector: Send + Sync + std::fmt::Debug {
    /// A short name for messages.
    fn name(&self) -> &'static str;
    /// Produces evidence carrying `report_data`.
    fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, AgentError>;

    /// A TPM whose AK must first be activated by the server (TPM-only machines).
    fn tpm(&self) -> Option<&crate::tpm::TpmCollector> {
        None
    }
}

/// The simulated SNP guest.
#[derive(Debug)]
pub struct SimSnpCollector(pub SimulatedSnp);

impl Collector for SimSnpCollector {
    fn name(&self) -> &'static str {
        "simulated SEV-SNP"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, AgentError> {
        Ok(Evidence {
            kind: EvidenceType::SevSnp,
            evidence: self.0.report(report_data)?,
            cert_chain: vec![
                self.0.vcek_pem.clone().into_bytes(),
                self.0.ask_ark_pem.clone().into_bytes(),
            ],
        })
    }
}

/// The kernel's configfs-tsm report interface (`/sys/kernel/config/tsm/report`), which serves
/// SEV-SNP (provider `sev_guest`) and TDX (provider `tdx_guest`) guests.
#[derive(Debug, Clone)]
pub struct ConfigfsTsm {
    root: PathBuf,
}

/// The default configfs-tsm directory.
pub const TSM_ROOT: &str = "/sys/kernel/config/tsm/report";

const VCEK_GUID: [u8; 16] = [
    0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];

fn io(p: &Path, e: std::io::Error) -> AgentError {
    AgentError::Collect(format!("{}: {e}", p.display()))
}

/// Certificates from an SNP extended-report certificate table (GUID, offset, length entries).
fn snp_certs(aux: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(e) = aux.get(i..i + 24) {
        let (guid, rest) = e.split_at(16);
        if guid.iter().all(|b| *b == 0) {
            break;
        }
        let off = u32::from_le_bytes(
            rest.get(..4)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        ) as usize;
        let len = u32::from_le_bytes(
            rest.get(4..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        ) as usize;
        if let Some(c) = aux.get(off..off.saturating_add(len)) {
            // The VCEK first, then ASK/ARK.
            if guid == VCEK_GUID {
                out.insert(0, c.to_vec());
            } else {
                out.push(c.to_vec());
            }
        }
        i += 24;
    }
    out
}

impl ConfigfsTsm {
    /// The interface at `root` if it exists.
    pub fn open(root: &Path) -> Option<Self> {
        root.is_dir().then(|| Self {
            root: root.to_path_buf(),
        })
    }
}

impl Collector for ConfigfsTsm {
    fn name(&self) -> &'static str {
        "configfs-tsm"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, AgentError> {
        let entry = self.root.join(format!("sovra-{}", std::process::id()));
        std::fs::create_dir(&entry).map_err(|e| io(&entry, e))?;
        let result = (|| {
            std::fs::write(entry.join("inblob"), report_data)
                .map_err(|e| io(&entry.join("inblob"), e))?;
            let provider = std::fs::read_to_string(entry.join("provider"))
                .map_err(|e| io(&entry.join("provider"), e))?;
            let outblob =
                std::fs::read(entry.join("outblob")).map_err(|e| io(&entry.join("outblob"), e))?;
            let aux = std::fs::read(entry.join("auxblob")).unwrap_or_default();
            match provider.trim() {
                "sev_guest" => Ok(Evidence {
                    kind: EvidenceType::SevSnp,
                    evidence: outblob,
                    cert_chain: snp_certs(&aux),
                }),
                "tdx_guest" => Ok(Evidence {
                    kind: EvidenceType::Tdx,
                    evidence: outblob,
                    cert_chain: Vec::new(),
                }),
                other => Err(AgentError::Collect(format!(
                    "configfs-tsm provider {other:?} is not supported"
                ))),
            }
        })();
        let _ = std::fs::remove_dir(&entry);
        result
    }
}

/// The SEV-SNP guest device (`/dev/sev-guest`, SNP_GET_EXT_REPORT), for kernels without
/// configfs-tsm.
#[derive(Debug, Clone, Copy)]
pub struct SevGuest;

/// The SEV-SNP guest device.
pub const SEV_GUEST: &str = "/dev/sev-guest";

impl SevGuest {
    /// The device if this is an SEV-SNP guest.
    pub fn open() -> Option<Self> {
        Path::new(SEV_GUEST).exists().then_some(Self)
    }
}

impl Collector for SevGuest {
    fn name(&self) -> &'static str {
        "/dev/sev-guest"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, AgentError> {
        use sev::firmware::guest::Firmware;
        use sev::firmware::host::CertType;
        let mut fw = Firmware::open().map_err(|e| io(Path::new(SEV_GUEST), e))?;
        // VMPL 0 when the guest runs there; a guest under an SVSM (VMPL 1+) may only ask for
        // its own level or above, so fall back to 1 (what snpguest asks by default).
        let (report, certs) = fw
            .get_ext_report(None, Some(*report_data), Some(0))
            .or_else(|_| fw.get_ext_report(None, Some(*report_data), Some(1)))
            .map_err(|e| AgentError::Collect(format!("{SEV_GUEST}: SNP_GET_EXT_REPORT: {e}")))?;
        // The VCEK (or VLEK) first, then ASK/ARK; without a host-provided table the server's
        // collateral store must hold the VCEK.
        let mut chain: Vec<(u8, Vec<u8>)> = certs
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| match c.cert_type {
                CertType::VCEK | CertType::VLEK => Some((0, c.data)),
                CertType::ASK => Some((1, c.data)),
                CertType::ARK => Some((2, c.data)),
                _ => None,
            })
            .collect();
        chain.sort_by_key(|(order, _)| *order);
        Ok(Evidence {
            kind: EvidenceType::SevSnp,
            evidence: report,
            cert_chain: chain.into_iter().map(|(_, c)| c).collect(),
        })
    }
}
