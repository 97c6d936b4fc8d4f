//! Attestation over HTTPS against the running server: real SNP evidence in, a token out that
//! verifies with the published JWKS; MAA-compatible endpoints; policies; bad input; audit.

use crate::common::*;
use hyper::Method;
use serde_json::{Value, json};
use sovra_crypto::jws::{Jws, VerifyKey, b64url};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    std::env::var("SOVRA_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

fn v(rel: &str) -> String {
    vectors().join(rel).to_str().unwrap().to_string()
}

fn b64(b: &[u8]) -> String {
    sovra_proto::b64::encode(b)
}

const REPORT: &str = "snp/virtee_milan_report.bin";
const VCEK: &str = "snp/virtee_milan_vcek.der";
const ASK_ARK: &str = "roots/amd/ask_ark_milan.pem";

/// Verifies `token` with the server's JWKS, as a relying party would.
pub(crate) fn verify_with_jwks(s: &Server, token: &str) -> serde_json::Map<String, Value> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jwks: Value = rt.block_on(s.admin().get("/certs")).unwrap();
    let j = Jws::parse(token).unwrap();
    assert_eq!(j.alg(), Some("RS256"));
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == j.kid())
        .expect("the token's kid is published");
    j.verify_with(&VerifyKey::from_jwk(jwk).unwrap()).unwrap();
    j.claims().unwrap()
}

#[test]
fn snp_evidence_gets_a_token_that_verifies_with_the_jwks() {
    let s = Server::start();
    let out = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v(VCEK),
        "--cert-chain",
        &v(ASK_ARK),
        &v(REPORT),
    ]);
    let token = out["token"].as_str().unwrap();
    let c = verify_with_jwks(&s, token);
    assert_eq!(c["iss"], s.url.trim_end_matches('/'));
    assert_eq!(c["x-ms-attestation-type"], "sevsnpvm");
    // Genuine, but its firmware (SNP SVN 8, 2023) predates AMD-SB-3019: not compliant.
    assert_eq!(c["x-sovra-tcb-minimum-met"], false);
    assert_eq!(
        c["x-sovra-tcb-minimum-reason"],
        "reported snp SVN 8 is below the minimum 24"
    );
    assert!(c.get("x-ms-compliance-status").is_none(), "{c:?}");
    assert_eq!(
        c["x-ms-sevsnpvm-launchmeasurement"],
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
    );
    assert_eq!(c["x-ms-sevsnpvm-is-debuggable"], false);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        8 * 3600
    );
    assert!(c["nbf"].is_i64() && c["jti"].is_string());
    // The CLI's own check agrees.
    let checked = s.json(&["attestation", "verify-token", token]);
    assert_eq!(checked["x-ms-attestation-type"], "sevsnpvm");
    // A token with an altered claim does not verify.
    let parts: Vec<&str> = token.split('.').collect();
    let mut body = c.clone();
    body.insert("x-ms-sevsnpvm-vmpl".into(), json!(3));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(Value::Object(body).to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "attestation", "verify-token", &forged])),
        "TOKEN_INVALID"
    );
}

const GENOA_REPORT: &str = "snp/azure_genoa_report_from_hcl.bin";
const GENOA_VCEK: &str = "snp/azure_genoa_vcek.pem";

/// The claims of a token for `report` signed by `vcek`.
fn snp_claims(s: &Server, vcek: &str, report: &str) -> serde_json::Map<String, Value> {
    let out = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v(vcek),
        &v(report),
    ]);
    verify_with_jwks(s, out["token"].as_str().unwrap())
}

