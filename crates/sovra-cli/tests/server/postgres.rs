//! Two stateless nodes over one PostgreSQL database and one HSM (high availability): a key
//! created on one node is used on the other; both append to one audit chain.

use crate::common::*;

#[test]
fn two_nodes_share_state_through_postgres() {
    let pg = sovra_testkit::pg::TempPg::start();
    let url = pg.url("sovra_ha");
    let env = [
        ("SOVRA_STORE_BACKEND", "postgres"),
        ("SOVRA_STORE_URL", url.as_str()),
        ("SOVRA_CACHE_METADATA_TTL_MS", "200"),
    ];
    let a = Server::start_with(&env);
    assert!(
        !a.dir.join("sovra.db").exists(),
        "no SQLite file with the PostgreSQL store"
    );
    // Node B: its own data directory with a copy of node A's HSM (the shared HSM).
    let tmp = tempfile::tempdir().unwrap();
    let b_dir = tmp.path().join("b");
    std::fs::create_dir_all(b_dir.join("hsm")).unwrap();
    for f in ["root.sealed", "keys.json", "unseal.key"] {
        std::fs::copy(a.dir.join("hsm").join(f), b_dir.join("hsm").join(f)).unwrap();
    }
    let mut b = Server::start_at(&b_dir, &env);
    assert!(
        !b.banner
            .iter()
            .any(|l| l.trim_start().starts_with("sovra_")),
        "node B finds the existing admin and prints no token"
    );
    b.token = a.token.clone();

    a.ok(&["keyrings", "create", "ha"]);
    a.ok(&["keys", "create", "ha/k", "--purpose", "encrypt"]);
    let ct = a
        .ok(&["encrypt", "ha/k", "--plaintext", "from node A"])
        .trim()
        .to_string();
    assert_eq!(
        b.ok(&["decrypt", "ha/k", "--ciphertext", &ct]),
        "from node A"
    );
    b.ok(&["keys", "rotate", "ha/k"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = a.json(&["encrypt", "ha/k", "--plaintext", "x"]);
    assert!(
        e["name"].as_str().unwrap().ends_with("/2"),
        "node A sees node B's rotation: {e}"
    );
    // Disabling on one node stops use on the other within the cache TTL.
    b.json(&["versions", "disable", "ha/k", "2"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        cli_code(&a.cli(&["-o", "json", "encrypt", "ha/k", "--plaintext", "x"])),
        "KEY_VERSION_NOT_ENABLED"
    );
    // One audit chain for both nodes.
    let report = a.json(&["audit", "verify"]);
    assert_eq!(report["ok"], true);
    let log = b.ok(&["audit", "export"]);
    assert!(log.contains("cryptoKeys.rotate") && log.contains("keyRings.create"));
    b.terminate();
}
