//! The security domain: exported through the API encrypted to three administrators with quorum
//! two, restored offline into a fresh node over the same database with two of their keys, and
//! nothing less.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An administrator: an RSA key pair and a self-signed certificate for it, as files.
pub struct Admin {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// An administrator with an RSA-2048 key, as `dir/{name}.pem` and `dir/{name}.key`.
pub fn admin(dir: &Path, name: &str) -> Admin {
    use aws_lc_rs::encoding::AsDer;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec());
    let signer =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("administrator {name}"));
    let cert = params.self_signed(&signer).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signer.serialize_pem()).unwrap();
    Admin {
        cert: cert_path,
        key: key_path,
    }
}

fn sovra(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SOVRA_CONFIG")
        .env_remove("SOVRA_DATA_DIR")
        .output()
        .unwrap()
}

/// `sovra security-domain upload` (`-o json` when `json`, else with progress on stderr).
fn upload_as(json: bool, file: &Path, keys: &[&Path], data_dir: &Path) -> Output {
    let mut args = vec![
        "-o".to_string(),
        if json { "json" } else { "human" }.into(),
        "security-domain".into(),
        "upload".into(),
        file.display().to_string(),
    ];
    for k in keys {
        args.push("--key".into());
        args.push(k.display().to_string());
    }
    args.push("--data-dir".into());
    args.push(data_dir.display().to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    sovra(&a)
}

fn upload(file: &Path, keys: &[&Path], data_dir: &Path) -> Output {
    upload_as(true, file, keys, data_dir)
}

/// `sovra security-domain download` (`-o json` when `json`, else with progress on stderr).
fn download_as(json: bool, s: &Server, certs: &[&Path], quorum: &str, out: &Path) -> Output {
    let mut args = vec![
        "-o".to_string(),
        if json { "json" } else { "human" }.into(),
        "security-domain".into(),
        "download".into(),
    ];
    for c in certs {
        args.push("--cert".into());
        args.push(c.display().to_string());
    }
    args.extend(["--quorum".into(), quorum.into(), "--out".into()]);
    args.push(out.display().to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cli(&a)
}

fn download(s: &Server, certs: &[&Path], quorum: &str, out: &Path) -> Output {
    download_as(true, s, certs, quorum, out)
}

/// A fresh node's data directory holding only a copy of `s`'s database (stopped).
fn node_over_database_of(s: &Server, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["sovra.db", "sovra.db-wal", "sovra.db-shm"] {
        let from = s.dir.join(f);
        if from.exists() {
            std::fs::copy(&from, dir.join(f)).unwrap();
        }
    }
}

#[test]
fn a_quorum_of_administrators_restores_a_new_node_and_fewer_cannot() {
    let mut s = Server::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let [a, b, c] = ["alice", "bob", "carol"].map(|n| admin(w, n));
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&["keys", "create", "r/data", "--purpose", "encrypt"]);
    s.ok(&["keys", "create", "r/signer", "--purpose", "sign"]);
    let ct = s
        .ok(&["encrypt", "r/data", "--plaintext", "kept across nodes"])
        .trim()
        .to_string();
    let public = s.ok(&["public-key", "r/signer"]);

    // Only an administrator exports it, and only to 3+ distinct RSA keys of 2048+ bits.
    let user = s.json(&["tokens", "create", "--principal", "ops"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "ops",
        "--role",
        "crypto-officer",
    ]);
    let sd = w.join("sd.json");
    let o = s.cli_as(
        &user,
        &[
            "-o",
            "json",
            "security-domain",
            "download",
            "--cert",
            &a.cert.display().to_string(),
            "--cert",
            &b.cert.display().to_string(),
            "--cert",
            &c.cert.display().to_string(),
            "--quorum",
            "2",
            "--out",
            &sd.display().to_string(),
        ],
    );
    assert_eq!(cli_code(&o), "PERMISSION_DENIED");
    assert!(!sd.exists());
    for (certs, quorum, why) in [
        (vec![&a.cert, &b.cert], "2", "two certificates"),
        (vec![&a.cert, &b.cert, &c.cert], "1", "quorum 1"),
        (
            vec![&a.cert, &b.cert, &c.cert],
            "4",
            "quorum above the holders",
        ),
        (
            vec![&a.cert, &b.cert, &a.cert],
            "2",
            "the same certificate twice",
        ),
        (
            vec![&a.cert, &b.cert, &a.key],
            "2",
            "a private key for a certificate",
        ),
    ] {
        let certs: Vec<&Path> = certs.iter().map(|p| p.as_path()).collect();
        let o = download(&s, &certs, quorum, &sd);
        assert_eq!(cli_code(&o), "INVALID_ARGUMENT", "{why}");
        assert!(!sd.exists(), "{why}");
    }
    let o = download_as(false, &s, &[&a.cert, &b.cert, &c.cert], "2", &sd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let progress = String::from_utf8_lossy(&o.stderr);
    assert!(
        progress.contains("share for") && progress.contains("wrote"),
        "{progress}"
    );
    let text = std::fs::read_to_string(&sd).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["quorum"], 2);
    assert_eq!(doc["shares"].as_array().unwrap().len(), 3);
    // It is never overwritten.
    let o = download(&s, &[&a.cert, &b.cert, &c.cert], "2", &sd);
    assert!(!o.status.success());
    // Once per deployment by default: an administrator token alone cannot take the root
    // out again (to keys of its own choosing); that needs the node's configuration.
    let again = w.join("again.json");
    let o = download(&s, &[&a.cert, &b.cert, &c.cert], "2", &again);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_ALREADY_DOWNLOADED");
    assert!(!again.exists());

    // The node is lost; a new one gets the database (not the data directory).
    s.terminate();
    let node = w.join("node2");
    node_over_database_of(&s, &node);
    // Without the security domain it does not start, and says what is needed.
    let o = sovra(&[
        "serve",
        "--data-dir",
        &node.display().to_string(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sovra security-domain upload"), "{err}");

    // Fewer than the quorum, a stranger's key, the same key twice, an altered file: refused
    // with a code, and nothing restored.
    let stranger = admin(w, "mallory");
    let o = upload(&sd, &[&a.key], &node);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_QUORUM_NOT_MET");
    let o = upload(&sd, &[&a.key, &stranger.key], &node);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_QUORUM_NOT_MET");
    let o = upload(&sd, &[&b.key, &b.key], &node);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_QUORUM_NOT_MET");
    let mut altered = doc.clone();
    altered["quorum"] = serde_json::json!(3);
    let bad = w.join("altered.json");
    std::fs::write(&bad, altered.to_string()).unwrap();
    let o = upload(&bad, &[&a.key, &b.key, &c.key], &node);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_INVALID");
    assert!(
        !node.join("hsm/keys.json").exists(),
        "a refused upload restores nothing"
    );

    // Another deployment's security domain does not fit this database.
    let mut other = Server::start();
    let other_sd = w.join("other.json");
    let o = download(&other, &[&a.cert, &b.cert, &c.cert], "2", &other_sd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    other.terminate();
    let o = upload(&other_sd, &[&a.key, &b.key], &node);
    assert_eq!(cli_code(&o), "SECURITY_DOMAIN_INVALID");
    assert!(!node.join("hsm/keys.json").exists());

    // Two of the three: restored, with progress, and the node serves the same keys.
    let o = upload_as(false, &sd, &[&c.key, &a.key], &node);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let progress = String::from_utf8_lossy(&o.stderr);
    assert!(
        progress.contains("share 1/2") && progress.contains("share 2/2"),
        "{progress}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("global"));
    // A second upload over a node that holds keys is refused.
    let o = upload(&sd, &[&a.key, &b.key], &node);
    assert_eq!(cli_code(&o), "ALREADY_EXISTS");

    let mut n2 = Server::start_at(&node, &[]);
    n2.token = s.token.clone();
    let clear = n2.ok(&["decrypt", "r/data", "--ciphertext", &ct]);
    assert_eq!(clear.trim(), "kept across nodes");
    assert_eq!(n2.ok(&["public-key", "r/signer"]), public);
    // Both ends are in the one audit log, with the certificates involved.
    let log = n2.ok(&["audit", "export"]);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .collect();
    let down = events
        .iter()
        .find(|e| e["action"] == "securityDomain.download" && e["outcome"] == "ok")
        .expect("the download is audited");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "securityDomain.download"
                && e["outcome"] == "denied"
                && e["principal"] == "ops"),
        "the refused attempt is audited too"
    );
    assert_eq!(down["detail"]["quorum"], 2);
    assert_eq!(down["detail"]["certificates"].as_array().unwrap().len(), 3);
    let up = events
        .iter()
        .find(|e| e["action"] == "securityDomain.upload")
        .expect("the upload is audited");
    assert_eq!(up["detail"]["openedWith"].as_array().unwrap().len(), 2);
    assert!(n2.ok(&["audit", "verify"]).contains("intact"));
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "securityDomain.download"
                && e["outcome"] == "denied"
                && e["code"] == "SECURITY_DOMAIN_ALREADY_DOWNLOADED"),
        "the refused second download is audited"
    );
    // The operator allows more downloads in the node's configuration.
    n2.terminate();
    n2.env = vec![(
        "SOVRA_HSM_SECURITY_DOMAIN_DOWNLOADS".into(),
        "always".into(),
    )];
    n2.boot();
    let o = download(&n2, &[&a.cert, &b.cert, &c.cert], "2", &again);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `sovra serve` on `dir`, its stdout read line by line.
struct Node {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Node {
    fn start(dir: &Path) -> Node {
        use std::io::BufRead;
        let mut child = Command::new(BIN)
            .args(["serve", "--data-dir", &dir.display().to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .env("SOVRA_LOG_LEVEL", "warn")
            .env_remove("SOVRA_CONFIG")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(|l| l.ok()) {
                let _ = tx.send(l);
            }
        });
        Node { child, lines }
    }

    /// Waits for a line starting with `prefix` and returns the URL after it.
    fn url_after(&self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line starting with {prefix:?}"));
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.split(':').take(3).collect::<Vec<_>>().join(":");
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI against `url` (CA of `dir`), with `token`.
fn cli_at(url: &str, dir: &Path, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SOVRA_URL", url)
        .env("SOVRA_CA_CERT", dir.join("tls/ca.pem"))
        .env("SOVRA_TOKEN", token)
        .env_remove("SOVRA_LOCATION")
        .output()
        .unwrap()
}

#[test]
fn a_node_sealed_by_a_quorum_starts_only_when_enough_administrators_unseal_it() {
    let mut s = Server::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let [a, b, c] = ["alice", "bob", "carol"].map(|n| admin(w, n));
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&["keys", "create", "r/data", "--purpose", "encrypt"]);
    let ct = s
        .ok(&["encrypt", "r/data", "--plaintext", "sealed away"])
        .trim()
        .to_string();
    s.terminate();
    let dir = s.dir.clone();
    let init = |certs: &[&Path], quorum: &str| {
        let mut args = vec![
            "-o".to_string(),
            "json".into(),
            "unseal".into(),
            "init".into(),
        ];
        for c in certs {
            args.extend(["--cert".into(), c.display().to_string()]);
        }
        args.extend(["--quorum".into(), quorum.into()]);
        args.extend(["--data-dir".into(), dir.display().to_string()]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        sovra(&a)
    };
    assert_eq!(
        cli_code(&init(&[&a.cert, &b.cert], "2")),
        "INVALID_ARGUMENT"
    );
    let o = init(&[&a.cert, &b.cert, &c.cert], "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !dir.join("hsm/unseal.key").exists(),
        "the unseal key beside the database is gone"
    );
    assert_eq!(
        cli_code(&init(&[&a.cert, &b.cert, &c.cert], "2")),
        "ALREADY_EXISTS"
    );
    // Offline commands need the quorum too now.
    let o = sovra(&["admin", "recover", "--data-dir", &dir.display().to_string()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("quorum"));

    let node = Node::start(&dir);
    let url = node.url_after("Sovra is sealed on ");
    let at = |args: &[&str]| cli_at(&url, &dir, &s.token, args);
    // Sealed: nothing is served, not even to the administrator's token.
    assert_eq!(cli_code(&at(&["-o", "json", "whoami"])), "SEALED");
    let st: serde_json::Value =
        serde_json::from_slice(&at(&["-o", "json", "unseal", "status"]).stdout).unwrap();
    assert_eq!(
        st,
        serde_json::json!({"sealed": true, "quorum": 2, "received": 0})
    );
    // One source holding connections open gets no more than its share of the sealed node
    // (here the same address as the administrators, to show the limit; another address is
    // unaffected), and the node serves again once they close.
    let addr = url.trim_start_matches("https://").to_string();
    let held: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!at(&["unseal", "status"]).status.success());
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(at(&["unseal", "status"]).status.success());
    // A stranger's key, a forged share: refused, and they count for nothing.
    let stranger = admin(w, "mallory");
    let key_arg = |k: &Path| k.display().to_string();
    let o = at(&[
        "-o",
        "json",
        "unseal",
        "submit",
        "--key",
        &key_arg(&stranger.key),
    ]);
    assert_eq!(cli_code(&o), "UNSEAL_SHARE_INVALID");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = sovra_client::Client::new(sovra_client::ClientConfig {
        url: url.clone(),
        ca_pem: Some(std::fs::read(dir.join("tls/ca.pem")).unwrap()),
        ..Default::default()
    })
    .unwrap();
    let forged = rt.block_on(client.submit_unseal_share(
        &sovra_proto::security_domain::SubmitUnsealShareRequest {
            share: sovra_proto::b64::encode(&[1u8; 33]),
        },
    ));
    assert_eq!(code(forged), "UNSEAL_SHARE_INVALID");
    // One administrator, twice: still one share.
    for _ in 0..2 {
        let o = at(&["-o", "json", "unseal", "submit", "--key", &key_arg(&a.key)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (v["sealed"].clone(), v["received"].clone()),
            (true.into(), 1.into())
        );
    }
    assert_eq!(cli_code(&at(&["-o", "json", "whoami"])), "SEALED");
    // The second administrator: the node unseals and serves on the same address.
    let o = at(&["-o", "json", "unseal", "submit", "--key", &key_arg(&c.key)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sealed"], false);
    assert_eq!(node.url_after("Sovra is listening on "), url);
    let o = at(&["decrypt", "r/data", "--ciphertext", &ct]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "sealed away");
    let log = String::from_utf8(at(&["audit", "export"]).stdout).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .collect();
    let sealed = events
        .iter()
        .find(|e| e["action"] == "hsm.sealByQuorum")
        .expect("sealing is audited");
    assert_eq!(sealed["detail"]["quorum"], 2);
    let opened = events
        .iter()
        .rev()
        .find(|e| e["action"] == "hsm.open")
        .unwrap();
    let how = opened["detail"]["opened"].as_str().unwrap();
    assert!(how.contains("quorum"), "{how}");
    drop(b);
}
