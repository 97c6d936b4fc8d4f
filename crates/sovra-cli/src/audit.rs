//! `sovra audit verify|export`: through the API, or offline against a data directory.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields, say};
use clap::Subcommand;
use sovra_proto::admin::AuditVerifyReport;
use std::io::Write;
use std::path::PathBuf;

/// `sovra audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check every link of the hash chain; report the first broken record.
    Verify {
        /// Read the database in this data directory directly (no server needed).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file (for a PostgreSQL store) when using --data-dir.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write records as JSON lines.
    Export {
        /// Read the database in this data directory directly.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file when using --data-dir.
        #[arg(long)]
        config: Option<PathBuf>,
        /// First record to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Write to this file instead of stdout.
        #[arg(long = "out")]
        out: Option<PathBuf>,
    },
}

/// The configuration of the existing deployment in `data_dir`, for offline commands.
pub fn offline_config(
    data_dir: PathBuf,
    config: Option<PathBuf>,
) -> Result<sovra_server::config::Config> {
    let mut cfg = sovra_server::config::Config::load(config.as_deref(), |k| std::env::var(k).ok())
        .map_err(CliError::Usage)?;
    cfg.data_dir = data_dir;
    if cfg.store.backend == sovra_server::config::StoreBackend::Sqlite
        && !cfg.data_dir.join("sovra.db").exists()
    {
        return Err(CliError::Usage(format!(
            "{} holds no Sovra database (sovra.db)",
            cfg.data_dir.display()
        )));
    }
    Ok(cfg)
}

/// What checking a deployment's log offline needs: its store, its anchor and its chain key.
struct Offline {
    store: std::sync::Arc<dyn sovra_store::Store>,
    anchor: Option<sovra_server::services::anchor::Anchor>,
    key: Option<sovra_store::audit::ChainKey>,
}

async fn offline_store(data_dir: PathBuf, config: Option<PathBuf>) -> Result<Offline> {
    let cfg = offline_config(data_dir, config)?;
    let store = sovra_server::app::open_store(&cfg)
        .await
        .map_err(CliError::Local)?;
    // The checkpoint is sealed by the HSM and the chain is keyed under an HSM-wrapped key:
    // checking them needs what unseals the HSM. A deployment from before both has neither.
    let path = cfg.data_dir.join("audit.anchor");
    let sealed = cfg
        .data_dir
        .join(sovra_server::services::sealed::KEY_FILE)
        .exists();
    if !path.exists() && !sealed {
        return Ok(Offline {
            store,
            anchor: None,
            key: None,
        });
    }
    let hsm = sovra_server::app::open_hsm(&cfg).map_err(CliError::Local)?;
    let key = sovra_server::services::sealed::chain_key_of(
        store.as_ref(),
        hsm.as_ref(),
        &cfg.default_location,
        &cfg.data_dir,
    )
    .await
    .map_err(CliError::Local)?;
    let anchor = path
        .exists()
        .then(|| sovra_server::services::anchor::Anchor {
            path,
            hsm,
            location: cfg.default_location.clone(),
        });
    Ok(Offline { store, anchor, key })
}

/// Runs `sovra audit …`.
pub async fn run(g: &Global, c: AuditCmd) -> Result<()> {
    match c {
        AuditCmd::Verify { data_dir, config } => {
            let report = match data_dir {
                Some(d) => {
                    let o = offline_store(d, config).await?;
                    let c = sovra_server::services::audit::verify_anchored(
                        o.store.as_ref(),
                        o.anchor.as_ref(),
                        o.key,
                    )
                    .await
                    .map_err(|e| CliError::Local(e.to_string()))?;
                    AuditVerifyReport {
                        records: c.records,
                        ok: c.first_broken.is_none(),
                        first_broken_seq: c.first_broken.as_ref().map(|b| b.0),
                        problem: c.first_broken.map(|b| b.1),
                        head_hash: sovra_proto::hex::encode(&c.head),
                    }
                }
                None => g.client()?.verify_audit().await?,
            };
            emit(g, &report, |r| {
                if r.ok {
                    say(&format!("audit chain intact: {} records", r.records));
                    fields(&[("head hash", r.head_hash.clone())]);
                } else {
                    say(&format!(
                        "audit chain BROKEN at record {}: {}",
                        r.first_broken_seq.unwrap_or(0),
                        r.problem.clone().unwrap_or_default()
                    ));
                    fields(&[("records", r.records.to_string())]);
                }
            });
            if !report.ok {
                return Err(CliError::Local(format!(
                    "the audit chain is broken at record {}",
                    report.first_broken_seq.unwrap_or(0)
                )));
            }
            Ok(())
        }
        AuditCmd::Export {
            data_dir,
            config,
            from,
            out,
        } => {
            let mut sink: Box<dyn Write> =
                match &out {
                    Some(p) => Box::new(std::fs::File::create(p).map_err(|e| {
                        CliError::Local(format!("cannot create {}: {e}", p.display()))
                    })?),
                    None => Box::new(std::io::stdout().lock()),
                };
            let mut next = from.max(1);
            let mut n = 0u64;
            match data_dir {
                Some(d) => {
                    // Exporting reads the records as stored: no HSM needed.
                    let cfg = offline_config(d, config)?;
                    let store = sovra_server::app::open_store(&cfg)
                        .await
                        .map_err(CliError::Local)?;
                    loop {
                        let rows = store
                            .audit_range(next, 1000)
                            .await
                            .map_err(|e| CliError::Local(e.to_string()))?;
                        let Some(last) = rows.last() else { break };
                        next = last.seq + 1;
                        for r in rows {
                            let rec = sovra_server::services::audit::to_record(r);
                            let _ = writeln!(
                                sink,
                                "{}",
                                serde_json::to_string(&rec).unwrap_or_default()
                            );
                            n += 1;
                        }
                    }
                }
                None => {
                    let client = g.client()?;
                    loop {
                        let text = client.export_audit(next, 1000).await?;
                        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                        let Some(last) = lines.last() else { break };
                        let seq = serde_json::from_str::<serde_json::Value>(last)
                            .ok()
                            .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
                            .ok_or_else(|| {
                                CliError::Local("the server sent a record without seq".into())
                            })?;
                        next = seq + 1;
                        for l in &lines {
                            let _ = writeln!(sink, "{l}");
                            n += 1;
                        }
                    }
                }
            }
            let _ = sink.flush();
            if out.is_some() {
                eprintln!("exported {n} records");
            }
            Ok(())
        }
    }
}
