//! Policy-management certificates, MAA "isolated mode": the certificates whose keys must sign
//! attestation policies, listed, added and removed by JWSs that one of them signed. Kept in the
//! collateral store as `policy-signer` records.

use super::super::auth::Principal;
use super::super::authz::Permission;
use super::Attestation;
use super::collateral::{CollateralKind, CollateralRec};
use crate::error::{Error, Result};
use crate::model;
use crate::records::Records;
use serde_json::{Value, json};
use sovra_crypto::jws::Jws;
use sovra_proto::ErrorCode;

/// SHA-1 of a DER certificate, uppercase hex (MAA's `x-ms-certificate-thumbprint`).
pub fn thumbprint(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn bad(m: impl Into<String>) -> Error {
    Error::new(ErrorCode::PolicySignatureInvalid, m)
}

impl Attestation {
    /// The policy-management certificates as JWKs (`alg`, `kty`, `use`, `x5c`).
    pub async fn policy_signer_jwks(&self, p: &Principal) -> Result<Vec<Value>> {
        self.base
            .auth
            .authorize(p, Permission::PolicyRead, "attestation")
            .await?;
        let loaded = self.loaded_collateral().await?;
        Ok(loaded
            .policy_signers
            .iter()
            .map(|der| {
                let kty = sovra_attest::x509::parse_cert(der)
                    .map(|c| {
                        if c.public_key().algorithm.algorithm.to_id_string() == "1.2.840.10045.2.1"
                        {
                            "EC"
                        } else {
                            "RSA"
                        }
                    })
                    .unwrap_or("RSA");
                json!({"alg": if kty == "EC" { "ES256" } else { "RS256" }, "kty": kty, "use": "sig",
                       "x5c": [sovra_proto::b64::encode(der)]})
            })
            .collect())
    }

    /// Adds (`add`) or removes the certificate in `jws` (`{"policyCertificate": {"x5c": […]}}`),
    /// which must be signed by a current policy-management certificate. Returns the
    /// certificate's thumbprint and whether it is now present.
    pub async fn change_policy_signer(
        &self,
        p: &Principal,
        jws: &str,
        add: bool,
    ) -> Result<(String, bool)> {
        self.base
            .auth
            .authorize(p, Permission::TrustManage, "*")
            .await?;
        let j = Jws::parse(jws.trim())
            .map_err(|e| Error::invalid(format!("the request is not a JWS: {e}")))?;
        if self.loaded_collateral().await?.policy_signers.is_empty() {
            return Err(bad(
                "no policy-management certificate is configured: import the first one with `sovra attestation collateral import --kind policy-signer`",
            ));
        }
        if j.is_unsigned() {
            return Err(bad(
                "certificate changes must be signed by a current policy-management certificate",
            ));
        }
        self.check_policy_signature(&j).await?;
        let claims = j.claims().map_err(|e| Error::invalid(e.to_string()))?;
        let der = claims
            .get("policyCertificate")
            .and_then(|c| c.get("x5c"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .and_then(|s| sovra_proto::b64::decode(s).ok())
            .ok_or_else(|| {
                Error::invalid(
                    "the JWS body must be {\"policyCertificate\": {\"kty\": …, \"x5c\": [base64 DER]}}",
                )
            })?;
        sovra_attest::x509::parse_cert(&der)
            .map_err(|e| Error::invalid(format!("policyCertificate: {e}")))?;
        let thumb = thumbprint(&der);
        let signers: Vec<CollateralRec> = Records::of(&*self.base.store)
            .scan(model::COLLATERAL, None, 10_000)
            .await?
            .into_iter()
            .map(|r| r.value)
            .filter(|r| r.kind == CollateralKind::PolicySigner)
            .collect();
        let holding: Vec<&CollateralRec> = signers
            .iter()
            .filter(|r| {
                sovra_proto::b64::decode(&r.content)
                    .ok()
                    .and_then(|c| sovra_attest::x509::certs_from_pem_or_der(&c).ok())
                    .is_some_and(|certs| certs.contains(&der))
            })
            .collect();
        if add {
            if holding.is_empty() {
                self.import_collateral(
                    p,
                    super::collateral::NewCollateral {
                        kind: CollateralKind::PolicySigner,
                        platform: None,
                        content: der.clone(),
                    },
                )
                .await?;
            }
            return Ok((thumb, true));
        }
        if holding.len() == signers.len() && !holding.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "the last policy-management certificate cannot be removed",
            ));
        }
        for r in holding {
            self.delete_collateral(p, &r.id).await?;
        }
        Ok((thumb, false))
    }
}

impl Attestation {
    /// The policy in `body`: plain policy text, or an MAA policy JWS
    /// (`{"AttestationPolicy": b64url(text)}`), unsigned or signed by a configured policy
    /// signer. Returns the text and the signer's subject.
    pub(super) async fn policy_text(&self, body: &str) -> Result<(String, Option<String>)> {
        let trimmed = body.trim();
        let looks_jws = trimmed.split('.').count() == 3 && !trimmed.contains(char::is_whitespace);
        if !looks_jws {
            return Ok((body.to_string(), None));
        }
        let j = Jws::parse(trimmed)
            .map_err(|e| Error::invalid(format!("the policy JWS is malformed: {e}")))?;
        let signer = self.check_policy_signature(&j).await?;
        let claims = j.claims().map_err(|e| Error::invalid(e.to_string()))?;
        let inner = claims
            .get("AttestationPolicy")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                Error::invalid(
                    "the policy JWS body must be {\"AttestationPolicy\": base64url(policy text)}",
                )
            })?;
        let text = sovra_crypto::jws::b64url_decode(inner)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Error::invalid("AttestationPolicy is not base64url of UTF-8 text"))?;
        Ok((text, signer))
    }

    /// A management statement (an MAA policy token): `claims` with the default provider's
    /// issuer and an hour's validity, signed by a management key.
    pub async fn management_token(
        &self,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String> {
        let keys = self.management_signing_keys().await?;
        let now = self.base.now();
        let mut body = serde_json::Map::new();
        body.insert(
            "iss".into(),
            self.issuer_of(super::providers::DEFAULT_PROVIDER).into(),
        );
        body.insert("iat".into(), now.into());
        body.insert("nbf".into(), now.into());
        body.insert("exp".into(), (now + 3600).into());
        body.extend(claims);
        keys.active
            .sign_jwt(&serde_json::Value::Object(body), &serde_json::Map::new())
            .map_err(|e| Error::internal(e.to_string()))
    }
}
