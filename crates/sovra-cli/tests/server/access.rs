//! Tokens, roles at scopes, deny by default, quotas, and the audit trail of it all.

use crate::common::*;

fn token_for(s: &Server, principal: &str) -> String {
    let r = s.json(&["tokens", "create", "--principal", principal]);
    r["token"].as_str().unwrap().to_string()
}

#[test]
fn roles_at_scopes_and_deny_by_default() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "team-a"]);
    s.ok(&["keyrings", "create", "team-b"]);
    s.ok(&["keys", "create", "team-a/k", "--purpose", "encrypt"]);
    s.ok(&["keys", "create", "team-b/k", "--purpose", "encrypt"]);
    let alice = token_for(&s, "alice");
    // No role yet: everything is denied.
    assert_eq!(
        cli_code(&s.cli_as(
            &alice,
            &["-o", "json", "encrypt", "team-a/k", "--plaintext", "x"]
        )),
        "PERMISSION_DENIED"
    );
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "alice",
        "--role",
        "crypto-user",
        "--scope",
        "team-a",
    ]);
    let o = s.cli_as(&alice, &["encrypt", "team-a/k", "--plaintext", "x"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        cli_code(&s.cli_as(
            &alice,
            &["-o", "json", "encrypt", "team-b/k", "--plaintext", "x"]
        )),
        "PERMISSION_DENIED"
    );
    // A crypto user cannot manage keys or access.
    assert_eq!(
        cli_code(&s.cli_as(
            &alice,
            &[
                "-o",
                "json",
                "keys",
                "create",
                "team-a/new",
                "--purpose",
                "encrypt"
            ]
        )),
        "PERMISSION_DENIED"
    );
    assert_eq!(
        cli_code(&s.cli_as(&alice, &["-o", "json", "tokens", "list"])),
        "PERMISSION_DENIED"
    );
    // A crypto officer manages keys but cannot use them.
    let bob = token_for(&s, "bob");
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "bob",
        "--role",
        "crypto-officer",
        "--scope",
        "*",
    ]);
    assert!(
        s.cli_as(
            &bob,
            &["keys", "create", "team-a/bobs", "--purpose", "encrypt"]
        )
        .status
        .success()
    );
    assert_eq!(
        cli_code(&s.cli_as(
            &bob,
            &["-o", "json", "encrypt", "team-a/bobs", "--plaintext", "x"]
        )),
        "PERMISSION_DENIED"
    );
    // An auditor reads the audit log but cannot decrypt.
    let carol = token_for(&s, "carol");
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "carol",
        "--role",
        "auditor",
    ]);
    assert!(s.cli_as(&carol, &["audit", "verify"]).status.success());
    assert_eq!(
        cli_code(&s.cli_as(
            &carol,
            &["-o", "json", "encrypt", "team-a/k", "--plaintext", "x"]
        )),
        "PERMISSION_DENIED"
    );
    // Alice only sees her ring when listing.
    let o = s.cli_as(&alice, &["-o", "json", "keyrings", "list"]);
    let rings: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = rings
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["locations/global/keyRings/team-a"]);
    // Revoking the binding takes effect at once.
    let bindings = s.json(&["roles", "list", "--principal", "alice"]);
    let id = bindings[0]["id"].as_str().unwrap().to_string();
    s.ok(&["roles", "revoke", "alice", &id]);
    assert_eq!(
        cli_code(&s.cli_as(
            &alice,
            &["-o", "json", "encrypt", "team-a/k", "--plaintext", "x"]
        )),
        "PERMISSION_DENIED"
    );
    // Denials are in the audit log.
    let log = s.ok(&["audit", "export"]);
    let denied = log
        .lines()
        .filter(|l| l.contains("\"outcome\":\"denied\"") && l.contains("\"principal\":\"alice\""))
        .count();
    assert!(denied >= 3, "alice's denials are audited:\n{log}");
}

#[test]
fn tokens_revocation_expiry_and_bad_tokens() {
    let s = Server::start();
    let r = s.json(&[
        "tokens",
        "create",
        "--principal",
        "svc",
        "--ttl",
        "1d",
        "--description",
        "ci",
    ]);
    let tok = r["token"].as_str().unwrap().to_string();
    let id = r["info"]["id"].as_str().unwrap().to_string();
    assert!(r["info"]["expireTime"].is_string());
    assert!(s.cli_as(&tok, &["whoami"]).status.success());
    // The list never shows secrets.
    let list = s.ok(&["-o", "json", "tokens", "list"]);
    assert!(!list.contains(tok.split('_').next_back().unwrap()));
    s.json(&["tokens", "revoke", &id]);
    assert_eq!(
        cli_code(&s.cli_as(&tok, &["-o", "json", "whoami"])),
        "TOKEN_INVALID"
    );
    assert_eq!(
        cli_code(&s.cli_as("sovra_deadbeef_nope", &["-o", "json", "whoami"])),
        "TOKEN_INVALID"
    );
    assert_eq!(
        cli_code(&s.cli_as("garbage", &["-o", "json", "whoami"])),
        "TOKEN_INVALID"
    );
    // A token with the right ID and a wrong secret is refused.
    let forged = format!("sovra_{id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        cli_code(&s.cli_as(&forged, &["-o", "json", "whoami"])),
        "TOKEN_INVALID"
    );
    let log = s.ok(&["audit", "export"]);
    assert!(log.contains("revoked token"), "{log}");
}

