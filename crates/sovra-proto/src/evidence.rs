//! The evidence types Sovra verifies, by the names the API, the CLI and the agent use.

/// The evidence types Sovra verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The stable name used in the API, on the CLI and in URLs.
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

/// A name that is not an evidence type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvidenceType(pub String);

impl std::fmt::Display for UnknownEvidenceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = EvidenceType::ALL.iter().map(|t| t.as_str()).collect();
        write!(
            f,
            "unknown evidence type {:?}; expected one of {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownEvidenceType {}

impl std::str::FromStr for EvidenceType {
    type Err = UnknownEvidenceType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEvidenceType(s.to_owned()))
    }
}

impl serde::Serialize for EvidenceType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EvidenceType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for t in EvidenceType::ALL {
            assert_eq!(t.as_str().parse::<EvidenceType>().unwrap(), t);
        }
        let e = "sev".parse::<EvidenceType>().unwrap_err().to_string();
        assert!(e.contains("sev-snp, az-snp-vtpm"), "{e}");
    }
}
