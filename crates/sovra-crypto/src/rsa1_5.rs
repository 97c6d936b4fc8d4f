//! RSAES-PKCS1-v1_5 decryption (Key Vault's `RSA1_5`) with implicit rejection: a ciphertext
//! whose decryption is not a well-formed PKCS#1 v1.5 block does not fail; it decrypts to a
//! synthetic message derived from the ciphertext and a secret only the key's holder has. The
//! caller cannot tell a malformed block from a well-formed one, so the decryption is no
//! padding oracle (Bleichenbacher). The construction follows the CFRG's guidance on implicit
//! rejection (draft-irtf-cfrg-rsa-guidance): a key-derivation key HMAC-SHA256(secret,
//! ciphertext), a synthetic length drawn from it below the largest message the key carries, and
//! the synthetic message from it; the block itself is checked without branches on its bytes.

use crate::SecretBytes;
use aws_lc_rs::hmac;

/// Domain separation of the secret a key derives for implicit rejection.
pub const SECRET_LABEL: &[u8] = b"sovra:rsa1_5-implicit-rejection:v1";

/// `HMAC(kdk, i ‖ label ‖ bits)` blocks, `n` bytes of them.
fn prf(kdk: &hmac::Key, label: &[u8], n: usize) -> Vec<u8> {
    let bits = u16::try_from(n * 8).unwrap_or(u16::MAX).to_be_bytes();
    let mut out = Vec::with_capacity(n + 32);
    let mut i: u16 = 0;
    while out.len() < n {
        let mut ctx = hmac::Context::with_key(kdk);
        ctx.update(&i.to_be_bytes());
        ctx.update(label);
        ctx.update(&bits);
        out.extend_from_slice(ctx.sign().as_ref());
        i = i.wrapping_add(1);
    }
    out.truncate(n);
    out
}

/// 0xff when `a == b`, else 0, without a branch.
fn ct_eq_mask(a: usize, b: usize) -> usize {
    let x = a ^ b;
    // x == 0 ⇔ (x | -x) has its top bit clear.
    let top = (x | x.wrapping_neg()) >> (usize::BITS - 1);
    top.wrapping_sub(1)
}

/// 0xff.. when `a < b`, else 0, without a branch (a, b < 2^63).
fn ct_lt_mask(a: usize, b: usize) -> usize {
    (a.wrapping_sub(b) >> (usize::BITS - 1)).wrapping_neg()
}

/// The synthetic message of `ciphertext` for a `k`-byte key under `secret`.
pub fn synthetic(secret: &[u8], ciphertext: &[u8], k: usize) -> SecretBytes {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut padded = vec![0u8; k.saturating_sub(ciphertext.len())];
    padded.extend_from_slice(ciphertext);
    let kdk = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&key, &padded).as_ref());
    let max = k.saturating_sub(11);
    // Candidate lengths, masked to the smallest power of two above `max`; the last one not
    // above `max` is taken (uniform over 0..=max), 0 if none is.
    let mask = (max + 1).next_power_of_two() - 1;
    let cands = prf(&kdk, b"length", 256);
    let mut len = 0usize;
    for c in cands.chunks_exact(2) {
        let v = usize::from(u16::from_be_bytes(c.try_into().unwrap_or_default())) & mask;
        let ok = ct_lt_mask(v, max + 1);
        len = (v & ok) | (len & !ok);
    }
    let msg = SecretBytes::new(prf(&kdk, b"message", k));
    SecretBytes::from_slice(msg.expose().get(k - len..).unwrap_or_default())
}

