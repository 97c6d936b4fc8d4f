//! Key Vault's JSON models and how Sovra's keys are written in them: which Sovra algorithm a
//! Key Vault key type becomes, the JSON Web Key of a version, its attributes and identifiers.

use super::{KvError, KvResult, Vault};
use crate::model::{CryptoKeyRec, VersionRec};
use serde::Deserialize;
use serde_json::{Value, json};
use sovra_crypto::jws::b64url;
use sovra_proto::kms::{
    AlgHash, AlgSpec, Algorithm, EcCurve, KeyOp, ProtectionLevel, RsaPadding, VersionState,
};
use std::collections::BTreeMap;

/// `attributes` of a request.
#[derive(Debug, Default, Deserialize)]
pub struct AttributesIn {
    pub enabled: Option<bool>,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    pub exportable: Option<bool>,
}

impl AttributesIn {
    /// Refuses dates that cannot be times (before 1970, or past year 9999).
    pub fn check(&self) -> KvResult<()> {
        for (name, t) in [("nbf", self.nbf), ("exp", self.exp)] {
            if t.is_some_and(|t| !(0..=253_402_300_799).contains(&t)) {
                return Err(KvError::bad(format!(
                    "attributes.{name} must be Unix seconds between 1970 and 9999"
                )));
            }
        }
        Ok(())
    }

    /// Whether the request sets a date.
    pub fn dates(&self) -> bool {
        self.nbf.is_some() || self.exp.is_some()
    }
}

/// `release_policy` of a request: the policy as base64url of its JSON text.
#[derive(Debug, Deserialize)]
pub struct PolicyIn {
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    pub data: Option<String>,
    pub immutable: Option<bool>,
}

impl PolicyIn {
    /// The policy text and whether it is immutable.
    pub fn text(&self) -> KvResult<crate::services::keys::PolicyText> {
        if let Some(ct) = &self.content_type
            && !ct.to_ascii_lowercase().starts_with("application/json")
        {
            return Err(KvError::bad(format!(
                "release_policy.contentType {ct:?} is not served; policies are application/json"
            )));
        }
        let data = self.data.as_deref().ok_or_else(|| {
            KvError::bad("release_policy.data (the policy, base64url) is required")
        })?;
        let bytes = decode("release_policy.data", data)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| KvError::bad("release_policy.data is not UTF-8 JSON"))?;
        Ok(crate::services::keys::PolicyText {
            text,
            immutable: self.immutable.unwrap_or(false),
        })
    }
}

/// `POST /keys/{name}/create`.
#[derive(Debug, Deserialize)]
pub struct CreateIn {
    pub kty: String,
    pub key_size: Option<u32>,
    pub public_exponent: Option<u64>,
    pub key_ops: Option<Vec<String>>,
    #[serde(default)]
    pub attributes: AttributesIn,
    pub tags: Option<BTreeMap<String, String>>,
    pub crv: Option<String>,
    pub release_policy: Option<PolicyIn>,
}

/// `PATCH /keys/{name}/{version}`.
#[derive(Debug, Deserialize)]
pub struct UpdateIn {
    pub key_ops: Option<Vec<String>>,
    #[serde(default)]
    pub attributes: AttributesIn,
    pub tags: Option<BTreeMap<String, String>>,
    pub release_policy: Option<PolicyIn>,
}

/// Decodes a base64url (or base64, padded or not) field, naming it on error.
pub fn decode(field: &str, v: &str) -> KvResult<Vec<u8>> {
    sovra_proto::b64::decode(v).map_err(|_| KvError::bad(format!("{field} is not base64url")))
}

const SIGN_OPS: &[&str] = &["sign", "verify"];
const ENCRYPT_OPS: &[&str] = &["encrypt", "decrypt", "wrapKey", "unwrapKey"];
const SYMMETRIC_OPS: &[&str] = &["encrypt", "decrypt"];
const WRAP_OPS: &[&str] = &["wrapKey", "unwrapKey"];
/// Every operation Key Vault names (what a key can then do depends on its type).
const KNOWN_OPS: &[&str] = &[
    "encrypt",
    "decrypt",
    "sign",
    "verify",
    "wrapKey",
    "unwrapKey",
    "import",
    "export",
];

