//! The unmodified Azure SDKs (from PyPI) against Sovra's compatible APIs, with their own token
//! validation on: Microsoft Azure Attestation's metadata, signing certificates and policy
//! management (unsigned, then signed by a policy-management certificate).

use crate::common::*;
use std::path::PathBuf;
use std::process::Command;

/// A directory holding `azure-security-attestation` 1.0.0 (and `six`, which it imports without
/// declaring), installed from PyPI once per target directory.
fn azure_sdk() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("azure-sdk-python");
    let importable = || {
        Command::new("python3")
            .args(["-c", "import azure.security.attestation, six"])
            .env("PYTHONPATH", &dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        let st = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&dir)
            .args(["azure-security-attestation==1.0.0", "six"])
            .status()
            .expect("python3 is needed");
        assert!(
            st.success(),
            "pip install azure-security-attestation failed"
        );
    }
    assert!(importable(), "the Azure attestation SDK is not importable");
    dir
}

fn run_sdk(s: &Server, args: &[&str]) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/server/azure_sdk/maa_admin.py"
    );
    let token = s.dir.join("admin.token");
    let o = Command::new("python3")
        .arg(script)
        .arg(&s.url)
        .arg(&token)
        .arg(s.ca())
        .args(args)
        .env("PYTHONPATH", azure_sdk())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_azure_attestation_sdk_manages_policies_with_its_validation_on() {
    let s = Server::start();
    let out = run_sdk(&s, &["unsigned"]);
    for line in [
        "metadata True True",
        "signing certificates True",
        "set Updated",
        "get True",
        "reset Removed",
        "management certificates 0",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("default policy") && l.ends_with("True"))
            .count(),
        3,
        "{out}"
    );
    // A policy-management certificate: signed changes are accepted (and name their signer),
    // unsigned ones refused.
    let dir = tempfile::tempdir().unwrap();
    let signer = crate::security_domain::admin(dir.path(), "policy-signer");
    s.ok(&[
        "attestation",
        "collateral",
        "import",
        "--kind",
        "policy-signer",
        signer.cert.to_str().unwrap(),
    ]);
    let out = run_sdk(
        &s,
        &[
            "signed",
            signer.key.to_str().unwrap(),
            signer.cert.to_str().unwrap(),
        ],
    );
    for line in [
        "signed set Updated True",
        "get True",
        "management certificates 1",
        "unsigned set refused POLICY_SIGNATURE_INVALID",
        "signed reset Removed",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
}
