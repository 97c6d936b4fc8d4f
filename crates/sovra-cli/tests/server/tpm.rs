//! TPM-only machines, end to end with a real TPM implementation (swtpm with an EK certificate
//! from its local CA) and the real agent: the server trusts the TPM through its EK certificate
//! and credential activation of the AK; PCR values are claims for the release policy.

use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command};

struct Swtpm(Child);

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const LOCALCA: &str = "/var/lib/swtpm-localca";

/// A manufactured swtpm (EK certificate in NV) listening on a free port pair.
fn swtpm(dir: &Path) -> (Swtpm, String) {
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
