//! Key-management resources: locations, key rings, crypto keys and their versions.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a key is for; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Purpose {
    /// Symmetric encryption and decryption (AES-256-GCM).
    EncryptDecrypt,
    /// Asymmetric signing (EC, RSA, Ed25519).
    AsymmetricSign,
    /// Asymmetric decryption (RSA-OAEP).
    AsymmetricDecrypt,
    /// Message authentication codes (HMAC).
    Mac,
    /// Wrapping keys with AES key wrap (RFC 3394, and with padding RFC 5649).
    KeyWrap,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 5] = [
        Self::EncryptDecrypt,
        Self::AsymmetricSign,
        Self::AsymmetricDecrypt,
        Self::Mac,
        Self::KeyWrap,
    ];

    /// The operations a key of this purpose offers (what its `keyOps` may be narrowed from).
    pub fn key_ops(self) -> &'static [KeyOp] {
        use KeyOp::*;
        match self {
            Self::EncryptDecrypt => &[Encrypt, Decrypt],
            Self::AsymmetricSign | Self::Mac => &[Sign, Verify],
            Self::AsymmetricDecrypt => &[Encrypt, Decrypt, WrapKey, UnwrapKey],
            Self::KeyWrap => &[WrapKey, UnwrapKey],
        }
    }
}

/// An operation a key can be limited to, in Key Vault's `key_ops` vocabulary. Sovra's own
/// operations count as: encrypt (`:encrypt`, and RSA-OAEP encryption on the server) → `encrypt`;
/// `:decrypt`, `:asymmetricDecrypt`, `:decryptTo` → `decrypt`; `:asymmetricSign`, `:macSign` →
/// `sign`; verification and `:macVerify` → `verify`; `:wrapKey` / `:unwrapKey` → `wrapKey` /
/// `unwrapKey` (and, on an RSA key, Key Vault's `wrapkey` / `unwrapkey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyOp {
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// Sign (or MAC).
    Sign,
    /// Verify a signature (or MAC).
    Verify,
    /// Wrap a key.
    WrapKey,
    /// Unwrap a key.
    UnwrapKey,
}

