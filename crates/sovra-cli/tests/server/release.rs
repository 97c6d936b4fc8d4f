//! Secure key release over HTTPS: a token from a trusted issuer whose runtime data carries the
//! TEE's RSA key gets the key wrapped to that key; the unwrapped key decrypts what the server
//! encrypted. Then every way it must be refused, each audited.

use crate::common::*;
use serde_json::{Map, Value, json};
use sovra_crypto::jws::{Jws, JwsAlg, JwsSigner, VerifyKey, b64url, b64url_decode};
use sovra_crypto::keywrap::{self, ReleaseEnc};

pub(crate) const ISSUER: &str = "https://issuer.test";

/// A token issuer the test controls (like an external attestation service).
pub(crate) struct Issuer {
    signer: JwsSigner,
    pub(crate) cert_pem: String,
}

pub(crate) fn issuer(kid: &str) -> Issuer {
    let pkcs8 = sovra_crypto::jws::generate(JwsAlg::Rs256).unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    Issuer {
        signer: JwsSigner::load(
            JwsAlg::Rs256,
            pkcs8.expose(),
            kid.into(),
            &[cert.der().to_vec()],
        )
        .unwrap(),
        cert_pem: cert.pem(),
    }
}

/// The TEE's ephemeral RSA key: (PKCS#8, public JWK).
pub(crate) fn tee_key() -> (sovra_crypto::SecretBytes, Value) {
    let pkcs8 =
        sovra_crypto::generate(sovra_proto::kms::Algorithm::RsaDecryptOaep2048Sha256).unwrap();
    let k = sovra_crypto::LoadedKey::load(
        sovra_proto::kms::Algorithm::RsaDecryptOaep2048Sha256,
        pkcs8.expose(),
    )
    .unwrap();
    let spki = k.public_key_der().unwrap();
    let pk = aws_lc_rs::rsa::PublicKey::from_der(&spki).unwrap();
    let jwk = json!({"kid": "TpmEphemeralEncryptionKey", "kty": "RSA", "key_ops": ["encrypt"],
        "n": b64url(pk.modulus().big_endian_without_leading_zero()),
        "e": b64url(pk.exponent().big_endian_without_leading_zero())});
    (pkcs8, jwk)
}

pub(crate) fn token(i: &Issuer, iss: &str, claims: Value) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut c = json!({"iss": iss, "iat": now, "nbf": now, "exp": now + 600});
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    i.signer.sign_jwt(&c, &Map::new()).unwrap()
}

