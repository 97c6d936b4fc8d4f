//! A TPM key certified by an attestation key (`TPM2_Certify`): the proof that a decryption key
//! lives in the same TPM as the AK, can never leave it, and decrypts only while the PCRs hold
//! the values a quote attested. Azure's guest attestation seals its token to such a key.
//!
//! Checks: the key is RSA (2048–4096 bits, exponent 65537), a plain decryption key (not restricted, not
//! signing) created inside the TPM and bound to it (fixedTPM, fixedParent,
//! sensitiveDataOrigin); it cannot be used with its auth value alone (userWithAuth clear), only
//! through its policy, and that policy is exactly `TPM2_PolicyPCR` over the quoted selection
//! and values; the certification is a genuine TPMS_ATTEST of type CERTIFY signed by the AK,
//! naming this key, as a primary object of the NULL hierarchy (so it is gone at the next TPM
//! reset).

use super::structs::{self, MAGIC, Public, PublicKey, R, Selection, attr, hash_alg};
use crate::error::AttestError;
use aws_lc_rs::digest;
use std::collections::BTreeMap;

/// TPM_ST_ATTEST_CERTIFY.
const ST_ATTEST_CERTIFY: u16 = 0x8017;
/// TPM_CC_PolicyPCR.
const CC_POLICY_PCR: u32 = 0x0000_017F;
/// TPM_RH_NULL: the Qualified Name of the NULL hierarchy.
const RH_NULL: u32 = 0x4000_0007;

/// A parsed TPMS_ATTEST of type CERTIFY.
#[derive(Debug, Clone)]
pub struct CertifyInfo {
    /// The raw bytes (what the signature covers).
    pub raw: Vec<u8>,
    /// Caller data.
    pub extra_data: Vec<u8>,
    /// TPM reset count when it was made.
    pub reset_count: u32,
    /// Name of the certified object.
    pub name: Vec<u8>,
    /// Qualified Name of the certified object.
    pub qualified_name: Vec<u8>,
}

/// Parses a TPMS_ATTEST that must be a certification.
pub fn parse_certify(b: &[u8]) -> Result<CertifyInfo, AttestError> {
    let mut r = R::new(b, "TPMS_ATTEST (certify)");
    if r.u32()? != MAGIC {
        return Err(AttestError::malformed(
            "the certification's magic is not TPM_GENERATED_VALUE: not made by a TPM",
        ));
    }
    if r.u16()? != ST_ATTEST_CERTIFY {
        return Err(AttestError::BindingInvalid(
            "the key certification is not a TPM2_Certify attestation".into(),
        ));
    }
    r.tpm2b()?; // qualifiedSigner
    let extra_data = r.tpm2b()?.to_vec();
    r.u64()?; // clock
    let reset_count = r.u32()?;
    r.u32()?; // restartCount
    r.u8()?; // safe
    r.u64()?; // firmwareVersion
    let name = r.tpm2b()?.to_vec();
    let qualified_name = r.tpm2b()?.to_vec();
    r.done()?;
    Ok(CertifyInfo {
        raw: b.to_vec(),
        extra_data,
        reset_count,
        name,
        qualified_name,
    })
}

fn hash(alg: u16) -> Result<&'static digest::Algorithm, AttestError> {
    hash_alg(alg).ok_or_else(|| AttestError::Unsupported(format!("TPM hash algorithm {alg:#x}")))
}

