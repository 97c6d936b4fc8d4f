//! Protection levels through `sovra serve` and the CLI, on the software HSM and on SoftHSM2:
//! every purpose works at SOFTWARE and HSM level (create, use, rotate, disable, release), what
//! the token cannot do inside it is refused at creation naming the mechanism, and an HSM-level
//! row altered in the database does not load.

use crate::common::*;
use crate::release::{ISSUER, issuer, tee_key, token, write};
use serde_json::{Value, json};
use sovra_crypto::jws::{Jws, b64url_decode};
use sovra_crypto::keywrap::{self, ReleaseEnc};
use sovra_testkit::softhsm;

fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    sovra_proto::b64::decode(&b64).unwrap()
}

/// A verification that did not hold: exit status 1 and INVALID.
fn assert_invalid(o: &std::process::Output) {
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("INVALID"),
        "{o:?}"
    );
}

/// Keys of every purpose at `level` ("SOFTWARE" or "HSM"); `refused` lists algorithms the HSM
/// must refuse at that level (SoftHSM2 cannot wrap Ed25519 keys nor do OAEP with SHA-256).
fn exercise(s: &Server, ring: &str, level: &str, refused: &[&str]) {
    let lvl = level.to_ascii_lowercase();
    s.ok(&["keyrings", "create", ring]);
    let create = |id: &str, purpose: &str, alg: &str| {
        s.cli(&[
            "-o",
            "json",
            "keys",
            "create",
            &format!("{ring}/{id}"),
            "--purpose",
            purpose,
            "--algorithm",
            alg,
            "--protection-level",
            &lvl,
        ])
    };

    // Symmetric: encrypt, rotate, old ciphertexts still open, a disabled version refuses.
    let o = create("aes", "encrypt", "AES_256_GCM");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let k = format!("{ring}/aes");
    let v = s.json(&["versions", "get", &k, "1"]);
    assert_eq!(v["protectionLevel"], level, "{v}");
    let ct1 = s
        .ok(&["encrypt", &k, "--plaintext", "first"])
        .trim()
        .to_string();
    s.ok(&["keys", "rotate", &k]);
    let v2 = s.json(&["versions", "get", &k, "2"]);
    assert_eq!(
        v2["protectionLevel"], level,
        "a rotated version keeps the level: {v2}"
    );
    let ct2 = s
        .ok(&["encrypt", &k, "--plaintext", "second"])
        .trim()
        .to_string();
    assert_eq!(s.ok(&["decrypt", &k, "--ciphertext", &ct1]), "first");
    assert_eq!(s.ok(&["decrypt", &k, "--ciphertext", &ct2]), "second");
    let mut bad = sovra_proto::b64::decode(&ct2).unwrap();
    *bad.last_mut().unwrap() ^= 1;
    let o = s.cli(&[
        "-o",
        "json",
        "decrypt",
        &k,
        "--ciphertext",
        &sovra_proto::b64::encode(&bad),
    ]);
    assert_eq!(cli_code(&o), "CIPHERTEXT_INVALID");
    s.json(&["versions", "disable", &k, "1"]);
    let o = s.cli(&["-o", "json", "decrypt", &k, "--ciphertext", &ct1]);
    assert_eq!(cli_code(&o), "KEY_VERSION_NOT_ENABLED");
    s.json(&["versions", "enable", &k, "1"]);
    assert_eq!(s.ok(&["decrypt", &k, "--ciphertext", &ct1]), "first");

    // Signatures verify on the server and, with the published public key, independently.
    for (i, alg) in [
        "EC_SIGN_P256_SHA256",
        "EC_SIGN_P384_SHA384",
        "EC_SIGN_ED25519",
        "RSA_SIGN_PSS_2048_SHA256",
        "RSA_SIGN_PKCS1_2048_SHA256",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("sig{i}");
        let o = create(&id, "sign", alg);
        if refused.contains(&alg) {
            assert_eq!(cli_code(&o), "PROTECTION_LEVEL_UNAVAILABLE", "{alg}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("CKM_") && err.contains(alg), "{err}");
            continue;
        }
        assert!(
            o.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let k = format!("{ring}/{id}");
        let sig = s.ok(&["sign", &k, "--data", "hello"]).trim().to_string();
        assert_eq!(
            s.ok(&["verify", &k, "--data", "hello", "--signature", &sig])
                .trim(),
            "valid"
        );
        assert_invalid(&s.cli(&["verify", &k, "--data", "hellO", "--signature", &sig]));
        let spki = pem_der(&s.ok(&["public-key", &k]));
        let alg_enum: sovra_proto::kms::Algorithm = serde_json::from_value(json!(alg)).unwrap();
        assert!(
            sovra_crypto::key_ops::verify_spki(
                alg_enum,
                &spki,
                sovra_crypto::SignInput::Data(b"hello"),
                &sovra_proto::b64::decode(&sig).unwrap()
            )
            .unwrap(),
            "{alg}: the signature verifies with the public key alone"
        );
    }

    // Asymmetric decryption of what anyone encrypted to the public key.
    let o = create("oaep", "decrypt", "RSA_DECRYPT_OAEP_2048_SHA256");
    if refused.contains(&"RSA_DECRYPT_OAEP_2048_SHA256") {
        assert_eq!(cli_code(&o), "PROTECTION_LEVEL_UNAVAILABLE");
        assert!(String::from_utf8_lossy(&o.stderr).contains("CKM_RSA_PKCS_OAEP"));
    } else {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let k = format!("{ring}/oaep");
        let spki = pem_der(&s.ok(&["public-key", &k]));
        let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki).unwrap();
        let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk).unwrap();
        let mut buf = vec![0u8; enc.ciphertext_size()];
        let ct = enc
            .encrypt(
                &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
                b"to the key",
                &mut buf,
                None,
            )
            .unwrap()
            .to_vec();
        assert_eq!(
            s.ok(&[
                "asym-decrypt",
                &k,
                "--ciphertext",
                &sovra_proto::b64::encode(&ct)
            ]),
            "to the key"
        );
    }

    // MAC.
    let o = create("hmac", "mac", "HMAC_SHA256");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let k = format!("{ring}/hmac");
    let tag = s.ok(&["mac", &k, "--data", "d"]).trim().to_string();
    assert_eq!(
        s.ok(&["mac-verify", &k, "--data", "d", "--mac", &tag])
            .trim(),
        "valid"
    );
    assert_invalid(&s.cli(&["mac-verify", &k, "--data", "e", "--mac", &tag]));

    // AES key wrap: RFC 3394 round-trips through the version that wrapped; a wrap in the other
    // mode, of another version, or altered is CIPHERTEXT_INVALID; the key does nothing else.
    let o = create("kw", "key-wrap", "AES_256_KEY_WRAP");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let k = format!("{ring}/kw");
    let bytes = |name: &str, b: &[u8]| {
        let p = s.dir.join(format!("{ring}-{name}"));
        std::fs::write(&p, b).unwrap();
        p.to_str().unwrap().to_string()
    };
    let key32 = bytes("key32", &[7u8; 32]);
    let wrapped = s
        .ok(&["wrap-key", &k, "--in", &key32, "--no-padding"])
        .trim()
        .to_string();
    assert_eq!(sovra_proto::b64::decode(&wrapped).unwrap().len(), 40);
    let unwrap = |version: &str, wrapped: &str, extra: &[&str]| {
        let mut args = vec!["-o", "json", "unwrap-key", version, "--wrapped", wrapped];
        args.extend_from_slice(extra);
        s.cli(&args)
    };
    let o = unwrap(&format!("{k}@1"), &wrapped, &["--no-padding"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["key"], sovra_proto::b64::encode(&[7u8; 32]));
    assert_eq!(cli_code(&unwrap(&k, &wrapped, &[])), "CIPHERTEXT_INVALID");
    s.ok(&["keys", "rotate", &k]);
    assert_eq!(
        cli_code(&unwrap(&k, &wrapped, &["--no-padding"])),
        "CIPHERTEXT_INVALID",
        "the primary is now version 2"
    );
    let out_file = s.dir.join(format!("{ring}-unwrapped"));
    s.ok(&[
        "unwrap-key",
        &format!("{k}@1"),
        "--wrapped",
        &wrapped,
        "--no-padding",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out_file).unwrap(), [7u8; 32]);
    let odd = bytes("odd", b"a 21-byte key to wrap");
    let o = s.cli(&["-o", "json", "wrap-key", &k, "--in", &odd, "--no-padding"]);
    assert_eq!(cli_code(&o), "INVALID_ARGUMENT");
    // RFC 5649 takes any length: right (the software unwrap agrees), or, on an HSM whose
    // CKM_AES_KEY_WRAP_PAD records the padded length (SoftHSM 2), refused, never wrong.
    let o = s.cli(&["-o", "json", "wrap-key", &k, "--in", &odd]);
    if o.status.success() {
        let w: Value = serde_json::from_slice(&o.stdout).unwrap();
        let o = unwrap(&k, w["wrappedKey"].as_str().unwrap(), &[]);
        let back: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            back["key"],
            sovra_proto::b64::encode(b"a 21-byte key to wrap")
        );
    } else {
        assert_eq!(cli_code(&o), "UNSUPPORTED_ALGORITHM");
        assert_eq!(level, "HSM");
    }
    let o = s.cli(&["-o", "json", "encrypt", &k, "--plaintext", "x"]);
    assert_eq!(cli_code(&o), "WRONG_PURPOSE");
}

