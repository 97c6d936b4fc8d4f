//! `sovra`: the server and the command-line client of Sovra, in one binary.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod agent;
mod attestation;
mod audit;
mod bench;
mod bench_floor;
mod bench_release;
mod context;
mod demo;
mod evidence;
mod import;
mod key_attestation;
mod kms;
mod output;
mod recover;
mod security_domain;
mod serve;
mod unseal;

use clap::{Parser, Subcommand};

/// mimalloc: measurably faster than glibc malloc under the server's allocation pattern
/// (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use context::Global;

/// Sovra: sovereign key management and remote attestation.
#[derive(Debug, Parser)]
#[command(name = "sovra", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (initialises the data directory on first start).
    Serve(serve::ServeArgs),
    /// Locations (regions whose wrapping keys this deployment's HSM holds).
    #[command(subcommand)]
    Locations(admin::LocationsCmd),
    /// Key rings.
    #[command(subcommand, name = "keyrings")]
    KeyRings(kms::KeyRingsCmd),
    /// Crypto keys.
    #[command(subcommand)]
    Keys(kms::KeysCmd),
    /// Key versions and their lifecycle.
    #[command(subcommand)]
    Versions(kms::VersionsCmd),
    /// Encrypt with a symmetric key (AES-256-GCM).
    Encrypt(kms::EncryptArgs),
    /// Decrypt a ciphertext made by `sovra encrypt`.
    Decrypt(kms::DecryptArgs),
    /// Sign data (or a digest) with an asymmetric signing key.
    Sign(kms::SignArgs),
    /// Verify a signature with an asymmetric signing key.
    Verify(kms::VerifyArgs),
    /// Decrypt RSA-OAEP-SHA256 ciphertext with an asymmetric decryption key.
    AsymDecrypt(kms::AsymDecryptArgs),
    /// Compute an HMAC-SHA256 with a MAC key.
    Mac(kms::MacArgs),
    /// Check an HMAC-SHA256 with a MAC key.
    MacVerify(kms::MacVerifyArgs),
    /// Wrap key material with an AES key-wrap key (RFC 5649; RFC 3394 with --no-padding).
    WrapKey(kms::WrapKeyArgs),
    /// Unwrap key material wrapped by `sovra wrap-key`.
    UnwrapKey(kms::UnwrapKeyArgs),
    /// Print the public key (PEM) of an asymmetric key version.
    PublicKey(kms::PublicKeyArgs),
    /// Random bytes from the server.
    Random(kms::RandomArgs),
    /// API tokens.
    #[command(subcommand)]
    Tokens(admin::TokensCmd),
    /// Role bindings (who may do what, where).
    #[command(subcommand)]
    Roles(admin::RolesCmd),
    /// Per-principal quotas.
    #[command(subcommand)]
    Quotas(admin::QuotasCmd),
    /// Organisation settings.
    #[command(subcommand)]
    Settings(admin::SettingsCmd),
    /// Show who the token authenticates as, and its roles.
    Whoami,
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Offline break-glass: a short-lived Administrator token for a deployment that lost its
    /// administrators (needs the data directory and what unseals the HSM).
    #[command(subcommand)]
    Admin(recover::AdminCmd),
    /// The security domain: export it encrypted to a quorum of administrators, and restore a
    /// new node's HSM from it.
    #[command(subcommand)]
    SecurityDomain(security_domain::SecurityDomainCmd),
    /// Quorum unsealing of the software HSM: set it up, and hand your share to a sealed node.
    #[command(subcommand)]
    Unseal(unseal::UnsealCmd),
    /// Send evidence to the attestation service and get a signed token.
    Attest(attestation::AttestArgs),
    /// Attestation service administration: providers, policies, reference values, collateral.
    #[command(subcommand)]
    Attestation(attestation::AttestationCmd),
    /// The guest agent: attest this TEE and receive a key.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Run the whole secure-key-release flow on this machine (simulated SEV-SNP guest; swtpm too
    /// when installed).
    Demo,
    /// Attestation evidence, verified offline.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCmd),
    /// Load tests against a running server.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

fn main() {
    let cli = Cli::parse();
    // The server and the benchmark size their runtimes; other commands make a few requests.
    let threads = match &cli.command {
        Command::Serve(a) => serve::load_config(a).map(|c| c.worker_threads).unwrap_or(0),
        Command::Bench(b) => b.threads(),
        _ => 1,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let g = cli.global;
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(&g, a).await,
            Command::Locations(c) => admin::locations(&g, c).await,
            Command::KeyRings(c) => kms::key_rings(&g, c).await,
            Command::Keys(c) => kms::keys(&g, c).await,
            Command::Versions(c) => kms::versions(&g, c).await,
            Command::Encrypt(a) => kms::encrypt(&g, a).await,
            Command::Decrypt(a) => kms::decrypt(&g, a).await,
            Command::Sign(a) => kms::sign(&g, a).await,
            Command::Verify(a) => kms::verify(&g, a).await,
            Command::AsymDecrypt(a) => kms::asym_decrypt(&g, a).await,
            Command::Mac(a) => kms::mac(&g, a).await,
            Command::MacVerify(a) => kms::mac_verify(&g, a).await,
            Command::WrapKey(a) => kms::wrap_key(&g, a).await,
            Command::UnwrapKey(a) => kms::unwrap_key(&g, a).await,
            Command::PublicKey(a) => kms::public_key(&g, a).await,
            Command::Random(a) => kms::random(&g, a).await,
            Command::Tokens(c) => admin::tokens(&g, c).await,
            Command::Roles(c) => admin::roles(&g, c).await,
            Command::Quotas(c) => admin::quotas(&g, c).await,
            Command::Settings(c) => admin::settings(&g, c).await,
            Command::Whoami => admin::whoami(&g).await,
            Command::Audit(c) => audit::run(&g, c).await,
            Command::Admin(c) => recover::run(&g, c).await,
            Command::SecurityDomain(c) => security_domain::run(&g, c).await,
            Command::Unseal(c) => unseal::run(&g, c).await,
            Command::Bench(c) => bench::run(&g, c).await,
            Command::Evidence(c) => evidence::run(&g, c),
            Command::Attest(a) => attestation::attest(&g, a).await,
            Command::Agent(c) => agent::run(&g, c).await,
            Command::Demo => demo::run(&g).await,
            Command::Attestation(c) => attestation::run(&g, c).await,
        }
    });
    if let Err(e) = result {
        output::print_error(&g, &e);
        std::process::exit(e.exit_code());
    }
}