/// The Key Vault key type, size and operations a new key asks for, as the Sovra algorithm and
/// protection level that serve them. A Sovra key has one purpose and one algorithm, so an RSA
/// key is either for signing (its `key_ops` only `sign`/`verify`: RS256 with PKCS#1 v1.5) or
/// for encryption (RSA-OAEP-256); an oct key is AES-256-GCM, or AES key wrap when its
/// `key_ops` are only `wrapKey`/`unwrapKey`; see docs/azure.md.
/// A type without `-HSM` gets the deployment's default protection level (`None`).
pub fn algorithm_for(req: &CreateIn) -> KvResult<(Algorithm, Option<ProtectionLevel>)> {
    let (family, level) = match req.kty.as_str() {
        "RSA" | "EC" | "oct" => (req.kty.as_str(), None),
        "RSA-HSM" => ("RSA", Some(ProtectionLevel::Hsm)),
        "EC-HSM" => ("EC", Some(ProtectionLevel::Hsm)),
        "oct-HSM" => ("oct", Some(ProtectionLevel::Hsm)),
        other => {
            return Err(KvError::bad(format!(
                "kty {other:?} is not a key type; use RSA, RSA-HSM, EC, EC-HSM, oct or oct-HSM"
            )));
        }
    };
    let ops: Vec<&str> = req.key_ops.iter().flatten().map(String::as_str).collect();
    if let Some(o) = ops.iter().find(|o| !KNOWN_OPS.contains(o)) {
        return Err(KvError::bad(format!(
            "key_ops {o:?} is not a Key Vault key operation; use {}",
            KNOWN_OPS.join(", ")
        )));
    }
    if req.crv.is_some() && family != "EC" {
        return Err(KvError::bad(format!(
            "crv is only for EC keys, not {}",
            req.kty
        )));
    }
    let within = |allowed: &[&str], what: &str| -> KvResult<()> {
        match ops.iter().find(|o| !allowed.contains(o)) {
            Some(o) => Err(KvError::bad(format!(
                "key_ops {o:?} is not available on {what} keys in Sovra (they offer {})",
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    };
    let alg = match family {
        "RSA" => {
            if req.public_exponent.is_some_and(|e| e != 65537) {
                return Err(KvError::bad("public_exponent must be 65537"));
            }
            let bits = req.key_size.unwrap_or(2048);
            let sign = !ops.is_empty() && ops.iter().all(|o| SIGN_OPS.contains(o));
            if !sign {
                within(ENCRYPT_OPS, "RSA encryption")?;
            }
            match (bits, sign) {
                (2048, false) => Algorithm::RsaDecryptOaep2048Sha256,
                (3072, false) => Algorithm::RsaDecryptOaep3072Sha256,
                (4096, false) => Algorithm::RsaDecryptOaep4096Sha256,
                (2048, true) => Algorithm::RsaSignPkcs12048Sha256,
                (3072, true) => Algorithm::RsaSignPkcs13072Sha256,
                (4096, true) => Algorithm::RsaSignPkcs14096Sha256,
                _ => {
                    return Err(KvError::bad(
                        "key_size of an RSA key must be 2048, 3072 or 4096",
                    ));
                }
            }
        }
        "EC" => {
            within(SIGN_OPS, "EC")?;
            match req.crv.as_deref().unwrap_or("P-256") {
                "P-256" => Algorithm::EcSignP256Sha256,
                "P-384" => Algorithm::EcSignP384Sha384,
                c => {
                    return Err(KvError::unsupported(format!(
                        "crv {c:?} is not available in Sovra; use P-256 or P-384"
                    )));
                }
            }
        }
        _ => {
            let wrap = !ops.is_empty() && ops.iter().all(|o| WRAP_OPS.contains(o));
            if !wrap {
                within(
                    SYMMETRIC_OPS,
                    "oct (AES-256-GCM; or key_ops wrapKey, unwrapKey only for AES key wrap)",
                )?;
            }
            if req.key_size.is_some_and(|s| s != 256) {
                return Err(KvError::unsupported(
                    "oct keys in Sovra are AES-256 (key_size 256)",
                ));
            }
            if wrap {
                Algorithm::Aes256KeyWrap
            } else {
                Algorithm::Aes256Gcm
            }
        }
    };
    Ok((alg, level))
}

/// `key_ops` of a create, import or update, as the operations a key is limited to (which of
/// them the key's purpose offers is checked by the key service).
pub fn limited_ops(ops: Option<&[String]>) -> KvResult<Option<Vec<KeyOp>>> {
    ops.map(|ops| {
        ops.iter()
            .map(|o| {
                KeyOp::parse(o).ok_or_else(|| {
                    KvError::bad(format!(
                        "key_ops {o:?} is not a key operation Sovra offers; use encrypt, decrypt, sign, verify, wrapKey, unwrapKey"
                    ))
                })
            })
            .collect()
    })
    .transpose()
}

/// The operations a version of `alg` allows, as Key Vault lists them.
pub fn key_ops(alg: Algorithm) -> &'static [&'static str] {
    match alg.spec() {
        AlgSpec::Aes256Gcm => SYMMETRIC_OPS,
        AlgSpec::AesKeyWrap => WRAP_OPS,
        AlgSpec::RsaOaep { .. } => ENCRYPT_OPS,
        AlgSpec::Ecdsa { .. } | AlgSpec::RsaSign { .. } | AlgSpec::Ed25519 => SIGN_OPS,
        AlgSpec::Hmac { .. } => &[],
    }
}

/// The JWS algorithm a signing key makes, its hash, and (ECDSA) the width of `r` and `s`.
pub fn sign_alg(alg: Algorithm) -> Option<(&'static str, AlgHash, Option<usize>)> {
    Some(match alg.spec() {
        AlgSpec::Ecdsa {
            curve: EcCurve::P256,
            hash,
        } => ("ES256", hash, Some(32)),
        AlgSpec::Ecdsa {
            curve: EcCurve::P384,
            hash,
        } => ("ES384", hash, Some(48)),
        AlgSpec::RsaSign { padding, hash, .. } => {
            let name = match (padding, hash) {
                (RsaPadding::Pkcs1, AlgHash::Sha256) => "RS256",
                (RsaPadding::Pkcs1, AlgHash::Sha384) => "RS384",
                (RsaPadding::Pkcs1, AlgHash::Sha512) => "RS512",
                (RsaPadding::Pss, AlgHash::Sha256) => "PS256",
                (RsaPadding::Pss, AlgHash::Sha384) => "PS384",
                (RsaPadding::Pss, AlgHash::Sha512) => "PS512",
            };
            (name, hash, None)
        }
        _ => return None,
    })
}

/// A key's ID within the vault (`…/cryptoKeys/{id}` → `id`).
pub fn key_id(rec_name: &str) -> &str {
    rec_name.rsplit('/').next().unwrap_or(rec_name)
}

/// The `kid` of a key (no version) or of one version.
pub fn kid(vault: &Vault, key: &str, version: Option<u32>) -> String {
    match version {
        Some(n) => format!("{}/keys/{key}/{n}", vault.base),
        None => format!("{}/keys/{key}", vault.base),
    }
}

/// Key Vault's recovery level and days of a key: deleted keys are kept for the key's
/// destroy-scheduled duration and cannot be purged sooner (purge protection, always on).
fn recovery(key: &CryptoKeyRec) -> (&'static str, u64) {
    match key.destroy_scheduled_duration {
        0 => ("Recoverable+Purgeable", 0),
        d => ("Recoverable", d.div_ceil(86_400)),
    }
}

/// Key Vault's `attributes` of a version.
pub fn attributes(key: &CryptoKeyRec, v: Option<&VersionRec>) -> Value {
    let created = v.map_or(key.create_time, |v| v.create_time);
    let (level, days) = recovery(key);
    let mut a = json!({
        "enabled": v.is_some_and(|v| v.state == VersionState::Enabled),
        "created": created,
        "updated": created,
        "recoveryLevel": level,
        "recoverableDays": days,
        "exportable": key.exportable,
    });
    if let Some(v) = v
        && let Some(obj) = a.as_object_mut()
    {
        obj.insert(
            "hsmPlatform".into(),
            json!(if v.protection_level == ProtectionLevel::Hsm {
                "1"
            } else {
                "0"
            }),
        );
        if let Some(t) = v.not_before {
            obj.insert("nbf".into(), json!(t));
        }
        if let Some(t) = v.expire_time {
            obj.insert("exp".into(), json!(t));
        }
    }
    a
}

/// The JSON Web Key type of an algorithm (without `-HSM`).
fn kty(alg: Algorithm) -> &'static str {
    match alg.spec() {
        AlgSpec::Aes256Gcm | AlgSpec::AesKeyWrap | AlgSpec::Hmac { .. } => "oct",
        AlgSpec::RsaOaep { .. } | AlgSpec::RsaSign { .. } => "RSA",
        AlgSpec::Ecdsa { .. } => "EC",
        AlgSpec::Ed25519 => "OKP",
    }
}

/// The JSON Web Key of a version: its type, operations and, given its SubjectPublicKeyInfo,
/// its public members (none for AES).
pub fn jwk(
    kid: String,
    key: &CryptoKeyRec,
    v: &VersionRec,
    spki: Option<&[u8]>,
) -> KvResult<Value> {
    let hsm = v.protection_level == ProtectionLevel::Hsm;
    let mut j = match spki {
        Some(der) => sovra_crypto::jws::VerifyKey::from_spki(None, der)
            .map(|k| k.public_jwk())
            .map_err(|_| {
                KvError(crate::error::Error::internal(
                    "public key of a version is not RSA or EC",
                ))
            })?,
        None => json!({}),
    };
    let obj = j
        .as_object_mut()
        .ok_or_else(|| KvError(crate::error::Error::internal("JWK is not an object")))?;
    let suffix = if hsm { "-HSM" } else { "" };
    obj.insert("kty".into(), json!(format!("{}{suffix}", kty(v.algorithm))));
    obj.insert("kid".into(), json!(kid));
    let ops: Vec<&str> = match &key.key_ops {
        Some(ops) => ops.iter().map(|o| o.as_str()).collect(),
        None => key_ops(v.algorithm).to_vec(),
    };
    obj.insert("key_ops".into(), json!(ops));
    Ok(j)
}

/// The members a deleted key's bundle or item adds.
pub fn deleted(vault: &Vault, d: &crate::model::DeletedKeyRec) -> Value {
    json!({
        "recoveryId": format!("{}/deletedkeys/{}", vault.base, key_id(&d.key.name)),
        "deletedDate": d.delete_time,
        "scheduledPurgeDate": d.purge_time,
    })
}

/// The `release_policy` of a key bundle.
pub fn release_policy(key: &CryptoKeyRec) -> Option<Value> {
    key.release_policy.as_ref().map(|text| {
        json!({
            "contentType": "application/json; charset=utf-8",
            "data": b64url(text.as_bytes()),
            "immutable": key.release_policy_immutable,
        })
    })
}

/// `PUT /keys/{name}`: a key to import as a JWK with its private members.
#[derive(Debug, Deserialize)]
pub struct ImportIn {
    pub key: JwkIn,
    #[serde(rename = "Hsm")]
    pub hsm: Option<bool>,
    #[serde(default)]
    pub attributes: AttributesIn,
    pub tags: Option<BTreeMap<String, String>>,
    pub release_policy: Option<PolicyIn>,
}

/// A BYOK transfer blob (`key.key_hsm`): material wrapped to a key-exchange key (a KEK made
/// with `key_ops: ["import"]`, which in Sovra is an import job of the vault's ring).
pub struct Byok {
    /// The KEK's name (from the blob's `header.kid`).
    pub kek: String,
    /// RSA-OAEP of the transfer key ‖ the material under it (AES key wrap with padding).
    pub wrapped: Vec<u8>,
    /// The algorithms the key may be, in order (an RSA key's size is not in the request).
    pub candidates: Vec<Algorithm>,
    /// An EC key's SubjectPublicKeyInfo (the HSM checks the material against it).
    pub public_key: Option<Vec<u8>>,
}

/// Reads a BYOK import: `{"schema_version", "header": {"kid", "alg": "dir", "enc":
/// "CKM_RSA_AES_KEY_WRAP"}, "ciphertext"}`, base64url in `key.key_hsm`.
pub fn byok(req: &ImportIn) -> KvResult<Option<Byok>> {
    let j = &req.key;
    let Some(blob) = j.key_hsm.as_deref() else {
        return Ok(None);
    };
    let bad = |m: &str| KvError::bad(format!("key.key_hsm: {m}"));
    let doc: Value = serde_json::from_slice(&decode("key.key_hsm", blob)?)
        .map_err(|_| bad("not a BYOK transfer blob (JSON)"))?;
    let enc = doc
        .pointer("/header/enc")
        .and_then(Value::as_str)
        .unwrap_or("");
    if enc != "CKM_RSA_AES_KEY_WRAP" {
        return Err(bad(&format!(
            "header.enc {enc:?}: Sovra's KEKs take CKM_RSA_AES_KEY_WRAP"
        )));
    }
    let kid = doc
        .pointer("/header/kid")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("header.kid (the KEK) is required"))?;
    let kek = kid
        .split("/keys/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad("header.kid is not a key identifier (https://HOST/keys/NAME[/VERSION])")
        })?
        .to_owned();
    let wrapped = decode(
        "key.key_hsm ciphertext",
        doc.get("ciphertext")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("ciphertext is required"))?,
    )?;
    let create = |key_size, crv: Option<String>| CreateIn {
        kty: j.kty.clone(),
        key_size,
        public_exponent: None,
        key_ops: j.key_ops.clone(),
        attributes: AttributesIn::default(),
        tags: None,
        crv,
        release_policy: None,
    };
    let (candidates, public_key) = match j.kty.as_str() {
        "RSA" | "RSA-HSM" => {
            let mut c = Vec::new();
            for bits in [2048, 3072, 4096] {
                c.push(algorithm_for(&create(Some(bits), None))?.0);
            }
            (c, None)
        }
        "EC" | "EC-HSM" => {
            let alg = algorithm_for(&create(None, j.crv.clone()))?.0;
            let (Some(x), Some(y)) = (&j.x, &j.y) else {
                return Err(KvError::bad(
                    "an EC key's BYOK import needs its public key: key.x and key.y",
                ));
            };
            let oid = match alg {
                Algorithm::EcSignP384Sha384 => sovra_crypto::der::OID_P384,
                _ => sovra_crypto::der::OID_P256,
            };
            let mut point = vec![4u8];
            point.extend(decode("key.x", x)?);
            point.extend(decode("key.y", y)?);
            (vec![alg], Some(sovra_crypto::der::ec_spki(oid, &point)))
        }
        "oct" | "oct-HSM" => (vec![algorithm_for(&create(None, None))?.0], None),
        other => {
            return Err(KvError::bad(format!(
                "key.kty {other:?} is not RSA, EC or oct"
            )));
        }
    };
    Ok(Some(Byok {
        kek,
        wrapped,
        candidates,
        public_key,
    }))
}

