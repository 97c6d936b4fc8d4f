//! The one DER writer: just what Sovra builds itself (an RSA SubjectPublicKeyInfo from a JWK or
//! a TPM public area), and the reverse of one of them: an ECDSA signature's DER back to the
//! raw `r ‖ s` JWS wants. Everything else Sovra parses goes through x509-parser or aws-lc-rs.

/// Appends the DER length `n`.
pub fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// A DER TLV.
pub fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// A DER INTEGER of the unsigned big-endian `b`.
pub fn der_uint(b: &[u8]) -> Vec<u8> {
    let b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
    let mut body = Vec::with_capacity(b.len() + 1);
    if b.first().is_none_or(|x| x & 0x80 != 0) {
        body.push(0);
    }
    body.extend(b);
    der(0x02, &body)
}

/// The X.509 SubjectPublicKeyInfo (DER) of the RSA key (n, e), big-endian bytes.
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut rsa = der_uint(n);
    rsa.extend(der_uint(e));
    let rsa = der(0x30, &rsa);
    // AlgorithmIdentifier { rsaEncryption, NULL }
    let alg: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend(rsa);
    let mut body = alg.to_vec();
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// The DER OID of P-256 (`prime256v1`), as PKCS#11's `CKA_EC_PARAMS` names the curve.
pub const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The DER OID of P-384 (`secp384r1`).
pub const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// The DER OID of Ed25519 (`id-Ed25519`, RFC 8410).
pub const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn spki(alg_id_body: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
    let mut body = der(0x30, alg_id_body);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// The SubjectPublicKeyInfo of an EC key on the curve `curve_oid` (DER) with the uncompressed
/// point `point`.
pub fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
    // id-ecPublicKey 1.2.840.10045.2.1
    let mut alg = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    alg.extend_from_slice(curve_oid);
    spki(&alg, point)
}

/// The PKCS#8 `PrivateKeyInfo` of an RSA key from its parts (a JWK's `n`, `e`, `d`, `p`, `q`,
/// `dp`, `dq`, `qi`, big-endian), for import: whether the parts make a key is for the loader
/// to check.
pub fn rsa_pkcs8(parts: [&[u8]; 8]) -> crate::SecretBytes {
    let mut body = der_uint(&[0]);
    for part in parts {
        body.extend(der_uint(part));
    }
    let rsa = der(0x30, &body);
    let alg: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut info = der_uint(&[0]);
    info.extend_from_slice(alg);
    info.extend(der(0x04, &rsa));
    crate::SecretBytes::new(der(0x30, &info))
}

/// The PKCS#8 `PrivateKeyInfo` of an EC key on `curve_oid` from its private scalar `d` and its
/// uncompressed public point.
pub fn ec_pkcs8(curve_oid: &[u8], d: &[u8], point: &[u8]) -> crate::SecretBytes {
    // ECPrivateKey { version 1, privateKey, [1] publicKey }
    let mut ec = der_uint(&[1]);
    ec.extend(der(0x04, d));
    let mut bits = vec![0u8];
    bits.extend_from_slice(point);
    ec.extend(der(0xa1, &der(0x03, &bits)));
    let mut alg = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    alg.extend_from_slice(curve_oid);
    let mut info = der_uint(&[0]);
    info.extend(der(0x30, &alg));
    info.extend(der(0x04, &der(0x30, &ec)));
    crate::SecretBytes::new(der(0x30, &info))
}

/// The SubjectPublicKeyInfo of the Ed25519 public key `key` (32 bytes).
pub fn ed25519_spki(key: &[u8]) -> Vec<u8> {
    spki(OID_ED25519, key)
}

/// The DER `ECDSA-Sig-Value` of a raw `r ‖ s` signature (halves of equal length).
pub fn ecdsa_sig_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der_uint(r);
    body.extend(der_uint(s));
    Some(der(0x30, &body))
}

