//! Compact JWS and JWT: sign with RS256, ES256 or ES384; verify against JWKs.
//!
//! Attestation tokens, key-release responses and the tokens presented to key release all go
//! through here. Signatures follow RFC 7518: RSASSA-PKCS1-v1_5 for RS256, and for ECDSA the raw
//! `r || s` form (not DER).

use crate::error::CryptoError;
use crate::secret::SecretBytes;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// Base64url without padding (the JOSE encoding).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, with or without padding.
pub fn b64url_decode(s: &str) -> Result<Vec<u8>, CryptoError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| CryptoError::Invalid("not base64url"))
}

/// A JWS signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
}

impl JwsAlg {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// Parses an `alg` header value (`RSA256`, the spelling of the MAA SDK, counts as RS256).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" | "RSA256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "ES384" => Some(Self::Es384),
            _ => None,
        }
    }
}

enum Signing {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private signing key with its key ID and certificate chain.
pub struct JwsSigner {
    alg: JwsAlg,
    key: Signing,
    kid: String,
    x5c: Vec<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwsSigner({}, kid={})", self.alg.name(), self.kid)
    }
}

/// Generates a PKCS#8 private key for `alg` (RSA keys are 2048-bit for RS256).
pub fn generate(alg: JwsAlg) -> Result<SecretBytes, CryptoError> {
    use sovra_proto::kms::Algorithm;
    crate::keys::generate(match alg {
        JwsAlg::Rs256 => Algorithm::RsaSignPkcs12048Sha256,
        JwsAlg::Es256 => Algorithm::EcSignP256Sha256,
        JwsAlg::Es384 => Algorithm::EcSignP384Sha384,
    })
}

impl JwsSigner {
    /// Loads a PKCS#8 key for `alg`. `x5c` is the certificate chain (DER), leaf first.
    pub fn load(
        alg: JwsAlg,
        pkcs8: &[u8],
        kid: String,
        x5c: &[Vec<u8>],
    ) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError::InvalidKeyMaterial;
        let key = match alg {
            JwsAlg::Rs256 => Signing::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?),
            JwsAlg::Es256 => Signing::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(bad)?,
            ),
            JwsAlg::Es384 => Signing::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8)
                    .map_err(bad)?,
            ),
        };
        Ok(Self {
            alg,
            key,
            kid,
            x5c: x5c.iter().map(|c| STANDARD.encode(c)).collect(),
            rng: SystemRandom::new(),
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }

    /// The key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `payload` bytes with a protected header of `alg`, `kid`, the `extra` members and
    /// (unless `omit_x5c`) the certificate chain. Returns the compact serialization.
    pub fn sign_bytes(
        &self,
        extra: &Map<String, Value>,
        payload: &[u8],
        omit_x5c: bool,
    ) -> Result<String, CryptoError> {
        let mut h = Map::new();
        h.insert("alg".into(), Value::from(self.alg.name()));
        h.insert("kid".into(), Value::from(self.kid.clone()));
        if !omit_x5c && !self.x5c.is_empty() {
            h.insert("x5c".into(), Value::from(self.x5c.clone()));
        }
        for (k, v) in extra {
            h.insert(k.clone(), v.clone());
        }
        let header = serde_json::to_vec(&h).map_err(|_| CryptoError::Library("header encoding"))?;
        let mut out = b64url(&header);
        out.push('.');
        out.push_str(&b64url(payload));
        let sig = self.raw_sign(out.as_bytes())?;
        out.push('.');
        out.push_str(&b64url(&sig));
        Ok(out)
    }

    /// Signs a JWT with `typ: JWT`.
    pub fn sign_jwt(
        &self,
        claims: &Value,
        extra: &Map<String, Value>,
    ) -> Result<String, CryptoError> {
        let mut h = extra.clone();
        h.insert("typ".into(), Value::from("JWT"));
        let body = serde_json::to_vec(claims).map_err(|_| CryptoError::Library("claims"))?;
        self.sign_bytes(&h, &body, false)
    }

    fn raw_sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let lib = |_| CryptoError::Library("signing failed");
        match &self.key {
            Signing::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(lib)?;
                Ok(sig)
            }
            Signing::Ec(k) => Ok(k.sign(&self.rng, msg).map_err(lib)?.as_ref().to_vec()),
        }
    }

    /// The public JWK (with `kid`, `alg`, `use: sig` and `x5c`).
    pub fn jwk(&self) -> Value {
        let mut j = match &self.key {
            Signing::Rsa(k) => {
                let p = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64url(p.modulus().big_endian_without_leading_zero()),
                    "e": b64url(p.exponent().big_endian_without_leading_zero()),
                })
            }
            Signing::Ec(k) => {
                let pt = k.public_key().as_ref();
                let n = (pt.len().saturating_sub(1)) / 2;
                let (x, y) = pt
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(n.min(pt.len().saturating_sub(1)));
                json!({
                    "kty": "EC",
                    "crv": if self.alg == JwsAlg::Es256 { "P-256" } else { "P-384" },
                    "x": b64url(x),
                    "y": b64url(y),
                })
            }
        };
        if let Some(o) = j.as_object_mut() {
            o.insert("kid".into(), Value::from(self.kid.clone()));
            o.insert("alg".into(), Value::from(self.alg.name()));
            o.insert("use".into(), Value::from("sig"));
            if !self.x5c.is_empty() {
                o.insert("x5c".into(), Value::from(self.x5c.clone()));
            }
        }
        j
    }
}

