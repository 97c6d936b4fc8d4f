//! Global flags, the client they configure, resource-name shorthands, and the CLI's error type.

use clap::{Args, ValueEnum};
use sovra_client::{Client, ClientConfig, ClientError};
use sovra_proto::names::{self, ResourceName};
use std::path::PathBuf;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Tables and sentences for people.
    #[default]
    Human,
    /// One JSON document per command, for scripts.
    Json,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "SOVRA_URL",
        default_value = "https://127.0.0.1:8443"
    )]
    pub url: String,
    /// API token.
    #[arg(long, global = true, env = "SOVRA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that issued the server's certificate, e.g. DATA_DIR/tls/ca.pem.
    #[arg(long, global = true, env = "SOVRA_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Location used for short names like RING/KEY.
    #[arg(long, global = true, env = "SOVRA_LOCATION", default_value = "global")]
    pub location: String,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// A CLI failure.
#[derive(Debug)]
pub enum CliError {
    /// From the server or the transport.
    Client(ClientError),
    /// A usage or local problem.
    Usage(String),
    /// Something local failed (files, server start).
    Local(String),
    /// A local check failed with a stable code (e.g. offline evidence verification).
    Coded {
        /// Stable code, e.g. `ATTEST_SIGNATURE_INVALID`.
        code: String,
        /// What failed.
        message: String,
    },
}

impl CliError {
    /// Process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(e) => e.fmt(f),
            Self::Usage(m) | Self::Local(m) => f.write_str(m),
            Self::Coded { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

/// CLI result.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl Global {
    /// A client from the flags.
    pub fn client(&self) -> Result<Client> {
        self.client_with(false)
    }

    /// A client, optionally HTTP/2.
    pub fn client_with(&self, http2: bool) -> Result<Client> {
        self.build_client(http2, true)
    }

    /// A client that sends the token if there is one but does not need it (attestation).
    pub fn client_anonymous(&self) -> Result<Client> {
        self.build_client(false, false)
    }

    fn build_client(&self, http2: bool, need_token: bool) -> Result<Client> {
        let ca_pem = match &self.ca_cert {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                CliError::Usage(format!(
                    "cannot read the CA certificate {}: {e}",
                    p.display()
                ))
            })?),
            None => None,
        };
        let token = self.token.clone().filter(|t| !t.is_empty());
        if token.is_none() && need_token {
            return Err(CliError::Usage("no API token: set SOVRA_TOKEN (or --token); the first one is in DATA_DIR/admin.token".into()));
        }
        Ok(Client::new(ClientConfig {
            url: self.url.clone(),
            token,
            ca_pem,
            http2,
            ..Default::default()
        })?)
    }

    /// Expands `RING` into a key-ring name.
    pub fn ring_name(&self, s: &str) -> Result<String> {
        if s.starts_with("locations/") {
            return match s.parse::<ResourceName>() {
                Ok(ResourceName::KeyRing(n)) => Ok(n.to_string()),
                Ok(_) => Err(CliError::Usage(format!("{s} is not a key-ring name"))),
                Err(e) => Err(CliError::Usage(e.0)),
            };
        }
        let loc = names::LocationName::new(&self.location).map_err(|e| CliError::Usage(e.0))?;
        Ok(loc
            .key_ring(s)
            .map_err(|e| CliError::Usage(e.0))?
            .to_string())
    }

    /// Expands `RING/KEY` (or a full name) into a crypto-key name.
    pub fn key_name(&self, s: &str) -> Result<String> {
        if s.starts_with("locations/") {
            return match s.parse::<ResourceName>() {
                Ok(ResourceName::CryptoKey(n)) => Ok(n.to_string()),
                Ok(_) => Err(CliError::Usage(format!("{s} is not a crypto-key name"))),
                Err(e) => Err(CliError::Usage(e.0)),
            };
        }
        let (ring, key) = s.split_once('/').ok_or_else(|| {
            CliError::Usage(format!(
                "{s:?}: name a key as RING/KEY or by its full resource name"
            ))
        })?;
        let loc = names::LocationName::new(&self.location).map_err(|e| CliError::Usage(e.0))?;
        Ok(loc
            .key_ring(ring)
            .and_then(|r| r.crypto_key(key))
            .map_err(|e| CliError::Usage(e.0))?
            .to_string())
    }

    /// Expands `RING/KEY[@N]` into a key or version name.
    pub fn key_or_version(&self, s: &str) -> Result<String> {
        if s.contains("/cryptoKeyVersions/") {
            return match s.parse::<ResourceName>() {
                Ok(ResourceName::Version(n)) => Ok(n.to_string()),
                _ => Err(CliError::Usage(format!("{s} is not a key-version name"))),
            };
        }
        match s.rsplit_once('@') {
            Some((k, v)) => {
                let n = names::parse_version(v).map_err(|e| CliError::Usage(e.0))?;
                Ok(format!("{}/cryptoKeyVersions/{n}", self.key_name(k)?))
            }
            None => self.key_name(s),
        }
    }

    /// Expands `RING/KEY` and a version number into a version name.
    pub fn version_name(&self, key: &str, n: &str) -> Result<String> {
        let n = names::parse_version(n).map_err(|e| CliError::Usage(e.0))?;
        Ok(format!("{}/cryptoKeyVersions/{n}", self.key_name(key)?))
    }
}

/// Reads input bytes from exactly one of: an inline string, a file (`-` = stdin).
pub fn read_input(inline: Option<&str>, file: Option<&PathBuf>, what: &str) -> Result<Vec<u8>> {
    match (inline, file) {
        (Some(s), None) => Ok(s.as_bytes().to_vec()),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                .map_err(|e| CliError::Local(format!("cannot read stdin: {e}")))?;
            Ok(v)
        }
        (None, Some(p)) => std::fs::read(p)
            .map_err(|e| CliError::Local(format!("cannot read {}: {e}", p.display()))),
        (None, None) => Err(CliError::Usage(format!(
            "give the {what} inline or with --in FILE (- for stdin)"
        ))),
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "give the {what} inline or with --in, not both"
        ))),
    }
}
