//! The typed client covers the whole API: every documented operation is reached by one of its
//! methods against the real server (the server's own request metrics say which routes were
//! hit), and none of them lands on a route or method the server does not have. Custom methods
//! share their resource's route in the metrics, so `exercise` calls each of them explicitly.

use crate::common::*;
use serde_json::{Value, json};
use sovra_client::{Client, ClientError};
use sovra_proto::EvidenceType;
use sovra_proto::admin::*;
use sovra_proto::attest::*;
use sovra_proto::kms::*;
use sovra_proto::ops::*;

/// The call reached a route the server has (any answer but "no such route / method").
fn routed<T>(what: &str, r: Result<T, ClientError>) {
    if let Err(ClientError::Api(e)) = &r {
        assert!(
            e.code != "ROUTE_NOT_FOUND" && e.code != "METHOD_NOT_ALLOWED",
            "{what}: {} {}",
            e.code,
            e.message
        );
    }
    if let Err(e @ (ClientError::Transport(_) | ClientError::Config(_))) = &r {
        panic!("{what}: {e}");
    }
}

/// A path with `{parameters}` written `{}` and a custom method (`{x}:verb`) dropped: the route
/// the server matches.
fn route_shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    match out.rsplit_once("{}:") {
        Some((head, _)) => format!("{head}{{}}"),
        None => out,
    }
}