/// A compact JWS split into its parts, signature not yet checked.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The decoded payload.
    pub payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Splits and decodes `token` (three base64url parts separated by dots).
    pub fn parse(token: &str) -> Result<Self, CryptoError> {
        let token = token.trim();
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Invalid("a JWS has three dot-separated parts"));
        };
        let header: Map<String, Value> = serde_json::from_slice(&b64url_decode(h)?)
            .map_err(|_| CryptoError::Invalid("the JWS header is not a JSON object"))?;
        Ok(Self {
            header,
            payload: b64url_decode(p)?,
            signing_input: format!("{h}.{p}"),
            signature: b64url_decode(s)?,
        })
    }

    /// The payload as a JSON object (JWT claims).
    pub fn claims(&self) -> Result<Map<String, Value>, CryptoError> {
        serde_json::from_slice(&self.payload)
            .map_err(|_| CryptoError::Invalid("the JWT payload is not a JSON object"))
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// True if the JWS is unsigned (`alg: none`).
    pub fn is_unsigned(&self) -> bool {
        self.alg() == Some("none")
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// The certificate chain from `x5c` (or `jwk.x5c`), DER, leaf first.
    pub fn x5c(&self) -> Result<Vec<Vec<u8>>, CryptoError> {
        let list = self
            .header
            .get("x5c")
            .or_else(|| self.header.get("jwk").and_then(|j| j.get("x5c")));
        let Some(Value::Array(list)) = list else {
            return Ok(Vec::new());
        };
        list.iter()
            .map(|c| {
                c.as_str()
                    .and_then(|s| STANDARD.decode(s).ok())
                    .ok_or(CryptoError::Invalid("x5c entries are standard base64 DER"))
            })
            .collect()
    }

    /// Checks the signature with `key`.
    pub fn verify_with(&self, key: &VerifyKey) -> Result<(), CryptoError> {
        let alg = self
            .alg()
            .and_then(JwsAlg::parse)
            .ok_or(CryptoError::Invalid("unsupported JWS alg"))?;
        if alg != key.alg {
            return Err(CryptoError::Invalid("the JWS alg does not match the key"));
        }
        let msg = self.signing_input.as_bytes();
        let ok = match &key.public {
            Public::Rsa { n, e } => PublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, &self.signature)
            .is_ok(),
            Public::Ec(point) => {
                let a = if alg == JwsAlg::Es256 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                signature::UnparsedPublicKey::new(a, point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::Invalid("the JWS signature does not verify"))
        }
    }
}

#[derive(Debug, Clone)]
enum Public {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec(Vec<u8>),
}

/// A public key that verifies JWS signatures.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    /// The key ID (`kid`), if known.
    pub kid: Option<String>,
    /// The algorithm the key verifies.
    pub alg: JwsAlg,
    public: Public,
}

impl VerifyKey {
    /// From a public JWK (RSA → RS256; EC P-256 → ES256; P-384 → ES384).
    pub fn from_jwk(jwk: &Value) -> Result<Self, CryptoError> {
        let s = |k: &str| -> Result<Vec<u8>, CryptoError> {
            jwk.get(k)
                .and_then(Value::as_str)
                .ok_or(CryptoError::Invalid("JWK member missing"))
                .and_then(b64url_decode)
        };
        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
        match jwk.get("kty").and_then(Value::as_str) {
            Some("RSA") => Ok(Self {
                kid,
                alg: JwsAlg::Rs256,
                public: Public::Rsa {
                    n: s("n")?,
                    e: s("e")?,
                },
            }),
            Some("EC") => {
                let alg = match jwk.get("crv").and_then(Value::as_str) {
                    Some("P-256") => JwsAlg::Es256,
                    Some("P-384") => JwsAlg::Es384,
                    _ => return Err(CryptoError::Invalid("unsupported JWK curve")),
                };
                let mut point = vec![4];
                point.extend(s("x")?);
                point.extend(s("y")?);
                Ok(Self {
                    kid,
                    alg,
                    public: Public::Ec(point),
                })
            }
            _ => Err(CryptoError::Invalid("unsupported JWK key type")),
        }
    }

