//! `sovra admin recover`: the offline break-glass for a deployment that lost its
//! administrators. It needs the database and what unseals the HSM (every row is sealed under
//! an HSM-held key), so a database writer alone cannot use it.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields};
use clap::Subcommand;
use std::path::PathBuf;

/// `sovra admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create a short-lived Administrator token offline (the server may be running or not).
    Recover {
        /// The deployment's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Configuration file (PostgreSQL store, PKCS#11 HSM) of the deployment.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Principal of the new administrator.
        #[arg(long, default_value = "recovery")]
        principal: String,
        /// Lifetime of the token, in hours (at most 168).
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
}

/// Runs `sovra admin …`.
pub async fn run(g: &Global, c: AdminCmd) -> Result<()> {
    match c {
        AdminCmd::Recover {
            data_dir,
            config,
            principal,
            hours,
        } => {
            let cfg = crate::audit::offline_config(data_dir, config)?;
            let sovra = sovra_server::app::open_offline(&cfg)
                .await
                .map_err(CliError::Local)?;
            let token = sovra
                .access()
                .recover_administrator(&principal, hours.saturating_mul(3600))
                .await
                .map_err(|e| CliError::Coded {
                    code: e.code.as_str().into(),
                    message: e.message,
                })?;
            let out = serde_json::json!({"principal": principal, "token": token.as_str(), "role": "ADMINISTRATOR", "scope": "*", "hours": hours});
            emit(g, &out, |_| {
                fields(&[
                    ("principal", principal.clone()),
                    ("role", "ADMINISTRATOR at *".into()),
                    ("expires", format!("in {hours} h")),
                    ("token", token.as_str().to_owned()),
                ]);
            });
            Ok(())
        }
    }
}
