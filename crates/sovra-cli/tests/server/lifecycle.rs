//! Version lifecycle: disable, enable, scheduled destruction (on time, across restarts),
//! restore, organisation constraints, scheduled rotation fields.

use crate::common::*;

fn setup(s: &Server) -> String {
    // Allow short destruction delays for the test (the default minimum is 1 day).
    s.ok(&["settings", "set", "--min-destroy-scheduled-duration", "0s"]);
    s.ok(&["keyrings", "create", "life"]);
    s.ok(&[
        "keys",
        "create",
        "life/k",
        "--purpose",
        "encrypt",
        "--destroy-scheduled-duration",
        "3s",
    ]);
    s.ok(&["encrypt", "life/k", "--plaintext", "keep me"])
        .trim()
        .to_string()
}

#[test]
fn disable_enable_destroy_restore() {
    let s = Server::start_with(&[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    let ct = setup(&s);
    let v = s.json(&["versions", "disable", "life/k", "1"]);
    assert_eq!(v["state"], "DISABLED");
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "encrypt", "life/k", "--plaintext", "x"])),
        "KEY_VERSION_NOT_ENABLED"
    );
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "decrypt", "life/k", "--ciphertext", &ct])),
        "KEY_VERSION_NOT_ENABLED"
    );
    s.json(&["versions", "enable", "life/k", "1"]);
    assert_eq!(s.ok(&["decrypt", "life/k", "--ciphertext", &ct]), "keep me");

    let v = s.json(&["versions", "destroy", "life/k", "1"]);
    assert_eq!(v["state"], "DESTROY_SCHEDULED");
    assert!(v["destroyTime"].is_string());
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "versions", "enable", "life/k", "1"])),
        "INVALID_STATE_TRANSITION"
    );
    let v = s.json(&["versions", "restore", "life/k", "1"]);
    assert_eq!(
        v["state"], "DISABLED",
        "restore returns the version to DISABLED"
    );
    assert!(v.get("destroyTime").is_none());
    s.json(&["versions", "enable", "life/k", "1"]);
    assert_eq!(
        s.ok(&["decrypt", "life/k", "--ciphertext", &ct]),
        "keep me",
        "restored material still decrypts"
    );

    s.json(&["versions", "destroy", "life/k", "1"]);
    std::thread::sleep(std::time::Duration::from_secs(6));
    let v = s.json(&["versions", "get", "life/k", "1"]);
    assert_eq!(v["state"], "DESTROYED", "destroyed on time: {v}");
    assert!(v["destroyEventTime"].is_string());
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "decrypt", "life/k", "--ciphertext", &ct])),
        "KEY_VERSION_DESTROYED"
    );
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "versions", "restore", "life/k", "1"])),
        "INVALID_STATE_TRANSITION"
    );
    // The material is gone from the database row; the metadata stays.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let data: Vec<u8> = conn.query_row("SELECT data FROM objects WHERE collection='versions' AND name LIKE '%life/cryptoKeys/k/v/0000000001'", [], |r| r.get(0)).unwrap();
    let rec: serde_json::Value = row_json(&data);
    assert!(rec["material"].is_null(), "{rec}");
    assert_eq!(rec["state"], "DESTROYED");
}

#[test]
fn destruction_happens_on_time_across_restarts() {
    let mut s = Server::start_with(&[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    setup(&s);
    s.json(&["versions", "destroy", "life/k", "1"]);
    s.terminate();
    std::thread::sleep(std::time::Duration::from_secs(4));
    s.boot();
    // The scheduler runs at start-up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let v = s.json(&["versions", "get", "life/k", "1"]);
        if v["state"] == "DESTROYED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not destroyed after restart: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn organisation_constraints() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "org"]);
    // Default minimum is one day.
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "keys",
            "create",
            "org/short",
            "--purpose",
            "encrypt",
            "--destroy-scheduled-duration",
            "1h"
        ])),
        "INVALID_ARGUMENT"
    );
    let k = s.json(&["keys", "create", "org/k", "--purpose", "encrypt"]);
    assert_eq!(
        k["destroyScheduledDuration"], "2592000s",
        "default is 30 days"
    );
    s.ok(&[
        "settings",
        "set",
        "--require-disable-before-destroy",
        "true",
    ]);
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "versions", "destroy", "org/k", "1"])),
        "DISABLE_BEFORE_DESTROY_REQUIRED"
    );
    s.json(&["versions", "disable", "org/k", "1"]);
    let v = s.json(&["versions", "destroy", "org/k", "1"]);
    assert_eq!(v["state"], "DESTROY_SCHEDULED");
    // Scheduled 30 days out.
    let t = v["destroyTime"].as_str().unwrap();
    assert!(t > "2026-01-01", "{t}");
}

