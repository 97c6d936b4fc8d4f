//! MAA's own TPM protocol (`POST /attest/Tpm`), through the unmodified `azure-security-attestation`
//! SDK's `attest_tpm`, with a Windows-style client written from Microsoft's protocol description
//! ("TPM and VBS enclave attestation protocol") against swtpm: an AIK certified by a throwaway
//! AIK CA the operator trusts for the TPM platform; firmware events (Secure Boot on) in PCR 7 and
//! their TCG log; a quote of all 24 SHA-256 PCRs qualified by the service's challenge, packed
//! as Windows' `NCryptCreateClaim` packs a platform claim (`PCP_PLATFORM_ATTESTATION_BLOB2`);
//! the request JWS signed PS256 by the requester's attest key.

use crate::attest::verify_with_jwks;
use crate::azure_guest::{ak_cert, secure_boot_data, sha256, tcg_log};
use crate::azure_vtpm::{provision_ak, tpm};
use crate::common::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use serde_json::{Value, json};
use sovra_crypto::jws::{b64url, b64url_decode};
use std::path::PathBuf;
use std::process::Command;

/// The machine: its TPM, AIK and boot log.
struct Machine {
    dir: PathBuf,
    tcti: String,
    aik_cert: Vec<u8>,
    aik_pub: Value,
    log: Vec<u8>,
}

type Event = (u32, u32, Vec<u8>, Vec<u8>);

fn events(secure_boot: bool) -> Vec<Event> {
    let sb = secure_boot_data(secure_boot);
    let sep = vec![0u8; 4];
    vec![
        (7, 0x8000_0001, sha256(&sb), sb),
        (7, 0x4, sha256(&sep), sep),
    ]
}

fn rsa_jwk(spki_der: &[u8]) -> Value {
    sovra_crypto::jws::VerifyKey::from_spki(None, spki_der)
        .unwrap()
        .public_jwk()
}

