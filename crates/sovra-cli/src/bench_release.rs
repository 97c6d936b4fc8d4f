//! `sovra bench release`: sets up a trusted token issuer (a key and certificate of its own,
//! pinned on the server), an exportable AES key whose release policy names that issuer, and a
//! Release User principal; then drives releases of that key with a token carrying a TEE RSA
//! key. Each request verifies the token, evaluates the policy, wraps the key to the TEE key
//! (RSA-OAEP + AES-KWP), signs the response and writes an audit record.

use crate::bench::{ReleaseBench, load, print, result};
use crate::context::{CliError, Global, Result};
use hyper::Method;
use serde_json::{Map, Value, json};
use sovra_client::Client;
use sovra_crypto::jws::{self, JwsAlg, JwsSigner};

const ISSUER: &str = "https://bench-issuer.sovra.invalid";

fn local(e: impl std::fmt::Display) -> CliError {
    CliError::Local(e.to_string())
}

/// Runs the benchmark.
pub async fn run(g: &Global, a: ReleaseBench) -> Result<()> {
    if a.concurrency == 0 || a.duration == 0 {
        return Err(CliError::Usage(
            "--concurrency and --duration must be positive".into(),
        ));
    }
    let admin = g.client()?;
    // The issuer.
    let pkcs8 = jws::generate(JwsAlg::Rs256).map_err(local)?;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .map_err(local)?;
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(local)?
        .self_signed(&kp)
        .map_err(local)?;
    let signer = JwsSigner::load(
        JwsAlg::Rs256,
        pkcs8.expose(),
        "bench".into(),
        &[cert.der().to_vec()],
    )
    .map_err(local)?;
    let _: Value = admin
        .put_issuer(&json!({"issuer": ISSUER, "certificates": [cert.pem()]}))
        .await?;
    // The key.
    let id = format!("rel-{}", sovra_crypto::random::hex_id(4).map_err(local)?);
    let loc = &g.location;
    let ring = format!("locations/{loc}/keyRings/bench");
    match admin
        .create_key_ring(loc, "bench", &Default::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("ALREADY_EXISTS") => {}
        Err(e) => return Err(e.into()),
    }
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": ISSUER, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false},
        {"claim": "x-ms-compliance-status", "equals": "sovra-compliant"}]}]});
    let req: sovra_proto::kms::CreateCryptoKeyRequest = serde_json::from_value(
        json!({"purpose": "ENCRYPT_DECRYPT", "exportable": true, "releasePolicy": {"policy": policy}}),
    )
    .map_err(local)?;
    admin.create_crypto_key(&ring, &id, &req).await?;
    // The principal.
    let principal = format!("bench-{id}");
    let tok = admin
        .create_token(&sovra_proto::admin::CreateTokenRequest {
            principal: principal.clone(),
            description: "sovra bench release".into(),
            ttl: Some("1d".into()),
        })
        .await?;
    admin
        .create_role_binding(&sovra_proto::admin::CreateRoleBindingRequest {
            principal: principal.clone(),
            role: sovra_proto::admin::Role::ReleaseUser,
            scope: ring.clone(),
        })
        .await?;
    // The TEE key and its token.
    let tee = sovra_crypto::generate(sovra_proto::kms::Algorithm::RsaDecryptOaep2048Sha256)
        .map_err(local)?;
    let k = sovra_crypto::LoadedKey::load(
        sovra_proto::kms::Algorithm::RsaDecryptOaep2048Sha256,
        tee.expose(),
    )
    .map_err(local)?;
    let spki = k.public_key_der().map_err(local)?;
    let pk = aws_lc_rs::rsa::PublicKey::from_der(&spki).map_err(local)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600,
        "x-ms-attestation-type": "sevsnpvm", "x-ms-sevsnpvm-is-debuggable": false, "x-ms-compliance-status": "sovra-compliant",
        "x-ms-runtime": {"keys": [{"kid": "TpmEphemeralEncryptionKey", "kty": "RSA", "key_ops": ["encrypt"],
            "n": jws::b64url(pk.modulus().big_endian_without_leading_zero()), "e": jws::b64url(pk.exponent().big_endian_without_leading_zero())}]}});
    let target = signer.sign_jwt(&claims, &Map::new()).map_err(local)?;
    let body = serde_json::to_vec(&json!({"target": target})).map_err(local)?;
    let ca = g
        .ca_cert
        .as_ref()
        .map(std::fs::read)
        .transpose()
        .map_err(local)?;
    let client = Client::new(sovra_client::ClientConfig {
        url: g.url.clone(),
        token: Some(tok.token.clone()),
        ca_pem: ca,
        ..Default::default()
    })?;
    let path = sovra_client::kms::verb_path(&format!("{ring}/cryptoKeys/{id}"), "release");
    let (status, resp) = client.raw(Method::POST, &path, Some(body.clone())).await?;
    if !status.is_success() {
        return Err(CliError::Local(format!(
            "the first release failed with {status}: {}",
            String::from_utf8_lossy(&resp)
        )));
    }
    let m = load(
        client,
        path,
        body,
        a.concurrency,
        a.duration,
        a.warmup,
        false,
    )
    .await?;
    let r = result(m, a.concurrency, 32);
    print(g, ("key", format!("{ring}/cryptoKeys/{id}")), &r);
    Ok(())
}
