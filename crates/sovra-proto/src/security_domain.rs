//! The security domain: what makes a deployment's keys usable (the software HSM's root and
//! wrapping keys), encrypted so that only a quorum of its administrators can open it.

use serde::{Deserialize, Serialize};

/// The format tag of a security domain file.
pub const FORMAT: &str = "sovra-security-domain/1";

/// Fewest administrator certificates a security domain is encrypted to.
pub const MIN_HOLDERS: usize = 3;
/// Most administrator certificates a security domain is encrypted to.
pub const MAX_HOLDERS: usize = 10;

/// Body of `POST /v1/securityDomain:download`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownloadSecurityDomainRequest {
    /// The administrators' certificates (PEM), each with an RSA key of at least 2048 bits;
    /// 3 to 10 of them, all different.
    pub certificates: Vec<String>,
    /// How many of their private keys are needed to open it (2 to the number of certificates).
    pub quorum: u8,
}

/// A security domain file (`sovra security-domain download` writes it, `upload` reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityDomain {
    /// [`FORMAT`].
    pub format: String,
    /// When it was made.
    pub create_time: String,
    /// The HSM backend it restores (`software`).
    pub backend: String,
    /// How many shares open it.
    pub quorum: u8,
    /// One share per administrator.
    pub shares: Vec<DomainShare>,
    /// The domain, AES-256-GCM under the split key, bound to everything above; base64.
    pub ciphertext: String,
}

/// One administrator's share of a security domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainShare {
    /// SHA-256 of the administrator's certificate (DER), hex.
    pub certificate_sha256: String,
    /// SHA-256 of its public key (SubjectPublicKeyInfo DER), hex: which private key opens it.
    pub public_key_sha256: String,
    /// The share, RSA-OAEP-SHA256 to that key; base64.
    pub encrypted_share: String,
}

impl SecurityDomain {
    /// What the ciphertext is bound to: every field but the encrypted shares and itself.
    pub fn aad(&self) -> Vec<u8> {
        let mut s = format!(
            "{}\n{}\n{}\n{}\n",
            self.format, self.create_time, self.backend, self.quorum
        );
        for sh in &self.shares {
            s.push_str(&sh.certificate_sha256);
            s.push(' ');
            s.push_str(&sh.public_key_sha256);
            s.push('\n');
        }
        s.into_bytes()
    }
}

/// The format tag of a quorum-sealed unseal key (`hsm/unseal-quorum.json`).
pub const UNSEAL_FORMAT: &str = "sovra-unseal-quorum/1";

/// The software HSM's unseal key split among administrators: a restart needs `quorum` of them
/// (`sovra unseal`). Public: `GET /v1/unseal` on a sealed node serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsealQuorum {
    /// [`UNSEAL_FORMAT`].
    pub format: String,
    /// When the node was sealed this way.
    pub create_time: String,
    /// How many shares unseal it.
    pub quorum: u8,
    /// One share per administrator.
    pub shares: Vec<UnsealShare>,
}

/// One administrator's share of the unseal key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsealShare {
    /// SHA-256 of the administrator's certificate (DER), hex.
    pub certificate_sha256: String,
    /// SHA-256 of its public key (SubjectPublicKeyInfo DER), hex.
    pub public_key_sha256: String,
    /// The share, RSA-OAEP-SHA256 to that key; base64.
    pub encrypted_share: String,
    /// SHA-256 commitment to the share (hex): a share handed in is checked against it.
    pub commitment: String,
}

/// `GET /v1/unseal` on a node: whether it is sealed, and how far unsealing got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsealStatus {
    /// Whether the node still waits for shares.
    pub sealed: bool,
    /// Shares needed.
    pub quorum: u8,
    /// Shares received so far.
    pub received: u8,
    /// The encrypted shares (while sealed), for `sovra unseal` to find its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<UnsealShare>,
}

/// Body of `POST /v1/unseal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitUnsealShareRequest {
    /// One decrypted share, base64.
    pub share: String,
}