impl KeyOp {
    /// Every operation.
    pub const ALL: [KeyOp; 6] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::Sign,
        Self::Verify,
        Self::WrapKey,
        Self::UnwrapKey,
    ];

    /// The wire name (`wrapKey`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A key algorithm (names after Cloud KMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Algorithm {
    /// AES-256 in GCM mode with a 96-bit random nonce.
    #[serde(rename = "AES_256_GCM")]
    Aes256Gcm,
    /// ECDSA on P-256 with SHA-256.
    EcSignP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcSignP384Sha384,
    /// Ed25519 (PureEdDSA).
    EcSignEd25519,
    /// RSASSA-PSS 2048-bit, SHA-256.
    #[serde(rename = "RSA_SIGN_PSS_2048_SHA256")]
    RsaSignPss2048Sha256,
    /// RSASSA-PSS 3072-bit, SHA-256.
    #[serde(rename = "RSA_SIGN_PSS_3072_SHA256")]
    RsaSignPss3072Sha256,
    /// RSASSA-PSS 4096-bit, SHA-256.
    #[serde(rename = "RSA_SIGN_PSS_4096_SHA256")]
    RsaSignPss4096Sha256,
    /// RSASSA-PSS 4096-bit, SHA-512.
    #[serde(rename = "RSA_SIGN_PSS_4096_SHA512")]
    RsaSignPss4096Sha512,
    /// RSASSA-PKCS1-v1_5 2048-bit, SHA-256.
    #[serde(rename = "RSA_SIGN_PKCS1_2048_SHA256")]
    RsaSignPkcs12048Sha256,
    /// RSASSA-PKCS1-v1_5 3072-bit, SHA-256.
    #[serde(rename = "RSA_SIGN_PKCS1_3072_SHA256")]
    RsaSignPkcs13072Sha256,
    /// RSASSA-PKCS1-v1_5 4096-bit, SHA-256.
    #[serde(rename = "RSA_SIGN_PKCS1_4096_SHA256")]
    RsaSignPkcs14096Sha256,
    /// RSASSA-PKCS1-v1_5 4096-bit, SHA-512.
    #[serde(rename = "RSA_SIGN_PKCS1_4096_SHA512")]
    RsaSignPkcs14096Sha512,
    /// RSAES-OAEP 2048-bit, SHA-256 (and MGF1-SHA-256).
    #[serde(rename = "RSA_DECRYPT_OAEP_2048_SHA256")]
    RsaDecryptOaep2048Sha256,
    /// RSAES-OAEP 3072-bit, SHA-256.
    #[serde(rename = "RSA_DECRYPT_OAEP_3072_SHA256")]
    RsaDecryptOaep3072Sha256,
    /// RSAES-OAEP 4096-bit, SHA-256.
    #[serde(rename = "RSA_DECRYPT_OAEP_4096_SHA256")]
    RsaDecryptOaep4096Sha256,
    /// HMAC with SHA-256 and a 256-bit key.
    HmacSha256,
    /// AES-256 key wrap: RFC 3394 (`CKM_AES_KEY_WRAP`, JOSE `A256KW`) and RFC 5649
    /// (`CKM_AES_KEY_WRAP_PAD`).
    #[serde(rename = "AES_256_KEY_WRAP")]
    Aes256KeyWrap,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: &'static [Algorithm] = &[
        Self::Aes256Gcm,
        Self::EcSignP256Sha256,
        Self::EcSignP384Sha384,
        Self::EcSignEd25519,
        Self::RsaSignPss2048Sha256,
        Self::RsaSignPss3072Sha256,
        Self::RsaSignPss4096Sha256,
        Self::RsaSignPss4096Sha512,
        Self::RsaSignPkcs12048Sha256,
        Self::RsaSignPkcs13072Sha256,
        Self::RsaSignPkcs14096Sha256,
        Self::RsaSignPkcs14096Sha512,
        Self::RsaDecryptOaep2048Sha256,
        Self::RsaDecryptOaep3072Sha256,
        Self::RsaDecryptOaep4096Sha256,
        Self::HmacSha256,
        Self::Aes256KeyWrap,
    ];

    /// What the algorithm is, in parts: the one table every other property derives from, so
    /// adding an algorithm is a variant here and a line in this match.
    pub fn spec(self) -> AlgSpec {
        use AlgHash::*;
        use Algorithm::*;
        use RsaPadding::*;
        let rsa = |bits, padding, hash| AlgSpec::RsaSign {
            bits,
            padding,
            hash,
        };
        match self {
            Aes256Gcm => AlgSpec::Aes256Gcm,
            EcSignP256Sha256 => AlgSpec::Ecdsa {
                curve: EcCurve::P256,
                hash: Sha256,
            },
            EcSignP384Sha384 => AlgSpec::Ecdsa {
                curve: EcCurve::P384,
                hash: Sha384,
            },
            EcSignEd25519 => AlgSpec::Ed25519,
            RsaSignPss2048Sha256 => rsa(2048, Pss, Sha256),
            RsaSignPss3072Sha256 => rsa(3072, Pss, Sha256),
            RsaSignPss4096Sha256 => rsa(4096, Pss, Sha256),
            RsaSignPss4096Sha512 => rsa(4096, Pss, Sha512),
            RsaSignPkcs12048Sha256 => rsa(2048, Pkcs1, Sha256),
            RsaSignPkcs13072Sha256 => rsa(3072, Pkcs1, Sha256),
            RsaSignPkcs14096Sha256 => rsa(4096, Pkcs1, Sha256),
            RsaSignPkcs14096Sha512 => rsa(4096, Pkcs1, Sha512),
            RsaDecryptOaep2048Sha256 => AlgSpec::RsaOaep {
                bits: 2048,
                hash: Sha256,
            },
            RsaDecryptOaep3072Sha256 => AlgSpec::RsaOaep {
                bits: 3072,
                hash: Sha256,
            },
            RsaDecryptOaep4096Sha256 => AlgSpec::RsaOaep {
                bits: 4096,
                hash: Sha256,
            },
            HmacSha256 => AlgSpec::Hmac { hash: Sha256 },
            Aes256KeyWrap => AlgSpec::AesKeyWrap,
        }
    }

    /// The purpose this algorithm serves.
    pub fn purpose(self) -> Purpose {
        match self.spec() {
            AlgSpec::Aes256Gcm => Purpose::EncryptDecrypt,
            AlgSpec::Ecdsa { .. } | AlgSpec::Ed25519 | AlgSpec::RsaSign { .. } => {
                Purpose::AsymmetricSign
            }
            AlgSpec::RsaOaep { .. } => Purpose::AsymmetricDecrypt,
            AlgSpec::Hmac { .. } => Purpose::Mac,
            AlgSpec::AesKeyWrap => Purpose::KeyWrap,
        }
    }

    /// The hash a signature covers (`None` for Ed25519, which hashes internally, and for
    /// algorithms that do not sign).
    pub fn sign_hash(self) -> Option<AlgHash> {
        match self.spec() {
            AlgSpec::Ecdsa { hash, .. } | AlgSpec::RsaSign { hash, .. } => Some(hash),
            AlgSpec::Ed25519
            | AlgSpec::Aes256Gcm
            | AlgSpec::Hmac { .. }
            | AlgSpec::AesKeyWrap
            | AlgSpec::RsaOaep { .. } => None,
        }
    }

    /// The wire name, e.g. `AES_256_GCM`.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The default algorithm for a purpose.
    pub fn default_for(purpose: Purpose) -> Algorithm {
        match purpose {
            Purpose::EncryptDecrypt => Self::Aes256Gcm,
            Purpose::AsymmetricSign => Self::EcSignP256Sha256,
            Purpose::AsymmetricDecrypt => Self::RsaDecryptOaep3072Sha256,
            Purpose::Mac => Self::HmacSha256,
            Purpose::KeyWrap => Self::Aes256KeyWrap,
        }
    }

    /// Whether the algorithm is symmetric (counts against the symmetric quota).
    pub fn is_symmetric(self) -> bool {
        matches!(
            self.purpose(),
            Purpose::EncryptDecrypt | Purpose::Mac | Purpose::KeyWrap
        )
    }
}

