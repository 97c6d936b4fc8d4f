//! Intel collateral from a PCS or PCCS (API v4), for operators who opt in to fetching it: what a
//! quote needs (its FMSPC, the CA that issued its PCK, TDX or SGX), the request paths, and the
//! assembly of the answers into the bundle [`super::collateral::check`] verifies. Nothing here
//! touches the network; the answers are verified like imported collateral (Intel-rooted
//! signatures, validity windows), so where they came from adds no trust.

use super::quote::{self, Body};
use crate::error::AttestError;
use crate::x509::{certs_from_pem_or_der, parse_cert};
use base64::Engine;
use serde_json::{Value, json};

/// What to ask a PCS for, for one quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// FMSPC, lowercase hex (6 bytes).
    pub fmspc: String,
    /// `platform` or `processor`: the CA that issued the PCK certificate (picks the PCK CRL).
    pub ca: &'static str,
    /// A TD quote (TDX TCB info and TD QE identity) rather than an SGX one.
    pub tdx: bool,
}

/// What the quote (binary or base64) needs.
pub fn needs(evidence: &[u8]) -> Result<Needs, AttestError> {
    let q = quote::parse(&super::decode_input(evidence)?)?;
    let chain = certs_from_pem_or_der(&q.pck_chain_pem)?;
    let leaf = chain
        .first()
        .ok_or_else(|| AttestError::malformed("the quote carries no PCK certificate"))?;
    let info = super::pck::pck_info(leaf)?;
    let cert = parse_cert(leaf)?;
    let issuer = cert.issuer().to_string();
    Ok(Needs {
        fmspc: sovra_proto::hex::encode(&info.fmspc),
        ca: if issuer.contains("Processor") {
            "processor"
        } else {
            "platform"
        },
        tdx: matches!(q.body, Body::Td(_)),
    })
}

/// The PCS v4 paths for `n`: TCB info, QE identity, PCK CRL (DER), root CA CRL (the PCCS
/// route; Intel's own PCS serves that CRL elsewhere).
pub fn paths(n: &Needs) -> [String; 4] {
    let tee = if n.tdx { "tdx" } else { "sgx" };
    [
        format!(
            "/{tee}/certification/v4/tcb?fmspc={}",
            n.fmspc.to_ascii_uppercase()
        ),
        format!("/{tee}/certification/v4/qe/identity"),
        format!("/sgx/certification/v4/pckcrl?ca={}&encoding=der", n.ca),
        "/sgx/certification/v4/rootcacrl".to_string(),
    ]
}

/// The exact text of the object that top-level member `key` of `body` holds: Intel signs
/// those bytes as served, so they must not be re-serialised.
pub fn member_text<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let at = body.find(&needle)? + needle.len();
    let rest = body.get(at..)?;
    let start = at + rest.find('{')?;
    if body.get(at..start)?.trim() != ":" {
        return None;
    }
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in body.get(start..)?.char_indices() {
        match (in_str, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_str = false,
            (true, false, _) => {}
            (false, _, '"') => in_str = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return body.get(start..=start + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Decodes a percent-encoded header value (PCS sends issuer chains that way).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A CRL as PCS/PCCS serve it (DER, PEM, or hex text) as DER.
fn crl_der(b: &[u8]) -> Result<Vec<u8>, AttestError> {
    let text = std::str::from_utf8(b).ok().map(str::trim);
    if let Some(t) = text {
        if let Some(body) = t
            .strip_prefix("-----BEGIN X509 CRL-----")
            .and_then(|r| r.split("-----END").next())
        {
            let compact: String = body.split_whitespace().collect();
            return base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| AttestError::CollateralInvalid("a PEM CRL is not base64".into()));
        }
        if !t.is_empty() && t.len() % 2 == 0 && t.bytes().all(|c| c.is_ascii_hexdigit()) {
            return sovra_proto::hex::decode(t)
                .ok_or_else(|| AttestError::CollateralInvalid("a hex CRL is not hex".into()));
        }
    }
    Ok(b.to_vec())
}

/// One PCS answer: its body and the issuer chain header (already percent-decoded).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// Response body.
    pub body: Vec<u8>,
    /// The `*-Issuer-Chain` header, PEM.
    pub issuer_chain: String,
}

/// Assembles the four answers (in [`paths`] order) into a collateral bundle (JSON).
pub fn assemble(
    tcb: &Answer,
    qe: &Answer,
    pck_crl: &Answer,
    root_crl: &[u8],
) -> Result<Vec<u8>, AttestError> {
    let bad = |m: &str| AttestError::CollateralInvalid(format!("PCS answer: {m}"));
    let signed = |a: &Answer, key: &str| -> Result<(String, String), AttestError> {
        let text = std::str::from_utf8(&a.body).map_err(|_| bad("not UTF-8"))?;
        let obj = member_text(text, key).ok_or_else(|| bad(&format!("no {key} object")))?;
        let v: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
        let sig = v
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("no signature next to {key}")))?;
        Ok((obj.to_string(), sig.to_string()))
    };
    let (tcb_info, tcb_sig) = signed(tcb, "tcbInfo")?;
    let (qe_identity, qe_sig) = signed(qe, "enclaveIdentity")?;
    let bundle = json!({
        "tcb_info": tcb_info,
        "tcb_info_signature": tcb_sig,
        "tcb_info_issuer_chain": tcb.issuer_chain,
        "qe_identity": qe_identity,
        "qe_identity_signature": qe_sig,
        "qe_identity_issuer_chain": qe.issuer_chain,
        "pck_crl": sovra_proto::hex::encode(&crl_der(&pck_crl.body)?),
        "pck_crl_issuer_chain": pck_crl.issuer_chain,
        "root_ca_crl": sovra_proto::hex::encode(&crl_der(root_crl)?),
    });
    serde_json::to_vec(&bundle).map_err(|e| bad(&e.to_string()))
}
