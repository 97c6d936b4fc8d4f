//! Trust boundaries through the real server: who may change what is trusted, what a token says
//! about where its trust came from, and what a policy, a crypto officer or a TPM key cannot do.
//! Each test failed on the server before these boundaries were built.

use crate::common::*;
use serde_json::{Value, json};
use std::path::PathBuf;

fn v(rel: &str) -> String {
    std::env::var("SOVRA_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn write(s: &Server, name: &str, text: &str) -> String {
    let p = s.dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A token of a new principal holding `role` at `scope`.
fn principal(s: &Server, name: &str, role: &str, scope: &str) -> String {
    let t = s.json(&["tokens", "create", "--principal", name]);
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        name,
        "--role",
        role,
        "--scope",
        scope,
    ]);
    t["token"].as_str().unwrap().to_string()
}

fn simulated(s: &Server) -> String {
    let sim = s.dir.join("sim");
    s.ok(&["agent", "sim-snp-init", "--dir", sim.to_str().unwrap()]);
    sim.to_str().unwrap().to_string()
}

#[test]
fn only_an_administrator_changes_what_is_trusted() {
    let s = Server::start();
    let pa = principal(&s, "pa", "policy-administrator", "*");
    let sim = simulated(&s);
    let ark = format!("{sim}/ark.pem");
    let import = |token: &str, kind: &str, file: &str| {
        let mut args = vec![
            "-o",
            "json",
            "attestation",
            "collateral",
            "import",
            "--kind",
            kind,
        ];
        if kind == "trust-anchor" {
            args.extend(["--platform", "amd"]);
        }
        args.push(file);
        s.cli_as(token, &args)
    };
    // A Policy Administrator once made the simulated SNP root "genuine AMD" this way.
    assert_eq!(
        cli_code(&import(&pa, "trust-anchor", &ark)),
        "PERMISSION_DENIED"
    );
    assert_eq!(
        cli_code(&import(&pa, "policy-signer", &ark)),
        "PERMISSION_DENIED"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let issuer = json!({"issuer": "https://attest.example", "certificates": [std::fs::read_to_string(&ark).unwrap()]});
    let e = rt
        .block_on(
            s.client_as(&pa)
                .post::<_, Value>("/v1/release/issuers", &issuer),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("PERMISSION_DENIED"));
    // Policies, reference values and vendor-signed intermediates stay theirs.
    assert!(
        import(&pa, "amd-certs", &v("roots/amd/ask_ark_milan.pem"))
            .status
            .success()
    );
    let p = write(
        &s,
        "p.txt",
        "version=1.0; authorizationrules { => permit(); }; issuancerules { };",
    );
    assert!(
        s.cli_as(&pa, &["attestation", "policy", "set", "sev-snp", &p])
            .status
            .success()
    );
    // No operator anchor yet: no warning.
    let ready: Value = rt.block_on(s.admin().get("/readyz")).unwrap();
    assert!(ready.get("warnings").is_none(), "{ready}");
    // The Administrator can; the change is audited, listed in the trust view, and warned of.
    let o = import(&s.token, "trust-anchor", &ark);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    rt.block_on(s.admin().post::<_, Value>("/v1/release/issuers", &issuer))
        .unwrap();
    let trust = s.json(&["attestation", "trust"]);
    assert_eq!(trust["operatorAnchors"][0]["id"], id);
    assert_eq!(
        trust["externalIssuers"][0]["issuer"],
        "https://attest.example"
    );
    assert!(
        trust["pinnedRoots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "AMD ARK-Milan")
    );
    assert!(
        trust["warnings"][0]
            .as_str()
            .unwrap()
            .contains("operator-added trust anchor")
    );
    let ready: Value = rt.block_on(s.admin().get("/readyz")).unwrap();
    assert!(
        ready["warnings"][0]
            .as_str()
            .unwrap()
            .contains("1 operator-added trust anchor"),
        "{ready}"
    );
    // Removing it is the Administrator's too.
    let o = s.cli_as(
        &pa,
        &["-o", "json", "attestation", "collateral", "delete", &id],
    );
    assert_eq!(cli_code(&o), "PERMISSION_DENIED");
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.lines()
            .any(|l| l.contains("attestation.collateral.import")
                && l.contains("operator-added root")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.contains("release.issuers.put")));
}

#[test]
fn tokens_say_which_root_their_evidence_chained_to() {
    let s = Server::start();
    // Genuine AMD evidence at a current TCB: a vendor root, and compliance.
    let out = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v("snp/azure_genoa_vcek.pem"),
        &v("snp/azure_genoa_report_from_hcl.bin"),
    ]);
    let c = s.json(&[
        "attestation",
        "verify-token",
        out["token"].as_str().unwrap(),
    ]);
    assert_eq!(c["x-sovra-trust-root"], "AMD ARK-Genoa");
    assert_eq!(c["x-sovra-trust-root-kind"], "vendor");
    assert_eq!(c["x-ms-compliance-status"], "sovra-compliant");
    // A simulated platform an administrator trusted: genuine by configuration, named as the
    // operator's anchor, and never compliant under the default policy.
    let sim = simulated(&s);
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "amd",
        &format!("{sim}/ark.pem"),
    ]);
    let rt_file = write(&s, "rt.json", "{\"nonce\":\"n\"}");
    let out = s.json(&[
        "agent",
        "attest",
        "--collector",
        "sim-snp",
        "--sim-dir",
        &sim,
        "--runtime-data",
        &rt_file,
    ]);
    let c = s.json(&[
        "attestation",
        "verify-token",
        out["token"].as_str().unwrap(),
    ]);
    assert_eq!(c["x-sovra-trust-root-kind"], "operator");
    assert!(
        c["x-sovra-trust-root"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(c.get("x-ms-compliance-status").is_none(), "{c}");
}

#[test]
fn a_policy_adds_claims_and_never_changes_verified_ones() {
    let s = Server::start();
    let attest = || {
        s.cli(&[
            "-o",
            "json",
            "attest",
            "--type",
            "sev-snp",
            "--cert-chain",
            &v("snp/virtee_milan_vcek.der"),
            &v("snp/virtee_milan_report.bin"),
        ])
    };
    for (claim, value) in [
        ("x-ms-attestation-type", "\"tdxvm\""),
        ("x-ms-sevsnpvm-is-debuggable", "true"),
        ("x-sovra-trust-root-kind", "\"vendor-by-policy\""),
        ("x-sovra-tcb-minimum-met", "true"),
    ] {
        let text = format!(
            "version=1.0; authorizationrules {{ => permit(); }}; issuancerules {{ => issue(type=\"{claim}\", value={value}); }};"
        );
        let p = write(&s, "p.txt", &text);
        s.ok(&["attestation", "policy", "set", "sev-snp", &p]);
        assert_eq!(cli_code(&attest()), "POLICY_INVALID", "{claim}");
    }
    // Re-issuing a claim unchanged (a common MAA idiom) and adding new ones are fine.
    let p = write(
        &s,
        "p.txt",
        "version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type==\"x-ms-attestation-type\"] => issue(claim=c); => issue(type=\"tier\", value=\"gold\"); };",
    );
    s.ok(&["attestation", "policy", "set", "sev-snp", &p]);
    let o = attest();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // With a policy signer configured (isolated mode), plain text is refused.
    let pkcs8 = sovra_crypto::jws::generate(sovra_crypto::jws::JwsAlg::Rs256).unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "policy signer");
    let cert = write(&s, "signer.pem", &params.self_signed(&kp).unwrap().pem());
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "policy-signer",
        &cert,
    ]);
    let o = s.cli(&["-o", "json", "attestation", "policy", "set", "sev-snp", &p]);
    assert_eq!(cli_code(&o), "POLICY_SIGNATURE_INVALID");
}