/// An algorithm in parts (see [`Algorithm::spec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgSpec {
    /// AES-256-GCM.
    Aes256Gcm,
    /// AES-256 key wrap (RFC 3394 / RFC 5649).
    AesKeyWrap,
    /// HMAC.
    Hmac {
        /// Its hash.
        hash: AlgHash,
    },
    /// ECDSA (ASN.1 DER signatures).
    Ecdsa {
        /// The curve.
        curve: EcCurve,
        /// The hash signed.
        hash: AlgHash,
    },
    /// Ed25519 (PureEdDSA).
    Ed25519,
    /// RSA signatures.
    RsaSign {
        /// Modulus size.
        bits: u16,
        /// PSS or PKCS#1 v1.5.
        padding: RsaPadding,
        /// The hash signed (and MGF1's, for PSS).
        hash: AlgHash,
    },
    /// RSA-OAEP decryption.
    RsaOaep {
        /// Modulus size.
        bits: u16,
        /// OAEP's hash and MGF1's.
        hash: AlgHash,
    },
}

/// A hash function of an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgHash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// An elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

/// An RSA signature padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaPadding {
    /// RSASSA-PSS (salt as long as the hash).
    Pss,
    /// RSASSA-PKCS1-v1_5.
    Pkcs1,
}

/// Where key material is generated and used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProtectionLevel {
    /// Generated and used in the Sovra process; stored wrapped by the location's HSM key.
    #[default]
    Software,
    /// Generated and used inside the HSM (PKCS#11 backends).
    Hsm,
}

/// The lifecycle state of a key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionState {
    /// Usable.
    Enabled,
    /// Not usable; can be re-enabled.
    Disabled,
    /// Will be destroyed at `destroyTime`; can be restored (to DISABLED) until then.
    DestroyScheduled,
    /// Material erased; metadata kept.
    Destroyed,
}

/// A location: a region whose wrapping key lives in this node's HSM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// `locations/{id}`.
    pub name: String,
    /// The location ID.
    pub location_id: String,
    /// The HSM backend holding the location's wrapping key.
    pub hsm: String,
    /// When the location was created (RFC 3339).
    pub create_time: String,
}