#[test]
fn rotation_schedule_fields() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "rot"]);
    let k = s.json(&[
        "keys",
        "create",
        "rot/k",
        "--purpose",
        "encrypt",
        "--rotation-period",
        "30d",
    ]);
    assert_eq!(k["rotationPeriod"], "2592000s");
    assert!(k["nextRotationTime"].is_string());
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "keys",
            "create",
            "rot/bad",
            "--purpose",
            "encrypt",
            "--rotation-period",
            "1h"
        ])),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "keys",
            "create",
            "rot/sig",
            "--purpose",
            "sign",
            "--rotation-period",
            "30d"
        ])),
        "INVALID_ARGUMENT"
    );
    let k = s.json(&["keys", "update", "rot/k", "--rotation-period", ""]);
    assert!(
        k.get("rotationPeriod").is_none(),
        "rotation turned off: {k}"
    );
    let versions = s.json(&["versions", "list", "rot/k"]);
    assert_eq!(versions.as_array().unwrap().len(), 1);
}

#[test]
fn a_deleted_key_is_out_of_reach_until_recovered_and_purged_only_after_its_retention() {
    let s = Server::start_with(&[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    let ct = setup(&s);
    let ct = serde_json::from_str::<serde_json::Value>(&ct)
        .ok()
        .and_then(|v| v["ciphertext"].as_str().map(str::to_owned))
        .unwrap_or(ct);
    // A crypto user may use the key but not delete it.
    let user = s.json(&["tokens", "create", "--principal", "app"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "app",
        "--role",
        "crypto-user",
        "--scope",
        "life",
    ]);
    assert_eq!(
        cli_code(&s.cli_as(&user, &["-o", "json", "keys", "delete", "life/k"])),
        "PERMISSION_DENIED"
    );
    let d = s.json(&["keys", "delete", "life/k"]);
    assert!(d["purgeTime"].is_string(), "{d}");
    // Out of reach of every path, listed as deleted, its name taken.
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "decrypt", "life/k", "--ciphertext", &ct])),
        "KEY_NOT_FOUND"
    );
    let listed = s.json(&["keys", "deleted", "list", "life"]);
    assert_eq!(
        listed[0]["cryptoKey"]["name"], "locations/global/keyRings/life/cryptoKeys/k",
        "{listed}"
    );
    assert_eq!(
        cli_code(&s.cli(&[
            "-o",
            "json",
            "keys",
            "create",
            "life/k",
            "--purpose",
            "encrypt"
        ])),
        "KEY_DELETED"
    );
    // Not purged before its retention (3 s here), by a request or by the scheduler...
    assert_eq!(
        cli_code(&s.cli(&["-o", "json", "keys", "deleted", "purge", "life/k"])),
        "PURGE_PROTECTED"
    );
    // ... and recovered as it was.
    s.ok(&["keys", "deleted", "recover", "life/k"]);
    let pt = s.ok(&["decrypt", "life/k", "--ciphertext", &ct]);
    assert!(pt.contains("keep me"), "{pt}");
    // Deleted again, the scheduler purges it when the retention ends, and the name is free.
    s.ok(&["keys", "delete", "life/k"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s
        .json(&["keys", "deleted", "list", "life"])
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        assert!(std::time::Instant::now() < deadline, "not purged");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    s.ok(&["keys", "create", "life/k", "--purpose", "encrypt"]);
    let audit = s.ok(&["audit", "export"]);
    for a in [
        "cryptoKeys.delete",
        "cryptoKeys.recover",
        "cryptoKeys.purged",
    ] {
        assert!(audit.contains(&format!("\"{a}\"")), "{a} not audited");
    }
}
