//! `sovra security-domain …`: export the deployment's security domain encrypted to a quorum of
//! administrators (through the API), and restore a new node's HSM from it (offline, where the
//! administrators' private keys are; they never reach the server).

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields};
use clap::Subcommand;
use sovra_proto::security_domain::{DownloadSecurityDomainRequest, SecurityDomain};
use std::io::Write;
use std::path::PathBuf;

/// `sovra security-domain …`.
#[derive(Debug, Subcommand)]
pub enum SecurityDomainCmd {
    /// Export the security domain (the software HSM's root and keys), encrypted so that a
    /// quorum of the administrators whose certificates are given can open it (Administrator).
    Download {
        /// An administrator's certificate (PEM, RSA ≥ 2048 bits); 3 to 10 of them.
        #[arg(long = "cert", required = true)]
        certs: Vec<PathBuf>,
        /// How many of their private keys open it (2 to the number of certificates).
        #[arg(long)]
        quorum: u8,
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore this node's software HSM from a security domain, offline, before its first
    /// start over the deployment's database. Needs the quorum of administrators' private keys.
    Upload {
        /// The security domain file.
        file: PathBuf,
        /// An administrator's private key (PEM or DER, PKCS#8 or PKCS#1); as many as the quorum.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// The node's data directory (default: as `sovra serve` would use).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The node's configuration file (PostgreSQL store, unseal key file).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn read(p: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| CliError::Local(format!("cannot read {}: {e}", p.display())))
}

/// Progress goes to stderr, and only for people (`--output json` keeps stdout one document and
/// stderr the error alone).
fn progress(g: &Global, line: &str) {
    if matches!(g.output, crate::context::Output::Human) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// Runs `sovra security-domain …`.
pub async fn run(g: &Global, c: SecurityDomainCmd) -> Result<()> {
    match c {
        SecurityDomainCmd::Download { certs, quorum, out } => {
            if out.exists() {
                return Err(CliError::Usage(format!(
                    "{} exists; choose another --out (a security domain is never overwritten)",
                    out.display()
                )));
            }
            let mut certificates = Vec::with_capacity(certs.len());
            for p in &certs {
                let pem = String::from_utf8(read(p)?).map_err(|_| {
                    CliError::Usage(format!("{} is not a PEM certificate", p.display()))
                })?;
                certificates.push(pem);
            }
            progress(
                g,
                &format!(
                    "asking the server for its security domain, encrypted to {} certificates with quorum {quorum}…",
                    certs.len()
                ),
            );
            let sd = g
                .client()?
                .download_security_domain(&DownloadSecurityDomainRequest {
                    certificates,
                    quorum,
                })
                .await?;
            let json = serde_json::to_vec_pretty(&sd)
                .map_err(|e| CliError::Local(format!("encoding the security domain: {e}")))?;
            write_new(&out, &json)?;
            for (p, s) in certs.iter().zip(&sd.shares) {
                progress(
                    g,
                    &format!(
                        "  share for {} (certificate {}…)",
                        p.display(),
                        short(&s.certificate_sha256)
                    ),
                );
            }
            progress(g, &format!("wrote {}", out.display()));
            let v = serde_json::json!({"file": out.display().to_string(), "quorum": sd.quorum, "shares": sd.shares.len(), "backend": sd.backend, "createTime": sd.create_time});
            emit(g, &v, |_| {
                fields(&[
                    ("file", out.display().to_string()),
                    ("backend", sd.backend.clone()),
                    (
                        "quorum",
                        format!("{} of {} administrators", sd.quorum, sd.shares.len()),
                    ),
                    ("created", sd.create_time.clone()),
                    (
                        "keep",
                        "the file anywhere (it opens only with the quorum's private keys); keep each private key with its administrator".into(),
                    ),
                ]);
            });
            Ok(())
        }
        SecurityDomainCmd::Upload {
            file,
            keys,
            data_dir,
            config,
        } => {
            let sd: SecurityDomain =
                serde_json::from_slice(&read(&file)?).map_err(|e| CliError::Coded {
                    code: "SECURITY_DOMAIN_INVALID".into(),
                    message: format!("{} is not a security domain file: {e}", file.display()),
                })?;
            progress(
                g,
                &format!(
                    "{}: {} security domain of {}, quorum {} of {}",
                    file.display(),
                    sd.backend,
                    sd.create_time,
                    sd.quorum,
                    sd.shares.len()
                ),
            );
            let mut given = Vec::with_capacity(keys.len());
            for p in &keys {
                given.push((p.display().to_string(), read(p)?));
            }
            let coded = |e: sovra_server::error::Error| CliError::Coded {
                code: e.code.as_str().into(),
                message: e.message,
            };
            let mut opened: Vec<String> = Vec::new();
            let secret = sovra_server::services::security_domain::open(&sd, &given, |used| {
                opened.push(used.certificate_sha256.clone());
                let n = opened.len();
                progress(
                    g,
                    &format!(
                        "  share {n}/{}: opened with {} (certificate {}…)",
                        sd.quorum,
                        used.label,
                        short(&used.certificate_sha256)
                    ),
                );
            })
            .map_err(coded)?;
            progress(g, "  the quorum opens the security domain");
            let mut cfg =
                sovra_server::config::Config::load(config.as_deref(), |k| std::env::var(k).ok())
                    .map_err(CliError::Usage)?;
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            progress(
                g,
                &format!(
                    "restoring the HSM into {} and checking it against the database…",
                    cfg.data_dir.join("hsm").display()
                ),
            );
            let detail = serde_json::json!({"createTime": sd.create_time, "quorum": sd.quorum, "openedWith": opened});
            let locations =
                sovra_server::app::restore_security_domain(&cfg, secret.expose(), detail)
                    .await
                    .map_err(coded)?;
            progress(g, "restored; start the node with `sovra serve` as usual");
            let v = serde_json::json!({"dataDir": cfg.data_dir.display().to_string(), "locations": locations});
            emit(g, &v, |_| {
                fields(&[
                    ("data directory", cfg.data_dir.display().to_string()),
                    ("locations", locations.join(", ")),
                    (
                        "next",
                        "sovra serve (the node serves the deployment's keys)".into(),
                    ),
                ]);
            });
            Ok(())
        }
    }
}

/// Writes `bytes` to a new file (never over an existing one), mode 0600.
pub(crate) fn write_new(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| CliError::Local(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::Local(format!("cannot write {}: {e}", path.display())))
}
