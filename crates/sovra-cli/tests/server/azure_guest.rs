//! Azure's guest attestation protocol (`POST /attest/AzureGuest`), with a client written from
//! the protocol description (the guest attestation library's `AttestationInfo`) against swtpm
//! provisioned the way Azure's paravisor provisions the vTPM: the AK at 0x81000003, whose key
//! the runtime data names `HCLAkPub`, bound by a (simulated, explicitly trusted) SEV-SNP
//! report. The guest quotes PCRs 0-7, sends its TCG log, and creates an ephemeral RSA key in the
//! NULL hierarchy bound by `TPM2_PolicyPCR` to those PCRs and certified by the AK; the token
//! comes back sealed to that key, and only the TPM opens it.

use crate::attest::verify_with_jwks;
use crate::azure_vtpm::{provision_ak, tpm};
use crate::common::*;
use crate::tpm::swtpm;
use serde_json::{Value, json};
use sovra_crypto::jws::b64url;
use std::path::{Path, PathBuf};

const PCRS: &str = "sha256:0,1,2,3,4,5,6,7";
const ENC_ATTRS: &str = "decrypt|fixedtpm|fixedparent|sensitivedataorigin|noda";

pub(crate) fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn b64(b: &[u8]) -> String {
    sovra_proto::b64::encode(b)
}

/// UEFI_VARIABLE_DATA of the SecureBoot variable (EFI global variable GUID).
pub(crate) fn secure_boot_data(enabled: bool) -> Vec<u8> {
    let mut d = vec![
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
        0x8c,
    ];
    d.extend_from_slice(&10u64.to_le_bytes());
    d.extend_from_slice(&1u64.to_le_bytes());
    d.extend("SecureBoot".encode_utf16().flat_map(u16::to_le_bytes));
    d.push(u8::from(enabled));
    d
}

