//! `sovra bench …`: closed-loop load against a running server over HTTPS with keep-alive.
//!
//! Without `--key`, the benchmark sets itself up with the caller's (administrator) token: a
//! key ring `bench`, a fresh AES-256-GCM key, and a principal `bench-…` with a token, the
//! CRYPTO_USER role on that ring and a quota high enough not to throttle the run. So requests
//! are measured with authentication, authorization and quota accounting all on.

use crate::context::{CliError, Global, Output, Result};
use crate::output::{fields, say};
use clap::{Args, Subcommand};
use hyper::Method;
use serde::Serialize;
use sovra_client::Client;
use sovra_proto::admin::{
    CreateRoleBindingRequest, CreateTokenRequest, CreateTokenResponse, Role, SetQuotaRequest,
};
use sovra_proto::kms::{CreateCryptoKeyRequest, CreateKeyRingRequest, Purpose};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `sovra bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// AES-256-GCM encryptions of a fixed payload.
    Encrypt(EncryptBench),
}

/// Options of `sovra bench encrypt`.
#[derive(Debug, Args)]
pub struct EncryptBench {
    /// Concurrent requests in flight (one connection each with HTTP/1.1).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Plaintext bytes per request.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Use an existing key (RING/KEY) and the given token as is, instead of setting up.
    #[arg(long)]
    pub key: Option<String>,
    /// Use HTTP/2 (all requests multiplexed on one connection).
    #[arg(long)]
    pub http2: bool,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Client runtime threads (0 = one per core). On a small machine shared with the server,
    /// 1 leaves the most CPU to the server.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl BenchCmd {
    /// Runtime threads the benchmark asks for (0 = one per core).
    pub fn threads(&self) -> usize {
        match self {
            Self::Encrypt(e) => e.threads,
        }
    }
}

/// The result line.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Failed requests.
    pub errors: u64,
    /// Successful requests.
    pub ops: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// Concurrency.
    pub concurrency: usize,
    /// Payload bytes.
    pub payload: usize,
}

async fn setup(g: &Global, admin: &Client) -> Result<(String, String)> {
    let loc = &g.location;
    match admin
        .create_key_ring(loc, "bench", &CreateKeyRingRequest::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("ALREADY_EXISTS") => {}
        Err(e) => return Err(e.into()),
    }
    let id = format!(
        "aes-{}",
        sovra_crypto::random::hex_id(4).map_err(|e| CliError::Local(e.to_string()))?
    );
    let ring = format!("locations/{loc}/keyRings/bench");
    let key = admin
        .create_crypto_key(
            &ring,
            &id,
            &CreateCryptoKeyRequest {
                purpose: Purpose::EncryptDecrypt,
                version_template: None,
                rotation_period: None,
                next_rotation_time: None,
                destroy_scheduled_duration: None,
                labels: Default::default(),
                skip_initial_version_creation: false,
            },
        )
        .await?;
    let principal = format!("bench-{id}");
    let tok: CreateTokenResponse = admin
        .post(
            "/v1/tokens",
            &CreateTokenRequest {
                principal: principal.clone(),
                description: "sovra bench".into(),
                ttl: Some("1d".into()),
            },
        )
        .await?;
    let _: serde_json::Value = admin
        .post(
            "/v1/roleBindings",
            &CreateRoleBindingRequest {
                principal: principal.clone(),
                role: Role::CryptoUser,
                scope: ring,
            },
        )
        .await?;
    let _: serde_json::Value = admin
        .put(
            &format!("/v1/quotas/{principal}"),
            &SetQuotaRequest {
                symmetric_per_minute: 1_000_000_000,
                asymmetric_per_minute: 1_000_000,
            },
        )
        .await?;
    Ok((key.name, tok.token))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted.get(idx).copied().unwrap_or(0)) / 1000.0
}

/// Runs `sovra bench …`.
pub async fn run(g: &Global, c: BenchCmd) -> Result<()> {
    let BenchCmd::Encrypt(a) = c;
    if a.concurrency == 0 || a.duration == 0 {
        return Err(CliError::Usage(
            "--concurrency and --duration must be positive".into(),
        ));
    }
    let admin = g.client()?;
    let (key, client) = match &a.key {
        Some(k) => (g.key_name(k)?, g.client_with(a.http2)?),
        None => {
            let (key, token) = setup(g, &admin).await?;
            let ca = g
                .ca_cert
                .as_ref()
                .map(std::fs::read)
                .transpose()
                .map_err(|e| CliError::Local(e.to_string()))?;
            let client = Client::new(sovra_client::ClientConfig {
                url: g.url.clone(),
                token: Some(token),
                ca_pem: ca,
                http2: a.http2,
                ..Default::default()
            })?;
            (key, client)
        }
    };
    let payload = vec![0x5au8; a.payload];
    let body = serde_json::to_vec(&sovra_proto::ops::EncryptRequest {
        plaintext: sovra_proto::b64::encode(&payload),
        additional_authenticated_data: None,
    })
    .map_err(|e| CliError::Local(e.to_string()))?;
    let path = format!("/v1/{key}:encrypt");
    // One request first: fail fast on a setup problem.
    let (status, resp) = client.raw(Method::POST, &path, Some(body.clone())).await?;
    if !status.is_success() {
        return Err(CliError::Local(format!(
            "the first request failed with {status}: {}",
            String::from_utf8_lossy(&resp)
        )));
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(a.concurrency);
    for _ in 0..a.concurrency {
        let (client, path, body) = (client.clone(), path.clone(), body.clone());
        let (measuring, stop, ops, errors) =
            (measuring.clone(), stop.clone(), ops.clone(), errors.clone());
        let http2 = a.http2;
        workers.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
            // HTTP/1.1: one dedicated keep-alive connection per worker; HTTP/2: the shared pool.
            let mut direct = if http2 {
                None
            } else {
                client.direct().await.ok()
            };
            let body = hyper::body::Bytes::from(body);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let res = match direct.as_mut() {
                    Some(c) => c.send(Method::POST, &path, body.clone()).await,
                    None => client.raw(Method::POST, &path, Some(body.to_vec())).await,
                };
                let ok = matches!(res, Ok((s, _)) if s.is_success());
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        ops.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let total = Duration::from_secs(a.duration);
    let bar = indicatif::ProgressBar::new(a.duration * 10);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg}")
    {
        bar.set_style(style);
    }
    while start.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let el = start.elapsed().as_secs_f64();
        bar.set_position((el * 10.0) as u64);
        bar.set_message(format!(
            "{:.0} ops/s, {} errors",
            ops.load(Ordering::Relaxed) as f64 / el.max(0.001),
            errors.load(Ordering::Relaxed)
        ));
    }
    measuring.store(false, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.map_err(|e| CliError::Local(e.to_string()))?);
    }
    all.sort_unstable();
    let n = ops.load(Ordering::Relaxed);
    let r = BenchResult {
        ops_per_sec: (n as f64 / seconds * 10.0).round() / 10.0,
        p50_ms: (percentile(&all, 0.50) * 1000.0).round() / 1000.0,
        p99_ms: (percentile(&all, 0.99) * 1000.0).round() / 1000.0,
        errors: errors.load(Ordering::Relaxed),
        ops: n,
        seconds: (seconds * 100.0).round() / 100.0,
        concurrency: a.concurrency,
        payload: a.payload,
    };
    match g.output {
        Output::Json => say(&serde_json::to_string(&r).unwrap_or_default()),
        Output::Human => fields(&[
            ("key", key),
            ("ops/s", format!("{:.1}", r.ops_per_sec)),
            ("p50", format!("{:.3} ms", r.p50_ms)),
            ("p99", format!("{:.3} ms", r.p99_ms)),
            ("errors", r.errors.to_string()),
            ("requests", r.ops.to_string()),
        ]),
    }
    Ok(())
}
