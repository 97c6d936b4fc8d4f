//! `sovra bench floor`: the raw signature operations an attestation or a release cannot avoid,
//! timed in process on this machine. It needs no server: it gives the physical floor that
//! `sovra bench attest` and `sovra bench release` are compared against in BENCHMARKS.md.

use crate::context::{CliError, Global, Output, Result};
use crate::output::{fields, say};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use clap::Args;
use serde::Serialize;
use std::time::Instant;

/// Options of `sovra bench floor`.
#[derive(Debug, Args)]
pub struct FloorBench {
    /// Operations timed per primitive.
    #[arg(long, default_value_t = 2000)]
    pub iterations: u32,
}

/// Milliseconds per operation, and what they allow on all cores.
#[derive(Debug, Serialize)]
pub struct Floor {
    rsa2048_sign_ms: f64,
    rsa2048_verify_ms: f64,
    p256_sign_ms: f64,
    p384_verify_ms: f64,
    cores: usize,
    /// SEV-SNP attestation with an RS256 token: one P-384 verify + one RSA-2048 sign, from the
    /// one-thread timings times the cores.
    snp_attest_rs256_per_sec: f64,
    /// The same pair run on every core at once, measured: lower than the line above when the
    /// cores share execution units (SMT siblings) or the host is busy.
    snp_attest_rs256_all_cores_per_sec: f64,
    /// The same with an ES256 token.
    snp_attest_es256_per_sec: f64,
    /// Key release: verify the RS256 attestation token, sign the RS256 response.
    release_rs256_per_sec: f64,
}

fn time(n: u32, mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    op()?;
    let t = Instant::now();
    for _ in 0..n {
        op()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e3 / f64::from(n.max(1)))
}

fn crypto(e: impl std::fmt::Display) -> CliError {
    CliError::Local(format!("signature primitive failed: {e}"))
}

/// Runs `sovra bench floor`.
pub fn run(g: &Global, a: FloorBench) -> Result<()> {
    let n = a.iterations.max(1);
    let rng = SystemRandom::new();
    let msg = [0x5a_u8; 1024];
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(crypto)?;
    let mut sig = vec![0u8; rsa.public_modulus_len()];
    let rsa_sign = time(n, || {
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
            .map_err(crypto)
    })?;
    let rsa_pub = UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        rsa.public_key().as_ref().to_vec(),
    );
    let rsa_verify = time(n, || rsa_pub.verify(&msg, &sig).map_err(crypto))?;

    let p256 = ec_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)?;
    let p256_sign = time(n, || p256.sign(&rng, &msg).map(|_| ()).map_err(crypto))?;

    let p384 = ec_key(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)?;
    let p384_sig = p384.sign(&rng, &msg).map_err(crypto)?;
    let p384_pub = UnparsedPublicKey::new(
        &signature::ECDSA_P384_SHA384_FIXED,
        p384.public_key().as_ref().to_vec(),
    );
    let p384_verify = time(n, || {
        p384_pub.verify(&msg, p384_sig.as_ref()).map_err(crypto)
    })?;

    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    // Every core at once: each thread verifies a P-384 signature and makes an RSA-2048
    // signature in turn, as each attestation does, for the same number of rounds.
    let rsa = std::sync::Arc::new(rsa);
    let started = Instant::now();
    let all: Vec<_> = (0..cores)
        .map(|_| {
            let (rsa, pubkey, sig384) = (rsa.clone(), p384_pub.clone(), p384_sig.as_ref().to_vec());
            std::thread::spawn(move || -> bool {
                let rng = SystemRandom::new();
                let mut out = vec![0u8; rsa.public_modulus_len()];
                (0..n).all(|_| {
                    pubkey.verify(&msg, &sig384).is_ok()
                        && rsa
                            .sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut out)
                            .is_ok()
                })
            })
        })
        .collect();
    for t in all {
        if !t.join().unwrap_or(false) {
            return Err(crypto("a signature operation failed on a worker thread"));
        }
    }
    let all_cores = (cores as f64 * f64::from(n) / started.elapsed().as_secs_f64()).round();
    let per_sec = |ms: f64| (cores as f64 * 1e3 / ms).round();
    let round = |ms: f64| (ms * 1e4).round() / 1e4;
    let f = Floor {
        rsa2048_sign_ms: round(rsa_sign),
        rsa2048_verify_ms: round(rsa_verify),
        p256_sign_ms: round(p256_sign),
        p384_verify_ms: round(p384_verify),
        cores,
        snp_attest_rs256_per_sec: per_sec(p384_verify + rsa_sign),
        snp_attest_rs256_all_cores_per_sec: all_cores,
        snp_attest_es256_per_sec: per_sec(p384_verify + p256_sign),
        release_rs256_per_sec: per_sec(rsa_verify + rsa_sign),
    };
    match g.output {
        Output::Json => say(&serde_json::to_string(&f).unwrap_or_default()),
        Output::Human => fields(&[
            ("RSA-2048 sign", format!("{:.3} ms", f.rsa2048_sign_ms)),
            ("RSA-2048 verify", format!("{:.3} ms", f.rsa2048_verify_ms)),
            ("P-256 sign", format!("{:.3} ms", f.p256_sign_ms)),
            ("P-384 verify", format!("{:.3} ms", f.p384_verify_ms)),
            ("cores", f.cores.to_string()),
            (
                "SNP attest RS256 floor",
                format!("{}/s", f.snp_attest_rs256_per_sec),
            ),
            (
                "  measured on all cores",
                format!("{}/s", f.snp_attest_rs256_all_cores_per_sec),
            ),
            (
                "SNP attest ES256 floor",
                format!("{}/s", f.snp_attest_es256_per_sec),
            ),
            (
                "release RS256 floor",
                format!("{}/s", f.release_rs256_per_sec),
            ),
        ]),
    }
    Ok(())
}

fn ec_key(
    alg: &'static signature::EcdsaSigningAlgorithm,
    rng: &SystemRandom,
) -> Result<EcdsaKeyPair> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, rng).map_err(crypto)?;
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).map_err(crypto)
}
