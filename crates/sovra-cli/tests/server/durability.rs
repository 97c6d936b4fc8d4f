//! Crashes, tampering and shutdown: no acknowledged write is lost, the store stays consistent,
//! edited rows are detected, the audit chain reports the first broken link.

use crate::common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn kill9_during_writes_loses_no_acknowledged_write() {
    let mut s = Server::start();
    s.ok(&["keyrings", "create", "crash"]);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = s.admin();
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
            rt.spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("w{w}-{i}");
                    i += 1;
                    let req = sovra_proto::kms::CreateCryptoKeyRequest {
                        purpose: sovra_proto::kms::Purpose::EncryptDecrypt,
                        version_template: None,
                        rotation_period: None,
                        next_rotation_time: None,
                        destroy_scheduled_duration: None,
                        labels: Default::default(),
                        skip_initial_version_creation: false,
                        exportable: None,
                        release_policy: None,
                        key_ops: None,
                    };
                    if client
                        .create_crypto_key("locations/global/keyRings/crash", &id, &req)
                        .await
                        .is_ok()
                    {
                        acked.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = rt.block_on(h);
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 5, "the load ran: {}", acked.len());
    s.boot();
    let keys = s.json(&["keys", "list", "crash"]);
    let present: std::collections::HashSet<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            k["name"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    for id in &acked {
        assert!(
            present.contains(id),
            "acknowledged key {id} lost after kill -9"
        );
    }
    // Every key is usable (its version row committed with it).
    for id in acked.iter().take(5) {
        let key = format!("crash/{id}");
        let ct = s
            .ok(&["encrypt", &key, "--plaintext", "x"])
            .trim()
            .to_string();
        assert_eq!(s.ok(&["decrypt", &key, "--ciphertext", &ct]), "x");
    }
    let o = s.cli(&["audit", "verify", "--data-dir", s.dir.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "audit chain verifies after the crash: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn edited_or_swapped_material_fails_with_an_integrity_error() {
    let s = Server::start();
    s.ok(&["keyrings", "create", "t"]);
    s.ok(&["keys", "create", "t/a", "--purpose", "encrypt"]);
    s.ok(&["keys", "create", "t/b", "--purpose", "encrypt"]);
    let ct_a = s
        .ok(&["encrypt", "t/a", "--plaintext", "a"])
        .trim()
        .to_string();
    // Swap key b's material into key a's row (both are valid blobs, but bound to other names).
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let get = |name: &str| -> serde_json::Value {
        let data: Vec<u8> = conn
            .query_row(
                "SELECT data FROM objects WHERE collection='versions' AND name=?1",
                [name],
                |r| r.get(0),
            )
            .unwrap();
        row_json(&data)
    };
    let a_name = "locations/global/keyRings/t/cryptoKeys/a/v/0000000001";
    let b_name = "locations/global/keyRings/t/cryptoKeys/b/v/0000000001";
    let mut a = get(a_name);
    let b = get(b_name);
    a["material"] = b["material"].clone();
    conn.execute(
        "UPDATE objects SET data=?1 WHERE collection='versions' AND name=?2",
        rusqlite::params![serde_json::to_vec(&a).unwrap(), a_name],
    )
    .unwrap();
    drop(conn);
    // A fresh server process has no cached material.
    let mut s = s;
    s.terminate();
    s.boot();
    let o = s.cli(&["-o", "json", "decrypt", "t/a", "--ciphertext", &ct_a]);
    assert_eq!(cli_code(&o), "INTEGRITY_FAILURE");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("altered or swapped"), "{err}");
    // Key b still works.
    let ct_b = s
        .ok(&["encrypt", "t/b", "--plaintext", "b"])
        .trim()
        .to_string();
    assert_eq!(s.ok(&["decrypt", "t/b", "--ciphertext", &ct_b]), "b");
}

#[test]
fn audit_verify_reports_the_first_broken_link() {
    let mut s = Server::start();
    for r in ["r1", "r2", "r3"] {
        s.ok(&["keyrings", "create", r]);
    }
    let dir = s.dir.to_str().unwrap().to_string();
    let ok = s.cli(&["-o", "json", "audit", "verify", "--data-dir", &dir]);
    assert!(ok.status.success());
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let n = report["records"].as_u64().unwrap();
    assert!(n >= 5, "{report}");
    // Export has one JSON object per record, in order.
    let export = s.ok(&["audit", "export", "--data-dir", &dir]);
    let seqs: Vec<u64> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert!(export.contains("keyRings.create"));
    s.terminate();
    // Edit one record's body.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let body: Vec<u8> = conn
        .query_row("SELECT body FROM audit WHERE seq=3", [], |r| r.get(0))
        .unwrap();
    let edited = String::from_utf8(body).unwrap().replace("\"ok\"", "\"OK\"");
    conn.execute("UPDATE audit SET body=?1 WHERE seq=3", [edited.as_bytes()])
        .unwrap();
    let bad = s.cli(&["-o", "json", "audit", "verify", "--data-dir", &dir]);
    assert!(!bad.status.success());
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["firstBrokenSeq"], 3, "{report}");
    // Put the body back, and remove a record instead.
    let original = edited.replace("\"OK\"", "\"ok\"");
    conn.execute(
        "UPDATE audit SET body=?1 WHERE seq=3",
        [original.as_bytes()],
    )
    .unwrap();
    assert!(
        s.cli(&["audit", "verify", "--data-dir", &dir])
            .status
            .success(),
        "restored chain verifies"
    );
    conn.execute("DELETE FROM audit WHERE seq=2", []).unwrap();
    let bad = s.cli(&["-o", "json", "audit", "verify", "--data-dir", &dir]);
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["firstBrokenSeq"], 2, "{report}");
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let mut s = Server::start();
    s.ok(&["keyrings", "create", "g"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = s.admin();
    // RSA-4096 key generation takes long enough to be in flight when SIGTERM arrives.
    let h = rt.spawn(async move {
        let req = sovra_proto::kms::CreateCryptoKeyRequest {
            purpose: sovra_proto::kms::Purpose::AsymmetricSign,
            version_template: Some(sovra_proto::kms::VersionTemplate {
                algorithm: sovra_proto::kms::Algorithm::RsaSignPss4096Sha256,
                protection_level: Default::default(),
            }),
            rotation_period: None,
            next_rotation_time: None,
            destroy_scheduled_duration: None,
            labels: Default::default(),
            skip_initial_version_creation: false,
            exportable: None,
            release_policy: None,
            key_ops: None,
        };
        client
            .create_crypto_key("locations/global/keyRings/g", "big", &req)
            .await
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    let status = s.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let r = rt.block_on(h).unwrap();
    assert!(r.is_ok(), "the in-flight request finished: {r:?}");
    s.boot();
    assert_eq!(
        s.json(&["keys", "get", "g/big"])["primary"]["state"],
        "ENABLED"
    );
}

#[test]
fn a_shortened_or_deleted_audit_log_is_detected() {
    // The chain alone cannot see a log cut short at its end, deleted whole, or recomputed: the
    // records that remain still link. The HSM-sealed checkpoint of its head can.
    let mut s = Server::start_with(&[("SOVRA_SCHEDULER_INTERVAL_SECS", "1")]);
    for r in ["r1", "r2", "r3"] {
        s.ok(&["keyrings", "create", r]);
    }
    // SIGTERM takes a last checkpoint.
    s.terminate();
    let dir = s.dir.to_str().unwrap().to_string();
    let verify = |s: &Server| {
        let o = s.cli(&["-o", "json", "audit", "verify", "--data-dir", &dir]);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.success(), report)
    };
    let (ok, report) = verify(&s);
    assert!(ok, "{report}");
    let n = report["records"].as_u64().unwrap();
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    // A record that no longer decodes is a broken record, not "store unavailable".
    let body: Vec<u8> = conn
        .query_row("SELECT body FROM audit WHERE seq=2", [], |r| r.get(0))
        .unwrap();
    conn.execute("UPDATE audit SET body='not a blob' WHERE seq=2", [])
        .unwrap();
    let (ok, report) = verify(&s);
    assert!(!ok);
    assert_eq!(report["firstBrokenSeq"], 2, "{report}");
    conn.execute("UPDATE audit SET body=?1 WHERE seq=2", [&body])
        .unwrap();
    assert!(verify(&s).0);
    // The last record removed: the chain still links, the anchor says it was longer.
    let last: (Vec<u8>, Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT prev_hash, hash, body FROM audit WHERE seq=?1",
            [n as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    conn.execute("DELETE FROM audit WHERE seq=?1", [n as i64])
        .unwrap();
    let (ok, report) = verify(&s);
    assert!(!ok, "{report}");
    assert_eq!(report["firstBrokenSeq"], n, "{report}");
    assert!(
        report["problem"]
            .as_str()
            .unwrap()
            .contains("removed from its end"),
        "{report}"
    );
    // Every record removed.
    type Row = (i64, Vec<u8>, Vec<u8>, Vec<u8>);
    let saved: Vec<Row> = {
        let mut st = conn
            .prepare("SELECT seq, prev_hash, hash, body FROM audit ORDER BY seq")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    conn.execute("DELETE FROM audit", []).unwrap();
    let (ok, report) = verify(&s);
    assert!(!ok, "{report}");
    assert_eq!(report["firstBrokenSeq"], 1, "{report}");
    // A server started on the shortened log says so, and its own verify fails too.
    s.boot();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ready: serde_json::Value = rt.block_on(s.admin().get("/readyz")).unwrap();
    assert!(
        ready["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("audit log does not match its anchor")),
        "{ready}"
    );
    let o = s.cli(&["-o", "json", "audit", "verify"]);
    assert!(!o.status.success());
    s.terminate();
    // Put everything back from the copy (dropping what the server wrote meanwhile, its
    // `hsm.open` record): intact again.
    conn.execute("DELETE FROM audit", []).unwrap();
    for (seq, prev, hash, body) in saved {
        conn.execute(
            "INSERT INTO audit (seq, prev_hash, hash, body) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![seq, prev, hash, body],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT OR IGNORE INTO audit (seq, prev_hash, hash, body) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![n as i64, last.0, last.1, last.2],
    )
    .unwrap();
    let (ok, report) = verify(&s);
    assert!(ok, "{report}");
}

#[test]
fn a_database_writer_cannot_append_or_recompute_audit_records() {
    // The chain is keyed under an HSM-held key: a record appended, or a tail recomputed, by
    // someone who can write the database but not use the HSM does not verify, even after the
    // last checkpoint, where the anchor cannot see it.
    let mut s = Server::start();
    for r in ["r1", "r2", "r3"] {
        s.ok(&["keyrings", "create", r]);
    }
    s.terminate();
    let dir = s.dir.to_str().unwrap().to_string();
    let verify = |s: &Server| {
        let o = s.cli(&["-o", "json", "audit", "verify", "--data-dir", &dir]);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.success(), report)
    };
    let (ok, report) = verify(&s);
    assert!(ok, "{report}");
    let n = report["records"].as_u64().unwrap() as i64;
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    type Row = (Vec<u8>, Vec<u8>, Vec<u8>);
    let row = |seq: i64| -> Row {
        conn.query_row(
            "SELECT prev_hash, hash, body FROM audit WHERE seq=?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    // The unkeyed link: SHA-256("sovra-audit-v1" || prev || seq || body).
    let link = |prev: &[u8], seq: i64, body: &[u8]| {
        let mut c = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        c.update(b"sovra-audit-v1");
        c.update(prev);
        c.update(&(seq as u64).to_be_bytes());
        c.update(body);
        c.finish().as_ref().to_vec()
    };
    // 1. A record appended after the anchored head, linked as an unkeyed chain would be.
    let (_, head, _) = row(n);
    let body = br#"{"action":"roles.grant","principal":"mallory","outcome":"ok"}"#.to_vec();
    let hash = link(&head, n + 1, &body);
    conn.execute(
        "INSERT INTO audit (seq, prev_hash, hash, body) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![n + 1, head, hash, body],
    )
    .unwrap();
    let (ok, report) = verify(&s);
    assert!(!ok, "{report}");
    assert_eq!(report["firstBrokenSeq"], n + 1, "{report}");
    assert!(
        report["problem"].as_str().unwrap().contains("keyed hash"),
        "{report}"
    );
    // The server's own check agrees.
    s.boot();
    let o = s.cli(&["-o", "json", "audit", "verify"]);
    assert!(!o.status.success());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["firstBrokenSeq"], n + 1, "{report}");
    s.terminate();
    conn.execute("DELETE FROM audit WHERE seq > ?1", [n])
        .unwrap();
    assert!(verify(&s).0);
    // 2. A record edited in the middle, and every later link recomputed: the edited record is
    // the one reported (the anchor alone would only see that the head changed).
    let saved: Vec<(i64, Row)> = (2..=n).map(|seq| (seq, row(seq))).collect();
    let mut prev = row(1).1;
    for seq in 2..=n {
        let (_, _, mut body) = row(seq);
        if seq == 2 {
            body = br#"{"action":"keyRings.create","outcome":"ok","edited":true}"#.to_vec();
        }
        let hash = link(&prev, seq, &body);
        conn.execute(
            "UPDATE audit SET prev_hash=?2, hash=?3, body=?4 WHERE seq=?1",
            rusqlite::params![seq, prev, hash, body],
        )
        .unwrap();
        prev = hash;
    }
    let (ok, report) = verify(&s);
    assert!(!ok, "{report}");
    assert_eq!(report["firstBrokenSeq"], 2, "{report}");
    for (seq, (prev, hash, body)) in saved {
        conn.execute(
            "UPDATE audit SET prev_hash=?2, hash=?3, body=?4 WHERE seq=?1",
            rusqlite::params![seq, prev, hash, body],
        )
        .unwrap();
    }
    let (ok, report) = verify(&s);
    assert!(ok, "{report}");
}
