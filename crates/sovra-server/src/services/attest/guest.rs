//! The response of Azure's guest attestation protocol: the token sealed to the vTPM's
//! ephemeral key, so only the attested TPM, in the attested PCR state, can read it.
//!
//! ```text
//! base64url(JSON{ "Jwt": b64(AES-256-GCM(token)), "EncryptedInnerKey": b64(RSAES-PKCS1(key)),
//!                 "EncryptionParams": {"BlockMode": "ChainingModeGCM", "BlockPadding": "PKCS7",
//!                                      "Cipher": "AES", "KeySizeInBits": 256, "Iv": b64},
//!                 "AuthenticationData": b64(GCM tag) })      GCM AAD = "Transport Key"
//! ```

use super::Attested;
use crate::error::{Error, Result};
use serde_json::json;

/// The additional authenticated data the guest library expects.
const AAD: &[u8] = b"Transport Key";

/// Seals `a`'s token to the key its evidence certified.
pub fn seal(a: &Attested) -> Result<String> {
    let (n, e) = a
        .sealing_key
        .as_ref()
        .ok_or_else(|| Error::internal("guest evidence verified without a sealing key"))?;
    let spki = sovra_crypto::der::rsa_spki(n, e);
    let s = sovra_crypto::hybrid::seal_to_rsa(&spki, AAD, a.token.as_bytes())
        .map_err(|e| Error::internal(format!("sealing the token: {e}")))?;
    let b64 = sovra_proto::b64::encode;
    let body = json!({
        "Jwt": b64(&s.ciphertext),
        "EncryptedInnerKey": b64(&s.encrypted_key),
        "EncryptionParams": {
            "BlockMode": "ChainingModeGCM",
            "BlockPadding": "PKCS7",
            "Cipher": "AES",
            "KeySizeInBits": 256,
            "Iv": b64(&s.iv),
        },
        "AuthenticationData": b64(&s.tag),
    });
    Ok(sovra_crypto::jws::b64url(body.to_string().as_bytes()))
}
