//! The README's CLI tour, checked: first start, keys of every algorithm, every operation, and
//! results verified independently of the server where possible.

use crate::common::*;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use sovra_proto::b64;

fn pem_to_spki(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    b64::decode(&body).unwrap()
}

fn x509_spki_key(spki: &[u8]) -> Vec<u8> {
    // Minimal DER walk: SEQUENCE { SEQUENCE alg, BIT STRING key }.
    fn len(b: &[u8], i: &mut usize) -> usize {
        let first = b[*i];
        *i += 1;
        if first < 0x80 {
            return first as usize;
        }
        let n = (first & 0x7f) as usize;
        let mut l = 0;
        for _ in 0..n {
            l = (l << 8) | b[*i] as usize;
            *i += 1;
        }
        l
    }
    let mut i = 1;
    len(spki, &mut i); // outer
    assert_eq!(spki[i], 0x30);
    i += 1;
    let alg_len = len(spki, &mut i);
    i += alg_len;
    assert_eq!(spki[i], 0x03);
    i += 1;
    let bl = len(spki, &mut i);
    spki[i + 1..i + bl].to_vec()
}

#[test]
fn first_start_initialises_and_later_starts_reuse() {
    let mut s = Server::start();
    let printed: Vec<&String> = s
        .banner
        .iter()
        .filter(|l| l.trim_start().starts_with("sovra_"))
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "the admin token is printed once: {:?}",
        s.banner
    );
    assert_eq!(printed[0].trim(), s.token);
    for f in [
        "sovra.db",
        "hsm/root.sealed",
        "hsm/unseal.key",
        "tls/ca.pem",
        "admin.token",
    ] {
        assert!(s.dir.join(f).exists(), "{f} missing");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s.dir.join("admin.token"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let ca_before = std::fs::read(s.ca()).unwrap();
    let who = s.json(&["whoami"]);
    assert_eq!(who["principal"], "admin");
    s.ok(&["keyrings", "create", "persist"]);
    s.terminate();
    s.boot();
    assert!(
        !s.banner
            .iter()
            .any(|l| l.trim_start().starts_with("sovra_")),
        "no new token on restart: {:?}",
        s.banner
    );
    assert_eq!(
        std::fs::read(s.ca()).unwrap(),
        ca_before,
        "the CA is reused"
    );
    assert_eq!(
        s.json(&["keyrings", "get", "persist"])["name"],
        "locations/global/keyRings/persist"
    );
}

#[test]
fn symmetric_encryption_survives_rotation() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "app"]);
    let k = s.json(&["keys", "create", "app/data", "--purpose", "encrypt"]);
    assert_eq!(k["versionTemplate"]["algorithm"], "AES_256_GCM");
    assert_eq!(k["primary"]["state"], "ENABLED");
    let ct1 = s
        .ok(&[
            "encrypt",
            "app/data",
            "--plaintext",
            "attack at dawn",
            "--aad",
            "order-7",
        ])
        .trim()
        .to_string();
    assert_eq!(
        s.ok(&[
            "decrypt",
            "app/data",
            "--ciphertext",
            &ct1,
            "--aad",
            "order-7"
        ]),
        "attack at dawn"
    );
    let rotated = s.json(&["keys", "rotate", "app/data"]);
    assert!(
        rotated["primary"]["name"]
            .as_str()
            .unwrap()
            .ends_with("/cryptoKeyVersions/2")
    );
    let ct2 = s.json(&["encrypt", "app/data", "--plaintext", "new"]);
    assert!(ct2["name"].as_str().unwrap().ends_with("/2"));
    let d1 = s.json(&[
        "decrypt",
        "app/data",
        "--ciphertext",
        &ct1,
        "--aad",
        "order-7",
    ]);
    assert_eq!(
        b64::decode(d1["plaintext"].as_str().unwrap()).unwrap(),
        b"attack at dawn"
    );
    assert_eq!(d1["usedPrimary"], false);
    // Wrong AAD, and a ciphertext from another key, are refused.
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "decrypt",
            "app/data",
            "--ciphertext",
            &ct1,
            "--aad",
            "order-8"
        ])),
        "CIPHERTEXT_INVALID"
    );
    s.ok(&["keys", "create", "app/other", "--purpose", "encrypt"]);
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "decrypt",
            "app/other",
            "--ciphertext",
            &ct1,
            "--aad",
            "order-7"
        ])),
        "CIPHERTEXT_INVALID"
    );
    // Set the primary back to 1.
    let k = s.json(&["keys", "set-primary", "app/data", "1"]);
    assert!(k["primary"]["name"].as_str().unwrap().ends_with("/1"));
}

