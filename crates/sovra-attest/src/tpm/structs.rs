//! TPM 2.0 structures (big-endian, as the TPM marshals them): TPMS_ATTEST (quote), TPMT_SIGNATURE,
//! TPMT_PUBLIC, and their checks.

use crate::error::AttestError;
use aws_lc_rs::digest;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature;

/// TPM_GENERATED_VALUE.
pub const MAGIC: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_QUOTE.
pub const ST_ATTEST_QUOTE: u16 = 0x8018;
/// TPM_ALG_SHA1.
pub const ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_SHA256.
pub const ALG_SHA256: u16 = 0x000B;
/// TPM_ALG_SHA384.
pub const ALG_SHA384: u16 = 0x000C;
/// TPM_ALG_SHA512.
pub const ALG_SHA512: u16 = 0x000D;
const ALG_RSA: u16 = 0x0001;
const ALG_ECC: u16 = 0x0023;
const ALG_NULL: u16 = 0x0010;
pub(crate) const ALG_RSASSA: u16 = 0x0014;
const ALG_RSAPSS: u16 = 0x0016;
const ALG_ECDSA: u16 = 0x0018;

/// A big-endian reader.
pub struct R<'a> {
    b: &'a [u8],
    i: usize,
    what: &'static str,
}

impl<'a> R<'a> {
    /// Reads `b`, naming `what` in errors.
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Self { b, i: 0, what }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], AttestError> {
        let end = self.i.checked_add(n).ok_or_else(|| self.err())?;
        let s = self.b.get(self.i..end).ok_or_else(|| self.err())?;
        self.i = end;
        Ok(s)
    }
    fn err(&self) -> AttestError {
        AttestError::malformed(format!("{} truncated or malformed", self.what))
    }
    pub(crate) fn u8(&mut self) -> Result<u8, AttestError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    pub(crate) fn u16(&mut self) -> Result<u16, AttestError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().map_err(|_| self.err())?,
        ))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, AttestError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| self.err())?,
        ))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, AttestError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| self.err())?,
        ))
    }
    pub(crate) fn tpm2b(&mut self) -> Result<&'a [u8], AttestError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    pub(crate) fn done(&self) -> Result<(), AttestError> {
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(AttestError::malformed(format!(
                "{} has trailing bytes",
                self.what
            )))
        }
    }
}

/// A PCR selection: bank and PCR indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Hash algorithm of the bank.
    pub hash: u16,
    /// Selected PCRs, ascending.
    pub pcrs: Vec<u32>,
    /// Size of the selection bitmap in bytes, as the TPM marshalled it.
    pub size_of_select: u8,
}

/// A parsed quote (TPMS_ATTEST of type QUOTE).
#[derive(Debug, Clone)]
pub struct Attest {
    /// The raw bytes (what the signature covers).
    pub raw: Vec<u8>,
    /// Name of the signing key.
    pub qualified_signer: Vec<u8>,
    /// Caller data (the nonce).
    pub extra_data: Vec<u8>,
    /// Clock.
    pub clock: u64,
    /// Reset count.
    pub reset_count: u32,
    /// Restart count.
    pub restart_count: u32,
    /// Clock safe.
    pub safe: bool,
    /// Firmware version.
    pub firmware_version: u64,
    /// Selected PCRs.
    pub selections: Vec<Selection>,
    /// Digest of the selected PCR values.
    pub pcr_digest: Vec<u8>,
}

/// Parses a TPMS_ATTEST that must be a quote.
pub fn parse_attest(b: &[u8]) -> Result<Attest, AttestError> {
    let mut r = R::new(b, "TPMS_ATTEST");
    if r.u32()? != MAGIC {
        return Err(AttestError::malformed(
            "TPMS_ATTEST magic is not TPM_GENERATED_VALUE: not made by a TPM",
        ));
    }
    if r.u16()? != ST_ATTEST_QUOTE {
        return Err(AttestError::Unsupported(
            "the TPMS_ATTEST is not a quote".into(),
        ));
    }
    let qualified_signer = r.tpm2b()?.to_vec();
    let extra_data = r.tpm2b()?.to_vec();
    let clock = r.u64()?;
    let reset_count = r.u32()?;
    let restart_count = r.u32()?;
    let safe = r.u8()? == 1;
    let firmware_version = r.u64()?;
    let count = r.u32()?;
    if count > 16 {
        return Err(AttestError::malformed("too many PCR selections"));
    }
    let mut selections = Vec::new();
    for _ in 0..count {
        let hash = r.u16()?;
        let size = r.u8()?;
        let bits = r.take(usize::from(size))?;
        let mut pcrs = Vec::new();
        for (byte, v) in bits.iter().enumerate() {
            for bit in 0..8u32 {
                if v >> bit & 1 == 1 {
                    pcrs.push(byte as u32 * 8 + bit);
                }
            }
        }
        selections.push(Selection {
            hash,
            pcrs,
            size_of_select: size,
        });
    }
    let pcr_digest = r.tpm2b()?.to_vec();
    r.done()?;
    Ok(Attest {
        raw: b.to_vec(),
        qualified_signer,
        extra_data,
        clock,
        reset_count,
        restart_count,
        safe,
        firmware_version,
        selections,
        pcr_digest,
    })
}