#[test]
fn quotas_return_429_with_retry_after() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "q"]);
    s.ok(&["keys", "create", "q/sig", "--purpose", "sign"]);
    let dave = token_for(&s, "dave");
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "dave",
        "--role",
        "crypto-user",
        "--scope",
        "q",
    ]);
    let q = s.json(&["quotas", "get", "dave"]);
    assert_eq!(q["asymmetricPerMinute"], 3000);
    assert_eq!(q["symmetricPerMinute"], 30000);
    s.json(&[
        "quotas",
        "set",
        "dave",
        "--symmetric",
        "100",
        "--asymmetric",
        "3",
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = s.client_as(&dave);
        let body = br#"{"data":"aGk="}"#.to_vec();
        let path = "/v1/locations/global/keyRings/q/cryptoKeys/sig:asymmetricSign";
        for _ in 0..3 {
            let (st, b) = c
                .raw(hyper::Method::POST, path, Some(body.clone()))
                .await
                .unwrap();
            assert_eq!(st, 200, "{b:?}");
        }
        let (st, b) = c
            .raw(hyper::Method::POST, path, Some(body.clone()))
            .await
            .unwrap();
        assert_eq!(st, 429);
        let e: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(e["error"]["code"], "QUOTA_EXCEEDED");
        let err = c
            .post::<_, serde_json::Value>(path, &serde_json::json!({"data": "aGk="}))
            .await;
        assert_eq!(code(err), "QUOTA_EXCEEDED");
    });
    // The Retry-After header, seen through curl-like raw HTTP is checked in bad_input; here the
    // admin is unaffected by dave's quota.
    assert!(s.cli(&["sign", "q/sig", "--data", "x"]).status.success());
}

#[test]
fn data_access_is_audited_only_where_enabled() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "watched", "--audit-data-access"]);
    s.ok(&["keyrings", "create", "quiet"]);
    s.ok(&["keys", "create", "watched/k", "--purpose", "encrypt"]);
    s.ok(&["keys", "create", "quiet/k", "--purpose", "encrypt"]);
    let ct = s.json(&["encrypt", "watched/k", "--plaintext", "x"]);
    s.ok(&[
        "decrypt",
        "watched/k",
        "--ciphertext",
        ct["ciphertext"].as_str().unwrap(),
    ]);
    s.ok(&["encrypt", "quiet/k", "--plaintext", "x"]);
    let data_events = |log: &str, ring: &str| {
        log.lines()
            .filter(|l| l.contains("\"kind\":\"data_access\""))
            .filter(|l| l.contains(&format!("keyRings/{ring}/")))
            .count()
    };
    let log = s.ok(&["audit", "export"]);
    assert_eq!(data_events(&log, "watched"), 2, "encrypt + decrypt:\n{log}");
    assert_eq!(data_events(&log, "quiet"), 0, "{log}");

    // Turning it off stops the records; the audit chain still verifies.
    s.ok(&[
        "keyrings",
        "update",
        "watched",
        "--audit-data-access",
        "false",
    ]);
    s.ok(&["encrypt", "watched/k", "--plaintext", "x"]);
    let log = s.ok(&["audit", "export"]);
    assert_eq!(data_events(&log, "watched"), 2, "{log}");
    assert!(s.cli(&["audit", "verify"]).status.success());
}

#[test]
fn an_administrator_cannot_lock_itself_out() {
    let s = Server::start();
    let me = s.json(&["whoami"]);
    let binding = me["roleBindings"][0]["id"].as_str().unwrap().to_string();
    let token = me["tokenId"].as_str().unwrap().to_string();
    // One DELETE once locked everyone out for good (schemathesis found it through the
    // documented example ID); now removing one's own Administrator role, or revoking the token
    // one is signed in with, is refused.
    let o = s.cli(&["-o", "json", "roles", "revoke", "admin", &binding]);
    assert_eq!(cli_code(&o), "OWN_ACCESS");
    let o = s.cli(&["-o", "json", "tokens", "revoke", &token]);
    assert_eq!(cli_code(&o), "OWN_ACCESS");
    assert!(s.cli(&["whoami"]).status.success());
    // Another administrator can.
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "ops",
        "--role",
        "administrator",
        "--scope",
        "*",
    ]);
    let ops = s.json(&["tokens", "create", "--principal", "ops"]);
    let ops = ops["token"].as_str().unwrap();
    let o = s.cli_as(ops, &["roles", "revoke", "admin", &binding]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(s.cli_as(ops, &["roles", "list"]).status.success());
}

