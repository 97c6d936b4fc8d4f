//! Key Vault key operations: encrypt, decrypt, wrapkey, unwrapkey, sign, verify, release, and
//! random bytes. Each runs the native operation on the version the path names (empty: the
//! current one) and writes the result as Key Vault does (base64url, raw `r ‖ s` ECDSA).

use super::keys::VersionPath;
use super::wire::{self, decode};
use super::{KvCaller, KvError, KvJson, KvPath, KvResult, Vault};
use crate::error::Error;
use crate::http::AppState;
use crate::http::response::Json;
use crate::services::auth::Principal;
use crate::services::ops::{GcmSealed, Message, RsaEncryption, Target};
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use sovra_crypto::jws::b64url;
use sovra_proto::ErrorCode;
use sovra_proto::kms::{AlgHash, AlgSpec, KeyOp, ReleaseRequest, RsaPadding};

/// A key operation of `/keys/{name}/{version}/{op}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `encrypt`.
    Encrypt,
    /// `decrypt`.
    Decrypt,
    /// `wrapkey`.
    WrapKey,
    /// `unwrapkey`.
    UnwrapKey,
    /// `sign`.
    Sign,
    /// `verify`.
    Verify,
}

impl Op {
    /// Every operation, with its path segment.
    pub const ALL: &'static [(&'static str, Op)] = &[
        ("encrypt", Op::Encrypt),
        ("decrypt", Op::Decrypt),
        ("wrapkey", Op::WrapKey),
        ("unwrapkey", Op::UnwrapKey),
        ("sign", Op::Sign),
        ("verify", Op::Verify),
    ];
}

/// The body of every key operation (`KeyOperationsParameters`, `KeySignParameters`,
/// `KeyVerifyParameters`).
#[derive(Debug, Deserialize)]
pub struct OpIn {
    alg: String,
    value: String,
    iv: Option<String>,
    aad: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
}

/// The version a result names (`…/cryptoKeys/k/cryptoKeyVersions/3` → its `kid`).
fn kid_of(vault: &Vault, name: &str, version: &str) -> String {
    let n = version.rsplit('/').next().and_then(|n| n.parse().ok());
    wire::kid(vault, name, n)
}