/// The message of a raw RSA decryption `em` (`k` bytes, `00 02 PS 00 M` with at least eight
/// non-zero PS bytes), or, when it is not one, the synthetic message of `ciphertext`. The block
/// is examined in full whatever its bytes.
pub fn unpad_or_synthetic(secret: &[u8], ciphertext: &[u8], em: &[u8]) -> SecretBytes {
    let k = em.len();
    let fake = synthetic(secret, ciphertext, k);
    let fake = fake.expose();
    let mut good = ct_eq_mask(usize::from(em.first().copied().unwrap_or(1)), 0)
        & ct_eq_mask(usize::from(em.get(1).copied().unwrap_or(0)), 2);
    // The first zero after the two header bytes ends PS.
    let mut zero_at = 0usize;
    let mut found = 0usize;
    for (i, b) in em.iter().enumerate().skip(2) {
        let is_zero = ct_eq_mask(usize::from(*b), 0);
        let first = is_zero & !found;
        zero_at = (i & first) | (zero_at & !first);
        found |= is_zero;
    }
    good &= found;
    // PS is at least 8 bytes: the separator is at index 10 or later.
    good &= !ct_lt_mask(zero_at, 10);
    let real_len = k.saturating_sub(zero_at + 1);
    let len = (real_len & good) | (fake.len() & !good);
    // Both candidates, right-aligned in a k-byte buffer, selected byte by byte.
    let sel = (good & 0xff) as u8;
    let mut out = SecretBytes::new(vec![0u8; k]);
    let fake_off = k - fake.len();
    for (i, (o, e)) in out.expose_mut().iter_mut().zip(em).enumerate() {
        let f = if i >= fake_off {
            fake.get(i - fake_off).copied().unwrap_or(0)
        } else {
            0
        };
        *o = (e & sel) | (f & !sel);
    }
    SecretBytes::from_slice(out.expose().get(k - len..).unwrap_or_default())
}

/// As [`unpad_or_synthetic`] for a backend that unpads itself: `decrypted` is its result
/// (`None` when it found the block malformed); the synthetic message is computed either way.
pub fn or_synthetic(
    secret: &[u8],
    ciphertext: &[u8],
    k: usize,
    decrypted: Option<SecretBytes>,
) -> SecretBytes {
    let fake = synthetic(secret, ciphertext, k);
    decrypted.unwrap_or(fake)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ps: usize, msg: &[u8], k: usize) -> Vec<u8> {
        let mut b = vec![0, 2];
        b.extend(std::iter::repeat_n(0x5a, ps));
        b.push(0);
        b.extend_from_slice(msg);
        assert_eq!(b.len(), k);
        b
    }

    #[test]
    fn a_well_formed_block_gives_its_message() {
        let k = 64;
        let em = block(k - 3 - 16, b"sixteen byte key", k);
        assert_eq!(
            unpad_or_synthetic(b"s", b"c", &em).expose(),
            b"sixteen byte key"
        );
        let empty = block(k - 3, b"", k);
        assert_eq!(unpad_or_synthetic(b"s", b"c", &empty).expose(), b"");
    }

    #[test]
    fn a_malformed_block_gives_a_stable_secret_keyed_synthetic_message() {
        let k = 64;
        let good = block(k - 3 - 16, b"sixteen byte key", k);
        let mut bads = Vec::new();
        let mut b = good.clone();
        b[0] = 1;
        bads.push(b);
        let mut b = good.clone();
        b[1] = 1;
        bads.push(b);
        bads.push(block(7, &[0x33; 54], k)); // PS of 7 bytes
        bads.push({
            let mut b = vec![0, 2];
            b.extend([0x11; 62]); // no separator
            b
        });
        for em in &bads {
            let a = unpad_or_synthetic(b"secret", b"ciphertext", em);
            assert!(a.expose().len() <= k - 11);
            assert_eq!(a, synthetic(b"secret", b"ciphertext", k));
            // Deterministic, and keyed: another secret or ciphertext, another message.
            assert_eq!(
                a.expose(),
                unpad_or_synthetic(b"secret", b"ciphertext", em).expose()
            );
            assert_ne!(
                synthetic(b"secret", b"ciphertext", k),
                synthetic(b"other", b"ciphertext", k)
            );
            assert_ne!(
                synthetic(b"secret", b"ciphertext", k),
                synthetic(b"secret", b"ciphertexu", k)
            );
        }
        // PS of exactly 8 bytes is well formed.
        let em = block(8, &[0x44; 53], k);
        assert_eq!(unpad_or_synthetic(b"s", b"c", &em).expose(), &[0x44; 53]);
    }

    #[test]
    fn synthetic_lengths_cover_the_range() {
        let k = 256;
        let lens: std::collections::BTreeSet<usize> = (0u32..400)
            .map(|i| synthetic(b"secret", &i.to_be_bytes(), k).len())
            .collect();
        assert!(lens.iter().all(|l| *l <= k - 11));
        assert!(lens.len() > 150, "{}", lens.len());
    }
}