#[test]
fn signatures_verify_outside_sovra() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "sig"]);
    let cases: &[(&str, &'static dyn signature::VerificationAlgorithm)] = &[
        ("EC_SIGN_P256_SHA256", &signature::ECDSA_P256_SHA256_ASN1),
        ("EC_SIGN_P384_SHA384", &signature::ECDSA_P384_SHA384_ASN1),
        ("EC_SIGN_ED25519", &signature::ED25519),
        (
            "RSA_SIGN_PSS_2048_SHA256",
            &signature::RSA_PSS_2048_8192_SHA256,
        ),
        (
            "RSA_SIGN_PKCS1_2048_SHA256",
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            "RSA_SIGN_PKCS1_3072_SHA256",
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ),
    ];
    for (i, (alg, verifier)) in cases.iter().enumerate() {
        let key = format!("sig/k{i}");
        s.ok(&[
            "keys",
            "create",
            &key,
            "--purpose",
            "sign",
            "--algorithm",
            alg,
        ]);
        let sig = s
            .ok(&["sign", &key, "--data", "the message"])
            .trim()
            .to_string();
        assert_eq!(
            s.ok(&["verify", &key, "--data", "the message", "--signature", &sig])
                .trim(),
            "valid"
        );
        let bad = s.cli(&[
            "verify",
            &key,
            "--data",
            "another message",
            "--signature",
            &sig,
        ]);
        assert!(
            !bad.status.success(),
            "{alg}: a wrong message must not verify"
        );
        let pem = s.ok(&["public-key", &key]);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let spki = pem_to_spki(&pem);
        let raw = x509_spki_key(&spki);
        UnparsedPublicKey::new(*verifier, &raw)
            .verify(b"the message", &b64::decode(&sig).unwrap())
            .unwrap_or_else(|_| {
                panic!("{alg}: signature does not verify with the published public key")
            });
    }
    // Sign a caller-computed digest.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"digest me");
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let sig = s
        .ok(&["sign", "sig/k0", "--digest", &hex])
        .trim()
        .to_string();
    assert_eq!(
        s.ok(&[
            "verify",
            "sig/k0",
            "--data",
            "digest me",
            "--signature",
            &sig
        ])
        .trim(),
        "valid"
    );
    // Ed25519 refuses digests with a clear error.
    let o = s.cli(&["-o", "json", "sign", "sig/k2", "--digest", &hex]);
    assert_eq!(cli_code(&o), "UNSUPPORTED_ALGORITHM");
}

