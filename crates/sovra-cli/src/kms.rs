//! Key rings, keys, versions and cryptographic operations.

use crate::context::{CliError, Global, Result, read_input};
use crate::output::{emit, fields, short, table};
use clap::{Args, Subcommand, ValueEnum};
use sovra_proto::b64;
use sovra_proto::kms::*;
use sovra_proto::ops::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `sovra keyrings …`.
#[derive(Debug, Subcommand)]
pub enum KeyRingsCmd {
    /// Create a key ring.
    Create {
        /// Key-ring ID (or full name).
        ring: String,
        /// Audit data-plane operations (encrypt, decrypt, sign, …) on this ring's keys.
        #[arg(long)]
        audit_data_access: bool,
    },
    /// Show a key ring.
    Get {
        /// Key-ring ID or full name.
        ring: String,
    },
    /// List key rings in the location.
    List,
    /// Change a key ring.
    Update {
        /// Key-ring ID or full name.
        ring: String,
        /// Turn data-access auditing on (`true`) or off (`false`).
        #[arg(long, action = clap::ArgAction::Set, value_name = "true|false")]
        audit_data_access: bool,
    },
}

/// What a key is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    /// ENCRYPT_DECRYPT (AES-256-GCM).
    Encrypt,
    /// ASYMMETRIC_SIGN.
    Sign,
    /// ASYMMETRIC_DECRYPT (RSA-OAEP).
    Decrypt,
    /// MAC (HMAC-SHA256).
    Mac,
    /// KEY_WRAP (AES-256 key wrap, RFC 3394 / RFC 5649).
    KeyWrap,
}

/// Where a key's material is generated and used.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProtectionArg {
    /// In the Sovra process; stored wrapped by the location's HSM key.
    Software,
    /// Inside the HSM; it never leaves it in clear.
    Hsm,
}

impl From<ProtectionArg> for ProtectionLevel {
    fn from(p: ProtectionArg) -> Self {
        match p {
            ProtectionArg::Software => ProtectionLevel::Software,
            ProtectionArg::Hsm => ProtectionLevel::Hsm,
        }
    }
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Self {
        match p {
            PurposeArg::Encrypt => Purpose::EncryptDecrypt,
            PurposeArg::Sign => Purpose::AsymmetricSign,
            PurposeArg::Decrypt => Purpose::AsymmetricDecrypt,
            PurposeArg::Mac => Purpose::Mac,
            PurposeArg::KeyWrap => Purpose::KeyWrap,
        }
    }
}

pub(crate) fn parse_algorithm(s: &str) -> Result<Algorithm> {
    let norm = s.trim().to_ascii_uppercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(norm)).map_err(|_| {
        let all: Vec<String> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        CliError::Usage(format!(
            "unknown algorithm {s:?}; one of: {}",
            all.join(", ")
        ))
    })
}

fn parse_key_ops(ops: &[String]) -> Result<Vec<KeyOp>> {
    ops.iter()
        .map(|o| {
            KeyOp::parse(o).ok_or_else(|| {
                CliError::Usage(format!(
                    "key operation {o:?} is not one of encrypt, decrypt, sign, verify, wrapKey, unwrapKey"
                ))
            })
        })
        .collect()
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    labels
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::Usage(format!("label {l:?} must be KEY=VALUE")))
        })
        .collect()
}

/// `sovra keys deleted …`.
#[derive(Debug, Subcommand)]
pub enum DeletedCmd {
    /// List a key ring's deleted keys.
    List {
        /// Key-ring ID or full name.
        ring: String,
    },
    /// Show a deleted key.
    Get {
        /// RING/KEY or full name.
        key: String,
    },
    /// Recover a deleted key as it was.
    Recover {
        /// RING/KEY or full name.
        key: String,
    },
    /// Purge a deleted key whose retention has ended.
    Purge {
        /// RING/KEY or full name.
        key: String,
    },
}

