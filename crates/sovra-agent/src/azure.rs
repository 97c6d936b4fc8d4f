//! The Azure confidential VM collector (SEV-SNP and TDX CVMs behind Azure's paravisor, where the
//! guest sees no SNP/TDX device, only a vTPM).
//!
//! The paravisor (HCL) keeps an attestation report in the vTPM's NV index 0x01400001: the
//! hardware report (SNP report, or TDREPORT) whose report data is the hash of the HCL runtime
//! data, which holds the vTPM attestation key `HCLAkPub` (persistent at 0x81000003). The agent
//! refreshes it by writing report data to NV index 0x01400002 (when present), reads it, quotes
//! all SHA-256 PCRs with that AK using the runtime-data hash as qualifying data, and fetches
//! what the hardware report needs from the Azure instance metadata service (IMDS): the VCEK and
//! its chain for SNP (`/metadata/THIM/amd/certification`), the TD quote for TDX
//! (`/acc/tdquote`). The evidence is the JSON shape Sovra's `az-snp-vtpm` / `az-tdx-vtpm`
//! verifiers take (the Confidential Containers trustee format, version 1).

use crate::AgentError;
use crate::collect::{Collector, Evidence};
use crate::tpm::{parse_pcrs, run_with};
use serde_json::{Value, json};
use sovra_proto::hex::encode as hex;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// NV index of the HCL attestation report.
pub const HCL_REPORT_NV: &str = "0x01400001";
/// NV index the guest writes report data to, to refresh the HCL report.
pub const HCL_REPORT_DATA_NV: &str = "0x01400002";
/// Persistent handle of the vTPM attestation key (`HCLAkPub`).
pub const AK_HANDLE: &str = "0x81000003";
/// The Azure instance metadata service.
pub const IMDS: &str = "http://169.254.169.254";

/// Offset of the runtime-data header in the HCL report (32-byte header + hardware report).
const RUNTIME_HEADER: usize = 32 + 1184;
/// Size of a TDREPORT at the start of the hardware report area.
const TDREPORT_LEN: usize = 1024;

/// An Azure CVM's vTPM, driven by tpm2-tools, plus IMDS.
#[derive(Debug)]
pub struct AzureVtpm {
    dir: PathBuf,
    tcti: Option<String>,
    imds: String,
}

fn collect_err(m: impl std::fmt::Display) -> AgentError {
    AgentError::Collect(format!("Azure vTPM: {m}"))
}

impl AzureVtpm {
    /// The vTPM named by `tcti` (default: `TPM2TOOLS_TCTI`, else the kernel's resource
    /// manager) and IMDS at `imds` (default [`IMDS`]). Fails unless the HCL report NV index
    /// exists: this is then not an Azure confidential VM.
    pub fn open(tcti: Option<String>, imds: Option<String>) -> Result<Self, AgentError> {
        let id = sovra_crypto::random::hex_id(4).map_err(collect_err)?;
        let dir = std::env::temp_dir().join(format!("sovra-agent-az-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(collect_err)?;
        let me = Self {
            dir,
            tcti,
            imds: imds
                .unwrap_or_else(|| IMDS.to_string())
                .trim_end_matches('/')
                .to_string(),
        };
        me.run(&["tpm2_nvreadpublic", HCL_REPORT_NV]).map_err(|_| {
            collect_err(format!(
                "the vTPM has no HCL report (NV index {HCL_REPORT_NV}): not an Azure confidential VM"
            ))
        })?;
        Ok(me)
    }

    /// True when the TPM at `tcti` holds an HCL report (an Azure confidential VM).
    pub fn present(tcti: Option<&str>) -> bool {
        let dir = std::env::temp_dir();
        run_with(&dir, tcti, &["tpm2_nvreadpublic", HCL_REPORT_NV]).is_ok()
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, AgentError> {
        run_with(&self.dir, self.tcti.as_deref(), args)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, AgentError> {
        std::fs::read(self.dir.join(name)).map_err(|e| collect_err(format!("{name}: {e}")))
    }

    /// Reads NV `index`, with owner authorisation or else the index's own.
    fn nv_read(&self, index: &str, file: &str) -> Result<Vec<u8>, AgentError> {
        self.run(&["tpm2_nvread", "-C", "o", index, "-o", file])
            .or_else(|_| self.run(&["tpm2_nvread", "-C", index, index, "-o", file]))?;
        self.read(file)
    }

    /// Asks the paravisor for a fresh HCL report carrying `report_data` as user data.
    fn refresh(&self, report_data: &[u8; 64]) -> Result<(), AgentError> {
        if self
            .run(&["tpm2_nvreadpublic", HCL_REPORT_DATA_NV])
            .is_err()
        {
            return Ok(());
        }
        std::fs::write(self.dir.join("user.bin"), report_data).map_err(collect_err)?;
        self.run(&[
            "tpm2_nvwrite",
            "-C",
            "o",
            HCL_REPORT_DATA_NV,
            "-i",
            "user.bin",
        ])
        .or_else(|_| {
            self.run(&[
                "tpm2_nvwrite",
                "-C",
                HCL_REPORT_DATA_NV,
                HCL_REPORT_DATA_NV,
                "-i",
                "user.bin",
            ])
        })
        .map(|_| ())
    }

    fn imds_json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AgentError> {
        let body = body.map(Value::to_string);
        let text = http(&self.imds, method, path, body.as_deref())?;
        serde_json::from_slice(&text)
            .map_err(|_| collect_err(format!("IMDS {path} did not answer JSON")))
    }
}

impl Drop for AzureVtpm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP/1.0 exchange with IMDS (link-local, no TLS, `Metadata: true`); HTTP/1.0 so the
/// answer is never chunked and the connection closes at its end.
fn http(base: &str, method: &str, path: &str, body: Option<&str>) -> Result<Vec<u8>, AgentError> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| collect_err(format!("the IMDS URL must be http:// ({base})")))?;
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let sock = addr
        .parse::<std::net::SocketAddr>()
        .map_err(|_| collect_err(format!("the IMDS address must be IP[:PORT] ({host})")))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| collect_err(format!("IMDS {addr}: {e}")))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(collect_err)?;
    let body = body.unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nMetadata: true\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(collect_err)?;
    let mut resp = Vec::new();
    s.take(4 << 20)
        .read_to_end(&mut resp)
        .map_err(|e| collect_err(format!("IMDS {path}: {e}")))?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| collect_err(format!("IMDS {path}: malformed answer")))?;
    let head = String::from_utf8_lossy(resp.get(..split).unwrap_or_default()).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    if status != 200 {
        return Err(collect_err(format!("IMDS {path} answered {status}")));
    }
    Ok(resp.get(split + 4..).unwrap_or_default().to_vec())
}

