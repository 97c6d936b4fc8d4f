//! The TPM 2.0 collector, through `tpm2-tools` (TCTI from `TPM2TOOLS_TCTI`, e.g. the kernel's
//! `/dev/tpmrm0` by default or `swtpm:host=…,port=…`): the EK and its certificate identify the
//! TPM, a fresh AK is activated by the server's credential, and quotes over all SHA-256 PCRs
//! carry the runtime-data hash as qualifying data.

use crate::AgentError;
use crate::collect::{Collector, Evidence};
use serde_json::{Map, Value, json};
use sovra_proto::hex::encode as hex;
use std::path::{Path, PathBuf};
use std::process::Command;

/// NV index of the RSA EK certificate (TCG EK Credential Profile).
const EK_CERT_NV: &str = "0x01c00002";

/// What identifies the TPM to the server.
#[derive(Debug, Clone)]
pub struct TpmIdentity {
    /// EK public area (TPM2B_PUBLIC).
    pub ek_public: Vec<u8>,
    /// EK certificate (DER).
    pub ek_certificate: Vec<u8>,
    /// AK public area (TPM2B_PUBLIC).
    pub ak_public: Vec<u8>,
}

/// A TPM driven by tpm2-tools, with its EK and a fresh AK loaded as saved contexts.
#[derive(Debug)]
pub struct TpmCollector {
    dir: PathBuf,
    tcti: Option<String>,
}

pub(crate) fn run_with(
    dir: &Path,
    tcti: Option<&str>,
    args: &[&str],
) -> Result<Vec<u8>, AgentError> {
    let (cmd, rest) = args
        .split_first()
        .ok_or_else(|| AgentError::Collect("empty command".into()))?;
    let mut c = Command::new(cmd);
    c.args(rest).current_dir(dir);
    if let Some(t) = tcti {
        c.env("TPM2TOOLS_TCTI", t);
    }
    let o = c
        .output()
        .map_err(|e| AgentError::Collect(format!("cannot run {cmd} ({e}): install tpm2-tools")))?;
    if !o.status.success() {
        return Err(AgentError::Collect(format!(
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(o.stdout)
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, AgentError> {
    std::fs::read(dir.join(name)).map_err(|e| AgentError::Collect(format!("{name}: {e}")))
}

impl TpmCollector {
    /// Creates the EK and an AK in the TPM (contexts kept in a private temporary directory).
    /// The TPM is the one `TPM2TOOLS_TCTI` names.
    pub fn open() -> Result<Self, AgentError> {
        Self::open_with(None)
    }

    /// As [`TpmCollector::open`], with an explicit TCTI (e.g. `swtpm:host=127.0.0.1,port=2321`).
    pub fn open_with(tcti: Option<String>) -> Result<Self, AgentError> {
        let id = sovra_crypto::random::hex_id(4).map_err(|e| AgentError::Collect(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("sovra-agent-tpm-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| AgentError::Collect(e.to_string()))?;
        let me = Self { dir, tcti };
        me.run(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"])?;
        me.run(&[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ])?;
        me.run(&["tpm2_flushcontext", "-t"])?;
        me.run(&["tpm2_nvread", "-C", "o", EK_CERT_NV, "-o", "ek.der"])?;
        Ok(me)
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, AgentError> {
        run_with(&self.dir, self.tcti.as_deref(), args)
    }

    /// The EK, its certificate and the AK.
    pub fn identity(&self) -> Result<TpmIdentity, AgentError> {
        let mut cert = read(&self.dir, "ek.der")?;
        // The NV area may be larger than the certificate: keep the DER SEQUENCE only.
        if let (Some(0x30), Some(0x82), Some(hi), Some(lo)) =
            (cert.first(), cert.get(1), cert.get(2), cert.get(3))
        {
            let len = 4 + (usize::from(*hi) << 8 | usize::from(*lo));
            cert.truncate(len);
        }
        Ok(TpmIdentity {
            ek_public: read(&self.dir, "ek.pub")?,
            ek_certificate: cert,
            ak_public: read(&self.dir, "ak.pub")?,
        })
    }

    /// Opens the server's credential (TPM2_ActivateCredential): proves this TPM holds the EK
    /// and the AK.
    pub fn activate(&self, credential_file: &[u8]) -> Result<Vec<u8>, AgentError> {
        std::fs::write(self.dir.join("cred.bin"), credential_file)
            .map_err(|e| AgentError::Collect(e.to_string()))?;
        let _ = std::fs::remove_file(self.dir.join("session.ctx"));
        self.run(&[
            "tpm2_startauthsession",
            "--policy-session",
            "-S",
            "session.ctx",
        ])?;
        let result = self
            .run(&["tpm2_policysecret", "-S", "session.ctx", "-c", "e"])
            .and_then(|_| {
                self.run(&[
                    "tpm2_activatecredential",
                    "-c",
                    "ak.ctx",
                    "-C",
                    "ek.ctx",
                    "-i",
                    "cred.bin",
                    "-o",
                    "secret.bin",
                    "-P",
                    "session:session.ctx",
                ])
            });
        let _ = self.run(&["tpm2_flushcontext", "session.ctx"]);
        let _ = self.run(&["tpm2_flushcontext", "-t"]);
        result?;
        let s = read(&self.dir, "secret.bin")?;
        let _ = std::fs::remove_file(self.dir.join("secret.bin"));
        Ok(s)
    }
}

impl Drop for TpmCollector {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PCR values from `tpm2_pcrread` output (`  N : 0xHEX` lines under `sha256:`).
pub(crate) fn parse_pcrs(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines() {
        let Some((idx, val)) = line.trim().split_once(':') else {
            continue;
        };
        let (idx, val) = (idx.trim(), val.trim());
        if let (Ok(i), Some(h)) = (idx.parse::<u32>(), val.strip_prefix("0x")) {
            out.insert(i.to_string(), Value::from(h.to_ascii_lowercase()));
        }
    }
    out
}

impl Collector for TpmCollector {
    fn name(&self) -> &'static str {
        "TPM 2.0 (tpm2-tools)"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, AgentError> {
        let qualifying = hex(report_data.get(..32).unwrap_or_default());
        let all = "sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23";
        self.run(&[
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            all,
            "-q",
            &qualifying,
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-g",
            "sha256",
        ])?;
        let _ = self.run(&["tpm2_flushcontext", "-t"]);
        let pcrs = String::from_utf8_lossy(&self.run(&["tpm2_pcrread", all])?).to_string();
        let b64 = |b: &[u8]| sovra_proto::b64::encode(b);
        let ak = read(&self.dir, "ak.pub")?;
        let envelope = json!({
            "ak_pub": b64(ak.get(2..).unwrap_or_default()),
            "quotes": [{
                "quote": b64(&read(&self.dir, "quote.msg")?),
                "signature": b64(&read(&self.dir, "quote.sig")?),
                "pcrs": {"hash": "sha256", "values": parse_pcrs(&pcrs)},
            }],
        });
        Ok(Evidence {
            kind: sovra_proto::EvidenceType::Tpm,
            evidence: envelope.to_string().into_bytes(),
            cert_chain: Vec::new(),
        })
    }

    fn tpm(&self) -> Option<&TpmCollector> {
        Some(self)
    }
}
