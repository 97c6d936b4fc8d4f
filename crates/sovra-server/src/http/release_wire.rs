//! The native wire form of secure key release: the request's token, nonce and `enc` name
//! checked and the base64 fields decoded (named in the error), the `Release` service called with
//! domain values, its signed statement returned as `{"value": JWS}`.

use crate::error::{Error, Result};
use crate::services::auth::Principal;
use crate::services::ops::decode_field;
use crate::services::release::{IssuedNonce, Recipient, Release, SignedRelease, ToTee};
use serde_json::{Value, json};
use sovra_crypto::keywrap::ReleaseEnc;
use sovra_proto::kms::{RecipientRequest, ReleaseRequest, ReleaseResponse};
use sovra_proto::names::CryptoKeyName;

fn enc(e: Option<&str>) -> Result<ReleaseEnc> {
    match e {
        None => Ok(ReleaseEnc::CkmRsaAesKeyWrap),
        Some(e) => ReleaseEnc::parse(e).ok_or_else(|| {
            Error::invalid(
                "enc must be CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384",
            )
        }),
    }
}

fn response(s: SignedRelease) -> ReleaseResponse {
    ReleaseResponse { value: s.jws }
}

/// `:release` on a key (its primary version) or a version.
pub async fn release(
    r: &Release,
    p: &Principal,
    key: &CryptoKeyName,
    version: Option<u32>,
    req: ReleaseRequest,
) -> Result<ReleaseResponse> {
    let to = Recipient {
        enc: enc(req.enc.as_deref())?,
        token: req.target,
        nonce: req.nonce,
    };
    Ok(response(r.release(p, key, version, &to).await?))
}

/// `:decryptTo` (`generate` false) and `:generateDataKeyTo` (`generate` true).
pub async fn decrypt_to(
    r: &Release,
    p: &Principal,
    key: &CryptoKeyName,
    req: RecipientRequest,
    generate: bool,
) -> Result<ReleaseResponse> {
    let what = match (generate, req.ciphertext.as_deref()) {
        (true, None) => ToTee::GenerateDataKey,
        (true, Some(_)) => return Err(Error::invalid("generateDataKeyTo takes no ciphertext")),
        (false, Some(ct)) => ToTee::Decrypt {
            ciphertext: decode_field("ciphertext", ct)?,
        },
        (false, None) => return Err(Error::invalid("ciphertext is required")),
    };
    let aad = match &req.additional_authenticated_data {
        Some(a) => decode_field("additionalAuthenticatedData", a)?,
        None => Vec::new(),
    };
    let to = Recipient {
        enc: enc(req.enc.as_deref())?,
        token: req.target,
        nonce: req.nonce,
    };
    Ok(response(r.decrypt_to(p, key, &to, what, &aad).await?))
}

/// `POST /v1/release/nonces`.
pub fn nonce(n: IssuedNonce) -> Value {
    json!({"nonce": n.nonce, "expireTime": crate::clock::rfc3339(n.expire)})
}
