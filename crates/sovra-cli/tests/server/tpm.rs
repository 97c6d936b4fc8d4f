//! TPM-only machines, end to end with a real TPM implementation (swtpm with an EK certificate
//! from its local CA) and the real agent: the server trusts the TPM through its EK certificate
//! and credential activation of the AK; PCR values are claims for the release policy.

use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command};

pub(crate) struct Swtpm(Child);

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const LOCALCA: &str = "/var/lib/swtpm-localca";

/// A manufactured swtpm (EK certificate in NV) listening on a free port pair.
pub(crate) fn swtpm(dir: &Path) -> (Swtpm, String) {
    let state = dir.join("tpm");
    std::fs::create_dir_all(&state).unwrap();
    let o = Command::new("swtpm_setup")
        .args([
            "--tpm2",
            "--create-ek-cert",
            "--lock-nvram",
            "--overwrite",
            "--tpmstate",
        ])
        .arg(&state)
        .output()
        .expect("swtpm_setup is missing: install swtpm-tools");
    assert!(
        o.status.success(),
        "swtpm_setup: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let port = loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", state.display()))
        .args([
            "--server",
            &format!("type=tcp,port={port}"),
            "--ctrl",
            &format!("type=tcp,port={}", port + 1),
        ])
        .args(["--flags", "not-need-init,startup-clear"])
        .spawn()
        .expect("swtpm is missing");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (Swtpm(child), format!("swtpm:host=127.0.0.1,port={port}"))
}

#[test]
fn a_genuine_tpm_gets_the_key_and_an_extended_pcr_does_not() {
    let s = Server::start();
    let (_tpm, tcti) = swtpm(&s.dir);
    let policy = json!({"version": "1.0.0", "requireNonce": true, "anyOf": [{"authority": s.url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "tpm"},
        {"claim": "pcrs.sha256.16", "equals": "00".repeat(32)}]}]});
    let pfile = s.dir.join("p.json");
    std::fs::write(&pfile, policy.to_string()).unwrap();
    s.ok(&["keyrings", "create", "t"]);
    s.ok(&[
        "keys",
        "create",
        "t/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        pfile.to_str().unwrap(),
    ]);
    let ct = s.json(&["encrypt", "t/k", "--plaintext", "for the measured machine"]);
    let t = s.json(&["tokens", "create", "--principal", "host"]);
    let tok = t["token"].as_str().unwrap().to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "host",
        "--role",
        "release-user",
        "--scope",
        "t",
    ]);
    let out = s.dir.join("key.bin");
    let agent = || {
        Command::new(BIN)
            .args([
                "-o",
                "json",
                "agent",
                "release",
                "--key",
                "t/k",
                "--collector",
                "tpm",
                "--out",
                out.to_str().unwrap(),
            ])
            .env("SOVRA_URL", &s.url)
            .env("SOVRA_TOKEN", &tok)
            .env("SOVRA_CA_CERT", s.ca())
            .env("TPM2TOOLS_TCTI", &tcti)
            .output()
            .unwrap()
    };
    // The EK's CA is not trusted yet: no credential for this TPM.
    let o = agent();
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
        "tpm",
        &format!("{LOCALCA}/swtpm-localca-rootca-cert.pem"),
    ]);
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "certs",
        &format!("{LOCALCA}/issuercert.pem"),
    ]);
    let o = agent();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let material = std::fs::read(&out).unwrap();
    let aes =
        sovra_crypto::LoadedKey::load(sovra_proto::kms::Algorithm::Aes256Gcm, &material).unwrap();
    let pt = sovra_crypto::symmetric::open(
        &aes,
        b"",
        &sovra_proto::b64::decode(ct["ciphertext"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(pt.expose(), b"for the measured machine");
    // Something measured after boot into PCR 16: the policy no longer holds.
    let o = Command::new("tpm2_pcrextend")
        .arg(format!("16:sha256={}", "ab".repeat(32)))
        .env("TPM2TOOLS_TCTI", &tcti)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = agent();
    assert_eq!(
        cli_code(&o),
        "RELEASE_POLICY_DENIED",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("pcrs.sha256.16"));
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.lines()
            .any(|l| l.contains("cryptoKeys.release") && l.contains("RELEASE_POLICY_DENIED")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("cryptoKeys.release") && l.contains("\"granted\":true")),
        "{log}"
    );
}

/// Trusts swtpm's local EK CA on `s` (root as trust anchor, issuer as intermediate).
fn trust_swtpm_ca(s: &Server) {
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "tpm",
        &format!("{LOCALCA}/swtpm-localca-rootca-cert.pem"),
    ]);
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "certs",
        &format!("{LOCALCA}/issuercert.pem"),
    ]);
}

/// Ring `t` with exportable `t/k` under `policy` and non-exportable `t/n`; returns the token
/// of principal `host`, a Release User on `t`.
pub(crate) fn release_setup(s: &Server, policy: &serde_json::Value) -> String {
    let pfile = s.dir.join("p.json");
    std::fs::write(&pfile, policy.to_string()).unwrap();
    s.ok(&["keyrings", "create", "t"]);
    s.ok(&[
        "keys",
        "create",
        "t/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        pfile.to_str().unwrap(),
    ]);
    s.ok(&["keys", "create", "t/n", "--purpose", "encrypt"]);
    let t = s.json(&["tokens", "create", "--principal", "host"]);
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "host",
        "--role",
        "release-user",
        "--scope",
        "t",
    ]);
    t["token"].as_str().unwrap().to_string()
}

