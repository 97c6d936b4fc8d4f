//! Azure confidential VMs, end to end with the real agent's `azure` collector against a real TPM
//! (swtpm) set up the way Azure's paravisor sets up the vTPM: an attestation key persistent at
//! 0x81000003 and an HCL report in NV index 0x01400001 whose SEV-SNP report (from the simulated
//! SNP platform, trusted explicitly) binds the HCL runtime data holding that key; the VCEK comes
//! from an IMDS stand-in on loopback. The server verifies it as `az-snp-vtpm` and releases.

use crate::common::*;
use crate::tpm::swtpm;
use serde_json::{Value, json};
use sovra_crypto::jws::b64url;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

pub(crate) fn tpm(dir: &Path, tcti: &str, args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env("TPM2TOOLS_TCTI", tcti)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: install tpm2-tools", args[0]));
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh RSA signing AK made persistent at 0x81000003; returns its public key as a JWK with
/// `kid` HCLAkPub.
pub(crate) fn provision_ak(dir: &Path, tcti: &str) -> Value {
    for f in ["ak.der", "ak.ctx", "ak.pub", "ak.priv", "prim.ctx"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    // swtpm has no resource manager: flush what each tool leaves loaded.
    tpm(
        dir,
        tcti,
        &["tpm2_createprimary", "-C", "o", "-c", "prim.ctx"],
    );
    tpm(dir, tcti, &["tpm2_flushcontext", "-t"]);
    tpm(
        dir,
        tcti,
        &[
            "tpm2_create",
            "-C",
            "prim.ctx",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            "-u",
            "ak.pub",
            "-r",
            "ak.priv",
        ],
    );
    tpm(dir, tcti, &["tpm2_flushcontext", "-t"]);
    tpm(
        dir,
        tcti,
        &[
            "tpm2_load",
            "-C",
            "prim.ctx",
            "-u",
            "ak.pub",
            "-r",
            "ak.priv",
            "-c",
            "ak.ctx",
        ],
    );
    tpm(
        dir,
        tcti,
        &["tpm2_evictcontrol", "-C", "o", "-c", "ak.ctx", "0x81000003"],
    );
    tpm(dir, tcti, &["tpm2_flushcontext", "-t"]);
    tpm(
        dir,
        tcti,
        &[
            "tpm2_readpublic",
            "-c",
            "0x81000003",
            "-f",
            "der",
            "-o",
            "ak.der",
        ],
    );
    let spki = std::fs::read(dir.join("ak.der")).unwrap();
    let pk = aws_lc_rs::rsa::PublicKey::from_der(&spki).unwrap();
    json!({"kid": "HCLAkPub", "key_ops": ["sign"], "kty": "RSA",
        "e": b64url(pk.exponent().big_endian_without_leading_zero()),
        "n": b64url(pk.modulus().big_endian_without_leading_zero())})
}

/// The HCL report the paravisor would write: header, SNP report binding SHA-256 of the runtime
/// data, runtime-data header, runtime data (JSON with HCLAkPub).
fn hcl_report(sim: &sovra_agent::simsnp::SimulatedSnp, ak: &Value) -> Vec<u8> {
    let var = json!({"keys": [ak], "vm-configuration": {"secure-boot": true,
        "tpm-enabled": true, "console-enabled": false, "vmUniqueId": "sovra-test-cvm"}})
    .to_string()
    .into_bytes();
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &var).as_ref());
    let snp = sim.report(&rd).unwrap();
    assert_eq!(snp.len(), 1184);
    let mut b = Vec::new();
    b.extend_from_slice(b"HCLA");
    for v in [2u32, 1184, 2, 0, 0, 0, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&snp);
    for v in [20 + var.len() as u32, 1, 2, 1, var.len() as u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&var);
    b
}