#[test]
fn snp_compliance_needs_the_minimum_reported_tcb_of_the_processor_generation() {
    // The defaults: the SNP firmware SVN of AMD-SB-3019 (Genoa 23, Milan 24).
    let s = Server::start();
    let c = snp_claims(&s, GENOA_VCEK, GENOA_REPORT);
    assert_eq!(c["x-sovra-tcb-minimum-met"], true);
    assert_eq!(
        c["x-sovra-tcb-minimum"],
        json!({"bootloader": 0, "tee": 0, "snp": 23, "microcode": 0})
    );
    assert!(c.get("x-sovra-tcb-minimum-reason").is_none());
    assert_eq!(c["x-ms-compliance-status"], "sovra-compliant");
    // An operator raises Genoa's minimum above this platform's microcode (84) and lowers
    // Milan's to the old virtee platform's firmware: each generation is judged by its own.
    let s = Server::start_with(&[
        (
            "SOVRA_ATTESTATION_SNP_MIN_TCB_GENOA",
            "bootloader=10,snp=23,microcode=85",
        ),
        ("SOVRA_ATTESTATION_SNP_MIN_TCB_MILAN", "snp=8"),
    ]);
    let c = snp_claims(&s, GENOA_VCEK, GENOA_REPORT);
    assert_eq!(c["x-sovra-tcb-minimum-met"], false);
    assert_eq!(
        c["x-sovra-tcb-minimum-reason"],
        "reported microcode SVN 84 is below the minimum 85"
    );
    assert!(c.get("x-ms-compliance-status").is_none(), "{c:?}");
    let c = snp_claims(&s, VCEK, REPORT);
    assert_eq!(c["x-sovra-tcb-minimum-met"], true);
    assert_eq!(c["x-ms-compliance-status"], "sovra-compliant");
    // A policy cannot say otherwise: the verdict is a verified claim.
    let p = s.dir.join("p.txt");
    std::fs::write(
        &p,
        "version=1.2; authorizationrules { => permit(); }; issuancerules { => issue(type=\"x-sovra-tcb-minimum-met\", value=true); };",
    )
    .unwrap();
    s.ok(&[
        "attestation",
        "policy",
        "set",
        "sev-snp",
        p.to_str().unwrap(),
    ]);
    let o = s.cli(&[
        "-o",
        "json",
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v(GENOA_VCEK),
        &v(GENOA_REPORT),
    ]);
    assert_eq!(cli_code(&o), "POLICY_INVALID");
    // A generation without a minimum is never compliant, and a bad setting stops the start.
    let s = Server::start_with(&[("SOVRA_ATTESTATION_SNP_MIN_TCB_GENOA", "none")]);
    let c = snp_claims(&s, GENOA_VCEK, GENOA_REPORT);
    assert_eq!(c["x-sovra-tcb-minimum"], Value::Null);
    assert!(
        c["x-sovra-tcb-minimum-reason"]
            .as_str()
            .unwrap()
            .contains("attestation.snp_min_tcb.genoa"),
        "{c:?}"
    );
    assert!(c.get("x-ms-compliance-status").is_none(), "{c:?}");
}

#[test]
fn maa_endpoint_with_collateral_store_runtime_data_and_policies() {
    let s = Server::start();
    let report = std::fs::read(v(REPORT)).unwrap();
    let vcek = std::fs::read(v(VCEK)).unwrap();
    let vcek_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64(&vcek)
    );
    let maa_report = |chain: &str| {
        b64url(
            json!({"SnpReport": b64url(&report), "VcekCertChain": b64(chain.as_bytes())})
                .to_string()
                .as_bytes(),
        )
    };
    let anon = sovra_client::Client::new(sovra_client::ClientConfig {
        url: s.url.clone(),
        token: None,
        ca_pem: Some(std::fs::read(s.ca()).unwrap()),
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let post = |body: Value| {
        rt.block_on(anon.post::<_, Value>("/attest/SevSnpVm?api-version=2022-08-01", &body))
    };

    // Only the VCEK travels: AMD's ASK and ARK are built in, so it verifies offline.
    let tok = post(json!({"report": maa_report(&vcek_pem)})).unwrap();
    verify_with_jwks(&s, tok["token"].as_str().unwrap());
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "amd-certs",
        &v(ASK_ARK),
    ]);
    let listed = s.json(&["attestation", "collateral", "list"]);
    assert!(
        listed["collateral"][0]["description"]
            .as_str()
            .unwrap()
            .contains("SEV-Milan")
    );
    let tok = post(json!({"report": maa_report(&vcek_pem), "nonce": 42})).unwrap();
    let c = verify_with_jwks(&s, tok["token"].as_str().unwrap());
    assert_eq!(c["nonce"], 42);

    // Runtime data must hash to the report data's prefix: any other data is refused.
    let rd = json!({"data": b64url(b"{\"keys\":[]}"), "dataType": "JSON"});
    assert_eq!(
        code(post(
            json!({"report": maa_report(&vcek_pem), "runtimeData": rd})
        )),
        "ATTEST_REPORT_DATA_MISMATCH"
    );

    // A policy that requires VMPL 1 refuses this VMPL-0 report; resetting restores the default.
    let pol = s.dir.join("vmpl1.policy");
    std::fs::write(
        &pol,
        "version=1.0; authorizationrules { c:[type==\"x-ms-sevsnpvm-vmpl\", value==1] => permit(); }; issuancerules { };",
    )
    .unwrap();
    let set = s.json(&[
        "attestation",
        "policy",
        "set",
        "sev-snp",
        pol.to_str().unwrap(),
    ]);
    assert_eq!(set["isDefault"], false);
    assert_eq!(
        code(post(json!({"report": maa_report(&vcek_pem)}))),
        "ATTEST_POLICY_DENIED"
    );
    // Draft policy: evaluated instead, the token is unsigned.
    let draft = post(json!({"report": maa_report(&vcek_pem),
        "draftPolicyForAttestation": "version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"draft\", value=true); };"}))
    .unwrap();
    let dj = Jws::parse(draft["token"].as_str().unwrap()).unwrap();
    assert!(dj.is_unsigned());
    assert_eq!(dj.claims().unwrap()["draft"], true);
    s.ok(&["attestation", "policy", "reset", "sev-snp"]);
    assert!(post(json!({"report": maa_report(&vcek_pem)})).is_ok());

    // A policy with a syntax error is refused with its position.
    std::fs::write(&pol, "version=1.0; authorizationrules { => permit() };").unwrap();
    let o = s.cli(&[
        "-o",
        "json",
        "attestation",
        "policy",
        "set",
        "sev-snp",
        pol.to_str().unwrap(),
    ]);
    assert_eq!(cli_code(&o), "POLICY_INVALID");
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"));

    // MAA policy API: GET returns a token with the policy JWS; PUT takes an unsigned JWS.
    let got: Value = rt.block_on(s.admin().get("/policies/SevSnpVm")).unwrap();
    let outer = Jws::parse(got["token"].as_str().unwrap())
        .unwrap()
        .claims()
        .unwrap();
    let inner = Jws::parse(outer["x-ms-policy"].as_str().unwrap()).unwrap();
    assert!(inner.is_unsigned());
    let text = "version=1.0; authorizationrules{=> permit();}; issuancerules{};";
    let jws = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        b64url(
            json!({"AttestationPolicy": b64url(text.as_bytes())})
                .to_string()
                .as_bytes()
        )
    );
    let (status, body) = rt
        .block_on(
            s.admin()
                .raw(Method::PUT, "/policies/SevSnpVm", Some(jws.into_bytes())),
        )
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let info = s.json(&["attestation", "policy", "get", "sev-snp"]);
    assert_eq!(info["text"], text);
    assert_eq!(info["hash"], "z0FRjKS0ssQTNur1V6BV8WIrh9M3fzgTo0EfHRvapWU");
}

