//! The unmodified Azure SDKs (from PyPI) against Sovra's compatible APIs: Microsoft Azure
//! Attestation's metadata, signing certificates and policy management (unsigned, then signed by
//! a policy-management certificate), and SGX / Open Enclave attestation of quotes from a
//! simulated SGX platform, with the SDK's own token validation on; and the Key Vault
//! keys API through `azure-keyvault-keys`: every operation Sovra offers, soft delete, secure key
//! release, roles and a second vault.

use crate::common::*;
use std::path::PathBuf;
use std::process::Command;

/// A directory holding `azure-security-attestation` 1.0.0 (and `six`, which it imports without
/// declaring), `azure-keyvault-keys` 4.11.3 and `azure-keyvault-administration` 4.7.2,
/// installed from PyPI once per target directory.
/// Tests share it, so the first one installs and the others wait.
pub(crate) fn azure_sdk() -> PathBuf {
    static INSTALLED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("azure-sdk-python");
    let importable = || {
        Command::new("python3")
            .args([
                "-c",
                "import azure.security.attestation, six, azure.keyvault.keys, azure.keyvault.administration",
            ])
            .env("PYTHONPATH", &dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        let st = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .args([
                "azure-security-attestation==1.0.0",
                "six",
                "azure-keyvault-keys==4.11.3",
                "azure-keyvault-administration==4.7.2",
            ])
            .status()
            .expect("python3 is needed");
        assert!(st.success(), "pip install of the Azure SDKs failed");
    }
    assert!(importable(), "the Azure SDKs are not importable");
    dir
}

fn run_sdk(s: &Server, args: &[&str]) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/server/azure_sdk/maa_admin.py"
    );
    let token = s.dir.join("admin.token");
    let o = Command::new("python3")
        .arg(script)
        .arg(&s.url)
        .arg(&token)
        .arg(s.ca())
        .args(args)
        .env("PYTHONPATH", azure_sdk())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_azure_attestation_sdk_manages_policies_with_its_validation_on() {
    let s = Server::start();
    let out = run_sdk(&s, &["unsigned"]);
    for line in [
        "metadata True True",
        "signing certificates True",
        "set Updated",
        "get True",
        "reset Removed",
        "management certificates 0",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("default policy") && l.ends_with("True"))
            .count(),
        3,
        "{out}"
    );
    // A policy-management certificate: signed changes are accepted (and name their signer),
    // unsigned ones refused.
    let dir = tempfile::tempdir().unwrap();
    let signer = crate::security_domain::admin(dir.path(), "policy-signer");
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "policy-signer",
        signer.cert.to_str().unwrap(),
    ]);
    let out = run_sdk(
        &s,
        &[
            "signed",
            signer.key.to_str().unwrap(),
            signer.cert.to_str().unwrap(),
        ],
    );
    for line in [
        "signed set Updated True",
        "get True",
        "management certificates 1",
        "unsigned set refused POLICY_SIGNATURE_INVALID",
        "signed reset Removed",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
}

#[test]
fn the_azure_attestation_sdk_attests_sgx_and_open_enclave_quotes() {
    let s = Server::start();
    // A simulated SGX platform (the real vectors' collateral is out of its window today),
    // trusted explicitly as an operator anchor, its collateral imported.
    let sgx = crate::simsgx::SimulatedSgx::generate();
    let dir = s.dir.join("sgx");
    std::fs::create_dir_all(&dir).unwrap();
    let w = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_string()
    };
    let root = w("root.pem", sgx.root_pem.as_bytes());
    let collateral = w("collateral.json", sgx.collateral.as_bytes());
    let runtime = br#"{"jwk": {"kty": "oct"}, "purpose": "sdk test"}"#;
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&sovra_crypto::sha256(runtime));
    let quote = w("quote.bin", &sgx.quote([0xe1; 32], rd));
    let runtime = w("runtime.json", runtime);
    let attest = || run_sdk(&s, &["attest", &quote, &runtime]);
    // Not trusted yet: the SDK sees the server's refusal.
    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/server/azure_sdk/maa_admin.py"
        ))
        .args([s.url.as_str(), s.dir.join("admin.token").to_str().unwrap()])
        .arg(s.ca())
        .args(["attest", &quote, &runtime])
        .env("PYTHONPATH", azure_sdk())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ATTEST_"),
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
        "intel",
        &root,
    ]);
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "intel",
        &collateral,
    ]);
    let out = attest();
    let mr = "e1".repeat(32);
    for line in [
        format!("sgx mrenclave {mr}"),
        "sgx ehd True".into(),
        "sgx debuggable False".into(),
        "sgx issuer True".into(),
        "sgx runtime claims {'jwk': {'kty': 'oct'}, 'purpose': 'sdk test'}".into(),
        "draft none True".into(),
        format!("oe mrenclave {mr}"),
        "other runtime data refused 400".into(),
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
}

