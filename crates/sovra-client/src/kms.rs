//! Typed calls of the key-management API.

use crate::{Client, ClientError};
use sovra_proto::kms::*;
use sovra_proto::ops::*;

fn v1(name: &str) -> String {
    format!("/v1/{}", name.trim_start_matches('/'))
}

impl Client {
    /// Creates a key ring.
    pub async fn create_key_ring(
        &self,
        location: &str,
        id: &str,
        req: &CreateKeyRingRequest,
    ) -> Result<KeyRing, ClientError> {
        self.post(
            &format!("/v1/locations/{location}/keyRings?keyRingId={id}"),
            req,
        )
        .await
    }

    /// Creates a crypto key in `ring` (a key-ring resource name).
    pub async fn create_crypto_key(
        &self,
        ring: &str,
        id: &str,
        req: &CreateCryptoKeyRequest,
    ) -> Result<CryptoKey, ClientError> {
        self.post(&format!("{}/cryptoKeys?cryptoKeyId={id}", v1(ring)), req)
            .await
    }

    /// Gets a crypto key.
    pub async fn get_crypto_key(&self, key: &str) -> Result<CryptoKey, ClientError> {
        self.get(&v1(key)).await
    }

    /// Rotates a key (new primary version).
    pub async fn rotate(&self, key: &str) -> Result<CryptoKey, ClientError> {
        self.post(&format!("{}:rotate", v1(key)), &serde_json::json!({}))
            .await
    }

    /// Encrypts with a key's primary version.
    pub async fn encrypt(
        &self,
        key: &str,
        plaintext: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<EncryptResponse, ClientError> {
        let req = EncryptRequest {
            plaintext: sovra_proto::b64::encode(plaintext),
            additional_authenticated_data: aad.map(sovra_proto::b64::encode),
        };
        self.post(&format!("{}:encrypt", v1(key)), &req).await
    }

    /// Decrypts.
    pub async fn decrypt(
        &self,
        key: &str,
        ciphertext: &str,
        aad: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let req = DecryptRequest {
            ciphertext: ciphertext.to_owned(),
            additional_authenticated_data: aad.map(sovra_proto::b64::encode),
        };
        let r: DecryptResponse = self.post(&format!("{}:decrypt", v1(key)), &req).await?;
        sovra_proto::b64::decode(&r.plaintext).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Changes a version's state (ENABLED/DISABLED).
    pub async fn set_version_state(
        &self,
        version: &str,
        state: VersionState,
    ) -> Result<CryptoKeyVersion, ClientError> {
        self.patch(&v1(version), &UpdateVersionRequest { state })
            .await
    }

    /// Schedules a version's destruction.
    pub async fn destroy_version(&self, version: &str) -> Result<CryptoKeyVersion, ClientError> {
        self.post(&format!("{}:destroy", v1(version)), &serde_json::json!({}))
            .await
    }

    /// Restores a version scheduled for destruction.
    pub async fn restore_version(&self, version: &str) -> Result<CryptoKeyVersion, ClientError> {
        self.post(&format!("{}:restore", v1(version)), &serde_json::json!({}))
            .await
    }

    /// Gets a version.
    pub async fn get_version(&self, version: &str) -> Result<CryptoKeyVersion, ClientError> {
        self.get(&v1(version)).await
    }
}
