//! `sovra serve`.

use crate::context::{CliError, Global, Result};
use clap::Args;
use sovra_server::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `sovra serve` (override the config file and SOVRA_* variables).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "SOVRA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (default ./sovra-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address (default 127.0.0.1:8443).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve plain HTTP instead of HTTPS (loopback addresses only; for local tests).
    #[arg(long)]
    pub insecure_http: bool,
}

/// Loads the configuration for `serve` (file, env, flags).
pub fn load_config(a: &ServeArgs) -> Result<Config> {
    let mut cfg =
        Config::load(a.config.as_deref(), |k| std::env::var(k).ok()).map_err(CliError::Usage)?;
    if let Some(d) = &a.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if a.insecure_http {
        cfg.insecure_http = true;
    }
    cfg.check().map_err(CliError::Usage)?;
    Ok(cfg)
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Runs the server. A node sealed by a quorum first waits on its listener for `sovra unseal
/// submit` from enough administrators, then serves on the same listener.
pub async fn run(_g: &Global, a: ServeArgs) -> Result<()> {
    use crate::output::say;
    let cfg = load_config(&a)?;
    init_logging(&cfg);
    let scheme = if cfg.insecure_http { "http" } else { "https" };
    say(&format!("Sovra {}", env!("CARGO_PKG_VERSION")));
    say(&format!("  data directory: {}", cfg.data_dir.display()));
    let ca_line = |ca: &std::path::Path| {
        say(&format!(
            "  CA certificate: {}   (export SOVRA_CA_CERT={})",
            ca.display(),
            ca.display()
        ));
    };
    let quorum = sovra_server::app::unseal_quorum(&cfg).map_err(CliError::Local)?;
    let sealed = quorum.is_some();
    let (opened, listener) = match quorum {
        None => (
            sovra_server::app::open(&cfg)
                .await
                .map_err(CliError::Local)?,
            None,
        ),
        Some(q) => {
            let tls = sovra_server::app::tls_files(&cfg).map_err(CliError::Local)?;
            let acceptor =
                sovra_server::serve::tls_acceptor(tls.as_ref()).map_err(CliError::Local)?;
            let listener = sovra_server::serve::listen(&cfg)
                .await
                .map_err(CliError::Local)?;
            let addr = listener
                .local_addr()
                .map_err(|e| CliError::Local(e.to_string()))?;
            if let Some(t) = &tls {
                ca_line(&t.ca_cert);
            }
            say(&format!(
                "Sovra is sealed on {scheme}://{addr}: {} of its {} administrators must run `sovra unseal submit --key THEIR_KEY`",
                q.quorum,
                q.shares.len()
            ));
            tracing::warn!(%addr, quorum = q.quorum, "sealed: waiting for the administrators' shares");
            let check_cfg = cfg.clone();
            let check =
                move |k: &sovra_crypto::SecretBytes| sovra_server::app::unseals(&check_cfg, k);
            let Some(u) = sovra_server::unseal::wait_for_quorum(
                &listener,
                acceptor,
                q,
                check,
                shutdown_signal(),
            )
            .await
            else {
                tracing::info!("stopped while sealed");
                return Ok(());
            };
            say("  unsealed by a quorum of administrators");
            let opened = sovra_server::app::open_with(
                &cfg,
                Some(sovra_server::app::QuorumUnseal {
                    key: u.key,
                    certificates: u.certificates,
                }),
            )
            .await
            .map_err(CliError::Local)?;
            (opened, Some(listener))
        }
    };
    let server = match listener {
        Some(l) => sovra_server::serve::Server::bind_on(&cfg, &opened, l),
        None => sovra_server::serve::Server::bind(&cfg, &opened).await,
    }
    .map_err(CliError::Local)?;
    let addr = server.local_addr().map_err(CliError::Local)?;
    if let (Some(t), false) = (&opened.tls, sealed) {
        ca_line(&t.ca_cert);
    }
    if let Some(token) = &opened.new_admin_token {
        say(&format!(
            "  admin token (shown once; also in {}):",
            sovra_server::app::admin_token_path(&cfg.data_dir).display()
        ));
        say(&format!("    {}", token.as_str()));
    }
    say(&format!("Sovra is listening on {scheme}://{addr}"));
    tracing::info!(%addr, store = opened.sovra.store().backend(), hsm = opened.sovra.hsm().kind(), "ready");
    server.run(shutdown_signal()).await.map_err(CliError::Local)
}