#[test]
fn a_deployment_that_lost_its_administrators_recovers_offline_with_the_hsm() {
    let mut s = Server::start();
    s.ok(&["keyrings", "create", "kept"]);
    // The administrator's token is lost; the operator still has the data directory and what
    // unseals the HSM.
    s.terminate();
    let dir = s.dir.to_str().unwrap().to_string();
    let recover = [
        "-o",
        "json",
        "admin",
        "recover",
        "--data-dir",
        &dir,
        "--hours",
        "2",
    ];
    // Without what unseals the HSM, nothing: every row is sealed under an HSM-held key.
    let unseal = s.dir.join("hsm/unseal.key");
    let aside = s.dir.join("unseal.key.aside");
    std::fs::rename(&unseal, &aside).unwrap();
    let o = s.cli(&recover);
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    std::fs::rename(&aside, &unseal).unwrap();
    let o = s.cli(&recover);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let token = out["token"].as_str().unwrap().to_string();
    assert_eq!(out["principal"], "recovery");
    // A lifetime beyond seven days is refused.
    let o = s.cli(&[
        "-o",
        "json",
        "admin",
        "recover",
        "--data-dir",
        &dir,
        "--hours",
        "200",
    ]);
    assert_eq!(cli_code(&o), "INVALID_ARGUMENT");
    s.boot();
    let me: serde_json::Value =
        serde_json::from_slice(&s.cli_as(&token, &["-o", "json", "whoami"]).stdout).unwrap();
    assert_eq!(me["principal"], "recovery", "{me}");
    assert!(me.to_string().contains("ADMINISTRATOR"), "{me}");
    // It administers: a durable administrator can be made, the old state is all there.
    assert!(
        s.cli_as(&token, &["keyrings", "get", "kept"])
            .status
            .success()
    );
    let o = s.cli_as(&token, &["tokens", "create", "--principal", "ops"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = s.ok(&["audit", "export"]);
    let rec = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .find(|e| e["action"] == "admin.recover")
        .expect("the recovery is audited");
    assert_eq!(rec["resource"], "principals/recovery");
    assert!(rec["detail"]["expireTime"].is_string(), "{rec}");
}

#[test]
fn a_key_limited_to_some_operations_refuses_the_others_to_everyone() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "r"]);
    let k = s.json(&[
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
        "--key-ops",
        "encrypt",
    ]);
    assert_eq!(k["keyOps"], serde_json::json!(["encrypt"]));
    let ct = s.json(&["encrypt", "r/k", "--plaintext", "for later"]);
    let ct = ct["ciphertext"].as_str().unwrap().to_string();
    let decrypt = |token: Option<&str>| {
        let args = ["-o", "json", "decrypt", "r/k", "--ciphertext", &ct];
        match token {
            Some(t) => s.cli_as(t, &args),
            None => s.cli(&args),
        }
    };
    // Not even an administrator decrypts with it.
    assert_eq!(cli_code(&decrypt(None)), "KEY_OPERATION_NOT_ALLOWED");
    // Only operations the purpose offers, and at least one.
    for ops in ["sign", "encrypt,wrapKey"] {
        assert_eq!(
            cli_code(&s.cli(&[
                "-o",
                "json",
                "keys",
                "create",
                "r/bad",
                "--purpose",
                "encrypt",
                "--key-ops",
                ops,
            ])),
            "INVALID_ARGUMENT",
            "{ops}"
        );
    }
    // A crypto user cannot widen it; a key manager can.
    let alice = token_for(&s, "alice");
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "alice",
        "--role",
        "crypto-user",
        "--scope",
        "r",
    ]);
    assert_eq!(
        cli_code(&decrypt(Some(&alice))),
        "KEY_OPERATION_NOT_ALLOWED"
    );
    assert_eq!(
        cli_code(&s.cli_as(
            &alice,
            &[
                "-o",
                "json",
                "keys",
                "update",
                "r/k",
                "--key-ops",
                "encrypt,decrypt"
            ]
        )),
        "PERMISSION_DENIED"
    );
    let k = s.json(&["keys", "update", "r/k", "--key-ops", "decrypt,encrypt"]);
    assert!(
        k.get("keyOps").is_none(),
        "all its operations lift the limit: {k}"
    );
    let o = decrypt(Some(&alice));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The change is in the audit trail.
    let log = s.ok(&["audit", "export"]);
    assert!(
        log.lines()
            .any(|l| l.contains("cryptoKeys.update") && l.contains("keyOps")),
        "{log}"
    );
}
