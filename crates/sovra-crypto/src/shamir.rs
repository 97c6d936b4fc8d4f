//! Shamir's secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), byte by
//! byte: any `threshold` shares give the secret back; fewer give every secret of that length
//! with equal probability, so they reveal nothing about it.
//!
//! Field arithmetic runs in constant time (no tables indexed by secret bytes).

use crate::error::CryptoError;
use crate::secret::SecretBytes;

/// One share: its x coordinate (1..=255) and one y byte per secret byte.
#[derive(Clone)]
pub struct Share {
    /// The x coordinate, never 0 (the secret sits at x = 0).
    pub x: u8,
    /// The polynomial values at `x`, as long as the secret.
    pub y: SecretBytes,
}

impl Share {
    /// `x ‖ y`.
    pub fn to_bytes(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(1 + self.y.expose().len());
        out.push(self.x);
        out.extend_from_slice(self.y.expose());
        SecretBytes::new(out)
    }

    /// Reads `x ‖ y`.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        match b.split_first() {
            Some((&x, y)) if x != 0 && !y.is_empty() => Ok(Self {
                x,
                y: SecretBytes::new(y.to_vec()),
            }),
            _ => Err(CryptoError::Invalid("not a secret share")),
        }
    }
}

fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// a^254 = a^-1 (and 0 for 0).
fn inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    for _ in 0..8 {
        let m = mul(r, base);
        let take = 0u8.wrapping_sub(e & 1);
        r = (m & take) | (r & !take);
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// Splits `secret` into `n` shares (x = 1..=n), any `threshold` of which recover it.
pub fn split(secret: &[u8], threshold: u8, n: u8) -> Result<Vec<Share>, CryptoError> {
    if secret.is_empty() || threshold < 2 || threshold > n {
        return Err(CryptoError::Invalid(
            "secret sharing needs a secret and 2 <= threshold <= shares",
        ));
    }
    let degree = usize::from(threshold - 1);
    // Coefficients: for each byte, the secret then `degree` random bytes.
    let random = SecretBytes::new(crate::random::bytes(secret.len() * degree)?);
    let coeffs = random.expose();
    let mut shares = Vec::with_capacity(usize::from(n));
    for x in 1..=n {
        let mut y = Vec::with_capacity(secret.len());
        for (i, &s) in secret.iter().enumerate() {
            // Horner: ((c_d x + c_{d-1}) x + …) x + s.
            let mut acc = 0u8;
            for c in coeffs.iter().skip(i * degree).take(degree).rev() {
                acc = mul(acc, x) ^ c;
            }
            y.push(mul(acc, x) ^ s);
        }
        shares.push(Share {
            x,
            y: SecretBytes::new(y),
        });
    }
    Ok(shares)
}

/// Recovers the secret from shares (Lagrange interpolation at 0). With fewer shares than the
/// threshold the result is a wrong secret, not an error: callers check it (e.g. it must open an
/// authenticated ciphertext).
pub fn combine(shares: &[Share]) -> Result<SecretBytes, CryptoError> {
    let Some(first) = shares.first() else {
        return Err(CryptoError::Invalid("no shares"));
    };
    let len = first.y.expose().len();
    for (i, s) in shares.iter().enumerate() {
        if s.x == 0 || s.y.expose().len() != len {
            return Err(CryptoError::Invalid("shares of different secrets"));
        }
        if shares.iter().skip(i + 1).any(|t| t.x == s.x) {
            return Err(CryptoError::Invalid("the same share twice"));
        }
    }
    let mut out = vec![0u8; len];
    for (i, si) in shares.iter().enumerate() {
        // l_i(0) = Π_{j≠i} x_j / (x_j - x_i)  (subtraction is XOR).
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, sj) in shares.iter().enumerate() {
            if i != j {
                num = mul(num, sj.x);
                den = mul(den, sj.x ^ si.x);
            }
        }
        let l = mul(num, inv(den));
        for (o, y) in out.iter_mut().zip(si.y.expose()) {
            *o ^= mul(l, *y);
        }
    }
    Ok(SecretBytes::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_is_the_aes_field() {
        // FIPS 197 §4.2: {57} • {83} = {c1}; {57} • {13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
        assert_eq!(inv(0), 0);
    }

    #[test]
    fn any_threshold_of_the_shares_recovers_the_secret() {
        let secret: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        let shares = split(&secret, 3, 5).unwrap();
        assert_eq!(shares.len(), 5);
        for a in 0..5 {
            for b in 0..5 {
                for c in 0..5 {
                    if a == b || b == c || a == c {
                        continue;
                    }
                    let pick = [shares[a].clone(), shares[b].clone(), shares[c].clone()];
                    assert_eq!(combine(&pick).unwrap().expose(), &secret[..]);
                }
            }
        }
        // All five work too; two do not give the secret back.
        assert_eq!(combine(&shares).unwrap().expose(), &secret[..]);
        assert_ne!(combine(&shares[..2]).unwrap().expose(), &secret[..]);
    }

    #[test]
    fn fewer_shares_than_the_threshold_fit_every_secret() {
        // With threshold 2, one share's byte y = s + c·x takes every value as c varies: for a
        // fixed share, each candidate secret byte has exactly one polynomial through it.
        let shares = split(&[0x42], 2, 3).unwrap();
        let s = &shares[0];
        let mut seen = [false; 256];
        for c in 0..=255u8 {
            seen[usize::from(mul(c, s.x) ^ 0x42)] = true;
        }
        assert!(seen.iter().all(|&b| b));
    }

    #[test]
    fn bad_parameters_and_shares_are_refused() {
        assert!(split(b"k", 1, 3).is_err());
        assert!(split(b"k", 4, 3).is_err());
        assert!(split(b"", 2, 3).is_err());
        let shares = split(b"key", 2, 3).unwrap();
        assert!(combine(&[shares[0].clone(), shares[0].clone()]).is_err());
        assert!(Share::from_bytes(&[0, 1, 2]).is_err());
        assert!(Share::from_bytes(&[1]).is_err());
        let b = shares[1].to_bytes();
        let back = Share::from_bytes(b.expose()).unwrap();
        assert_eq!(back.x, 2);
        assert_eq!(back.y.expose(), shares[1].y.expose());
    }
}
