//! `sovra keys import` and `sovra keys import-job …`: bring an existing key in without anyone
//! seeing it. The key file is read and wrapped here, on the caller's machine, to the import
//! job's key (generated inside the HSM); only the wrapped form travels.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields};
use clap::{Subcommand, ValueEnum};
use sovra_crypto::keywrap;
use sovra_crypto::{LoadedKey, SecretBytes};
use sovra_proto::kms::{
    CreateImportJobRequest, ImportJob, ImportMethod, ImportVersionRequest, Purpose,
};
use std::path::PathBuf;

/// `sovra keys import-job …`.
#[derive(Debug, Subcommand)]
pub enum ImportJobCmd {
    /// Create an import job: an RSA wrapping key generated inside the HSM.
    Create {
        /// RING/ID or a full import-job name.
        job: String,
        /// RSA_OAEP_3072_SHA1_AES_256 (default), RSA_OAEP_4096_SHA1_AES_256,
        /// RSA_OAEP_3072_SHA256_AES_256, RSA_OAEP_4096_SHA256_AES_256, RSA_OAEP_3072_SHA256,
        /// RSA_OAEP_4096_SHA256.
        #[arg(long, default_value = "RSA_OAEP_3072_SHA1_AES_256")]
        method: String,
        /// Level of the versions it imports (default: the server's).
        #[arg(long, value_enum)]
        protection_level: Option<crate::kms::ProtectionArg>,
        /// How long it accepts imports, e.g. 3d (default), at most 30d.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List a key ring's import jobs.
    List {
        /// The key ring.
        ring: String,
    },
    /// Show an import job (its wrapping key and that key's attestation statement).
    Get {
        /// RING/ID or a full import-job name.
        job: String,
    },
}

/// How the key file is encoded.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyFormat {
    /// PEM if it starts like PEM; else raw for AES/HMAC, DER for the others.
    Auto,
    /// PEM: PRIVATE KEY (PKCS#8), EC PRIVATE KEY (SEC1) or RSA PRIVATE KEY (PKCS#1).
    Pem,
    /// DER: PKCS#8, SEC1 or PKCS#1.
    Der,
    /// The 32 key bytes (AES-256, HMAC-SHA256).
    Raw,
}

/// Arguments of `sovra keys import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// RING/KEY or a full crypto-key name.
    pub key: String,
    /// The import job (RING/ID or full name).
    #[arg(long)]
    pub job: String,
    /// The key to import.
    #[arg(long)]
    pub key_file: PathBuf,
    /// Its algorithm, e.g. AES_256_GCM, EC_SIGN_P256_SHA256, RSA_SIGN_PSS_2048_SHA256.
    #[arg(long)]
    pub algorithm: String,
    /// How the key file is encoded.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: KeyFormat,
    /// Import again into this DESTROYED, formerly imported version (its number); the material
    /// must be the one it held.
    #[arg(long)]
    pub version: Option<u32>,
}

fn job_name(g: &Global, s: &str) -> Result<String> {
    if s.starts_with("locations/") {
        return Ok(s.to_owned());
    }
    let (ring, id) = s
        .split_once('/')
        .ok_or_else(|| CliError::Usage(format!("import job {s:?}: use RING/ID or a full name")))?;
    Ok(format!(
        "locations/{}/keyRings/{ring}/importJobs/{id}",
        g.location
    ))
}

fn parse_method(s: &str) -> Result<ImportMethod> {
    ImportMethod::ALL
        .into_iter()
        .find(|m| m.as_str() == s.trim().to_ascii_uppercase())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "unknown import method {s:?}; one of {}",
                ImportMethod::ALL.map(|m| m.as_str()).join(", ")
            ))
        })
}

fn print_job(j: &ImportJob) {
    fields(&[
        ("name", j.name.clone()),
        ("method", j.import_method.as_str().into()),
        (
            "protection level",
            format!("{:?}", j.protection_level).to_uppercase(),
        ),
        ("state", j.state.clone()),
        ("expires", j.expire_time.clone()),
    ]);
    print!("{}", j.public_key);
}