/// A TPM public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA modulus and exponent.
    Rsa {
        /// Modulus (big-endian).
        n: Vec<u8>,
        /// Public exponent.
        e: u32,
    },
    /// ECC point.
    Ecc {
        /// TPM curve ID (3 = P-256, 4 = P-384).
        curve: u16,
        /// X.
        x: Vec<u8>,
        /// Y.
        y: Vec<u8>,
    },
}

/// A parsed TPMT_PUBLIC.
#[derive(Debug, Clone)]
pub struct Public {
    /// The raw bytes.
    pub raw: Vec<u8>,
    /// Name algorithm.
    pub name_alg: u16,
    /// Object attributes.
    pub attributes: u32,
    /// The policy that authorises use of the key (empty: none).
    pub auth_policy: Vec<u8>,
    /// The key.
    pub key: PublicKey,
}

/// Parses a TPMT_PUBLIC (RSA or ECC).
pub fn parse_public(b: &[u8]) -> Result<Public, AttestError> {
    let mut r = R::new(b, "TPMT_PUBLIC");
    let ty = r.u16()?;
    let name_alg = r.u16()?;
    let attributes = r.u32()?;
    let auth_policy = r.tpm2b()?.to_vec();
    let sym = r.u16()?;
    if sym != ALG_NULL {
        r.u16()?;
        r.u16()?;
    }
    let scheme = r.u16()?;
    if scheme != ALG_NULL {
        r.u16()?;
    }
    let key = match ty {
        ALG_RSA => {
            let _bits = r.u16()?;
            let e = match r.u32()? {
                0 => 65537,
                e => e,
            };
            PublicKey::Rsa {
                n: r.tpm2b()?.to_vec(),
                e,
            }
        }
        ALG_ECC => {
            let curve = r.u16()?;
            let kdf = r.u16()?;
            if kdf != ALG_NULL {
                r.u16()?;
            }
            PublicKey::Ecc {
                curve,
                x: r.tpm2b()?.to_vec(),
                y: r.tpm2b()?.to_vec(),
            }
        }
        t => return Err(AttestError::Unsupported(format!("TPM key type {t:#x}"))),
    };
    r.done()?;
    Ok(Public {
        raw: b.to_vec(),
        name_alg,
        attributes,
        auth_policy,
        key,
    })
}

/// Parses a TPM2B_PUBLIC (a size-prefixed TPMT_PUBLIC, as `TPM2_ReadPublic` returns it).
pub fn parse_public_2b(b: &[u8]) -> Result<Public, AttestError> {
    let mut r = R::new(b, "TPM2B_PUBLIC");
    let inner = r.tpm2b()?;
    r.done()?;
    parse_public(inner)
}

/// The digest algorithm for a TPM hash ID.
pub fn hash_alg(id: u16) -> Option<&'static digest::Algorithm> {
    match id {
        ALG_SHA1 => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        ALG_SHA256 => Some(&digest::SHA256),
        ALG_SHA384 => Some(&digest::SHA384),
        ALG_SHA512 => Some(&digest::SHA512),
        _ => None,
    }
}

/// The bank name of a TPM hash ID.
pub fn bank_name(id: u16) -> &'static str {
    match id {
        ALG_SHA1 => "sha1",
        ALG_SHA256 => "sha256",
        ALG_SHA384 => "sha384",
        ALG_SHA512 => "sha512",
        _ => "unknown",
    }
}

/// TPMA_OBJECT bits (TPM 2.0 Part 2, §8.3).
pub mod attr {
    /// The key cannot be duplicated out of this TPM.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// The key cannot be duplicated under another parent.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// The TPM generated the private part (it was never outside).
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// The key signs only TPM-generated structures (quotes, certifications), never chosen data.
    pub const RESTRICTED: u32 = 1 << 16;
    /// The key may be used with its auth value alone (without satisfying its policy).
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// The key decrypts.
    pub const DECRYPT: u32 = 1 << 17;
    /// The key signs.
    pub const SIGN: u32 = 1 << 18;
}