/// Writes `hcl` into NV index 0x01400001 (defined to its size).
fn store_hcl(dir: &Path, tcti: &str, hcl: &[u8]) {
    std::fs::write(dir.join("hcl.bin"), hcl).unwrap();
    let _ = Command::new("tpm2_nvundefine")
        .args(["-C", "o", "0x01400001"])
        .env("TPM2TOOLS_TCTI", tcti)
        .output();
    tpm(
        dir,
        tcti,
        &[
            "tpm2_nvdefine",
            "0x01400001",
            "-C",
            "o",
            "-s",
            &hcl.len().to_string(),
            "-a",
            "ownerread|ownerwrite|authread|authwrite",
        ],
    );
    tpm(
        dir,
        tcti,
        &["tpm2_nvwrite", "0x01400001", "-C", "o", "-i", "hcl.bin"],
    );
    // Where the guest asks the paravisor for a fresh report with its own user data.
    let _ = Command::new("tpm2_nvundefine")
        .args(["-C", "o", "0x01400002"])
        .env("TPM2TOOLS_TCTI", tcti)
        .output();
    tpm(
        dir,
        tcti,
        &[
            "tpm2_nvdefine",
            "0x01400002",
            "-C",
            "o",
            "-s",
            "64",
            "-a",
            "ownerread|ownerwrite",
        ],
    );
}

