//! Credential activation against a real TPM implementation: swtpm with tpm2-tools. Sovra's
//! MakeCredential output must be accepted by TPM2_ActivateCredential and return the secret, and
//! only for the AK it was made for. Needs the Debian packages swtpm, swtpm-tools and tpm2-tools
//! (`.ci/run` installs them).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::expect_used
)]

use sovra_attest::tpm::credential::make_credential;
use sovra_attest::tpm::structs::parse_public;
use std::path::Path;
use std::process::{Child, Command};

struct Swtpm(Child);

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

fn tool(dir: &Path, tcti: &str, args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env("TPM2TOOLS_TCTI", tcti)
        .output()
        .unwrap_or_else(|e| panic!("{} is missing ({e}): install tpm2-tools", args[0]))
}

fn ok(dir: &Path, tcti: &str, args: &[&str]) {
    let o = tool(dir, tcti, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn swtpm_activates_sovras_credential_only_for_the_right_ak() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("state")).unwrap();
    // The swtpm TCTI expects the control channel on the next port.
    let (port, ctrl) = loop {
        let a = free_port();
        if a < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", a + 1)).is_ok() {
            break (a, a + 1);
        }
    };
    let child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", dir.join("state").display()))
        .args([
            "--server",
            &format!("type=tcp,port={port}"),
            "--ctrl",
            &format!("type=tcp,port={ctrl}"),
        ])
        .args(["--flags", "not-need-init,startup-clear"])
        .spawn()
        .expect("swtpm is missing: install swtpm");
    let _guard = Swtpm(child);
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ok(
        dir,
        &tcti,
        &["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"],
    );
    ok(
        dir,
        &tcti,
        &[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ],
    );
    // Free the TPM's transient object slots (the saved contexts are reloaded when needed).
    ok(dir, &tcti, &["tpm2_flushcontext", "-t"]);
    let ek_pub = std::fs::read(dir.join("ek.pub")).unwrap();
    let ek = parse_public(&ek_pub[2..]).unwrap();
    let ak_name = std::fs::read(dir.join("ak.name")).unwrap();
    // The AK's name as Sovra computes it from its public area equals the TPM's.
    let ak_pub = std::fs::read(dir.join("ak.pub")).unwrap();
    assert_eq!(parse_public(&ak_pub[2..]).unwrap().name().unwrap(), ak_name);

    let activate = |name: &[u8], file: &str| {
        let secret = b"sovra credential secret 0123456";
        let made = make_credential(&ek, name, secret).unwrap();
        std::fs::write(dir.join(file), made.tpm2_tools_file()).unwrap();
        let _ = std::fs::remove_file(dir.join("session.ctx"));
        ok(dir, &tcti, &["tpm2_flushcontext", "-t"]);
        ok(
            dir,
            &tcti,
            &[
                "tpm2_startauthsession",
                "--policy-session",
                "-S",
                "session.ctx",
            ],
        );
        ok(
            dir,
            &tcti,
            &["tpm2_policysecret", "-S", "session.ctx", "-c", "e"],
        );
        let o = tool(
            dir,
            &tcti,
            &[
                "tpm2_activatecredential",
                "-c",
                "ak.ctx",
                "-C",
                "ek.ctx",
                "-i",
                file,
                "-o",
                "out.bin",
                "-P",
                "session:session.ctx",
            ],
        );
        let _ = tool(dir, &tcti, &["tpm2_flushcontext", "session.ctx"]);
        (
            o.status.success(),
            std::fs::read(dir.join("out.bin")).unwrap_or_default(),
            secret.to_vec(),
        )
    };
    let (success, got, want) = activate(&ak_name, "cred.bin");
    assert!(
        success,
        "TPM2_ActivateCredential refused Sovra's credential"
    );
    assert_eq!(got, want);
    // Made for another name: the TPM's integrity check refuses it.
    let _ = std::fs::remove_file(dir.join("out.bin"));
    let mut other = ak_name.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    let (success, _, _) = activate(&other, "cred2.bin");
    assert!(
        !success,
        "a credential for another AK name must not activate"
    );
}