/// A key ring: a named group of keys in a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRing {
    /// `locations/{loc}/keyRings/{ring}`.
    pub name: String,
    /// When the key ring was created (RFC 3339).
    pub create_time: String,
    /// Whether data-plane operations (encrypt, decrypt, sign, …) on keys in this ring are audited.
    #[serde(default)]
    pub audit_data_access: bool,
}

/// Body of `POST /v1/locations/{loc}/keyRings?keyRingId=ID`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRingRequest {
    /// Audit data-plane operations on this ring's keys (default false).
    #[serde(default)]
    pub audit_data_access: bool,
}

/// Body of `PATCH /v1/locations/{loc}/keyRings/{ring}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateKeyRingRequest {
    /// Turn data-access auditing on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_data_access: Option<bool>,
}

/// The template for new versions of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionTemplate {
    /// Algorithm of new versions.
    pub algorithm: Algorithm,
    /// Protection level of new versions. In a request, omitted means the deployment's
    /// default (`HSM` with a PKCS#11 HSM, `SOFTWARE` otherwise); responses always carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection_level: Option<ProtectionLevel>,
}

/// A crypto key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoKey {
    /// `locations/{loc}/keyRings/{ring}/cryptoKeys/{key}`.
    pub name: String,
    /// What the key is for.
    pub purpose: Purpose,
    /// The version used for new operations on the key (absent if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<CryptoKeyVersion>,
    /// When the key was created.
    pub create_time: String,
    /// Template for new versions.
    pub version_template: VersionTemplate,
    /// Automatic rotation period (e.g. `"7776000s"`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<String>,
    /// When the next automatic rotation happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<String>,
    /// How long versions stay DESTROY_SCHEDULED before destruction.
    pub destroy_scheduled_duration: String,
    /// User labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The key may be released to attested TEEs (set at creation, never changed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exportable: bool,
    /// Who may receive the key (exportable keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_policy: Option<ReleasePolicy>,
    /// The only operations the key may be used for, when narrowed from all its purpose offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<KeyOp>>,
}

/// A key's release policy: the Azure SKR grammar (`{"version": "1.0.0", "anyOf": […]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleasePolicy {
    /// The policy document (a JSON object, or the same as a JSON string).
    pub policy: serde_json::Value,
    /// Once set, the policy can never be changed or removed.
    #[serde(default)]
    pub immutable: bool,
}

/// Body of `POST /v1/{keyRing}/cryptoKeys?cryptoKeyId=ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCryptoKeyRequest {
    /// What the key is for.
    pub purpose: Purpose,
    /// Algorithm and protection level (defaults: see [`Algorithm::default_for`], and the
    /// deployment's default protection level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_template: Option<VersionTemplate>,
    /// Automatic rotation period (at least 1 day; symmetric keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<String>,
    /// First automatic rotation (RFC 3339); defaults to now + rotationPeriod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<String>,
    /// How long versions stay DESTROY_SCHEDULED (default 30 days; at least the organisation minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_scheduled_duration: Option<String>,
    /// User labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Create the key without a first version.
    #[serde(default)]
    pub skip_initial_version_creation: bool,
    /// Allow release to attested TEEs (needs `releasePolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exportable: Option<bool>,
    /// The release policy of an exportable key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_policy: Option<ReleasePolicy>,
    /// Limit the key to these operations (a non-empty subset of what its purpose offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<KeyOp>>,
}

/// Body of `PATCH /v1/{cryptoKey}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCryptoKeyRequest {
    /// New rotation period; `""` turns automatic rotation off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<String>,
    /// New next rotation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<String>,
    /// New labels (replaces all labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// New version template (algorithm must keep the key's purpose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_template: Option<VersionTemplate>,
    /// New release policy (not allowed once the current one is immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_policy: Option<ReleasePolicy>,
    /// The operations the key may be used for (a non-empty subset of what its purpose offers;
    /// all of them lifts the limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<KeyOp>>,
}

