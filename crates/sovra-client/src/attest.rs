//! Typed calls of the attestation, release and MAA-compatible API.

use crate::{Client, ClientError};
use serde_json::Value;
use sovra_proto::EvidenceType;
use sovra_proto::attest::*;

/// The path evidence of `kind` is attested at, with a provider's policy (`None`: the default
/// provider's).
pub fn attest_path(provider: Option<&str>, kind: EvidenceType) -> String {
    match provider {
        Some(p) => format!("/v1/attestation/providers/{p}/attest/{kind}"),
        None => format!("/v1/attest/{kind}"),
    }
}

impl Client {
    /// Attests evidence with a provider's policy (`None`: the default provider).
    pub async fn attest(
        &self,
        provider: Option<&str>,
        kind: EvidenceType,
        req: &AttestRequest,
    ) -> Result<AttestResponse, ClientError> {
        self.post(&attest_path(provider, kind), req).await
    }

    /// A TPM credential-activation challenge for an AK (body: EK certificate and AK).
    pub async fn tpm_challenge(&self, req: &Value) -> Result<Value, ClientError> {
        self.post("/v1/attest/tpm/challenge", req).await
    }

    /// Lists attestation providers.
    pub async fn list_providers(&self) -> Result<Value, ClientError> {
        self.get("/v1/attestation/providers").await
    }

    /// Creates an attestation provider.
    pub async fn create_provider(&self, name: &str) -> Result<Provider, ClientError> {
        self.post(
            &format!("/v1/attestation/providers/{name}"),
            &serde_json::json!({}),
        )
        .await
    }

    fn policy_path(provider: &str, kind: EvidenceType) -> String {
        format!("/v1/attestation/providers/{provider}/policies/{kind}")
    }

    /// The policy in force for `kind`.
    pub async fn get_policy(
        &self,
        provider: &str,
        kind: EvidenceType,
    ) -> Result<PolicyInfo, ClientError> {
        self.get(&Self::policy_path(provider, kind)).await
    }

    /// Sets the policy for `kind`.
    pub async fn set_policy(
        &self,
        provider: &str,
        kind: EvidenceType,
        req: &SetPolicyRequest,
    ) -> Result<PolicyInfo, ClientError> {
        self.put(&Self::policy_path(provider, kind), req).await
    }

    /// Puts the default policy back for `kind`.
    pub async fn reset_policy(
        &self,
        provider: &str,
        kind: EvidenceType,
    ) -> Result<PolicyInfo, ClientError> {
        self.delete(&Self::policy_path(provider, kind)).await
    }

    /// Lists reference-value sets.
    pub async fn list_reference_values(&self) -> Result<Value, ClientError> {
        self.get("/v1/attestation/referenceValues").await
    }

    /// Creates or replaces a reference-value set.
    pub async fn put_reference_values(
        &self,
        name: &str,
        body: &Value,
    ) -> Result<ReferenceValues, ClientError> {
        self.put(&format!("/v1/attestation/referenceValues/{name}"), body)
            .await
    }

    /// Deletes a reference-value set.
    pub async fn delete_reference_values(&self, name: &str) -> Result<Value, ClientError> {
        self.delete(&format!("/v1/attestation/referenceValues/{name}"))
            .await
    }

    /// Lists collateral (certificates, Intel bundles, trust anchors, policy signers).
    pub async fn list_collateral(&self) -> Result<Value, ClientError> {
        self.get("/v1/attestation/collateral").await
    }

    /// Imports collateral.
    pub async fn import_collateral(
        &self,
        req: &ImportCollateralRequest,
    ) -> Result<CollateralInfo, ClientError> {
        self.post("/v1/attestation/collateral", req).await
    }

    /// Deletes collateral.
    pub async fn delete_collateral(&self, id: &str) -> Result<Value, ClientError> {
        self.delete(&format!("/v1/attestation/collateral/{id}"))
            .await
    }

