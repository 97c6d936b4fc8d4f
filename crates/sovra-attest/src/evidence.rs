//! What a verifier is given: the evidence type, the evidence and its companions, and the context
//! (time and trust anchors).

use crate::error::AttestError;

/// The evidence types Sovra verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvidenceType {
    /// AMD SEV-SNP attestation report (raw 1184-byte report) signed by a VCEK or VLEK.
    SevSnp,
    /// Azure confidential VM on SEV-SNP: HCL report + vTPM quote.
    AzSnpVtpm,
    /// Azure confidential VM on TDX: HCL report + TD quote + vTPM quote.
    AzTdxVtpm,
    /// Intel TDX quote (v4 or v5).
    Tdx,
    /// Intel SGX DCAP quote (v3).
    Sgx,
    /// TPM 2.0 quote by an attestation key.
    Tpm,
    /// AWS Nitro Enclaves attestation document (COSE_Sign1).
    Nitro,
    /// NVIDIA H100 SPDM measurement report.
    NvidiaGpu,
}

impl EvidenceType {
    /// Every evidence type, in a stable order.
    pub const ALL: [EvidenceType; 8] = [
        Self::SevSnp,
        Self::AzSnpVtpm,
        Self::AzTdxVtpm,
        Self::Tdx,
        Self::Sgx,
        Self::Tpm,
        Self::Nitro,
        Self::NvidiaGpu,
    ];

    /// The stable name used on the CLI and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SevSnp => "sev-snp",
            Self::AzSnpVtpm => "az-snp-vtpm",
            Self::AzTdxVtpm => "az-tdx-vtpm",
            Self::Tdx => "tdx",
            Self::Sgx => "sgx",
            Self::Tpm => "tpm",
            Self::Nitro => "nitro",
            Self::NvidiaGpu => "nvidia-gpu",
        }
    }
}

impl std::fmt::Display for EvidenceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EvidenceType {
    type Err = AttestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                AttestError::Unsupported(format!(
                    "unknown evidence type {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The evidence and what travels with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvidenceInput<'a> {
    /// The evidence exactly as the platform produced it (raw report, quote, JSON envelope,
    /// COSE document, hex text).
    pub evidence: &'a [u8],
    /// Certificates that come with the evidence (PEM bundle or concatenated DER): VCEK/VLEK and
    /// its ASK/ARK, an NVIDIA device chain, a TPM AK certificate.
    pub cert_chain: &'a [&'a [u8]],
    /// Collateral (Intel PCS/PCCS JSON: TCB info, QE identity, CRLs, chains).
    pub collateral: Option<&'a [u8]>,
    /// An event log (TCG crypto-agile log or CCEL) to replay.
    pub event_log: Option<&'a [u8]>,
    /// The nonce the verifier expects the evidence to carry.
    pub nonce: Option<&'a [u8]>,
}

/// A root certificate trusted for one platform in addition to the pinned vendor roots.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The platform whose chains may end at this root.
    pub platform: Platform,
    /// The root certificate, DER.
    pub der: Vec<u8>,
}

/// The certificate hierarchies Sovra knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// AMD SEV (ARK → ASK/ASVK → VCEK/VLEK).
    Amd,
    /// Intel SGX/TDX provisioning (Intel SGX Root CA → PCK).
    Intel,
    /// AWS Nitro Enclaves.
    AwsNitro,
    /// NVIDIA device identity.
    Nvidia,
    /// TPM attestation-key or endorsement-key CAs (operator-configured).
    Tpm,
}

/// Trust anchors beyond the pinned vendor roots, and certificates available for chain building.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    /// Extra roots (operator-configured: TPM CAs, test chains for simulated TEEs).
    pub anchors: Vec<Anchor>,
    /// Certificates (DER) that may be used as intermediates: AMD ASK/ASVK/ARK bundles and VCEKs
    /// from the collateral store.
    pub cert_pool: Vec<Vec<u8>>,
}

impl TrustStore {
    /// The extra roots for `platform`.
    pub fn anchors_for(&self, platform: Platform) -> impl Iterator<Item = &[u8]> {
        self.anchors
            .iter()
            .filter(move |a| a.platform == platform)
            .map(|a| a.der.as_slice())
    }
}

/// The context of one verification: the time and the trust store.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    /// Verification time, seconds since the Unix epoch. Certificates and collateral must be valid
    /// at this instant.
    pub now: i64,
    /// Trust anchors and certificate pool.
    pub trust: &'a TrustStore,
}

impl EvidenceType {
    /// The certificate hierarchy that roots this type's evidence (where operator-added trust
    /// anchors for it go).
    pub fn platform(self) -> Platform {
        match self {
            Self::SevSnp | Self::AzSnpVtpm => Platform::Amd,
            Self::Tdx | Self::Sgx | Self::AzTdxVtpm => Platform::Intel,
            Self::Tpm => Platform::Tpm,
            Self::Nitro => Platform::AwsNitro,
            Self::NvidiaGpu => Platform::Nvidia,
        }
    }
}