/// Release of an exportable key at `level`: the TEE unwraps a key that opens what the server
/// encrypted; `sha1_only` HSMs refuse the SHA-256 variant clearly.
fn release(s: &Server, level: &str, sha1_only: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = s.admin();
    let iss = issuer("k1");
    let _: Value = rt
        .block_on(admin.post(
            "/v1/release/issuers",
            &json!({"issuer": ISSUER, "certificates": [iss.cert_pem]}),
        ))
        .unwrap();
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": ISSUER, "allOf": [{"claim": "x-ms-attestation-type", "equals": "sevsnpvm"}]}]});
    let pfile = write(s, "release.json", &policy.to_string());
    s.ok(&["keyrings", "create", "rel"]);
    s.ok(&[
        "keys",
        "create",
        "rel/x",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &pfile,
        "--protection-level",
        &level.to_ascii_lowercase(),
    ]);
    let ct = s
        .ok(&["encrypt", "rel/x", "--plaintext", "for the TEE"])
        .trim()
        .to_string();
    let (tee_pkcs8, jwk) = tee_key();
    let good = json!({"x-ms-attestation-type": "sevsnpvm", "x-ms-runtime": {"keys": [jwk]}});
    let key = "/v1/locations/global/keyRings/rel/cryptoKeys/x";
    for enc in [ReleaseEnc::CkmRsaAesKeyWrap, ReleaseEnc::RsaAesKeyWrap256] {
        let r = rt.block_on(admin.post::<_, Value>(
            &format!("{key}:release"),
            &json!({"target": token(&iss, ISSUER, good.clone()), "enc": enc.name()}),
        ));
        if sha1_only && enc != ReleaseEnc::CkmRsaAesKeyWrap {
            assert_eq!(code(r), "UNSUPPORTED_ALGORITHM", "{enc:?}");
            continue;
        }
        let r = r.unwrap();
        let body = Jws::parse(r["value"].as_str().unwrap())
            .unwrap()
            .claims()
            .unwrap();
        let key_hsm: Value = serde_json::from_slice(
            &b64url_decode(body["response"]["key"]["key"]["key_hsm"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let blob = b64url_decode(key_hsm["ciphertext"].as_str().unwrap()).unwrap();
        let material = keywrap::unwrap(enc, tee_pkcs8.expose(), &blob).unwrap();
        let aes = sovra_crypto::LoadedKey::load(
            sovra_proto::kms::Algorithm::Aes256Gcm,
            material.expose(),
        )
        .unwrap();
        let pt = sovra_crypto::symmetric::open(&aes, b"", &sovra_proto::b64::decode(&ct).unwrap())
            .unwrap();
        assert_eq!(pt.expose(), b"for the TEE", "{level} {enc:?}");
    }
}

#[test]
fn both_protection_levels_on_the_software_hsm() {
    let s = Server::start();
    exercise(&s, "soft", "SOFTWARE", &[]);
    exercise(&s, "hsm", "HSM", &[]);
    release(&s, "HSM", false);
    // Keys created without a level take the deployment's default: SOFTWARE here.
    s.ok(&["keys", "create", "soft/dflt", "--purpose", "encrypt"]);
    assert_eq!(
        s.json(&["versions", "get", "soft/dflt", "1"])["protectionLevel"],
        "SOFTWARE"
    );
}

fn pkcs11_env(token: &softhsm::Token, conf: &str, pin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SOFTHSM2_CONF", conf.to_owned()),
        ("SOVRA_HSM_BACKEND", "pkcs11".to_owned()),
        ("SOVRA_PKCS11_MODULE", softhsm::MODULE.to_owned()),
        ("SOVRA_PKCS11_TOKEN_LABEL", token.label.clone()),
        ("SOVRA_PKCS11_PIN_FILE", pin.to_owned()),
    ]
}

#[test]
fn both_protection_levels_on_softhsm2() {
    let (_token, mut s) = softhsm_server("levels", &[]);
    exercise(&s, "soft", "SOFTWARE", &[]);
    exercise(
        &s,
        "hsm",
        "HSM",
        &["EC_SIGN_ED25519", "RSA_DECRYPT_OAEP_2048_SHA256"],
    );
    release(&s, "HSM", true);
    // With a PKCS#11 HSM, keys created without a level are HSM keys.
    s.ok(&["keys", "create", "soft/dflt", "--purpose", "encrypt"]);
    assert_eq!(
        s.json(&["versions", "get", "soft/dflt", "1"])["protectionLevel"],
        "HSM"
    );
    let ct = s
        .ok(&["encrypt", "soft/dflt", "--plaintext", "kept"])
        .trim()
        .to_string();
    // Creation and rotation record the level and what the HSM reported, in the audit log.
    let log = s.ok(&["audit", "export"]);
    let hsm_creations = log
        .lines()
        .filter(|l| l.contains("\"protectionLevel\":\"HSM\"") && l.contains("\"local\":true"))
        .count();
    assert!(hsm_creations >= 6, "{log}");
    let sig = s
        .ok(&["sign", "hsm/sig0", "--data", "m"])
        .trim()
        .to_string();

    // The stored row holds only what the HSM wrapped: no clear key, a public key bound to it.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let row = |name: &str| -> Value {
        let data: Vec<u8> = conn
            .query_row(
                "SELECT data FROM objects WHERE collection='versions' AND name=?1",
                [name],
                |r| r.get(0),
            )
            .unwrap();
        row_json(&data)
    };
    let sig_row = "locations/global/keyRings/hsm/cryptoKeys/sig0/v/0000000001";
    let rec = row(sig_row);
    assert_eq!(rec["protection_level"], "HSM");
    assert_eq!(rec["hsm_attributes"]["local"], true, "{rec}");
    assert_eq!(rec["hsm_attributes"]["sensitive"], true, "{rec}");
    assert!(rec["public_key"].is_string());

    // A PKCS#11 HSM's keys never leave it: no security domain (its own backup does that).
    let admins = tempfile::tempdir().unwrap();
    let certs: Vec<String> = ["a", "b", "c"]
        .map(|n| {
            let a = crate::security_domain::admin(admins.path(), n);
            a.cert.display().to_string()
        })
        .to_vec();
    let out = admins.path().join("sd.json").display().to_string();
    let o = s.cli(&[
        "-o",
        "json",
        "security-domain",
        "download",
        "--cert",
        &certs[0],
        "--cert",
        &certs[1],
        "--cert",
        &certs[2],
        "--quorum",
        "2",
        "--out",
        &out,
    ]);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_UNSUPPORTED");

    // After a restart (new session objects) the HSM keys still work.
    s.terminate();
    s.boot();
    assert_eq!(s.ok(&["decrypt", "soft/dflt", "--ciphertext", &ct]), "kept");
    assert_eq!(
        s.ok(&["verify", "hsm/sig0", "--data", "m", "--signature", &sig])
            .trim(),
        "valid"
    );

    // A public key swapped in the row (to make clients trust another key) is refused: the
    // row's seal catches it first, and the public key is also bound into the material's wrap.
    let other = row("locations/global/keyRings/hsm/cryptoKeys/sig1/v/0000000001");
    let mut rec = row(sig_row);
    rec["public_key"] = other["public_key"].clone();
    conn.execute(
        "UPDATE objects SET data=?1 WHERE collection='versions' AND name=?2",
        rusqlite::params![serde_json::to_vec(&rec).unwrap(), sig_row],
    )
    .unwrap();
    drop(conn);
    s.terminate();
    s.boot();
    let o = s.cli(&["-o", "json", "public-key", "hsm/sig0"]);
    assert_eq!(
        cli_code(&o),
        "INTEGRITY_FAILURE",
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Holds POSIX write locks on every object file of the token for `secs`, the way a second
/// process busy in the token does: SoftHSM2 waits for such a lock before reading a token
/// object, so until it ends the HSM hangs on any call that needs one (session objects, the
/// loaded HSM-level keys, keep working). Returns once the locks are held.
fn hang_token(dir: &std::path::Path, secs: u64) -> std::process::Child {
    let script = "import fcntl,glob,os,sys,time\n\
fds=[os.open(f,os.O_RDWR) for f in glob.glob(sys.argv[1]+'/*/*')]\n\
[fcntl.lockf(fd,fcntl.LOCK_EX) for fd in fds]\n\
print(len(fds),flush=True)\n\
time.sleep(float(sys.argv[2]))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap(), &secs.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed to hold the token's file locks");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.trim().parse::<u32>().unwrap() > 0,
        "no token files locked"
    );
    child
}

#[test]
fn a_hung_hsm_answers_503_without_stalling_other_requests_and_recovers_by_itself() {
    let (token, mut s) = softhsm_server(
        "hang",
        &[
            ("SOVRA_HSM_CALL_TIMEOUT_SECS", "2"),
            ("SOVRA_HSM_SESSIONS", "2"),
        ],
    );
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&[
        "keys",
        "create",
        "r/sw",
        "--purpose",
        "encrypt",
        "--protection-level",
        "software",
    ]);
    s.ok(&[
        "keys",
        "create",
        "r/sw2",
        "--purpose",
        "encrypt",
        "--protection-level",
        "software",
    ]);
    s.ok(&["keys", "create", "r/hk", "--purpose", "encrypt"]);
    let ct_sw2 = s
        .ok(&["encrypt", "r/sw2", "--plaintext", "cached"])
        .trim()
        .to_string();
    let ct_sw = s
        .ok(&["encrypt", "r/sw", "--plaintext", "soft"])
        .trim()
        .to_string();
    let ct_hk = s
        .ok(&["encrypt", "r/hk", "--plaintext", "hard"])
        .trim()
        .to_string();
    // Empty caches: the software key's material must be unwrapped by the HSM again.
    s.terminate();
    s.boot();
    assert_eq!(
        s.ok(&["decrypt", "r/sw2", "--ciphertext", &ct_sw2]),
        "cached"
    );

    let mut locker = hang_token(&token.tokens_dir(), 12);
    let started = std::time::Instant::now();
    // More calls needing the token than there are sessions, at once: each fails by itself
    // within the timeout with HSM_UNAVAILABLE (503, Retry-After)... (Concurrently, so that on a
    // loaded machine they are all made while the token is still held.)
    let hung: Vec<_> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|i| {
                let (s, ct_sw) = (&s, &ct_sw);
                scope.spawn(move || {
                    let o = if i % 2 == 0 {
                        s.cli(&["-o", "json", "decrypt", "r/sw", "--ciphertext", ct_sw])
                    } else {
                        s.cli(&[
                            "-o",
                            "json",
                            "keys",
                            "create",
                            &format!("r/new{i}"),
                            "--purpose",
                            "sign",
                        ])
                    };
                    (cli_code(&o), String::from_utf8_lossy(&o.stderr).to_string())
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (code, err) in &hung {
        assert_eq!(code, "HSM_UNAVAILABLE", "{err}");
        assert!(
            !err.contains("Function::"),
            "no HSM internals in the response: {err}"
        );
    }
    // ...while requests that do not need the HSM stay fast (a software key already loaded).
    let t = std::time::Instant::now();
    s.ok(&["whoami"]);
    s.ok(&["keyrings", "list"]);
    assert_eq!(
        s.ok(&["decrypt", "r/sw2", "--ciphertext", &ct_sw2]),
        "cached"
    );
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "the failures came from the timeout, not from the HSM coming back"
    );

    // The HSM comes back: the server recovers by itself, no restart.
    locker.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let o = s.cli(&["-o", "json", "decrypt", "r/sw", "--ciphertext", &ct_sw]);
        if o.status.success() {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["plaintext"], sovra_proto::b64::encode(b"soft"));
            break;
        }
        assert_eq!(cli_code(&o), "HSM_UNAVAILABLE");
        assert!(std::time::Instant::now() < deadline, "no recovery");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(s.ok(&["decrypt", "r/hk", "--ciphertext", &ct_hk]), "hard");
    s.ok(&["keys", "create", "r/after", "--purpose", "sign"]);
    let sig = s.ok(&["sign", "r/after", "--data", "x"]).trim().to_string();
    assert_eq!(
        s.ok(&["verify", "r/after", "--data", "x", "--signature", &sig])
            .trim(),
        "valid"
    );
}

/// `sovra keys attestation verify STATEMENT --root ROOT` (JSON output).
fn verify_statement(
    s: &Server,
    stmt: &std::path::Path,
    root: &std::path::Path,
) -> std::process::Output {
    s.cli(&[
        "-o",
        "json",
        "keys",
        "attestation",
        "verify",
        stmt.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ])
}

/// A server on a fresh SoftHSM2 token labelled `label`, with `extra` settings.
fn softhsm_server(label: &str, extra: &[(&str, &str)]) -> (softhsm::Token, Server) {
    let token = softhsm::Token::new(label);
    let (conf, pin) = (token.conf(), token.pin_file());
    let mut env = pkcs11_env(&token, conf.to_str().unwrap(), pin.to_str().unwrap());
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start_with(&env);
    (token, s)
}

/// The first PEM certificate of `text`.
fn first_pem(text: &str) -> String {
    let end = "-----END CERTIFICATE-----";
    let i = text.find(end).expect("a PEM certificate") + end.len();
    format!("{}\n", &text[..i])
}

#[test]
fn key_attestation_statements_verify_offline_with_only_the_owner_root() {
    let (_token, mut s) = softhsm_server("attest", &[]);
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&[
        "keys",
        "create",
        "r/sig",
        "--purpose",
        "sign",
        "--algorithm",
        "EC_SIGN_P384_SHA384",
    ]);
    s.ok(&[
        "keys",
        "create",
        "r/sw",
        "--purpose",
        "encrypt",
        "--protection-level",
        "software",
    ]);
    let root = s.dir.join("owner-root.pem");
    std::fs::write(&root, first_pem(&s.ok(&["keys", "attestation", "roots"]))).unwrap();
    let stmt = s.dir.join("sig-1.jws");
    std::fs::write(&stmt, s.ok(&["keys", "attestation", "get", "r/sig", "1"])).unwrap();
    let name = "locations/global/keyRings/r/cryptoKeys/sig/cryptoKeyVersions/1";

    // Offline: no server URL or token, only the owner root.
    let verify = |file: &std::path::Path, root: &std::path::Path, expect: &str| {
        std::process::Command::new(BIN)
            .args(["-o", "json", "keys", "attestation", "verify"])
            .arg(file)
            .arg("--root")
            .arg(root)
            .args(["--expect", expect])
            .env_remove("SOVRA_TOKEN")
            .env("SOVRA_URL", "https://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let o = verify(&stmt, &root, name);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let st = &v["statement"];
    assert_eq!(st["name"], name);
    assert_eq!(st["algorithm"], "EC_SIGN_P384_SHA384");
    assert_eq!(st["protectionLevel"], "HSM");
    assert_eq!(st["origin"], "HSM_GENERATED");
    assert_eq!(st["hsm"], "pkcs11");
    assert_eq!(st["local"], true);
    assert_eq!(st["sensitive"], true);
    assert_eq!(st["alwaysSensitive"], true);
    assert_eq!(
        st["neverExtractable"], false,
        "extractable by wrapping, and said so"
    );
    let spki = pem_der(&s.ok(&["public-key", "r/sig"]));
    assert_eq!(
        st["publicKeySha256"],
        sovra_proto::hex::encode(&sovra_crypto::sha256(&spki)),
        "the statement names the public key the server serves"
    );
    assert!(v["signer"].as_str().unwrap().contains("pkcs11"), "{v}");

    // A software-level key is attested as what it is.
    let sw = s.dir.join("sw-1.jws");
    std::fs::write(&sw, s.ok(&["keys", "attestation", "get", "r/sw", "1"])).unwrap();
    let o = verify(
        &sw,
        &root,
        "locations/global/keyRings/r/cryptoKeys/sw/cryptoKeyVersions/1",
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["statement"]["origin"], "SOFTWARE_GENERATED", "{v}");
    assert!(v["statement"].get("local").is_none());

    // A statement for another version, an altered statement, another deployment's root.
    assert_eq!(
        cli_code(&verify(&sw, &root, name)),
        "KEY_ATTESTATION_WRONG_VERSION"
    );
    let jws = std::fs::read_to_string(&stmt).unwrap();
    let parts: Vec<&str> = jws.trim().split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
    claims["protectionLevel"] = json!("SOFTWARE");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        sovra_crypto::jws::b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    let forged_file = s.dir.join("forged.jws");
    std::fs::write(&forged_file, forged).unwrap();
    assert_eq!(
        cli_code(&verify(&forged_file, &root, name)),
        "KEY_ATTESTATION_SIGNATURE_INVALID"
    );
    let other = Server::start();
    let other_root = other.dir.join("owner-root.pem");
    std::fs::write(
        &other_root,
        first_pem(&other.ok(&["keys", "attestation", "roots"])),
    )
    .unwrap();
    assert_eq!(
        cli_code(&verify(&stmt, &other_root, name)),
        "KEY_ATTESTATION_CHAIN_INVALID"
    );
    std::fs::write(s.dir.join("junk.jws"), "not.a.jws").unwrap();
    assert_eq!(
        cli_code(&verify(&s.dir.join("junk.jws"), &root, name)),
        "KEY_ATTESTATION_MALFORMED"
    );

    let log = s.ok(&["audit", "export"]);
    assert_eq!(
        log.matches("keyAttestation.ownerRoot.create").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("keyAttestation.certificate.issue").count(),
        1,
        "{log}"
    );

    // Rotation attests the new version; the owner root survives a restart.
    s.ok(&["keys", "rotate", "r/sig"]);
    s.terminate();
    s.boot();
    std::fs::write(&stmt, s.ok(&["keys", "attestation", "get", "r/sig", "2"])).unwrap();
    let o = verify(&stmt, &root, &name.replace("Versions/1", "Versions/2"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        first_pem(&s.ok(&["keys", "attestation", "roots"])),
        std::fs::read_to_string(&root).unwrap()
    );
}

#[test]
fn an_owner_root_held_by_the_operators_ca_certifies_the_hsm_attestation_key() {
    let (_token, s) = softhsm_server("opca", &[]);
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&["keys", "create", "r/before", "--purpose", "encrypt"]);
    let before = s.dir.join("before.jws");
    std::fs::write(
        &before,
        s.ok(&["keys", "attestation", "get", "r/before", "1"]),
    )
    .unwrap();
    let sovra_root = s.dir.join("sovra-root.pem");
    std::fs::write(
        &sovra_root,
        first_pem(&s.ok(&["keys", "attestation", "roots"])),
    )
    .unwrap();

    // The operator's CA, outside Sovra.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Operator CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let ca_pem = s.dir.join("operator-ca.pem");
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();

    // Sovra prints a CSR signed inside the HSM; the CA checks it and certifies the key.
    let csr = s.ok(&["keys", "attestation", "csr"]);
    let req = rcgen::CertificateSigningRequestParams::from_pem(&csr)
        .expect("the CSR parses and its HSM signature verifies");
    let cert = req.signed_by(&ca).unwrap();
    let cert_pem = s.dir.join("attestation.pem");
    std::fs::write(&cert_pem, cert.pem()).unwrap();

    // Only an administrator installs it, and only a certificate for this HSM's key is taken.
    let user = s.json(&["tokens", "create", "--principal", "bob"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let set = |tok: Option<&str>, cert: &std::path::Path| {
        let args = [
            "-o",
            "json",
            "keys",
            "attestation",
            "set-roots",
            "--root",
            ca_pem.to_str().unwrap(),
            "--certificate",
            cert.to_str().unwrap(),
        ];
        match tok {
            Some(t) => s.cli_as(t, &args),
            None => s.cli(&args),
        }
    };
    assert_eq!(cli_code(&set(Some(&user), &cert_pem)), "PERMISSION_DENIED");
    let other_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let wrong = rcgen::CertificateParams::default()
        .signed_by(&other_key, &ca)
        .unwrap();
    let wrong_pem = s.dir.join("wrong.pem");
    std::fs::write(&wrong_pem, wrong.pem()).unwrap();
    let o = set(None, &wrong_pem);
    assert_eq!(cli_code(&o), "INVALID_ARGUMENT");
    assert!(String::from_utf8_lossy(&o.stderr).contains("another key"));
    let o = set(None, &cert_pem);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        first_pem(&s.ok(&["keys", "attestation", "roots"])),
        ca_cert.pem().replace("\r\n", "\n")
    );

    // New statements chain to the operator's CA; the earlier one still to the root it was
    // made under, and neither to the other root.
    s.ok(&["keys", "create", "r/after", "--purpose", "sign"]);
    let after = s.dir.join("after.jws");
    std::fs::write(
        &after,
        s.ok(&["keys", "attestation", "get", "r/after", "1"]),
    )
    .unwrap();
    let verify = |stmt: &std::path::Path, root: &std::path::Path| {
        s.cli(&[
            "-o",
            "json",
            "keys",
            "attestation",
            "verify",
            stmt.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ])
    };
    assert!(verify(&after, &ca_pem).status.success());
    assert!(verify(&before, &sovra_root).status.success());
    assert_eq!(
        cli_code(&verify(&after, &sovra_root)),
        "KEY_ATTESTATION_CHAIN_INVALID"
    );
    assert_eq!(
        cli_code(&verify(&before, &ca_pem)),
        "KEY_ATTESTATION_CHAIN_INVALID"
    );
    assert!(
        s.ok(&["audit", "export"])
            .contains("keyAttestation.ownerRoot.set")
    );
}

#[test]
fn existing_keys_are_imported_without_anyone_seeing_them() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let (_token, s) = softhsm_server("byok", &[]);
    s.ok(&["keyrings", "create", "r"]);
    for (id, purpose, alg) in [
        ("aes", "encrypt", "AES_256_GCM"),
        ("ec", "sign", "EC_SIGN_P256_SHA256"),
        ("rsa", "sign", "RSA_SIGN_PSS_2048_SHA256"),
    ] {
        s.ok(&[
            "keys",
            "create",
            &format!("r/{id}"),
            "--purpose",
            purpose,
            "--algorithm",
            alg,
            "--skip-initial-version",
        ]);
    }
    // A principal that may import, and nothing else.
    let imp = s.json(&["tokens", "create", "--principal", "importer"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "importer",
        "--role",
        "key-importer",
        "--scope",
        "r",
    ]);
    let job = s.cli_as(
        &imp,
        &["-o", "json", "keys", "import-job", "create", "r/job1"],
    );
    assert!(
        job.status.success(),
        "{}",
        String::from_utf8_lossy(&job.stderr)
    );
    let job: Value = serde_json::from_slice(&job.stdout).unwrap();
    assert_eq!(job["state"], "ACTIVE");
    assert_eq!(job["protectionLevel"], "HSM");
    assert_eq!(job["importMethod"], "RSA_OAEP_3072_SHA1_AES_256");
    // The wrapping key is attested like any key: generated inside this HSM.
    let root = s.dir.join("root.pem");
    std::fs::write(&root, first_pem(&s.ok(&["keys", "attestation", "roots"]))).unwrap();
    let job_stmt = s.dir.join("job.jws");
    std::fs::write(&job_stmt, job["attestation"]["content"].as_str().unwrap()).unwrap();
    let o = verify_statement(&s, &job_stmt, &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["statement"]["origin"], "HSM_GENERATED");
    assert_eq!(st["statement"]["local"], true);
    let job_spki = pem_der(job["publicKey"].as_str().unwrap());

    // The keys, as an owner has them: raw AES bytes, PKCS#8 PEM for EC and RSA.
    let aes = sovra_crypto::random::bytes(32).unwrap();
    let aes_file = s.dir.join("aes.bin");
    std::fs::write(&aes_file, &aes).unwrap();
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let ec_file = s.dir.join("ec.pem");
    std::fs::write(
        &ec_file,
        sovra_crypto::keys::pem("PRIVATE KEY", ec.to_pkcs8v1().unwrap().as_ref()),
    )
    .unwrap();
    let rsa = sovra_crypto::generate(sovra_proto::kms::Algorithm::RsaSignPss2048Sha256).unwrap();
    let rsa_file = s.dir.join("rsa.pem");
    std::fs::write(
        &rsa_file,
        sovra_crypto::keys::pem("PRIVATE KEY", rsa.expose()),
    )
    .unwrap();
    for (key, file, alg) in [
        ("r/aes", &aes_file, "AES_256_GCM"),
        ("r/ec", &ec_file, "EC_SIGN_P256_SHA256"),
        ("r/rsa", &rsa_file, "RSA_SIGN_PSS_2048_SHA256"),
    ] {
        let o = s.cli_as(
            &imp,
            &[
                "-o",
                "json",
                "keys",
                "import",
                key,
                "--job",
                "r/job1",
                "--key-file",
                file.to_str().unwrap(),
                "--algorithm",
                alg,
            ],
        );
        assert!(
            o.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["protectionLevel"], "HSM", "{v}");
    }
    // The importer cannot use what it imported.
    assert_eq!(
        cli_code(&s.cli_as(
            &imp,
            &["-o", "json", "encrypt", "r/aes", "--plaintext", "x"]
        )),
        "PERMISSION_DENIED"
    );

    // Known answers: the imported keys are the owner's keys.
    let original =
        sovra_crypto::LoadedKey::load(sovra_proto::kms::Algorithm::Aes256Gcm, &aes).unwrap();
    let ct = s
        .ok(&["encrypt", "r/aes", "--plaintext", "made in the HSM"])
        .trim()
        .to_string();
    let pt = sovra_crypto::symmetric::open(&original, b"", &sovra_proto::b64::decode(&ct).unwrap())
        .unwrap();
    assert_eq!(pt.expose(), b"made in the HSM");
    let mine = sovra_crypto::symmetric::seal(&original, 1, b"", b"made by the owner").unwrap();
    assert_eq!(
        s.ok(&[
            "decrypt",
            "r/aes",
            "--ciphertext",
            &sovra_proto::b64::encode(&mine)
        ]),
        "made by the owner"
    );
    let sig = s
        .ok(&["sign", "r/ec", "--data", "hello"])
        .trim()
        .to_string();
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        ec.public_key().as_ref(),
    )
    .verify(b"hello", &sovra_proto::b64::decode(&sig).unwrap())
    .expect("the imported EC key is the owner's");
    let rsa_loaded = sovra_crypto::LoadedKey::load(
        sovra_proto::kms::Algorithm::RsaSignPss2048Sha256,
        rsa.expose(),
    )
    .unwrap();
    let sig = s
        .ok(&["sign", "r/rsa", "--data", "hello"])
        .trim()
        .to_string();
    assert!(
        rsa_loaded
            .verify(
                sovra_crypto::SignInput::Data(b"hello"),
                &sovra_proto::b64::decode(&sig).unwrap()
            )
            .unwrap()
    );

    // The version's statement says it was imported, and through which wrapping key.
    let stmt = s.dir.join("ec.jws");
    std::fs::write(&stmt, s.ok(&["keys", "attestation", "get", "r/ec", "1"])).unwrap();
    let o = verify_statement(&s, &stmt, &root);
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["statement"]["origin"], "IMPORTED", "{st}");
    assert_eq!(
        st["statement"]["importWrappingKeySha256"],
        sovra_proto::hex::encode(&sovra_crypto::sha256(&job_spki))
    );
    assert_eq!(st["statement"]["local"], false);

    // Each wrong input is refused with its own code, and none uses the job up.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = s.client_as(&imp);
    let job_name = job["name"].as_str().unwrap().to_string();
    let key = "locations/global/keyRings/r/cryptoKeys/aes";
    let import = |wrapped: Vec<u8>, alg: &str, job: &str| {
        rt.block_on(c.import_version(
            key,
            &sovra_proto::kms::ImportVersionRequest {
                import_job: job.to_string(),
                algorithm: serde_json::from_value(json!(alg)).unwrap(),
                wrapped_key: sovra_proto::b64::encode(&wrapped),
                public_key: None,
                crypto_key_version: None,
            },
        ))
    };
    let good = keywrap::wrap(ReleaseEnc::CkmRsaAesKeyWrap, &job_spki, &aes).unwrap();
    let mut corrupted = good.clone();
    corrupted[400] ^= 1;
    assert_eq!(
        code(import(corrupted, "AES_256_GCM", &job_name)),
        "IMPORT_INVALID"
    );
    let wrong_method = keywrap::wrap(ReleaseEnc::RsaAesKeyWrap256, &job_spki, &aes).unwrap();
    assert_eq!(
        code(import(wrong_method, "AES_256_GCM", &job_name)),
        "IMPORT_INVALID"
    );
    let short = keywrap::wrap(ReleaseEnc::CkmRsaAesKeyWrap, &job_spki, &aes[..16]).unwrap();
    assert_eq!(
        code(import(short, "AES_256_GCM", &job_name)),
        "IMPORT_INVALID"
    );
    assert_eq!(
        code(import(good.clone(), "EC_SIGN_P256_SHA256", &job_name)),
        "WRONG_PURPOSE"
    );
    assert_eq!(
        code(import(
            good.clone(),
            "AES_256_GCM",
            "locations/global/keyRings/r/importJobs/nope"
        )),
        "IMPORT_JOB_NOT_FOUND"
    );
    // The same material again, through the same job: a new version, the same key.
    let v = import(good, "AES_256_GCM", &job_name).unwrap();
    assert_eq!(v.name, format!("{key}/cryptoKeyVersions/2"));
    let sovra_v2 = s.ok(&["versions", "get", "r/aes", "2"]);
    assert!(sovra_v2.contains("ENABLED"), "{sovra_v2}");

    // A SHA-256 job on SoftHSM2 (OAEP with SHA-1 only) works where it can: not inside it.
    let o = s.cli_as(
        &imp,
        &[
            "-o",
            "json",
            "keys",
            "import-job",
            "create",
            "r/job256",
            "--method",
            "RSA_OAEP_3072_SHA256_AES_256",
        ],
    );
    assert!(o.status.success());
    let o = s.cli_as(
        &imp,
        &[
            "-o",
            "json",
            "keys",
            "import",
            "r/aes",
            "--job",
            "r/job256",
            "--key-file",
            aes_file.to_str().unwrap(),
            "--algorithm",
            "AES_256_GCM",
        ],
    );
    assert_eq!(cli_code(&o), "PROTECTION_LEVEL_UNAVAILABLE");
    assert!(String::from_utf8_lossy(&o.stderr).contains("SHA-256"));
    let jobs = s.json(&["keys", "import-job", "list", "r"]);
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "locations/global/keyRings/r/importJobs/job1",
            "locations/global/keyRings/r/importJobs/job256"
        ]
    );
    let log = s.ok(&["audit", "export"]);
    assert!(log.contains("importJobs.create") && log.contains("cryptoKeyVersions.import"));
}