pub(crate) fn write(s: &Server, name: &str, text: &str) -> String {
    let p = s.dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn released_key_decrypts_what_the_server_encrypted_and_every_refusal_is_audited() {
    let s = Server::start();
    let admin = s.admin();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The issuer is trusted by pinned certificate; the key's policy names it.
    let iss = issuer("issuer-key-1");
    let _: Value = rt
        .block_on(admin.post(
            "/v1/release/issuers",
            &json!({"issuer": format!("{ISSUER}/"), "certificates": [iss.cert_pem]}),
        ))
        .unwrap();
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": ISSUER, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false}]}]});
    let pfile = write(&s, "release.json", &policy.to_string());
    s.ok(&["keyrings", "create", "tee"]);
    s.ok(&[
        "keys",
        "create",
        "tee/data",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &pfile,
    ]);
    s.ok(&["keys", "create", "tee/private", "--purpose", "encrypt"]);
    let ct = s.json(&["encrypt", "tee/data", "--plaintext", "only for the enclave"]);
    let ct = ct["ciphertext"].as_str().unwrap().to_string();
    // A workload principal with the Release User role only.
    let t = s.json(&["tokens", "create", "--principal", "workload"]);
    let wtok = t["token"].as_str().unwrap().to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "workload",
        "--role",
        "release-user",
        "--scope",
        "tee",
    ]);
    let w = s.client_as(&wtok);
    let key = "/v1/locations/global/keyRings/tee/cryptoKeys/data";
    let release = |body: Value| rt.block_on(w.post::<_, Value>(&format!("{key}:release"), &body));

    let (tee_pkcs8, jwk) = tee_key();
    let good = json!({"x-ms-attestation-type": "sevsnpvm", "x-ms-sevsnpvm-is-debuggable": false, "x-ms-runtime": {"keys": [jwk]}});
    for enc in [
        "CKM_RSA_AES_KEY_WRAP",
        "RSA_AES_KEY_WRAP_256",
        "RSA_AES_KEY_WRAP_384",
    ] {
        let r = release(json!({"target": token(&iss, ISSUER, good.clone()), "enc": enc})).unwrap();
        // The response is a JWS signed by Sovra, typed as a release response and verifiable
        // with its release keys, which never sign attestation tokens (nor are listed with
        // them): one cannot pass for the other.
        let jws = Jws::parse(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(jws.typ(), Some("sovra-key-release+jwt"));
        let certs: Value = rt.block_on(admin.get("/release/certs")).unwrap();
        let k = certs["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"].as_str() == jws.kid())
            .unwrap();
        jws.verify_with(&VerifyKey::from_jwk(k).unwrap()).unwrap();
        let token_keys: Value = rt.block_on(admin.get("/certs")).unwrap();
        for t in token_keys["keys"].as_array().unwrap() {
            assert_ne!(t["kid"].as_str(), jws.kid(), "{token_keys}");
            assert!(jws.verify_with(&VerifyKey::from_jwk(t).unwrap()).is_err());
        }
        let body = jws.claims().unwrap();
        let key_hsm: Value = serde_json::from_slice(
            &b64url_decode(body["response"]["key"]["key"]["key_hsm"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(key_hsm["header"]["enc"], enc);
        assert_eq!(key_hsm["header"]["kid"], "TpmEphemeralEncryptionKey");
        // Inside the TEE: unwrap with the private key, then decrypt the server's ciphertext.
        let blob = b64url_decode(key_hsm["ciphertext"].as_str().unwrap()).unwrap();
        let material =
            keywrap::unwrap(ReleaseEnc::parse(enc).unwrap(), tee_pkcs8.expose(), &blob).unwrap();
        let aes = sovra_crypto::LoadedKey::load(
            sovra_proto::kms::Algorithm::Aes256Gcm,
            material.expose(),
        )
        .unwrap();
        let pt = sovra_crypto::symmetric::open(&aes, b"", &sovra_proto::b64::decode(&ct).unwrap())
            .unwrap();
        assert_eq!(pt.expose(), b"only for the enclave");
    }

    let code_of = |r: Result<Value, sovra_client::ClientError>| code(r);
    // A claim that does not satisfy the policy: the reason names it.
    let mut dbg = good.clone();
    dbg["x-ms-sevsnpvm-is-debuggable"] = json!(true);
    let e = release(json!({"target": token(&iss, ISSUER, dbg)})).unwrap_err();
    assert!(e.to_string().contains("x-ms-sevsnpvm-is-debuggable"), "{e}");
    assert_eq!(e.code(), Some("RELEASE_POLICY_DENIED"));
    // An issuer nobody configured.
    let rogue = issuer("rogue");
    assert_eq!(
        code_of(release(
            json!({"target": token(&rogue, "https://rogue.test", good.clone())})
        )),
        "RELEASE_UNTRUSTED_ISSUER"
    );
    // The trusted issuer's name with another key's signature.
    assert_eq!(
        code_of(release(
            json!({"target": token(&rogue, ISSUER, good.clone())})
        )),
        "RELEASE_TOKEN_INVALID"
    );
    // A tampered token.
    let t = token(&iss, ISSUER, good.clone());
    let parts: Vec<&str> = t.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
    claims["x-ms-attestation-type"] = json!("tdxvm");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        code_of(release(json!({"target": tampered}))),
        "RELEASE_TOKEN_INVALID"
    );
    assert_eq!(
        code_of(release(json!({"target": "not a token"}))),
        "RELEASE_TOKEN_INVALID"
    );
    // An expired token.
    let mut old = good.clone();
    old["exp"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() - 3600);
    assert_eq!(
        code_of(release(json!({"target": token(&iss, ISSUER, old)}))),
        "RELEASE_TOKEN_EXPIRED"
    );
    // No runtime key to wrap to.
    let mut nokey = good.clone();
    nokey.as_object_mut().unwrap().remove("x-ms-runtime");
    assert_eq!(
        code_of(release(json!({"target": token(&iss, ISSUER, nokey)}))),
        "RELEASE_NO_TARGET_KEY"
    );
    // A non-exportable key (the workload needs the role there too, so use the admin).
    let r = rt.block_on(admin.post::<_, Value>(
        "/v1/locations/global/keyRings/tee/cryptoKeys/private:release",
        &json!({"target": token(&iss, ISSUER, good.clone())}),
    ));
    assert_eq!(code_of(r), "KEY_NOT_EXPORTABLE");
    // A principal without the Release User role.
    let t = s.json(&["tokens", "create", "--principal", "app"]);
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "app",
        "--role",
        "crypto-user",
        "--scope",
        "tee",
    ]);
    let app = s.client_as(t["token"].as_str().unwrap());
    assert_eq!(
        code_of(rt.block_on(app.post::<_, Value>(
            &format!("{key}:release"),
            &json!({"target": token(&iss, ISSUER, good.clone())})
        ))),
        "PERMISSION_DENIED"
    );

    // Replay protection: a server nonce, bound in the token, works once.
    let n: Value = rt
        .block_on(w.post("/v1/release/nonces", &json!({})))
        .unwrap();
    let nonce = n["nonce"].as_str().unwrap().to_string();
    let mut with_nonce = good.clone();
    with_nonce["x-ms-runtime"]["nonce"] = json!(nonce);
    let tok = token(&iss, ISSUER, with_nonce);
    assert!(release(json!({"target": tok, "nonce": nonce})).is_ok());
    assert_eq!(
        code_of(release(json!({"target": tok, "nonce": nonce}))),
        "RELEASE_NONCE_INVALID"
    );
    assert_eq!(
        code_of(release(
            json!({"target": token(&iss, ISSUER, good.clone()), "nonce": "sn_other"})
        )),
        "RELEASE_NONCE_INVALID"
    );
    // Freshness needs a server nonce, bound in the evidence, asked for by this principal:
    // an echoed top-level `nonce` claim, a nonce Sovra never issued, or another principal's
    // nonce each satisfies nothing (all three once released the key).
    let fresh = |p: &sovra_client::Client| {
        let n: Value = rt
            .block_on(p.post("/v1/release/nonces", &json!({})))
            .unwrap();
        n["nonce"].as_str().unwrap().to_string()
    };
    let n1 = fresh(&w);
    let mut echoed = good.clone();
    echoed["nonce"] = json!(n1);
    let e = release(json!({"target": token(&iss, ISSUER, echoed), "nonce": n1})).unwrap_err();
    assert_eq!(e.code(), Some("RELEASE_NONCE_INVALID"));
    assert!(e.to_string().contains("x-ms-runtime.nonce"), "{e}");
    let mut chosen = good.clone();
    chosen["x-ms-runtime"]["nonce"] = json!("my-own-nonce");
    assert_eq!(
        code_of(release(
            json!({"target": token(&iss, ISSUER, chosen), "nonce": "my-own-nonce"})
        )),
        "RELEASE_NONCE_INVALID"
    );
    let t2 = s.json(&["tokens", "create", "--principal", "workload2"]);
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "workload2",
        "--role",
        "release-user",
        "--scope",
        "tee",
    ]);
    let w2 = s.client_as(t2["token"].as_str().unwrap());
    let theirs = fresh(&w2);
    let mut other = good.clone();
    other["x-ms-runtime"]["nonce"] = json!(theirs);
    let e = release(json!({"target": token(&iss, ISSUER, other), "nonce": theirs})).unwrap_err();
    assert_eq!(e.code(), Some("RELEASE_NONCE_INVALID"));
    assert!(e.to_string().contains("another principal"), "{e}");

    // An immutable policy can never change.
    s.ok(&[
        "keys",
        "update",
        "tee/data",
        "--release-policy",
        &pfile,
        "--immutable-policy",
    ]);
    let o = s.cli(&[
        "-o",
        "json",
        "keys",
        "update",
        "tee/data",
        "--release-policy",
        &pfile,
    ]);
    assert_eq!(cli_code(&o), "RELEASE_POLICY_IMMUTABLE");
    // Malformed policies are refused at creation.
    let bad = write(&s, "bad.json", r#"{"version":"1.0.0","anyOf":[]}"#);
    let o = s.cli(&[
        "-o",
        "json",
        "keys",
        "create",
        "tee/bad",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &bad,
    ]);
    assert_eq!(cli_code(&o), "POLICY_INVALID");
    let o = s.cli(&[
        "-o",
        "json",
        "keys",
        "create",
        "tee/bad2",
        "--purpose",
        "encrypt",
        "--exportable",
    ]);
    assert_eq!(cli_code(&o), "INVALID_ARGUMENT");

    // Every decision is in the audit log, refusals with their reason.
    let log = s.ok(&["audit", "export"]);
    let releases: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cryptoKeys.release"))
        .collect();
    assert!(
        releases
            .iter()
            .filter(|l| l.contains("\"granted\":true"))
            .count()
            >= 4,
        "{log}"
    );
    for c in [
        "RELEASE_POLICY_DENIED",
        "RELEASE_UNTRUSTED_ISSUER",
        "RELEASE_TOKEN_INVALID",
        "RELEASE_TOKEN_EXPIRED",
        "RELEASE_NONCE_INVALID",
        "KEY_NOT_EXPORTABLE",
    ] {
        assert!(
            releases.iter().any(|l| l.contains(c)),
            "{c} audited:\n{log}"
        );
    }
    assert!(s.cli(&["audit", "verify"]).status.success());
}

