//! `sovra bench …`: closed-loop load against a running server over HTTPS with keep-alive.
//!
//! Without `--key`, the benchmark sets itself up with the caller's (administrator) token: a
//! key ring `bench`, a fresh key (AES-256-GCM for `encrypt`, the `--algorithm` for `sign`) at
//! the `--protection-level` asked (default: the server's), and a principal `bench-…` with a token, the
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
use sovra_proto::kms::{
    Algorithm, CreateCryptoKeyRequest, CreateKeyRingRequest, Purpose, VersionTemplate,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `sovra bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// AES-256-GCM encryptions of a fixed payload.
    Encrypt(EncryptBench),
    /// Asymmetric signatures of a fixed message (EC P-256 by default).
    Sign(EncryptBench),
    /// Attestations of one piece of evidence: verification, policy and a signed token each.
    Attest(AttestBench),
    /// Key releases: token verification, release policy, wrap to the TEE key, signed response.
    Release(ReleaseBench),
    /// No server: times the raw signature operations each attestation or release needs, and
    /// the rate they alone would allow on this machine's cores (the physical floor).
    Floor(crate::bench_floor::FloorBench),
}

/// Options of `sovra bench release`.
#[derive(Debug, Args)]
pub struct ReleaseBench {
    /// Concurrent requests in flight (one connection each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Client runtime threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Options of `sovra bench attest`.
#[derive(Debug, Args)]
pub struct AttestBench {
    /// Evidence type.
    #[arg(long = "type", value_name = "TYPE", default_value = "sev-snp")]
    pub kind: String,
    /// Attestation provider.
    #[arg(long, default_value = "default")]
    pub provider: String,
    /// Certificates that travel with the evidence; repeatable.
    #[arg(long = "cert-chain", value_name = "FILE")]
    pub cert_chain: Vec<std::path::PathBuf>,
    /// Collateral file (Intel).
    #[arg(long, value_name = "FILE")]
    pub collateral: Option<std::path::PathBuf>,
    /// Concurrent requests in flight (one connection each).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Client runtime threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The evidence file.
    pub evidence: std::path::PathBuf,
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
    /// Protection level of the key the benchmark creates (default: the server's).
    #[arg(long, value_enum)]
    pub protection_level: Option<crate::kms::ProtectionArg>,
    /// Algorithm of the key `sign` creates.
    #[arg(long, default_value = "EC_SIGN_P256_SHA256")]
    pub algorithm: String,
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
    /// Which API to call: Sovra's own, or the Azure Key Vault one (`/keys/K/1/encrypt` with
    /// `A256GCM`, `/keys/K/1/sign` with `ES256` over a SHA-256 digest); the key is then set up
    /// in the server's default vault (key ring `keyvault`).
    #[arg(long, value_enum, default_value = "native")]
    pub api: BenchApi,
}

/// The API `sovra bench encrypt|sign` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchApi {
    /// `/v1/…:encrypt`, `/v1/…:asymmetricSign`.
    Native,
    /// The Azure Key Vault keys API.
    Azure,
}

impl BenchCmd {
    /// Runtime threads the benchmark asks for (0 = one per core).
    pub fn threads(&self) -> usize {
        match self {
            Self::Encrypt(e) | Self::Sign(e) => e.threads,
            Self::Attest(a) => a.threads,
            Self::Release(r) => r.threads,
            Self::Floor(_) => 1,
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

async fn setup(
    g: &Global,
    admin: &Client,
    ring_id: &str,
    purpose: Purpose,
    template: Option<VersionTemplate>,
) -> Result<(String, String)> {
    let loc = &g.location;
    match admin
        .create_key_ring(loc, ring_id, &CreateKeyRingRequest::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("ALREADY_EXISTS") => {}
        Err(e) => return Err(e.into()),
    }
    let id = format!(
        "k-{}",
        sovra_crypto::random::hex_id(4).map_err(|e| CliError::Local(e.to_string()))?
    );
    let ring = format!("locations/{loc}/keyRings/{ring_id}");
    let key = admin
        .create_crypto_key(
            &ring,
            &id,
            &CreateCryptoKeyRequest {
                purpose,
                version_template: template,
                rotation_period: None,
                next_rotation_time: None,
                destroy_scheduled_duration: None,
                labels: Default::default(),
                skip_initial_version_creation: false,
                exportable: None,
                release_policy: None,
                key_ops: None,
            },
        )
        .await?;
    let principal = format!("bench-{id}");
    let tok: CreateTokenResponse = admin
        .create_token(&CreateTokenRequest {
            principal: principal.clone(),
            description: "sovra bench".into(),
            ttl: Some("1d".into()),
        })
        .await?;
    let _ = admin
        .create_role_binding(&CreateRoleBindingRequest {
            principal: principal.clone(),
            role: Role::CryptoUser,
            scope: ring,
        })
        .await?;
    let _ = admin
        .set_quota(
            &principal,
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
    match c {
        BenchCmd::Encrypt(a) => crypto(g, a, false).await,
        BenchCmd::Sign(a) => crypto(g, a, true).await,
        BenchCmd::Attest(a) => attest(g, a).await,
        BenchCmd::Release(r) => crate::bench_release::run(g, r).await,
        BenchCmd::Floor(f) => crate::bench_floor::run(g, f),
    }
}

pub(crate) fn result(m: Measured, concurrency: usize, payload: usize) -> BenchResult {
    BenchResult {
        ops_per_sec: (m.ops as f64 / m.seconds * 10.0).round() / 10.0,
        p50_ms: (percentile(&m.latencies, 0.50) * 1000.0).round() / 1000.0,
        p99_ms: (percentile(&m.latencies, 0.99) * 1000.0).round() / 1000.0,
        errors: m.errors,
        ops: m.ops,
        seconds: (m.seconds * 100.0).round() / 100.0,
        concurrency,
        payload,
    }
}

pub(crate) fn print(g: &Global, what: (&str, String), r: &BenchResult) {
    match g.output {
        Output::Json => say(&serde_json::to_string(r).unwrap_or_default()),
        Output::Human => fields(&[
            what,
            ("ops/s", format!("{:.1}", r.ops_per_sec)),
            ("p50", format!("{:.3} ms", r.p50_ms)),
            ("p99", format!("{:.3} ms", r.p99_ms)),
            ("errors", r.errors.to_string()),
            ("requests", r.ops.to_string()),
        ]),
    }
}

async fn attest(g: &Global, a: AttestBench) -> Result<()> {
    if a.concurrency == 0 || a.duration == 0 {
        return Err(CliError::Usage(
            "--concurrency and --duration must be positive".into(),
        ));
    }
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", p.display())))
    };
    let evidence = read(&a.evidence)?;
    let mut req = sovra_proto::attest::AttestRequest {
        evidence: sovra_proto::b64::encode(&evidence),
        ..Default::default()
    };
    for p in &a.cert_chain {
        req.cert_chain.push(sovra_proto::b64::encode(&read(p)?));
    }
    if let Some(p) = &a.collateral {
        req.collateral = Some(sovra_proto::b64::encode(&read(p)?));
    }
    let body = serde_json::to_vec(&req).map_err(|e| CliError::Local(e.to_string()))?;
    let path = sovra_client::attest::attest_path(
        (a.provider != "default").then_some(a.provider.as_str()),
        crate::attestation::evidence_type(&a.kind)?,
    );
    let client = g.client_anonymous()?;
    let (status, resp) = client.raw(Method::POST, &path, Some(body.clone())).await?;
    if !status.is_success() {
        return Err(CliError::Local(format!(
            "the first attestation failed with {status}: {}",
            String::from_utf8_lossy(&resp)
        )));
    }
    let m = load(
        client,
        path,
        body,
        a.concurrency,
        a.duration,
        a.warmup,
        false,
    )
    .await?;
    let r = result(m, a.concurrency, evidence.len());
    print(g, ("type", a.kind.clone()), &r);
    Ok(())
}

/// `encrypt` (symmetric) or `sign` (asymmetric) against one key.
async fn crypto(g: &Global, a: EncryptBench, sign: bool) -> Result<()> {
    if a.concurrency == 0 || a.duration == 0 {
        return Err(CliError::Usage(
            "--concurrency and --duration must be positive".into(),
        ));
    }
    let admin = g.client()?;
    let (key, client) = match &a.key {
        Some(k) => (g.key_name(k)?, g.client_with(a.http2)?),
        None => {
            let (purpose, algorithm) = if sign {
                (
                    Purpose::AsymmetricSign,
                    crate::kms::parse_algorithm(&a.algorithm)?,
                )
            } else {
                (Purpose::EncryptDecrypt, Algorithm::Aes256Gcm)
            };
            let template = VersionTemplate {
                algorithm,
                protection_level: a.protection_level.map(Into::into),
            };
            let ring = match a.api {
                BenchApi::Native => "bench",
                BenchApi::Azure => "keyvault",
            };
            let (key, token) = setup(g, &admin, ring, purpose, Some(template)).await?;
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
    let data = vec![0x5au8; a.payload];
    let payload = sovra_proto::b64::encode(&data);
    let (body, path) = if a.api == BenchApi::Azure {
        azure_request(&key, sign, &data)?
    } else {
        native_request(&key, sign, payload)?
    };
    // One request first: fail fast on a setup problem.
    let (status, resp) = client.raw(Method::POST, &path, Some(body.clone())).await?;
    if !status.is_success() {
        return Err(CliError::Local(format!(
            "the first request failed with {status}: {}",
            String::from_utf8_lossy(&resp)
        )));
    }
    let m = load(
        client,
        path,
        body,
        a.concurrency,
        a.duration,
        a.warmup,
        a.http2,
    )
    .await?;
    let r = result(m, a.concurrency, a.payload);
    print(g, ("key", key), &r);
    Ok(())
}

/// The body and path of a Key Vault `encrypt` (A256GCM) or `sign` (ES256 of the payload's
/// SHA-256) with version 1 of `key` (a native name in the vault's key ring).
fn azure_request(key: &str, sign: bool, data: &[u8]) -> Result<(Vec<u8>, String)> {
    let id = key.rsplit('/').next().unwrap_or(key);
    let b64 = sovra_crypto::jws::b64url;
    let (op, body) = if sign {
        let digest = sovra_crypto::sha256(data);
        (
            "sign",
            serde_json::json!({"alg": "ES256", "value": b64(&digest)}),
        )
    } else {
        (
            "encrypt",
            serde_json::json!({"alg": "A256GCM", "value": b64(data)}),
        )
    };
    let body = serde_json::to_vec(&body).map_err(|e| CliError::Local(e.to_string()))?;
    Ok((body, format!("/keys/{id}/1/{op}?api-version=2025-07-01")))
}

fn native_request(key: &str, sign: bool, payload: String) -> Result<(Vec<u8>, String)> {
    let (body, verb) = if sign {
        let req = sovra_proto::ops::AsymmetricSignRequest {
            data: Some(payload),
            digest: None,
        };
        (serde_json::to_vec(&req), "asymmetricSign")
    } else {
        let req = sovra_proto::ops::EncryptRequest {
            plaintext: payload,
            additional_authenticated_data: None,
        };
        (serde_json::to_vec(&req), "encrypt")
    };
    let body = body.map_err(|e| CliError::Local(e.to_string()))?;
    Ok((body, sovra_client::kms::verb_path(key, verb)))
}

/// What a load run measured.
pub struct Measured {
    /// Successful requests in the window.
    pub ops: u64,
    /// Failed requests in the window.
    pub errors: u64,
    /// Latencies of the successful requests, µs, sorted.
    pub latencies: Vec<u32>,
    /// Length of the window, s.
    pub seconds: f64,
}

/// Closed-loop load: `concurrency` workers POST `body` to `path` for `duration` seconds after
/// `warmup`, each on its own keep-alive connection (or the shared HTTP/2 pool); progress bar on
/// stderr.
pub async fn load(
    client: Client,
    path: String,
    body: Vec<u8>,
    concurrency: usize,
    duration: u64,
    warmup: u64,
    http2: bool,
) -> Result<Measured> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, path, body) = (client.clone(), path.clone(), body.clone());
        let (measuring, stop, ops, errors) =
            (measuring.clone(), stop.clone(), ops.clone(), errors.clone());
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
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let total = Duration::from_secs(duration);
    let bar = indicatif::ProgressBar::new(duration * 10);
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
    Ok(Measured {
        ops: ops.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        latencies: all,
        seconds,
    })
}
