//! Cryptographic operations. Binary fields are base64 strings (see [`crate::b64`]); the server
//! decodes them and names the field when one is not valid base64.

use serde::{Deserialize, Serialize};

/// `POST /v1/{cryptoKey or version}:encrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptRequest {
    /// Data to encrypt, base64 (at most 64 KiB decoded).
    pub plaintext: String,
    /// Additional authenticated data, base64 (at most 64 KiB decoded); needed again to decrypt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
}

/// Result of an encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// The version that encrypted.
    pub name: String,
    /// Ciphertext, base64. It names its version, so it decrypts after rotation.
    pub ciphertext: String,
}

/// `POST /v1/{cryptoKey}:decrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecryptRequest {
    /// Ciphertext from `encrypt`, base64.
    pub ciphertext: String,
    /// The same AAD given to `encrypt`, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
}

/// Result of a decryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptResponse {
    /// The plaintext, base64.
    pub plaintext: String,
    /// The version that decrypted.
    pub name: String,
    /// Whether that version is the key's current primary.
    pub used_primary: bool,
}

/// A digest computed by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Digest {
    /// SHA-256 digest, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// SHA-384 digest, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha384: Option<String>,
    /// SHA-512 digest, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
}

/// `POST /v1/{version or cryptoKey}:asymmetricSign`. Give exactly one of `data` or `digest`
/// (Ed25519 takes `data` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsymmetricSignRequest {
    /// The message, base64; the server hashes it with the algorithm's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// A pre-computed digest matching the algorithm's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// A signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsymmetricSignResponse {
    /// The signature, base64 (ECDSA: DER; RSA and Ed25519: raw).
    pub signature: String,
    /// The version that signed.
    pub name: String,
}

/// `POST /v1/{version or cryptoKey}:asymmetricVerify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsymmetricVerifyRequest {
    /// The message, base64 (or give `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// A pre-computed digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The signature to check, base64.
    pub signature: String,
}

/// Result of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the signature or MAC is valid.
    pub valid: bool,
    /// The version that checked.
    pub name: String,
}

/// `POST /v1/{version or cryptoKey}:asymmetricDecrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsymmetricDecryptRequest {
    /// RSA-OAEP-SHA256 ciphertext made with the version's public key, base64.
    pub ciphertext: String,
}

/// Result of an asymmetric decryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsymmetricDecryptResponse {
    /// The plaintext, base64.
    pub plaintext: String,
    /// The version that decrypted.
    pub name: String,
}

/// `POST /v1/{version or cryptoKey}:macSign`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MacSignRequest {
    /// The message, base64.
    pub data: String,
}

/// A MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MacSignResponse {
    /// The MAC, base64.
    pub mac: String,
    /// The version that computed it.
    pub name: String,
}

/// `POST /v1/{version or cryptoKey}:macVerify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MacVerifyRequest {
    /// The message, base64.
    pub data: String,
    /// The MAC to check, base64.
    pub mac: String,
}

/// The AES key wrap a `:wrapKey` / `:unwrapKey` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyWrapMode {
    /// RFC 5649 (`CKM_AES_KEY_WRAP_PAD`): any length from 1 byte.
    #[default]
    AesKeyWrapPad,
    /// RFC 3394 (`CKM_AES_KEY_WRAP`, JOSE `A256KW`): a multiple of 8 bytes, at least 16.
    AesKeyWrap,
}

/// `POST /v1/{version or cryptoKey}:wrapKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrapKeyRequest {
    /// The key material to wrap, base64.
    pub key: String,
    /// RFC 5649 (default) or RFC 3394.
    #[serde(default)]
    pub mode: KeyWrapMode,
}

/// A wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrapKeyResponse {
    /// The wrapped key, base64.
    pub wrapped_key: String,
    /// The version that wrapped it (unwrap with the same version).
    pub name: String,
}

/// `POST /v1/{version or cryptoKey}:unwrapKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnwrapKeyRequest {
    /// The wrapped key, base64.
    pub wrapped_key: String,
    /// The mode it was wrapped with.
    #[serde(default)]
    pub mode: KeyWrapMode,
}

/// An unwrapped key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnwrapKeyResponse {
    /// The key material, base64.
    pub key: String,
    /// The version that unwrapped it.
    pub name: String,
}

/// `GET /v1/{version or cryptoKey}/publicKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// SubjectPublicKeyInfo, PEM.
    pub pem: String,
    /// The version's algorithm.
    pub algorithm: crate::kms::Algorithm,
    /// The version.
    pub name: String,
}

/// `POST /v1/{location}:generateRandomBytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateRandomBytesRequest {
    /// How many bytes, 1 to 1024.
    pub length_bytes: u32,
}

/// Random bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRandomBytesResponse {
    /// The bytes, base64.
    pub data: String,
}
