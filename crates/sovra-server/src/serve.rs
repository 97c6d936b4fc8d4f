//! The accept loop: TLS (or loopback-only plain HTTP), HTTP/1.1 and HTTP/2, graceful shutdown.

use crate::app::Opened;
use crate::config::Config;
use crate::conn::{ConnLimiter, IdleIo};
use crate::http::{self, AppState};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

/// Binds the configured listen address.
pub async fn listen(cfg: &Config) -> Result<TcpListener, String> {
    TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))
}

/// The TLS acceptor for `files` (none: plain HTTP).
pub fn tls_acceptor(
    files: Option<&crate::tls::TlsFiles>,
) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    files
        .map(|f| crate::tls::server_config(&f.cert, &f.key).map(tokio_rustls::TlsAcceptor::from))
        .transpose()
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    grace: Duration,
    scheduler_every: Duration,
    conns: Arc<ConnLimiter>,
    max_connections: usize,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Server {
    /// Binds the listen address.
    pub async fn bind(cfg: &Config, opened: &Opened) -> Result<Self, String> {
        Self::bind_on(cfg, opened, listen(cfg).await?)
    }

    /// Serves on an already bound listener (the one a sealed node waited for its quorum on).
    pub fn bind_on(cfg: &Config, opened: &Opened, listener: TcpListener) -> Result<Self, String> {
        let tls = tls_acceptor(opened.tls.as_ref())?;
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
        let l = &cfg.limits;
        let state = AppState::new(opened.sovra.clone(), cfg);
        let files = crate::conn::raise_file_limit();
        let max_connections = crate::conn::fit_connections(l.max_connections, files);
        if max_connections < l.max_connections {
            tracing::warn!(
                configured = l.max_connections,
                files,
                serving = max_connections,
                "limits.max_connections is above what the open-file limit allows; serving fewer"
            );
        }
        Ok(Self {
            listener,
            state,
            tls,
            grace: Duration::from_secs(cfg.shutdown_grace_secs),
            scheduler_every: Duration::from_secs(cfg.scheduler_interval_secs.max(1)),
            conns: Arc::new(ConnLimiter::new(max_connections, l.max_connections_per_ip)),
            max_connections,
            header_timeout: Duration::from_secs(l.header_timeout_secs),
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
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
        let mut auto = Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true)
            // One buffer per response: with TLS that is one record and one write.
            .writev(false);
        auto.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .keep_alive_interval(self.idle_timeout / 2)
            .keep_alive_timeout(self.header_timeout);
        // With TLS, ALPN says which protocol the client speaks: no waiting for it to say so.
        let h1 = Arc::new(auto.clone().http1_only());
        let h2 = Arc::new(auto.clone().http2_only());
        let auto = Arc::new(auto);
        let mut accept_errors = 0u32;
        tokio::pin!(shutdown);
        loop {
            // Wait for a free place before accepting: at the limit, clients wait in the kernel's
            // backlog rather than being accepted and dropped (or the accept failing with EMFILE).
            let place = tokio::select! {
                p = self.conns.place() => match p {
                    Some(p) => p,
                    None => break,
                },
                () = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => {
                        accept_errors = 0;
                        x
                    }
                    Err(e) => {
                        // Out of files (or another transient failure): back off, up to a second,
                        // and say so once per streak, never spin.
                        accept_errors = accept_errors.saturating_add(1);
                        if accept_errors == 1 {
                            tracing::warn!(error = %e, open = self.conns.open(self.max_connections), "accept failed; backing off");
                        }
                        let wait = Duration::from_millis(10u64 << accept_errors.min(7));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let exempt = self.state.clients.is_proxy(peer.ip());
            let Some(permit) = self.conns.admit(place, peer.ip(), exempt) else {
                tracing::debug!(%peer, "connection refused: this source holds its share (limits.max_connections_per_ip)");
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let tcp = IdleIo::new(tcp, self.idle_timeout);
            let svc = TowerToHyperService::new(
                router
                    .clone()
                    .layer(axum::Extension(crate::http::limit::PeerIp(peer.ip()))),
            );
            let (h1, h2, auto) = (h1.clone(), h2.clone(), auto.clone());
            let tls = self.tls.clone();
            let watcher = graceful.watcher();
            let handshake = self.header_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                match tls {
                    Some(acceptor) => {
                        match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                let builder = match stream.get_ref().1.alpn_protocol() {
                                    Some(b"h2") => h2,
                                    _ => h1,
                                };
                                let conn = builder
                                    .serve_connection(TokioIo::new(stream), svc)
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
                        let conn = auto
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
