//! Sovra on a PKCS#11 HSM (SoftHSM2): the location wrapping keys live in the token, nothing
//! sealed sits in the data directory, and what was encrypted survives a restart.

use crate::common::*;
use sovra_testkit::softhsm;

#[test]
fn keys_are_wrapped_inside_a_pkcs11_token() {
    let token = softhsm::Token::new("sovra-test");
    let conf = token.conf();
    let pin_file = token.pin_file();
    let env = [
        ("SOFTHSM2_CONF", conf.to_str().unwrap()),
        ("SOVRA_HSM_BACKEND", "pkcs11"),
        ("SOVRA_PKCS11_MODULE", softhsm::MODULE),
        ("SOVRA_PKCS11_TOKEN_LABEL", "sovra-test"),
        ("SOVRA_PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
    ];
    let mut s = Server::start_with(&env);
    assert!(
        !s.dir.join("hsm").exists(),
        "with a PKCS#11 HSM no key material is sealed in the data directory"
    );
    s.ok(&["keyrings", "create", "p"]);
    s.ok(&["keys", "create", "p/k", "--purpose", "encrypt"]);
    s.ok(&[
        "keys",
        "create",
        "p/sig",
        "--purpose",
        "sign",
        "--algorithm",
        "EC_SIGN_P256_SHA256",
    ]);
    let ct = s
        .ok(&["encrypt", "p/k", "--plaintext", "inside the token"])
        .trim()
        .to_string();
    let sig = s
        .ok(&["sign", "p/sig", "--data", "hello"])
        .trim()
        .to_string();

    // After a restart the token still holds the location key: old ciphertexts decrypt.
    s.terminate();
    s.boot();
    assert_eq!(
        s.ok(&["decrypt", "p/k", "--ciphertext", &ct]),
        "inside the token"
    );
    assert_eq!(
        s.ok(&["verify", "p/sig", "--data", "hello", "--signature", &sig])
            .trim(),
        "valid"
    );
    // Material swapped between two keys' rows fails the AAD-bound unwrap in the HSM.
    s.ok(&["keys", "create", "p/k2", "--purpose", "encrypt"]);
    s.ok(&["encrypt", "p/k2", "--plaintext", "x"]);
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
    let a_name = "locations/global/keyRings/p/cryptoKeys/k/v/0000000001";
    let mut a = get(a_name);
    a["material"] =
        get("locations/global/keyRings/p/cryptoKeys/k2/v/0000000001")["material"].clone();
    conn.execute(
        "UPDATE objects SET data=?1 WHERE collection='versions' AND name=?2",
        rusqlite::params![serde_json::to_vec(&a).unwrap(), a_name],
    )
    .unwrap();
    drop(conn);
    s.terminate();
    s.boot();
    let o = s.cli(&["-o", "json", "decrypt", "p/k", "--ciphertext", &ct]);
    assert_eq!(
        cli_code(&o),
        "INTEGRITY_FAILURE",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The same data directory with another token (no wrapping key for the location) or a
    // wrong PIN does not start, and says why.
    s.terminate();
    let other = softhsm::Token::new("other");
    let serve = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["serve", "--data-dir"])
            .arg(&s.dir)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("SOVRA_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let tmp = tempfile::tempdir().unwrap();
    let wrong_pin = tmp.path().join("wrong-pin");
    std::fs::write(&wrong_pin, "00000000\n").unwrap();
    let mut bad = env;
    bad[4] = ("SOVRA_PKCS11_PIN_FILE", wrong_pin.to_str().unwrap());
    let err = serve(&bad);
    assert!(err.contains("cannot log in"), "{err}");
    let other_conf = other.conf();
    let other_pin = other.pin_file();
    let err = serve(&[
        ("SOFTHSM2_CONF", other_conf.to_str().unwrap()),
        ("SOVRA_HSM_BACKEND", "pkcs11"),
        ("SOVRA_PKCS11_MODULE", softhsm::MODULE),
        ("SOVRA_PKCS11_TOKEN_LABEL", "other"),
        ("SOVRA_PKCS11_PIN_FILE", other_pin.to_str().unwrap()),
    ]);
    assert!(err.contains("holds no wrapping key"), "{err}");
}
