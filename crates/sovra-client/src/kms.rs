//! Typed calls of the key-management API.

use crate::{Client, ClientError};
use sovra_proto::kms::*;
use sovra_proto::ops::*;

fn v1(name: &str) -> String {
    format!("/v1/{}", name.trim_start_matches('/'))
}

/// The path of custom method `verb` of resource `name` (`/v1/{name}:{verb}`): for load
/// generators that send pre-built requests on a raw connection.
pub fn verb_path(name: &str, verb: &str) -> String {
    format!("{}:{verb}", v1(name))
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

    /// Deletes a key recoverably: kept for its destroy-scheduled duration, then purged.
    pub async fn delete_crypto_key(&self, key: &str) -> Result<DeletedCryptoKey, ClientError> {
        self.post(&format!("{}:delete", v1(key)), &serde_json::json!({}))
            .await
    }

    /// A key ring's deleted keys (`query` as for [`Client::list_crypto_keys`]).
    pub async fn list_deleted_keys(
        &self,
        ring: &str,
        query: &str,
    ) -> Result<ListDeletedCryptoKeysResponse, ClientError> {
        self.get(&format!("{}/deletedKeys{query}", v1(ring))).await
    }

    /// One deleted key (`ring`/deletedKeys/`id`).
    pub async fn get_deleted_key(
        &self,
        ring: &str,
        id: &str,
    ) -> Result<DeletedCryptoKey, ClientError> {
        self.get(&format!("{}/deletedKeys/{id}", v1(ring))).await
    }

    /// Recovers a deleted key as it was.
    pub async fn recover_deleted_key(
        &self,
        ring: &str,
        id: &str,
    ) -> Result<CryptoKey, ClientError> {
        self.post(
            &format!("{}/deletedKeys/{id}:recover", v1(ring)),
            &serde_json::json!({}),
        )
        .await
    }

    /// Purges a deleted key whose retention has ended.
    pub async fn purge_deleted_key(&self, ring: &str, id: &str) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .post(
                &format!("{}/deletedKeys/{id}:purge", v1(ring)),
                &serde_json::json!({}),
            )
            .await?;
        Ok(())
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

    /// The owner root and this node's HSM attestation certificate.
    pub async fn key_attestation_roots(&self) -> Result<KeyAttestationRoots, ClientError> {
        self.get("/v1/keyAttestation/roots").await
    }

    /// A CSR for the node's HSM attestation key (PEM).
    pub async fn key_attestation_csr(&self) -> Result<KeyAttestationCsr, ClientError> {
        self.post("/v1/keyAttestation:csr", &serde_json::json!({}))
            .await
    }

    /// Replaces the node's HSM attestation key.
    pub async fn rotate_key_attestation(
        &self,
    ) -> Result<RotateKeyAttestationResponse, ClientError> {
        self.post("/v1/keyAttestation:rotate", &serde_json::json!({}))
            .await
    }

    /// Installs an owner root held by the operator's CA.
    pub async fn set_key_attestation_roots(
        &self,
        req: &SetKeyAttestationRootsRequest,
    ) -> Result<KeyAttestationRoots, ClientError> {
        self.put("/v1/keyAttestation/roots", req).await
    }

    /// Creates an import job in `ring`.
    pub async fn create_import_job(
        &self,
        ring: &str,
        id: &str,
        req: &CreateImportJobRequest,
    ) -> Result<ImportJob, ClientError> {
        self.post(&format!("{}/importJobs?importJobId={id}", v1(ring)), req)
            .await
    }

    /// Lists the import jobs of `ring`; `query` is `?pageSize=…&pageToken=…` or empty.
    pub async fn list_import_jobs(
        &self,
        ring: &str,
        query: &str,
    ) -> Result<ListImportJobsResponse, ClientError> {
        self.get(&format!("{}/importJobs{query}", v1(ring))).await
    }

    /// An import job by its full name.
    pub async fn get_import_job(&self, job: &str) -> Result<ImportJob, ClientError> {
        self.get(&v1(job)).await
    }

    /// Imports wrapped key material as a new version of `key`.
    pub async fn import_version(
        &self,
        key: &str,
        req: &ImportVersionRequest,
    ) -> Result<CryptoKeyVersion, ClientError> {
        self.post(&format!("{}/cryptoKeyVersions:import", v1(key)), req)
            .await
    }

    /// Lists the locations.
    pub async fn list_locations(&self) -> Result<ListLocationsResponse, ClientError> {
        self.get("/v1/locations").await
    }

    /// Creates a location (its wrapping key in the HSM).
    pub async fn create_location(&self, id: &str) -> Result<Location, ClientError> {
        self.post("/v1/locations", &serde_json::json!({ "locationId": id }))
            .await
    }

    /// Gets a location (`locations/{id}`).
    pub async fn get_location(&self, location: &str) -> Result<Location, ClientError> {
        self.get(&v1(location)).await
    }

    /// Random bytes from the HSM of `location` (`locations/{id}`).
    pub async fn generate_random_bytes(
        &self,
        location: &str,
        req: &GenerateRandomBytesRequest,
    ) -> Result<GenerateRandomBytesResponse, ClientError> {
        self.post(&format!("{}:generateRandomBytes", v1(location)), req)
            .await
    }

    /// Lists key rings of `location` (`locations/{id}`); `query` is `?pageSize=…&pageToken=…`
    /// or empty.
    pub async fn list_key_rings(
        &self,
        location: &str,
        query: &str,
    ) -> Result<ListKeyRingsResponse, ClientError> {
        self.get(&format!("{}/keyRings{query}", v1(location))).await
    }

    /// Gets a key ring.
    pub async fn get_key_ring(&self, ring: &str) -> Result<KeyRing, ClientError> {
        self.get(&v1(ring)).await
    }

    /// Updates a key ring.
    pub async fn update_key_ring(
        &self,
        ring: &str,
        req: &UpdateKeyRingRequest,
    ) -> Result<KeyRing, ClientError> {
        self.patch(&v1(ring), req).await
    }

    /// Lists the keys of `ring`; `query` is `?pageSize=…&pageToken=…` or empty.
    pub async fn list_crypto_keys(
        &self,
        ring: &str,
        query: &str,
    ) -> Result<ListCryptoKeysResponse, ClientError> {
        self.get(&format!("{}/cryptoKeys{query}", v1(ring))).await
    }

    /// Updates a key (labels, rotation, release policy).
    pub async fn update_crypto_key(
        &self,
        key: &str,
        req: &UpdateCryptoKeyRequest,
    ) -> Result<CryptoKey, ClientError> {
        self.patch(&v1(key), req).await
    }

    /// Makes version `req.crypto_key_version_id` the primary.
    pub async fn update_primary_version(
        &self,
        key: &str,
        req: &UpdatePrimaryVersionRequest,
    ) -> Result<CryptoKey, ClientError> {
        self.post(&format!("{}:updatePrimaryVersion", v1(key)), req)
            .await
    }

    /// Decrypts, returning the whole response.
    pub async fn decrypt_request(
        &self,
        key: &str,
        req: &DecryptRequest,
    ) -> Result<DecryptResponse, ClientError> {
        self.post(&format!("{}:decrypt", v1(key)), req).await
    }

    /// Signs with a key's primary version, or with a version.
    pub async fn asymmetric_sign(
        &self,
        key_or_version: &str,
        req: &AsymmetricSignRequest,
    ) -> Result<AsymmetricSignResponse, ClientError> {
        self.post(&format!("{}:asymmetricSign", v1(key_or_version)), req)
            .await
    }

    /// Verifies a signature.
    pub async fn asymmetric_verify(
        &self,
        key_or_version: &str,
        req: &AsymmetricVerifyRequest,
    ) -> Result<VerifyResponse, ClientError> {
        self.post(&format!("{}:asymmetricVerify", v1(key_or_version)), req)
            .await
    }

    /// Decrypts RSA-OAEP ciphertext.
    pub async fn asymmetric_decrypt(
        &self,
        key_or_version: &str,
        req: &AsymmetricDecryptRequest,
    ) -> Result<AsymmetricDecryptResponse, ClientError> {
        self.post(&format!("{}:asymmetricDecrypt", v1(key_or_version)), req)
            .await
    }

    /// Computes a MAC.
    pub async fn mac_sign(
        &self,
        key_or_version: &str,
        req: &MacSignRequest,
    ) -> Result<MacSignResponse, ClientError> {
        self.post(&format!("{}:macSign", v1(key_or_version)), req)
            .await
    }

    /// Checks a MAC.
    pub async fn mac_verify(
        &self,
        key_or_version: &str,
        req: &MacVerifyRequest,
    ) -> Result<VerifyResponse, ClientError> {
        self.post(&format!("{}:macVerify", v1(key_or_version)), req)
            .await
    }

    /// Wraps a key with an AES key-wrap key.
    pub async fn wrap_key(
        &self,
        key_or_version: &str,
        req: &WrapKeyRequest,
    ) -> Result<WrapKeyResponse, ClientError> {
        self.post(&format!("{}:wrapKey", v1(key_or_version)), req)
            .await
    }

    /// Unwraps a key wrapped by [`Client::wrap_key`].
    pub async fn unwrap_key(
        &self,
        key_or_version: &str,
        req: &UnwrapKeyRequest,
    ) -> Result<UnwrapKeyResponse, ClientError> {
        self.post(&format!("{}:unwrapKey", v1(key_or_version)), req)
            .await
    }

    /// Decrypts into an attested TEE (the plaintext wrapped to its key).
    pub async fn decrypt_to(
        &self,
        key: &str,
        req: &RecipientRequest,
    ) -> Result<serde_json::Value, ClientError> {
        self.post(&format!("{}:decryptTo", v1(key)), req).await
    }

    /// Generates a data key for an attested TEE (wrapped to its key, and encrypted under `key`).
    pub async fn generate_data_key_to(
        &self,
        key: &str,
        req: &RecipientRequest,
    ) -> Result<serde_json::Value, ClientError> {
        self.post(&format!("{}:generateDataKeyTo", v1(key)), req)
            .await
    }

    /// Releases an exportable key (or one version) to an attested TEE.
    pub async fn release(
        &self,
        key_or_version: &str,
        req: &ReleaseRequest,
    ) -> Result<ReleaseResponse, ClientError> {
        self.post(&format!("{}:release", v1(key_or_version)), req)
            .await
    }

    /// The public key of a key's primary version, or of a version.
    pub async fn public_key(&self, key_or_version: &str) -> Result<PublicKey, ClientError> {
        self.get(&format!("{}/publicKey", v1(key_or_version))).await
    }

    /// Lists the versions of `key`; `query` is `?pageSize=…&pageToken=…` or empty.
    pub async fn list_versions(
        &self,
        key: &str,
        query: &str,
    ) -> Result<ListVersionsResponse, ClientError> {
        self.get(&format!("{}/cryptoKeyVersions{query}", v1(key)))
            .await
    }

    /// Creates a new version (not primary).
    pub async fn create_version(&self, key: &str) -> Result<CryptoKeyVersion, ClientError> {
        self.post(
            &format!("{}/cryptoKeyVersions", v1(key)),
            &serde_json::json!({}),
        )
        .await
    }
}