#[test]
fn bad_evidence_gets_clear_4xx_codes_and_every_attempt_is_audited() {
    let s = Server::start();
    let report = std::fs::read(v(REPORT)).unwrap();
    let chain = vec![
        b64(&std::fs::read(v(VCEK)).unwrap()),
        b64(&std::fs::read(v(ASK_ARK)).unwrap()),
    ];
    let admin = s.admin();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let attest = |kind: &str, body: Value| {
        rt.block_on(admin.post::<_, Value>(&format!("/v1/attest/{kind}"), &body))
    };
    let mut flipped = report.clone();
    flipped[0x90] ^= 1;
    assert_eq!(
        code(attest(
            "sev-snp",
            json!({"evidence": b64(&flipped), "certChain": chain})
        )),
        "ATTEST_SIGNATURE_INVALID"
    );
    assert_eq!(
        code(attest(
            "sev-snp",
            json!({"evidence": b64(&report[..100]), "certChain": chain})
        )),
        "ATTEST_MALFORMED"
    );
    assert_eq!(
        code(attest("sev-snp", json!({"evidence": "%%%"}))),
        "INVALID_BASE64"
    );
    assert_eq!(
        code(attest(
            "sev-snp",
            json!({"evidence": b64(&report), "bogus": 1})
        )),
        "INVALID_JSON"
    );
    assert_eq!(
        code(attest("quantum", json!({"evidence": b64(&report)}))),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        code(attest(
            "sev-snp",
            json!({"evidence": b64(&report), "certChain": chain, "expectedNonce": "00112233"})
        )),
        "ATTEST_NONCE_MISMATCH"
    );
    // Oversize evidence: a clear 413, not a dropped connection.
    let (status, body) = rt
        .block_on(admin.raw(
            Method::POST,
            "/v1/attest/sev-snp",
            Some(vec![b'x'; 2 << 20]),
        ))
        .unwrap();
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("PAYLOAD_TOO_LARGE"));
    // Unknown provider.
    assert_eq!(
        code(rt.block_on(admin.post::<_, Value>(
            "/v1/attestation/providers/nope/attest/sev-snp",
            &json!({"evidence": b64(&report), "certChain": chain})
        ))),
        "PROVIDER_NOT_FOUND"
    );
    let ok = attest(
        "sev-snp",
        json!({"evidence": b64(&report), "certChain": chain}),
    );
    assert!(ok.is_ok());
    let log = s.ok(&["audit", "export"]);
    let decisions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("attestation.attest"))
        .collect();
    assert!(
        decisions
            .iter()
            .any(|l| l.contains("ATTEST_SIGNATURE_INVALID")),
        "{log}"
    );
    assert!(
        decisions
            .iter()
            .any(|l| l.contains("\"outcome\":\"ok\"") && l.contains("policyHash")),
        "{log}"
    );
    assert!(s.cli(&["audit", "verify"]).status.success());
}

#[test]
fn providers_have_their_own_issuer_and_key_rotation_keeps_old_tokens_valid() {
    let s = Server::start();
    s.ok(&["attestation", "providers", "create", "tenant-a"]);
    let out = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--provider",
        "tenant-a",
        "--cert-chain",
        &v(VCEK),
        "--cert-chain",
        &v(ASK_ARK),
        &v(REPORT),
    ]);
    let old = out["token"].as_str().unwrap().to_string();
    let c = verify_with_jwks(&s, &old);
    assert!(c["iss"].as_str().unwrap().ends_with("/providers/tenant-a"));
    let rotated = s.json(&["attestation", "rotate-signing-key", "--alg", "ES256"]);
    assert_eq!(rotated["alg"], "ES256");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jwks: Value = rt.block_on(s.admin().get("/certs")).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let old_kid = Jws::parse(&old).unwrap().kid().unwrap().to_string();
    assert!(kids.contains(&old_kid.as_str()), "old key still published");
    assert!(kids.contains(&rotated["kid"].as_str().unwrap()));
    // The two token keys and the management key (MAA policy tokens).
    assert_eq!(kids.len(), 3, "{jwks}");
    verify_with_jwks_any(&s, &old);
    let new = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v(VCEK),
        "--cert-chain",
        &v(ASK_ARK),
        &v(REPORT),
    ]);
    let nj = Jws::parse(new["token"].as_str().unwrap()).unwrap();
    assert_eq!(nj.alg(), Some("ES256"));
    assert_eq!(nj.kid(), rotated["kid"].as_str());
    // Policy management needs a token with the right role.
    let o = s.cli_as(
        "sovra_nope_nope",
        &["-o", "json", "attestation", "providers", "create", "x"],
    );
    assert_eq!(cli_code(&o), "TOKEN_INVALID");
}

