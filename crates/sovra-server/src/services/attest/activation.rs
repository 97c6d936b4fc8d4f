//! TPM-only machines: the AK is trusted through the TPM's endorsement key. The machine sends its
//! EK (public area and certificate) and AK; Sovra checks the EK certificate against the TPM CAs
//! the operator configured, and answers with a credential (MakeCredential) that only that TPM,
//! with that AK loaded, can open. Attestation evidence that carries the opened secret is then
//! verified with that AK. Challenges are single-use and expire after five minutes.

use super::Attestation;
use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sovra_attest::VerifyContext;
use sovra_proto::ErrorCode;
use sovra_store::{Expect, WriteBatch};

const TTL: i64 = 300;

/// A TPM credential-activation challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRec {
    /// The challenge ID (empty in records written before it was kept here).
    #[serde(default)]
    id: String,
    secret_sha256: String,
    ak_public: String,
    ek_cert_sha256: String,
    expire: i64,
    /// Where the EK certificate's chain ended (`TrustRoot` kind and id).
    #[serde(default)]
    ek_root_kind: String,
    #[serde(default)]
    ek_root: String,
}

impl crate::model::Record for ChallengeRec {
    fn name(&self) -> String {
        self.id.clone()
    }
    fn due(&self) -> Option<i64> {
        Some(self.expire)
    }
}

/// What a TPM-only machine presents to be challenged: its EK and AK.
#[derive(Debug, Clone)]
pub struct TpmIdentity {
    /// EK public area (TPMT_PUBLIC, or TPM2B_PUBLIC).
    pub ek_public: Vec<u8>,
    /// EK certificate (DER or PEM).
    pub ek_certificate: Vec<u8>,
    /// Intermediates of the EK certificate (each DER or PEM).
    pub ek_cert_chain: Vec<Vec<u8>>,
    /// AK public area (TPMT_PUBLIC or TPM2B_PUBLIC).
    pub ak_public: Vec<u8>,
}

/// A credential-activation challenge: only the TPM holding the EK, with the AK loaded, opens
/// `credential` (in the `tpm2_makecredential` file format).
#[derive(Debug, Clone)]
pub struct TpmChallenge {
    /// The challenge ID to quote back with the opened secret.
    pub id: String,
    /// The credential blob.
    pub credential: Vec<u8>,
    /// When it expires (Unix seconds).
    pub expire: i64,
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>> {
    sovra_proto::b64::decode(s)
        .map_err(|_| Error::new(ErrorCode::InvalidBase64, format!("{field} is not base64")))
}

/// TPM2B_PUBLIC → TPMT_PUBLIC (a TPMT_PUBLIC is returned as is).
fn tpmt(b: Vec<u8>) -> Vec<u8> {
    match b.get(..2) {
        Some(&[hi, lo]) if usize::from(u16::from_be_bytes([hi, lo])) == b.len() - 2 => {
            b.get(2..).unwrap_or_default().to_vec()
        }
        _ => b,
    }
}

fn sha(b: &[u8]) -> String {
    sovra_attest::x509::sha256_hex(b)
}

impl Attestation {
    /// Issues a credential-activation challenge for a TPM whose EK certificate is trusted.
    pub async fn tpm_challenge(&self, tpm: TpmIdentity) -> Result<TpmChallenge> {
        let ek_public = tpmt(tpm.ek_public);
        let ak_public = tpmt(tpm.ak_public);
        let ek_cert = sovra_attest::x509::certs_from_pem_or_der(&tpm.ek_certificate)
            .ok()
            .and_then(|c| c.into_iter().next())
            .ok_or_else(|| Error::invalid("ekCertificate holds no certificate"))?;
        let mut pool = Vec::new();
        for c in &tpm.ek_cert_chain {
            pool.extend(
                sovra_attest::x509::certs_from_pem_or_der(c)
                    .map_err(|e| super::attest_error(&e))?,
            );
        }
        let loaded = self.loaded_collateral().await?;
        let now = self.base.now();
        let ek_cert_sha256 = sha(&ek_cert);
        let ak_public_b64 = sovra_proto::b64::encode(&ak_public);
        let (secret, made, root) = self
            .work
            .run(move || -> Result<_> {
                let ctx = VerifyContext {
                    now,
                    trust: &loaded.trust,
                };
                let (ek, root) = sovra_attest::tpm::verify_ek(&ek_public, &ek_cert, &pool, &ctx)
                    .map_err(|e| super::attest_error(&e))?;
                // The name MakeCredential binds is the name of exactly these bytes, whose
                // attributes are checked here.
                let ak = sovra_attest::tpm::structs::parse_public(&ak_public)
                    .map_err(|e| super::attest_error(&e))?;
                ak.check_attestation_key()
                    .map_err(|e| super::attest_error(&e))?;
                let ak_name = ak.name().map_err(|e| super::attest_error(&e))?;
                let secret =
                    sovra_crypto::random::bytes(32).map_err(|e| Error::internal(e.to_string()))?;
                let made = sovra_attest::tpm::credential::make_credential(&ek, &ak_name, &secret)
                    .map_err(|e| super::attest_error(&e))?;
                Ok((secret, made, root))
            })
            .await??;
        let id = sovra_crypto::random::hex_id(16).map_err(|e| Error::internal(e.to_string()))?;
        let expire = self.base.now() + TTL;
        let rec = ChallengeRec {
            id: id.clone(),
            secret_sha256: sha(&secret),
            ak_public: ak_public_b64,
            ek_cert_sha256,
            expire,
            ek_root_kind: root.kind().to_string(),
            ek_root: root.id(),
        };
        let mut b = WriteBatch::new();
        b.create(model::TPM_CHALLENGES, &rec)?;
        self.base.store.commit(b).await?;
        Ok(TpmChallenge {
            id,
            credential: made.tpm2_tools_file(),
            expire,
        })
    }