/// Runs `sovra keys import-job …`.
pub async fn job(g: &Global, c: ImportJobCmd) -> Result<()> {
    let client = g.client()?;
    match c {
        ImportJobCmd::Create {
            job,
            method,
            protection_level,
            ttl,
        } => {
            let name = job_name(g, &job)?;
            let (ring, id) = name
                .rsplit_once("/importJobs/")
                .ok_or_else(|| CliError::Usage("bad import job name".into()))?;
            let req = CreateImportJobRequest {
                import_method: parse_method(&method)?,
                protection_level: protection_level.map(Into::into),
                ttl,
            };
            let j = client.create_import_job(ring, id, &req).await?;
            emit(g, &j, print_job);
        }
        ImportJobCmd::List { ring } => {
            let ring = if ring.starts_with("locations/") {
                ring
            } else {
                format!("locations/{}/keyRings/{ring}", g.location)
            };
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let q = token
                    .as_deref()
                    .map(|t| format!("?pageToken={t}"))
                    .unwrap_or_default();
                let page = client.list_import_jobs(&ring, &q).await?;
                all.extend(page.import_jobs);
                match page.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            emit(g, &all, |all| {
                for j in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        j.name,
                        j.import_method.as_str(),
                        j.state,
                        j.expire_time
                    );
                }
            });
        }
        ImportJobCmd::Get { job } => {
            let j = client.get_import_job(&job_name(g, &job)?).await?;
            emit(g, &j, print_job);
        }
    }
    Ok(())
}

/// The key material, as the server expects it: 32 raw bytes for AES/HMAC, PKCS#8 DER else.
fn material(
    bytes: &[u8],
    format: KeyFormat,
    alg: sovra_proto::kms::Algorithm,
) -> Result<SecretBytes> {
    let text = std::str::from_utf8(bytes).ok();
    let is_pem = text.is_some_and(|t| t.trim_start().starts_with("-----BEGIN"));
    let format = match format {
        KeyFormat::Auto if is_pem => KeyFormat::Pem,
        KeyFormat::Auto if alg.is_symmetric() => KeyFormat::Raw,
        KeyFormat::Auto => KeyFormat::Der,
        f => f,
    };
    let der = match format {
        KeyFormat::Raw => return Ok(SecretBytes::from_slice(bytes)),
        KeyFormat::Pem => {
            let t = text.ok_or_else(|| CliError::Usage("the key file is not PEM text".into()))?;
            ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
                .iter()
                .find_map(|l| sovra_crypto::keys::pem_decode(l, t))
                .ok_or_else(|| {
                    CliError::Usage(
                        "the key file holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY PEM block"
                            .into(),
                    )
                })?
        }
        _ => bytes.to_vec(),
    };
    Ok(SecretBytes::new(
        sovra_crypto::keys::to_pkcs8(alg, &der).map_err(|e| CliError::Usage(e.to_string()))?,
    ))
}

/// Runs `sovra keys import`.
pub async fn import(g: &Global, a: ImportArgs) -> Result<()> {
    let client = g.client()?;
    let alg = crate::kms::parse_algorithm(&a.algorithm)?;
    let key = g.key_name(&a.key)?;
    let job = client.get_import_job(&job_name(g, &a.job)?).await?;
    if job.state != "ACTIVE" {
        return Err(CliError::Usage(format!(
            "{} has expired; create a new import job",
            job.name
        )));
    }
    let bytes = std::fs::read(&a.key_file)
        .map_err(|e| CliError::Local(format!("cannot read {}: {e}", a.key_file.display())))?;
    let material = material(&bytes, a.format, alg)?;
    // Checked here first, so a wrong file is said plainly before anything is sent.
    let loaded = LoadedKey::load(alg, material.expose()).map_err(|_| {
        CliError::Usage(format!(
            "{} is not a {} key (AES/HMAC: 32 raw bytes; EC and RSA: a private key)",
            a.key_file.display(),
            alg.as_str()
        ))
    })?;
    let spki = sovra_crypto::keys::pem_decode("PUBLIC KEY", &job.public_key)
        .ok_or_else(|| CliError::Local("the import job's public key is not PEM".into()))?;
    let m = job.import_method;
    let wrapped = if m.with_aes() {
        keywrap::wrap(keywrap::enc_for_oaep(m.sha256()), &spki, material.expose())
            .map_err(|e| CliError::Local(e.to_string()))?
    } else {
        sovra_crypto::keys::oaep_sha256_encrypt(&spki, material.expose())
            .map_err(|e| CliError::Usage(format!("{}: {e}", m.as_str())))?
    };
    let public_key = match alg.purpose() {
        Purpose::AsymmetricSign | Purpose::AsymmetricDecrypt => Some(
            loaded
                .public_key_pem()
                .map_err(|e| CliError::Local(e.to_string()))?,
        ),
        _ => None,
    };
    let req = ImportVersionRequest {
        import_job: job.name.clone(),
        algorithm: alg,
        wrapped_key: sovra_proto::b64::encode(&wrapped),
        public_key,
        crypto_key_version: a.version.map(|n| format!("{key}/cryptoKeyVersions/{n}")),
    };
    let v = client.import_version(&key, &req).await?;
    emit(g, &v, |v| {
        fields(&[
            ("name", v.name.clone()),
            ("algorithm", v.algorithm.as_str()),
            (
                "protection level",
                format!("{:?}", v.protection_level).to_uppercase(),
            ),
        ]);
    });
    Ok(())
}