/// Reads one DER TLV of `tag` at the start of `b`: its body and what follows it.
fn read_tlv(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = b.split_first()?;
    let (&l, rest) = rest.split_first()?;
    if t != tag {
        return None;
    }
    let (len, rest) = if l < 0x80 {
        (usize::from(l), rest)
    } else {
        let n = usize::from(l & 0x7f);
        if n == 0 || n > 2 {
            return None;
        }
        let (lb, rest) = rest.split_at_checked(n)?;
        (
            lb.iter().fold(0usize, |a, x| (a << 8) | usize::from(*x)),
            rest,
        )
    };
    rest.split_at_checked(len)
}

/// The raw `r ‖ s` (each half `width` bytes, big-endian) of a DER `ECDSA-Sig-Value`; `None`
/// if it is not one or an integer is wider than `width`.
pub fn ecdsa_sig_raw(sig: &[u8], width: usize) -> Option<Vec<u8>> {
    let (body, rest) = read_tlv(sig, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, body) = read_tlv(body, 0x02)?;
    let (s, body) = read_tlv(body, 0x02)?;
    if !body.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(width * 2);
    for int in [r, s] {
        let v: &[u8] = match int.split_first() {
            Some((0, tail)) => tail,
            _ => int,
        };
        if v.len() > width {
            return None;
        }
        out.resize(out.len() + width - v.len(), 0);
        out.extend_from_slice(v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};

    #[test]
    fn ec_spki_and_signature_match_aws_lc() {
        let kp = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let spki = ec_spki(OID_P256, &point);
        use aws_lc_rs::encoding::AsDer;
        assert_eq!(spki, kp.public_key().as_der().unwrap().as_ref());
        let raw = kp
            .sign(&aws_lc_rs::rand::SystemRandom::new(), b"m")
            .unwrap();
        let der = ecdsa_sig_der(raw.as_ref()).unwrap();
        signature::ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &spki)
            .unwrap()
            .verify_sig(b"m", &der)
            .unwrap();
        assert!(ecdsa_sig_der(&[1, 2, 3]).is_none());
        assert_eq!(ecdsa_sig_raw(&der, 32).unwrap(), raw.as_ref());
    }

    #[test]
    fn der_signatures_of_every_width_come_back_raw() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        for (asn1, width) in [
            (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, 32),
            (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, 48),
        ] {
            let kp = EcdsaKeyPair::generate(asn1).unwrap();
            // Short r or s (a leading zero byte dropped) happen about once in 128 signatures.
            for _ in 0..300 {
                let der = kp.sign(&rng, b"m").unwrap();
                let raw = ecdsa_sig_raw(der.as_ref(), width).unwrap();
                assert_eq!(raw.len(), 2 * width);
                assert_eq!(ecdsa_sig_der(&raw).unwrap(), der.as_ref());
            }
        }
        assert!(ecdsa_sig_raw(&[0x30, 0x03, 0x02, 0x01, 0x01], 32).is_none());
        assert!(
            ecdsa_sig_raw(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00], 32).is_none()
        );
        assert!(ecdsa_sig_raw(&[0x31, 0x00], 32).is_none());
        assert!(ecdsa_sig_raw(&[], 32).is_none());
    }

    #[test]
    fn pkcs8_from_parts_loads_as_the_same_key() {
        use sovra_proto::kms::Algorithm;
        // EC: the parts of a generated key rebuild a PKCS#8 that aws-lc-rs reads as that key.
        let pkcs8 = crate::generate(Algorithm::EcSignP256Sha256).unwrap();
        let k =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.expose())
                .unwrap();
        let point = k.public_key().as_ref().to_vec();
        use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
        let d: EcPrivateKeyBin = k.private_key().as_be_bytes().unwrap();
        let rebuilt = ec_pkcs8(OID_P256, d.as_ref(), &point);
        let again =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, rebuilt.expose())
                .unwrap();
        assert_eq!(again.public_key().as_ref(), point.as_slice());
        // A point that is not the scalar's is refused by the loader.
        let mut other = point.clone();
        other[10] ^= 1;
        assert!(
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                ec_pkcs8(OID_P256, d.as_ref(), &other).expose()
            )
            .is_err()
        );
    }
}
