//! `sovra keys attestation …`: key attestation statements, fetched from the server and
//! verified offline against the owner root.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields};
use clap::Subcommand;
use std::path::PathBuf;

/// `sovra keys attestation …`.
#[derive(Debug, Subcommand)]
pub enum KeyAttestationCmd {
    /// Print a version's key attestation statement (a JWS).
    Get {
        /// RING/KEY or full name.
        key: String,
        /// Version number.
        version: String,
    },
    /// Print the owner root certificate (PEM), what verifiers pin, and this node's HSM
    /// attestation certificate.
    Roots,
    /// Print a certificate signing request (PEM) for this node's HSM attestation key, for your
    /// own CA to certify (Administrator).
    Csr,
    /// Replace this node's HSM attestation key with a new one (Administrator). The old one is
    /// destroyed; statements made with it stay verifiable. With your own CA, certify the new
    /// key (`csr`, then `set-roots`) before new versions can get statements.
    Rotate,
    /// Install an owner root held by your own CA and the certificate it issued from `csr`
    /// (Administrator). New statements chain to it; older ones to the root they were made
    /// under.
    SetRoots {
        /// The owner root certificate (PEM).
        #[arg(long)]
        root: PathBuf,
        /// The certificate your CA issued for this node's attestation key (PEM).
        #[arg(long)]
        certificate: PathBuf,
    },
    /// Verify a statement offline with only the owner root certificate, and print what it
    /// attests. Fails with KEY_ATTESTATION_MALFORMED, _CHAIN_INVALID, _SIGNATURE_INVALID or
    /// _WRONG_VERSION.
    Verify {
        /// The statement (file with the JWS, or - for stdin).
        statement: PathBuf,
        /// The owner root certificate (PEM or DER).
        #[arg(long)]
        root: PathBuf,
        /// The version it must be about (full resource name).
        #[arg(long)]
        expect: Option<String>,
    },
}

fn read(p: &PathBuf) -> Result<Vec<u8>> {
    if p.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| CliError::Local(format!("reading stdin: {e}")))?;
        return Ok(b);
    }
    std::fs::read(p).map_err(|e| CliError::Local(format!("cannot read {}: {e}", p.display())))
}

/// Runs `sovra keys attestation …`.
pub async fn run(g: &Global, c: KeyAttestationCmd) -> Result<()> {
    match c {
        KeyAttestationCmd::Verify {
            statement,
            root,
            expect,
        } => {
            let jws = String::from_utf8(read(&statement)?)
                .map_err(|_| CliError::Usage("the statement is not text".into()))?;
            let roots = sovra_attest::x509::certs_from_pem_or_der(&read(&root)?)
                .map_err(|e| CliError::Usage(format!("--root: {e}")))?;
            let root = roots
                .first()
                .ok_or_else(|| CliError::Usage("--root holds no certificate".into()))?;
            let v = sovra_attest::key_statement::verify(&jws, root, expect.as_deref()).map_err(
                |e| CliError::Coded {
                    code: e.code().into(),
                    message: e.to_string(),
                },
            )?;
            let out =
                serde_json::json!({"valid": true, "signer": v.signer, "statement": v.statement});
            emit(g, &out, |o| {
                let s = &o["statement"];
                let opt = |k: &str| s.get(k).map_or("-".to_string(), |v| v.to_string());
                fields(&[
                    ("valid", "yes".into()),
                    ("signed by", v.signer.clone()),
                    ("name", opt("name")),
                    ("algorithm", opt("algorithm")),
                    ("protection level", opt("protectionLevel")),
                    ("origin", opt("origin")),
                    ("hsm", opt("hsm")),
                    ("local", opt("local")),
                    ("sensitive", opt("sensitive")),
                    ("never extractable", opt("neverExtractable")),
                    ("public key sha256", opt("publicKeySha256")),
                    ("created (unix)", opt("createTime")),
                ]);
            });
        }
        KeyAttestationCmd::Get { key, version } => {
            let v = g
                .client()?
                .get_version(&g.version_name(&key, &version)?)
                .await?;
            let a = v.attestation.ok_or_else(|| CliError::Coded {
                code: "KEY_ATTESTATION_NONE".into(),
                message: format!(
                    "{} has no attestation statement (it was created before Sovra made them)",
                    v.name
                ),
            })?;
            println!("{}", a.content);
        }
        KeyAttestationCmd::Csr => {
            let r = g.client()?.key_attestation_csr().await?;
            emit(g, &r, |r| print!("{}", r.csr));
        }
        KeyAttestationCmd::Rotate => {
            let r = g.client()?.rotate_key_attestation().await?;
            emit(g, &r, |r| {
                fields(&[
                    ("new key", format!("SHA-256 {}", r.public_key_sha256)),
                    (
                        "old key",
                        "destroyed in the HSM; its statements stay verifiable".into(),
                    ),
                ])
            });
        }
        KeyAttestationCmd::SetRoots { root, certificate } => {
            let text = |p: &PathBuf| -> Result<String> {
                String::from_utf8(read(p)?)
                    .map_err(|_| CliError::Usage(format!("{} is not PEM text", p.display())))
            };
            let req = sovra_proto::kms::SetKeyAttestationRootsRequest {
                owner_root: text(&root)?,
                attestation_certificate: text(&certificate)?,
            };
            let r = g.client()?.set_key_attestation_roots(&req).await?;
            emit(g, &r, |r| {
                print!("{}{}", r.owner_root, r.attestation_certificate);
            });
        }
        KeyAttestationCmd::Roots => {
            let r = g.client()?.key_attestation_roots().await?;
            emit(g, &r, |r| {
                print!("{}{}", r.owner_root, r.attestation_certificate);
            });
        }
    }
    Ok(())
}
