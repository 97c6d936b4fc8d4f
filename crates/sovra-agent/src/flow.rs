//! The release flow, steps ① to ⑦ of DESIGN.md, as the agent runs it inside the guest.

// Reading `serde_json::Value["key"]` yields `Null` when absent and never panics; this file
// only reads.
#![allow(clippy::indexing_slicing)]

use crate::AgentError;
use crate::collect::{Collector, Evidence};
use serde_json::{Value, json};
use sovra_client::{Client, ClientError};
use sovra_crypto::SecretBytes;
use sovra_crypto::jws::{self, Jws, VerifyKey};
use sovra_crypto::keywrap::{self, ReleaseEnc};
use sovra_proto::kms::Algorithm;
use std::time::Instant;

/// One finished step.
#[derive(Debug, Clone)]
pub struct Step {
    /// ① … ⑦.
    pub number: &'static str,
    /// What happened.
    pub name: &'static str,
    /// Detail (IDs, sizes).
    pub detail: String,
    /// Duration in milliseconds.
    pub millis: f64,
}

/// The result of a release.
#[derive(Debug)]
pub struct Released {
    /// The key material, unwrapped in the guest.
    pub material: SecretBytes,
    /// The released key version.
    pub version: String,
    /// The attestation token that was used.
    pub token: String,
}

fn server(step: &'static str) -> impl Fn(ClientError) -> AgentError {
    move |e| match e {
        ClientError::Api(api) => AgentError::Server {
            step,
            code: api.code,
            message: api.message,
        },
        other => AgentError::Server {
            step,
            code: "TRANSPORT".into(),
            message: other.to_string(),
        },
    }
}

fn local(e: impl std::fmt::Display) -> AgentError {
    AgentError::Local(e.to_string())
}

/// Asks the server for a single-use release nonce (step ①).
pub async fn nonce(client: &Client) -> Result<String, AgentError> {
    let n: Value = client.release_nonce().await.map_err(server("nonce"))?;
    n["nonce"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| local("the server returned no nonce"))
}

/// Collects evidence whose report data is SHA-256(`runtime`) (step ③). On a TPM-only machine
/// this also opens the server's credential for the AK, which proves the AK lives in the TPM
/// that the EK certificate names.
pub async fn collect(
    client: &Client,
    collector: &dyn Collector,
    runtime: &[u8],
) -> Result<Evidence, AgentError> {
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, runtime);
    let mut report_data = [0u8; 64];
    report_data
        .get_mut(..32)
        .ok_or_else(|| local("layout"))?
        .copy_from_slice(h.as_ref());
    let mut ev = collector.collect(&report_data)?;
    if let Some(tpm) = collector.tpm() {
        let id = tpm.identity()?;
        let c: Value = client
            .tpm_challenge(&json!({"ekPublic": sovra_proto::b64::encode(&id.ek_public),
                    "ekCertificate": sovra_proto::b64::encode(&id.ek_certificate),
                    "akPublic": sovra_proto::b64::encode(&id.ak_public)}))
            .await
            .map_err(server("tpm challenge"))?;
        let cred = sovra_proto::b64::decode(c["credential"].as_str().unwrap_or_default())
            .map_err(local)?;
        let secret = tpm.activate(&cred)?;
        let mut env: Value = serde_json::from_slice(&ev.evidence).map_err(local)?;
        if let Some(o) = env.as_object_mut() {
            o.insert("activation".into(), json!({"challengeId": c["challengeId"], "secret": sovra_proto::b64::encode(&secret)}));
        }
        ev.evidence = env.to_string().into_bytes();
    }
    Ok(ev)
}

/// Presents `ev` with its `runtime` data (JSON) to the server and returns the signed
/// attestation token (step ④).
pub async fn attest(client: &Client, ev: &Evidence, runtime: &[u8]) -> Result<String, AgentError> {
    let req = sovra_proto::attest::AttestRequest {
        evidence: sovra_proto::b64::encode(&ev.evidence),
        cert_chain: ev
            .cert_chain
            .iter()
            .map(|c| sovra_proto::b64::encode(c))
            .collect(),
        runtime_data: Some(sovra_proto::attest::BoundData {
            data: jws::b64url(runtime),
            data_type: Some("JSON".into()),
        }),
        ..Default::default()
    };
    let t = client
        .attest(None, ev.kind, &req)
        .await
        .map_err(server("attest"))?;
    Ok(t.token)
}