/// A JSON Web Key with private members.
#[derive(Debug, Deserialize)]
pub struct JwkIn {
    pub kty: String,
    pub key_ops: Option<Vec<String>>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub d: Option<String>,
    pub p: Option<String>,
    pub q: Option<String>,
    pub dp: Option<String>,
    pub dq: Option<String>,
    pub qi: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub k: Option<String>,
    pub key_hsm: Option<String>,
}

/// What an imported JWK is: its Sovra algorithm and level, its material (PKCS#8, or the raw
/// AES key) and, for EC keys, its SubjectPublicKeyInfo.
pub struct Imported {
    pub algorithm: Algorithm,
    pub level: Option<ProtectionLevel>,
    pub material: sovra_crypto::SecretBytes,
    pub public_key: Option<Vec<u8>>,
}

/// Reads an imported JWK. The key's type and `key_ops` choose the algorithm as for a created
/// key; the material itself is checked when it is imported.
pub fn imported(req: &ImportIn) -> KvResult<Imported> {
    let j = &req.key;
    let member = |name: &str, v: &Option<String>| -> KvResult<Vec<u8>> {
        let v = v.as_deref().ok_or_else(|| {
            KvError::bad(format!("key.{name} is required to import a {} key", j.kty))
        })?;
        decode(&format!("key.{name}"), v)
    };
    let size = |n: &[u8]| n.iter().skip_while(|b| **b == 0).count() * 8;
    let as_create = |key_size: Option<u32>, crv: Option<String>| CreateIn {
        kty: j.kty.clone(),
        key_size,
        public_exponent: None,
        key_ops: j.key_ops.clone(),
        attributes: AttributesIn::default(),
        tags: None,
        crv,
        release_policy: None,
    };
    let (algorithm, material, public_key, level) = match j.kty.as_str() {
        "RSA" | "RSA-HSM" => {
            let n = member("n", &j.n)?;
            let (alg, level) = algorithm_for(&as_create(u32::try_from(size(&n)).ok(), None))?;
            let parts = [
                n,
                member("e", &j.e)?,
                member("d", &j.d)?,
                member("p", &j.p)?,
                member("q", &j.q)?,
                member("dp", &j.dp)?,
                member("dq", &j.dq)?,
                member("qi", &j.qi)?,
            ];
            let [a, b, c, d, e, f, g, h] = &parts;
            let pkcs8 = sovra_crypto::der::rsa_pkcs8([a, b, c, d, e, f, g, h]);
            (alg, pkcs8, None, level)
        }
        "EC" | "EC-HSM" => {
            let (alg, level) = algorithm_for(&as_create(None, j.crv.clone()))?;
            let (oid, width) = match alg {
                Algorithm::EcSignP384Sha384 => (sovra_crypto::der::OID_P384, 48),
                _ => (sovra_crypto::der::OID_P256, 32),
            };
            let (d, x, y) = (member("d", &j.d)?, member("x", &j.x)?, member("y", &j.y)?);
            if d.len() != width || x.len() != width || y.len() != width {
                return Err(KvError::bad(format!(
                    "key.d, key.x and key.y of a {} key are {width} bytes each",
                    j.crv.as_deref().unwrap_or("P-256")
                )));
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let pkcs8 = sovra_crypto::der::ec_pkcs8(oid, &d, &point);
            (
                alg,
                pkcs8,
                Some(sovra_crypto::der::ec_spki(oid, &point)),
                level,
            )
        }
        "oct" | "oct-HSM" => {
            let k = member("k", &j.k)?;
            let (alg, level) = algorithm_for(&as_create(u32::try_from(k.len() * 8).ok(), None))?;
            (alg, sovra_crypto::SecretBytes::new(k), None, level)
        }
        other => {
            return Err(KvError::bad(format!(
                "key.kty {other:?} is not a key type; use RSA, EC or oct (with -HSM, or Hsm: true, for the HSM)"
            )));
        }
    };
    let level = if req.hsm == Some(true) {
        Some(ProtectionLevel::Hsm)
    } else {
        level
    };
    Ok(Imported {
        algorithm,
        level,
        material,
        public_key,
    })
}

/// An ISO 8601 duration (`P90D`, `P1Y2M`, `PT36H`) in seconds, with a year of 365 days and a
/// month of 30, as Key Vault's rotation policies count them.
pub fn iso_duration(s: &str) -> KvResult<u64> {
    let bad = || {
        KvError::bad(format!(
            "{s:?} is not an ISO 8601 duration such as P90D or PT36H"
        ))
    };
    let rest = s.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return Err(bad()),
        None => (rest, ""),
    };
    let mut total: u64 = 0;
    let mut any = false;
    for (part, units) in [
        (
            date,
            &[
                ('Y', 365 * 86_400u64),
                ('M', 30 * 86_400),
                ('W', 7 * 86_400),
                ('D', 86_400),
            ][..],
        ),
        (time, &[('H', 3600u64), ('M', 60), ('S', 1)][..]),
    ] {
        let mut num = String::new();
        let mut next = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let i = units
                .iter()
                .skip(next)
                .position(|(u, _)| *u == c)
                .ok_or_else(bad)?
                + next;
            let (_, secs) = units.get(i).ok_or_else(bad)?;
            let n: u64 = num.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(*secs)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            num.clear();
            next = i + 1;
            any = true;
        }
        if !num.is_empty() {
            return Err(bad());
        }
    }
    if !any {
        return Err(bad());
    }
    Ok(total)
}

/// Seconds as an ISO 8601 duration (whole days when they are).
pub fn iso_from_secs(secs: u64) -> String {
    if secs.is_multiple_of(86_400) {
        format!("P{}D", secs / 86_400)
    } else {
        format!("PT{secs}S")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(iso_duration("P90D").ok(), Some(90 * 86_400));
        assert_eq!(iso_duration("P1Y2M").ok(), Some(425 * 86_400));
        assert_eq!(iso_duration("PT36H").ok(), Some(36 * 3600));
        assert_eq!(iso_duration("P1DT1M").ok(), Some(86_460));
        for bad in [
            "",
            "P",
            "PT",
            "90D",
            "P1H",
            "PD",
            "P1D2",
            "P2D1Y",
            "P99999999999999999999D",
            "P1DT",
        ] {
            assert!(iso_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(iso_from_secs(86_400 * 30), "P30D");
        assert_eq!(iso_from_secs(90), "PT90S");
    }
}