/// `sovra keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a key (and its first version).
    Create {
        /// RING/KEY or a full crypto-key name.
        key: String,
        /// What the key is for.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// Algorithm, e.g. AES_256_GCM, EC_SIGN_P256_SHA256, RSA_SIGN_PSS_3072_SHA256, RSA_DECRYPT_OAEP_3072_SHA256, HMAC_SHA256.
        #[arg(long)]
        algorithm: Option<String>,
        /// Protection level (default: the server's, HSM with a PKCS#11 HSM).
        #[arg(long, value_enum)]
        protection_level: Option<ProtectionArg>,
        /// Automatic rotation period, e.g. 90d (ENCRYPT_DECRYPT keys).
        #[arg(long)]
        rotation_period: Option<String>,
        /// First automatic rotation (RFC 3339).
        #[arg(long)]
        next_rotation_time: Option<String>,
        /// How long destroyed versions stay restorable, e.g. 30d.
        #[arg(long)]
        destroy_scheduled_duration: Option<String>,
        /// Labels, KEY=VALUE (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Create no version yet.
        #[arg(long)]
        skip_initial_version: bool,
        /// Allow release to attested TEEs (needs --release-policy).
        #[arg(long)]
        exportable: bool,
        /// Release policy file (Azure SKR grammar, JSON).
        #[arg(long, value_name = "FILE")]
        release_policy: Option<PathBuf>,
        /// Make the release policy immutable (it can never be changed).
        #[arg(long)]
        immutable_policy: bool,
        /// Limit the key to these operations, e.g. encrypt or wrapKey,unwrapKey (default: all
        /// its purpose offers).
        #[arg(long, value_delimiter = ',')]
        key_ops: Option<Vec<String>>,
    },
    /// Show a key.
    Get {
        /// RING/KEY or full name.
        key: String,
    },
    /// List the keys of a key ring.
    List {
        /// Key-ring ID or full name.
        ring: String,
    },
    /// Change a key's rotation schedule, labels or algorithm of new versions.
    Update {
        /// RING/KEY or full name.
        key: String,
        /// New rotation period ("" turns automatic rotation off).
        #[arg(long)]
        rotation_period: Option<String>,
        /// New next rotation time (RFC 3339).
        #[arg(long)]
        next_rotation_time: Option<String>,
        /// Replace the labels, KEY=VALUE (repeatable).
        #[arg(long = "label")]
        labels: Option<Vec<String>>,
        /// Algorithm of future versions.
        #[arg(long)]
        algorithm: Option<String>,
        /// Protection level of future versions (with --algorithm).
        #[arg(long, value_enum, requires = "algorithm")]
        protection_level: Option<ProtectionArg>,
        /// New release policy file (Azure SKR grammar, JSON).
        #[arg(long, value_name = "FILE")]
        release_policy: Option<PathBuf>,
        /// Make the new release policy immutable.
        #[arg(long)]
        immutable_policy: bool,
        /// The operations the key may be used for from now on (all its purpose offers lifts
        /// the limit), e.g. decrypt or sign,verify.
        #[arg(long, value_delimiter = ',')]
        key_ops: Option<Vec<String>>,
    },
    /// Create a new version and make it primary.
    Rotate {
        /// RING/KEY or full name.
        key: String,
    },
    /// Delete a key recoverably: out of reach at once, kept for its destroy-scheduled
    /// duration (see `keys deleted`), then purged.
    Delete {
        /// RING/KEY or full name.
        key: String,
    },
    /// Deleted keys: list, show, recover, purge.
    #[command(subcommand)]
    Deleted(DeletedCmd),
    /// Make an existing ENABLED version primary.
    SetPrimary {
        /// RING/KEY or full name.
        key: String,
        /// Version number.
        version: String,
    },
    /// Import an existing key (PEM, DER or raw file) as a new version, wrapped here to an
    /// import job's key (KEY_IMPORTER).
    Import(crate::import::ImportArgs),
    /// Import jobs: RSA wrapping keys generated inside the HSM.
    ImportJob {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::import::ImportJobCmd,
    },
    /// Key attestation statements: get, verify offline, the owner root.
    Attestation {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::key_attestation::KeyAttestationCmd,
    },
}

/// `sovra versions …`.
#[derive(Debug, Subcommand)]
pub enum VersionsCmd {
    /// List a key's versions.
    List {
        /// RING/KEY.
        key: String,
    },
    /// Show one version.
    Get {
        /// RING/KEY.
        key: String,
        /// Version number.
        version: String,
    },
    /// Create a version (primary only if the key has none; use `keys rotate` to switch).
    Create {
        /// RING/KEY.
        key: String,
    },
    /// Enable a DISABLED version.
    Enable {
        /// RING/KEY.
        key: String,
        /// Version number.
        version: String,
    },
    /// Disable a version (it can be enabled again).
    Disable {
        /// RING/KEY.
        key: String,
        /// Version number.
        version: String,
    },
    /// Schedule a version's destruction (restorable until its destroy time).
    Destroy {
        /// RING/KEY.
        key: String,
        /// Version number.
        version: String,
    },
    /// Cancel a scheduled destruction (the version becomes DISABLED).
    Restore {
        /// RING/KEY.
        key: String,
        /// Version number.
        version: String,
    },
}