#[test]
fn tokens_from_this_servers_attestation_are_trusted_by_issuer() {
    // A token from Sovra's own attestation service: its issuer is trusted without
    // configuration. The SNP vector binds no runtime key, so the release stops there, after
    // the token and the policy were accepted.
    let s = Server::start();
    let vectors = std::env::var("SOVRA_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    let v = |r: &str| vectors.join(r).to_str().unwrap().to_string();
    let out = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v("snp/azure_genoa_vcek.pem"),
        "--cert-chain",
        &v("roots/amd/ask_ark_genoa.pem"),
        &v("snp/azure_genoa_report_from_hcl.bin"),
    ]);
    let tok = out["token"].as_str().unwrap().to_string();
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": s.url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-compliance-status", "equals": "sovra-compliant"}]}]});
    let pfile = write(&s, "p.json", &policy.to_string());
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&[
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &pfile,
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(s.admin().post::<_, Value>(
        "/v1/locations/global/keyRings/r/cryptoKeys/k:release",
        &json!({"target": tok}),
    ));
    assert_eq!(code(r), "RELEASE_NO_TARGET_KEY");
}

#[test]
fn the_agent_releases_a_key_into_a_simulated_snp_guest() {
    let s = Server::start();
    let sim = s.dir.join("sim");
    let sim_s = sim.to_str().unwrap().to_string();
    s.ok(&["agent", "sim-snp-init", "--dir", &sim_s]);
    let policy = json!({"version": "1.0.0", "requireNonce": true, "anyOf": [{"authority": s.url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false}]}]});
    let pfile = write(&s, "p.json", &policy.to_string());
    s.ok(&["keyrings", "create", "g"]);
    s.ok(&[
        "keys",
        "create",
        "g/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &pfile,
    ]);
    let ct = s.json(&["encrypt", "g/k", "--plaintext", "guest secret"]);
    let t = s.json(&["tokens", "create", "--principal", "guest"]);
    let tok = t["token"].as_str().unwrap().to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "guest",
        "--role",
        "release-user",
        "--scope",
        "g",
    ]);
    let agent = |extra: &[&str]| {
        let mut a = vec![
            "-o",
            "json",
            "agent",
            "release",
            "--key",
            "g/k",
            "--collector",
            "sim-snp",
            "--sim-dir",
            &sim_s,
        ];
        a.extend_from_slice(extra);
        s.cli_as(&tok, &a)
    };
    // The simulated chain is not trusted until an operator says so.
    let o = agent(&[]);
    assert_eq!(
        cli_code(&o),
        "ATTEST_CHAIN_INVALID",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "amd",
        &format!("{sim_s}/ark.pem"),
    ]);
    // Now the whole flow works; the key lands in a 0600 file and decrypts the ciphertext.
    let out = s.dir.join("released.key");
    let o = agent(&["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let material = std::fs::read(&out).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let aes =
        sovra_crypto::LoadedKey::load(sovra_proto::kms::Algorithm::Aes256Gcm, &material).unwrap();
    let pt = sovra_crypto::symmetric::open(
        &aes,
        b"",
        &sovra_proto::b64::decode(ct["ciphertext"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(pt.expose(), b"guest secret");
    // Into a named pipe the workload reads: the bytes arrive, the pipe stays a pipe.
    let fifo = s.dir.join("key.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let o = agent(&["--out", fifo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(reader.join().unwrap(), material);
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
    // On stdout (JSON mode: base64 in "key"), and to a command in SOVRA_RELEASED_KEY.
    let o = agent(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        sovra_proto::b64::decode(v["key"].as_str().unwrap()).unwrap(),
        material
    );
    let seen = s.dir.join("seen");
    let o = agent(&[
        "--exec",
        "sh",
        "-c",
        &format!("printf %s \"$SOVRA_RELEASED_KEY\" > {}", seen.display()),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        sovra_proto::b64::decode(&std::fs::read_to_string(&seen).unwrap()).unwrap(),
        material
    );
    // A policy that requires a measurement the guest does not have refuses it, with the clause.
    let strict = json!({"version": "1.0.0", "anyOf": [{"authority": s.url, "allOf": [
        {"claim": "x-ms-sevsnpvm-launchmeasurement", "equals": "00"}]}]});
    let sfile = write(&s, "strict.json", &strict.to_string());
    s.ok(&["keys", "update", "g/k", "--release-policy", &sfile]);
    let o = agent(&[]);
    assert_eq!(cli_code(&o), "RELEASE_POLICY_DENIED");
    assert!(String::from_utf8_lossy(&o.stderr).contains("x-ms-sevsnpvm-launchmeasurement"));
}

#[test]
fn sovra_demo_runs_the_whole_flow() {
    let o = std::process::Command::new(BIN)
        .arg("demo")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for step in [
        "①",
        "②",
        "③",
        "④",
        "⑤",
        "⑥",
        "⑦",
        "Released key == stored key",
    ] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
}

#[test]
fn attested_decrypt_and_data_keys_reach_only_the_tee() {
    let s = Server::start();
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
    let pfile = write(&s, "p.json", &policy.to_string());
    s.ok(&["keyrings", "create", "r"]);
    // Not exportable: the key itself never leaves, but what it protects may go to the TEE.
    s.ok(&[
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
        "--release-policy",
        &pfile,
    ]);
    s.ok(&["keys", "create", "r/plain", "--purpose", "encrypt"]);
    let ct = s.json(&["encrypt", "r/k", "--plaintext", "record 42"]);
    let (tee_pkcs8, jwk) = tee_key();
    let good = json!({"x-ms-attestation-type": "sevsnpvm", "x-ms-runtime": {"keys": [jwk]}});
    let unwrap_value = |v: &Value| {
        let body = Jws::parse(v["value"].as_str().unwrap())
            .unwrap()
            .claims()
            .unwrap();
        let blob = b64url_decode(body["wrapped"]["ciphertext"].as_str().unwrap()).unwrap();
        (
            body.clone(),
            keywrap::unwrap(ReleaseEnc::CkmRsaAesKeyWrap, tee_pkcs8.expose(), &blob).unwrap(),
        )
    };
    let key = "/v1/locations/global/keyRings/r/cryptoKeys/k";
    let r: Value = rt
        .block_on(admin.post(
            &format!("{key}:decryptTo"),
            &json!({"target": token(&iss, ISSUER, good.clone()), "ciphertext": ct["ciphertext"]}),
        ))
        .unwrap();
    let (_, pt) = unwrap_value(&r);
    assert_eq!(pt.expose(), b"record 42");
    // A data key: its ciphertext comes back in clear, the key itself only wrapped.
    let r: Value = rt
        .block_on(admin.post(
            &format!("{key}:generateDataKeyTo"),
            &json!({"target": token(&iss, ISSUER, good.clone())}),
        ))
        .unwrap();
    let (body, dk) = unwrap_value(&r);
    assert_eq!(dk.len(), 32);
    let again: Value = rt
        .block_on(admin.post(
            &format!("{key}:decryptTo"),
            &json!({"target": token(&iss, ISSUER, good.clone()), "ciphertext": body["ciphertext"]}),
        ))
        .unwrap();
    assert_eq!(unwrap_value(&again).1.expose(), dk.expose());
    // The policy still decides; a key without a policy never sends anything to a TEE.
    let bad = json!({"x-ms-attestation-type": "tdxvm", "x-ms-runtime": {"keys": [tee_key().1]}});
    let r = rt.block_on(admin.post::<_, Value>(
        &format!("{key}:decryptTo"),
        &json!({"target": token(&iss, ISSUER, bad), "ciphertext": ct["ciphertext"]}),
    ));
    assert_eq!(code(r), "RELEASE_POLICY_DENIED");
    let ct2 = s.json(&["encrypt", "r/plain", "--plaintext", "x"]);
    let r = rt.block_on(admin.post::<_, Value>(
        "/v1/locations/global/keyRings/r/cryptoKeys/plain:decryptTo",
        &json!({"target": token(&iss, ISSUER, good), "ciphertext": ct2["ciphertext"]}),
    ));
    assert_eq!(code(r), "KEY_NOT_EXPORTABLE");
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.contains("cryptoKeys.decryptTo") && log.contains("cryptoKeys.generateDataKeyTo"),
        "{log}"
    );
}

/// The key material a release response carries, unwrapped with the TEE's private key.
pub(crate) fn unwrap_release(
    r: &Value,
    tee_pkcs8: &sovra_crypto::SecretBytes,
) -> sovra_crypto::SecretBytes {
    let jws = Jws::parse(r["value"].as_str().unwrap()).unwrap();
    let body = jws.claims().unwrap();
    let key_hsm: Value = serde_json::from_slice(
        &b64url_decode(body["response"]["key"]["key"]["key_hsm"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let blob = b64url_decode(key_hsm["ciphertext"].as_str().unwrap()).unwrap();
    keywrap::unwrap(ReleaseEnc::CkmRsaAesKeyWrap, tee_pkcs8.expose(), &blob).unwrap()
}

#[test]
fn another_sovra_is_trusted_by_its_jwks_url_over_verified_tls() {
    // `b` is the attestation service (a simulated SNP guest attests there); `a` holds the key
    // and trusts `b` by the URL of its published key set. Both are on loopback, which `a` may
    // fetch from only when its operator allows private addresses.
    let a = Server::start_with(&[("SOVRA_ATTESTATION_JWKS_ALLOW_PRIVATE", "true")]);
    let b = Server::start();
    let sim = b.dir.join("sim");
    b.ok(&["agent", "sim-snp-init", "--dir", sim.to_str().unwrap()]);
    b.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "amd",
        sim.join("ark.pem").to_str().unwrap(),
    ]);
    let b_token = || {
        let (pkcs8, jwk) = tee_key();
        let f = write(&b, "runtime.json", &json!({"keys": [jwk]}).to_string());
        let v = b.json(&[
            "agent",
            "attest",
            "--collector",
            "sim-snp",
            "--sim-dir",
            sim.to_str().unwrap(),
            "--runtime-data",
            &f,
        ]);
        (v["token"].as_str().unwrap().to_string(), pkcs8)
    };
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": b.url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false}]}]});
    let pfile = write(&a, "p.json", &policy.to_string());
    a.ok(&["keyrings", "create", "r"]);
    a.ok(&[
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &pfile,
    ]);
    let ct = a.json(&["encrypt", "r/k", "--plaintext", "released on b's word"]);
    let ct = sovra_proto::b64::decode(ct["ciphertext"].as_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = a.admin();
    let release = |tok: &str| {
        rt.block_on(admin.post::<_, Value>(
            "/v1/locations/global/keyRings/r/cryptoKeys/k:release",
            &json!({"target": tok}),
        ))
    };
    let trust = |body: Value| {
        rt.block_on(admin.post::<_, Value>("/v1/release/issuers", &body))
            .unwrap()
    };
    let (tok, tee) = b_token();
    assert_eq!(code(release(&tok)), "RELEASE_UNTRUSTED_ISSUER");

    // Named by JWKS URL, but b's TLS certificate is not from a CA `a` was given (nor a system
    // CA): the key set is not fetched.
    let jwks = format!("{}/certs", b.url);
    trust(json!({"issuer": b.url, "jwksUri": jwks}));
    assert_eq!(code(release(&tok)), "RELEASE_ISSUER_UNAVAILABLE");

    // With b's CA the key set is fetched, the token verifies, and the key decrypts.
    let b_ca = std::fs::read_to_string(b.ca()).unwrap();
    trust(json!({"issuer": b.url, "jwksUri": jwks, "caCertificates": [b_ca]}));
    let material = unwrap_release(&release(&tok).unwrap(), &tee);
    let aes =
        sovra_crypto::LoadedKey::load(sovra_proto::kms::Algorithm::Aes256Gcm, material.expose())
            .unwrap();
    let pt = sovra_crypto::symmetric::open(&aes, b"", &ct).unwrap();
    assert_eq!(pt.expose(), b"released on b's word");

    // b rotates its signing key: a token under the new key makes `a` fetch the set again
    // (once the per-issuer refetch interval has passed).
    b.ok(&["attestation", "rotate-signing-key"]);
    let (tok2, tee2) = b_token();
    assert_ne!(
        Jws::parse(&tok2).unwrap().kid(),
        Jws::parse(&tok).unwrap().kid()
    );
    std::thread::sleep(std::time::Duration::from_millis(5500));
    unwrap_release(&release(&tok2).unwrap(), &tee2);
    // A token b did not sign still fails, with the JWKS in hand.
    let mut parts: Vec<String> = tok2.split('.').map(str::to_string).collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(&parts[1]).unwrap()).unwrap();
    claims["x-ms-sevsnpvm-is-debuggable"] = json!(false);
    claims["iat"] = json!(claims["iat"].as_i64().unwrap() + 1);
    parts[1] = b64url(claims.to_string().as_bytes());
    assert_eq!(code(release(&parts.join("."))), "RELEASE_TOKEN_INVALID");
    // Bad issuer configurations are refused with what to fix.
    let e = rt
        .block_on(admin.post::<_, Value>(
            "/v1/release/issuers",
            &json!({"issuer": b.url, "jwksUri": "http://insecure.example/certs"}),
        ))
        .unwrap_err();
    assert_eq!(e.code(), Some("INVALID_ARGUMENT"));
    assert!(e.to_string().contains("https"), "{e}");
    let e = rt
        .block_on(admin.post::<_, Value>("/v1/release/issuers", &json!({"issuer": b.url})))
        .unwrap_err();
    assert_eq!(e.code(), Some("INVALID_ARGUMENT"));
}

#[test]
fn a_jwks_url_cannot_reach_private_addresses_unless_the_operator_allows_it() {
    // A JWKS URL is chosen through the API: without the operator's leave it may not make the
    // server fetch from loopback, link-local (cloud metadata) or private addresses.
    let a = Server::start();
    let b = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = a.admin();
    let b_ca = std::fs::read_to_string(b.ca()).unwrap();
    rt.block_on(admin.post::<_, Value>(
        "/v1/release/issuers",
        &json!({"issuer": "https://issuer.example", "jwksUri": format!("{}/certs", b.url), "caCertificates": [b_ca]}),
    ))
    .unwrap();
    let token = format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"RS256","kid":"k"}"#),
        b64url(
            json!({"iss": "https://issuer.example", "exp": 4102444800i64})
                .to_string()
                .as_bytes()
        )
    );
    a.ok(&["keyrings", "create", "r"]);
    let policy = json!({"anyOf": [{"authority": "https://issuer.example", "allOf": [{"claim": "x", "exists": true}]}]});
    let pfile = write(&a, "p.json", &policy.to_string());
    a.ok(&[
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &pfile,
    ]);
    let e = rt
        .block_on(admin.post::<_, Value>(
            "/v1/locations/global/keyRings/r/cryptoKeys/k:release",
            &json!({"target": token}),
        ))
        .unwrap_err();
    assert_eq!(e.code(), Some("RELEASE_ISSUER_UNAVAILABLE"), "{e}");
    // The issuer equal to Sovra's own URL is refused outright.
    let e = rt
        .block_on(admin.post::<_, Value>(
            "/v1/release/issuers",
            &json!({"issuer": a.url, "certificates": [std::fs::read_to_string(a.ca()).unwrap()]}),
        ))
        .unwrap_err();
    assert_eq!(e.code(), Some("INVALID_ARGUMENT"));
    assert!(e.to_string().contains("own issuer"), "{e}");
}