#[test]
fn only_an_administrator_rewrites_a_release_policy() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "r"]);
    let officer = principal(
        &s,
        "officer",
        "crypto-officer",
        "locations/global/keyRings/r",
    );
    let p1 = write(&s, "p1.json", &json!({"anyOf": [{"authority": s.url, "allOf": [{"claim": "x-ms-compliance-status", "equals": "sovra-compliant"}]}]}).to_string());
    // The officer creates exportable keys with their policy…
    let o = s.cli_as(
        &officer,
        &[
            "keys",
            "create",
            "r/k",
            "--purpose",
            "encrypt",
            "--exportable",
            "--release-policy",
            &p1,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // …but cannot widen it afterwards to anything (this once needed no administrator).
    let body = json!({"releasePolicy": {"policy": {"anyOf": [{"authority": s.url, "allOf": [{"claim": "x-ms-attestation-type", "exists": true}]}]}}});
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = "/v1/locations/global/keyRings/r/cryptoKeys/k";
    let e = rt
        .block_on(s.client_as(&officer).patch::<_, Value>(path, &body))
        .unwrap_err();
    assert_eq!(e.code(), Some("PERMISSION_DENIED"));
    rt.block_on(s.admin().patch::<_, Value>(path, &body))
        .unwrap();
    let log = s.ok(&["audit", "export"]);
    let rec = log
        .lines()
        .find(|l| l.contains("cryptoKeys.releasePolicy.set"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        rec.contains("oldPolicySha256") && rec.contains("newPolicySha256"),
        "{rec}"
    );
}

#[test]
fn an_unrestricted_tpm_key_is_no_attestation_key() {
    let s = Server::start();
    let (_tpm, tcti) = crate::tpm::swtpm(&s.dir);
    let dir = s.dir.join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(args[0])
            .args(&args[1..])
            .current_dir(&dir)
            .env("TPM2TOOLS_TCTI", &tcti)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]);
    run(&["tpm2_nvread", "-C", "o", "0x01c00002", "-o", "ek.der"]);
    run(&["tpm2_flushcontext", "-t"]);
    // A signing key bound to the genuine EK's TPM, but not restricted: it could sign a
    // hand-made quote with chosen PCRs.
    run(&["tpm2_createprimary", "-C", "o", "-c", "prim.ctx"]);
    run(&[
        "tpm2_create",
        "-C",
        "prim.ctx",
        "-G",
        "rsa",
        "-u",
        "key.pub",
        "-r",
        "key.priv",
        "-a",
        "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
    ]);
    run(&["tpm2_flushcontext", "-t"]);
    run(&[
        "tpm2_createak",
        "-C",
        "ek.ctx",
        "-c",
        "ak.ctx",
        "-G",
        "rsa",
        "-s",
        "rsassa",
        "-g",
        "sha256",
        "-u",
        "ak.pub",
        "-n",
        "ak.name",
    ]);
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "tpm",
        "/var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem",
    ]);
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "certs",
        "/var/lib/swtpm-localca/issuercert.pem",
    ]);
    let b = |f: &str| sovra_proto::b64::encode(&std::fs::read(dir.join(f)).unwrap());
    let challenge = |ak: &str| {
        let body =
            json!({"ekPublic": b("ek.pub"), "ekCertificate": b("ek.der"), "akPublic": b(ak)});
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(
            s.admin()
                .post::<_, Value>("/v1/attest/tpm/challenge", &body),
        )
    };
    let e = challenge("key.pub").unwrap_err();
    assert_eq!(e.code(), Some("ATTEST_BINDING_INVALID"), "{e}");
    assert!(e.to_string().contains("restricted"), "{e}");
    // A real AK (tpm2_createak: restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin).
    let ok = challenge("ak.pub").unwrap();
    assert!(ok["challengeId"].is_string(), "{ok}");
}

