//! `sovra unseal …`: make a node's restarts need a quorum of administrators (offline), and hand
//! one administrator's share to a sealed node (the private key stays here; only the decrypted
//! share travels, over TLS, checked by the node against its published commitment).

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields};
use clap::Subcommand;
use sovra_proto::security_domain::SubmitUnsealShareRequest;
use std::path::PathBuf;

/// `sovra unseal …`.
#[derive(Debug, Subcommand)]
pub enum UnsealCmd {
    /// Seal this node's software HSM so that every start needs QUORUM of the administrators
    /// whose certificates are given (offline, node stopped). The unseal key file is removed.
    Init {
        /// An administrator's certificate (PEM, RSA ≥ 2048 bits); 3 to 10 of them.
        #[arg(long = "cert", required = true)]
        certs: Vec<PathBuf>,
        /// How many of them a start needs (2 to the number of certificates).
        #[arg(long)]
        quorum: u8,
        /// The node's data directory (default: as `sovra serve` would use).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The node's configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Hand your share to a sealed node (SOVRA_URL): decrypted here with your private key.
    Submit {
        /// Your private key (PEM or DER, PKCS#8 or PKCS#1).
        #[arg(long)]
        key: PathBuf,
    },
    /// Whether the node (SOVRA_URL) is sealed, and how many shares it has.
    Status,
}

fn read(p: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| CliError::Local(format!("cannot read {}: {e}", p.display())))
}

/// Runs `sovra unseal …`.
pub async fn run(g: &Global, c: UnsealCmd) -> Result<()> {
    match c {
        UnsealCmd::Init {
            certs,
            quorum,
            data_dir,
            config,
        } => {
            let mut cfg =
                sovra_server::config::Config::load(config.as_deref(), |k| std::env::var(k).ok())
                    .map_err(CliError::Usage)?;
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            let mut pems = Vec::with_capacity(certs.len());
            for p in &certs {
                pems.push(String::from_utf8(read(p)?).map_err(|_| {
                    CliError::Usage(format!("{} is not a PEM certificate", p.display()))
                })?);
            }
            let q = sovra_server::app::seal_by_quorum(&cfg, &pems, quorum)
                .await
                .map_err(|e| CliError::Coded {
                    code: e.code.as_str().into(),
                    message: e.message,
                })?;
            let v = serde_json::json!({"dataDir": cfg.data_dir.display().to_string(), "quorum": q.quorum, "shares": q.shares.len()});
            emit(g, &v, |_| {
                fields(&[
                    ("data directory", cfg.data_dir.display().to_string()),
                    (
                        "sealed",
                        format!(
                            "every start needs {} of the {} administrators (`sovra unseal submit --key`)",
                            q.quorum,
                            q.shares.len()
                        ),
                    ),
                    (
                        "note",
                        "the previous unseal key no longer opens this node: destroy any copy"
                            .into(),
                    ),
                ]);
            });
            Ok(())
        }
        UnsealCmd::Submit { key } => {
            let holder = sovra_crypto::quorum::HolderKey::from_pem_or_der(&read(&key)?)
                .map_err(|e| CliError::Usage(format!("{}: {e}", key.display())))?;
            let client = g.client_anonymous()?;
            let status = client.unseal_status().await?;
            if !status.sealed {
                return Err(CliError::Local("the node is not sealed".into()));
            }
            let id = sovra_proto::hex::encode(&holder.public_key_sha256());
            let mine = status
                .shares
                .iter()
                .find(|s| s.public_key_sha256 == id)
                .ok_or_else(|| CliError::Coded {
                    code: "UNSEAL_SHARE_INVALID".into(),
                    message: format!(
                        "{} matches none of the node's {} administrators",
                        key.display(),
                        status.shares.len()
                    ),
                })?;
            let enc = sovra_proto::b64::decode(&mine.encrypted_share)
                .map_err(|_| CliError::Local("the node's share is not base64".into()))?;
            let share = holder.open_share(&enc).map_err(|_| CliError::Coded {
                code: "UNSEAL_SHARE_INVALID".into(),
                message: format!("{} does not open its share", key.display()),
            })?;
            if sovra_proto::hex::encode(&sovra_crypto::quorum::commitment(&share))
                != mine.commitment
            {
                return Err(CliError::Coded {
                    code: "UNSEAL_SHARE_INVALID".into(),
                    message: "the share does not match the node's commitment: the node's quorum file was altered".into(),
                });
            }
            let after = client
                .submit_unseal_share(&SubmitUnsealShareRequest {
                    share: sovra_proto::b64::encode(share.to_bytes().expose()),
                })
                .await?;
            emit(g, &after, |s| {
                fields(&[(
                    "node",
                    if s.sealed {
                        format!(
                            "sealed: {} of {} shares in; {} more needed",
                            s.received,
                            s.quorum,
                            s.quorum.saturating_sub(s.received)
                        )
                    } else {
                        "unsealed: it is starting".into()
                    },
                )]);
            });
            Ok(())
        }
        UnsealCmd::Status => {
            let s = g.client_anonymous()?.unseal_status().await?;
            let v =
                serde_json::json!({"sealed": s.sealed, "quorum": s.quorum, "received": s.received});
            emit(g, &v, |_| {
                fields(&[
                    ("sealed", s.sealed.to_string()),
                    ("shares", format!("{} of {}", s.received, s.quorum)),
                ]);
            });
            Ok(())
        }
    }
}