    /// Rotates the token signing key (`{"algorithm": …}` or `{}`).
    pub async fn rotate_signing_key(&self, body: &Value) -> Result<Value, ClientError> {
        self.post("/v1/attestation/signingKeys:rotate", body).await
    }

    /// A single-use release nonce.
    pub async fn release_nonce(&self) -> Result<Value, ClientError> {
        self.post("/v1/release/nonces", &serde_json::json!({}))
            .await
    }

    /// The trust configuration.
    pub async fn trust(&self) -> Result<Value, ClientError> {
        self.get("/v1/trust").await
    }

    /// External issuers trusted for release.
    pub async fn list_issuers(&self) -> Result<Value, ClientError> {
        self.get("/v1/release/issuers").await
    }

    /// Trusts an external issuer.
    pub async fn put_issuer(&self, body: &Value) -> Result<Value, ClientError> {
        self.post("/v1/release/issuers", body).await
    }

    /// The token signing keys (and the MAA policy-token keys) as a JWKS.
    pub async fn certs(&self) -> Result<Value, ClientError> {
        self.get("/certs").await
    }

    /// The keys that sign key-release responses, as a JWKS.
    pub async fn release_certs(&self) -> Result<Value, ClientError> {
        self.get("/release/certs").await
    }

    /// OpenID metadata of a provider (`None`: the default provider).
    pub async fn openid_configuration(&self, provider: Option<&str>) -> Result<Value, ClientError> {
        match provider {
            Some(p) => {
                self.get(&format!("/providers/{p}/.well-known/openid-configuration"))
                    .await
            }
            None => self.get("/.well-known/openid-configuration").await,
        }
    }

    /// MAA-compatible attestation (`maa_type`: `SevSnpVm`, `SgxEnclave`, `OpenEnclave`,
    /// `TdxVm`, `Tpm`) with a provider's policy (`None`: the default provider).
    pub async fn maa_attest(
        &self,
        provider: Option<&str>,
        maa_type: &str,
        req: &Value,
    ) -> Result<Value, ClientError> {
        match provider {
            Some(p) => {
                self.post(&format!("/providers/{p}/attest/{maa_type}"), req)
                    .await
            }
            None => self.post(&format!("/attest/{maa_type}"), req).await,
        }
    }

    /// MAA: the policy of `maa_type` (a token).
    pub async fn maa_get_policy(&self, maa_type: &str) -> Result<Value, ClientError> {
        self.get(&format!("/policies/{maa_type}")).await
    }

    /// MAA: sets the policy of `maa_type` from a policy JWS.
    pub async fn maa_set_policy(&self, maa_type: &str, jws: &str) -> Result<Value, ClientError> {
        let (status, _, body) = self
            .send_with(
                hyper::Method::PUT,
                &format!("/policies/{maa_type}"),
                &[("content-type", "text/plain")],
                Some(jws.as_bytes().to_vec()),
            )
            .await?;
        if !status.is_success() {
            return Err(crate::api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// MAA: puts the default policy of `maa_type` back.
    pub async fn maa_reset_policy(&self, maa_type: &str) -> Result<Value, ClientError> {
        self.post(
            &format!("/policies/{maa_type}:reset"),
            &serde_json::json!({}),
        )
        .await
    }

    /// MAA: the policy-management certificates (a token).
    pub async fn maa_certificates(&self) -> Result<Value, ClientError> {
        self.get("/certificates").await
    }

    /// MAA: adds a policy-management certificate (a JWS signed by a current one).
    pub async fn maa_add_certificate(&self, jws: &str) -> Result<Value, ClientError> {
        self.post("/certificates:add", &jws).await
    }

    /// MAA: removes a policy-management certificate (a JWS signed by a current one).
    pub async fn maa_remove_certificate(&self, jws: &str) -> Result<Value, ClientError> {
        self.post("/certificates:remove", &jws).await
    }
}
