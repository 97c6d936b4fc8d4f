//! Secrets that only a quorum can open: the secret is encrypted (AES-256-GCM) under a fresh
//! key, and that key is split M-of-N ([`crate::shamir`]) with each share encrypted
//! (RSA-OAEP-SHA256) to one holder's RSA public key. Opening needs M holders' private keys; with
//! fewer, the key comes out wrong and the authenticated ciphertext does not open.

use crate::error::CryptoError;
use crate::keys::oaep_sha256_encrypt;
use crate::secret::SecretBytes;
use crate::shamir::{self, Share};
use crate::wrap::WrappingKey;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::RsaKeyPair;

/// The smallest holder key accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A secret sealed for a quorum.
pub struct Sealed {
    /// One encrypted share per holder, in the order of the holders given.
    pub encrypted_shares: Vec<Vec<u8>>,
    /// The secret, AES-256-GCM under the split key (nonce ‖ ciphertext ‖ tag).
    pub ciphertext: Vec<u8>,
}

/// Seals `secret` (bound to `aad`) so that any `quorum` of the holders of `holders` (RSA
/// SubjectPublicKeyInfo DER, at least [`MIN_RSA_BITS`]) can open it together.
pub fn seal(
    secret: &[u8],
    aad: &[u8],
    holders: &[&[u8]],
    quorum: u8,
) -> Result<Sealed, CryptoError> {
    let key = SecretBytes::new(crate::random::bytes(32)?);
    let ciphertext = WrappingKey::new(key.expose())?.wrap(aad, secret)?;
    let encrypted_shares = share_out(key.expose(), holders, quorum)?
        .into_iter()
        .map(|(enc, _)| enc)
        .collect();
    Ok(Sealed {
        encrypted_shares,
        ciphertext,
    })
}

/// A holder's encrypted share and its [`commitment`].
pub type HeldShare = (Vec<u8>, [u8; 32]);

/// Splits `secret` itself `quorum`-of-`holders.len()` and encrypts each share to its holder.
/// Returns, per holder, the encrypted share and its [`commitment`].
pub fn share_out(
    secret: &[u8],
    holders: &[&[u8]],
    quorum: u8,
) -> Result<Vec<HeldShare>, CryptoError> {
    let n = u8::try_from(holders.len()).map_err(|_| CryptoError::Invalid("too many holders"))?;
    let shares = shamir::split(secret, quorum, n)?;
    holders
        .iter()
        .zip(&shares)
        .map(|(spki, share)| {
            if rsa_bits(spki)? < MIN_RSA_BITS {
                return Err(CryptoError::Invalid(
                    "a holder's RSA key is shorter than 2048 bits",
                ));
            }
            Ok((
                oaep_sha256_encrypt(spki, share.to_bytes().expose())?,
                commitment(share),
            ))
        })
        .collect()
}

/// SHA-256 over a share (domain-separated): published beside the encrypted share so that a
/// share handed in can be checked on its own, without revealing it (a share is uniformly
/// random).
pub fn commitment(share: &Share) -> [u8; 32] {
    let mut b = b"sovra/quorum-share/v1\0".to_vec();
    b.extend_from_slice(share.to_bytes().expose());
    let c = crate::sha256(&b);
    zeroize::Zeroize::zeroize(&mut b);
    c
}

/// Opens a sealed secret from decrypted shares. Too few or wrong shares, or a changed `aad` or
/// ciphertext: [`CryptoError::UnwrapFailed`].
pub fn open(shares: &[Share], aad: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
    let key = shamir::combine(shares)?;
    WrappingKey::new(key.expose())?
        .unwrap(aad, ciphertext)
        .map_err(|_| CryptoError::UnwrapFailed)
}

/// The size in bits of an RSA public key (SubjectPublicKeyInfo DER).
pub fn rsa_bits(spki: &[u8]) -> Result<usize, CryptoError> {
    aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
        .map(|k| k.key_size_bits())
        .map_err(|_| CryptoError::Invalid("not an RSA public key"))
}