impl Public {
    /// Checks that this is an attestation key: a restricted signing key (so it signs only
    /// TPM-made quotes, never a structure someone composed), made inside the TPM and bound to
    /// it (fixedTPM, fixedParent, sensitiveDataOrigin), and not a decryption key. An
    /// unrestricted key bound to a genuine EK could sign a hand-made quote with chosen PCRs.
    pub fn check_attestation_key(&self) -> Result<(), AttestError> {
        use attr::*;
        let need = [
            (RESTRICTED, "restricted"),
            (SIGN, "sign"),
            (FIXED_TPM, "fixedTPM"),
            (FIXED_PARENT, "fixedParent"),
            (SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
        ];
        let missing: Vec<&str> = need
            .iter()
            .filter(|(bit, _)| self.attributes & bit == 0)
            .map(|(_, name)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(AttestError::BindingInvalid(format!(
                "the attestation key is not a restricted signing key bound to the TPM (missing {}); create it with `tpm2_createak` or with attributes fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
                missing.join(", ")
            )));
        }
        if self.attributes & DECRYPT != 0 {
            return Err(AttestError::BindingInvalid(
                "the attestation key is also a decryption key; an AK only signs".into(),
            ));
        }
        Ok(())
    }

    /// The TPM name: nameAlg ‖ H(TPMT_PUBLIC).
    pub fn name(&self) -> Result<Vec<u8>, AttestError> {
        let alg = hash_alg(self.name_alg)
            .ok_or_else(|| AttestError::Unsupported("AK name algorithm".into()))?;
        let mut out = self.name_alg.to_be_bytes().to_vec();
        out.extend_from_slice(digest::digest(alg, &self.raw).as_ref());
        Ok(out)
    }
}

fn pad(v: &[u8], n: usize) -> Vec<u8> {
    let v = v.get(v.len().saturating_sub(n)..).unwrap_or_default();
    let mut out = vec![0; n - v.len()];
    out.extend_from_slice(v);
    out
}

/// Verifies a TPMT_SIGNATURE over `msg` with `key`; returns the signature's hash algorithm.
pub fn verify_signature(key: &PublicKey, sig: &[u8], msg: &[u8]) -> Result<u16, AttestError> {
    let mut r = R::new(sig, "TPMT_SIGNATURE");
    let alg = r.u16()?;
    let hash = r.u16()?;
    let bad = || {
        AttestError::SignatureInvalid(
            "the quote signature does not verify with the attestation key".into(),
        )
    };
    let ok = match (alg, key) {
        (ALG_RSASSA | ALG_RSAPSS, PublicKey::Rsa { n, e }) => {
            let s = r.tpm2b()?;
            let params: &'static signature::RsaParameters = match (alg, hash) {
                (ALG_RSASSA, ALG_SHA256) => &signature::RSA_PKCS1_2048_8192_SHA256,
                (ALG_RSASSA, ALG_SHA384) => &signature::RSA_PKCS1_2048_8192_SHA384,
                (ALG_RSASSA, ALG_SHA512) => &signature::RSA_PKCS1_2048_8192_SHA512,
                (ALG_RSASSA, ALG_SHA1) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                (ALG_RSAPSS, ALG_SHA256) => &signature::RSA_PSS_2048_8192_SHA256,
                (ALG_RSAPSS, ALG_SHA384) => &signature::RSA_PSS_2048_8192_SHA384,
                (ALG_RSAPSS, ALG_SHA512) => &signature::RSA_PSS_2048_8192_SHA512,
                _ => {
                    return Err(AttestError::Unsupported(format!(
                        "signature scheme {alg:#x} with hash {hash:#x}"
                    )));
                }
            };
            let e = e.to_be_bytes();
            let first = e.iter().position(|b| *b != 0).unwrap_or(3);
            PublicKeyComponents {
                n: n.as_slice(),
                e: e.get(first..).unwrap_or(&e),
            }
            .verify(params, msg, s)
            .is_ok()
        }
        (ALG_ECDSA, PublicKey::Ecc { curve, x, y }) => {
            let (rr, ss) = (r.tpm2b()?, r.tpm2b()?);
            let (size, verifier): (usize, &'static signature::EcdsaVerificationAlgorithm) =
                match (curve, hash) {
                    (3, ALG_SHA256) => (32, &signature::ECDSA_P256_SHA256_FIXED),
                    (4, ALG_SHA384) => (48, &signature::ECDSA_P384_SHA384_FIXED),
                    _ => {
                        return Err(AttestError::Unsupported(format!(
                            "ECDSA on curve {curve} with hash {hash:#x}"
                        )));
                    }
                };
            if rr.len() > size || ss.len() > size || x.len() > size || y.len() > size {
                return Err(bad());
            }
            let mut point = vec![4];
            point.extend(pad(x, size));
            point.extend(pad(y, size));
            let mut fixed = pad(rr, size);
            fixed.extend(pad(ss, size));
            signature::UnparsedPublicKey::new(verifier, &point)
                .verify(msg, &fixed)
                .is_ok()
        }
        _ => {
            return Err(AttestError::SignatureInvalid(
                "the signature scheme does not fit the attestation key".into(),
            ));
        }
    };
    r.done()?;
    if ok { Ok(hash) } else { Err(bad()) }
}
