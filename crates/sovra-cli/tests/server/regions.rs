//! Regions: two nodes over one PostgreSQL database, each with its own software HSM serving its
//! own locations. The default location (`global`) is multi-region: its wrapping key is in both
//! HSMs (brought to the second node by the security domain); each regional location's key is
//! only in its region's HSM.

use crate::common::*;
use crate::security_domain::admin;
use std::process::Command;

#[test]
fn each_node_serves_only_its_locations_over_one_database() {
    let pg = sovra_testkit::pg::TempPg::start();
    let url = pg.url("sovra_regions");
    let store = [
        ("SOVRA_STORE_BACKEND", "postgres"),
        ("SOVRA_STORE_URL", url.as_str()),
        ("SOVRA_CACHE_METADATA_TTL_MS", "200"),
    ];
    let with = |locations: &'static str| {
        let mut e = store.to_vec();
        e.push(("SOVRA_LOCATIONS", locations));
        e
    };
    let eu = Server::start_with(&with("global,eu-west"));
    eu.ok(&["locations", "create", "eu-west"]);
    // A node does not create (nor hold) a location it does not serve.
    let o = eu.cli(&["-o", "json", "locations", "create", "us-east"]);
    assert_eq!(cli_code(&o), "LOCATION_NOT_SERVED");
    eu.ok(&["keyrings", "create", "g"]);
    eu.ok(&["keys", "create", "g/k", "--purpose", "encrypt"]);
    eu.ok(&["--location", "eu-west", "keyrings", "create", "r"]);
    eu.ok(&[
        "--location",
        "eu-west",
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
    ]);
    let eu_ct = eu
        .ok(&[
            "--location",
            "eu-west",
            "encrypt",
            "r/k",
            "--plaintext",
            "in europe",
        ])
        .trim()
        .to_string();

    // The second region's node: the security domain brings the multi-region location's key,
    // and only that one (its `locations` leave eu-west out).
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let [a, b, c] = ["alice", "bob", "carol"].map(|n| admin(w, n));
    let sd = w.join("sd.json");
    eu.ok(&[
        "security-domain",
        "download",
        "--cert",
        a.cert.to_str().unwrap(),
        "--cert",
        b.cert.to_str().unwrap(),
        "--cert",
        c.cert.to_str().unwrap(),
        "--quorum",
        "2",
        "--out",
        sd.to_str().unwrap(),
    ]);
    let us_dir = w.join("us");
    let mut upload = Command::new(BIN);
    upload.args([
        "-o",
        "json",
        "security-domain",
        "upload",
        sd.to_str().unwrap(),
    ]);
    upload.args([
        "--key",
        a.key.to_str().unwrap(),
        "--key",
        b.key.to_str().unwrap(),
    ]);
    upload.args(["--data-dir", us_dir.to_str().unwrap()]);
    upload.env_remove("SOVRA_CONFIG");
    for (k, v) in with("global,us-east") {
        upload.env(k, v);
    }
    let o = upload.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["locations"], serde_json::json!(["global"]));
    let keys = std::fs::read_to_string(us_dir.join("hsm/keys.json")).unwrap();
    assert!(!keys.contains("eu-west"), "{keys}");

    let mut us = Server::start_at(&us_dir, &with("global,us-east"));
    us.token = eu.token.clone();
    us.ok(&["locations", "create", "us-east"]);
    us.ok(&["--location", "us-east", "keyrings", "create", "r"]);
    us.ok(&[
        "--location",
        "us-east",
        "keys",
        "create",
        "r/k",
        "--purpose",
        "encrypt",
    ]);
    let us_ct = us
        .ok(&[
            "--location",
            "us-east",
            "encrypt",
            "r/k",
            "--plaintext",
            "in america",
        ])
        .trim()
        .to_string();

    // The multi-region location works on both nodes.
    let g_ct = eu
        .ok(&["encrypt", "g/k", "--plaintext", "everywhere"])
        .trim()
        .to_string();
    assert_eq!(
        us.ok(&["decrypt", "g/k", "--ciphertext", &g_ct]),
        "everywhere"
    );

    // A regional key is used only in its region; elsewhere a clear error names the location.
    let o = us.cli(&[
        "-o",
        "json",
        "--location",
        "eu-west",
        "decrypt",
        "r/k",
        "--ciphertext",
        &eu_ct,
    ]);
    assert_eq!(cli_code(&o), "LOCATION_NOT_SERVED");
    assert!(String::from_utf8_lossy(&o.stderr).contains("eu-west"));
    let o = eu.cli(&[
        "-o",
        "json",
        "--location",
        "us-east",
        "decrypt",
        "r/k",
        "--ciphertext",
        &us_ct,
    ]);
    assert_eq!(cli_code(&o), "LOCATION_NOT_SERVED");
    assert!(String::from_utf8_lossy(&o.stderr).contains("us-east"));
    let o = us.cli(&[
        "-o",
        "json",
        "--location",
        "eu-west",
        "keys",
        "rotate",
        "r/k",
    ]);
    assert_eq!(cli_code(&o), "LOCATION_NOT_SERVED");
    assert_eq!(
        eu.ok(&[
            "--location",
            "eu-west",
            "decrypt",
            "r/k",
            "--ciphertext",
            &eu_ct
        ]),
        "in europe"
    );
    assert_eq!(
        us.ok(&[
            "--location",
            "us-east",
            "decrypt",
            "r/k",
            "--ciphertext",
            &us_ct
        ]),
        "in america"
    );
    // Both nodes append to one audit chain.
    assert_eq!(us.json(&["audit", "verify"])["ok"], true);
    us.terminate();
}
