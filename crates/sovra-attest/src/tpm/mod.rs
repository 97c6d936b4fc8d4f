//! TPM 2.0: quotes (TPMS_ATTEST + TPMT_SIGNATURE) by an attestation key, the PCR values they
//! cover, and the event log that explains them.
//!
//! Checks, in order: evidence decoding (go-tpm-tools `Attestation` protobuf or Sovra's JSON
//! envelope, see [`input`]); the AK is trusted: its certificate chains to a CA the operator
//! configured for the TPM platform (`--trust-anchor`, collateral `trust-anchor` with platform
//! `tpm`), is valid at the time, and certifies exactly this AK; every quote is a genuine TPM
//! quote signed by the AK over the PCRs given with it (the PCR digest is recomputed); the quote's
//! qualifying data equals the nonce, if one is expected; the event log, if given, replays to the
//! quoted values of every PCR it touches.
//!
//! MAA's own TPM protocol (a JWS request with a Windows platform claim) is in [`vbs`].
//!
//! An AK trusted by other means (the Azure HCL report, credential activation against an EK
//! certificate) is checked with [`verify_quotes`].

pub mod certify;
pub mod credential;
pub mod eventlog;
pub mod input;
pub mod structs;
pub mod vbs;

use crate::Verifier;
use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::evidence::{EvidenceInput, EvidenceType, Platform, VerifyContext};
use crate::x509::{parse_cert, verify_chain};
use serde_json::{Map, Value, json};
use sovra_proto::hex::encode as hex;
use structs::{PublicKey, bank_name, hash_alg};

/// Verifier for [`EvidenceType::Tpm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TpmVerifier;

/// What verified quotes establish.
#[derive(Debug, Clone)]
pub struct Quoted {
    /// Bank name → PCR index → value (hex), for every verified quote.
    pub pcrs: Map<String, Value>,
    /// The qualifying data (nonce) of the quotes.
    pub extra_data: Vec<u8>,
    /// Claims about the quote (clock, firmware, AK name) and the event log.
    pub claims: Map<String, Value>,
}

/// Verifies `quotes` against the AK `ak` (already trusted by the caller).
pub fn verify_quotes(
    ak: &structs::Public,
    quotes: &[input::QuoteIn],
    event_log: Option<&[u8]>,
    nonce: Option<&[u8]>,
) -> Result<Quoted, AttestError> {
    verify_quotes_with_name(ak, quotes, event_log, nonce, true)
}