/// A holder's RSA private key, to decrypt that holder's share.
pub struct HolderKey {
    key: OaepPrivateDecryptingKey,
    spki: Vec<u8>,
}

impl HolderKey {
    /// Reads a PEM (`PRIVATE KEY` or `RSA PRIVATE KEY`) or DER (PKCS#8 or PKCS#1) RSA key.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CryptoError> {
        let der = std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| {
                crate::keys::pem_decode("PRIVATE KEY", t)
                    .or_else(|| crate::keys::pem_decode("RSA PRIVATE KEY", t))
            })
            .map(SecretBytes::new)
            .unwrap_or_else(|| SecretBytes::new(bytes.to_vec()));
        fn bad<E>(_: E) -> CryptoError {
            CryptoError::Invalid("not an RSA private key (PKCS#8 or PKCS#1, PEM or DER)")
        }
        let pkcs8 = match PrivateDecryptingKey::from_pkcs8(der.expose()) {
            Ok(k) => k,
            Err(_) => {
                let pair = RsaKeyPair::from_der(der.expose()).map_err(bad)?;
                let p8 = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(bad)?;
                PrivateDecryptingKey::from_pkcs8(p8.as_ref()).map_err(bad)?
            }
        };
        let spki = AsDer::<PublicKeyX509Der>::as_der(&pkcs8.public_key())
            .map_err(|_| CryptoError::Library("cannot encode an RSA public key"))?
            .as_ref()
            .to_vec();
        let key = OaepPrivateDecryptingKey::new(pkcs8).map_err(bad)?;
        Ok(Self { key, spki })
    }

    /// SHA-256 of the public key (SubjectPublicKeyInfo DER), which names the share it opens.
    pub fn public_key_sha256(&self) -> [u8; 32] {
        crate::sha256(&self.spki)
    }

    /// Decrypts this holder's share.
    pub fn open_share(&self, encrypted: &[u8]) -> Result<Share, CryptoError> {
        let mut out = zeroize::Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let n = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, encrypted, &mut out, None)
            .map_err(|_| CryptoError::CiphertextInvalid)?
            .len();
        Share::from_bytes(out.get(..n).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::KeySize;

    fn holder() -> (HolderKey, Vec<u8>) {
        let k = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let p8 = AsDer::<Pkcs8V1Der>::as_der(&k).unwrap().as_ref().to_vec();
        let h = HolderKey::from_pem_or_der(&p8).unwrap();
        let spki = h.spki.clone();
        (h, spki)
    }

    #[test]
    fn a_quorum_opens_and_fewer_do_not() {
        let hs: Vec<_> = (0..3).map(|_| holder()).collect();
        let spkis: Vec<&[u8]> = hs.iter().map(|(_, s)| s.as_slice()).collect();
        let sealed = seal(b"the root", b"header", &spkis, 2).unwrap();
        let share = |i: usize| hs[i].0.open_share(&sealed.encrypted_shares[i]).unwrap();
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let s = open(&[share(a), share(b)], b"header", &sealed.ciphertext).unwrap();
            assert_eq!(s.expose(), b"the root");
        }
        assert!(matches!(
            open(&[share(0)], b"header", &sealed.ciphertext),
            Err(CryptoError::UnwrapFailed)
        ));
        assert!(open(&[share(0), share(1)], b"other header", &sealed.ciphertext).is_err());
        // A holder's key does not open another holder's share.
        assert!(hs[0].0.open_share(&sealed.encrypted_shares[1]).is_err());
    }

    #[test]
    fn small_keys_and_bad_quorums_are_refused() {
        let hs: Vec<_> = (0..3).map(|_| holder()).collect();
        let spkis: Vec<&[u8]> = hs.iter().map(|(_, s)| s.as_slice()).collect();
        assert!(seal(b"x", b"", &spkis, 4).is_err());
        assert!(seal(b"x", b"", &spkis, 1).is_err());
        assert!(seal(b"x", b"", &[b"not a key".as_slice()], 1).is_err());
    }
}