/// Body of `POST /v1/{cryptoKey}:release` (Azure `release` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The attestation token of the TEE that is to receive the key.
    pub target: String,
    /// A nonce the token must carry (`nonce` or `x-ms-runtime.nonce`); server-issued nonces
    /// (`POST /v1/release/nonces`) are single-use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `CKM_RSA_AES_KEY_WRAP` (default), `RSA_AES_KEY_WRAP_256` or `RSA_AES_KEY_WRAP_384`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
}

/// Response of a release: `{"value": JWS}` whose payload carries the wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseResponse {
    /// Compact JWS signed by Sovra.
    pub value: String,
}

/// Body of `POST /v1/{cryptoKey}:decryptTo` / `:generateDataKeyTo`: attested decrypt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecipientRequest {
    /// The attestation token of the recipient TEE.
    pub target: String,
    /// Ciphertext to decrypt (base64), for `:decryptTo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    /// Additional authenticated data (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
    /// Nonce, as for release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Wrapping, as for release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
}

/// Body of `POST /v1/{cryptoKey}:updatePrimaryVersion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePrimaryVersionRequest {
    /// The version number to make primary (must be ENABLED).
    pub crypto_key_version_id: String,
}

/// A key version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoKeyVersion {
    /// `…/cryptoKeys/{key}/cryptoKeyVersions/{n}`.
    pub name: String,
    /// Lifecycle state.
    pub state: VersionState,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Protection level.
    pub protection_level: ProtectionLevel,
    /// When the version was created.
    pub create_time: String,
    /// When a DESTROY_SCHEDULED version will be (or a DESTROYED version was scheduled to be) destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_time: Option<String>,
    /// When the material was actually destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_event_time: Option<String>,
    /// The key attestation statement made when the version was created (absent for versions
    /// made before Sovra produced them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<KeyAttestation>,
    /// Before this time the version is not used (set through the Key Vault API's `nbf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_time: Option<String>,
    /// From this time the version no longer encrypts, signs or is released; it still decrypts
    /// and verifies (the Key Vault API's `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
}

/// A key attestation statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttestation {
    /// Always `SOVRA_JWS_ES256`: a compact JWS whose `x5c` carries the attestation certificate
    /// and the owner root, and whose claims are a [`KeyStatement`].
    pub format: String,
    /// The JWS.
    pub content: String,
}

/// The `format` of [`KeyAttestation`].
pub const KEY_ATTESTATION_FORMAT: &str = "SOVRA_JWS_ES256";
/// The JWS `typ` of a key attestation statement.
pub const KEY_STATEMENT_TYP: &str = "sovra-key-attestation+jwt";

/// How a key version's material came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyOrigin {
    /// Generated inside the HSM.
    HsmGenerated,
    /// Generated in the Sovra process (protection level SOFTWARE).
    SoftwareGenerated,
    /// Brought in through an import job.
    Imported,
}

/// What a key attestation statement says about a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyStatement {
    /// The version's resource name.
    pub name: String,
    /// Its number.
    pub version: u32,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its protection level.
    pub protection_level: ProtectionLevel,
    /// Where its material came from.
    pub origin: KeyOrigin,
    /// The HSM backend that signed (`pkcs11` or `software`).
    pub hsm: String,
    /// `CKA_LOCAL` as the HSM reported it (HSM-level keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    /// `CKA_SENSITIVE` as the HSM reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    /// `CKA_ALWAYS_SENSITIVE` as the HSM reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_sensitive: Option<bool>,
    /// `CKA_NEVER_EXTRACTABLE` as the HSM reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_extractable: Option<bool>,
    /// SHA-256 of the public key (SubjectPublicKeyInfo DER), hex, for asymmetric HSM keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_sha256: Option<String>,
    /// SHA-256 of the import job's wrapping key (SPKI DER), hex, for imported versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_wrapping_key_sha256: Option<String>,
    /// When the version was created (Unix seconds).
    pub create_time: i64,
}

/// `GET /v1/keyAttestation/roots`: what verifiers of key attestation statements pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttestationRoots {
    /// The owner root certificate (PEM).
    pub owner_root: String,
    /// This node's HSM attestation-key certificate (PEM), issued by the owner root.
    pub attestation_certificate: String,
}