/// An IMDS stand-in on loopback: answers the THIM VCEK request (only with `Metadata: true`).
fn imds(vcek_pem: String, chain_pem: String) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().take(50) {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req);
            let (status, body) = if req.starts_with("GET /metadata/THIM/amd/certification ")
                && req.contains("Metadata: true")
            {
                (
                    "200 OK",
                    json!({"vcekCert": vcek_pem, "certificateChain": chain_pem, "tcbm": "7300000000000003"})
                        .to_string(),
                )
            } else {
                ("404 Not Found", "{}".to_string())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn an_azure_cvm_gets_the_key_through_its_vtpm_and_a_foreign_ak_does_not() {
    let s = Server::start();
    let (_tpm, tcti) = swtpm(&s.dir);
    let dir = s.dir.join("cvm");
    std::fs::create_dir_all(&dir).unwrap();
    let sim = sovra_agent::simsnp::SimulatedSnp::generate().unwrap();
    sim.save(&dir.join("sim")).unwrap();
    let ak = provision_ak(&dir, &tcti);
    store_hcl(&dir, &tcti, &hcl_report(&sim, &ak));
    let imds_url = imds(sim.vcek_pem.clone(), sim.ask_ark_pem.clone());

    // Azure's canonical policy requires x-ms-compliance-status, which a simulated (operator-
    // anchored) SNP root never earns; this one names the test root instead.
    let sim_root = format!(
        "sha256:{}",
        sovra_attest::x509::sha256_hex(
            &sovra_attest::x509::certs_from_pem_or_der(sim.ark_pem.as_bytes()).unwrap()[0]
        )
    );
    let policy = json!({"version": "1.0.0", "requireNonce": true, "anyOf": [{"authority": s.url, "allOf": [
        {"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-sovra-trust-root", "equals": sim_root},
        {"claim": "x-sovra-trust-root-kind", "equals": "operator"},
        {"claim": "pcrs.sha256.16", "equals": "00".repeat(32)}]}]});
    let pfile = s.dir.join("p.json");
    std::fs::write(&pfile, policy.to_string()).unwrap();
    s.ok(&["keyrings", "create", "cvm"]);
    s.ok(&[
        "keys",
        "create",
        "cvm/disk",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        pfile.to_str().unwrap(),
    ]);
    let ct = s.json(&["encrypt", "cvm/disk", "--plaintext", "for the Azure CVM"]);
    let t = s.json(&["tokens", "create", "--principal", "vm"]);
    let tok = t["token"].as_str().unwrap().to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "vm",
        "--role",
        "release-user",
        "--scope",
        "cvm",
    ]);
    let out = s.dir.join("disk.key");
    let agent = || {
        Command::new(BIN)
            .args([
                "-o",
                "json",
                "agent",
                "release",
                "--key",
                "cvm/disk",
                "--collector",
                "azure",
            ])
            .args(["--imds-url", &imds_url, "--out", out.to_str().unwrap()])
            .env("SOVRA_URL", &s.url)
            .env("SOVRA_TOKEN", &tok)
            .env("SOVRA_CA_CERT", s.ca())
            .env("TPM2TOOLS_TCTI", &tcti)
            .output()
            .unwrap()
    };

    // The simulated AMD root is not trusted by default.
    let o = agent();
    assert_eq!(
        cli_code(&o),
        "ATTEST_CHAIN_INVALID",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ark = dir.join("sim/ark.pem");
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "amd",
        ark.to_str().unwrap(),
    ]);
    let o = agent();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let aes = sovra_crypto::LoadedKey::load(
        sovra_proto::kms::Algorithm::Aes256Gcm,
        &std::fs::read(&out).unwrap(),
    )
    .unwrap();
    let pt = sovra_crypto::symmetric::open(
        &aes,
        b"",
        &sovra_proto::b64::decode(ct["ciphertext"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(pt.expose(), b"for the Azure CVM");

    // The token says what a relying party needs: an Azure CVM on (simulated) SNP, its PCRs,
    // and the key the agent bound.
    let o = Command::new(BIN)
        .args([
            "-o",
            "json",
            "agent",
            "attest",
            "--collector",
            "azure",
            "--imds-url",
            &imds_url,
        ])
        .env("SOVRA_URL", &s.url)
        .env("SOVRA_TOKEN", &tok)
        .env("SOVRA_CA_CERT", s.ca())
        .env("TPM2TOOLS_TCTI", &tcti)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["type"], "az-snp-vtpm");
    let jwt = v["token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &sovra_crypto::jws::b64url_decode(jwt.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["x-ms-attestation-type"], "azurevm");
    assert_eq!(claims["x-ms-runtime"]["nonce"], v["nonce"]);
    assert_eq!(claims["pcrs"]["sha256"]["16"], "00".repeat(32));
    // The agent handed the runtime-data hash to the paravisor as user data (NV 0x01400002).
    tpm(
        &dir,
        &tcti,
        &["tpm2_nvread", "-C", "o", "0x01400002", "-o", "user.bin"],
    );
    let runtime = json!({"nonce": v["nonce"]}).to_string();
    let user = std::fs::read(dir.join("user.bin")).unwrap();
    assert_eq!(
        &user[..32],
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, runtime.as_bytes()).as_ref()
    );

    // Another key at the AK handle: its quotes do not verify with the HCLAkPub the SNP report
    // vouches for.
    tpm(
        &dir,
        &tcti,
        &["tpm2_evictcontrol", "-C", "o", "-c", "0x81000003"],
    );
    provision_ak(&dir, &tcti);
    let o = agent();
    assert_eq!(
        cli_code(&o),
        "ATTEST_SIGNATURE_INVALID",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A later boot measured something else into PCR 16: the policy refuses.
    tpm(
        &dir,
        &tcti,
        &["tpm2_evictcontrol", "-C", "o", "-c", "0x81000003"],
    );
    let ak = provision_ak(&dir, &tcti);
    store_hcl(&dir, &tcti, &hcl_report(&sim, &ak));
    tpm(
        &dir,
        &tcti,
        &["tpm2_pcrextend", &format!("16:sha256={}", "ab".repeat(32))],
    );
    let o = agent();
    assert_eq!(
        cli_code(&o),
        "RELEASE_POLICY_DENIED",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.lines()
            .any(|l| l.contains("cryptoKeys.release") && l.contains("\"granted\":true")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("cryptoKeys.release") && l.contains("RELEASE_POLICY_DENIED")),
        "{log}"
    );
}