/// The policy digest `TPM2_PolicyPCR` leaves in a fresh session of hash `name_alg` for the PCR
/// `selections` holding `values` (index → value, in the selection's bank).
pub fn policy_pcr(
    name_alg: u16,
    selections: &[Selection],
    values: &BTreeMap<u32, Vec<u8>>,
) -> Result<Vec<u8>, AttestError> {
    let h = hash(name_alg)?;
    let mut pcr_digest = digest::Context::new(h);
    let mut tpml = (selections.len() as u32).to_be_bytes().to_vec();
    for s in selections {
        tpml.extend_from_slice(&s.hash.to_be_bytes());
        tpml.push(s.size_of_select);
        let mut bitmap = vec![0u8; usize::from(s.size_of_select)];
        for i in &s.pcrs {
            let byte = bitmap
                .get_mut((*i / 8) as usize)
                .ok_or_else(|| AttestError::malformed("PCR index outside its selection"))?;
            *byte |= 1 << (i % 8);
            let v = values.get(i).ok_or_else(|| {
                AttestError::BindingInvalid(format!("the value of quoted PCR {i} is missing"))
            })?;
            pcr_digest.update(v);
        }
        tpml.extend_from_slice(&bitmap);
    }
    let mut ctx = digest::Context::new(h);
    ctx.update(&vec![0u8; h.output_len()]);
    ctx.update(&CC_POLICY_PCR.to_be_bytes());
    ctx.update(&tpml);
    ctx.update(pcr_digest.finish().as_ref());
    Ok(ctx.finish().as_ref().to_vec())
}

/// The Qualified Name of `name` as a primary object of the NULL hierarchy.
fn null_hierarchy_qualified_name(name_alg: u16, name: &[u8]) -> Result<Vec<u8>, AttestError> {
    let mut ctx = digest::Context::new(hash(name_alg)?);
    ctx.update(&RH_NULL.to_be_bytes());
    ctx.update(name);
    let mut out = name_alg.to_be_bytes().to_vec();
    out.extend_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// The AK's certification of a decryption key, as sent: the key (TPM2B_PUBLIC), the
/// TPMS_ATTEST and its signature (TPMT_SIGNATURE).
#[derive(Debug, Clone, Copy)]
pub struct Certified<'a> {
    /// TPM2B_PUBLIC of the key.
    pub public: &'a [u8],
    /// TPMS_ATTEST of type CERTIFY.
    pub info: &'a [u8],
    /// TPMT_SIGNATURE by the AK over `info`.
    pub signature: &'a [u8],
}