/// Body of `PUT /v1/keyAttestation/roots`: an owner root held by the operator's CA and the
/// certificate it issued for this node's HSM attestation key (from its CSR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetKeyAttestationRootsRequest {
    /// The owner root certificate (PEM).
    pub owner_root: String,
    /// The attestation-key certificate it issued (PEM).
    pub attestation_certificate: String,
}

/// `POST /v1/keyAttestation:rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateKeyAttestationResponse {
    /// SHA-256 (hex) of the new attestation key's SubjectPublicKeyInfo.
    pub public_key_sha256: String,
}

/// `POST /v1/keyAttestation:csr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttestationCsr {
    /// A PKCS#10 request for this node's HSM attestation key (PEM), signed inside the HSM.
    pub csr: String,
}

/// How key material is wrapped for an import job (after Cloud KMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImportMethod {
    /// CKM_RSA_AES_KEY_WRAP: RSA-OAEP (SHA-1) of a fresh AES-256 key, then the material under
    /// AES key wrap with padding (RFC 5649). RSA-3072 wrapping key.
    #[serde(rename = "RSA_OAEP_3072_SHA1_AES_256")]
    RsaOaep3072Sha1Aes256,
    /// As above with an RSA-4096 wrapping key.
    #[serde(rename = "RSA_OAEP_4096_SHA1_AES_256")]
    RsaOaep4096Sha1Aes256,
    /// As above with OAEP SHA-256, RSA-3072.
    #[serde(rename = "RSA_OAEP_3072_SHA256_AES_256")]
    RsaOaep3072Sha256Aes256,
    /// As above with OAEP SHA-256, RSA-4096.
    #[serde(rename = "RSA_OAEP_4096_SHA256_AES_256")]
    RsaOaep4096Sha256Aes256,
    /// The material itself under RSA-OAEP (SHA-256), RSA-3072: symmetric keys only.
    #[serde(rename = "RSA_OAEP_3072_SHA256")]
    RsaOaep3072Sha256,
    /// As above, RSA-4096.
    #[serde(rename = "RSA_OAEP_4096_SHA256")]
    RsaOaep4096Sha256,
}

impl ImportMethod {
    /// Every method.
    pub const ALL: [ImportMethod; 6] = [
        Self::RsaOaep3072Sha1Aes256,
        Self::RsaOaep4096Sha1Aes256,
        Self::RsaOaep3072Sha256Aes256,
        Self::RsaOaep4096Sha256Aes256,
        Self::RsaOaep3072Sha256,
        Self::RsaOaep4096Sha256,
    ];

    /// The wrapping key's size in bits.
    pub fn bits(self) -> u16 {
        match self {
            Self::RsaOaep3072Sha1Aes256
            | Self::RsaOaep3072Sha256Aes256
            | Self::RsaOaep3072Sha256 => 3072,
            _ => 4096,
        }
    }

    /// The OAEP hash (and MGF1 hash): SHA-1 or SHA-256.
    pub fn sha256(self) -> bool {
        !matches!(
            self,
            Self::RsaOaep3072Sha1Aes256 | Self::RsaOaep4096Sha1Aes256
        )
    }

    /// Whether the material is wrapped under a transfer AES key (else directly under OAEP).
    pub fn with_aes(self) -> bool {
        !matches!(self, Self::RsaOaep3072Sha256 | Self::RsaOaep4096Sha256)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaOaep3072Sha1Aes256 => "RSA_OAEP_3072_SHA1_AES_256",
            Self::RsaOaep4096Sha1Aes256 => "RSA_OAEP_4096_SHA1_AES_256",
            Self::RsaOaep3072Sha256Aes256 => "RSA_OAEP_3072_SHA256_AES_256",
            Self::RsaOaep4096Sha256Aes256 => "RSA_OAEP_4096_SHA256_AES_256",
            Self::RsaOaep3072Sha256 => "RSA_OAEP_3072_SHA256",
            Self::RsaOaep4096Sha256 => "RSA_OAEP_4096_SHA256",
        }
    }
}