/// Runs `op` for the handler of its route.
pub async fn operate(
    op: Op,
    state: AppState,
    vault: Vault,
    p: Principal,
    path: VersionPath,
    req: OpIn,
) -> KvResult<Json<Value>> {
    let target = vault.target(&path)?;
    let crypto = state.sovra.crypto();
    let value = decode("value", &req.value)?;
    let opt = |field: &str, v: &Option<String>| v.as_deref().map(|s| decode(field, s)).transpose();
    let aad = opt("aad", &req.aad)?;
    let alg = req.alg.as_str();
    let out = match (op, alg) {
        (Op::Encrypt, "A256GCM") => {
            if req.iv.is_some() {
                return Err(KvError::bad(
                    "A256GCM encrypt makes its own IV; do not send iv",
                ));
            }
            let s = crypto
                .gcm_encrypt(&p, &target, &value, aad.as_deref().unwrap_or_default())
                .await?;
            let mut o = json!({
                "kid": kid_of(&vault, &path.name, &s.version),
                "value": b64url(&s.ciphertext),
                "iv": b64url(&s.iv),
                "tag": b64url(&s.tag),
            });
            if let (Some(a), Some(m)) = (&aad, o.as_object_mut()) {
                m.insert("aad".into(), json!(b64url(a)));
            }
            o
        }
        (Op::Decrypt, "A256GCM") => {
            let (Some(iv), Some(tag)) = (opt("iv", &req.iv)?, opt("tag", &req.tag)?) else {
                return Err(KvError::bad("A256GCM decrypt needs iv and tag"));
            };
            let sealed = GcmSealed {
                version: String::new(),
                iv,
                ciphertext: value,
                tag,
            };
            let d = crypto
                .gcm_decrypt(&p, &target, &sealed, aad.as_deref().unwrap_or_default())
                .await?;
            json!({"kid": kid_of(&vault, &path.name, &d.version), "value": b64url(d.plaintext.expose())})
        }
        (Op::Encrypt | Op::WrapKey, "RSA-OAEP-256" | "RSA-OAEP" | "RSA1_5") => {
            let t = crypto
                .encrypt_asymmetric(&p, &target, &value, rsa_scheme(alg), limited_as(op))
                .await?;
            json!({"kid": kid_of(&vault, &path.name, &t.version), "value": b64url(&t.tag)})
        }
        (Op::Decrypt | Op::UnwrapKey, "RSA-OAEP-256" | "RSA-OAEP" | "RSA1_5") => {
            let d = crypto
                .decrypt_rsa(&p, &target, &value, rsa_scheme(alg), limited_as(op))
                .await?;
            json!({"kid": kid_of(&vault, &path.name, &d.version), "value": b64url(d.plaintext.expose())})
        }
        (Op::Sign, _) => {
            let (t, width) = match sign_params(&state, &p, &target, alg, op).await? {
                SignWith::Rsa(padding, hash) => (
                    crypto
                        .sign_rsa_as(&p, &target, padding, hash, &value)
                        .await?,
                    None,
                ),
                SignWith::KeyOwn(hash, width) => (
                    crypto
                        .sign(&p, &target, Message::Digest(hash, value))
                        .await?,
                    width,
                ),
            };
            let sig = match width {
                Some(w) => sovra_crypto::der::ecdsa_sig_raw(&t.tag, w)
                    .ok_or_else(|| KvError(Error::internal("ECDSA signature is not DER")))?,
                None => t.tag,
            };
            json!({"kid": kid_of(&vault, &path.name, &t.version), "value": b64url(&sig)})
        }
        (Op::Verify, _) => {
            let digest = opt("digest", &req.digest)?
                .ok_or_else(|| KvError::bad("verify needs digest (and the signature as value)"))?;
            let valid = match sign_params(&state, &p, &target, alg, op).await? {
                SignWith::Rsa(padding, hash) => {
                    crypto
                        .verify_rsa_as(&p, &target, padding, hash, &digest, &value)
                        .await?
                        .valid
                }
                // A raw ECDSA signature of the wrong length cannot be valid.
                SignWith::KeyOwn(_, Some(w)) if value.len() != 2 * w => false,
                SignWith::KeyOwn(hash, width) => {
                    let sig = match width {
                        Some(_) => sovra_crypto::der::ecdsa_sig_der(&value).unwrap_or_default(),
                        None => value,
                    };
                    crypto
                        .verify(&p, &target, &Message::Digest(hash, digest), &sig)
                        .await?
                        .valid
                }
            };
            json!({"value": valid})
        }
        // AES key wrap, on an oct key made for it (key_ops wrapKey/unwrapKey): A256KW and
        // CKM_AES_KEY_WRAP are RFC 3394, CKM_AES_KEY_WRAP_PAD is RFC 5649.
        (Op::WrapKey, "A256KW" | "CKM_AES_KEY_WRAP" | "CKM_AES_KEY_WRAP_PAD") => {
            let w = crypto
                .wrap_key(&p, &target, &value, alg == "CKM_AES_KEY_WRAP_PAD")
                .await?;
            json!({"kid": kid_of(&vault, &path.name, &w.version), "value": b64url(&w.wrapped)})
        }
        (Op::UnwrapKey, "A256KW" | "CKM_AES_KEY_WRAP" | "CKM_AES_KEY_WRAP_PAD") => {
            let d = crypto
                .unwrap_key(&p, &target, &value, alg == "CKM_AES_KEY_WRAP_PAD")
                .await?;
            json!({"kid": kid_of(&vault, &path.name, &d.version), "value": b64url(d.plaintext.expose())})
        }
        (_, "A128KW" | "A192KW") => {
            return Err(KvError::unsupported(format!(
                "alg {alg:?} is not offered: Sovra's AES key-wrap keys are 256-bit; use A256KW or CKM_AES_KEY_WRAP_PAD"
            )));
        }
        (_, a) => {
            return Err(KvError::unsupported(format!(
                "alg {a:?} is not offered for {}; Sovra offers A256GCM (oct keys), A256KW and CKM_AES_KEY_WRAP(_PAD) (oct keys created for wrapKey/unwrapKey), RSA-OAEP-256, RSA-OAEP and RSA1_5 (RSA encryption keys) and, for signing, the key's own algorithm",
                name_of(op)
            )));
        }
    };
    Ok(Json(out))
}

/// The operation a key's `key_ops` must include for `op` (RSA-OAEP encryption is `encrypt`
/// or `wrapKey` by the route it came on).
fn limited_as(op: Op) -> KeyOp {
    match op {
        Op::Encrypt => KeyOp::Encrypt,
        Op::Decrypt => KeyOp::Decrypt,
        Op::WrapKey => KeyOp::WrapKey,
        Op::UnwrapKey => KeyOp::UnwrapKey,
        Op::Sign => KeyOp::Sign,
        Op::Verify => KeyOp::Verify,
    }
}

/// The scheme of Key Vault's `RSA-OAEP-256`, `RSA-OAEP` and `RSA1_5`.
fn rsa_scheme(alg: &str) -> RsaEncryption {
    match alg {
        "RSA-OAEP" => RsaEncryption::OaepSha1,
        "RSA1_5" => RsaEncryption::Pkcs1,
        _ => RsaEncryption::OaepSha256,
    }
}

fn name_of(op: Op) -> &'static str {
    Op::ALL
        .iter()
        .find(|(_, o)| *o == op)
        .map_or("this operation", |(n, _)| n)
}

fn wrong_alg(alg: sovra_proto::kms::Algorithm, op: Op) -> KvError {
    let hint = match (alg.spec(), op) {
        (AlgSpec::RsaOaep { .. }, Op::Sign | Op::Verify) => {
            "; a Sovra key has one purpose, and an RSA key created without key_ops is for encryption: create a signing key with key_ops [\"sign\", \"verify\"] (docs/azure.md)"
        }
        _ => "; a Sovra key has one purpose (docs/azure.md)",
    };
    KvError(Error::new(
        ErrorCode::WrongPurpose,
        format!(
            "the key is {}: it does not {}{hint}",
            alg.as_str(),
            name_of(op)
        ),
    ))
}