fn state_name(s: VersionState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn print_version(v: &CryptoKeyVersion) {
    fields(&[
        ("name", v.name.clone()),
        ("state", state_name(v.state)),
        ("algorithm", v.algorithm.as_str()),
        (
            "protection",
            format!("{:?}", v.protection_level).to_uppercase(),
        ),
        ("created", v.create_time.clone()),
        ("destroy time", v.destroy_time.clone().unwrap_or_default()),
        (
            "destroyed at",
            v.destroy_event_time.clone().unwrap_or_default(),
        ),
    ]);
}

fn print_deleted(d: &DeletedCryptoKey) {
    fields(&[
        ("name", d.crypto_key.name.clone()),
        ("deleted", d.delete_time.clone()),
        ("purged from", d.purge_time.clone()),
    ]);
}

/// The ring and key ID of RING/KEY.
fn ring_and_id(g: &Global, key: &str) -> Result<(String, String)> {
    let name = g.key_name(key)?;
    match name.rsplit_once("/cryptoKeys/") {
        Some((ring, id)) => Ok((ring.to_owned(), id.to_owned())),
        None => Err(CliError::Usage(format!("{key} is not a crypto-key name"))),
    }
}

async fn deleted(g: &Global, client: &sovra_client::Client, c: DeletedCmd) -> Result<()> {
    match c {
        DeletedCmd::List { ring } => {
            let ring = g.ring_name(&ring)?;
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let q = token
                    .as_deref()
                    .map(|t| format!("?pageToken={}", urlencode(t)))
                    .unwrap_or_default();
                let r = client.list_deleted_keys(&ring, &q).await?;
                all.extend(r.deleted_keys);
                match r.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            emit(g, &all, |ds| {
                table(
                    &["KEY", "DELETED", "PURGED FROM"],
                    ds.iter()
                        .map(|d| {
                            vec![
                                short(&d.crypto_key.name),
                                d.delete_time.clone(),
                                d.purge_time.clone(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        DeletedCmd::Get { key } => {
            let (ring, id) = ring_and_id(g, &key)?;
            emit(g, &client.get_deleted_key(&ring, &id).await?, print_deleted);
        }
        DeletedCmd::Recover { key } => {
            let (ring, id) = ring_and_id(g, &key)?;
            emit(g, &client.recover_deleted_key(&ring, &id).await?, print_key);
        }
        DeletedCmd::Purge { key } => {
            let (ring, id) = ring_and_id(g, &key)?;
            client.purge_deleted_key(&ring, &id).await?;
            emit(
                g,
                &serde_json::json!({"purged": format!("{ring}/cryptoKeys/{id}")}),
                |_| crate::output::say(&format!("purged {ring}/cryptoKeys/{id}")),
            );
        }
    }
    Ok(())
}

fn print_key(k: &CryptoKey) {
    fields(&[
        ("name", k.name.clone()),
        (
            "purpose",
            serde_json::to_value(k.purpose)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        ("algorithm", k.version_template.algorithm.as_str()),
        (
            "primary",
            k.primary
                .as_ref()
                .map(|p| format!("{} ({})", short(&p.name), state_name(p.state)))
                .unwrap_or_else(|| "none".into()),
        ),
        ("rotation", k.rotation_period.clone().unwrap_or_default()),
        (
            "next rotation",
            k.next_rotation_time.clone().unwrap_or_default(),
        ),
        ("destroy delay", k.destroy_scheduled_duration.clone()),
        (
            "labels",
            k.labels
                .iter()
                .map(|(a, b)| format!("{a}={b}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("created", k.create_time.clone()),
    ]);
}

/// Runs `sovra keyrings …`.
pub async fn key_rings(g: &Global, c: KeyRingsCmd) -> Result<()> {
    let client = g.client()?;
    let human = |r: &KeyRing| {
        fields(&[
            ("name", r.name.clone()),
            ("created", r.create_time.clone()),
            ("audit data access", r.audit_data_access.to_string()),
        ])
    };
    match c {
        KeyRingsCmd::Create {
            ring,
            audit_data_access,
        } => {
            let name = g.ring_name(&ring)?;
            let (loc, id) = name
                .split_once("/keyRings/")
                .ok_or_else(|| CliError::Usage("bad key-ring name".into()))?;
            let r: KeyRing = client
                .create_key_ring(
                    loc.trim_start_matches("locations/"),
                    id,
                    &CreateKeyRingRequest { audit_data_access },
                )
                .await?;
            emit(g, &r, human);
        }
        KeyRingsCmd::Get { ring } => {
            emit(g, &client.get_key_ring(&g.ring_name(&ring)?).await?, human)
        }
        KeyRingsCmd::List => {
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let q = token
                    .as_deref()
                    .map(|t| format!("?pageToken={}", urlencode(t)))
                    .unwrap_or_default();
                let r: ListKeyRingsResponse = client
                    .list_key_rings(&format!("locations/{}", g.location), &q)
                    .await?;
                all.extend(r.key_rings);
                match r.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            emit(g, &all, |rs| {
                table(
                    &["KEY RING", "CREATED", "AUDIT DATA ACCESS"],
                    rs.iter()
                        .map(|r| {
                            vec![
                                short(&r.name),
                                r.create_time.clone(),
                                r.audit_data_access.to_string(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        KeyRingsCmd::Update {
            ring,
            audit_data_access,
        } => {
            let r: KeyRing = client
                .update_key_ring(
                    &g.ring_name(&ring)?,
                    &UpdateKeyRingRequest {
                        audit_data_access: Some(audit_data_access),
                    },
                )
                .await?;
            emit(g, &r, human);
        }
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `sovra keys …`.
pub async fn keys(g: &Global, c: KeysCmd) -> Result<()> {
    let c = match c {
        KeysCmd::Attestation { cmd } => return crate::key_attestation::run(g, cmd).await,
        KeysCmd::Import(a) => return crate::import::import(g, a).await,
        KeysCmd::ImportJob { cmd } => return crate::import::job(g, cmd).await,
        other => other,
    };
    let client = g.client()?;
    match c {
        KeysCmd::Create {
            key,
            purpose,
            algorithm,
            protection_level,
            rotation_period,
            next_rotation_time,
            destroy_scheduled_duration,
            labels,
            skip_initial_version,
            exportable,
            release_policy,
            immutable_policy,
            key_ops,
        } => {
            let name = g.key_name(&key)?;
            let (ring, id) = name
                .rsplit_once("/cryptoKeys/")
                .ok_or_else(|| CliError::Usage("bad key name".into()))?;
            let req = CreateCryptoKeyRequest {
                purpose: purpose.into(),
                version_template: match (
                    algorithm.as_deref().map(parse_algorithm).transpose()?,
                    protection_level,
                ) {
                    (None, None) => None,
                    (a, level) => Some(VersionTemplate {
                        algorithm: a.unwrap_or(Algorithm::default_for(purpose.into())),
                        protection_level: level.map(Into::into),
                    }),
                },
                rotation_period,
                next_rotation_time,
                destroy_scheduled_duration,
                labels: parse_labels(&labels)?,
                skip_initial_version_creation: skip_initial_version,
                exportable: exportable.then_some(true),
                release_policy: read_release_policy(release_policy.as_ref(), immutable_policy)?,
                key_ops: key_ops.as_deref().map(parse_key_ops).transpose()?,
            };
            emit(
                g,
                &client.create_crypto_key(ring, id, &req).await?,
                print_key,
            );
        }
        KeysCmd::Get { key } => emit(
            g,
            &client.get_crypto_key(&g.key_name(&key)?).await?,
            print_key,
        ),
        KeysCmd::List { ring } => {
            let ring = g.ring_name(&ring)?;
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let q = token
                    .as_deref()
                    .map(|t| format!("?pageToken={}", urlencode(t)))
                    .unwrap_or_default();
                let r: ListCryptoKeysResponse = client.list_crypto_keys(&ring, &q).await?;
                all.extend(r.crypto_keys);
                match r.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            emit(g, &all, |ks| {
                table(
                    &["KEY", "PURPOSE", "ALGORITHM", "PRIMARY", "NEXT ROTATION"],
                    ks.iter()
                        .map(|k| {
                            vec![
                                short(&k.name),
                                serde_json::to_value(k.purpose)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                                k.version_template.algorithm.as_str(),
                                k.primary
                                    .as_ref()
                                    .map(|p| short(&p.name))
                                    .unwrap_or_else(|| "-".into()),
                                k.next_rotation_time.clone().unwrap_or_else(|| "-".into()),
                            ]
                        })
                        .collect(),
                )
            });
        }
        KeysCmd::Update {
            key,
            rotation_period,
            next_rotation_time,
            labels,
            algorithm,
            protection_level,
            release_policy,
            immutable_policy,
            key_ops,
        } => {
            let req =
                UpdateCryptoKeyRequest {
                    key_ops: key_ops.as_deref().map(parse_key_ops).transpose()?,
                    rotation_period,
                    next_rotation_time,
                    labels: labels.as_deref().map(parse_labels).transpose()?,
                    version_template: algorithm.as_deref().map(parse_algorithm).transpose()?.map(
                        |a| VersionTemplate {
                            algorithm: a,
                            protection_level: protection_level.map(Into::into),
                        },
                    ),
                    release_policy: read_release_policy(release_policy.as_ref(), immutable_policy)?,
                };
            let k: CryptoKey = client.update_crypto_key(&g.key_name(&key)?, &req).await?;
            emit(g, &k, print_key);
        }
        KeysCmd::Rotate { key } => emit(g, &client.rotate(&g.key_name(&key)?).await?, print_key),
        KeysCmd::Delete { key } => {
            let d = client.delete_crypto_key(&g.key_name(&key)?).await?;
            emit(g, &d, print_deleted);
        }
        KeysCmd::Deleted(c) => deleted(g, &client, c).await?,
        KeysCmd::SetPrimary { key, version } => {
            let k: CryptoKey = client
                .update_primary_version(
                    &g.key_name(&key)?,
                    &UpdatePrimaryVersionRequest {
                        crypto_key_version_id: version,
                    },
                )
                .await?;
            emit(g, &k, print_key);
        }
        KeysCmd::Attestation { .. } | KeysCmd::Import(_) | KeysCmd::ImportJob { .. } => {}
    }
    Ok(())
}

/// Runs `sovra versions …`.
pub async fn versions(g: &Global, c: VersionsCmd) -> Result<()> {
    let client = g.client()?;
    let v = match c {
        VersionsCmd::List { key } => {
            let key = g.key_name(&key)?;
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let q = token
                    .as_deref()
                    .map(|t| format!("?pageToken={}", urlencode(t)))
                    .unwrap_or_default();
                let r: ListVersionsResponse = client.list_versions(&key, &q).await?;
                all.extend(r.crypto_key_versions);
                match r.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            emit(g, &all, |vs| {
                table(
                    &["VERSION", "STATE", "ALGORITHM", "CREATED", "DESTROY TIME"],
                    vs.iter()
                        .map(|v| {
                            vec![
                                short(&v.name),
                                state_name(v.state),
                                v.algorithm.as_str(),
                                v.create_time.clone(),
                                v.destroy_time.clone().unwrap_or_else(|| "-".into()),
                            ]
                        })
                        .collect(),
                )
            });
            return Ok(());
        }
        VersionsCmd::Get { key, version } => {
            client.get_version(&g.version_name(&key, &version)?).await?
        }
        VersionsCmd::Create { key } => client.create_version(&g.key_name(&key)?).await?,
        VersionsCmd::Enable { key, version } => {
            client
                .set_version_state(&g.version_name(&key, &version)?, VersionState::Enabled)
                .await?
        }
        VersionsCmd::Disable { key, version } => {
            client
                .set_version_state(&g.version_name(&key, &version)?, VersionState::Disabled)
                .await?
        }
        VersionsCmd::Destroy { key, version } => {
            client
                .destroy_version(&g.version_name(&key, &version)?)
                .await?
        }
        VersionsCmd::Restore { key, version } => {
            client
                .restore_version(&g.version_name(&key, &version)?)
                .await?
        }
    };
    emit(g, &v, print_version);
    Ok(())
}

/// `sovra encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// RING/KEY or full name.
    pub key: String,
    /// Plaintext (UTF-8); or use --in.
    #[arg(long)]
    pub plaintext: Option<String>,
    /// Read the plaintext from a file (- for stdin).
    #[arg(long = "in")]
    pub input: Option<PathBuf>,
    /// Additional authenticated data (UTF-8), needed again to decrypt.
    #[arg(long)]
    pub aad: Option<String>,
}

/// `sovra decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// RING/KEY or full name.
    pub key: String,
    /// Ciphertext (base64); or use --in.
    #[arg(long)]
    pub ciphertext: Option<String>,
    /// Read the base64 ciphertext from a file (- for stdin).
    #[arg(long = "in")]
    pub input: Option<PathBuf>,
    /// The AAD given at encryption.
    #[arg(long)]
    pub aad: Option<String>,
    /// Write the plaintext to this file (mode 0600) instead of stdout.
    #[arg(long = "out")]
    pub output_file: Option<PathBuf>,
}

/// Runs `sovra encrypt`.
pub async fn encrypt(g: &Global, a: EncryptArgs) -> Result<()> {
    let pt = read_input(a.plaintext.as_deref(), a.input.as_ref(), "plaintext")?;
    let r = g
        .client()?
        .encrypt(
            &g.key_name(&a.key)?,
            &pt,
            a.aad.as_deref().map(str::as_bytes),
        )
        .await?;
    emit(g, &r, |r| crate::output::say(&r.ciphertext));
    Ok(())
}

/// Runs `sovra decrypt`.
pub async fn decrypt(g: &Global, a: DecryptArgs) -> Result<()> {
    let ct = read_input(a.ciphertext.as_deref(), a.input.as_ref(), "ciphertext")?;
    let ct = String::from_utf8(ct)
        .map_err(|_| CliError::Usage("the ciphertext must be base64 text".into()))?;
    let req = DecryptRequest {
        ciphertext: ct.trim().to_owned(),
        additional_authenticated_data: a.aad.as_deref().map(|s| b64::encode(s.as_bytes())),
    };
    let r: DecryptResponse = g
        .client()?
        .decrypt_request(&g.key_name(&a.key)?, &req)
        .await?;
    let pt = b64::decode(&r.plaintext).map_err(|e| CliError::Local(e.to_string()))?;
    if let Some(path) = &a.output_file {
        sovra_hsm::soft::write_private_file(path, &pt)
            .map_err(|e| CliError::Local(format!("cannot write {}: {e}", path.display())))?;
        return Ok(());
    }
    match g.output {
        crate::context::Output::Json => emit(g, &r, |_| {}),
        crate::context::Output::Human => crate::output::write_raw(&pt),
    }
    Ok(())
}

/// Data to sign or verify.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data (UTF-8); or use --in or --digest.
    #[arg(long)]
    pub data: Option<String>,
    /// Read the data from a file (- for stdin).
    #[arg(long = "in")]
    pub input: Option<PathBuf>,
    /// A precomputed digest, hex; its hash is the algorithm's (SHA-256, SHA-384 or SHA-512 by length).
    #[arg(long)]
    pub digest: Option<String>,
}

impl DataArgs {
    fn split(&self) -> Result<(Option<String>, Option<Digest>)> {
        if let Some(hex) = &self.digest {
            if self.data.is_some() || self.input.is_some() {
                return Err(CliError::Usage("give data or --digest, not both".into()));
            }
            let bytes = sovra_attest_free_hex(hex)
                .ok_or_else(|| CliError::Usage("--digest must be hex".into()))?;
            let e = b64::encode(&bytes);
            let d = match bytes.len() {
                32 => Digest {
                    sha256: Some(e),
                    sha384: None,
                    sha512: None,
                },
                48 => Digest {
                    sha256: None,
                    sha384: Some(e),
                    sha512: None,
                },
                64 => Digest {
                    sha256: None,
                    sha384: None,
                    sha512: Some(e),
                },
                n => {
                    return Err(CliError::Usage(format!(
                        "--digest is {n} bytes; expected 32, 48 or 64"
                    )));
                }
            };
            return Ok((None, Some(d)));
        }
        let data = read_input(self.data.as_deref(), self.input.as_ref(), "data")?;
        Ok((Some(b64::encode(&data)), None))
    }
}

fn sovra_attest_free_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// `sovra sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// RING/KEY (primary version) or RING/KEY@N.
    pub key: String,
    #[command(flatten)]
    data: DataArgs,
}

/// `sovra verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// RING/KEY or RING/KEY@N.
    pub key: String,
    #[command(flatten)]
    data: DataArgs,
    /// The signature, base64.
    #[arg(long)]
    pub signature: String,
}

/// Runs `sovra sign`.
pub async fn sign(g: &Global, a: SignArgs) -> Result<()> {
    let (data, digest) = a.data.split()?;
    let r: AsymmetricSignResponse = g
        .client()?
        .asymmetric_sign(
            &g.key_or_version(&a.key)?,
            &AsymmetricSignRequest { data, digest },
        )
        .await?;
    emit(g, &r, |r| crate::output::say(&r.signature));
    Ok(())
}

/// Runs `sovra verify`; exits 1 if the signature is invalid.
pub async fn verify(g: &Global, a: VerifyArgs) -> Result<()> {
    let (data, digest) = a.data.split()?;
    let r: VerifyResponse = g
        .client()?
        .asymmetric_verify(
            &g.key_or_version(&a.key)?,
            &AsymmetricVerifyRequest {
                data,
                digest,
                signature: a.signature,
            },
        )
        .await?;
    emit(g, &r, |r| {
        crate::output::say(if r.valid { "valid" } else { "INVALID" })
    });
    if !r.valid {
        return Err(CliError::Local(format!(
            "the signature does not verify with {}",
            r.name
        )));
    }
    Ok(())
}

/// `sovra asym-decrypt`.
#[derive(Debug, Args)]
pub struct AsymDecryptArgs {
    /// RING/KEY or RING/KEY@N.
    pub key: String,
    /// Ciphertext, base64 (or --in).
    #[arg(long)]
    pub ciphertext: Option<String>,
    /// Read base64 ciphertext from a file.
    #[arg(long = "in")]
    pub input: Option<PathBuf>,
}

/// Runs `sovra asym-decrypt`.
pub async fn asym_decrypt(g: &Global, a: AsymDecryptArgs) -> Result<()> {
    let ct = read_input(a.ciphertext.as_deref(), a.input.as_ref(), "ciphertext")?;
    let ct = String::from_utf8(ct)
        .map_err(|_| CliError::Usage("the ciphertext must be base64 text".into()))?;
    let r: AsymmetricDecryptResponse = g
        .client()?
        .asymmetric_decrypt(
            &g.key_or_version(&a.key)?,
            &AsymmetricDecryptRequest {
                ciphertext: ct.trim().to_owned(),
            },
        )
        .await?;
    match g.output {
        crate::context::Output::Json => emit(g, &r, |_| {}),
        crate::context::Output::Human => crate::output::write_raw(
            &b64::decode(&r.plaintext).map_err(|e| CliError::Local(e.to_string()))?,
        ),
    }
    Ok(())
}

/// `sovra mac`.
#[derive(Debug, Args)]
pub struct MacArgs {
    /// RING/KEY or RING/KEY@N.
    pub key: String,
    /// The data (UTF-8), or --in.
    #[arg(long)]
    pub data: Option<String>,
    /// Read the data from a file.
    #[arg(long = "in")]
    pub input: Option<PathBuf>,
}

/// `sovra mac-verify`.
#[derive(Debug, Args)]
pub struct MacVerifyArgs {
    /// RING/KEY or RING/KEY@N.
    pub key: String,
    /// The data (UTF-8), or --in.
    #[arg(long)]
    pub data: Option<String>,
    /// Read the data from a file.
    #[arg(long = "in")]
    pub input: Option<PathBuf>,
    /// The MAC, base64.
    #[arg(long)]
    pub mac: String,
}

/// `sovra wrap-key`.
#[derive(Debug, Args)]
pub struct WrapKeyArgs {
    /// RING/KEY or RING/KEY@N (a KEY_WRAP key).
    pub key: String,
    /// The key material to wrap, from this file.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// RFC 3394 (AES_KEY_WRAP; a multiple of 8 bytes, at least 16) instead of RFC 5649.
    #[arg(long)]
    pub no_padding: bool,
}

/// `sovra unwrap-key`.
#[derive(Debug, Args)]
pub struct UnwrapKeyArgs {
    /// RING/KEY@N, the version that wrapped it (RING/KEY: the primary).
    pub key: String,
    /// The wrapped key, base64.
    #[arg(long)]
    pub wrapped: String,
    /// Write the key material to this new file (mode 0600) instead of printing it as base64.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// It was wrapped with RFC 3394 (AES_KEY_WRAP).
    #[arg(long)]
    pub no_padding: bool,
}

fn wrap_mode(no_padding: bool) -> KeyWrapMode {
    if no_padding {
        KeyWrapMode::AesKeyWrap
    } else {
        KeyWrapMode::AesKeyWrapPad
    }
}

/// Runs `sovra wrap-key`.
pub async fn wrap_key(g: &Global, a: WrapKeyArgs) -> Result<()> {
    let key = read_input(None, Some(&a.input), "key")?;
    let r: WrapKeyResponse = g
        .client()?
        .wrap_key(
            &g.key_or_version(&a.key)?,
            &WrapKeyRequest {
                key: b64::encode(&key),
                mode: wrap_mode(a.no_padding),
            },
        )
        .await?;
    emit(g, &r, |r| crate::output::say(&r.wrapped_key));
    Ok(())
}

/// Runs `sovra unwrap-key`.
pub async fn unwrap_key(g: &Global, a: UnwrapKeyArgs) -> Result<()> {
    let r: UnwrapKeyResponse = g
        .client()?
        .unwrap_key(
            &g.key_or_version(&a.key)?,
            &UnwrapKeyRequest {
                wrapped_key: a.wrapped,
                mode: wrap_mode(a.no_padding),
            },
        )
        .await?;
    match &a.out {
        Some(path) => {
            let key = b64::decode(&r.key)
                .map_err(|_| CliError::Local("the server sent a key that is not base64".into()))?;
            crate::security_domain::write_new(path, &key)?;
            emit(g, &serde_json::json!({"name": r.name, "out": path}), |_| {
                crate::output::say(&format!("wrote {}", path.display()))
            });
        }
        None => emit(g, &r, |r| crate::output::say(&r.key)),
    }
    Ok(())
}

/// Runs `sovra mac`.
pub async fn mac(g: &Global, a: MacArgs) -> Result<()> {
    let data = read_input(a.data.as_deref(), a.input.as_ref(), "data")?;
    let r: MacSignResponse = g
        .client()?
        .mac_sign(
            &g.key_or_version(&a.key)?,
            &MacSignRequest {
                data: b64::encode(&data),
            },
        )
        .await?;
    emit(g, &r, |r| crate::output::say(&r.mac));
    Ok(())
}

/// Runs `sovra mac-verify`; exits 1 if the MAC is wrong.
pub async fn mac_verify(g: &Global, a: MacVerifyArgs) -> Result<()> {
    let data = read_input(a.data.as_deref(), a.input.as_ref(), "data")?;
    let r: VerifyResponse = g
        .client()?
        .mac_verify(
            &g.key_or_version(&a.key)?,
            &MacVerifyRequest {
                data: b64::encode(&data),
                mac: a.mac,
            },
        )
        .await?;
    emit(g, &r, |r| {
        crate::output::say(if r.valid { "valid" } else { "INVALID" })
    });
    if !r.valid {
        return Err(CliError::Local(format!(
            "the MAC does not verify with {}",
            r.name
        )));
    }
    Ok(())
}

/// `sovra public-key`.
#[derive(Debug, Args)]
pub struct PublicKeyArgs {
    /// RING/KEY or RING/KEY@N.
    pub key: String,
}

/// Runs `sovra public-key`.
pub async fn public_key(g: &Global, a: PublicKeyArgs) -> Result<()> {
    let r: PublicKey = g.client()?.public_key(&g.key_or_version(&a.key)?).await?;
    emit(g, &r, |r| crate::output::write_raw(r.pem.as_bytes()));
    Ok(())
}

/// `sovra random`.
#[derive(Debug, Args)]
pub struct RandomArgs {
    /// Number of bytes (1–1024).
    #[arg(long, default_value_t = 32)]
    pub bytes: u32,
}

/// Runs `sovra random`.
pub async fn random(g: &Global, a: RandomArgs) -> Result<()> {
    let r: GenerateRandomBytesResponse = g
        .client()?
        .generate_random_bytes(
            &format!("locations/{}", g.location),
            &GenerateRandomBytesRequest {
                length_bytes: a.bytes,
            },
        )
        .await?;
    emit(g, &r, |r| crate::output::say(&r.data));
    Ok(())
}

/// Reads a release-policy file.
fn read_release_policy(
    file: Option<&PathBuf>,
    immutable: bool,
) -> Result<Option<sovra_proto::kms::ReleasePolicy>> {
    let Some(f) = file else { return Ok(None) };
    let text = std::fs::read_to_string(f)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", f.display())))?;
    let policy: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", f.display())))?;
    Ok(Some(sovra_proto::kms::ReleasePolicy { policy, immutable }))
}
