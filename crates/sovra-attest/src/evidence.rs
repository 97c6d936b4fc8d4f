//! What a verifier is given: the evidence type, the evidence and its companions, and the context
//! (time and trust anchors).

use crate::error::AttestError;

pub use sovra_proto::EvidenceType;

impl From<sovra_proto::evidence::UnknownEvidenceType> for AttestError {
    fn from(e: sovra_proto::evidence::UnknownEvidenceType) -> Self {
        AttestError::Unsupported(e.to_string())
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

impl Platform {
    /// The certificate hierarchy that roots evidence of `t`.
    pub fn of(t: EvidenceType) -> Platform {
        crate::verifier_for(t).platform()
    }
}