/// An independent implementation of the import wrapping: Python's `cryptography` (PyPI).
const PY_WRAP: &str = r#"
import base64, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
d = sys.argv[1]
job = serialization.load_pem_public_key(open(d + "/job.pem", "rb").read())
def wrap(material):
    transfer = os.urandom(32)
    head = job.encrypt(transfer, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    return base64.b64encode(head + aes_key_wrap_with_padding(transfer, material)).decode()
aes = os.urandom(32)
open(d + "/aes.key", "wb").write(aes)
open(d + "/aes.wrapped", "w").write(wrap(aes))
key = ec.generate_private_key(ec.SECP256R1())
der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
open(d + "/ec.wrapped", "w").write(wrap(der))
pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
open(d + "/ec.pub.pem", "wb").write(pub)
"#;

/// Opens Sovra's ciphertext format and checks a P-256 signature, in Python.
const PY_CHECK: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
d, ct, sig = sys.argv[1], base64.b64decode(sys.argv[2]), base64.b64decode(sys.argv[3])
aes = open(d + "/aes.key", "rb").read()
header, nonce, body = ct[:5], ct[5:17], ct[17:]
print(AESGCM(aes).decrypt(nonce, body, header).decode())
pub = serialization.load_pem_public_key(open(d + "/ec.pub.pem", "rb").read())
pub.verify(sig, b"hello", ec.ECDSA(hashes.SHA256()))
print("signature ok")
"#;

fn python_with_cryptography() -> &'static str {
    let has = |py: &str| {
        std::process::Command::new(py)
            .args(["-c", "import cryptography"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has("python3") {
        let st = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "cryptography",
            ])
            .status()
            .expect("python3 is needed");
        assert!(st.success(), "pip install cryptography failed");
    }
    assert!(
        has("python3"),
        "Python's cryptography package is not importable"
    );
    "python3"
}

#[test]
fn import_wrapping_interoperates_with_pythons_cryptography() {
    let py = python_with_cryptography();
    let (_token, s) = softhsm_server("pyimport", &[]);
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&[
        "keys",
        "create",
        "r/aes",
        "--purpose",
        "encrypt",
        "--skip-initial-version",
    ]);
    s.ok(&[
        "keys",
        "create",
        "r/ec",
        "--purpose",
        "sign",
        "--algorithm",
        "EC_SIGN_P256_SHA256",
        "--skip-initial-version",
    ]);
    let job = s.json(&["keys", "import-job", "create", "r/py"]);
    let d = s.dir.join("py");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("job.pem"), job["publicKey"].as_str().unwrap()).unwrap();
    let o = std::process::Command::new(py)
        .args(["-c", PY_WRAP, d.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // What Python wrapped, the HSM opens (the client here is only a messenger).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = s.admin();
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    for (key, alg, wrapped, public) in [
        ("aes", "AES_256_GCM", read("aes.wrapped"), None),
        (
            "ec",
            "EC_SIGN_P256_SHA256",
            read("ec.wrapped"),
            Some(read("ec.pub.pem")),
        ),
    ] {
        let v = rt
            .block_on(admin.import_version(
                &format!("locations/global/keyRings/r/cryptoKeys/{key}"),
                &sovra_proto::kms::ImportVersionRequest {
                    import_job: job["name"].as_str().unwrap().to_string(),
                    algorithm: serde_json::from_value(json!(alg)).unwrap(),
                    wrapped_key: wrapped,
                    public_key: public,
                    crypto_key_version: None,
                },
            ))
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert_eq!(v.protection_level, sovra_proto::kms::ProtectionLevel::Hsm);
    }
    // ...and what the HSM then does, Python checks with the keys it made.
    let ct = s.json(&["encrypt", "r/aes", "--plaintext", "from the HSM"])["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    let sig = s
        .ok(&["sign", "r/ec", "--data", "hello"])
        .trim()
        .to_string();
    let o = std::process::Command::new(py)
        .args(["-c", PY_CHECK, d.to_str().unwrap(), &ct, &sig])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "from the HSM\nsignature ok\n"
    );
}

/// A destroyed imported version comes back with the same material, and only with it.
fn reimport(s: &Server) {
    s.ok(&["settings", "set", "--min-destroy-scheduled-duration", "0s"]);
    s.ok(&["keyrings", "create", "re"]);
    for (id, purpose, alg) in [
        ("aes", "encrypt", "AES_256_GCM"),
        ("gen", "encrypt", "AES_256_GCM"),
    ] {
        let mut args = vec![
            "keys",
            "create",
            "",
            "--purpose",
            purpose,
            "--algorithm",
            alg,
            "--destroy-scheduled-duration",
            "1s",
        ];
        let name = format!("re/{id}");
        args[2] = &name;
        if id == "aes" {
            args.push("--skip-initial-version");
        }
        s.ok(&args);
    }
    s.ok(&["keys", "import-job", "create", "re/job"]);
    let dir = tempfile::tempdir().unwrap();
    let (mine, other) = (dir.path().join("mine.bin"), dir.path().join("other.bin"));
    std::fs::write(&mine, [0x11u8; 32]).unwrap();
    std::fs::write(&other, [0x22u8; 32]).unwrap();
    let import = |file: &std::path::Path, key: &str, version: Option<&str>| {
        let mut args = vec![
            "-o",
            "json",
            "keys",
            "import",
            key,
            "--job",
            "re/job",
            "--key-file",
            file.to_str().unwrap(),
            "--algorithm",
            "AES_256_GCM",
        ];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        s.cli(&args)
    };
    let o = import(&mine, "re/aes", None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ct = s
        .ok(&["encrypt", "re/aes", "--plaintext", "before destruction"])
        .trim()
        .to_string();
    // Not while it is enabled; never into a generated version.
    assert_eq!(
        cli_code(&import(&mine, "re/aes", Some("1"))),
        "INVALID_STATE_TRANSITION"
    );
    for key in ["re/aes", "re/gen"] {
        s.json(&["versions", "destroy", key, "1"]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.json(&["versions", "get", "re/aes", "1"])["state"] != "DESTROYED"
        || s.json(&["versions", "get", "re/gen", "1"])["state"] != "DESTROYED"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not destroyed in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "decrypt", "re/aes", "--ciphertext", &ct])),
        "KEY_VERSION_DESTROYED"
    );
    assert_eq!(
        cli_code(&import(&mine, "re/gen", Some("1"))),
        "INVALID_STATE_TRANSITION"
    );
    // Other material is refused, and the version stays destroyed.
    assert_eq!(
        cli_code(&import(&other, "re/aes", Some("1"))),
        "IMPORT_INVALID"
    );
    assert_eq!(
        s.json(&["versions", "get", "re/aes", "1"])["state"],
        "DESTROYED"
    );
    // The same material: the version is back, and so are its ciphertexts.
    let o = import(&mine, "re/aes", Some("1"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["name"]
            .as_str()
            .unwrap()
            .ends_with("/cryptoKeyVersions/1"),
        "{v}"
    );
    assert_eq!(
        s.ok(&["decrypt", "re/aes", "--ciphertext", &ct]),
        "before destruction"
    );
    assert_eq!(
        s.json(&["versions", "get", "re/aes", "1"])["state"],
        "ENABLED"
    );
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.contains("\"reimport\":true"),
        "the re-import is audited"
    );
}