#[test]
fn a_gpu_alone_is_genuine_but_never_compliant() {
    // A GPU's nonce and key are held by whoever talks to it, not by a TEE: its evidence
    // verifies to NVIDIA's root, and the default policy never calls it compliant.
    let s = Server::start();
    let out = s.json(&[
        "attest",
        "--type",
        "nvidia-gpu",
        "--cert-chain",
        &v("nvidia_gpu/nvtrust_hopperCertChain.pem"),
        &v("nvidia_gpu/nvtrust_hopperAttestationReport.hex.txt"),
    ]);
    let c = s.json(&[
        "attestation",
        "verify-token",
        out["token"].as_str().unwrap(),
    ]);
    assert_eq!(c["x-sovra-trust-root-kind"], "vendor");
    assert_eq!(c["x-sovra-trust-root"], "NVIDIA Device Identity CA");
    assert!(c.get("x-ms-compliance-status").is_none(), "{c}");
}

#[test]
fn a_database_writer_cannot_grant_itself_anything() {
    let mut s = Server::start();
    s.ok(&["keyrings", "create", "db"]);
    s.ok(&["keys", "create", "db/k", "--purpose", "encrypt"]);
    let eve = s.json(&["tokens", "create", "--principal", "eve"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mallory = s.json(&["tokens", "create", "--principal", "mallory"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let list = ["-o", "json", "keyrings", "list"];
    assert_eq!(cli_code(&s.cli_as(&eve, &list)), "PERMISSION_DENIED");
    // Offline, someone with write access to the database (not the HSM) edits it; the next
    // process has nothing cached.
    s.terminate();
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let (name, parent, data): (String, String, Vec<u8>) = conn
        .query_row(
            "SELECT name, parent, data FROM objects WHERE collection='role_bindings' AND CAST(data AS TEXT) LIKE '%Administrator%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let forge = |who: &str, seal: &[u8]| {
        let mut body = row_json(&data);
        body["principal"] = json!(who);
        let mut bytes = serde_json::to_vec(&body).unwrap();
        bytes.extend_from_slice(seal);
        conn.execute(
            "INSERT INTO objects (collection, name, parent, rev, data, due) VALUES ('role_bindings', ?1, ?2, 1, ?3, NULL)",
            rusqlite::params![name.replacen(&parent, who, 1), who, bytes],
        )
        .unwrap();
    };
    // Eve's binding as the server before sealing wrote rows (plain JSON); mallory's with the
    // administrator's binding's seal copied along.
    forge("eve", b"");
    let end = data.iter().position(|&b| b == 0).expect("rows are sealed");
    forge("mallory", &data[end..]);
    // The key made exportable.
    let (kname, kdata): (String, Vec<u8>) = conn
        .query_row(
            "SELECT name, data FROM objects WHERE collection='crypto_keys' AND name LIKE '%db/cryptoKeys/k'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut key = row_json(&kdata);
    assert_eq!(key["exportable"], false);
    key["exportable"] = json!(true);
    conn.execute(
        "UPDATE objects SET data=?1 WHERE collection='crypto_keys' AND name=?2",
        rusqlite::params![serde_json::to_vec(&key).unwrap(), kname],
    )
    .unwrap();
    drop(conn);
    s.boot();
    for who in [&eve, &mallory] {
        let o = s.cli_as(who, &list);
        assert_eq!(cli_code(&o), "INTEGRITY_FAILURE");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("inserted outside Sovra"), "{err}");
    }
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "keys", "get", "db/k"])),
        "INTEGRITY_FAILURE"
    );
    // The administrator's own rows are untouched and still work; every refused row was audited
    // once, however often it was read.
    assert_eq!(s.json(&["whoami"])["principal"], "admin");
    let _ = s.cli_as(&eve, &list);
    let log = s.ok(&["audit", "export"]);
    let refused: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .filter(|e| e["action"] == "store.integrity")
        .collect();
    let resources: Vec<&str> = refused
        .iter()
        .map(|e| e["resource"].as_str().unwrap())
        .collect();
    assert_eq!(resources.len(), 3, "{refused:?}");
    assert!(
        resources.iter().any(|r| r.starts_with("role_bindings/eve")),
        "{resources:?}"
    );
    assert!(
        resources
            .iter()
            .any(|r| r.starts_with("role_bindings/mallory")),
        "{resources:?}"
    );
    assert!(
        resources
            .iter()
            .any(|r| r.starts_with("crypto_keys/") && r.ends_with("db/cryptoKeys/k")),
        "{resources:?}"
    );
    assert!(
        refused.iter().all(|e| e["code"] == "INTEGRITY_FAILURE"),
        "{refused:?}"
    );
}