#[test]
fn asymmetric_decrypt_mac_and_random() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "x"]);
    s.ok(&[
        "keys",
        "create",
        "x/rsa",
        "--purpose",
        "decrypt",
        "--algorithm",
        "RSA_DECRYPT_OAEP_2048_SHA256",
    ]);
    let pem = s.ok(&["public-key", "x/rsa"]);
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&pem_to_spki(&pem)).unwrap();
    let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
    let mut buf = vec![0u8; enc.ciphertext_size()];
    let ct = enc
        .encrypt(
            &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
            b"wrapped secret",
            &mut buf,
            None,
        )
        .unwrap()
        .to_vec();
    assert_eq!(
        s.ok(&["asym-decrypt", "x/rsa", "--ciphertext", &b64::encode(&ct)]),
        "wrapped secret"
    );
    let mut tampered = ct.clone();
    tampered[10] ^= 1;
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "asym-decrypt",
            "x/rsa",
            "--ciphertext",
            &b64::encode(&tampered)
        ])),
        "CIPHERTEXT_INVALID"
    );

    s.ok(&["keys", "create", "x/mac", "--purpose", "mac"]);
    let mac = s
        .ok(&["mac", "x/mac", "--data", "hello"])
        .trim()
        .to_string();
    assert_eq!(b64::decode(&mac).unwrap().len(), 32);
    assert_eq!(
        s.ok(&["mac-verify", "x/mac", "--data", "hello", "--mac", &mac])
            .trim(),
        "valid"
    );
    assert!(
        !s.cli(&["mac-verify", "x/mac", "--data", "hellO", "--mac", &mac])
            .status
            .success()
    );

    // AES key wrap, as the README wraps a data key and unwraps it into a new file.
    s.ok(&["keys", "create", "x/kek", "--purpose", "key-wrap"]);
    let dek = s.dir.join("dek.bin");
    std::fs::write(&dek, [0x42u8; 32]).unwrap();
    let wrapped = s
        .ok(&["wrap-key", "x/kek", "--in", dek.to_str().unwrap()])
        .trim()
        .to_string();
    assert_eq!(b64::decode(&wrapped).unwrap().len(), 40);
    let again = s.dir.join("dek-again.bin");
    s.ok(&[
        "unwrap-key",
        "x/kek@1",
        "--wrapped",
        &wrapped,
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&again).unwrap(), [0x42u8; 32]);
    // The file is the key holder's alone.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&again).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let r1 = s.json(&["random", "--bytes", "48"]);
    let r2 = s.json(&["random", "--bytes", "48"]);
    assert_eq!(b64::decode(r1["data"].as_str().unwrap()).unwrap().len(), 48);
    assert_ne!(r1, r2);

    // Wrong purpose is a clear 4xx.
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "encrypt", "x/mac", "--plaintext", "a"])),
        "WRONG_PURPOSE"
    );
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "sign", "x/rsa", "--data", "a"])),
        "WRONG_PURPOSE"
    );
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "public-key", "x/mac"])),
        "WRONG_PURPOSE"
    );
}

#[test]
fn health_metrics_openapi_and_bench() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = s.admin();
        let (st, body) = c.raw(hyper::Method::GET, "/healthz", None).await.unwrap();
        assert_eq!(st, 200, "{body:?}");
        let (st, _) = c.raw(hyper::Method::GET, "/readyz", None).await.unwrap();
        assert_eq!(st, 200);
        let (st, body) = c.raw(hyper::Method::GET, "/openapi.json", None).await.unwrap();
        assert_eq!(st, 200);
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(doc["paths"]["/v1/locations/{location}/keyRings/{keyRing}/cryptoKeys/{cryptoKey}:encrypt"].is_object(), "encrypt is documented");
        let anon = sovra_client::Client::new(sovra_client::ClientConfig { url: s.url.clone(), token: None, ca_pem: Some(std::fs::read(s.ca()).unwrap()), ..Default::default() }).unwrap();
        let (st, _) = anon.raw(hyper::Method::GET, "/metrics", None).await.unwrap();
        assert_eq!(st, 401, "metrics need a principal");
        let text = c.get_text("/metrics").await.unwrap();
        assert!(text.contains("sovra_http_requests_total"), "{text}");
    });
    let out = s.json(&[
        "bench",
        "encrypt",
        "--duration",
        "1",
        "--concurrency",
        "2",
        "--warmup",
        "0",
    ]);
    assert_eq!(out["errors"], 0);
    assert!(out["ops_per_sec"].as_f64().unwrap() > 0.0);
    assert!(out["p99_ms"].as_f64().unwrap() >= out["p50_ms"].as_f64().unwrap());

    // The floor needs no server: the per-operation times and the rates they allow agree.
    let f = s.json(&["bench", "floor", "--iterations", "50"]);
    let ms = |k: &str| f[k].as_f64().unwrap();
    for k in [
        "rsa2048_sign_ms",
        "rsa2048_verify_ms",
        "p256_sign_ms",
        "p384_verify_ms",
    ] {
        assert!(ms(k) > 0.0, "{k}: {f}");
    }
    let cores = f["cores"].as_f64().unwrap();
    let expect = cores * 1000.0 / (ms("rsa2048_sign_ms") + ms("p384_verify_ms"));
    let got = ms("snp_attest_rs256_per_sec");
    assert!(
        (got - expect).abs() / expect < 0.01,
        "{got} vs {expect}: {f}"
    );
}