#[test]
fn a_destroyed_imported_version_is_imported_again_only_with_its_own_material() {
    let s = Server::start_with(&[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    reimport(&s);
    let (_token, s) = softhsm_server("reimport", &[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    reimport(&s);
}

/// Rotating the HSM's attestation key: new statements chain to the same owner root through a
/// new certificate; statements made before stay verifiable; only an administrator rotates.
fn rotate_attestation(s: &mut Server) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, first_pem(&s.ok(&["keys", "attestation", "roots"]))).unwrap();
    let leaf =
        |s: &Server| s.json(&["keys", "attestation", "roots"])["attestationCertificate"].clone();
    s.ok(&["keyrings", "create", "att"]);
    s.ok(&["keys", "create", "att/before", "--purpose", "encrypt"]);
    let before = dir.path().join("before.jws");
    std::fs::write(
        &before,
        s.ok(&["keys", "attestation", "get", "att/before", "1"]),
    )
    .unwrap();
    let old_leaf = leaf(s);

    let user = s.json(&["tokens", "create", "--principal", "officer"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "officer",
        "--role",
        "crypto-officer",
    ]);
    assert_eq!(
        cli_code(&s.cli_as(&user, &["-o", "json", "keys", "attestation", "rotate"])),
        "PERMISSION_DENIED"
    );
    let r = s.json(&["keys", "attestation", "rotate"]);
    let new_key = r["publicKeySha256"].as_str().unwrap().to_string();

    s.ok(&["keys", "create", "att/after", "--purpose", "encrypt"]);
    let after = dir.path().join("after.jws");
    std::fs::write(
        &after,
        s.ok(&["keys", "attestation", "get", "att/after", "1"]),
    )
    .unwrap();
    assert_ne!(leaf(s), old_leaf, "a new certificate for the new key");
    for stmt in [&before, &after] {
        let o = verify_statement(s, stmt, &root);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // The new key survives a restart (it is the HSM's key now).
    s.terminate();
    s.boot();
    s.ok(&["keys", "create", "att/restarted", "--purpose", "encrypt"]);
    let restarted = dir.path().join("restarted.jws");
    std::fs::write(
        &restarted,
        s.ok(&["keys", "attestation", "get", "att/restarted", "1"]),
    )
    .unwrap();
    let o = verify_statement(s, &restarted, &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = s.ok(&["audit", "export"]);
    let rotated = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .find(|e| e["action"] == "keyAttestation.key.rotate" && e["outcome"] == "ok")
        .expect("the rotation is audited");
    assert_eq!(rotated["detail"]["publicKeySha256"], new_key.as_str());
    assert_ne!(
        rotated["detail"]["previousPublicKeySha256"],
        rotated["detail"]["publicKeySha256"]
    );
}

#[test]
fn the_hsm_attestation_key_rotates_and_earlier_statements_stay_verifiable() {
    let mut s = Server::start();
    rotate_attestation(&mut s);
    let (_token, mut s) = softhsm_server("rotate", &[]);
    rotate_attestation(&mut s);
}

/// `sovra serve` on `dir` with `env`: whether it failed to start, and what it printed.
fn start_fails(dir: &std::path::Path, env: &[(String, String)]) -> String {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .env("SOVRA_LOG_LEVEL", "warn")
    .env_remove("SOVRA_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let o = child.wait_with_output().unwrap();
            return String::from_utf8_lossy(&o.stderr).into_owned();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("sovra serve started (or hung) where it should have refused");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_software_hsm_unseal_key_can_live_in_a_pkcs11_token() {
    // A node on the default unseal-key file, with a key and a ciphertext.
    let mut s = Server::start();
    s.ok(&["keyrings", "create", "u"]);
    s.ok(&["keys", "create", "u/k", "--purpose", "encrypt"]);
    let ct = s
        .ok(&["encrypt", "u/k", "--plaintext", "sealed by a token"])
        .trim()
        .to_string();
    s.terminate();
    // Configured with a token: the unseal key moves into it and the file is gone.
    let token = softhsm::Token::new("unseal");
    let (conf, pin) = (token.conf(), token.pin_file());
    let env: Vec<(String, String)> = vec![
        ("SOFTHSM2_CONF".into(), conf.to_str().unwrap().into()),
        ("SOVRA_UNSEAL_PKCS11_MODULE".into(), softhsm::MODULE.into()),
        (
            "SOVRA_UNSEAL_PKCS11_TOKEN_LABEL".into(),
            token.label.clone(),
        ),
        (
            "SOVRA_UNSEAL_PKCS11_PIN_FILE".into(),
            pin.to_str().unwrap().into(),
        ),
    ];
    s.env = env.clone();
    s.boot();
    let hsm_dir = s.dir.join("hsm");
    assert!(
        !hsm_dir.join("unseal.key").exists(),
        "no unseal key beside the database"
    );
    assert!(hsm_dir.join("unseal.p11").exists());
    assert_eq!(
        s.ok(&["decrypt", "u/k", "--ciphertext", &ct]),
        "sealed by a token"
    );
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.contains("unsealed with a key wrapped by PKCS#11 token"),
        "{log}"
    );
    s.terminate();
    // The data directory alone no longer opens the HSM, nor does a wrong PIN.
    let err = start_fails(&s.dir, &[]);
    assert!(err.contains("unseal.key"), "{err}");
    let wrong = s.dir.join("wrong.pin");
    std::fs::write(&wrong, "00000000\n").unwrap();
    let mut bad = env.clone();
    bad[3].1 = wrong.to_str().unwrap().into();
    let err = start_fails(&s.dir, &bad);
    assert!(err.contains("PKCS#11"), "{err}");
    // With the token, it starts again, every time.
    s.boot();
    assert_eq!(
        s.ok(&["decrypt", "u/k", "--ciphertext", &ct]),
        "sealed by a token"
    );
}
