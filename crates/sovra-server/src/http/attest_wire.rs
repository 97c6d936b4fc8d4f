//! The wire forms of an attest request (native `/v1/attest/{type}` and MAA
//! `/attest/{MaaType}`) decoded into a [`Submission`]: base64 and hex fields checked and named
//! in the error, bound data parsed by its declared type.

use crate::error::{Error, Result};
use crate::services::attest::request::{Bound, Submission};
use serde_json::Value;
use sovra_attest::EvidenceType;
use sovra_proto::ErrorCode;
use sovra_proto::attest::{AttestRequest, BoundData, MaaAttestRequest};

fn b64(field: &str, s: &str) -> Result<Vec<u8>> {
    sovra_proto::b64::decode(s).map_err(|_| {
        Error::new(
            ErrorCode::InvalidBase64,
            format!("{field} is not valid base64 (standard or URL-safe)"),
        )
    })
}

fn bound(field: &str, d: &BoundData) -> Result<Bound> {
    let bytes = b64(&format!("{field}.data"), &d.data)?;
    let json = match d.data_type.as_deref() {
        None | Some("Binary") | Some("binary") => None,
        Some("JSON") | Some("json") => Some(serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("{field} has dataType JSON but its data is not JSON: {e}"),
            )
        })?),
        Some(other) => {
            return Err(Error::invalid(format!(
                "{field}.dataType {other:?} is not supported; use \"Binary\" or \"JSON\""
            )));
        }
    };
    Ok(Bound { bytes, json })
}

/// Decodes a native request.
pub fn native(r: AttestRequest) -> Result<Submission> {
    if r.evidence.is_empty() {
        return Err(Error::invalid(
            "evidence is empty; send the evidence as base64",
        ));
    }
    Ok(Submission {
        evidence: b64("evidence", &r.evidence)?,
        cert_chain: r
            .cert_chain
            .iter()
            .enumerate()
            .map(|(i, c)| b64(&format!("certChain[{i}]"), c))
            .collect::<Result<_>>()?,
        collateral: r
            .collateral
            .as_deref()
            .map(|c| b64("collateral", c))
            .transpose()?,
        event_log: r
            .event_log
            .as_deref()
            .map(|c| b64("eventLog", c))
            .transpose()?,
        expected_nonce: r
            .expected_nonce
            .as_deref()
            .map(|h| {
                sovra_proto::hex::decode(h)
                    .ok_or_else(|| Error::invalid("expectedNonce must be hex"))
            })
            .transpose()?,
        runtime: r
            .runtime_data
            .as_ref()
            .map(|d| bound("runtimeData", d))
            .transpose()?,
        init_time: r
            .init_time_data
            .as_ref()
            .map(|d| bound("initTimeData", d))
            .transpose()?,
        nonce_claim: r.nonce,
        draft_policy: None,
        tpm_context: None,
    })
}

/// A message of MAA's TPM protocol, `POST /attest/Tpm` with `{"data": base64url(message)}`.
#[derive(Debug)]
pub enum TpmMessage {
    /// `{"type": "aikcert"}`: asks for a challenge and a service context.
    Init,
    /// `{"request": JWS}`: the evidence, naming its service context.
    Request(Submission),
    /// Anything else is Sovra's TPM evidence envelope (answered with a token as the other types).
    Envelope(Submission),
}

/// Decodes `/attest/Tpm`.
pub fn maa_tpm(r: MaaAttestRequest) -> Result<TpmMessage> {
    let sub = maa("Tpm", r)?;
    let msg: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&sub.evidence)
        .ok()
        .filter(|m: &serde_json::Map<String, Value>| {
            m.contains_key("type") || m.contains_key("request")
        });
    let Some(msg) = msg else {
        return Ok(TpmMessage::Envelope(sub));
    };
    if let Some(t) = msg.get("type") {
        return match t.as_str() {
            Some("aikcert") => Ok(TpmMessage::Init),
            _ => Err(Error::invalid(
                "the init message's type must be \"aikcert\" (the only one MAA's TPM protocol defines)",
            )),
        };
    }
    let request = msg
        .get("request")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("request must be the JWS of the request message"))?;
    let (context, challenge) = sovra_attest::tpm::vbs::peek(request)
        .map_err(|e| crate::services::attest::attest_error(&e))?;
    Ok(TpmMessage::Request(Submission {
        evidence: request.as_bytes().to_vec(),
        tpm_context: Some((context, challenge)),
        ..sub
    }))
}

/// The MAA attestation types Sovra serves, and the evidence type each maps to.
pub fn maa_type(name: &str) -> Option<EvidenceType> {
    EvidenceType::ALL.into_iter().find(|t| {
        sovra_attest::verifier_for(*t)
            .maa_route_names()
            .contains(&name)
    })
}

