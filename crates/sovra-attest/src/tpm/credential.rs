//! Credential activation, the server side (TPM 2.0 Part 1, §24 "Credential Protection"):
//! MakeCredential binds a secret to an attestation key's name and encrypts it to an
//! endorsement key, so that only the TPM that holds that EK, and has that AK loaded, can recover
//! it with TPM2_ActivateCredential. This is how a server trusts an AK of a genuine TPM (its EK
//! certificate chains to the manufacturer) without an AK certificate.

use super::structs::{Public, PublicKey, hash_alg};
use crate::error::AttestError;
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};

/// The result of MakeCredential, each as the TPM marshals it (TPM2B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeCredential {
    /// TPM2B_ID_OBJECT: integrity HMAC and the encrypted credential.
    pub credential_blob: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP-encrypted to the EK.
    pub secret: Vec<u8>,
}

impl MadeCredential {
    /// The file `tpm2_makecredential` writes (and `tpm2_activatecredential -i` reads): magic
    /// 0xBADCC0DE, version 1, then the two TPM2Bs.
    pub fn tpm2_tools_file(&self) -> Vec<u8> {
        let mut out = 0xBADC_C0DEu32.to_be_bytes().to_vec();
        out.extend(1u32.to_be_bytes());
        out.extend(&self.credential_blob);
        out.extend(&self.secret);
        out
    }
}

fn tpm2b(b: &[u8]) -> Result<Vec<u8>, AttestError> {
    let n = u16::try_from(b.len()).map_err(|_| AttestError::malformed("TPM2B too large"))?;
    let mut out = n.to_be_bytes().to_vec();
    out.extend_from_slice(b);
    Ok(out)
}

/// KDFa (TPM 2.0 Part 1, §11.4.10.2): counter-mode HMAC key derivation.
pub fn kdfa(
    alg: &'static aws_lc_rs::digest::Algorithm,
    key: &[u8],
    label: &str,
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Vec<u8> {
    let hmac_alg = if alg == &aws_lc_rs::digest::SHA384 {
        hmac::HMAC_SHA384
    } else {
        hmac::HMAC_SHA256
    };
    let k = hmac::Key::new(hmac_alg, key);
    let want = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(want + 64);
    let mut counter = 1u32;
    while out.len() < want {
        let mut ctx = hmac::Context::with_key(&k);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter += 1;
    }
    out.truncate(want);
    out
}

/// The EK's symmetric algorithm key size in bits (from its TPMT_PUBLIC), AES-128 by default.
fn ek_sym_bits(ek: &Public) -> u32 {
    // The symmetric definition follows authPolicy: type, nameAlg, attributes, authPolicy.
    let raw = &ek.raw;
    let policy_len = raw
        .get(8..10)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(|b| usize::from(u16::from_be_bytes(b)))
        .unwrap_or(0);
    let at = 10 + policy_len;
    match raw.get(at..at + 4) {
        Some([0x00, 0x06, hi, lo]) => u32::from(u16::from_be_bytes([*hi, *lo])),
        _ => 128,
    }
}

/// MakeCredential for an RSA EK (`ek`), the AK name `ak_name` and `credential` (at most the
/// digest size of the EK's name algorithm).
pub fn make_credential(
    ek: &Public,
    ak_name: &[u8],
    credential: &[u8],
) -> Result<MadeCredential, AttestError> {
    let alg = hash_alg(ek.name_alg)
        .ok_or_else(|| AttestError::Unsupported("EK name algorithm".into()))?;
    let digest_len = alg.output_len();
    if credential.is_empty() || credential.len() > digest_len {
        return Err(AttestError::malformed(format!(
            "a credential is 1..{digest_len} bytes"
        )));
    }
    let PublicKey::Rsa { n, e } = &ek.key else {
        return Err(AttestError::Unsupported(
            "only RSA endorsement keys are supported".into(),
        ));
    };
    if ek.name_alg != super::structs::ALG_SHA256 {
        return Err(AttestError::Unsupported(
            "only EKs with SHA-256 names are supported".into(),
        ));
    }
    // Seed, encrypted to the EK with OAEP and the label "IDENTITY".
    let mut seed = vec![0u8; digest_len];
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| AttestError::malformed("no randomness"))?;
    let spki = sovra_crypto::der::rsa_spki(n, &e.to_be_bytes());
    let public = PublicEncryptingKey::from_der(&spki)
        .map_err(|_| AttestError::malformed("the EK is not a usable RSA key"))?;
    let oaep = OaepPublicEncryptingKey::new(public)
        .map_err(|_| AttestError::malformed("the EK is not a usable RSA key"))?;
    let mut enc_seed = vec![0u8; oaep.ciphertext_size()];
    let len = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &seed,
            &mut enc_seed,
            Some(b"IDENTITY\0"),
        )
        .map_err(|_| AttestError::malformed("OAEP encryption to the EK failed"))?
        .len();
    enc_seed.truncate(len);
    // The credential, encrypted with a key derived from the seed and bound to the AK name.
    let sym_bits = ek_sym_bits(ek);
    let sym_key = kdfa(alg, &seed, "STORAGE", ak_name, &[], sym_bits);
    let mut enc_identity = tpm2b(credential)?;
    let cipher = if sym_bits == 256 { &AES_256 } else { &AES_128 };
    let key = EncryptingKey::cfb128(
        UnboundCipherKey::new(cipher, &sym_key)
            .map_err(|_| AttestError::malformed("symmetric key"))?,
    )
    .map_err(|_| AttestError::malformed("symmetric key"))?;
    key.less_safe_encrypt(
        &mut enc_identity,
        EncryptionContext::Iv128(FixedLength::from([0u8; 16])),
    )
    .map_err(|_| AttestError::malformed("symmetric encryption failed"))?;
    // Outer integrity: HMAC over the encrypted credential and the AK name.
    let hmac_key = kdfa(alg, &seed, "INTEGRITY", &[], &[], (digest_len * 8) as u32);
    let k = hmac::Key::new(hmac::HMAC_SHA256, &hmac_key);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(&enc_identity);
    ctx.update(ak_name);
    let outer = ctx.sign();
    let mut id_object = tpm2b(outer.as_ref())?;
    id_object.extend(enc_identity);
    Ok(MadeCredential {
        credential_blob: tpm2b(&id_object)?,
        secret: tpm2b(&enc_seed)?,
    })
}
