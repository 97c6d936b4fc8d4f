//! A node whose software HSM is sealed by a quorum (`sovra unseal init`) waits, before anything
//! else, for its administrators' shares (`sovra unseal submit`). Meanwhile its listener serves
//! only `GET /v1/unseal` (the quorum and the encrypted shares, so each administrator finds their
//! own), `POST /v1/unseal` (one decrypted share) and `GET /healthz`; everything else answers
//! 503 `SEALED`. A share is checked against its published commitment before it is kept, so
//! nobody but a share holder can disturb unsealing. When the quorum is in and opens the root,
//! the listener passes, unchanged, to the full server.

use crate::error::Error;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sovra_crypto::SecretBytes;
use sovra_crypto::shamir::Share;
use sovra_proto::ErrorCode;
use sovra_proto::security_domain::{SubmitUnsealShareRequest, UnsealQuorum, UnsealStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the quorum gave: the unseal key and whose shares made it.
#[derive(Debug)]
pub struct Unsealed {
    /// The unseal key.
    pub key: SecretBytes,
    /// The certificate fingerprints of the shares used.
    pub certificates: Vec<String>,
}

type Check = dyn Fn(&SecretBytes) -> bool + Send + Sync;

struct Waiting {
    quorum: UnsealQuorum,
    received: Mutex<Vec<(usize, Share)>>,
    check: Box<Check>,
    done: Mutex<Option<oneshot::Sender<Unsealed>>>,
}

/// Connections served at once while sealed, and from one source address: one client holding
/// connections open cannot keep the administrators out.
const MAX_CONNECTIONS: usize = 64;
const MAX_CONNECTIONS_PER_IP: usize = 4;
/// Bytes of a request body while sealed (a share is ~50 bytes of base64).
const MAX_BODY: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(10);

fn json<T: serde::Serialize>(v: &T) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

fn status(w: &Waiting, sealed: bool) -> UnsealStatus {
    let received = w.received.lock().map(|r| r.len()).unwrap_or(0);
    UnsealStatus {
        sealed,
        quorum: w.quorum.quorum,
        received: u8::try_from(received).unwrap_or(u8::MAX),
        shares: if sealed {
            w.quorum.shares.clone()
        } else {
            Vec::new()
        },
    }
}

async fn get_status(State(w): State<Arc<Waiting>>) -> Response {
    json(&status(&w, true))
}

async fn submit(State(w): State<Arc<Waiting>>, body: Bytes) -> Response {
    match accept(&w, &body) {
        Ok(s) => json(&s),
        Err(e) => e.into_response(),
    }
}

fn accept(w: &Waiting, body: &[u8]) -> Result<UnsealStatus, Error> {
    let req: SubmitUnsealShareRequest = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorCode::InvalidJson,
            format!("expected {{\"share\": base64}}: {e}"),
        )
    })?;
    let invalid = || {
        Error::new(
            ErrorCode::UnsealShareInvalid,
            "this share belongs to none of this node's administrators (decrypt yours with `sovra unseal submit --key`)",
        )
    };
    let bytes = sovra_proto::b64::decode(&req.share).map_err(|_| invalid())?;
    let share = Share::from_bytes(&bytes).map_err(|_| invalid())?;
    let commitment = sovra_proto::hex::encode(&sovra_crypto::quorum::commitment(&share));
    let idx = w
        .quorum
        .shares
        .iter()
        .position(|s| s.commitment == commitment)
        .ok_or_else(invalid)?;
    let mut received = w
        .received
        .lock()
        .map_err(|_| Error::internal("unseal state lock poisoned"))?;
    if !received.iter().any(|(i, _)| *i == idx) {
        received.push((idx, share));
    }
    if received.len() < usize::from(w.quorum.quorum) {
        let n = u8::try_from(received.len()).unwrap_or(u8::MAX);
        drop(received);
        let mut s = status(w, true);
        s.received = n;
        return Ok(s);
    }
    let shares: Vec<Share> = received.iter().map(|(_, s)| s.clone()).collect();
    let key = sovra_crypto::shamir::combine(&shares)
        .map_err(|e| Error::internal(format!("combining shares: {e}")))?;
    if !(w.check)(&key) {
        // Every share matched its commitment, yet they do not open the root: the quorum file
        // and root.sealed do not belong together (e.g. an interrupted `sovra unseal init`).
        received.clear();
        return Err(Error::internal(
            "the quorum's shares do not open this node's root.sealed",
        ));
    }
    let certificates = received
        .iter()
        .filter_map(|(i, _)| w.quorum.shares.get(*i))
        .map(|s| s.certificate_sha256.clone())
        .collect();
    let n = u8::try_from(received.len()).unwrap_or(u8::MAX);
    drop(received);
    if let Some(tx) = w.done.lock().ok().and_then(|mut d| d.take()) {
        let _ = tx.send(Unsealed { key, certificates });
    }
    let mut s = status(w, false);
    s.received = n;
    Ok(s)
}

async fn sealed() -> Response {
    Error::new(
        ErrorCode::Sealed,
        "this node's HSM is sealed: a quorum of its administrators must run `sovra unseal submit`",
    )
    .into_response()
}

/// Serves the sealed node on `listener` until a quorum of valid shares opens the root (`check`
/// says whether a combined key does), or `shutdown` resolves (then `None`).
pub async fn wait_for_quorum(
    listener: &TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    quorum: UnsealQuorum,
    check: impl Fn(&SecretBytes) -> bool + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()>,
) -> Option<Unsealed> {
    let (tx, mut rx) = oneshot::channel();
    let waiting = Arc::new(Waiting {
        quorum,
        received: Mutex::new(Vec::new()),
        check: Box::new(check),
        done: Mutex::new(Some(tx)),
    });
    let router = Router::new()
        .route("/v1/unseal", get(get_status).post(submit))
        .route(
            "/healthz",
            get(|| async { json(&serde_json::json!({"status": "sealed"})) }),
        )
        .fallback(sealed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(waiting);
    let conns = crate::conn::ConnLimiter::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP);
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    // HTTP/1.1 or HTTP/2, whichever the client speaks (ALPN offers both).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(TIMEOUT)
        .keep_alive(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(8)
        .keep_alive_interval(TIMEOUT)
        .keep_alive_timeout(TIMEOUT);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let unsealed = loop {
        let place = tokio::select! {
            p = conns.place() => match p {
                Some(p) => p,
                None => break None,
            },
            r = &mut rx => break r.ok(),
            () = &mut shutdown => break None,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            r = &mut rx => break r.ok(),
            () = &mut shutdown => break None,
        };
        let Some(permit) = conns.admit(place, peer.ip(), false) else {
            tracing::debug!(%peer, "connection to the sealed node refused: this source holds its share");
            continue;
        };
        // Idle connections (slow headers, silent HTTP/2) are closed, not kept.
        let tcp = crate::conn::IdleIo::new(tcp, TIMEOUT);
        let svc = TowerToHyperService::new(router.clone());
        let (builder, tls, watcher) = (builder.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            let result = match tls {
                Some(acceptor) => match tokio::time::timeout(TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), svc)
                            .into_owned();
                        watcher.watch(conn).await.map_err(|e| e.to_string())
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("TLS handshake timed out".into()),
                },
                None => {
                    let conn = builder
                        .serve_connection(TokioIo::new(tcp), svc)
                        .into_owned();
                    watcher.watch(conn).await.map_err(|e| e.to_string())
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection to the sealed node ended");
            }
        });
    };
    // Let the answer to the last share reach its administrator.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    unsealed
}