/// Checks that `c` certifies a PCR-bound decryption key of the AK's TPM (see the module) for
/// the quoted `selections` and `values`; returns the key's RSA modulus and exponent.
pub fn verify_sealing_key(
    ak: &Public,
    c: Certified<'_>,
    selections: &[Selection],
    values: &BTreeMap<u32, Vec<u8>>,
) -> Result<(Vec<u8>, u32), AttestError> {
    let key = structs::parse_public_2b(c.public)?;
    let PublicKey::Rsa { n, e } = &key.key else {
        return Err(AttestError::Unsupported(
            "the encryption key must be an RSA key".into(),
        ));
    };
    // What a token can be sealed to: RSA 2048-4096 with the usual exponent (a TPM's 0).
    if !(256..=512).contains(&n.len()) || n.first().is_none_or(|b| *b < 0x80) || *e != 65537 {
        return Err(AttestError::BindingInvalid(format!(
            "the encryption key is {} bits with exponent {e}; it must be RSA 2048-4096 with exponent 65537",
            n.len() * 8
        )));
    }
    use attr::*;
    let missing: Vec<&str> = [
        (DECRYPT, "decrypt"),
        (FIXED_TPM, "fixedTPM"),
        (FIXED_PARENT, "fixedParent"),
        (SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
    ]
    .iter()
    .filter(|(bit, _)| key.attributes & bit == 0)
    .map(|(_, name)| *name)
    .collect();
    let forbidden: Vec<&str> = [
        (SIGN, "sign"),
        (RESTRICTED, "restricted"),
        (USER_WITH_AUTH, "userWithAuth"),
    ]
    .iter()
    .filter(|(bit, _)| key.attributes & bit != 0)
    .map(|(_, name)| *name)
    .collect();
    if !missing.is_empty() || !forbidden.is_empty() {
        return Err(AttestError::BindingInvalid(format!(
            "the encryption key must be a decryption key made in and bound to the TPM and usable only through its PCR policy (attributes decrypt|fixedtpm|fixedparent|sensitivedataorigin|noda); missing [{}], must not have [{}]",
            missing.join(", "),
            forbidden.join(", ")
        )));
    }
    let info = parse_certify(c.info)?;
    structs::verify_signature(&ak.key, c.signature, &info.raw).map_err(|e| match e {
        AttestError::SignatureInvalid(_) => AttestError::SignatureInvalid(
            "the encryption key's certification does not verify with the attestation key".into(),
        ),
        other => other,
    })?;
    let name = key.name()?;
    if info.name != name {
        return Err(AttestError::BindingInvalid(
            "the certification names another key than the encryption key sent".into(),
        ));
    }
    if info.qualified_name != null_hierarchy_qualified_name(key.name_alg, &name)? {
        return Err(AttestError::BindingInvalid(
            "the encryption key is not a primary key of the NULL hierarchy (an ephemeral key, gone at the next TPM reset)".into(),
        ));
    }
    if key.auth_policy != policy_pcr(key.name_alg, selections, values)? {
        return Err(AttestError::BindingInvalid(
            "the encryption key's policy is not TPM2_PolicyPCR over the quoted PCRs and values: the TPM would decrypt in another state".into(),
        ));
    }
    Ok((n.clone(), *e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TPM2B_PUBLIC of an RSA decryption key with `attrs`, modulus `n` and exponent `e`.
    fn rsa_public(attrs: u32, n: &[u8], e: u32) -> Vec<u8> {
        let mut t = vec![0x00, 0x01, 0x00, 0x0B];
        t.extend_from_slice(&attrs.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0x00, 0x10, 0x00, 0x10]);
        t.extend_from_slice(&((n.len() * 8) as u16).to_be_bytes());
        t.extend_from_slice(&e.to_be_bytes());
        t.extend_from_slice(&(n.len() as u16).to_be_bytes());
        t.extend_from_slice(n);
        let mut b = (t.len() as u16).to_be_bytes().to_vec();
        b.extend(t);
        b
    }

    #[test]
    fn only_a_tpm_bound_pcr_policy_rsa_key_of_usual_size_and_exponent_is_a_sealing_key() {
        use attr::*;
        let ak = structs::Public {
            raw: vec![],
            name_alg: structs::ALG_SHA256,
            attributes: 0,
            auth_policy: vec![],
            key: PublicKey::Rsa {
                n: vec![0xc1; 256],
                e: 65537,
            },
        };
        let good = DECRYPT | FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN;
        let check = |public: &[u8]| {
            verify_sealing_key(
                &ak,
                Certified {
                    public,
                    info: &[],
                    signature: &[],
                },
                &[],
                &BTreeMap::new(),
            )
            .unwrap_err()
            .to_string()
        };
        for (attrs, n, e, why) in [
            (good, vec![0xc1; 256], 3, "exponent 3"),
            (good, vec![0xc1; 128], 0, "1024 bits"),
            (good, vec![0xc1; 1024], 0, "8192 bits"),
            (good, vec![0x01; 256], 0, "2048 bits"),
            (good | USER_WITH_AUTH, vec![0xc1; 256], 0, "userWithAuth"),
            (good & !FIXED_TPM, vec![0xc1; 256], 0, "fixedTPM"),
            (good | SIGN, vec![0xc1; 256], 0, "sign"),
        ] {
            let msg = check(&rsa_public(attrs, &n, e));
            assert!(msg.contains("encryption key"), "{why}: {msg}");
            assert!(
                !msg.contains("certif"),
                "{why}: refused before the certification: {msg}"
            );
        }
        // A well-formed key gets as far as its certification.
        assert!(check(&rsa_public(good, &[0xc1; 256], 0)).contains("TPMS_ATTEST"));
    }
}