/// `sovra agent ARGS` in JSON mode as `token` against `s`, evidence from the TPM at `tcti`.
fn agent(s: &Server, token: &str, tcti: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["-o", "json", "agent"])
        .args(args)
        .args(["--collector", "tpm"])
        .env("SOVRA_URL", &s.url)
        .env("SOVRA_TOKEN", token)
        .env("SOVRA_CA_CERT", s.ca())
        .env("TPM2TOOLS_TCTI", tcti)
        .output()
        .unwrap()
}

/// A token the real agent obtains from `s` for the TPM at `tcti`, binding `runtime`.
fn tpm_token(s: &Server, token: &str, tcti: &str, runtime: &serde_json::Value) -> String {
    let f = s.dir.join("runtime.json");
    std::fs::write(&f, runtime.to_string()).unwrap();
    let o = agent(
        s,
        token,
        tcti,
        &["attest", "--runtime-data", f.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["type"], "tpm");
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn every_refusal_on_the_tpm_path_has_its_code_and_is_audited() {
    let a = Server::start();
    // A second deployment whose tokens live two seconds and get no clock-skew slack.
    let b = Server::start_with(&[
        ("SOVRA_ATTESTATION_TOKEN_TTL_SECS", "2"),
        ("SOVRA_ATTESTATION_CLOCK_SKEW_SECS", "0"),
    ]);
    let (_tpm, tcti) = swtpm(&a.dir);
    trust_swtpm_ca(&a);
    trust_swtpm_ca(&b);
    let policy = |s: &Server, nonce: bool| {
        json!({"version": "1.0.0", "requireNonce": nonce, "anyOf": [{"authority": s.url, "allOf": [
            {"claim": "x-ms-attestation-type", "equals": "tpm"},
            {"claim": "pcrs.sha256.16", "equals": "00".repeat(32)}]}]})
    };
    let host_a = release_setup(&a, &policy(&a, true));
    let host_b = release_setup(&b, &policy(&b, false));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wa = a.client_as(&host_a);
    let release = |c: &sovra_client::Client, body: serde_json::Value| {
        let path = "/v1/locations/global/keyRings/t/cryptoKeys/k:release";
        rt.block_on(c.post::<_, serde_json::Value>(path, &body))
    };
    let nonce = |c: &sovra_client::Client| {
        let n: serde_json::Value = rt
            .block_on(c.post("/v1/release/nonces", &json!({})))
            .unwrap();
        n["nonce"].as_str().unwrap().to_string()
    };

    // A non-exportable key: the whole agent flow runs, and the release is refused.
    let o = agent(&a, &host_a, &tcti, &["release", "--key", "t/n"]);
    assert_eq!(
        cli_code(&o),
        "KEY_NOT_EXPORTABLE",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A replayed nonce: the first release with it is granted, the second refused.
    let (_pkcs8, jwk) = crate::release::tee_key();
    let n = nonce(&wa);
    let tok = tpm_token(
        &a,
        &host_a,
        &tcti,
        &json!({"keys": [jwk.clone()], "nonce": n}),
    );
    release(&wa, json!({"target": tok, "nonce": n})).unwrap();
    assert_eq!(
        code(release(&wa, json!({"target": tok, "nonce": n}))),
        "RELEASE_NONCE_INVALID"
    );

    // A tampered token: the wrapping key swapped for an attacker's, signature kept.
    let n = nonce(&wa);
    let tok = tpm_token(&a, &host_a, &tcti, &json!({"keys": [jwk], "nonce": n}));
    let parts: Vec<&str> = tok.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&sovra_crypto::jws::b64url_decode(parts[1]).unwrap()).unwrap();
    let (_, attacker) = crate::release::tee_key();
    claims["x-ms-runtime"]["keys"] = json!([attacker]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        sovra_crypto::jws::b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        code(release(&wa, json!({"target": forged, "nonce": n}))),
        "RELEASE_TOKEN_INVALID"
    );

    // A token from another deployment that `a` was never told to trust.
    let (_, jwk) = crate::release::tee_key();
    let tok_b = tpm_token(&b, &host_b, &tcti, &json!({"keys": [jwk]}));
    assert_eq!(
        code(release(&wa, json!({"target": tok_b, "nonce": n}))),
        "RELEASE_UNTRUSTED_ISSUER"
    );

    // The same token at its own deployment once it has expired.
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let wb = b.client_as(&host_b);
    assert_eq!(
        code(release(&wb, json!({"target": tok_b}))),
        "RELEASE_TOKEN_EXPIRED"
    );

    // Each refusal is audited with its code, next to the one grant.
    let log = a.ok(&["audit", "export"]);
    let release_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cryptoKeys.release"))
        .collect();
    for want in [
        "KEY_NOT_EXPORTABLE",
        "RELEASE_NONCE_INVALID",
        "RELEASE_TOKEN_INVALID",
        "RELEASE_UNTRUSTED_ISSUER",
    ] {
        assert!(
            release_lines.iter().any(|l| l.contains(want)),
            "{want}: {log}"
        );
    }
    assert_eq!(
        release_lines
            .iter()
            .filter(|l| l.contains("\"granted\":true"))
            .count(),
        1,
        "{log}"
    );
    let log = b.ok(&["audit", "export"]);
    assert!(
        log.lines()
            .any(|l| l.contains("cryptoKeys.release") && l.contains("RELEASE_TOKEN_EXPIRED")),
        "{log}"
    );
}