fn run_keyvault(phase: &str, input: &std::path::Path) -> String {
    run_script("keyvault.py", phase, input)
}

fn run_script(script: &str, phase: &str, input: &std::path::Path) -> String {
    let script = format!(
        "{}/tests/server/azure_sdk/{script}",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = Command::new("python3")
        .arg(script)
        .arg(phase)
        .arg(input)
        .env("PYTHONPATH", azure_sdk())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A server with a second vault: requests to `https://localhost:PORT` address the key ring
/// `vault-b`, those to `https://127.0.0.1:PORT` the default one.
fn two_vaults(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let config = dir.join("sovra.toml");
    std::fs::write(
        &config,
        "[keyvault]\nvaults = { \"localhost\" = \"vault-b\" }\n",
    )
    .unwrap();
    let mut all = vec![("SOVRA_CONFIG", config.to_str().unwrap())];
    all.extend_from_slice(env);
    Server::start_with(&all)
}

#[test]
fn the_managed_hsm_administration_sdk_assigns_roles_as_role_bindings() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let s = two_vaults(dir.path(), &[]);
    for ring in ["keyvault", "vault-b"] {
        s.ok(&["keyrings", "create", ring]);
        s.ok(&[
            "keys",
            "create",
            &format!("{ring}/k1"),
            "--purpose",
            "encrypt",
        ]);
    }
    let token = |principal: &str| {
        s.json(&["tokens", "create", "--principal", principal])["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let app = token("app1");
    let officer = token("officer");
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "officer",
        "--role",
        "crypto-officer",
        "--scope",
        "*",
    ]);
    let name = "3611c13f-0309-4651-a121-a890181b10b7";
    let input = dir.path().join("admin.json");
    std::fs::write(
        &input,
        json!({"url": s.url, "second_url": s.url.replace("127.0.0.1", "localhost"),
            "ca": s.ca(), "admin": s.token, "officer": officer, "assignment": name})
        .to_string(),
    )
    .unwrap();
    let encrypt = |ring: &str| {
        s.cli_as(
            &app,
            &[
                "-o",
                "json",
                "encrypt",
                &format!("{ring}/k1"),
                "--plaintext",
                "hello",
            ],
        )
    };
    assert_eq!(cli_code(&encrypt("keyvault")), "PERMISSION_DENIED");
    let out = run_script("kv_admin.py", "assign", &input);
    assert!(out.lines().any(|l| l == "checks failed: 0"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        15,
        "{out}"
    );
    // The assignment is a role binding named as the SDK named it, scoped to the vault's ring:
    // the principal now uses the vault's keys, and only those.
    let bindings = s.json(&["roles", "list", "--principal", "app1"]);
    let b = bindings
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == name)
        .unwrap_or_else(|| panic!("{bindings}"))
        .clone();
    assert_eq!(b["role"], "CRYPTO_USER");
    assert_eq!(b["scope"], "locations/global/keyRings/keyvault");
    assert!(encrypt("keyvault").status.success());
    assert_eq!(cli_code(&encrypt("vault-b")), "PERMISSION_DENIED");
    let out = run_script("kv_admin.py", "remove", &input);
    assert!(out.lines().any(|l| l == "checks failed: 0"), "{out}");
    assert_eq!(cli_code(&encrypt("keyvault")), "PERMISSION_DENIED");
    let log = s.ok(&["audit", "export"]);
    assert!(log.contains("roleBindings.create") && log.contains("roleBindings.delete"));
    // Every role operation, at each of the three scopes.
    let out = run_script("kv_admin.py", "scopes", &input);
    assert!(out.lines().any(|l| l == "checks failed: 0"), "{out}");
    assert_reached(&s, |p| p.contains(RBAC));
}

#[test]
fn the_azure_keyvault_sdk_uses_sovra_as_its_vault() {
    use crate::release::{ISSUER, issuer, tee_key, token};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    // The scheduler runs at start and then hourly, so the purge below is the request's, not
    // the scheduler's (a deleted key without retention is due at once).
    let s = two_vaults(dir.path(), &[("SOVRA_SCHEDULER_INTERVAL_SECS", "3600")]);
    // A token issuer the vault trusts for release, and a TEE key the token carries.
    let iss = issuer("kv-issuer");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _: serde_json::Value = rt
        .block_on(s.admin().post(
            "/v1/release/issuers",
            &json!({"issuer": format!("{ISSUER}/"), "certificates": [iss.cert_pem]}),
        ))
        .unwrap();
    let (tee_pkcs8, jwk) = tee_key();
    let tee_pem = sovra_crypto::keys::pem("PRIVATE KEY", tee_pkcs8.expose());
    let claims = json!({"x-ms-attestation-type": "sevsnpvm", "x-ms-sevsnpvm-is-debuggable": false, "x-ms-runtime": {"keys": [jwk]}});
    let release_policy = json!({"version": "1.0.0", "anyOf": [{"authority": ISSUER, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false}]}]});
    // A crypto user of the vault's key ring (created first, so the role has a scope).
    s.ok(&["keyrings", "create", "keyvault"]);
    let user = s.json(&["tokens", "create", "--principal", "app"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "app",
        "--role",
        "crypto-user",
        "--scope",
        "keyvault",
    ]);
    let input = dir.path().join("input.json");
    let v = json!({
        "url": s.url, "second_url": s.url.replace("127.0.0.1", "localhost"),
        "ca": s.ca(), "admin": s.token, "user": user,
        "release_policy": release_policy,
        "release_token": token(&iss, ISSUER, claims.clone()),
        "tee_key_pem": tee_pem,
    });
    std::fs::write(&input, v.to_string()).unwrap();
    let out = run_keyvault("main", &input);
    for line in [
        "ok RSA encryption key",
        "ok RSA-OAEP (SHA-1, the SDKs' default) round trip",
        "ok ES256 is raw r||s and verifies with the JWK",
        "ok one RSA key signs RS256 to PS512, each verifiable with its JWK",
        "ok A256GCM round trip",
        "ok an expired key no longer encrypts",
        "ok an expired key still decrypts",
        "ok before its activation time a key does nothing",
        "ok delete is recoverable",
        "ok recover brings it back as it was",
        "ok the released key is the vault's key",
        "ok a crypto user cannot create keys",
        "ok same name, another key",
        "ok the restored key decrypts what the original's public key encrypted",
        "ok an altered backup is refused",
        "ok the vault decrypts with the imported key",
        "ok a JWK whose parts do not match is refused",
        "ok and leaves no key behind",
        "ok a KEK has only the import operation",
        "ok a BYOK RSA-3072 key is the one wrapped",
        "ok the vault decrypts with the BYOK key",
        "ok a BYOK AES key is the one wrapped",
        "ok an altered blob is refused",
        "ok a refused BYOK import leaves no key behind",
        "ok key attestation names the version and its HSM",
        "ok the vault unwraps A256KW as RFC 3394",
        "ok the vault wraps CKM_AES_KEY_WRAP as RFC 3394",
        "ok the vault wraps CKM_AES_KEY_WRAP_PAD as RFC 5649",
        "ok the vault unwraps CKM_AES_KEY_WRAP_PAD as RFC 5649",
        "ok an altered wrap is refused",
        "ok a created wrapping key is one",
        "ok a rotation policy sets the rotation period",
        "checks failed: 0",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
    // The forms of the current version the SDK sends only in corner cases (an empty version
    // segment, or one a proxy collapsed; a name without the trailing slash) reach the same
    // operations.
    let admin = s.admin();
    let raw = |method: hyper::Method, path: String, body: serde_json::Value| {
        let (status, resp) = rt
            .block_on(admin.raw(
                method,
                &format!("{path}?api-version=7.5"),
                Some(body.to_string().into_bytes()),
            ))
            .unwrap();
        (
            status.as_u16(),
            serde_json::from_slice::<serde_json::Value>(&resp).unwrap_or_default(),
        )
    };
    // A key type's members are checked: no curve on an RSA key, no operation Key Vault does not
    // name (schemathesis found both accepted and ignored).
    for body in [
        json!({"kty": "RSA", "crv": "P-256"}),
        json!({"kty": "oct", "key_ops": ["encrypt", "frobnicate"]}),
    ] {
        let (st, v) = raw(hyper::Method::POST, "/keys/strict/create".into(), body);
        assert_eq!(
            (st, &v["error"]["code"]),
            (400, &json!("BadParameter")),
            "{v}"
        );
    }
    // AES key wrap over REST: RFC 3394 §4.6 (a 256-bit key under a 256-bit KEK), and RFC 5649
    // checked by unwrapping with the known key.
    let h = |s: &str| sovra_proto::hex::decode(s).unwrap();
    let kek = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    let (st, v) = raw(
        hyper::Method::PUT,
        "/keys/kw-rfc".into(),
        json!({"key": {"kty": "oct-HSM", "k": sovra_crypto::jws::b64url(&kek), "key_ops": ["wrapKey", "unwrapKey"]}}),
    );
    assert_eq!(st, 200, "{v}");
    let data = h("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
    for alg in ["A256KW", "CKM_AES_KEY_WRAP"] {
        let (st, v) = raw(
            hyper::Method::POST,
            "/keys/kw-rfc//wrapkey".into(),
            json!({"alg": alg, "value": sovra_crypto::jws::b64url(&data)}),
        );
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            sovra_crypto::jws::b64url_decode(v["value"].as_str().unwrap()).unwrap(),
            h("28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"),
            "{alg}"
        );
    }
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/kw-rfc//wrapkey".into(),
        json!({"alg": "CKM_AES_KEY_WRAP_PAD", "value": sovra_crypto::jws::b64url(b"a 21-byte key to wrap")}),
    );
    assert_eq!(st, 200, "{v}");
    let wrapped = sovra_crypto::jws::b64url_decode(v["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        sovra_crypto::keywrap::kwp_unwrap(&kek, &wrapped)
            .unwrap()
            .expose(),
        b"a 21-byte key to wrap"
    );
    for (alg, code) in [("A128KW", "NotSupported"), ("A256GCM", "NotSupported")] {
        let (st, v) = raw(
            hyper::Method::POST,
            "/keys/kw-rfc//wrapkey".into(),
            json!({"alg": alg, "value": sovra_crypto::jws::b64url(&data)}),
        );
        assert_eq!((st, &v["error"]["code"]), (400, &json!(code)), "{alg}: {v}");
    }
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/aes//wrapkey".into(),
        json!({"alg": "A256KW", "value": sovra_crypto::jws::b64url(&data)}),
    );
    assert_eq!(st, 400, "an AES-GCM key does not wrap: {v}");
    let digest = sovra_crypto::jws::b64url(&sovra_crypto::sha256(b"m"));
    for form in ["/keys/ec256//sign", "/keys/ec256/sign"] {
        let (st, v) = raw(
            hyper::Method::POST,
            form.into(),
            json!({"alg": "ES256", "value": digest}),
        );
        assert_eq!(st, 200, "{form}: {v}");
        let sig = v["value"].as_str().unwrap().to_string();
        let verify = form.replace("sign", "verify");
        let (st, v) = raw(
            hyper::Method::POST,
            verify,
            json!({"alg": "ES256", "digest": digest, "value": sig}),
        );
        assert_eq!((st, &v["value"]), (200, &json!(true)), "{form}");
    }
    // The public-key operations the SDK does itself are answered by the server too.
    let (_, v) = raw(
        hyper::Method::POST,
        "/keys/ec256/1/sign".into(),
        json!({"alg": "ES256", "value": digest}),
    );
    let sig = v["value"].as_str().unwrap().to_string();
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/ec256/1/verify".into(),
        json!({"alg": "ES256", "digest": digest, "value": sig}),
    );
    assert_eq!((st, &v["value"]), (200, &json!(true)), "{v}");
    let key = sovra_crypto::jws::b64url(&[7u8; 32]);
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/rsa-enc/1/wrapkey".into(),
        json!({"alg": "RSA-OAEP-256", "value": key}),
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/rsa-enc/1/unwrapkey".into(),
        json!({"alg": "RSA-OAEP-256", "value": v["value"]}),
    );
    assert_eq!((st, v["value"].as_str()), (200, Some(key.as_str())), "{v}");
    // The server verifies RSA signatures of any padding and hash too.
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/rsa-sign//sign".into(),
        json!({"alg": "PS256", "value": digest}),
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/rsa-sign//verify".into(),
        json!({"alg": "PS256", "digest": digest, "value": v["value"]}),
    );
    assert_eq!((st, &v["value"]), (200, &json!(true)), "{v}");
    // A page token this vault did not issue is a client error that says what to do.
    let (st, v) = rt
        .block_on(admin.raw(
            hyper::Method::GET,
            "/keys?api-version=7.6&maxresults=2&$skiptoken=%21%21",
            None,
        ))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(st.as_u16(), 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nextLink"),
        "{v}"
    );
    // Signing with an encryption key says how to make a signing key.
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/rsa-enc/1/sign".into(),
        json!({"alg": "RS256", "value": digest}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("key_ops"),
        "{v}"
    );
    // ... and held to the version's state like every other use.
    let (st, _) = raw(
        hyper::Method::PATCH,
        "/keys/rsa-enc/1".into(),
        json!({"attributes": {"enabled": false}}),
    );
    assert_eq!(st, 200);
    let (st, v) = raw(
        hyper::Method::POST,
        "/keys/rsa-enc/1/encrypt".into(),
        json!({"alg": "RSA-OAEP-256", "value": key}),
    );
    assert_eq!(
        (st, &v["error"]["innererror"]["code"]),
        (403, &json!("KEY_VERSION_NOT_ENABLED")),
        "{v}"
    );
    let (st, _) = raw(
        hyper::Method::PATCH,
        "/keys/rsa-enc/1".into(),
        json!({"attributes": {"enabled": true}}),
    );
    assert_eq!(st, 200);
    for op in ["encrypt", "decrypt", "wrapkey", "unwrapkey", "release"] {
        for form in [format!("/keys/ec256//{op}"), format!("/keys/ec256/{op}")] {
            // Routed to the operation, which refuses what this key cannot do.
            let body = json!({"alg": "RSA-OAEP-256", "value": "AAAA", "target": "x.y.z"});
            let (st, v) = raw(hyper::Method::POST, form.clone(), body);
            assert!(st == 400 || st == 403, "{form}: {st} {v}");
            assert_ne!(
                v["error"]["innererror"]["code"], "ROUTE_NOT_FOUND",
                "{form}"
            );
        }
    }
    for form in [
        "/keys/ec384//attestation",
        "/keys/ec384/attestation",
        "/keys/ec384",
    ] {
        let (st, v) = raw(hyper::Method::GET, form.into(), json!({}));
        assert_eq!(st, 200, "{form}: {v}");
    }
    // What the SDK did is the native API's too: the same keys, the deletion audited.
    let keys = s.json(&["keys", "list", "keyvault"]);
    assert!(keys.to_string().contains("cryptoKeys/ec256"), "{keys}");
    let dated = s.json(&["versions", "get", "keyvault/dated", "1"]);
    assert_eq!(dated["expireTime"], "2099-01-01T00:00:00Z", "{dated}");
    assert!(dated["notBeforeTime"].is_string(), "{dated}");
    let audit = s.ok(&["audit", "export"]);
    assert!(audit.contains("cryptoKeys.delete") && audit.contains("cryptoKeys.recover"));
    // Purge needs the retention over: with a destroy-scheduled duration of 0, at once.
    s.ok(&[
        "settings",
        "set",
        "--min-destroy-scheduled-duration",
        "0s",
        "--default-destroy-scheduled-duration",
        "0s",
    ]);
    let out = run_keyvault("purge", &input);
    assert!(out.contains("ok a purged name is free again"), "{out}");
    assert!(s.ok(&["audit", "export"]).contains("\"cryptoKeys.purge\""));
    // Between the SDK and the requests above, every documented Key Vault keys operation was
    // reached (role management has its own test).
    assert_reached(&s, |p| !p.contains(RBAC));
}