/// Decodes an MAA request for `maa` (`SevSnpVm`, `SgxEnclave`, `OpenEnclave`, `TdxVm`, `Tpm`).
pub fn maa(maa: &str, r: MaaAttestRequest) -> Result<Submission> {
    let field = |name: &'static str, v: &Option<String>| -> Result<Vec<u8>> {
        let s = v
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid(format!("{name} is required for /attest/{maa}")))?;
        b64(name, s)
    };
    let mut sub = Submission {
        runtime: r
            .runtime_data
            .as_ref()
            .map(|d| bound("runtimeData", d))
            .transpose()?,
        init_time: r
            .init_time_data
            .as_ref()
            .map(|d| bound("initTimeData", d))
            .transpose()?,
        nonce_claim: r.nonce.clone(),
        draft_policy: r.draft_policy_for_attestation.clone(),
        ..Submission::default()
    };
    match maa {
        "SevSnpVm" => {
            // base64url(JSON {"SnpReport": b64url(report), "VcekCertChain": b64(PEM chain)}).
            let outer = field("report", &r.report)?;
            let v: Value = serde_json::from_slice(&outer).map_err(|_| {
                Error::invalid(
                    "report must be base64url of a JSON object {\"SnpReport\", \"VcekCertChain\"}",
                )
            })?;
            let snp = v
                .get("SnpReport")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("report.SnpReport is missing"))?;
            sub.evidence = b64("report.SnpReport", snp)?;
            if let Some(chain) = v.get("VcekCertChain").and_then(Value::as_str) {
                sub.cert_chain.push(b64("report.VcekCertChain", chain)?);
            }
        }
        "SgxEnclave" | "TdxVm" => sub.evidence = field("quote", &r.quote)?,
        "OpenEnclave" => sub.evidence = strip_oe_header(field("report", &r.report)?)?,
        "Tpm" => sub.evidence = field("data", &r.data)?,
        _ => {
            return Err(Error::new(
                ErrorCode::RouteNotFound,
                format!(
                    "unknown attestation type {maa:?}; use SevSnpVm, SgxEnclave, OpenEnclave, TdxVm or Tpm"
                ),
            ));
        }
    }
    Ok(sub)
}

/// Open Enclave evidence: a 16-byte header (version 1, type 2 = remote, u64 size) before the
/// SGX quote. A bare quote passes through.
fn strip_oe_header(b: Vec<u8>) -> Result<Vec<u8>> {
    let (Some(h), Some(rest)) = (b.get(..16), b.get(16..)) else {
        return Ok(b);
    };
    let version = h
        .get(..4)
        .and_then(|x| <[u8; 4]>::try_from(x).ok())
        .map(u32::from_le_bytes);
    let size = h
        .get(8..16)
        .and_then(|x| <[u8; 8]>::try_from(x).ok())
        .map(u64::from_le_bytes);
    if version == Some(1) && size == Some(rest.len() as u64) {
        Ok(rest.to_vec())
    } else {
        Ok(b)
    }
}

/// Decodes an Azure guest attestation request (`POST /attest/AzureGuest`):
/// `{"AttestationInfo": base64url(JSON)}` (the 2025-06-01 spec spells it `attestationInfo`).
/// The isolation type inside chooses the evidence type; the verifier checks the rest.
pub fn azure_guest(body: &Value) -> Result<(EvidenceType, Submission)> {
    let info = ["AttestationInfo", "attestationInfo"]
        .iter()
        .find_map(|k| body.get(*k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "AttestationInfo is required: base64url of the guest's AttestationInfo JSON",
            )
        })?;
    let evidence = b64("AttestationInfo", info)?;
    let parsed: Value = serde_json::from_slice(&evidence)
        .map_err(|_| Error::invalid("AttestationInfo is not base64url of a JSON object"))?;
    let kind = match parsed
        .pointer("/IsolationInfo/Type")
        .and_then(Value::as_str)
    {
        Some("SevSnp") => EvidenceType::AzSnpVtpm,
        Some("Tdx") => EvidenceType::AzTdxVtpm,
        Some("TrustedLaunch") => {
            return Err(Error::new(
                ErrorCode::AttestUnsupported,
                "IsolationInfo.Type TrustedLaunch: a VM without hardware isolation is attested only by its vTPM's AK certificate from Azure's CA, which Sovra does not trust; attest an SEV-SNP or TDX confidential VM",
            ));
        }
        _ => {
            return Err(Error::invalid(
                "AttestationInfo.IsolationInfo.Type must be SevSnp or Tdx",
            ));
        }
    };
    Ok((
        kind,
        Submission {
            evidence,
            ..Submission::default()
        },
    ))
}