/// As [`verify_quotes`]; `has_public_area` is false when the AK is known only by its key (no
/// TPMT_PUBLIC, hence no TPM name to report).
pub fn verify_quotes_with_name(
    ak: &structs::Public,
    quotes: &[input::QuoteIn],
    event_log: Option<&[u8]>,
    nonce: Option<&[u8]>,
    has_public_area: bool,
) -> Result<Quoted, AttestError> {
    let mut pcrs = Map::new();
    let mut claims = Map::new();
    let mut extra: Option<Vec<u8>> = None;
    let ak_name = if has_public_area {
        ak.name()?
    } else {
        Vec::new()
    };
    for q in quotes {
        let a = structs::parse_attest(&q.attest)?;
        let sig_hash = structs::verify_signature(&ak.key, &q.signature, &a.raw)?;
        if !a.qualified_signer.is_empty() && (ak_name.is_empty() || a.qualified_signer != ak_name) {
            // The qualified name includes the hierarchy; only the AK's own name is compared
            // when the TPM reports it that way.
            claims.insert("qualified_signer".into(), json!(hex(&a.qualified_signer)));
        }
        let h = hash_alg(sig_hash)
            .ok_or_else(|| AttestError::Unsupported("quote hash algorithm".into()))?;
        let mut ctx = aws_lc_rs::digest::Context::new(h);
        let mut bank_values = Map::new();
        for sel in &a.selections {
            if sel.hash != q.bank {
                return Err(AttestError::BindingInvalid(format!(
                    "the quote selects {} PCRs but the values given are {}",
                    bank_name(sel.hash),
                    bank_name(q.bank)
                )));
            }
            for idx in &sel.pcrs {
                let v = q.pcrs.get(idx).ok_or_else(|| {
                    AttestError::BindingInvalid(format!("the value of quoted PCR {idx} is missing"))
                })?;
                ctx.update(v);
                bank_values.insert(idx.to_string(), json!(hex(v)));
            }
        }
        if ctx.finish().as_ref() != a.pcr_digest.as_slice() {
            return Err(AttestError::BindingInvalid(format!(
                "the {} PCR values do not hash to the quoted PCR digest",
                bank_name(q.bank)
            )));
        }
        match &extra {
            None => extra = Some(a.extra_data.clone()),
            Some(e) if *e != a.extra_data => {
                return Err(AttestError::BindingInvalid(
                    "the quotes carry different qualifying data".into(),
                ));
            }
            Some(_) => {}
        }
        claims.insert("clock".into(), json!(a.clock));
        claims.insert("reset_count".into(), json!(a.reset_count));
        claims.insert("restart_count".into(), json!(a.restart_count));
        claims.insert(
            "firmware_version".into(),
            json!(format!("{:#018x}", a.firmware_version)),
        );
        pcrs.insert(bank_name(q.bank).into(), Value::Object(bank_values));
    }
    let extra_data = extra.unwrap_or_default();
    if let Some(n) = nonce
        && n != extra_data.as_slice()
    {
        return Err(AttestError::NonceMismatch(
            "the quote's qualifying data is not the expected nonce".into(),
        ));
    }
    if let Some(log) = event_log {
        let r = eventlog::replay(log)?;
        for q in quotes {
            let Some(replayed) = r.pcrs.get(&q.bank) else {
                continue;
            };
            for (idx, value) in replayed {
                if let Some(quoted) = q.pcrs.get(idx)
                    && quoted != value
                {
                    return Err(AttestError::BindingInvalid(format!(
                        "the event log does not replay to the quoted {} PCR {idx}",
                        bank_name(q.bank)
                    )));
                }
            }
        }
        claims.insert("event_count".into(), json!(r.events));
        claims.insert("secure_boot".into(), json!(r.secure_boot));
        claims.insert(
            "boot_applications".into(),
            json!(
                r.boot_applications
                    .iter()
                    .map(|d| hex(d))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if has_public_area {
        claims.insert("ak_name".into(), json!(hex(&ak_name)));
    }
    claims.insert("extra_data".into(), json!(hex(&extra_data)));
    Ok(Quoted {
        pcrs,
        extra_data,
        claims,
    })
}

/// Whether the certificate's key is the AK.
pub(crate) fn cert_matches(cert_der: &[u8], ak: &PublicKey) -> Result<bool, AttestError> {
    let c = parse_cert(cert_der)?;
    let spki = c.public_key();
    match (spki.parsed(), ak) {
        (Ok(x509_parser::public_key::PublicKey::RSA(rsa)), PublicKey::Rsa { n, e }) => {
            let strip =
                |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|x| *x == 0).collect() };
            let ce = strip(rsa.exponent);
            let ae = strip(&e.to_be_bytes());
            Ok(strip(rsa.modulus) == strip(n) && ce == ae)
        }
        (Ok(x509_parser::public_key::PublicKey::EC(pt)), PublicKey::Ecc { x, y, .. }) => {
            let data = pt.data();
            Ok(data.len() == 1 + x.len() + y.len()
                && data.get(1..1 + x.len()) == Some(x.as_slice())
                && data.get(1 + x.len()..) == Some(y.as_slice()))
        }
        _ => Ok(false),
    }
}

impl Verifier for TpmVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::Tpm
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Tpm
    }

    fn maa_attestation_type(&self) -> &'static str {
        "tpm"
    }

    fn maa_route_names(&self) -> &'static [&'static str] {
        &["Tpm"]
    }

    fn activation(&self, evidence: &[u8]) -> Option<serde_json::Value> {
        serde_json::from_slice::<serde_json::Value>(evidence)
            .ok()
            .and_then(|v| v.get("activation").cloned())
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        if vbs::is_request(input.evidence) {
            return vbs::verify(input, ctx);
        }
        let ev = input::decode(input.evidence)?;
        let ak = structs::parse_public(&ev.ak_pub)?;
        ak.check_attestation_key()?;
        let ak_cert = ev.ak_cert.clone().ok_or_else(|| {
            AttestError::ChainInvalid(
                "the evidence has no AK certificate, so the attestation key is not trusted; send one issued by a CA configured for the TPM platform".into(),
            )
        })?;
        let mut pool = crate::x509::evidence_certs(input.cert_chain.iter().copied())?;
        pool.extend(ctx.trust.cert_pool.iter().cloned());
        let chain = verify_chain(&ak_cert, &pool, Platform::Tpm, ctx.trust, ctx.now)?;
        if !cert_matches(&ak_cert, &ak.key)? {
            return Err(AttestError::BindingInvalid(
                "the AK certificate certifies another key than the one that signed the quotes"
                    .into(),
            ));
        }
        let log = input.event_log.or(ev.event_log.as_deref());
        let q = verify_quotes(&ak, &ev.quotes, log, input.nonce)?;
        Ok(certified(q, &ak_cert, &chain, Map::new()))
    }
}