#[test]
fn policy_tokens_and_audit_checkpoints_are_never_taken_for_attestation_tokens() {
    // MAA policy tokens and audit checkpoints are signed by keys of their own: published at
    // /certs (the MAA SDKs check policy tokens there), but not keys of the attestation service,
    // so neither is accepted as a key-release token.
    let s = Server::start_with(&[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let policy = write(
        &s,
        "p.json",
        &json!({"anyOf": [{"authority": s.url, "allOf": [{"claim": "iss", "equals": s.url.trim_end_matches('/')}]}]})
            .to_string(),
    );
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&[
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        &policy,
    ]);
    let kid = |t: &str| {
        sovra_crypto::jws::Jws::parse(t)
            .unwrap()
            .kid()
            .unwrap()
            .to_string()
    };
    let policy_token: Value = rt.block_on(s.admin().get("/policies/SevSnpVm")).unwrap();
    let policy_token = policy_token["token"].as_str().unwrap().to_string();
    let attested = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v("snp/azure_genoa_vcek.pem"),
        &v("snp/azure_genoa_report_from_hcl.bin"),
    ]);
    let attested = attested["token"].as_str().unwrap().to_string();
    assert_ne!(kid(&policy_token), kid(&attested));
    let jwks: Value = rt.block_on(s.admin().get("/certs")).unwrap();
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(published.contains(&kid(&policy_token).as_str()), "{jwks}");
    assert!(published.contains(&kid(&attested).as_str()), "{jwks}");
    let release = |target: &str| {
        code(rt.block_on(s.admin().post::<_, Value>(
            "/v1/locations/global/keyRings/r/cryptoKeys/k:release",
            &json!({"target": target}),
        )))
    };
    // The attestation token passes the signature and the policy (and stops at its missing
    // runtime key); the policy token and the checkpoint do not get that far.
    assert_eq!(release(&attested), "RELEASE_NO_TARGET_KEY");
    assert_eq!(release(&policy_token), "RELEASE_TOKEN_INVALID");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let cp: Value = rt.block_on(s.admin().get("/v1/audit:checkpoint")).unwrap();
    let signed = cp["signed"].as_str().unwrap();
    assert_eq!(kid(signed), kid(&policy_token));
    assert_eq!(release(signed), "RELEASE_TOKEN_INVALID");
}