fn u32_le(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
}

impl Collector for AzureVtpm {
    fn name(&self) -> &'static str {
        "Azure vTPM (HCL report)"
    }

    fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, AgentError> {
        self.refresh(report_data)?;
        let hcl = self.nv_read(HCL_REPORT_NV, "hcl.bin")?;
        if hcl.get(..4) != Some(b"HCLA") {
            return Err(collect_err(format!(
                "NV index {HCL_REPORT_NV} does not hold an HCL report"
            )));
        }
        let report_type = u32_le(&hcl, RUNTIME_HEADER + 8)
            .ok_or_else(|| collect_err("the HCL report is truncated"))?;
        // All SHA-256 PCRs, quoted by the paravisor's AK with the runtime-data hash.
        let all = "sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23";
        let qualifying = hex(report_data.get(..32).unwrap_or_default());
        self.run(&[
            "tpm2_quote",
            "-c",
            AK_HANDLE,
            "-l",
            all,
            "-q",
            &qualifying,
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
            "plain",
            "-g",
            "sha256",
        ])?;
        let pcrs = parse_pcrs(&String::from_utf8_lossy(&self.run(&["tpm2_pcrread", all])?));
        let pcr_list: Vec<Value> = (0..24)
            .map(|i| pcrs.get(&i.to_string()).cloned().unwrap_or(Value::Null))
            .collect();
        if pcr_list.iter().any(Value::is_null) {
            return Err(collect_err("tpm2_pcrread did not list all 24 SHA-256 PCRs"));
        }
        let b64url = sovra_crypto::jws::b64url;
        let mut ev = serde_json::Map::new();
        ev.insert("version".into(), json!(1));
        ev.insert(
            "tpm_quote".into(),
            json!({
                "signature": hex(&self.read("quote.sig")?),
                "message": hex(&self.read("quote.msg")?),
                "pcrs": pcr_list,
            }),
        );
        ev.insert("hcl_report".into(), json!(b64url(&hcl)));
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let (kind, chain) = match report_type {
            2 => {
                let c = self.imds_json("GET", "/metadata/THIM/amd/certification", None)?;
                let vcek =
                    text(&c, "vcekCert").ok_or_else(|| collect_err("IMDS gave no vcekCert"))?;
                ev.insert("vcek".into(), Value::from(vcek));
                let chain = text(&c, "certificateChain")
                    .map(|s| vec![s.into_bytes()])
                    .unwrap_or_default();
                (sovra_proto::EvidenceType::AzSnpVtpm, chain)
            }
            4 => {
                let td = hcl
                    .get(32..32 + TDREPORT_LEN)
                    .ok_or_else(|| collect_err("the HCL report is truncated"))?;
                let q =
                    self.imds_json("POST", "/acc/tdquote", Some(&json!({"report": b64url(td)})))?;
                let quote =
                    text(&q, "quote").ok_or_else(|| collect_err("IMDS gave no TD quote"))?;
                ev.insert("td_quote".into(), Value::from(quote));
                (sovra_proto::EvidenceType::AzTdxVtpm, Vec::new())
            }
            t => {
                return Err(collect_err(format!(
                    "HCL report type {t} is neither SEV-SNP (2) nor TDX (4)"
                )));
            }
        };
        let ev = Value::Object(ev);
        Ok(Evidence {
            kind,
            evidence: ev.to_string().into_bytes(),
            cert_chain: chain,
        })
    }
}
