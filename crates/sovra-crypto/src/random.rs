//! Randomness from the operating system via aws-lc-rs.

use crate::error::CryptoError;

/// `n` random bytes.
pub fn bytes(n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut v = vec![0u8; n];
    fill(&mut v)?;
    Ok(v)
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Library("random number generator failed"))
}

/// A random identifier of `n` bytes as lowercase hex.
pub fn hex_id(n: usize) -> Result<String, CryptoError> {
    Ok(sovra_proto::hex::encode(&bytes(n)?))
}

/// Fills `buf` (at most 64 bytes) with random bytes for a public value such as an AEAD nonce,
/// from a per-thread buffer refilled from the system DRBG 4 KiB at a time: one DRBG call per
/// ~340 nonces instead of one per nonce. Never use it for secrets: the buffered bytes sit in
/// memory until used. Sovra does not fork, so no two processes share a buffer.
pub fn fill_nonce(buf: &mut [u8]) -> Result<(), CryptoError> {
    const POOL: usize = 4096;
    thread_local! {
        static BUF: std::cell::RefCell<(Box<[u8; POOL]>, usize)> = std::cell::RefCell::new((Box::new([0u8; POOL]), POOL));
    }
    if buf.len() > 64 {
        return fill(buf);
    }
    BUF.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (pool, used) = &mut *guard;
        if *used + buf.len() > POOL {
            fill(pool.as_mut_slice())?;
            *used = 0;
        }
        let start = *used;
        let src = pool
            .get(start..start + buf.len())
            .ok_or(CryptoError::Library("nonce pool"))?;
        buf.copy_from_slice(src);
        *used += buf.len();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonces_differ_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let mut n = [0u8; 12];
            super::fill_nonce(&mut n).unwrap();
            assert!(seen.insert(n), "nonce repeated");
        }
    }
}
