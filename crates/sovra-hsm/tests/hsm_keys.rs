//! `HSM`-level keys on both backends: every algorithm is generated inside the HSM, loaded,
//! used, checked against an independent software implementation (aws-lc-rs), and released
//! by wrapping inside the HSM; a key wrapped for one location does not load in another.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use sovra_crypto::keywrap::{self, ReleaseEnc};
use sovra_crypto::{LoadedKey, SignInput, key_ops::verify_spki, symmetric};
use sovra_hsm::pkcs11::Pkcs11Hsm;
use sovra_hsm::soft::{SoftHsm, UnsealKey};
use sovra_hsm::{Hsm, HsmError};
use sovra_proto::kms::{Algorithm, Purpose};
use sovra_testkit::softhsm;

/// A TEE's RSA key to release to: (SPKI, PKCS#8).
fn recipient() -> (Vec<u8>, sovra_crypto::SecretBytes) {
    let pkcs8 = sovra_crypto::generate(Algorithm::RsaDecryptOaep2048Sha256).unwrap();
    let k = LoadedKey::load(Algorithm::RsaDecryptOaep2048Sha256, pkcs8.expose()).unwrap();
    (k.public_key_der().unwrap(), pkcs8)
}

fn exercise(hsm: &dyn Hsm, expect_local: bool) {
    hsm.create_location("global").unwrap();
    hsm.create_location("eu").unwrap();
    let (tee_spki, tee_pkcs8) = recipient();
    // The key-attestation key: one per HSM, stable, signing r ‖ s for ES256.
    let att = hsm.attestation_public_key().unwrap();
    assert_eq!(att, hsm.attestation_public_key().unwrap());
    let sig = hsm.attestation_sign(b"statement").unwrap();
    assert_eq!(sig.len(), 64);
    let der = sovra_crypto::der::ecdsa_sig_der(&sig).unwrap();
    let p256 = Algorithm::EcSignP256Sha256;
    assert!(verify_spki(p256, &att, SignInput::Data(b"statement"), &der).unwrap());
    assert!(!verify_spki(p256, &att, SignInput::Data(b"statemenT"), &der).unwrap());
    for &alg in Algorithm::ALL {
        let g = match hsm.generate_key("global", alg) {
            Ok(g) => g,
            // SoftHSM2 generates Ed25519 keys but cannot wrap them, and does OAEP with SHA-1
            // only: both refused at creation, naming the mechanism.
            Err(HsmError::Unsupported(m))
                if hsm.kind() == "pkcs11" && alg == Algorithm::EcSignEd25519 =>
            {
                assert!(
                    m.contains("CKM_AES_KEY_WRAP_PAD") && m.contains("EC_SIGN_ED25519"),
                    "{m}"
                );
                continue;
            }
            Err(HsmError::Unsupported(m))
                if hsm.kind() == "pkcs11" && alg.purpose() == Purpose::AsymmetricDecrypt =>
            {
                assert!(
                    m.contains("CKM_RSA_PKCS_OAEP") && m.contains(&alg.as_str()),
                    "{m}"
                );
                continue;
            }
            Err(e) => panic!("{alg:?}: {e}"),
        };
        assert!(g.attributes.sensitive, "{alg:?}");
        assert_eq!(g.attributes.local, expect_local, "{alg:?}");
        let k = hsm
            .load_key("global", alg, &g.wrapped, g.public_key.as_deref())
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(k.algorithm(), alg);

        // Released inside the HSM; the TEE's unwrapped material is a working key of `alg`.
        for enc in [
            ReleaseEnc::CkmRsaAesKeyWrap,
            ReleaseEnc::RsaAesKeyWrap256,
            ReleaseEnc::RsaAesKeyWrap384,
        ] {
            let blob = match k.wrap_for(enc, &tee_spki) {
                Ok(b) => b,
                // SoftHSM2 does OAEP wrapping with SHA-1 only: a clear refusal, no fallback.
                Err(sovra_crypto::CryptoError::Unsupported(m))
                    if hsm.kind() == "pkcs11" && enc != ReleaseEnc::CkmRsaAesKeyWrap =>
                {
                    assert!(
                        m.contains("CKM_RSA_PKCS_OAEP") && m.contains("CKM_RSA_AES_KEY_WRAP"),
                        "{m}"
                    );
                    continue;
                }
                Err(e) => panic!("{alg:?} {enc:?}: {e}"),
            };
            let clear = keywrap::unwrap(enc, tee_pkcs8.expose(), &blob).unwrap();
            let soft =
                LoadedKey::load(alg, clear.expose()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            if let Some(spki) = &g.public_key {
                assert_eq!(&soft.public_key_der().unwrap(), spki, "{alg:?}");
            }
            if enc != ReleaseEnc::CkmRsaAesKeyWrap {
                continue;
            }
            match alg.purpose() {
                Purpose::EncryptDecrypt => {
                    let ct = symmetric::seal(&*k, 3, b"aad", b"inside").unwrap();
                    assert_eq!(
                        symmetric::open(&soft, b"aad", &ct).unwrap().expose(),
                        b"inside"
                    );
                    let ct2 = symmetric::seal(&soft, 3, b"aad", b"outside").unwrap();
                    assert_eq!(
                        symmetric::open(&*k, b"aad", &ct2).unwrap().expose(),
                        b"outside"
                    );
                    assert_eq!(
                        symmetric::open(&*k, b"other", &ct).unwrap_err(),
                        sovra_crypto::CryptoError::CiphertextInvalid
                    );
                    let mut t = ct.clone();
                    *t.last_mut().unwrap() ^= 1;
                    assert!(symmetric::open(&*k, b"aad", &t).is_err());
                }
                Purpose::Mac => {
                    let tag = k.mac(b"data").unwrap();
                    assert_eq!(tag, soft.mac(b"data").unwrap());
                    assert!(k.mac_verify(b"data", &tag).unwrap());
                    assert!(!k.mac_verify(b"date", &tag).unwrap());
                }
                Purpose::KeyWrap => {
                    // Inside the HSM as in software: RFC 3394 is deterministic, so both make
                    // the same bytes; RFC 5649 round-trips across them.
                    let key = [9u8; 32];
                    let w = k.aes_key_wrap(false, &key).unwrap();
                    assert_eq!(w, soft.aes_key_wrap(false, &key).unwrap());
                    assert_eq!(k.aes_key_unwrap(false, &w).unwrap().expose(), key);
                    let even = b"a 24-byte key to wrap...";
                    let wp = k.aes_key_wrap(true, even).unwrap();
                    assert_eq!(soft.aes_key_unwrap(true, &wp).unwrap().expose(), even);
                    let odd = b"a 21-byte key to wrap";
                    let wp2 = soft.aes_key_wrap(true, odd).unwrap();
                    assert_eq!(k.aes_key_unwrap(true, &wp2).unwrap().expose(), odd);
                    // An RFC 5649 wrap of another length is right, or refused (SoftHSM 2 records
                    // the padded length), never wrong.
                    match k.aes_key_wrap(true, odd) {
                        Ok(w) => assert_eq!(soft.aes_key_unwrap(true, &w).unwrap().expose(), odd),
                        Err(sovra_crypto::CryptoError::Unsupported(m)) => {
                            assert!(m.contains("RFC 5649"), "{m}")
                        }
                        Err(e) => panic!("{e}"),
                    }
                    let mut bad = w.clone();
                    bad[0] ^= 1;
                    assert!(k.aes_key_unwrap(false, &bad).is_err());
                    assert!(k.aes_key_wrap(false, odd).is_err());
                }
                Purpose::AsymmetricSign => {
                    let spki = g.public_key.as_deref().unwrap();
                    let sig = k.sign(SignInput::Data(b"msg")).unwrap();
                    assert!(
                        verify_spki(alg, spki, SignInput::Data(b"msg"), &sig).unwrap(),
                        "{alg:?}"
                    );
                    assert!(
                        !verify_spki(alg, spki, SignInput::Data(b"msh"), &sig).unwrap(),
                        "{alg:?}"
                    );
                    assert!(k.verify(SignInput::Data(b"msg"), &sig).unwrap());
                    if alg.sign_hash().is_some() {
                        let d = sovra_crypto::keys::message_digest(alg, SignInput::Data(b"msg"))
                            .unwrap();
                        let h = alg.sign_hash().unwrap();
                        let sig = k.sign(SignInput::Digest(h, &d)).unwrap();
                        assert!(
                            verify_spki(alg, spki, SignInput::Data(b"msg"), &sig).unwrap(),
                            "{alg:?}"
                        );
                        assert!(k.sign(SignInput::Digest(h, &d[1..])).is_err());
                    }
                    // Key Vault's RS*/PS*: an RSA key signs with any padding and hash.
                    if let sovra_proto::kms::AlgSpec::RsaSign { .. } = alg.spec() {
                        use sovra_proto::kms::{AlgHash, RsaPadding};
                        for (pad, h) in [
                            (RsaPadding::Pss, AlgHash::Sha384),
                            (RsaPadding::Pkcs1, AlgHash::Sha512),
                        ] {
                            let d = aws_lc_rs::digest::digest(
                                match h {
                                    AlgHash::Sha384 => &aws_lc_rs::digest::SHA384,
                                    _ => &aws_lc_rs::digest::SHA512,
                                },
                                b"msg",
                            );
                            let sig = k.sign_rsa(pad, h, d.as_ref()).unwrap();
                            assert!(
                                sovra_crypto::keys::verify_rsa_spki(pad, h, spki, d.as_ref(), &sig)
                                    .unwrap(),
                                "{alg:?} {pad:?} {h:?}"
                            );
                            assert!(k.sign_rsa(pad, h, &d.as_ref()[1..]).is_err());
                        }
                    }
                }
                Purpose::AsymmetricDecrypt => {
                    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(
                        g.public_key.as_deref().unwrap(),
                    )
                    .unwrap();
                    let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
                    let mut buf = vec![0u8; enc.ciphertext_size()];
                    let ct = enc
                        .encrypt(
                            &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
                            b"secret",
                            &mut buf,
                            None,
                        )
                        .unwrap()
                        .to_vec();
                    assert_eq!(k.oaep_decrypt(&ct).unwrap().expose(), b"secret");
                    let mut bad = ct.clone();
                    bad[5] ^= 1;
                    assert_eq!(
                        k.oaep_decrypt(&bad).unwrap_err(),
                        sovra_crypto::CryptoError::CiphertextInvalid
                    );
                    // Key Vault's RSA-OAEP (SHA-1): the same key, the other hash; neither
                    // hash opens the other's ciphertext.
                    let ct1 = sovra_crypto::keys::oaep_sha1_encrypt(
                        g.public_key.as_deref().unwrap(),
                        b"sha-1",
                    )
                    .unwrap();
                    assert_eq!(k.oaep_sha1_decrypt(&ct1).unwrap().expose(), b"sha-1");
                    assert!(k.oaep_decrypt(&ct1).is_err());
                    assert!(k.oaep_sha1_decrypt(&ct).is_err());
                    // Key Vault's RSA1_5, with implicit rejection: a well-formed block gives
                    // its message; a malformed one (an altered ciphertext, an OAEP one) a
                    // stable synthetic message, never an error.
                    let c15 = sovra_crypto::keys::pkcs1_encrypt(
                        g.public_key.as_deref().unwrap(),
                        b"legacy",
                    )
                    .unwrap();
                    assert_eq!(k.rsa1_5_decrypt(&c15).unwrap().expose(), b"legacy");
                    for malformed in [
                        {
                            let mut b = c15.clone();
                            b[7] ^= 1;
                            b
                        },
                        ct.clone(),
                    ] {
                        let a = k.rsa1_5_decrypt(&malformed).unwrap();
                        assert_ne!(a.expose(), b"legacy");
                        assert_eq!(a, k.rsa1_5_decrypt(&malformed).unwrap(), "{alg:?}");
                    }
                    assert_eq!(
                        k.rsa1_5_decrypt(&c15[1..]).unwrap_err(),
                        sovra_crypto::CryptoError::CiphertextInvalid
                    );
                }
            }
        }

        // Wrapped for "global": another location's key-wrapping key refuses it.
        assert!(
            matches!(
                hsm.load_key("eu", alg, &g.wrapped, g.public_key.as_deref()),
                Err(HsmError::Integrity)
            ),
            "{alg:?}"
        );
        let mut corrupt = g.wrapped.clone();
        corrupt[3] ^= 1;
        assert!(
            hsm.load_key("global", alg, &corrupt, g.public_key.as_deref())
                .is_err()
        );
        assert!(matches!(
            hsm.load_key("nowhere", alg, &g.wrapped, None),
            Err(HsmError::UnknownLocation(_))
        ));
    }
}

#[test]
fn software_hsm_generates_and_uses_every_algorithm() {
    let d = tempfile::tempdir().unwrap();
    exercise(
        &SoftHsm::open(d.path(), UnsealKey::DefaultFile).unwrap(),
        true,
    );
}

/// SoftHSM2 reads `SOFTHSM2_CONF` when the module initialises, so the PKCS#11 half runs in a
/// child process of this test binary with that variable set.
#[test]
fn pkcs11_hsm_generates_and_uses_every_algorithm() {
    let Ok(pin) = std::env::var("SOVRA_TEST_PKCS11_PIN") else {
        let token = softhsm::Token::new("hsm-keys");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("SOFTHSM2_CONF", token.conf())
            .env("SOVRA_TEST_PKCS11_PIN", &token.pin)
            .args([
                "pkcs11_hsm_generates_and_uses_every_algorithm",
                "--exact",
                "--nocapture",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    };
    let hsm = Pkcs11Hsm::open(std::path::Path::new(softhsm::MODULE), "hsm-keys", &pin).unwrap();
    exercise(&hsm, true);
}

/// Wraps `material` for an import key as `method` says, the way a client does.
fn client_wrap(method: sovra_proto::kms::ImportMethod, spki: &[u8], material: &[u8]) -> Vec<u8> {
    if method.with_aes() {
        return keywrap::wrap(keywrap::enc_for_oaep(method.sha256()), spki, material).unwrap();
    }
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki).unwrap();
    let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
    let mut buf = vec![0u8; enc.ciphertext_size()];
    enc.encrypt(
        &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
        material,
        &mut buf,
        None,
    )
    .unwrap()
    .to_vec()
}

fn import_exercise(hsm: &dyn Hsm) {
    use sovra_hsm::ImportKey;
    use sovra_proto::kms::ImportMethod;
    hsm.create_location("global").unwrap();
    let sha1_only = hsm.kind() == "pkcs11";
    for method in ImportMethod::ALL {
        let job = hsm.generate_import_key("global", method.bits()).unwrap();
        let spki = job.public_key.clone().unwrap();
        let n = aws_lc_rs::rsa::PublicKey::from_der(&spki).unwrap();
        assert_eq!(
            n.modulus().big_endian_without_leading_zero().len() * 8,
            usize::from(method.bits())
        );
        let imp = ImportKey {
            wrapped: &job.wrapped,
            method,
        };
        for alg in [
            Algorithm::Aes256Gcm,
            Algorithm::HmacSha256,
            Algorithm::EcSignP256Sha256,
            Algorithm::RsaSignPss2048Sha256,
        ] {
            if !method.with_aes() && !alg.is_symmetric() {
                continue;
            }
            let material = sovra_crypto::generate(alg).unwrap();
            let soft = LoadedKey::load(alg, material.expose()).unwrap();
            let public = soft.public_key_der().ok();
            let blob = client_wrap(method, &spki, material.expose());
            let g = match hsm.import_key("global", &imp, &blob, alg, public.as_deref()) {
                Ok(g) => g,
                Err(HsmError::Unsupported(m)) if sha1_only && method.sha256() => {
                    assert!(
                        m.contains("CKM_RSA_PKCS_OAEP") && m.contains("SHA-256"),
                        "{m}"
                    );
                    continue;
                }
                Err(e) => panic!("{method:?} {alg:?}: {e}"),
            };
            assert!(!g.attributes.local, "imported, not generated: {alg:?}");
            assert_eq!(g.public_key, public, "{alg:?}");
            let k = hsm
                .load_key("global", alg, &g.wrapped, g.public_key.as_deref())
                .unwrap();
            match alg.purpose() {
                Purpose::EncryptDecrypt => {
                    let ct = symmetric::seal(&*k, 1, b"", b"imported").unwrap();
                    assert_eq!(
                        symmetric::open(&soft, b"", &ct).unwrap().expose(),
                        b"imported"
                    );
                }
                Purpose::Mac => assert_eq!(k.mac(b"m").unwrap(), soft.mac(b"m").unwrap()),
                _ => {
                    let sig = k.sign(SignInput::Data(b"m")).unwrap();
                    assert!(soft.verify(SignInput::Data(b"m"), &sig).unwrap(), "{alg:?}");
                }
            }
            // SOFTWARE-level imports get the material itself.
            assert_eq!(
                hsm.import_material("global", &imp, &blob).unwrap().expose(),
                material.expose()
            );
            // Corrupted, another algorithm, another key's public key: refused, clearly.
            let mut bad = blob.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(
                matches!(
                    hsm.import_key("global", &imp, &bad, alg, public.as_deref()),
                    Err(HsmError::ImportInvalid(_))
                ),
                "{method:?} {alg:?}"
            );
            if alg.is_symmetric() && method.with_aes() {
                // A PKCS#11 token that does not record an unwrapped key's length is checked by
                // the padded length only (25 to 32 bytes pad alike): docs/hsm.md.
                let lens: &[usize] = if sha1_only { &[16] } else { &[16, 31] };
                for &len in lens {
                    let short = client_wrap(method, &spki, &vec![7u8; len]);
                    let r = hsm.import_key("global", &imp, &short, alg, None);
                    assert!(
                        matches!(r, Err(HsmError::ImportInvalid(_))),
                        "{method:?} {alg:?} {len} bytes: {r:?}"
                    );
                }
            }
            if alg == Algorithm::EcSignP256Sha256 {
                let other = LoadedKey::load(alg, sovra_crypto::generate(alg).unwrap().expose())
                    .unwrap()
                    .public_key_der()
                    .unwrap();
                assert!(matches!(
                    hsm.import_key("global", &imp, &blob, alg, Some(&other)),
                    Err(HsmError::ImportInvalid(m)) if m.contains("public key")
                ));
                assert!(matches!(
                    hsm.import_key("global", &imp, &blob, Algorithm::EcSignP384Sha384, None),
                    Err(HsmError::ImportInvalid(_))
                ));
            }
            if alg == Algorithm::RsaSignPss2048Sha256 {
                assert!(matches!(
                    hsm.import_key("global", &imp, &blob, Algorithm::RsaSignPss3072Sha256, public.as_deref()),
                    Err(HsmError::ImportInvalid(m)) if m.contains("bits")
                ));
            }
        }
        // Made for another job's key: refused.
        let other = hsm.generate_import_key("global", method.bits()).unwrap();
        let material = sovra_crypto::generate(Algorithm::Aes256Gcm).unwrap();
        let blob = client_wrap(
            method,
            other.public_key.as_deref().unwrap(),
            material.expose(),
        );
        if !(sha1_only && method.sha256()) {
            assert!(matches!(
                hsm.import_key("global", &imp, &blob, Algorithm::Aes256Gcm, None),
                Err(HsmError::ImportInvalid(_))
            ));
        }
    }
}

#[test]
fn software_hsm_imports_keys() {
    let d = tempfile::tempdir().unwrap();
    import_exercise(&SoftHsm::open(d.path(), UnsealKey::DefaultFile).unwrap());
}

#[test]
fn pkcs11_hsm_imports_keys() {
    let Ok(pin) = std::env::var("SOVRA_TEST_PKCS11_PIN") else {
        let token = softhsm::Token::new("hsm-import");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("SOFTHSM2_CONF", token.conf())
            .env("SOVRA_TEST_PKCS11_PIN", &token.pin)
            .args(["pkcs11_hsm_imports_keys", "--exact", "--nocapture"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    };
    let hsm = Pkcs11Hsm::open(std::path::Path::new(softhsm::MODULE), "hsm-import", &pin).unwrap();
    import_exercise(&hsm);
}