fn machine(s: &Server) -> (crate::tpm::Swtpm, Machine) {
    let (swtpm, tcti) = crate::tpm::swtpm(&s.dir);
    let dir = s.dir.join("windows");
    std::fs::create_dir_all(&dir).unwrap();
    provision_ak(&dir, &tcti);
    tpm(
        &dir,
        &tcti,
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
    tpm(&dir, &tcti, &["tpm2_flushcontext", "-t"]);
    let ev = events(true);
    for (pcr, _, digest, _) in &ev {
        tpm(
            &dir,
            &tcti,
            &[
                "tpm2_pcrextend",
                &format!("{pcr}:sha256={}", sovra_proto::hex::encode(digest)),
            ],
        );
    }
    let o = Command::new("openssl")
        .args([
            "pkey", "-pubin", "-inform", "DER", "-in", "ak.der", "-out", "ak.pem",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = Machine {
        aik_cert: ak_cert(&dir, &tcti, "ak.pem"),
        aik_pub: rsa_jwk(&std::fs::read(dir.join("ak.der")).unwrap()),
        dir,
        tcti,
        log: tcg_log(&ev),
    };
    (swtpm, m)
}

impl Machine {
    /// The platform claim: all 24 SHA-256 PCRs, quoted by the AIK with `qualifying` as the
    /// qualifying data, packed as `PCP_PLATFORM_ATTESTATION_BLOB2` (filtered log left empty;
    /// the log travels as `srtm_boot_log`).
    fn claim(&self, qualifying: &[u8]) -> Vec<u8> {
        let t = |args: &[&str]| {
            tpm(&self.dir, &self.tcti, args);
            tpm(&self.dir, &self.tcti, &["tpm2_flushcontext", "-t"]);
        };
        t(&[
            "tpm2_quote",
            "-c",
            "0x81000003",
            "-l",
            "sha256:all",
            "-q",
            &sovra_proto::hex::encode(qualifying),
            "-g",
            "sha256",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
            "plain",
        ]);
        t(&["tpm2_pcrread", "sha256:all", "-o", "pcrs.bin"]);
        let read = |f: &str| std::fs::read(self.dir.join(f)).unwrap();
        let (pcrs, quote, sig) = (read("pcrs.bin"), read("quote.msg"), read("quote.sig"));
        assert_eq!(pcrs.len(), 24 * 32);
        let mut blob = b"PAD2".to_vec();
        for v in [2, 32, pcrs.len(), quote.len(), sig.len(), 0, 0x000B] {
            blob.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for part in [pcrs, quote, sig] {
            blob.extend_from_slice(&part);
        }
        blob
    }
}

/// A request message: `att_data` for `challenge`/`context` with `claim`, then `mutate`, signed
/// by `signer` (the attest key named in the request is `attest`'s).
fn request(
    m: &Machine,
    challenge: &[u8],
    context: &str,
    claim: &[u8],
    signer: &KeyPair,
    attest: &KeyPair,
    mutate: impl FnOnce(&mut Value),
) -> String {
    let mut payload = json!({
        "att_type": "basic",
        "att_data": {
            "rp_id": "https://relying-party.example",
            "rp_data": b64url(b"rp nonce 42"),
            "challenge": b64url(challenge),
            "tpm_att_data": {
                "srtm_boot_log": b64url(&m.log),
                "aik_cert": b64url(&m.aik_cert),
                "aik_pub": m.aik_pub,
                "current_claim": b64url(claim),
            },
            "attest_key": rsa_jwk(attest.public_key().as_ref()),
            "custom_claims": [{"name": "build", "value": "26100.1", "value_type": "string"}],
            "service_context": context,
        }
    });
    mutate(&mut payload);
    let input = format!(
        "{}.{}",
        b64url(br#"{"alg":"PS256","typ":"attReq"}"#),
        b64url(payload.to_string().as_bytes())
    );
    let mut sig = vec![0u8; signer.public_modulus_len()];
    signer
        .sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
    format!("{input}.{}", b64url(&sig))
}

/// One message through the SDK's `attest_tpm`: the answer's text, or `refused CODE`.
fn sdk(s: &Server, message: &Value) -> String {
    let f = s.dir.join("tpm-message.json");
    std::fs::write(&f, message.to_string()).unwrap();
    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/server/azure_sdk/maa_admin.py"
        ))
        .arg(&s.url)
        .arg(s.dir.join("admin.token"))
        .arg(s.ca())
        .arg("tpm")
        .arg(&f)
        .env("PYTHONPATH", crate::azure_sdk::azure_sdk())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// One message posted as the SDK posts it: the decoded answer, or the error code.
fn post(s: &Server, message: &Value) -> Result<Value, String> {
    let anon = sovra_client::Client::new(sovra_client::ClientConfig {
        url: s.url.clone(),
        token: None,
        ca_pem: Some(std::fs::read(s.ca()).unwrap()),
        ..Default::default()
    })
    .unwrap();
    let body = json!({"data": b64url(message.to_string().as_bytes())});
    let r = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(anon.post::<_, Value>("/attest/Tpm?api-version=2020-10-01", &body));
    match r {
        Ok(v) => Ok(serde_json::from_slice(
            &b64url_decode(v["data"].as_str().expect("a data member")).unwrap(),
        )
        .unwrap()),
        Err(e) => Err(code::<()>(Err(e))),
    }
}

/// The challenge and service context of a fresh init message.
fn init(answer: &Value) -> (Vec<u8>, String) {
    (
        b64url_decode(answer["challenge"].as_str().unwrap()).unwrap(),
        answer["service_context"].as_str().unwrap().to_string(),
    )
}

fn key() -> KeyPair {
    KeyPair::generate(KeySize::Rsa2048).unwrap()
}

fn trust_aik_ca(s: &Server, m: &Machine) {
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "trust-anchor",
        "--platform",
        "tpm",
        m.dir.join("ca.pem").to_str().unwrap(),
    ]);
}

#[test]
fn the_azure_attestation_sdk_attests_a_tpm_with_maas_protocol() {
    let s = Server::start();
    let (_swtpm, m) = machine(&s);
    let attest_key = key();
    let full = |s: &Server| -> String {
        let answer: Value = serde_json::from_str(&sdk(s, &json!({"type": "aikcert"}))).unwrap();
        let (challenge, context) = init(&answer);
        let claim = m.claim(&challenge);
        let req = request(
            &m,
            &challenge,
            &context,
            &claim,
            &attest_key,
            &attest_key,
            |_| {},
        );
        sdk(s, &json!({"request": req}))
    };
    // The AIK CA is not trusted yet.
    assert_eq!(full(&s), "refused ATTEST_CHAIN_INVALID");

    trust_aik_ca(&s, &m);
    let answer: Value = serde_json::from_str(&sdk(&s, &json!({"type": "aikcert"}))).unwrap();
    let (challenge, context) = init(&answer);
    assert_eq!(challenge.len(), 32);
    let claim = m.claim(&challenge);
    let req = request(
        &m,
        &challenge,
        &context,
        &claim,
        &attest_key,
        &attest_key,
        |_| {},
    );
    let report: Value = serde_json::from_str(&sdk(&s, &json!({"request": req}))).unwrap();
    let c = verify_with_jwks(&s, report["report"].as_str().unwrap());
    assert_eq!(c["x-ms-attestation-type"], "tpm");
    assert_eq!(c["protocol"], "maa-tpm");
    assert_eq!(c["secure_boot"], true);
    // PCR 7 is what the log replays to: the two events extended into zeros.
    let mut pcr7 = vec![0u8; 32];
    for (_, _, d, _) in events(true) {
        pcr7 = sha256(&[pcr7, d].concat());
    }
    assert_eq!(c["pcrs"]["sha256"]["7"], sovra_proto::hex::encode(&pcr7));
    assert_eq!(c["pcrs"]["sha256"].as_object().unwrap().len(), 24);
    assert_eq!(c["extra_data"], sovra_proto::hex::encode(&challenge));
    assert_eq!(c["rp_data"], b64url(b"rp nonce 42"));
    assert_eq!(c["rp_id"], "https://relying-party.example");
    assert_eq!(c["attest_key"], rsa_jwk(attest_key.public_key().as_ref()));
    assert_eq!(c["custom_claims"][0]["value"], "26100.1");
    assert_eq!(c["quote_hash"], "sha256");
    assert_eq!(
        c["ak_cert_sha256"],
        sovra_attest::x509::sha256_hex(&m.aik_cert)
    );

    // The same request again: its service context is spent.
    assert_eq!(
        sdk(&s, &json!({"request": req})),
        "refused ATTEST_NONCE_MISMATCH"
    );
}

#[test]
fn every_broken_link_of_a_maa_tpm_request_is_refused_with_its_code() {
    let s = Server::start();
    let (_swtpm, m) = machine(&s);
    trust_aik_ca(&s, &m);
    let (attest_key, other) = (key(), key());
    // Each case gets a fresh context; `quote_with` chooses the quote's qualifying data.
    let case = |quote_with: Option<&[u8]>,
                signer: &KeyPair,
                claim_edit: &dyn Fn(&mut Vec<u8>),
                mutate: &dyn Fn(&mut Value)| {
        let (challenge, context) = init(&post(&s, &json!({"type": "aikcert"})).unwrap());
        let mut claim = m.claim(quote_with.unwrap_or(&challenge));
        claim_edit(&mut claim);
        let req = request(
            &m,
            &challenge,
            &context,
            &claim,
            signer,
            &attest_key,
            mutate,
        );
        post(&s, &json!({"request": req})).map(|v| v.to_string())
    };
    let keep = |_: &mut Vec<u8>| {};
    let same = |_: &mut Value| {};
    // The unbroken request passes (so each refusal below is its own link's).
    assert!(
        case(None, &attest_key, &keep, &same)
            .unwrap()
            .contains("report")
    );

    let refusals: Vec<(&str, Result<String, String>)> = vec![
        (
            "quote of another challenge",
            case(Some(&[7u8; 32]), &attest_key, &keep, &same),
        ),
        (
            "signed by a key other than attest_key",
            case(None, &other, &keep, &same),
        ),
        (
            "a PCR value changed",
            case(
                None,
                &attest_key,
                &|c: &mut Vec<u8>| c[32 + 7 * 32] ^= 1,
                &same,
            ),
        ),
        (
            "aik_pub is not the certified key",
            case(None, &attest_key, &keep, &|p: &mut Value| {
                p["att_data"]["tpm_att_data"]["aik_pub"] = rsa_jwk(other.public_key().as_ref())
            }),
        ),
        (
            "a log that claims Secure Boot off",
            case(None, &attest_key, &keep, &|p: &mut Value| {
                p["att_data"]["tpm_att_data"]["srtm_boot_log"] =
                    json!(b64url(&tcg_log(&events(false))))
            }),
        ),
        (
            "another challenge claimed",
            case(None, &attest_key, &keep, &|p: &mut Value| {
                p["att_data"]["challenge"] = json!(b64url(&[9u8; 32]))
            }),
        ),
        (
            "a service context never issued",
            case(None, &attest_key, &keep, &|p: &mut Value| {
                p["att_data"]["service_context"] = json!(b64url(&[1u8; 16]))
            }),
        ),
        (
            "lengths that do not add up",
            case(
                None,
                &attest_key,
                &|c: &mut Vec<u8>| c.truncate(c.len() - 1),
                &same,
            ),
        ),
        (
            "a VBS enclave report",
            case(None, &attest_key, &keep, &|p: &mut Value| {
                p["att_type"] = json!("vbs")
            }),
        ),
    ];
    let want = [
        "ATTEST_NONCE_MISMATCH",
        "ATTEST_SIGNATURE_INVALID",
        "ATTEST_BINDING_INVALID",
        "ATTEST_BINDING_INVALID",
        "ATTEST_BINDING_INVALID",
        "ATTEST_NONCE_MISMATCH",
        "ATTEST_NONCE_MISMATCH",
        "ATTEST_MALFORMED",
        "ATTEST_UNSUPPORTED",
    ];
    for ((what, got), want) in refusals.into_iter().zip(want) {
        assert_eq!(got, Err(want.to_string()), "{what}");
    }
    assert_eq!(
        post(&s, &json!({"type": "platform"})),
        Err("INVALID_ARGUMENT".to_string())
    );
    // Every refusal is an audited attestation decision.
    let audit = s.ok(&["audit", "export"]);
    assert!(
        audit.matches("ATTEST_NONCE_MISMATCH").count() >= 3,
        "{audit}"
    );
}
