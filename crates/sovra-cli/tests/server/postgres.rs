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

#[test]
fn postgres_over_verified_tls_and_no_plaintext_to_a_remote_server() {
    let pg = sovra_testkit::pg::TempPg::start_tls();
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("pg-ca.pem");
    std::fs::write(&ca, pg.ca_pem().unwrap()).unwrap();
    let url = format!("{} sslmode=verify-full", pg.url("sovra_tls"));
    let env = [
        ("SOVRA_STORE_BACKEND", "postgres"),
        ("SOVRA_STORE_URL", url.as_str()),
        ("SOVRA_STORE_CA_FILE", ca.to_str().unwrap()),
    ];
    // The cluster refuses connections without TLS, so this works only over verified TLS.
    let s = Server::start_with(&env);
    s.ok(&["keyrings", "create", "tls"]);
    s.ok(&["keys", "create", "tls/k", "--purpose", "encrypt"]);
    let ct = s
        .ok(&["encrypt", "tls/k", "--plaintext", "over TLS"])
        .trim()
        .to_string();
    assert_eq!(s.ok(&["decrypt", "tls/k", "--ciphertext", &ct]), "over TLS");

    let serve = |env: &[(&str, &str)]| {
        let dir = tmp.path().join("other");
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["serve", "--data-dir"])
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("SOVRA_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    // Without the CA, the server's certificate is not trusted: no start.
    let err = serve(&env[..2]);
    assert!(
        err.contains("cannot open the PostgreSQL store")
            && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    // A server elsewhere without sslmode: refused before any connection is made.
    let err = serve(&[
        ("SOVRA_STORE_BACKEND", "postgres"),
        ("SOVRA_STORE_URL", "postgres://sovra@db.example:5432/sovra"),
    ]);
    assert!(err.contains("sslmode=verify-full"), "{err}");
}
