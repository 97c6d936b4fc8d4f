//! The accept loop: TLS (or loopback-only plain HTTP), HTTP/1.1 and HTTP/2, graceful shutdown.

use crate::app::Opened;
use crate::config::Config;
use crate::http::{self, AppState};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    grace: Duration,
    scheduler_every: Duration,
}

impl Server {
    /// Binds the listen address.
    pub async fn bind(cfg: &Config, opened: &Opened) -> Result<Self, String> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        let tls = match &opened.tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
                &files.cert,
                &files.key,
            )?)),
            None => None,
        };
        if cfg.public_url.is_none() {
            // Tokens name the address actually bound (port 0 picks one).
            if let Ok(addr) = listener.local_addr() {
                let scheme = if opened.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                opened.sovra.set_public_url(format!("{scheme}://{addr}"));
            }
        }
        let state = AppState {
            sovra: opened.sovra.clone(),
            metrics: Arc::default(),
            ready: Arc::new(AtomicBool::new(true)),
            max_body: cfg.limits.max_body_bytes,
            max_evidence: cfg.attestation.max_evidence_bytes,
            anon: Arc::new(crate::http::limit::AnonLimiter::with_proxies(
                cfg.limits.anonymous_per_ip_per_second,
                cfg.limits
                    .trusted_proxies
                    .iter()
                    .filter_map(|p| crate::http::limit::Cidr::parse(p))
                    .collect(),
            )),
        };
        Ok(Self {
            listener,
            state,
            tls,
            grace: Duration::from_secs(cfg.shutdown_grace_secs),
            scheduler_every: Duration::from_secs(cfg.scheduler_interval_secs.max(1)),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (up to the grace period) and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), String> {
        let router = http::router(self.state.clone());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let scheduler = tokio::spawn(
            self.state
                .sovra
                .clone()
                .run_scheduler(self.scheduler_every, stop_rx),
        );
        let graceful = GracefulShutdown::new();
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true)
            // One buffer per response: with TLS that is one record and one write.
            .writev(false);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(256);
        let builder = Arc::new(builder);
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let svc = TowerToHyperService::new(
                router
                    .clone()
                    .layer(axum::Extension(crate::http::limit::PeerIp(peer.ip()))),
            );
            let builder = builder.clone();
            let tls = self.tls.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(stream)) => {
                                let conn = builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                    .into_owned();
                                if let Err(e) = watcher.watch(conn).await {
                                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                                }
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                    None => {
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                            .into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                }
            });
        }
        tracing::info!("shutting down: no new connections; waiting for in-flight requests");
        self.state.ready.store(false, Ordering::Relaxed);
        drop(self.listener);
        let _ = stop_tx.send(true);
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing remaining connections");
        }
        let _ = scheduler.await;
        tracing::info!("stopped");
        Ok(())
    }
}