    /// The key's public members as a JWK (`kty` and `n`/`e`, or `crv`/`x`/`y`), base64url.
    pub fn public_jwk(&self) -> Value {
        match &self.public {
            Public::Rsa { n, e } => json!({"kty": "RSA", "n": b64url(n), "e": b64url(e)}),
            Public::Ec(point) => {
                let xy = point.get(1..).unwrap_or_default();
                let (x, y) = xy.split_at(xy.len() / 2);
                let crv = if self.alg == JwsAlg::Es384 {
                    "P-384"
                } else {
                    "P-256"
                };
                json!({"kty": "EC", "crv": crv, "x": b64url(x), "y": b64url(y)})
            }
        }
    }

    /// From an X.509 certificate's SubjectPublicKeyInfo (DER). RSA keys verify RS256; EC keys
    /// ES256/ES384 by curve.
    pub fn from_spki(kid: Option<String>, spki_der: &[u8]) -> Result<Self, CryptoError> {
        if let Ok(k) = aws_lc_rs::rsa::PublicKey::from_der(spki_der) {
            return Ok(Self {
                kid,
                alg: JwsAlg::Rs256,
                public: Public::Rsa {
                    n: k.modulus().big_endian_without_leading_zero().to_vec(),
                    e: k.exponent().big_endian_without_leading_zero().to_vec(),
                },
            });
        }
        for (alg, curve) in [
            (JwsAlg::Es256, &signature::ECDSA_P256_SHA256_FIXED),
            (JwsAlg::Es384, &signature::ECDSA_P384_SHA384_FIXED),
        ] {
            if signature::ParsedPublicKey::new(curve, spki_der).is_ok() {
                let point = ec_point_from_spki(spki_der).ok_or(CryptoError::InvalidKeyMaterial)?;
                return Ok(Self {
                    kid,
                    alg,
                    public: Public::Ec(point),
                });
            }
        }
        Err(CryptoError::Invalid("unsupported certificate key"))
    }
}

/// The uncompressed EC point at the end of an SPKI (the BIT STRING's content after the
/// unused-bits byte).
fn ec_point_from_spki(spki: &[u8]) -> Option<Vec<u8>> {
    // For P-256 the point is 65 bytes, for P-384 97; it is the tail of the SPKI.
    for n in [97usize, 65] {
        if spki.len() > n {
            let tail = spki.get(spki.len() - n..)?;
            if tail.first() == Some(&4) && spki.get(spki.len() - n - 1) == Some(&0) {
                return Some(tail.to_vec());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_each_alg() {
        for alg in [JwsAlg::Rs256, JwsAlg::Es256, JwsAlg::Es384] {
            let k = generate(alg).unwrap();
            let s = JwsSigner::load(alg, k.expose(), "k1".into(), &[]).unwrap();
            let t = s.sign_jwt(&json!({"a": 1}), &Map::new()).unwrap();
            let j = Jws::parse(&t).unwrap();
            assert_eq!(j.kid(), Some("k1"));
            assert_eq!(j.claims().unwrap()["a"], 1);
            let vk = VerifyKey::from_jwk(&s.jwk()).unwrap();
            j.verify_with(&vk).unwrap();
            // A changed payload fails.
            let mut parts: Vec<&str> = t.split('.').collect();
            let other = b64url(br#"{"a":2}"#);
            parts[1] = &other;
            let forged = Jws::parse(&parts.join(".")).unwrap();
            assert!(forged.verify_with(&vk).is_err(), "{alg:?}");
        }
    }

    #[test]
    fn wrong_key_and_malformed_tokens_fail() {
        let a = JwsSigner::load(
            JwsAlg::Es256,
            generate(JwsAlg::Es256).unwrap().expose(),
            "a".into(),
            &[],
        )
        .unwrap();
        let b = JwsSigner::load(
            JwsAlg::Es256,
            generate(JwsAlg::Es256).unwrap().expose(),
            "b".into(),
            &[],
        )
        .unwrap();
        let t = a.sign_jwt(&json!({}), &Map::new()).unwrap();
        let vb = VerifyKey::from_jwk(&b.jwk()).unwrap();
        assert!(Jws::parse(&t).unwrap().verify_with(&vb).is_err());
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.", "e30.!!.x"] {
            assert!(Jws::parse(bad).is_err(), "{bad}");
        }
    }
}