fn verify_with_jwks_any(s: &Server, token: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jwks: Value = rt.block_on(s.admin().get("/certs")).unwrap();
    let j = Jws::parse(token).unwrap();
    let ok = jwks["keys"].as_array().unwrap().iter().any(|k| {
        k["kid"].as_str() == j.kid() && j.verify_with(&VerifyKey::from_jwk(k).unwrap()).is_ok()
    });
    assert!(ok, "token verifies with a published key");
}

#[test]
fn reference_values_rego_and_signed_policies() {
    let s = Server::start();
    let attest = || {
        s.cli(&[
            "-o",
            "json",
            "attest",
            "--type",
            "sev-snp",
            "--cert-chain",
            &v(VCEK),
            "--cert-chain",
            &v(ASK_ARK),
            &v(REPORT),
        ])
    };
    let file = |name: &str, text: &str| {
        let p = s.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    // Reference values: the policy requires the measurement to be in the "prod" set.
    let m = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
    let rv = file(
        "rv.json",
        &format!(r#"{{"values": {{"x-ms-sevsnpvm-launchmeasurement": ["{m}"]}}}}"#),
    );
    s.ok(&["attestation", "refvalues", "put", "prod", &rv]);
    let pol = file(
        "rv.policy",
        r#"version=1.0; authorizationrules { [type=="x-sovra-refvalues-prod", value==true] => permit(); }; issuancerules { };"#,
    );
    s.ok(&["attestation", "policy", "set", "sev-snp", &pol]);
    assert!(attest().status.success());
    let other = file(
        "rv2.json",
        &format!(
            r#"{{"values": {{"x-ms-sevsnpvm-launchmeasurement": ["{}"]}}}}"#,
            "00".repeat(48)
        ),
    );
    s.ok(&["attestation", "refvalues", "put", "prod", &other]);
    assert_eq!(cli_code(&attest()), "ATTEST_POLICY_DENIED");
    s.ok(&["attestation", "refvalues", "delete", "prod"]);
    assert_eq!(
        cli_code(&attest()),
        "ATTEST_POLICY_DENIED",
        "no set, no match"
    );

    // Rego, in the Confidential Containers convention.
    let rego = file(
        "p.rego",
        "package policy\nimport rego.v1\ndefault allow := false\nallow if {\n  input.debug == false\n  input[\"x-ms-sevsnpvm-vmpl\"] == 0\n}\nclaims := {\"tier\": \"gold\"} if allow\n",
    );
    let set = s.json(&[
        "attestation",
        "policy",
        "set",
        "sev-snp",
        &rego,
        "--language",
        "rego",
    ]);
    assert_eq!(set["language"], "rego");
    let out: serde_json::Value = serde_json::from_slice(&attest().stdout).unwrap();
    assert_eq!(out["claims"]["tier"], "gold");

    // Signed policies: once a policy signer is configured, only policies it signed are taken.
    let pkcs8 = sovra_crypto::jws::generate(sovra_crypto::jws::JwsAlg::Rs256).unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "policy signer");
    let cert = params.self_signed(&kp).unwrap();
    let cert_file = file("signer.pem", &cert.pem());
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "policy-signer",
        &cert_file,
    ]);
    let text = "version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"signed\", value=true); };";
    let unsigned = file(
        "unsigned.jws",
        &format!(
            "eyJhbGciOiJub25lIn0.{}.",
            b64url(
                json!({"AttestationPolicy": b64url(text.as_bytes())})
                    .to_string()
                    .as_bytes()
            )
        ),
    );
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "attestation",
            "policy",
            "set",
            "sev-snp",
            &unsigned
        ])),
        "POLICY_SIGNATURE_INVALID"
    );
    let signer = sovra_crypto::jws::JwsSigner::load(
        sovra_crypto::jws::JwsAlg::Rs256,
        pkcs8.expose(),
        "k".into(),
        &[cert.der().to_vec()],
    )
    .unwrap();
    let body = json!({"AttestationPolicy": b64url(text.as_bytes())}).to_string();
    let signed = signer
        .sign_bytes(&serde_json::Map::new(), body.as_bytes(), false)
        .unwrap();
    let signed_file = file("signed.jws", &signed);
    let info = s.json(&["attestation", "policy", "set", "sev-snp", &signed_file]);
    assert_eq!(info["signer"], "policy signer");
    let out: serde_json::Value = serde_json::from_slice(&attest().stdout).unwrap();
    assert_eq!(out["claims"]["signed"], true);
    // A policy signed by a key whose certificate is not configured is refused.
    let other = sovra_crypto::jws::generate(sovra_crypto::jws::JwsAlg::Rs256).unwrap();
    let other_der = rustls_pki_types::PrivatePkcs8KeyDer::from(other.expose());
    let okp =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&other_der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let ocert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&okp)
        .unwrap();
    let osigner = sovra_crypto::jws::JwsSigner::load(
        sovra_crypto::jws::JwsAlg::Rs256,
        other.expose(),
        "o".into(),
        &[ocert.der().to_vec()],
    )
    .unwrap();
    let forged = file(
        "forged.jws",
        &osigner
            .sign_bytes(&serde_json::Map::new(), body.as_bytes(), false)
            .unwrap(),
    );
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "attestation",
            "policy",
            "set",
            "sev-snp",
            &forged
        ])),
        "POLICY_SIGNATURE_INVALID"
    );
    // Policy changes are audited with the policy hash.
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.lines()
            .filter(|l| l.contains("attestation.policies.set") && l.contains("policyHash"))
            .count()
            >= 3,
        "{log}"
    );
}

