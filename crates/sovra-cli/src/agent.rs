//! `sovra agent …`: the guest side of secure key release, and `sovra demo`, which runs the
//! whole flow against an embedded server with a simulated SEV-SNP guest.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, say};
use clap::{Args, Subcommand};
use serde_json::json;
use sovra_agent::azure::AzureVtpm;
use sovra_agent::collect::{
    Collector, ConfigfsTsm, SEV_GUEST, SevGuest, SimSnpCollector, TSM_ROOT,
};
use sovra_agent::simsnp::SimulatedSnp;
use std::path::{Path, PathBuf};

/// `sovra agent …`.
#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Attest this TEE and receive a key: ① nonce, ② ephemeral key, ③ evidence, ④ token,
    /// ⑤ release, ⑥ check, ⑦ unwrap.
    Release(ReleaseArgs),
    /// Attest this TEE and print the signed attestation token, for a relying party other than
    /// Sovra's key release (or to bind your own key: --runtime-data).
    Attest(AttestArgs),
    /// Create a simulated SEV-SNP platform (test chain) in a directory.
    SimSnpInit {
        /// Directory for ark.pem, ask_ark.pem, vcek.pem, vcek.key, chip_id.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Where evidence comes from.
#[derive(Debug, Args)]
pub struct CollectorArgs {
    /// Evidence source: `auto` (configfs-tsm if present, else /dev/sev-guest, else an Azure CVM
    /// vTPM if the TPM holds an HCL report), `tsm`, `sev-guest`, `azure` (Azure confidential VM:
    /// vTPM + IMDS), `tpm` (TPM-only machine; tpm2-tools, TCTI from TPM2TOOLS_TCTI), or
    /// `sim-snp` (needs --sim-dir).
    #[arg(long, default_value = "auto")]
    pub collector: String,
    /// Azure instance metadata service (for `azure`).
    #[arg(long, env = "SOVRA_AZURE_IMDS", default_value = sovra_agent::azure::IMDS)]
    pub imds_url: String,
    /// Simulated SNP platform directory (from `sovra agent sim-snp-init`).
    #[arg(long)]
    pub sim_dir: Option<PathBuf>,
}

/// `sovra agent attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// Evidence source.
    #[command(flatten)]
    pub from: CollectorArgs,
    /// Runtime data (JSON) to bind into the evidence as SHA-256(file); it becomes the token's
    /// `x-ms-runtime` claim. Default: `{"nonce": N}` with a fresh release nonce N from the
    /// server.
    #[arg(long)]
    pub runtime_data: Option<PathBuf>,
}

/// `sovra agent release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The key (RING/KEY, a full key name, or a version name).
    #[arg(long)]
    pub key: String,
    /// Evidence source.
    #[command(flatten)]
    pub from: CollectorArgs,
    /// Write the key to this file (mode 0600), or into this named pipe, instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run this command with the key (base64) in the environment variable SOVRA_RELEASED_KEY;
    /// everything after --exec is the command and its arguments.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "CMD")]
    pub exec: Vec<String>,
}

fn agent_err(e: sovra_agent::AgentError) -> CliError {
    match e {
        sovra_agent::AgentError::Server {
            step,
            code,
            message,
        } => CliError::Coded {
            code,
            message: format!("{step}: {message}"),
        },
        other => CliError::Local(other.to_string()),
    }
}

fn collector(a: &CollectorArgs) -> Result<Box<dyn Collector>> {
    let tsm = || ConfigfsTsm::open(Path::new(TSM_ROOT));
    let azure = || AzureVtpm::open(None, Some(a.imds_url.clone())).map_err(agent_err);
    match a.collector.as_str() {
        "sim-snp" => {
            let dir = a
                .sim_dir
                .as_ref()
                .ok_or_else(|| CliError::Usage("--collector sim-snp needs --sim-dir".into()))?;
            Ok(Box::new(SimSnpCollector(
                SimulatedSnp::load(dir).map_err(agent_err)?,
            )))
        }
        "tpm" => Ok(Box::new(
            sovra_agent::tpm::TpmCollector::open().map_err(agent_err)?,
        )),
        "azure" => Ok(Box::new(azure()?)),
        "sev-guest" => Ok(Box::new(SevGuest::open().ok_or_else(|| {
            CliError::Usage(format!(
                "{SEV_GUEST} does not exist: is this a SEV-SNP guest?"
            ))
        })?)),
        "tsm" => Ok(Box::new(tsm().ok_or_else(|| {
            CliError::Usage(format!(
                "{TSM_ROOT} does not exist: is this a SEV-SNP or TDX guest with configfs-tsm?"
            ))
        })?)),
        "auto" => match (tsm(), &a.sim_dir) {
            (Some(t), _) => Ok(Box::new(t)),
            (None, Some(dir)) => Ok(Box::new(SimSnpCollector(
                SimulatedSnp::load(dir).map_err(agent_err)?,
            ))),
            (None, None) if SevGuest::open().is_some() => Ok(Box::new(SevGuest)),
            (None, None) if AzureVtpm::present(None) => Ok(Box::new(azure()?)),
            (None, None) => Err(CliError::Usage(format!(
                "no TEE interface found ({TSM_ROOT} and {SEV_GUEST} are missing and the TPM holds no Azure HCL report); choose --collector tpm on a TPM-only machine, or on a machine without TEE hardware --collector sim-snp --sim-dir DIR"
            ))),
        },
        other => Err(CliError::Usage(format!(
            "unknown collector {other:?}: use auto, tsm, sev-guest, azure, tpm or sim-snp"
        ))),
    }
}

