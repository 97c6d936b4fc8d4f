//! MAA's TPM protocol (the Azure SDKs' `attest_tpm`), the service's half. The init message
//! (`{"type": "aikcert"}`) gets a random challenge and an opaque service context: the name of a
//! stored record holding the challenge, good for five minutes and for one request, whatever its
//! outcome. The request message must name a context it was given and carry that context's
//! challenge, which its quote must then carry as qualifying data
//! (`sovra_attest::tpm::vbs` verifies the rest).
//!
//! Issuing a context writes a record for an anonymous caller; the per-address budget of
//! unauthenticated requests (`http::limit`) bounds how many one source can make, and expired
//! ones are removed with the TPM activation challenges.

use super::Attestation;
use crate::error::{Error, Result};
use crate::model;
use crate::records::{Records, Writes};
use serde::{Deserialize, Serialize};
use sovra_proto::ErrorCode;
use sovra_store::{Expect, WriteBatch};

const TTL: i64 = 300;
/// Bytes of a challenge (the quote's qualifying data).
pub const CHALLENGE_LEN: usize = 32;
/// Bytes of a service context.
const CONTEXT_LEN: usize = 16;

/// An issued challenge, named by its service context (hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TpmContextRec {
    id: String,
    /// The challenge, base64.
    challenge: String,
    expire: i64,
}

impl crate::model::Record for TpmContextRec {
    fn name(&self) -> String {
        self.id.clone()
    }
    fn due(&self) -> Option<i64> {
        Some(self.expire)
    }
}

/// The challenge message: the challenge and the service context to send back with it.
#[derive(Debug, Clone)]
pub struct TpmContext {
    /// Random bytes the quote must carry as its qualifying data.
    pub challenge: Vec<u8>,
    /// Opaque; names the challenge.
    pub service_context: Vec<u8>,
}

fn refused(m: &str) -> Error {
    Error::new(ErrorCode::AttestNonceMismatch, m.to_string())
}

impl Attestation {
    /// Answers an init message: a fresh challenge and its service context.
    pub async fn tpm_protocol_init(&self) -> Result<TpmContext> {
        let rnd = |n| sovra_crypto::random::bytes(n).map_err(|e| Error::internal(e.to_string()));
        let (challenge, context) = (rnd(CHALLENGE_LEN)?, rnd(CONTEXT_LEN)?);
        let rec = TpmContextRec {
            id: sovra_proto::hex::encode(&context),
            challenge: sovra_proto::b64::encode(&challenge),
            expire: self.base.now() + TTL,
        };
        let mut b = WriteBatch::new();
        b.create(model::TPM_CONTEXTS, &rec)?;
        self.base.store.commit(b).await?;
        Ok(TpmContext {
            challenge,
            service_context: context,
        })
    }

    /// Takes (and removes) the challenge a request's service context names; the request must
    /// claim that same challenge. Returns it, to be the quote's expected qualifying data.
    pub(crate) async fn take_tpm_context(&self, context: &[u8], claimed: &[u8]) -> Result<Vec<u8>> {
        if context.len() != CONTEXT_LEN {
            return Err(refused(
                "service_context was not issued by this service: send {\"type\": \"aikcert\"} first and use what it returns",
            ));
        }
        let id = sovra_proto::hex::encode(context);
        let rec = Records::of(&*self.base.store)
            .get(model::TPM_CONTEXTS, &id)
            .await?
            .ok_or_else(|| {
                refused("unknown or used service_context: each is good for one request; ask for a new one")
            })?;
        let mut b = WriteBatch::new();
        b.remove(model::TPM_CONTEXTS, id, Expect::Rev(rec.rev));
        self.base
            .store
            .commit(b)
            .await
            .map_err(|_| refused("the service_context was used concurrently"))?;
        if rec.value.expire < self.base.now() {
            return Err(refused(
                "the service_context has expired: ask for a new one",
            ));
        }
        let challenge = sovra_proto::b64::decode(&rec.value.challenge)
            .map_err(|_| Error::internal("stored TPM challenge"))?;
        if !sovra_crypto::ct_eq(&challenge, claimed) {
            return Err(refused(
                "att_data.challenge is not the challenge issued with this service_context",
            ));
        }
        Ok(challenge)
    }
}