/// The claims of quotes by an AK whose certificate `ak_cert` chained through `chain`, with
/// `more` besides.
pub(crate) fn certified(
    q: Quoted,
    ak_cert: &[u8],
    chain: &[Vec<u8>],
    more: Map<String, Value>,
) -> VerifiedClaims {
    let mut claims = q.claims;
    claims.insert("pcrs".into(), Value::Object(q.pcrs));
    claims.insert(
        "ak_cert_sha256".into(),
        json!(crate::x509::sha256_hex(ak_cert)),
    );
    claims.extend(more);
    VerifiedClaims::new(
        EvidenceType::Tpm,
        claims,
        q.extra_data,
        false,
        None,
        crate::x509::TrustRoot::of_chain(chain, Platform::Tpm),
    )
}

/// Checks an endorsement key: its certificate chains (through `pool`) to a CA configured for the
/// TPM platform, is valid at `ctx.now`, and certifies exactly `ek_public` (TPMT_PUBLIC).
/// Returns the EK and the root its chain ended at.
pub fn verify_ek(
    ek_public: &[u8],
    ek_cert: &[u8],
    pool: &[Vec<u8>],
    ctx: &VerifyContext<'_>,
) -> Result<(structs::Public, crate::x509::TrustRoot), AttestError> {
    let ek = structs::parse_public(ek_public)?;
    let mut all = pool.to_vec();
    all.extend(ctx.trust.cert_pool.iter().cloned());
    let chain = verify_chain(ek_cert, &all, Platform::Tpm, ctx.trust, ctx.now)?;
    if !cert_matches(ek_cert, &ek.key)? {
        return Err(AttestError::BindingInvalid(
            "the EK certificate certifies another key than the EK presented".into(),
        ));
    }
    Ok((ek, crate::x509::TrustRoot::of_chain(&chain, Platform::Tpm)))
}

/// Verifies TPM evidence (the JSON envelope or protobuf) whose AK the caller already trusts
/// (e.g. after credential activation): `ak_public` must be the envelope's AK; `root` is where
/// the trust in it came from (the EK certificate's chain).
pub fn verify_with_trusted_ak(
    evidence: &[u8],
    ak_public: &[u8],
    event_log: Option<&[u8]>,
    nonce: Option<&[u8]>,
    root: crate::x509::TrustRoot,
) -> Result<VerifiedClaims, AttestError> {
    let ev = input::decode(evidence)?;
    if ev.ak_pub != ak_public {
        return Err(AttestError::BindingInvalid(
            "the evidence's AK is not the activated AK".into(),
        ));
    }
    let ak = structs::parse_public(&ev.ak_pub)?;
    ak.check_attestation_key()?;
    let log = event_log.or(ev.event_log.as_deref());
    let q = verify_quotes(&ak, &ev.quotes, log, nonce)?;
    let mut claims = q.claims;
    claims.insert("pcrs".into(), Value::Object(q.pcrs));
    claims.insert("ak_trust".into(), json!("credential-activation"));
    Ok(VerifiedClaims::new(
        EvidenceType::Tpm,
        claims,
        q.extra_data,
        false,
        None,
        root,
    ))
}
