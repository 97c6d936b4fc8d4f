//! The one DER writer: just what Sovra builds itself (an RSA SubjectPublicKeyInfo from a JWK or
//! a TPM public area). Everything Sovra parses goes through x509-parser or aws-lc-rs.

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