/// How a signature is made: an RSA key signs with the padding and hash `alg` names (any of
/// RS256…PS512, as Key Vault's RSA keys do); an EC key with its own curve's algorithm (raw
/// `r ‖ s` of this width).
enum SignWith {
    Rsa(RsaPadding, AlgHash),
    KeyOwn(AlgHash, Option<usize>),
}

/// The RSA padding and hash a JWS `alg` names.
fn rsa_alg(alg: &str) -> Option<(RsaPadding, AlgHash)> {
    Some(match alg {
        "RS256" => (RsaPadding::Pkcs1, AlgHash::Sha256),
        "RS384" => (RsaPadding::Pkcs1, AlgHash::Sha384),
        "RS512" => (RsaPadding::Pkcs1, AlgHash::Sha512),
        "PS256" => (RsaPadding::Pss, AlgHash::Sha256),
        "PS384" => (RsaPadding::Pss, AlgHash::Sha384),
        "PS512" => (RsaPadding::Pss, AlgHash::Sha512),
        _ => return None,
    })
}

async fn sign_params(
    state: &AppState,
    p: &Principal,
    target: &Target,
    alg: &str,
    op: Op,
) -> KvResult<SignWith> {
    let (_, key_alg, _) = state.sovra.crypto().public_key_der(p, target).await?;
    if let (AlgSpec::RsaSign { .. }, Some((padding, hash))) = (key_alg.spec(), rsa_alg(alg)) {
        return Ok(SignWith::Rsa(padding, hash));
    }
    let Some((name, hash, width)) = wire::sign_alg(key_alg) else {
        return Err(wrong_alg(key_alg, op));
    };
    if name != alg {
        let why = match key_alg.spec() {
            AlgSpec::RsaSign { .. } => {
                "an RSA key signs with RS256…RS512 or PS256…PS512".to_string()
            }
            AlgSpec::Ecdsa { .. } => format!("this key signs with {name} only"),
            _ => "this key does not sign".into(),
        };
        return Err(KvError(Error::new(
            ErrorCode::UnsupportedAlgorithm,
            format!("alg {alg:?} does not match the key: {why}"),
        )));
    }
    Ok(SignWith::KeyOwn(hash, width))
}

/// The handler of one operation's routes.
macro_rules! op_handler {
    ($name:ident, $op:expr) => {
        /// See [`operate`].
        pub async fn $name(
            State(state): State<AppState>,
            vault: Vault,
            KvCaller(p): KvCaller,
            KvPath(path): KvPath<VersionPath>,
            KvJson(req): KvJson<OpIn>,
        ) -> KvResult<Json<Value>> {
            operate($op, state, vault, p, path, req).await
        }
    };
}

op_handler!(encrypt, Op::Encrypt);
op_handler!(decrypt, Op::Decrypt);
op_handler!(wrap_key, Op::WrapKey);
op_handler!(unwrap_key, Op::UnwrapKey);
op_handler!(sign, Op::Sign);
op_handler!(verify, Op::Verify);

/// `KeyReleaseParameters`.
#[derive(Debug, Deserialize)]
pub struct ReleaseIn {
    target: String,
    nonce: Option<String>,
    enc: Option<String>,
}

/// `POST /keys/{name}/{version}/release`: secure key release, with the native release service
/// and policy grammar.
pub async fn release(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvPath(path): KvPath<VersionPath>,
    KvJson(req): KvJson<ReleaseIn>,
) -> KvResult<Json<Value>> {
    if req.target.is_empty() {
        return Err(KvError::bad("target (the attestation token) is required"));
    }
    let (key, version) = match vault.target(&path)? {
        Target::Key(k) => (k, None),
        Target::Version(v) => (v.key.clone(), Some(v.version)),
    };
    let r = crate::http::release_wire::release(
        state.sovra.release(),
        &p,
        &key,
        version,
        ReleaseRequest {
            target: req.target,
            nonce: req.nonce,
            enc: req.enc,
        },
    )
    .await?;
    Ok(Json(json!({"value": r.value})))
}

/// `GetRandomBytesRequest`.
#[derive(Debug, Deserialize)]
pub struct RandomIn {
    count: u32,
}

/// `POST /rng`: 1 to 128 random bytes.
pub async fn random(
    State(state): State<AppState>,
    vault: Vault,
    KvCaller(p): KvCaller,
    KvJson(req): KvJson<RandomIn>,
) -> KvResult<Json<Value>> {
    if !(1..=128).contains(&req.count) {
        return Err(KvError::bad("count must be from 1 to 128"));
    }
    let loc = vault.ring.location_name();
    let bytes = state
        .sovra
        .crypto()
        .generate_random(&p, &loc, req.count)
        .await?;
    Ok(Json(json!({"value": b64url(bytes.expose())})))
}
