//! Typed calls of the access, settings and audit API.

use crate::{Client, ClientError};
use sovra_proto::admin::*;

impl Client {
    /// Who the token belongs to, and its roles.
    pub async fn whoami(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/v1/whoami").await
    }

    /// Creates an API token.
    pub async fn create_token(
        &self,
        req: &CreateTokenRequest,
    ) -> Result<CreateTokenResponse, ClientError> {
        self.post("/v1/tokens", req).await
    }

    /// Lists the API tokens.
    pub async fn list_tokens(&self) -> Result<ListTokensResponse, ClientError> {
        self.get("/v1/tokens").await
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, ClientError> {
        self.delete(&format!("/v1/tokens/{id}")).await
    }

    /// Binds a role to a principal at a scope.
    pub async fn create_role_binding(
        &self,
        req: &CreateRoleBindingRequest,
    ) -> Result<RoleBinding, ClientError> {
        self.post("/v1/roleBindings", req).await
    }

    /// Lists role bindings (of one principal, if given).
    pub async fn list_role_bindings(
        &self,
        principal: Option<&str>,
    ) -> Result<ListRoleBindingsResponse, ClientError> {
        match principal {
            Some(p) => self.get(&format!("/v1/roleBindings?principal={p}")).await,
            None => self.get("/v1/roleBindings").await,
        }
    }

    /// Removes a role binding.
    pub async fn delete_role_binding(
        &self,
        principal: &str,
        id: &str,
    ) -> Result<serde_json::Value, ClientError> {
        self.delete(&format!("/v1/roleBindings/{principal}/{id}"))
            .await
    }

    /// A principal's quota.
    pub async fn get_quota(&self, principal: &str) -> Result<Quota, ClientError> {
        self.get(&format!("/v1/quotas/{principal}")).await
    }

    /// Sets a principal's quota.
    pub async fn set_quota(
        &self,
        principal: &str,
        req: &SetQuotaRequest,
    ) -> Result<Quota, ClientError> {
        self.put(&format!("/v1/quotas/{principal}"), req).await
    }

    /// The organisation settings.
    pub async fn get_settings(&self) -> Result<Settings, ClientError> {
        self.get("/v1/settings").await
    }

    /// Changes organisation settings.
    pub async fn update_settings(
        &self,
        req: &UpdateSettingsRequest,
    ) -> Result<Settings, ClientError> {
        self.patch("/v1/settings", req).await
    }

    /// Audit records from `from_seq`, at most `limit`, as JSON lines.
    pub async fn export_audit(&self, from_seq: u64, limit: u32) -> Result<String, ClientError> {
        self.get_text(&format!("/v1/audit?fromSeq={from_seq}&limit={limit}"))
            .await
    }

    /// Checks the audit chain and its anchor.
    pub async fn verify_audit(&self) -> Result<AuditVerifyReport, ClientError> {
        self.get("/v1/audit:verify").await
    }

    /// The signed checkpoint of the audit log's head.
    pub async fn audit_checkpoint(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/v1/audit:checkpoint").await
    }

    /// Liveness.
    pub async fn healthz(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/healthz").await
    }

    /// Readiness, with warnings.
    pub async fn readyz(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/readyz").await
    }

    /// Prometheus metrics (needs `audit.read`).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.get_text("/metrics").await
    }

    /// The security domain, encrypted so that `req.quorum` of `req.certificates` open it.
    pub async fn download_security_domain(
        &self,
        req: &sovra_proto::security_domain::DownloadSecurityDomainRequest,
    ) -> Result<sovra_proto::security_domain::SecurityDomain, ClientError> {
        self.post("/v1/securityDomain:download", req).await
    }

    /// A sealed node's unseal status, with the encrypted shares (no token needed).
    pub async fn unseal_status(
        &self,
    ) -> Result<sovra_proto::security_domain::UnsealStatus, ClientError> {
        self.get("/v1/unseal").await
    }

    /// Hands one decrypted share to a sealed node (no token needed).
    pub async fn submit_unseal_share(
        &self,
        req: &sovra_proto::security_domain::SubmitUnsealShareRequest,
    ) -> Result<sovra_proto::security_domain::UnsealStatus, ClientError> {
        self.post("/v1/unseal", req).await
    }

    /// The OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/openapi.json").await
    }
}