    /// Verifies TPM evidence whose envelope carries `activation: {challengeId, secret}`.
    pub(crate) async fn verify_activated_tpm(
        &self,
        evidence: &[u8],
        activation: &Value,
        sub: &std::sync::Arc<super::request::Submission>,
    ) -> Result<sovra_attest::VerifiedClaims> {
        let id = activation
            .get("challengeId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("activation.challengeId is missing"))?;
        let secret = b64(
            "activation.secret",
            activation
                .get("secret")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )?;
        let bad = |m: &str| Error::new(ErrorCode::AttestBindingInvalid, m.to_string());
        let rec = Records::of(&*self.base.store)
            .get(model::TPM_CHALLENGES, id)
            .await?
            .ok_or_else(|| bad("unknown or used challenge: request a new one"))?;
        let c: ChallengeRec = rec.value.clone();
        // Single use, whatever the outcome.
        let mut b = WriteBatch::new();
        b.remove(model::TPM_CHALLENGES, id.to_string(), Expect::Rev(rec.rev));
        self.base
            .store
            .commit(b)
            .await
            .map_err(|_| bad("the challenge was used concurrently"))?;
        if c.expire < self.base.now() {
            return Err(bad("the challenge has expired: request a new one"));
        }
        if !sovra_crypto::ct_eq(sha(&secret).as_bytes(), c.secret_sha256.as_bytes()) {
            return Err(bad(
                "the activated secret is wrong: this TPM does not hold the certified EK, or the AK differs",
            ));
        }
        let ak_public =
            sovra_proto::b64::decode(&c.ak_public).map_err(|_| Error::internal("stored AK"))?;
        let root = sovra_attest::x509::TrustRoot::from_parts(&c.ek_root_kind, &c.ek_root)
            .ok_or_else(|| bad("the challenge predates this server version: request a new one"))?;
        let (evidence, sub) = (evidence.to_vec(), sub.clone());
        self.work
            .run(move || {
                sovra_attest::tpm::verify_with_trusted_ak(
                    &evidence,
                    &ak_public,
                    sub.event_log.as_deref(),
                    sub.expected_nonce.as_deref(),
                    root,
                )
            })
            .await?
            .map_err(|e| super::attest_error(&e))
    }
}

impl Attestation {
    /// Deletes expired TPM challenges (activation, and MAA's TPM protocol); returns how many.
    pub async fn expire_challenges(&self) -> Result<usize> {
        let mut n = 0;
        for c in [
            model::TPM_CHALLENGES.collection(),
            model::TPM_CONTEXTS.collection(),
        ] {
            n += crate::services::release::expire(&*self.base.store, c, self.base.now()).await?;
        }
        Ok(n)
    }
}