/// A crypto-agile TCG log (SHA-256 bank) of `events` (PCR, type, digest, data).
pub(crate) fn tcg_log(events: &[(u32, u32, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend_from_slice(&0u32.to_le_bytes()); // platform class
    spec.extend_from_slice(&[0, 2, 0, 2]); // version 2.0, errata 0, uintn size 2
    spec.extend_from_slice(&1u32.to_le_bytes());
    spec.extend_from_slice(&0x000Bu16.to_le_bytes());
    spec.extend_from_slice(&32u16.to_le_bytes());
    spec.push(0);
    let mut log = Vec::new();
    log.extend_from_slice(&0u32.to_le_bytes());
    log.extend_from_slice(&3u32.to_le_bytes()); // EV_NO_ACTION
    log.extend_from_slice(&[0u8; 20]);
    log.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    log.extend_from_slice(&spec);
    for (pcr, ty, digest, data) in events {
        log.extend_from_slice(&pcr.to_le_bytes());
        log.extend_from_slice(&ty.to_le_bytes());
        log.extend_from_slice(&1u32.to_le_bytes());
        log.extend_from_slice(&0x000Bu16.to_le_bytes());
        log.extend_from_slice(digest);
        log.extend_from_slice(&(data.len() as u32).to_le_bytes());
        log.extend_from_slice(data);
    }
    log
}

/// The guest: its vTPM, the paravisor's runtime data and SNP report, its TCG log.
struct Guest {
    dir: PathBuf,
    tcti: String,
    runtime: Vec<u8>,
    /// `IsolationInfo.Type` and `Evidence.Proof`.
    isolation: (&'static str, String),
    log: Vec<u8>,
    ak_cert: Vec<u8>,
}

impl Guest {
    fn tpm(&self, args: &[&str]) {
        tpm(&self.dir, &self.tcti, args);
        tpm(&self.dir, &self.tcti, &["tpm2_flushcontext", "-t"]);
    }

    fn read(&self, f: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(f)).unwrap()
    }

    /// The ephemeral key: an RSA-2048 primary of `hierarchy` (the guest library uses the NULL
    /// hierarchy, `n`) with `attrs`, whose policy is TPM2_PolicyPCR over `pcrs` at their
    /// current values.
    fn ephemeral_key(&self, hierarchy: &str, attrs: &str, pcrs: &str) {
        tpm(
            &self.dir,
            &self.tcti,
            &["tpm2_startauthsession", "-S", "trial.ctx"],
        );
        tpm(
            &self.dir,
            &self.tcti,
            &[
                "tpm2_policypcr",
                "-S",
                "trial.ctx",
                "-l",
                pcrs,
                "-L",
                "pcr.policy",
            ],
        );
        tpm(&self.dir, &self.tcti, &["tpm2_flushcontext", "trial.ctx"]);
        self.tpm(&[
            "tpm2_createprimary",
            "-C",
            hierarchy,
            "-G",
            "rsa2048:null:null",
            "-a",
            attrs,
            "-L",
            "pcr.policy",
            "-c",
            "enc.ctx",
        ]);
    }

    /// `AttestationInfo` as the guest library builds it, with an ephemeral key of `attrs`
    /// in `hierarchy` bound to `policy_pcrs`.
    fn attestation_info(&self, hierarchy: &str, attrs: &str, policy_pcrs: &str) -> Value {
        self.tpm(&["tpm2_readpublic", "-c", "0x81000003", "-o", "ak.2b"]);
        self.tpm(&[
            "tpm2_quote",
            "-c",
            "0x81000003",
            "-l",
            PCRS,
            "-g",
            "sha256",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
            "plain",
        ]);
        self.tpm(&["tpm2_pcrread", PCRS, "-o", "pcrs.bin"]);
        self.ephemeral_key(hierarchy, attrs, policy_pcrs);
        self.tpm(&["tpm2_readpublic", "-c", "enc.ctx", "-o", "enc.2b"]);
        self.tpm(&[
            "tpm2_certify",
            "-c",
            "enc.ctx",
            "-C",
            "0x81000003",
            "-g",
            "sha256",
            "-o",
            "certify.attest",
            "-s",
            "certify.sig",
            "-f",
            "plain",
        ]);
        let values = self.read("pcrs.bin");
        let pcrs: Vec<Value> = values
            .chunks(32)
            .enumerate()
            .map(|(i, d)| json!({"Index": i, "Digest": b64(d)}))
            .collect();
        json!({
            "AttestationProtocolVersion": "2.0",
            "OSType": b64(b"Linux"),
            "OSDistro": b64(b"Ubuntu"),
            "OSVersionMajor": 24,
            "OSVersionMinor": 4,
            "OSBuild": b64(b"NotApplication"),
            "TcgLogs": b64(&self.log),
            "ClientPayload": {"nonce": b64(b"relying-party-nonce-1")},
            "TpmInfo": {
                "AikCert": b64(&self.ak_cert),
                "AikPub": b64(&self.read("ak.2b")),
                "PcrQuote": b64(&self.read("quote.msg")),
                "PcrSignature": b64(&self.read("quote.sig")),
                "EncKeyPub": b64(&self.read("enc.2b")),
                "EncKeyCertifyInfo": b64(&self.read("certify.attest")),
                "EncKeyCertifyInfoSignature": b64(&self.read("certify.sig")),
                "PcrSet": (0..8).collect::<Vec<_>>(),
                "PCRs": pcrs,
            },
            "IsolationInfo": {
                "Type": self.isolation.0,
                "Evidence": {
                    "Proof": self.isolation.1,
                    "RunTimeData": b64(&self.runtime),
                },
            },
        })
    }

    /// Decrypts `data` with the ephemeral key (`scheme`: rsaes, oaep-sha1), re-created as the
    /// library does, under a PolicyPCR session; `None` when the TPM refuses.
    fn try_tpm_decrypt(&self, data: &[u8], scheme: &str) -> Option<Vec<u8>> {
        std::fs::write(self.dir.join("in.enc"), data).unwrap();
        let _ = std::fs::remove_file(self.dir.join("out.dec"));
        self.ephemeral_key("n", ENC_ATTRS, PCRS);
        tpm(
            &self.dir,
            &self.tcti,
            &[
                "tpm2_startauthsession",
                "--policy-session",
                "-S",
                "sess.ctx",
            ],
        );
        tpm(
            &self.dir,
            &self.tcti,
            &["tpm2_policypcr", "-S", "sess.ctx", "-l", PCRS],
        );
        let ok = std::process::Command::new("tpm2_rsadecrypt")
            .args(["-c", "enc.ctx", "-p", "session:sess.ctx", "-s", scheme])
            .args(["-o", "out.dec", "in.enc"])
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", &self.tcti)
            .output()
            .unwrap()
            .status
            .success();
        tpm(&self.dir, &self.tcti, &["tpm2_flushcontext", "sess.ctx"]);
        tpm(&self.dir, &self.tcti, &["tpm2_flushcontext", "-t"]);
        ok.then(|| self.read("out.dec"))
    }

    fn tpm_decrypt(&self, data: &[u8], scheme: &str) -> Vec<u8> {
        self.try_tpm_decrypt(data, scheme)
            .expect("the vTPM decrypts under its PCR policy")
    }

    /// Opens a sealed token as the library does: the inner key decrypted by the TPM under a
    /// PolicyPCR session (RSAES), then AES-256-GCM with AAD "Transport Key".
    fn unseal(&self, sealed: &str) -> String {
        let outer: Value =
            serde_json::from_slice(&sovra_crypto::jws::b64url_decode(sealed).unwrap()).unwrap();
        let p = &outer["EncryptionParams"];
        assert_eq!(p["BlockMode"], "ChainingModeGCM");
        assert_eq!(p["Cipher"], "AES");
        assert_eq!(p["KeySizeInBits"], 256);
        let d = |v: &Value| sovra_proto::b64::decode(v.as_str().unwrap()).unwrap();
        let key = self.tpm_decrypt(&d(&outer["EncryptedInnerKey"]), "rsaes");
        let aes =
            sovra_crypto::LoadedKey::load(sovra_proto::kms::Algorithm::Aes256Gcm, &key).unwrap();
        let iv: [u8; 12] = d(&p["Iv"]).try_into().unwrap();
        let mut sealed = d(&outer["Jwt"]);
        sealed.extend(d(&outer["AuthenticationData"]));
        use sovra_crypto::KeyOps;
        let jwt = aes.gcm_open(&iv, b"Transport Key", &sealed).unwrap();
        String::from_utf8(jwt.expose().to_vec()).unwrap()
    }
}

/// The AK certificate, as Azure provisions one into NV (here from a throwaway CA).
pub(crate) fn ak_cert(dir: &Path, tcti: &str, key: &str) -> Vec<u8> {
    let run = |args: &[&str]| {
        let o = std::process::Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .env("TPM2TOOLS_TCTI", tcti)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=test vTPM CA",
        "-days",
        "2",
    ]);
    run(&[
        "openssl",
        "x509",
        "-new",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-force_pubkey",
        key,
        "-subj",
        "/CN=ak",
        "-days",
        "2",
        "-outform",
        "DER",
        "-out",
        "akcert.der",
    ]);
    std::fs::read(dir.join("akcert.der")).unwrap()
}

/// An SEV-SNP guest (simulated SNP platform, its root trusted).
fn setup(s: &Server) -> (crate::tpm::Swtpm, Guest) {
    guest(s, |dir, rd| {
        let sim = sovra_agent::simsnp::SimulatedSnp::generate().unwrap();
        sim.save(&dir.join("sim")).unwrap();
        s.ok(&[
            "attestation",
            "collateral",
            "import",
            "--kind",
            "trust-anchor",
            "--platform",
            "amd",
            dir.join("sim/ark.pem").to_str().unwrap(),
        ]);
        let chain = format!("{}{}", sim.vcek_pem, sim.ask_ark_pem);
        let proof = json!({"SnpReport": b64url(&sim.report(rd).unwrap()), "VcekCertChain": b64(chain.as_bytes())});
        ("SevSnp", b64(proof.to_string().as_bytes()))
    })
}

/// A guest whose paravisor's hardware evidence `isolation` makes from the runtime data's
/// hash (REPORT_DATA), with a vTPM provisioned as Azure's paravisor does.
fn guest(
    s: &Server,
    isolation: impl FnOnce(&Path, &[u8; 64]) -> (&'static str, String),
) -> (crate::tpm::Swtpm, Guest) {
    let (swtpm, tcti) = swtpm(&s.dir);
    let dir = s.dir.join("guest");
    std::fs::create_dir_all(&dir).unwrap();
    let ak = provision_ak(&dir, &tcti);
    tpm(
        &dir,
        &tcti,
        &[
            "tpm2_readpublic",
            "-c",
            "0x81000003",
            "-f",
            "pem",
            "-o",
            "ak.pem",
        ],
    );
    tpm(&dir, &tcti, &["tpm2_flushcontext", "-t"]);
    let runtime = json!({"keys": [ak], "vm-configuration": {"console-enabled": false,
        "secure-boot": true, "tpm-enabled": true, "vmUniqueId": "sovra-guest-cvm"},
        "user-data": "00".repeat(64)})
    .to_string()
    .into_bytes();
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&sha256(&runtime));
    let isolation = isolation(&dir, &rd);
    // Firmware measured Secure Boot enabled, then a separator, into PCR 7.
    let sb = secure_boot_data(true);
    let sep = vec![0u8; 4];
    let events = vec![
        (7, 0x8000_0001, sha256(&sb), sb),
        (7, 0x4, sha256(&sep), sep),
    ];
    for (pcr, _, digest, _) in &events {
        tpm(
            &dir,
            &tcti,
            &[
                "tpm2_pcrextend",
                &format!("{pcr}:sha256={}", sovra_proto::hex::encode(digest)),
            ],
        );
    }
    let g = Guest {
        ak_cert: ak_cert(&dir, &tcti, "ak.pem"),
        dir,
        tcti,
        runtime,
        isolation,
        log: tcg_log(&events),
    };
    (swtpm, g)
}

fn post(s: &Server, body: &Value) -> Result<Value, sovra_client::ClientError> {
    let anon = sovra_client::Client::new(sovra_client::ClientConfig {
        url: s.url.clone(),
        token: None,
        ca_pem: Some(std::fs::read(s.ca()).unwrap()),
        ..Default::default()
    })
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(anon.post::<_, Value>("/attest/AzureGuest?api-version=2020-10-01", body))
}

fn attest(s: &Server, info: &Value) -> Result<Value, sovra_client::ClientError> {
    post(
        s,
        &json!({"AttestationInfo": b64url(info.to_string().as_bytes())}),
    )
}

#[test]
fn an_azure_guest_gets_a_token_only_its_vtpm_can_open() {
    let s = Server::start();
    let (_swtpm, g) = setup(&s);
    let info = g.attestation_info("n", ENC_ATTRS, PCRS);
    let sealed = attest(&s, &info).unwrap();
    let sealed = sealed["token"].as_str().unwrap();
    // Sealed: not a JWT, and opened only by the TPM.
    assert_eq!(sealed.matches('.').count(), 0);
    let jwt = g.unseal(sealed);
    let c = verify_with_jwks(&s, &jwt);
    assert_eq!(c["x-ms-attestation-type"], "azurevm");
    assert_eq!(c["x-ms-isolation-tee"]["x-ms-attestation-type"], "sevsnpvm");
    assert_eq!(c["x-ms-azurevm-attestation-protocol-ver"], "2.0");
    assert_eq!(c["x-ms-azurevm-ostype"], "Linux");
    assert_eq!(c["x-ms-azurevm-osdistro"], "Ubuntu");
    assert_eq!(c["x-ms-azurevm-is-windows"], false);
    assert_eq!(c["x-ms-azurevm-vmid"], "sovra-guest-cvm");
    assert_eq!(
        c["x-ms-azurevm-attested-pcrs"],
        json!([0, 1, 2, 3, 4, 5, 6, 7])
    );
    // Secure Boot as the TCG log measured it (replayed to the quoted PCR 7).
    assert_eq!(c["secureboot"], true);
    // The sealing key is where Azure's key release looks for it, with the client payload.
    let keys = &c["x-ms-runtime"]["keys"];
    assert_eq!(keys[0]["kid"], "TpmEphemeralEncryptionKey");
    assert_eq!(keys[0]["key_ops"], json!(["encrypt"]));
    let enc_pem = {
        tpm(
            &g.dir,
            &g.tcti,
            &[
                "tpm2_readpublic",
                "-c",
                "enc.ctx",
                "-f",
                "der",
                "-o",
                "enc.der",
            ],
        );
        tpm(&g.dir, &g.tcti, &["tpm2_flushcontext", "-t"]);
        aws_lc_rs::rsa::PublicKey::from_der(&g.read("enc.der")).unwrap()
    };
    assert_eq!(
        keys[0]["n"],
        b64url(enc_pem.modulus().big_endian_without_leading_zero())
    );
    assert_eq!(
        c["x-ms-runtime"]["client-payload"]["nonce"],
        b64(b"relying-party-nonce-1")
    );
    // Every attestation is audited.
    let log = s.ok(&["audit", "export"]);
    assert!(log.contains("az-snp-vtpm"), "{log}");

    // Secure key release as an Azure CVM does it: the token is the target, the key comes back
    // wrapped to TpmEphemeralEncryptionKey, and only the vTPM (in the attested PCR state)
    // unwraps it.
    let sim_root = format!(
        "sha256:{}",
        sovra_attest::x509::sha256_hex(
            &sovra_attest::x509::certs_from_pem_or_der(&g.read("sim/ark.pem")).unwrap()[0]
        )
    );
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": s.url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "azurevm"},
        {"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-sovra-trust-root", "equals": sim_root},
        {"claim": "secureboot", "equals": true}]}]});
    let vm = s.client_as(&crate::tpm::release_setup(&s, &policy));
    let ct = s.json(&["encrypt", "t/k", "--plaintext", "for the guest"]);
    let r = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(vm.release(
            "locations/global/keyRings/t/cryptoKeys/k",
            &sovra_proto::kms::ReleaseRequest {
                target: jwt.clone(),
                nonce: None,
                enc: None,
            },
        ))
        .unwrap();
    let body = sovra_crypto::jws::Jws::parse(&r.value)
        .unwrap()
        .claims()
        .unwrap();
    let key_hsm: Value = serde_json::from_slice(
        &sovra_crypto::jws::b64url_decode(
            body["response"]["key"]["key"]["key_hsm"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(key_hsm["header"]["kid"], "TpmEphemeralEncryptionKey");
    assert_eq!(key_hsm["header"]["enc"], "CKM_RSA_AES_KEY_WRAP");
    let blob = sovra_crypto::jws::b64url_decode(key_hsm["ciphertext"].as_str().unwrap()).unwrap();
    let (rsa, kwp) = blob.split_at(256);
    let transfer = g.tpm_decrypt(rsa, "oaep-sha1");
    let material = sovra_crypto::keywrap::kwp_unwrap(&transfer, kwp).unwrap();
    let aes =
        sovra_crypto::LoadedKey::load(sovra_proto::kms::Algorithm::Aes256Gcm, material.expose())
            .unwrap();
    let pt = sovra_crypto::symmetric::open(
        &aes,
        b"",
        &sovra_proto::b64::decode(ct["ciphertext"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(pt.expose(), b"for the guest");

    // Once a PCR moves on, the vTPM no longer decrypts: the token and the key were for the
    // attested state only.
    tpm(
        &g.dir,
        &g.tcti,
        &["tpm2_pcrextend", &format!("4:sha256={}", "cd".repeat(32))],
    );
    assert!(g.try_tpm_decrypt(rsa, "oaep-sha1").is_none());
}

#[test]
fn every_broken_link_of_guest_evidence_is_refused_with_its_code() {
    let s = Server::start();
    let (_swtpm, g) = setup(&s);
    let good = g.attestation_info("n", ENC_ATTRS, PCRS);
    let refused = |info: &Value| code(attest(&s, info));
    let b = |v: &Value| sovra_proto::b64::decode(v.as_str().unwrap()).unwrap();
    let with = |path: &str, value: Value| {
        let mut v = good.clone();
        *v.pointer_mut(path).unwrap() = value;
        v
    };

    // A key usable with its auth value alone would decrypt in any state.
    let loose = g.attestation_info("n", &format!("{ENC_ATTRS}|userwithauth"), PCRS);
    assert_eq!(refused(&loose), "ATTEST_BINDING_INVALID");
    // A key bound to fewer PCRs than were quoted.
    let fewer = g.attestation_info("n", ENC_ATTRS, "sha256:0,1,2,3,4,5,6");
    assert_eq!(refused(&fewer), "ATTEST_BINDING_INVALID");
    // A key that survives reboots (owner hierarchy) is not the ephemeral key.
    let lasting = g.attestation_info("o", ENC_ATTRS, PCRS);
    assert_eq!(refused(&lasting), "ATTEST_BINDING_INVALID");
    // Another key than the certified one.
    let other = with("/TpmInfo/EncKeyPub", fewer["TpmInfo"]["EncKeyPub"].clone());
    assert_eq!(refused(&other), "ATTEST_BINDING_INVALID");
    // A certification that does not verify with the AK.
    let mut sig = b(&good["TpmInfo"]["EncKeyCertifyInfoSignature"]);
    sig[7] ^= 1;
    let bad_cert = with("/TpmInfo/EncKeyCertifyInfoSignature", json!(b64(&sig)));
    assert_eq!(refused(&bad_cert), "ATTEST_SIGNATURE_INVALID");
    // A quote that does not verify with the AK.
    let mut sig = b(&good["TpmInfo"]["PcrSignature"]);
    sig[7] ^= 1;
    assert_eq!(
        refused(&with("/TpmInfo/PcrSignature", json!(b64(&sig)))),
        "ATTEST_SIGNATURE_INVALID"
    );
    // A PCR value other than the quoted one.
    assert_eq!(
        refused(&with("/TpmInfo/PCRs/7/Digest", json!(b64(&[0u8; 32])))),
        "ATTEST_BINDING_INVALID"
    );
    // A log claiming Secure Boot with the digests of the measured (enabled) state but data
    // saying otherwise is not what was measured; a log that does not replay neither.
    let mut log = g.log.clone();
    let sb_at = log
        .windows(20)
        .position(|w| {
            w == "SecureBoot"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
                .as_slice()
        })
        .unwrap()
        + 20;
    log[sb_at] = 0;
    assert_eq!(
        refused(&with("/TcgLogs", json!(b64(&log)))),
        "ATTEST_BINDING_INVALID"
    );
    let other_log = tcg_log(&[(7, 0x4, sha256(b"x"), b"x".to_vec())]);
    assert_eq!(
        refused(&with("/TcgLogs", json!(b64(&other_log)))),
        "ATTEST_BINDING_INVALID"
    );
    // The AK certificate of another key.
    tpm(
        &g.dir,
        &g.tcti,
        &[
            "tpm2_readpublic",
            "-c",
            "enc.ctx",
            "-f",
            "pem",
            "-o",
            "enc.pem",
        ],
    );
    tpm(&g.dir, &g.tcti, &["tpm2_flushcontext", "-t"]);
    let foreign = ak_cert(&g.dir, &g.tcti, "enc.pem");
    assert_eq!(
        refused(&with("/TpmInfo/AikCert", json!(b64(&foreign)))),
        "ATTEST_BINDING_INVALID"
    );
    // Runtime data the SNP report does not bind (another HCLAkPub could be slipped in).
    let mut rt: Value = serde_json::from_slice(&g.runtime).unwrap();
    rt["user-data"] = json!("11".repeat(64));
    let isolation = |rt: &[u8]| {
        let mut v = good.clone();
        v["IsolationInfo"]["Evidence"]["RunTimeData"] = json!(b64(rt));
        v
    };
    assert_eq!(
        refused(&isolation(rt.to_string().as_bytes())),
        "ATTEST_REPORT_DATA_MISMATCH"
    );
    // A VM without hardware isolation, and requests that are not AttestationInfo at all.
    assert_eq!(
        refused(&with("/IsolationInfo/Type", json!("TrustedLaunch"))),
        "ATTEST_UNSUPPORTED"
    );
    assert_eq!(
        refused(&with("/TpmInfo/AikPub", json!("%%%"))),
        "ATTEST_MALFORMED"
    );
    assert_eq!(
        code(post(&s, &json!({"AttestationInfo": "bm90IGpzb24"}))),
        "INVALID_ARGUMENT"
    );
    assert_eq!(code(post(&s, &json!({}))), "INVALID_ARGUMENT");
    // The genuine evidence still passes after all that.
    assert!(attest(&s, &good).is_ok());

    // One MAA AzureGuest policy governs guests of both isolation types; reset restores the
    // default.
    let text = "version=1.0; authorizationrules{ [type==\"secureboot\", value==false] => permit(); }; issuancerules{};";
    let jws = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        b64url(
            json!({"AttestationPolicy": b64url(text.as_bytes())})
                .to_string()
                .as_bytes()
        )
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = s.admin();
    let (status, body) = rt
        .block_on(admin.raw(
            hyper::Method::PUT,
            "/policies/AzureGuest",
            Some(jws.into_bytes()),
        ))
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for kind in ["az-snp-vtpm", "az-tdx-vtpm"] {
        assert_eq!(
            s.json(&["attestation", "policy", "get", kind])["text"],
            text
        );
    }
    assert_eq!(refused(&good), "ATTEST_POLICY_DENIED");
    let (status, _) = rt
        .block_on(admin.raw(
            hyper::Method::POST,
            "/policies/AzureGuest:reset",
            Some(b"eyJhbGciOiJub25lIn0..".to_vec()),
        ))
        .unwrap();
    assert_eq!(status, 200);
    assert!(attest(&s, &good).is_ok());
}

#[test]
fn a_tdx_guest_is_verified_through_its_td_quote() {
    let s = Server::start();
    let (_swtpm, g) = guest(&s, |dir, rd| {
        let sim = crate::simsgx::SimulatedSgx::generate_for(crate::simsgx::Tee::Tdx);
        for (kind, name, body) in [
            ("trust-anchor", "intel-root.pem", &sim.root_pem),
            ("intel", "tdx-collateral.json", &sim.collateral),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            let mut args = vec!["attestation", "collateral", "import", "--kind", kind];
            if kind == "trust-anchor" {
                args.extend(["--platform", "intel"]);
            }
            args.push(path.to_str().unwrap());
            s.ok(&args);
        }
        ("Tdx", b64(&sim.td_quote(*rd)))
    });
    let info = g.attestation_info("n", ENC_ATTRS, PCRS);
    let sealed = attest(&s, &info).unwrap();
    let jwt = g.unseal(sealed["token"].as_str().unwrap());
    let c = verify_with_jwks(&s, &jwt);
    assert_eq!(c["x-ms-attestation-type"], "azurevm");
    assert_eq!(c["x-ms-isolation-tee"]["x-ms-attestation-type"], "tdxvm");
    assert_eq!(
        c["x-ms-runtime"]["keys"][0]["kid"],
        "TpmEphemeralEncryptionKey"
    );
    assert_eq!(c["secureboot"], true);
    // The TD quote must bind the runtime data, and be a TD quote at all.
    let mut other = info.clone();
    other["IsolationInfo"]["Evidence"]["RunTimeData"] = json!(b64(b"{}"));
    assert_eq!(code(attest(&s, &other)), "ATTEST_REPORT_DATA_MISMATCH");
    let mut snp = info.clone();
    snp["IsolationInfo"]["Type"] = json!("SevSnp");
    assert_eq!(code(attest(&s, &snp)), "ATTEST_MALFORMED");
}