const RBAC: &str = "/providers/Microsoft.Authorization/";

/// Asserts that every documented Key Vault operation whose path `wanted` selects was reached,
/// by the server's own request metrics.
fn assert_reached(s: &Server, wanted: impl Fn(&str) -> bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = rt.block_on(s.admin().metrics()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(sovra_server::http::OPENAPI).unwrap();
    let mut unreached = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !sovra_server::http::keyvault::is_keyvault_path(path) || !wanted(path) {
            continue;
        }
        for m in ops.as_object().unwrap().keys() {
            let label = format!("method=\"{}\",route=\"{path}\"", m.to_uppercase());
            if !metrics.lines().any(|l| l.contains(&label)) {
                unreached.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        unreached.is_empty(),
        "Key Vault operations no SDK call reached: {unreached:?}"
    );
}

/// A directory holding `@azure/keyvault-keys` 4.10.2 from npm, installed once per target
/// directory.
fn azure_sdk_js() -> PathBuf {
    static INSTALLED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("azure-sdk-js");
    let pkg = dir.join("node_modules/@azure/keyvault-keys/package.json");
    let installed =
        std::fs::read_to_string(&pkg).is_ok_and(|p| p.contains("\"version\": \"4.10.2\""));
    if !installed {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg("@azure/keyvault-keys@4.10.2")
            .status()
            .expect("npm is needed");
        assert!(st.success(), "npm install @azure/keyvault-keys failed");
    }
    dir
}

#[test]
fn the_azure_keyvault_javascript_sdk_uses_sovra_as_its_vault() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let s = two_vaults(dir.path(), &[]);
    let input = dir.path().join("input.json");
    let v = json!({"url": s.url, "second_url": s.url.replace("127.0.0.1", "localhost"), "admin": s.token});
    std::fs::write(&input, v.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/server/azure_sdk/keyvault.mjs"
    );
    let o = Command::new("node")
        .arg(script)
        .arg(&input)
        .env("SDK_DIR", azure_sdk_js())
        .env("NODE_EXTRA_CA_CERTS", s.ca())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "ok ES256 is raw r||s and verifies with the JWK",
        "ok A256GCM round trip",
        "ok delete is recoverable",
        "ok backup restored into another vault",
        "checks failed: 0",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
}

#[test]
fn a_backup_is_refused_when_no_restore_could_carry_it() {
    use serde_json::json;
    // A small body limit, so a few versions make a backup too large to restore.
    let s = Server::start_with(&[("SOVRA_MAX_BODY_BYTES", "8192")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = s.admin();
    let call = |method: hyper::Method, path: &str, body: serde_json::Value| {
        let (status, resp) = rt
            .block_on(admin.raw(
                method,
                &format!("{path}?api-version=7.6"),
                Some(body.to_string().into_bytes()),
            ))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&resp).unwrap_or_default();
        (status.as_u16(), v)
    };
    let (st, v) = call(
        hyper::Method::POST,
        "/keys/aes/create",
        json!({"kty": "oct"}),
    );
    assert_eq!(st, 200, "{v}");
    let (st, small) = call(hyper::Method::POST, "/keys/aes/backup", json!({}));
    assert_eq!(st, 200, "{small}");
    let mut refused = None;
    for _ in 0..40 {
        call(hyper::Method::POST, "/keys/aes/rotate", json!({}));
        let (st, v) = call(hyper::Method::POST, "/keys/aes/backup", json!({}));
        if st != 200 {
            refused = Some((st, v));
            break;
        }
        // Every backup handed out fits in a restore request.
        assert!(v["value"].as_str().unwrap().len() + 16 < 8192, "{v}");
    }
    let (st, v) = refused.expect("a backup larger than a restore can carry was handed out");
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "BadParameter");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_body_bytes"),
        "{v}"
    );
}