/// Runs ①–⑦ for `key` (full name, or a version name): `client` authenticates as a principal
/// with the Release User role. `on_step` sees each step as it finishes.
pub async fn release(
    client: &Client,
    key: &str,
    collector: &dyn Collector,
    mut on_step: impl FnMut(&Step),
) -> Result<Released, AgentError> {
    let mut clock = Instant::now();
    let mut done = |number, name, detail: String| {
        let s = Step {
            number,
            name,
            detail,
            millis: clock.elapsed().as_secs_f64() * 1000.0,
        };
        on_step(&s);
        clock = Instant::now();
    };
    // ① A fresh nonce from the server.
    let nonce = nonce(client).await?;
    done("①", "nonce from the server", nonce.clone());
    // ② An ephemeral RSA key, only in this process's memory.
    let private = sovra_crypto::generate(Algorithm::RsaDecryptOaep2048Sha256).map_err(local)?;
    let loaded =
        sovra_crypto::LoadedKey::load(Algorithm::RsaDecryptOaep2048Sha256, private.expose())
            .map_err(local)?;
    let spki = loaded.public_key_der().map_err(local)?;
    let pk = aws_lc_rs::rsa::PublicKey::from_der(&spki).map_err(local)?;
    let jwk = json!({"kid": "SovraAgentTransferKey", "kty": "RSA", "key_ops": ["encrypt"],
        "n": jws::b64url(pk.modulus().big_endian_without_leading_zero()),
        "e": jws::b64url(pk.exponent().big_endian_without_leading_zero())});
    done(
        "②",
        "ephemeral RSA-2048 key generated in memory",
        "kid SovraAgentTransferKey".into(),
    );
    // ③ Bind its public key and the nonce into the evidence.
    let runtime = serde_json::to_vec(&json!({"keys": [jwk], "nonce": nonce})).map_err(local)?;
    let ev = collect(client, collector, &runtime).await?;
    done(
        "③",
        "evidence collected",
        format!(
            "{} from {}, {} bytes, report data = SHA-256(runtime data)",
            ev.kind,
            collector.name(),
            ev.evidence.len()
        ),
    );
    // ④ Attest.
    let token = attest(client, &ev, &runtime).await?;
    done(
        "④",
        "attested: signed token received",
        format!("{} bytes", token.len()),
    );
    // ⑤ Ask for the key.
    let enc = ReleaseEnc::RsaAesKeyWrap256;
    let r = client
        .release(
            key,
            &sovra_proto::kms::ReleaseRequest {
                target: token.to_string(),
                nonce: Some(nonce.clone()),
                enc: Some(enc.name().into()),
            },
        )
        .await
        .map_err(server("release"))?;
    let value = r.value.as_str();
    done(
        "⑤",
        "release granted",
        format!("{} bytes, wrapped with {}", value.len(), enc.name()),
    );
    // ⑥ Check the response is Sovra's: a release response (its own type and keys, never an
    // attestation token's).
    let j = Jws::parse(value).map_err(local)?;
    if j.typ() != Some("sovra-key-release+jwt") {
        return Err(local("the release response is not typed as one (typ)"));
    }
    let certs: Value = client
        .release_certs()
        .await
        .map_err(server("release certs"))?;
    let verified = certs["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kid"].as_str() == j.kid())
        .any(|k| {
            VerifyKey::from_jwk(k)
                .map(|vk| j.verify_with(&vk).is_ok())
                .unwrap_or(false)
        });
    if !verified {
        return Err(local(
            "the release response is not signed by the server's published key",
        ));
    }
    let body = j.claims().map_err(local)?;
    let kh = body["response"]["key"]["key"]["key_hsm"]
        .as_str()
        .ok_or_else(|| local("no key_hsm in the release"))?;
    let kh: Value =
        serde_json::from_slice(&jws::b64url_decode(kh).map_err(local)?).map_err(local)?;
    let version = body["response"]["key"]["key"]["kid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    done(
        "⑥",
        "response verified against the server's release JWKS",
        version.clone(),
    );
    // ⑦ Unwrap inside the guest.
    let blob = jws::b64url_decode(kh["ciphertext"].as_str().unwrap_or_default()).map_err(local)?;
    let material = keywrap::unwrap(enc, private.expose(), &blob).map_err(local)?;
    done(
        "⑦",
        "key unwrapped inside the guest",
        format!("{} bytes", material.len()),
    );
    Ok(Released {
        material,
        version,
        token,
    })
}