async fn exercise(c: &Client, anon: &Client) {
    let loc = "locations/global";
    routed("list_locations", c.list_locations().await);
    routed("create_location", c.create_location("second").await);
    routed("get_location", c.get_location(loc).await);
    routed(
        "generate_random_bytes",
        c.generate_random_bytes(loc, &GenerateRandomBytesRequest { length_bytes: 8 })
            .await,
    );
    routed(
        "create_key_ring",
        c.create_key_ring("global", "r", &Default::default()).await,
    );
    let ring = "locations/global/keyRings/r";
    routed("list_key_rings", c.list_key_rings(loc, "").await);
    routed("get_key_ring", c.get_key_ring(ring).await);
    routed(
        "update_key_ring",
        c.update_key_ring(
            ring,
            &UpdateKeyRingRequest {
                audit_data_access: Some(false),
            },
        )
        .await,
    );
    let create = |purpose: &str, alg: &str, exportable: bool| -> CreateCryptoKeyRequest {
        let mut v = json!({"purpose": purpose, "versionTemplate": {"algorithm": alg}});
        if exportable {
            v["exportable"] = json!(true);
            v["releasePolicy"] = json!({"policy": {"anyOf": [{"authority": "https://issuer.example", "allOf": [{"claim": "x", "equals": "y"}]}]}});
        }
        serde_json::from_value(v).unwrap()
    };
    let aes = format!("{ring}/cryptoKeys/aes");
    let sig = format!("{ring}/cryptoKeys/sig");
    let dec = format!("{ring}/cryptoKeys/dec");
    let mac = format!("{ring}/cryptoKeys/mac");
    let kw = format!("{ring}/cryptoKeys/kw");
    for (id, purpose, alg) in [
        ("aes", "ENCRYPT_DECRYPT", "AES_256_GCM"),
        ("sig", "ASYMMETRIC_SIGN", "EC_SIGN_P256_SHA256"),
        ("dec", "ASYMMETRIC_DECRYPT", "RSA_DECRYPT_OAEP_2048_SHA256"),
        ("mac", "MAC", "HMAC_SHA256"),
        ("kw", "KEY_WRAP", "AES_256_KEY_WRAP"),
    ] {
        routed(
            "create_crypto_key",
            c.create_crypto_key(ring, id, &create(purpose, alg, id == "aes"))
                .await,
        );
    }
    routed("list_crypto_keys", c.list_crypto_keys(ring, "").await);
    routed("get_crypto_key", c.get_crypto_key(&aes).await);
    routed(
        "update_crypto_key",
        c.update_crypto_key(
            &aes,
            &serde_json::from_value(json!({"labels": {"a": "b"}})).unwrap(),
        )
        .await,
    );
    let ct = c.encrypt(&aes, b"hi", None).await.unwrap();
    routed(
        "decrypt_request",
        c.decrypt_request(
            &aes,
            &DecryptRequest {
                ciphertext: ct.ciphertext.clone(),
                additional_authenticated_data: None,
            },
        )
        .await,
    );
    routed("rotate", c.rotate(&aes).await);
    routed(
        "create_crypto_key",
        c.create_crypto_key(
            ring,
            "doomed",
            &create("ENCRYPT_DECRYPT", "AES_256_GCM", false),
        )
        .await,
    );
    let doomed = format!("{ring}/cryptoKeys/doomed");
    routed("delete_crypto_key", c.delete_crypto_key(&doomed).await);
    routed("list_deleted_keys", c.list_deleted_keys(ring, "").await);
    routed("get_deleted_key", c.get_deleted_key(ring, "doomed").await);
    routed(
        "purge_deleted_key",
        c.purge_deleted_key(ring, "doomed").await,
    );
    routed(
        "recover_deleted_key",
        c.recover_deleted_key(ring, "doomed").await,
    );
    routed(
        "update_primary_version",
        c.update_primary_version(
            &aes,
            &UpdatePrimaryVersionRequest {
                crypto_key_version_id: "1".into(),
            },
        )
        .await,
    );
    let data = Some(sovra_proto::b64::encode(b"msg"));
    let s = c
        .asymmetric_sign(
            &sig,
            &AsymmetricSignRequest {
                data: data.clone(),
                digest: None,
            },
        )
        .await
        .unwrap();
    routed(
        "asymmetric_verify",
        c.asymmetric_verify(
            &sig,
            &AsymmetricVerifyRequest {
                data: data.clone(),
                digest: None,
                signature: s.signature.clone(),
            },
        )
        .await,
    );
    let sig_v1 = format!("{sig}/cryptoKeyVersions/1");
    routed(
        "asymmetric_sign (version)",
        c.asymmetric_sign(
            &sig_v1,
            &AsymmetricSignRequest {
                data: data.clone(),
                digest: None,
            },
        )
        .await,
    );
    routed(
        "asymmetric_verify (version)",
        c.asymmetric_verify(
            &sig_v1,
            &AsymmetricVerifyRequest {
                data: data.clone(),
                digest: None,
                signature: s.signature,
            },
        )
        .await,
    );
    routed("public_key", c.public_key(&sig).await);
    routed("public_key (version)", c.public_key(&sig_v1).await);
    let junk = sovra_proto::b64::encode(&[0u8; 256]);
    for target in [dec.clone(), format!("{dec}/cryptoKeyVersions/1")] {
        routed(
            "asymmetric_decrypt",
            c.asymmetric_decrypt(
                &target,
                &AsymmetricDecryptRequest {
                    ciphertext: junk.clone(),
                },
            )
            .await,
        );
    }
    for target in [mac.clone(), format!("{mac}/cryptoKeyVersions/1")] {
        let m = c
            .mac_sign(
                &target,
                &MacSignRequest {
                    data: sovra_proto::b64::encode(b"x"),
                },
            )
            .await
            .unwrap();
        routed(
            "mac_verify",
            c.mac_verify(
                &target,
                &MacVerifyRequest {
                    data: sovra_proto::b64::encode(b"x"),
                    mac: m.mac,
                },
            )
            .await,
        );
    }
    for target in [kw.clone(), format!("{kw}/cryptoKeyVersions/1")] {
        let w = c
            .wrap_key(
                &target,
                &WrapKeyRequest {
                    key: sovra_proto::b64::encode(&[5u8; 32]),
                    mode: KeyWrapMode::AesKeyWrap,
                },
            )
            .await
            .unwrap();
        let k = c
            .unwrap_key(
                &target,
                &UnwrapKeyRequest {
                    wrapped_key: w.wrapped_key,
                    mode: KeyWrapMode::AesKeyWrap,
                },
            )
            .await
            .unwrap();
        assert_eq!(k.key, sovra_proto::b64::encode(&[5u8; 32]));
    }
    let recipient: RecipientRequest =
        serde_json::from_value(json!({"target": "not.a.token", "ciphertext": ct.ciphertext}))
            .unwrap();
    routed("decrypt_to", c.decrypt_to(&aes, &recipient).await);
    let recipient: RecipientRequest =
        serde_json::from_value(json!({"target": "not.a.token"})).unwrap();
    routed(
        "generate_data_key_to",
        c.generate_data_key_to(&aes, &recipient).await,
    );
    let release = ReleaseRequest {
        target: "not.a.token".into(),
        nonce: None,
        enc: None,
    };
    routed("release", c.release(&aes, &release).await);
    routed(
        "release (version)",
        c.release(&format!("{aes}/cryptoKeyVersions/1"), &release)
            .await,
    );
    routed("list_versions", c.list_versions(&aes, "").await);
    routed("create_version", c.create_version(&aes).await);
    let v3 = format!("{aes}/cryptoKeyVersions/3");
    routed("get_version", c.get_version(&v3).await);
    routed("key_attestation_roots", c.key_attestation_roots().await);
    routed("key_attestation_csr", c.key_attestation_csr().await);
    routed("rotate_key_attestation", c.rotate_key_attestation().await);
    routed("unseal_status", c.unseal_status().await);
    routed(
        "download_security_domain",
        c.download_security_domain(
            &sovra_proto::security_domain::DownloadSecurityDomainRequest {
                certificates: vec![],
                quorum: 2,
            },
        )
        .await,
    );
    let ring_of_aes = aes.rsplit_once("/cryptoKeys/").unwrap().0.to_string();
    routed(
        "create_import_job",
        c.create_import_job(
            &ring_of_aes,
            "job",
            &sovra_proto::kms::CreateImportJobRequest {
                import_method: sovra_proto::kms::ImportMethod::RsaOaep3072Sha1Aes256,
                protection_level: None,
                ttl: None,
            },
        )
        .await,
    );
    routed(
        "list_import_jobs",
        c.list_import_jobs(&ring_of_aes, "").await,
    );
    routed(
        "get_import_job",
        c.get_import_job(&format!("{ring_of_aes}/importJobs/job"))
            .await,
    );
    routed(
        "import_version",
        c.import_version(
            &aes,
            &sovra_proto::kms::ImportVersionRequest {
                import_job: format!("{ring_of_aes}/importJobs/job"),
                algorithm: sovra_proto::kms::Algorithm::Aes256Gcm,
                wrapped_key: "AAAA".into(),
                public_key: None,
                crypto_key_version: None,
            },
        )
        .await,
    );
    routed(
        "set_key_attestation_roots",
        c.set_key_attestation_roots(&sovra_proto::kms::SetKeyAttestationRootsRequest {
            owner_root: "not a certificate".into(),
            attestation_certificate: "not a certificate".into(),
        })
        .await,
    );
    routed(
        "set_version_state",
        c.set_version_state(&v3, VersionState::Disabled).await,
    );
    routed("destroy_version", c.destroy_version(&v3).await);
    routed("restore_version", c.restore_version(&v3).await);

    routed("whoami", c.whoami().await);
    let t = c
        .create_token(&CreateTokenRequest {
            principal: "p".into(),
            description: String::new(),
            ttl: None,
        })
        .await
        .unwrap();
    routed("list_tokens", c.list_tokens().await);
    routed("revoke_token", c.revoke_token(&t.info.id).await);
    let b = c
        .create_role_binding(&CreateRoleBindingRequest {
            principal: "p".into(),
            role: Role::Auditor,
            scope: "*".into(),
        })
        .await
        .unwrap();
    routed("list_role_bindings", c.list_role_bindings(Some("p")).await);
    routed(
        "delete_role_binding",
        c.delete_role_binding("p", &b.id).await,
    );
    routed("get_quota", c.get_quota("p").await);
    routed(
        "set_quota",
        c.set_quota(
            "p",
            &SetQuotaRequest {
                symmetric_per_minute: 10,
                asymmetric_per_minute: 10,
            },
        )
        .await,
    );
    routed("get_settings", c.get_settings().await);
    routed(
        "update_settings",
        c.update_settings(&UpdateSettingsRequest::default()).await,
    );
    routed("export_audit", c.export_audit(1, 10).await);
    routed("verify_audit", c.verify_audit().await);
    routed("audit_checkpoint", c.audit_checkpoint().await);
    routed("healthz", anon.healthz().await);
    routed("readyz", anon.readyz().await);
    routed("metrics", c.metrics().await);
    routed("openapi", anon.openapi().await);

    let req = AttestRequest {
        evidence: sovra_proto::b64::encode(b"not evidence"),
        ..Default::default()
    };
    routed(
        "attest",
        anon.attest(None, EvidenceType::SevSnp, &req).await,
    );
    routed("create_provider", c.create_provider("tenant").await);
    routed(
        "attest (provider)",
        anon.attest(Some("tenant"), EvidenceType::SevSnp, &req)
            .await,
    );
    routed("tpm_challenge", anon.tpm_challenge(&json!({})).await);
    routed("list_providers", c.list_providers().await);
    routed(
        "get_policy",
        c.get_policy("default", EvidenceType::Tdx).await,
    );
    routed(
        "set_policy",
        c.set_policy(
            "default",
            EvidenceType::Tdx,
            &serde_json::from_value(json!({"policy": "version=1.0; authorizationrules { => permit(); }; issuancerules { };"})).unwrap(),
        )
        .await,
    );
    routed(
        "reset_policy",
        c.reset_policy("default", EvidenceType::Tdx).await,
    );
    routed("list_reference_values", c.list_reference_values().await);
    routed(
        "put_reference_values",
        c.put_reference_values("set", &json!({"values": {"x-ms-sevsnpvm-vmpl": [0]}}))
            .await,
    );
    routed(
        "delete_reference_values",
        c.delete_reference_values("set").await,
    );
    routed("list_collateral", c.list_collateral().await);
    routed(
        "import_collateral",
        c.import_collateral(&ImportCollateralRequest {
            kind: "amd-certs".into(),
            platform: None,
            content: sovra_proto::b64::encode(b"not a certificate"),
        })
        .await,
    );
    routed(
        "delete_collateral",
        c.delete_collateral(&"0".repeat(64)).await,
    );
    routed("rotate_signing_key", c.rotate_signing_key(&json!({})).await);
    routed("release_nonce", c.release_nonce().await);
    routed("trust", c.trust().await);
    routed("list_issuers", c.list_issuers().await);
    routed(
        "put_issuer",
        c.put_issuer(&json!({"issuer": "https://issuer.example", "certificates": []}))
            .await,
    );
    routed("certs", anon.certs().await);
    routed("release_certs", anon.release_certs().await);
    routed(
        "openid_configuration",
        anon.openid_configuration(None).await,
    );
    routed(
        "openid_configuration (provider)",
        anon.openid_configuration(Some("tenant")).await,
    );
    let maa = json!({"report": sovra_proto::b64::encode(b"x")});
    routed("maa_attest", anon.maa_attest(None, "SevSnpVm", &maa).await);
    routed(
        "maa_attest (provider)",
        anon.maa_attest(Some("tenant"), "SevSnpVm", &maa).await,
    );
    routed("maa_get_policy", c.maa_get_policy("SevSnpVm").await);
    routed(
        "maa_set_policy",
        c.maa_set_policy("SevSnpVm", "not.a.jws").await,
    );
    routed("maa_reset_policy", c.maa_reset_policy("SevSnpVm").await);
    routed("maa_certificates", c.maa_certificates().await);
    routed("maa_add_certificate", c.maa_add_certificate("a.b.c").await);
    routed(
        "maa_remove_certificate",
        c.maa_remove_certificate("a.b.c").await,
    );
}

#[test]
fn the_typed_client_reaches_every_documented_operation() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let anon = Client::new(sovra_client::ClientConfig {
        url: s.url.clone(),
        token: None,
        ca_pem: Some(std::fs::read(s.ca()).unwrap()),
        ..Default::default()
    })
    .unwrap();
    rt.block_on(exercise(&s.admin(), &anon));
    // What the server saw: routes by method, from its own request metrics.
    let metrics = rt.block_on(s.admin().metrics()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("sovra_http_requests_total{"))
    {
        let field = |k: &str| {
            line.split(&format!("{k}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        seen.insert((route_shape(&field("route")), field("method")));
    }
    let doc: Value = serde_json::from_str(sovra_server::http::OPENAPI).unwrap();
    let mut missing = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        // The Azure Key Vault API's clients are the Azure SDKs: azure_sdk.rs checks that they
        // reach every one of its operations.
        if sovra_server::http::keyvault::is_keyvault_path(path) {
            continue;
        }
        for m in ops.as_object().unwrap().keys() {
            let key = (route_shape(path), m.to_uppercase());
            if !seen.contains(&key) {
                missing.push(format!("{} {path}", key.1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented operations no typed client method reaches: {missing:?}"
    );
}
