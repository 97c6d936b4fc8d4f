//! The native wire form of the cryptographic operations: base64 fields decoded (named in the
//! error when they are not base64 or too large), the `Crypto` service called with bytes, its
//! result encoded. A second API (Azure Key Vault) encodes the same service calls its own way.

use crate::error::{Error, Result};
use crate::services::auth::Principal;
use crate::services::ops::{Crypto, Message, Target, decode_field};
use sovra_crypto::HashAlg;
use sovra_proto::b64;
use sovra_proto::names::{CryptoKeyName, LocationName};
use sovra_proto::ops::*;

/// Exactly one of `data` or `digest`, decoded.
fn message(data: &Option<String>, digest: &Option<Digest>) -> Result<Message> {
    let data = data
        .as_deref()
        .map(|d| decode_field("data", d))
        .transpose()?;
    match (data, digest_of(digest)?) {
        (Some(d), None) => Ok(Message::Data(d)),
        (None, Some((h, d))) => Ok(Message::Digest(h, d)),
        _ => Err(Error::invalid("give exactly one of data or digest")),
    }
}

fn digest_of(d: &Option<Digest>) -> Result<Option<(HashAlg, Vec<u8>)>> {
    let Some(d) = d else { return Ok(None) };
    let parts = [
        (HashAlg::Sha256, &d.sha256, "digest.sha256"),
        (HashAlg::Sha384, &d.sha384, "digest.sha384"),
        (HashAlg::Sha512, &d.sha512, "digest.sha512"),
    ];
    let given: Vec<_> = parts.iter().filter(|(_, v, _)| v.is_some()).collect();
    match given.as_slice() {
        [(h, Some(v), f)] => Ok(Some((*h, decode_field(f, v)?))),
        _ => Err(Error::invalid(
            "digest must have exactly one of sha256, sha384, sha512",
        )),
    }
}

fn aad(a: &Option<String>) -> Result<Vec<u8>> {
    match a {
        Some(a) => decode_field("additionalAuthenticatedData", a),
        None => Ok(Vec::new()),
    }
}

/// `:encrypt`.
pub async fn encrypt(
    c: &Crypto,
    p: &Principal,
    key: &CryptoKeyName,
    req: &EncryptRequest,
) -> Result<EncryptResponse> {
    let pt = zeroize::Zeroizing::new(decode_field("plaintext", &req.plaintext)?);
    let aad = aad(&req.additional_authenticated_data)?;
    let sealed = c.seal(p, key, &pt, &aad).await?;
    Ok(EncryptResponse {
        name: sealed.version,
        ciphertext: b64::encode(&sealed.ciphertext),
    })
}

/// `:decrypt`.
pub async fn decrypt(
    c: &Crypto,
    p: &Principal,
    key: &CryptoKeyName,
    req: &DecryptRequest,
) -> Result<DecryptResponse> {
    let ct = decode_field("ciphertext", &req.ciphertext)?;
    let aad = aad(&req.additional_authenticated_data)?;
    let opened = c.open(p, key, &ct, &aad).await?;
    Ok(DecryptResponse {
        plaintext: b64::encode(opened.plaintext.expose()),
        name: opened.version,
        used_primary: opened.used_primary,
    })
}

/// `:asymmetricSign`.
pub async fn asymmetric_sign(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &AsymmetricSignRequest,
) -> Result<AsymmetricSignResponse> {
    let signed = c.sign(p, target, message(&req.data, &req.digest)?).await?;
    Ok(AsymmetricSignResponse {
        signature: b64::encode(&signed.tag),
        name: signed.version,
    })
}

/// `:asymmetricVerify`.
pub async fn asymmetric_verify(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &AsymmetricVerifyRequest,
) -> Result<VerifyResponse> {
    let input = message(&req.data, &req.digest)?;
    let sig = decode_field("signature", &req.signature)?;
    let checked = c.verify(p, target, &input, &sig).await?;
    Ok(VerifyResponse {
        valid: checked.valid,
        name: checked.version,
    })
}

/// `:asymmetricDecrypt`.
pub async fn asymmetric_decrypt(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &AsymmetricDecryptRequest,
) -> Result<AsymmetricDecryptResponse> {
    let ct = decode_field("ciphertext", &req.ciphertext)?;
    let d = c.decrypt_asymmetric(p, target, &ct).await?;
    Ok(AsymmetricDecryptResponse {
        plaintext: b64::encode(d.plaintext.expose()),
        name: d.version,
    })
}

/// `:macSign`.
pub async fn mac_sign(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &MacSignRequest,
) -> Result<MacSignResponse> {
    let data = decode_field("data", &req.data)?;
    let m = c.mac(p, target, &data).await?;
    Ok(MacSignResponse {
        mac: b64::encode(&m.tag),
        name: m.version,
    })
}

/// `:macVerify`.
pub async fn mac_verify(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &MacVerifyRequest,
) -> Result<VerifyResponse> {
    let data = decode_field("data", &req.data)?;
    let mac = decode_field("mac", &req.mac)?;
    let checked = c.verify_mac(p, target, &data, &mac).await?;
    Ok(VerifyResponse {
        valid: checked.valid,
        name: checked.version,
    })
}

/// `:wrapKey`.
pub async fn wrap_key(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &WrapKeyRequest,
) -> Result<WrapKeyResponse> {
    let key = decode_field("key", &req.key)?;
    let w = c
        .wrap_key(p, target, &key, req.mode == KeyWrapMode::AesKeyWrapPad)
        .await?;
    Ok(WrapKeyResponse {
        wrapped_key: b64::encode(&w.wrapped),
        name: w.version,
    })
}

/// `:unwrapKey`.
pub async fn unwrap_key(
    c: &Crypto,
    p: &Principal,
    target: &Target,
    req: &UnwrapKeyRequest,
) -> Result<UnwrapKeyResponse> {
    let wrapped = decode_field("wrappedKey", &req.wrapped_key)?;
    let d = c
        .unwrap_key(p, target, &wrapped, req.mode == KeyWrapMode::AesKeyWrapPad)
        .await?;
    Ok(UnwrapKeyResponse {
        key: b64::encode(d.plaintext.expose()),
        name: d.version,
    })
}

/// `:generateRandomBytes`.
pub async fn generate_random(
    c: &Crypto,
    p: &Principal,
    loc: &LocationName,
    req: &GenerateRandomBytesRequest,
) -> Result<GenerateRandomBytesResponse> {
    let bytes = c.generate_random(p, loc, req.length_bytes).await?;
    Ok(GenerateRandomBytesResponse {
        data: b64::encode(bytes.expose()),
    })
}