/// Hands the key to `path`: into a named pipe (FIFO) that the workload reads, as is; anything
/// else becomes a file of mode 0600, written whole (temporary file, fsync, rename).
fn deliver(path: &Path, key: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::FileTypeExt;
    let fail = |e: std::io::Error| CliError::Local(format!("{}: {e}", path.display()));
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_fifo() => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(key))
            .map_err(fail),
        _ => sovra_hsm::soft::write_private_file(path, key)
            .map_err(|e| CliError::Local(format!("{}: {e}", path.display()))),
    }
}

/// Runs `sovra agent …`.
pub async fn run(g: &Global, c: AgentCmd) -> Result<()> {
    match c {
        AgentCmd::SimSnpInit { dir } => {
            let sim = SimulatedSnp::generate().map_err(agent_err)?;
            sim.save(&dir).map_err(agent_err)?;
            emit(
                g,
                &json!({"dir": dir, "trustAnchor": dir.join("ark.pem")}),
                |_| {
                    say(&format!("simulated SEV-SNP platform in {}", dir.display()));
                    say(
                        "NOT GENUINE HARDWARE: the server accepts its reports only after an operator trusts its root:",
                    );
                    say(&format!(
                        "  sovra attestation collateral import --kind trust-anchor --platform amd {}",
                        dir.join("ark.pem").display()
                    ));
                },
            );
            Ok(())
        }
        AgentCmd::Attest(a) => {
            let col = collector(&a.from)?;
            let client = g.client()?;
            let (runtime, nonce) = match &a.runtime_data {
                Some(path) => {
                    let data = std::fs::read(path)
                        .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?;
                    serde_json::from_slice::<serde_json::Value>(&data).map_err(|e| {
                        CliError::Usage(format!(
                            "{}: runtime data must be JSON: {e}",
                            path.display()
                        ))
                    })?;
                    (data, None)
                }
                None => {
                    let n = sovra_agent::flow::nonce(&client).await.map_err(agent_err)?;
                    (json!({"nonce": n}).to_string().into_bytes(), Some(n))
                }
            };
            let ev = sovra_agent::flow::collect(&client, col.as_ref(), &runtime)
                .await
                .map_err(agent_err)?;
            let token = sovra_agent::flow::attest(&client, &ev, &runtime)
                .await
                .map_err(agent_err)?;
            emit(
                g,
                &json!({"type": ev.kind, "token": token, "nonce": nonce}),
                |v| say(v["token"].as_str().unwrap_or_default()),
            );
            Ok(())
        }
        AgentCmd::Release(a) => {
            let col = collector(&a.from)?;
            let key = g.key_or_version(&a.key)?;
            let client = g.client()?;
            let human = g.output == crate::context::Output::Human;
            let released = sovra_agent::flow::release(&client, &key, col.as_ref(), |s| {
                if human {
                    eprintln!(
                        "{} {:<48} {:>8.1} ms  {}",
                        s.number, s.name, s.millis, s.detail
                    );
                }
            })
            .await
            .map_err(agent_err)?;
            let b64 = sovra_proto::b64::encode(released.material.expose());
            if let Some(path) = &a.out {
                deliver(path, released.material.expose())?;
            }
            if let Some((cmd, args)) = a.exec.split_first() {
                let status = std::process::Command::new(cmd)
                    .args(args)
                    .env("SOVRA_RELEASED_KEY", &b64)
                    .status()
                    .map_err(|e| CliError::Local(format!("cannot run {cmd}: {e}")))?;
                if !status.success() {
                    return Err(CliError::Local(format!("{cmd} exited with {status}")));
                }
                return Ok(());
            }
            emit(
                g,
                &json!({"version": released.version, "key": if a.out.is_some() { None } else { Some(&b64) }, "file": a.out}),
                |v| {
                    if a.out.is_none() {
                        say(v["key"].as_str().unwrap_or_default());
                    }
                },
            );
            Ok(())
        }
    }
}
