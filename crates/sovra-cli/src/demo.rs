//! `sovra demo`: the whole secure-key-release flow (DESIGN.md ① to ⑦) on this machine, against
//! an embedded server in a temporary directory, with a simulated SEV-SNP guest, and, when swtpm
//! and tpm2-tools are installed, again on a software TPM (EK certificate + credential
//! activation). Prints each step, its result and its time, and ends by proving that the released
//! key is the stored one: the guest decrypts what the server encrypted.

use crate::context::{CliError, Global, Result};
use crate::output::say;
use serde_json::{Value, json};
use sovra_agent::collect::SimSnpCollector;
use sovra_agent::simsnp::SimulatedSnp;
use sovra_client::{Client, ClientConfig};
use std::time::Instant;

fn local(e: impl std::fmt::Display) -> CliError {
    CliError::Local(e.to_string())
}

fn step(t: &mut Instant, what: &str, detail: &str) {
    say(&format!(
        "   {:<52} {:>8.1} ms  {detail}",
        what,
        t.elapsed().as_secs_f64() * 1000.0
    ));
    *t = Instant::now();
}

/// Runs the demo.
pub async fn run(_g: &Global) -> Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "sovra-demo-{}-{}",
        std::process::id(),
        sovra_crypto::random::hex_id(4).map_err(local)?
    ));
    let result = demo(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(dir: &std::path::Path) -> Result<()> {
    let mut t = Instant::now();
    say("Sovra demo: secure key release to a (simulated) SEV-SNP guest");
    say("");
    say("Setting up");
    let mut cfg = sovra_server::config::Config {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().map_err(local)?,
        ..Default::default()
    };
    cfg.log.level = "error".into();
    let opened = sovra_server::app::open(&cfg)
        .await
        .map_err(CliError::Local)?;
    let server = sovra_server::serve::Server::bind(&cfg, &opened)
        .await
        .map_err(CliError::Local)?;
    let addr = server.local_addr().map_err(CliError::Local)?;
    let url = format!("https://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let ca = opened
        .tls
        .as_ref()
        .map(|f| std::fs::read(&f.ca_cert))
        .transpose()
        .map_err(local)?;
    let admin_token = opened
        .new_admin_token
        .clone()
        .ok_or_else(|| local("no admin token"))?;
    let client = |token: &str| {
        Client::new(ClientConfig {
            url: url.clone(),
            token: Some(token.to_string()),
            ca_pem: ca.clone(),
            ..Default::default()
        })
    };
    let admin = client(&admin_token)?;
    step(
        &mut t,
        "embedded server started (SQLite, software HSM, TLS)",
        &url,
    );

    let sim = SimulatedSnp::generate().map_err(|e| local(e.to_string()))?;
    admin
        .import_collateral(&sovra_proto::attest::ImportCollateralRequest {
            kind: "trust-anchor".into(),
            platform: Some("amd".into()),
            content: sovra_proto::b64::encode(sim.ark_pem.as_bytes()),
        })
        .await?;
    step(
        &mut t,
        "simulated SNP platform; root trusted as an anchor",
        "test chain ARK→ASK→VCEK, NOT genuine AMD",
    );

    // A simulated root is an operator anchor: its tokens never carry the compliance claim (that
    // is issued only for pinned vendor roots), so the demo's policy names the test root
    // itself. A real deployment requires `x-ms-compliance-status` instead.
    let sim_root = sovra_attest::x509::certs_from_pem_or_der(sim.ark_pem.as_bytes())
        .ok()
        .and_then(|c| c.into_iter().next())
        .map(|d| format!("sha256:{}", sovra_attest::x509::sha256_hex(&d)))
        .ok_or_else(|| local("the simulated root is not a certificate"))?;
    let policy = json!({"version": "1.0.0", "requireNonce": true, "anyOf": [{"authority": url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false},
        {"claim": "x-sovra-trust-root", "equals": sim_root}]}]});
    admin
        .create_key_ring("global", "demo", &Default::default())
        .await?;
    let key_name = exportable_key(&admin, "secret", policy).await?;
    let plaintext = b"the data only an attested guest may read";
    let ct = admin.encrypt(&key_name, plaintext, None).await?;
    step(
        &mut t,
        "exportable AES-256 key with a release policy",
        &key_name,
    );

    let tok = admin
        .create_token(&sovra_proto::admin::CreateTokenRequest {
            principal: "workload".into(),
            description: "demo workload".into(),
            ttl: None,
        })
        .await?;
    admin
        .create_role_binding(&sovra_proto::admin::CreateRoleBindingRequest {
            principal: "workload".into(),
            role: sovra_proto::admin::Role::ReleaseUser,
            scope: "locations/global/keyRings/demo".into(),
        })
        .await?;
    let workload = client(&tok.token)?;
    step(
        &mut t,
        "workload token with the Release User role",
        "principal workload",
    );
    say("");
    say("The flow, inside the guest");
    let collector = SimSnpCollector(sim);
    let released = sovra_agent::flow::release(&workload, &key_name, &collector, |s| {
        say(&format!(
            "{}  {:<52} {:>8.1} ms  {}",
            s.number, s.name, s.millis, s.detail
        ));
    })
    .await
    .map_err(|e| local(e.to_string()))?;
    t = Instant::now();
    say("");
    let aes = sovra_crypto::LoadedKey::load(
        sovra_proto::kms::Algorithm::Aes256Gcm,
        released.material.expose(),
    )
    .map_err(local)?;
    let blob = sovra_proto::b64::decode(&ct.ciphertext).map_err(local)?;
    let opened_pt = sovra_crypto::symmetric::open(&aes, b"", &blob).map_err(|e| {
        local(format!(
            "the released key does not decrypt the server's ciphertext: {e}"
        ))
    })?;
    if opened_pt.expose() != plaintext {
        return Err(local("the released key decrypted something else"));
    }
    step(
        &mut t,
        "the guest decrypted the server's ciphertext",
        &String::from_utf8_lossy(opened_pt.expose()),
    );
    say("");
    say("Released key == stored key: proven by decryption. Every step above is in the audit log.");
    if ["swtpm", "swtpm_setup", "tpm2_createek"]
        .iter()
        .all(|b| on_path(b))
    {
        say("");
        say(
            "The same flow on a TPM-only machine (swtpm found: a software TPM with an EK certificate)",
        );
        tpm_demo(&admin, &workload, &url, dir).await?;
    }
    let _ = stop.send(());
    let _ = handle.await;
    Ok(())
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn tpm_demo(
    admin: &Client,
    workload: &Client,
    url: &str,
    dir: &std::path::Path,
) -> Result<()> {
    use std::process::Command;
    let mut t = Instant::now();
    let state = dir.join("tpm");
    std::fs::create_dir_all(&state).map_err(local)?;
    let o = Command::new("swtpm_setup")
        .args([
            "--tpm2",
            "--create-ek-cert",
            "--lock-nvram",
            "--overwrite",
            "--tpmstate",
        ])
        .arg(&state)
        .output()
        .map_err(local)?;
    if !o.status.success() {
        return Err(local(format!(
            "swtpm_setup: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let port = loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(local)?
            .local_addr()
            .map_err(local)?
            .port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let _tpm = Child(
        Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .args([
                "--server",
                &format!("type=tcp,port={port}"),
                "--ctrl",
                &format!("type=tcp,port={}", port + 1),
            ])
            .args(["--flags", "not-need-init,startup-clear"])
            .spawn()
            .map_err(local)?,
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    step(
        &mut t,
        "software TPM manufactured, EK certificate in NV",
        &format!("swtpm on port {port}"),
    );
    let ca = "/var/lib/swtpm-localca";
    for (kind, file) in [
        ("trust-anchor", "swtpm-localca-rootca-cert.pem"),
        ("certs", "issuercert.pem"),
    ] {
        let content = std::fs::read(format!("{ca}/{file}"))
            .map_err(|e| local(format!("{ca}/{file}: {e}")))?;
        admin
            .import_collateral(&sovra_proto::attest::ImportCollateralRequest {
                kind: kind.into(),
                platform: Some("tpm".into()),
                content: sovra_proto::b64::encode(&content),
            })
            .await?;
    }
    step(
        &mut t,
        "the TPM vendor's EK CA trusted (swtpm's local CA)",
        ca,
    );
    let policy = json!({"version": "1.0.0", "requireNonce": true, "anyOf": [{"authority": url, "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "tpm"},
        {"claim": "pcrs.sha256.16", "equals": "00".repeat(32)}]}]});
    let key_name = exportable_key(admin, "tpm-secret", policy).await?;
    let plaintext = b"sealed to a measured boot";
    let ct = admin.encrypt(&key_name, plaintext, None).await?;
    step(
        &mut t,
        "exportable key; policy: a TPM, PCR 16 untouched",
        &key_name,
    );
    let collector = sovra_agent::tpm::TpmCollector::open_with(Some(format!(
        "swtpm:host=127.0.0.1,port={port}"
    )))
    .map_err(|e| local(e.to_string()))?;
    let released = sovra_agent::flow::release(workload, &key_name, &collector, |s| {
        say(&format!(
            "{}  {:<52} {:>8.1} ms  {}",
            s.number, s.name, s.millis, s.detail
        ));
    })
    .await
    .map_err(|e| local(e.to_string()))?;
    t = Instant::now();
    let aes = sovra_crypto::LoadedKey::load(
        sovra_proto::kms::Algorithm::Aes256Gcm,
        released.material.expose(),
    )
    .map_err(local)?;
    let blob = sovra_proto::b64::decode(&ct.ciphertext).map_err(local)?;
    let pt = sovra_crypto::symmetric::open(&aes, b"", &blob).map_err(local)?;
    if pt.expose() != plaintext {
        return Err(local("the released key decrypted something else"));
    }
    say("");
    step(
        &mut t,
        "the TPM machine decrypted the server's ciphertext",
        &String::from_utf8_lossy(pt.expose()),
    );
    Ok(())
}

/// Creates an exportable AES key `id` in the demo ring with release policy `policy`; its name.
async fn exportable_key(admin: &sovra_client::Client, id: &str, policy: Value) -> Result<String> {
    let req: sovra_proto::kms::CreateCryptoKeyRequest = serde_json::from_value(
        json!({"purpose": "ENCRYPT_DECRYPT", "exportable": true, "releasePolicy": {"policy": policy}}),
    )
    .map_err(|e| local(e.to_string()))?;
    Ok(admin
        .create_crypto_key("locations/global/keyRings/demo", id, &req)
        .await?
        .name)
}