/// Body of `POST /v1/{keyRing}/importJobs?importJobId=ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateImportJobRequest {
    /// How material will be wrapped.
    pub import_method: ImportMethod,
    /// Level of the versions imported with it (default: the deployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection_level: Option<ProtectionLevel>,
    /// How long the job accepts imports, e.g. `3d` (default 3 days, at most 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// An import job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportJob {
    /// `…/keyRings/{ring}/importJobs/{id}`.
    pub name: String,
    /// How material must be wrapped.
    pub import_method: ImportMethod,
    /// Level of the versions imported with it.
    pub protection_level: ProtectionLevel,
    /// `ACTIVE` or `EXPIRED`.
    pub state: String,
    /// When it was created.
    pub create_time: String,
    /// When it stops accepting imports.
    pub expire_time: String,
    /// The wrapping key (RSA, SubjectPublicKeyInfo PEM), generated inside the HSM.
    pub public_key: String,
    /// The key attestation statement about the wrapping key.
    pub attestation: KeyAttestation,
}

/// `GET /v1/{keyRing}/importJobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImportJobsResponse {
    /// One page of import jobs.
    pub import_jobs: Vec<ImportJob>,
    /// Pass as `pageToken` to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Body of `POST /v1/{cryptoKey}/cryptoKeyVersions:import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportVersionRequest {
    /// The import job's resource name.
    pub import_job: String,
    /// The algorithm of the material (must be the key's purpose).
    pub algorithm: Algorithm,
    /// The material wrapped as the job's method says, base64. AES/HMAC: 32 raw bytes; EC and
    /// RSA: PKCS#8 DER.
    pub wrapped_key: String,
    /// For EC keys: the public key (SubjectPublicKeyInfo PEM); the server checks that the
    /// imported private key signs for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Re-import: the full name of a DESTROYED version of this key that was imported; the
    /// material must be the one it held (checked), and the version is ENABLED again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_key_version: Option<String>,
}

/// Body of `PATCH /v1/{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateVersionRequest {
    /// `ENABLED` or `DISABLED`.
    pub state: VersionState,
}

/// `GET /v1/locations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListLocationsResponse {
    /// The locations this node serves.
    pub locations: Vec<Location>,
}

/// `GET /v1/locations/{loc}/keyRings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListKeyRingsResponse {
    /// One page of key rings.
    pub key_rings: Vec<KeyRing>,
    /// Pass as `pageToken` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GET /v1/{keyRing}/cryptoKeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCryptoKeysResponse {
    /// One page of keys.
    pub crypto_keys: Vec<CryptoKey>,
    /// Pass as `pageToken` to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A deleted key: kept, out of reach, until it is recovered or purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedCryptoKey {
    /// The key as it was.
    pub crypto_key: CryptoKey,
    /// When it was deleted.
    pub delete_time: String,
    /// When it is purged (its versions erased); it cannot be purged sooner.
    pub purge_time: String,
}

/// `GET /v1/{keyRing}/deletedKeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListDeletedCryptoKeysResponse {
    /// One page of deleted keys.
    pub deleted_keys: Vec<DeletedCryptoKey>,
    /// Pass as `pageToken` to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GET /v1/{cryptoKey}/cryptoKeyVersions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListVersionsResponse {
    /// One page of versions.
    pub crypto_key_versions: Vec<CryptoKeyVersion>,
    /// Pass as `pageToken` to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_wire_names_follow_cloud_kms() {
        assert_eq!(Algorithm::Aes256Gcm.as_str(), "AES_256_GCM");
        assert_eq!(
            Algorithm::RsaSignPkcs12048Sha256.as_str(),
            "RSA_SIGN_PKCS1_2048_SHA256"
        );
        assert_eq!(
            Algorithm::RsaDecryptOaep3072Sha256.as_str(),
            "RSA_DECRYPT_OAEP_3072_SHA256"
        );
        assert_eq!(Algorithm::EcSignP256Sha256.as_str(), "EC_SIGN_P256_SHA256");
        for a in Algorithm::ALL {
            let back: Algorithm =
                serde_json::from_value(serde_json::Value::String(a.as_str())).unwrap();
            assert_eq!(back, *a);
        }
    }
}

/// The body of an operation that takes no arguments: `{}` (or no body at all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