/// A stand-in for AMD KDS on loopback: serves `vcek` (DER) at `/vcek/v1/Milan/{chip}?…` for
/// the one chip it knows, 404 otherwise. Returns its URL and the paths it was asked for.
fn kds_stand_in(
    chip: String,
    vcek: Vec<u8>,
    ask_ark: Vec<u8>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(20) {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let ok =
                path.starts_with(&format!("/vcek/v1/Milan/{chip}?")) && path.contains("blSPL=");
            let (status, body) = if ok {
                ("200 OK", vcek.clone())
            } else if path == "/vcek/v1/Milan/cert_chain" {
                ("200 OK", ask_ark.clone())
            } else {
                ("404 Not Found", Vec::new())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/pkix-cert\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    (url, seen)
}

#[test]
fn a_missing_vcek_is_fetched_from_kds_only_when_the_operator_opts_in() {
    let report = std::fs::read(v(REPORT)).unwrap();
    let chip = sovra_proto::hex::encode(&report[0x1A0..0x1E0]);
    let (kds, seen) = kds_stand_in(
        chip,
        std::fs::read(v(VCEK)).unwrap(),
        std::fs::read(v(ASK_ARK)).unwrap(),
    );

    // Offline by default: the report alone names what to import.
    let off = Server::start();
    let o = off.cli(&["-o", "json", "attest", "--type", "sev-snp", &v(REPORT)]);
    assert_eq!(cli_code(&o), "ATTEST_COLLATERAL_MISSING");
    assert!(String::from_utf8_lossy(&o.stderr).contains("collateral import"));
    assert!(seen.lock().unwrap().is_empty(), "nothing was fetched");

    let s = Server::start_with(&[("SOVRA_ATTESTATION_AMD_KDS_URL", &kds)]);
    // A chip KDS does not know: refused, saying the fetch failed.
    let o = s.cli(&[
        "-o",
        "json",
        "attest",
        "--type",
        "sev-snp",
        &v("snp/gosevguest_milan_attestation.bin"),
    ]);
    assert_eq!(cli_code(&o), "ATTEST_COLLATERAL_MISSING");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("KDS"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The report with its VCEK but no ASK: AMD's ASK is built in, nothing is fetched, and it
    // verifies against the pinned Milan root.
    let before = seen.lock().unwrap().len();
    let out = s.json(&[
        "attest",
        "--type",
        "sev-snp",
        "--cert-chain",
        &v(VCEK),
        &v(REPORT),
    ]);
    verify_with_jwks(&s, out["token"].as_str().unwrap());
    assert!(
        seen.lock().unwrap()[before..].is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    // The report alone (no certificates): its VCEK is fetched, checked, stored, and it verifies.
    let before = seen.lock().unwrap().len();
    let out = s.json(&["attest", "--type", "sev-snp", &v(REPORT)]);
    let c = verify_with_jwks(&s, out["token"].as_str().unwrap());
    assert_eq!(c["x-ms-attestation-type"], "sevsnpvm");
    let fetched: Vec<String> = seen.lock().unwrap()[before..].to_vec();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(fetched[0].contains("ucodeSPL="), "{fetched:?}");
    // Next time it all comes from the collateral store.
    s.json(&["attest", "--type", "sev-snp", &v(REPORT)]);
    assert_eq!(seen.lock().unwrap().len(), before + 1);
    let list = s.ok(&["attestation", "collateral", "list"]);
    assert!(
        list.contains(&format!("fetched from {kds}/vcek/v1/Milan/")),
        "{list}"
    );
    let log = s.ok(&["audit", "export"]);
    assert!(log.contains("attestation.collateral.fetch"), "{log}");
}

#[test]
fn azure_cvm_evidence_gets_maa_shaped_claims_that_azure_release_policies_accept() {
    let s = Server::start();
    let out = s.json(&[
        "attest",
        "--type",
        "az-snp-vtpm",
        "--cert-chain",
        &v("roots/amd/ask_ark_genoa.pem"),
        &v("azure_snp_vtpm/trustee_evidence-genoa.json"),
    ]);
    let tok = out["token"].as_str().unwrap().to_string();
    let c = verify_with_jwks(&s, &tok);
    assert_eq!(c["x-ms-attestation-type"], "azurevm");
    let tee = &c["x-ms-isolation-tee"];
    assert_eq!(tee["x-ms-attestation-type"], "sevsnpvm");
    assert_eq!(tee["x-ms-compliance-status"], "azure-compliant-cvm");
    assert_eq!(
        tee["x-ms-sevsnpvm-launchmeasurement"],
        "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae"
    );
    assert_eq!(tee["x-ms-sevsnpvm-is-debuggable"], false);
    assert_eq!(tee["x-ms-runtime"]["keys"][0]["kid"], "HCLAkPub");
    assert_eq!(
        c["x-ms-azurevm-vmid"],
        "390CBCF5-6C67-4D9B-98EF-C3F1699CC8FC"
    );
    assert_eq!(c["secureboot"], true);
    assert_eq!(
        c["x-ms-azurevm-attested-pcrs"],
        json!((0..24).collect::<Vec<u32>>())
    );
    // Azure's own CVM release policy, with Sovra as the authority, accepts the token: the release
    // gets past the policy and stops only because this captured evidence bound no TEE key.
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": format!("{}/", s.url), "allOf": [
        {"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-isolation-tee.x-ms-compliance-status", "equals": "azure-compliant-cvm"}]}]});
    let pfile = s.dir.join("cvm.json");
    std::fs::write(&pfile, policy.to_string()).unwrap();
    s.ok(&["keyrings", "create", "cvm"]);
    s.ok(&[
        "keys",
        "create",
        "cvm/k",
        "--purpose",
        "encrypt",
        "--exportable",
        "--release-policy",
        pfile.to_str().unwrap(),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(s.admin().post::<_, Value>(
        "/v1/locations/global/keyRings/cvm/cryptoKeys/k:release",
        &json!({"target": tok}),
    ));
    assert_eq!(code(r), "RELEASE_NO_TARGET_KEY");
}

/// A stand-in PCCS on loopback serving one collateral bundle (a vector) the way PCS API v4
/// does: signed JSON bodies, percent-encoded issuer-chain headers, DER PCK CRL, hex root CRL.
fn pcs_stand_in(bundle: Value) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let s = move |k: &str| bundle[k].as_str().unwrap().to_string();
    let pct = |pem: String| -> String {
        pem.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let fmspc = serde_json::from_str::<Value>(&s("tcb_info")).unwrap()["fmspc"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    // (path, body, issuer-chain header)
    type Route = (String, Vec<u8>, Option<(&'static str, String)>);
    let routes: Vec<Route> = vec![
        (
            format!("/tdx/certification/v4/tcb?fmspc={fmspc}"),
            format!(
                r#"{{"tcbInfo":{},"signature":"{}"}}"#,
                s("tcb_info"),
                s("tcb_info_signature")
            )
            .into_bytes(),
            Some(("TCB-Info-Issuer-Chain", pct(s("tcb_info_issuer_chain")))),
        ),
        (
            "/tdx/certification/v4/qe/identity".into(),
            format!(
                r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
                s("qe_identity"),
                s("qe_identity_signature")
            )
            .into_bytes(),
            Some((
                "SGX-Enclave-Identity-Issuer-Chain",
                pct(s("qe_identity_issuer_chain")),
            )),
        ),
        (
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der".into(),
            sovra_proto::hex::decode(&s("pck_crl")).unwrap(),
            Some(("SGX-PCK-CRL-Issuer-Chain", pct(s("pck_crl_issuer_chain")))),
        ),
        (
            "/sgx/certification/v4/rootcacrl".into(),
            s("root_ca_crl").into_bytes(),
            None,
        ),
    ];
    std::thread::spawn(move || {
        for c in l.incoming().take(40) {
            let Ok(mut c) = c else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let (status, body, header) = match routes.iter().find(|r| r.0 == path) {
                Some((_, b, h)) => ("200 OK", b.clone(), h.clone()),
                None => ("404 Not Found", Vec::new(), None),
            };
            let extra = header
                .map(|(k, v)| format!("{k}: {v}\r\n"))
                .unwrap_or_default();
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(&body);
        }
    });
    (url, seen)
}

#[test]
fn missing_intel_collateral_is_fetched_from_a_pcs_only_when_the_operator_opts_in() {
    const QUOTE: &str = "tdx/dcapqvl_tdx_quote_v4_b0c06f.bin";
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(v("tdx/dcapqvl_tdx_quote_v4_b0c06f.collateral.json")).unwrap(),
    )
    .unwrap();
    let (pcs, seen) = pcs_stand_in(bundle);

    // Offline by default.
    let off = Server::start();
    let o = off.cli(&["-o", "json", "attest", "--type", "tdx", &v(QUOTE)]);
    assert_eq!(cli_code(&o), "ATTEST_COLLATERAL_MISSING");
    assert!(seen.lock().unwrap().is_empty());

    // With a PCS: the quote's FMSPC and PCK CA pick what is fetched; the assembled bundle's
    // signatures verify, and the verdict is about its window — this captured collateral was
    // current in mid-2025, so today it is out of date, which is exactly what is reported.
    // (The background refresh is kept out of the way: this test counts the requests' fetches.)
    let s = Server::start_with(&[
        ("SOVRA_ATTESTATION_INTEL_PCS_URL", &pcs),
        ("SOVRA_SCHEDULER_INTERVAL_SECS", "3600"),
    ]);
    let o = s.cli(&["-o", "json", "attest", "--type", "tdx", &v(QUOTE)]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(cli_code(&o), "ATTEST_EXPIRED", "{err}");
    assert!(
        err.contains("TCB info is valid from 2025-06-19T10:16:03Z"),
        "{err}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "/tdx/certification/v4/tcb?fmspc=B0C06F000000".to_string(),
            "/tdx/certification/v4/qe/identity".to_string(),
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der".to_string(),
            "/sgx/certification/v4/rootcacrl".to_string(),
        ]
    );
    let list = s.ok(&["attestation", "collateral", "list"]);
    assert!(
        list.contains(&format!(
            "Intel collateral for FMSPC b0c06f000000 (TDX) fetched from {pcs}"
        )),
        "{list}"
    );
    assert!(
        s.ok(&["audit", "export"])
            .contains("attestation.collateral.fetch")
    );
    // Within the minute, the same request does not make Sovra ask the PCS again.
    let o = s.cli(&["-o", "json", "attest", "--type", "tdx", &v(QUOTE)]);
    assert_eq!(cli_code(&o), "ATTEST_EXPIRED");
    assert_eq!(seen.lock().unwrap().len(), 4);

    // Azure TDX evidence: the TD quote inside it picks what is fetched.
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(v(
            "tdx/derived_collateral_00806f050000_2025-09-29_mixed.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let (pcs, seen) = pcs_stand_in(bundle);
    // (The background refresh is kept out of the way: this test counts the requests' fetches.)
    let s = Server::start_with(&[
        ("SOVRA_ATTESTATION_INTEL_PCS_URL", &pcs),
        ("SOVRA_SCHEDULER_INTERVAL_SECS", "3600"),
    ]);
    let o = s.cli(&[
        "-o",
        "json",
        "attest",
        "--type",
        "az-tdx-vtpm",
        &v("azure_tdx_vtpm/trustee_evidence-v1.json"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        cli_code(&o),
        "ATTEST_EXPIRED",
        "{err} {:?}",
        seen.lock().unwrap()
    );
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("/tdx/certification/v4/tcb?fmspc=00806F050000")
    );
}

#[test]
fn fetched_intel_collateral_is_refreshed_in_the_background_before_it_expires() {
    const QUOTE: &str = "tdx/dcapqvl_tdx_quote_v4_b0c06f.bin";
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(v("tdx/dcapqvl_tdx_quote_v4_b0c06f.collateral.json")).unwrap(),
    )
    .unwrap();
    let (pcs, seen) = pcs_stand_in(bundle);
    let s = Server::start_with(&[
        ("SOVRA_ATTESTATION_INTEL_PCS_URL", &pcs),
        ("SOVRA_SCHEDULER_INTERVAL_SECS", "1"),
    ]);
    let asked = || seen.lock().unwrap().len();
    // Nothing was fetched yet, so there is nothing to refresh.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(asked(), 0);
    // A quote makes Sovra fetch its FMSPC's collateral (4 requests).
    let o = s.cli(&["-o", "json", "attest", "--type", "tdx", &v(QUOTE)]);
    assert_eq!(cli_code(&o), "ATTEST_EXPIRED");
    // That collateral's nextUpdate (2025) has passed: the scheduler asks the PCS again on its
    // own, with no request waiting for it.
    let t = std::time::Instant::now();
    while asked() < 8 && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(asked(), 8, "{:?}", seen.lock().unwrap());
    assert_eq!(
        seen.lock().unwrap()[4],
        "/tdx/certification/v4/tcb?fmspc=B0C06F000000"
    );
    // The PCS answered with what is already stored: nothing new is stored or audited, and the
    // FMSPC is not asked for again within the hour.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(asked(), 8);
    let audit = s.ok(&["audit", "export"]);
    assert_eq!(
        audit.matches("attestation.collateral.fetch").count(),
        1,
        "{audit}"
    );
}

#[test]
fn intel_collateral_in_the_store_serves_the_quotes_of_its_fmspc() {
    const QUOTE: &str = "tdx/dcapqvl_tdx_quote_v4_b0c06f.bin";
    let s = Server::start();
    let import = |f: &str| {
        s.cli(&[
            "-o",
            "json",
            "attestation",
            "collateral",
            "import",
            "--kind",
            "intel",
            f,
        ])
    };
    // A bundle for another platform does not serve this quote; the error names the FMSPC to
    // import.
    assert!(
        import(&v("sgx/dcapqvl_sgx_quote_v3_00a067110000.collateral.json"))
            .status
            .success()
    );
    let o = s.cli(&["-o", "json", "attest", "--type", "tdx", &v(QUOTE)]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(cli_code(&o), "ATTEST_COLLATERAL_MISSING", "{err}");
    assert!(err.contains("FMSPC b0c06f000000"), "{err}");
    // With its own bundle stored, the quote is judged by that bundle: captured in mid-2025, its
    // TCB info is out of its window today, and the error says exactly that.
    assert!(
        import(&v("tdx/dcapqvl_tdx_quote_v4_b0c06f.collateral.json"))
            .status
            .success()
    );
    let o = s.cli(&["-o", "json", "attest", "--type", "tdx", &v(QUOTE)]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(cli_code(&o), "ATTEST_EXPIRED", "{err}");
    assert!(
        err.contains("TCB info is valid from 2025-06-19T10:16:03Z"),
        "{err}"
    );
    let list = s.ok(&["attestation", "collateral", "list"]);
    for d in [
        "Intel collateral for FMSPC 00a067110000 (SGX)",
        "Intel collateral for FMSPC b0c06f000000 (TDX)",
    ] {
        assert!(list.contains(d), "{list}");
    }
    // Anything else is refused at import, saying what is expected.
    let junk = s.dir.join("junk.json");
    std::fs::write(&junk, br#"{"tcbInfo": {"fmspc": "b0c06f000000"}}"#).unwrap();
    let o = import(junk.to_str().unwrap());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(cli_code(&o), "INVALID_ARGUMENT", "{err}");
    assert!(err.contains("JSON bundle"), "{err}");
}

/// A policy-management key pair: its signer (x5c = its self-signed certificate) and DER.
fn policy_cert(name: &str) -> (sovra_crypto::jws::JwsSigner, Vec<u8>, String) {
    use sovra_crypto::jws::{JwsAlg, JwsSigner};
    let pkcs8 = sovra_crypto::jws::generate(JwsAlg::Rs256).unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&kp).unwrap();
    let signer = JwsSigner::load(
        JwsAlg::Rs256,
        pkcs8.expose(),
        name.into(),
        &[cert.der().to_vec()],
    )
    .unwrap();
    (signer, cert.der().to_vec(), cert.pem())
}

#[test]
fn maa_policy_management_certificates_are_listed_added_and_removed_by_signed_requests() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = s.admin();
    let (a, a_der, a_pem) = policy_cert("policy admin A");
    let (b, b_der, _) = policy_cert("policy admin B");
    let (rogue, _, _) = policy_cert("rogue");
    let change = |op: &str, signer: &sovra_crypto::jws::JwsSigner, der: &[u8]| {
        let jws = signer
            .sign_jwt(
                &json!({"policyCertificate": {"kty": "RSA", "x5c": [b64(der)]}}),
                &serde_json::Map::new(),
            )
            .unwrap();
        // As the Azure SDK sends it: the JWS as a JSON string.
        rt.block_on(admin.post::<_, Value>(&format!("/certificates:{op}"), &json!(jws)))
    };
    let listed = || {
        let t: Value = rt.block_on(admin.get("/certificates")).unwrap();
        let c = verify_with_jwks(&s, t["token"].as_str().unwrap());
        c["x-ms-policy-certificates"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["x5c"][0].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Before any certificate is configured, none can be added this way.
    assert_eq!(code(change("add", &a, &a_der)), "POLICY_SIGNATURE_INVALID");
    let f = s.dir.join("a.pem");
    std::fs::write(&f, &a_pem).unwrap();
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "policy-signer",
        f.to_str().unwrap(),
    ]);
    assert_eq!(listed(), vec![b64(&a_der)]);
    // A signs B in; the answer names B by its SHA-1 thumbprint.
    let t = change("add", &a, &b_der).unwrap();
    let c = verify_with_jwks(&s, t["token"].as_str().unwrap());
    let sha1: String =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &b_der)
            .as_ref()
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect();
    assert_eq!(c["x-ms-certificate-thumbprint"], sha1);
    assert_eq!(c["x-ms-policycertificates-result"], "IsPresent");
    assert_eq!(listed().len(), 2);
    // Someone else's key cannot.
    assert_eq!(
        code(change("add", &rogue, &b_der)),
        "POLICY_SIGNATURE_INVALID"
    );
    // B removes itself; the last certificate stays.
    let t = change("remove", &b, &b_der).unwrap();
    let c = verify_with_jwks(&s, t["token"].as_str().unwrap());
    assert_eq!(c["x-ms-policycertificates-result"], "IsAbsent");
    assert_eq!(listed(), vec![b64(&a_der)]);
    let e = change("remove", &a, &a_der).unwrap_err();
    assert_eq!(e.code(), Some("INVALID_ARGUMENT"));
    assert!(e.to_string().contains("last"), "{e}");
}
