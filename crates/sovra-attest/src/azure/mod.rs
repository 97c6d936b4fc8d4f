//! Azure confidential VMs (SEV-SNP and TDX): the paravisor's HCL report carries the hardware
//! report, whose report data binds the HCL runtime data (JSON with the vTPM's attestation key
//! `HCLAkPub`, the VM configuration and user data); that key signs the vTPM quote over the PCRs.
//!
//! Checks, in order: decoding (trustee JSON v0 or v1); HCL report layout; the hardware report
//! (SNP: the SNP verifier with the VCEK from the evidence and the AMD chain; TDX: the DCAP
//! verifier on the TD quote, with collateral, and the TDREPORT's report data equal to the
//! quote's); report data [0..32] = hash of the runtime data; the vTPM quote signed by
//! `HCLAkPub`; the PCR digest; the nonce (the quote's qualifying data), if one is expected.
//!
//! The same evidence also arrives as the guest attestation library's `AttestationInfo`
//! ([`guest`]): the hardware report and the runtime data apart, the AK as a TPMT_PUBLIC, a TCG
//! log, and an ephemeral decryption key certified by the AK, to which the token is sealed.

pub mod guest;
pub mod hcl;

use crate::Verifier;
use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::evidence::{EvidenceInput, EvidenceType, VerifyContext};
use crate::tpm::input::QuoteIn;
use crate::tpm::structs::{self, ALG_SHA256, PublicKey};
use serde_json::{Map, Value, json};

/// Verifier for [`EvidenceType::AzSnpVtpm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AzSnpVtpmVerifier;

/// Verifier for [`EvidenceType::AzTdxVtpm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AzTdxVtpmVerifier;

/// Offset of REPORTDATA in a TDREPORT.
const TDREPORT_REPORT_DATA: usize = 128;

fn tpm_part(
    ev: &hcl::AzureEvidence,
    h: &hcl::Hcl,
    nonce: Option<&[u8]>,
) -> Result<crate::tpm::Quoted, AttestError> {
    let (n, e) = h.rsa_key("HCLAkPub")?;
    let ak = structs::Public {
        raw: Vec::new(),
        name_alg: ALG_SHA256,
        attributes: 0,
        auth_policy: Vec::new(),
        key: PublicKey::Rsa { n, e },
    };
    // The trustee format carries the raw RSASSA signature; wrap it as a TPMT_SIGNATURE.
    let quote = QuoteIn {
        attest: ev.quote.clone(),
        signature: guest::rsassa_sha256(&ev.signature)?,
        bank: ALG_SHA256,
        pcrs: ev
            .pcrs
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, p.clone()))
            .collect(),
    };
    crate::tpm::verify_quotes_with_name(&ak, &[quote], None, nonce, false)
}

/// The vTPM half of either encoding: the quote's findings, and the guest's own claims.
fn tpm_half(
    form: Result<Box<guest::GuestInfo>, hcl::AzureEvidence>,
    h: &hcl::Hcl,
    nonce: Option<&[u8]>,
) -> Result<(crate::tpm::Quoted, Option<Map<String, Value>>), AttestError> {
    match form {
        Err(ev) => Ok((tpm_part(&ev, h, nonce)?, None)),
        Ok(g) => {
            let (q, claims) = guest::verify_tpm(&g, h.rsa_key("HCLAkPub")?, nonce)?;
            Ok((q, Some(claims)))
        }
    }
}

/// The evidence in either of its encodings.
enum Form {
    /// The trustee JSON (HCL report and quote).
    Trustee(hcl::AzureEvidence),
    /// The guest attestation library's `AttestationInfo`.
    Guest(Box<guest::GuestInfo>),
}

fn decode(b: &[u8]) -> Result<Form, AttestError> {
    let v: Value = serde_json::from_slice(b)
        .map_err(|_| AttestError::malformed("Azure evidence: not JSON"))?;
    if guest::is_guest(&v) {
        Ok(Form::Guest(Box::new(guest::decode(&v)?)))
    } else {
        hcl::decode_value(&v).map(Form::Trustee)
    }
}

fn check_runtime_binding(what: &str, report_data: &[u8], h: &hcl::Hcl) -> Result<(), AttestError> {
    let want = h.var_data_hash()?;
    if report_data.get(..32) != want.get(..32) {
        return Err(AttestError::ReportDataMismatch(format!(
            "the {what} report data does not bind the HCL runtime data"
        )));
    }
    Ok(())
}

fn finish(
    kind: EvidenceType,
    inner_name: &str,
    inner: &VerifiedClaims,
    h: &hcl::Hcl,
    q: crate::tpm::Quoted,
    guest: Option<Map<String, Value>>,
) -> VerifiedClaims {
    let mut m = Map::new();
    if let Some(g) = guest {
        m.insert("guest".into(), Value::Object(g));
    }
    m.insert(inner_name.into(), inner.to_json());
    m.insert("pcrs".into(), Value::Object(q.pcrs));
    for (k, v) in q.claims {
        m.insert(k, v);
    }
    let mut runtime = h.runtime.clone();
    if let Some(o) = runtime.as_object_mut() {
        o.retain(|k, _| k == "keys" || k == "vm-configuration" || k == "user-data");
    }
    m.insert("runtime".into(), runtime);
    m.insert("hcl_report_type".into(), json!(h.report_type));
    let out = VerifiedClaims::new(
        kind,
        m,
        q.extra_data,
        inner.debug(),
        inner.tcb_status().map(str::to_string),
        inner.root().clone(),
    );
    match inner.snp_tcb() {
        Some((product, tcb)) => out.with_snp_tcb(product, *tcb),
        None => out,
    }
}

impl Verifier for AzSnpVtpmVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::AzSnpVtpm
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Amd
    }

    fn maa_attestation_type(&self) -> &'static str {
        "azurevm"
    }

    fn maa_claims(&self, v: &VerifiedClaims) -> serde_json::Map<String, serde_json::Value> {
        let serde_json::Value::Object(native) = v.to_json() else {
            return serde_json::Map::new();
        };
        let tee = crate::snp::maa_claims_at(&native, "snp.", v.debug());
        azure_cvm("sevsnpvm", &native, tee)
    }

    fn after_policy(&self, issued: &mut serde_json::Map<String, serde_json::Value>) {
        azure_compliance(issued);
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        let (h, vcek, guest) = match decode(input.evidence)? {
            Form::Trustee(ev) => {
                let h = hcl::parse_hcl(&ev.hcl)?;
                if h.report_type != 2 {
                    return Err(AttestError::Unsupported(format!(
                        "HCL report type {} is not SEV-SNP (2)",
                        h.report_type
                    )));
                }
                let vcek = ev.vcek.clone().ok_or_else(|| {
                    AttestError::CollateralMissing("the evidence carries no VCEK".into())
                })?;
                (h, vcek, Err(ev))
            }
            Form::Guest(g) => {
                if g.isolation != guest::IsolationType::SevSnp {
                    return Err(AttestError::Unsupported(
                        "the AttestationInfo is not of an SEV-SNP VM (IsolationInfo.Type SevSnp)"
                            .into(),
                    ));
                }
                let h = hcl::Hcl::from_parts(2, g.hw_evidence.clone(), g.runtime_data.clone())?;
                (h, g.vcek_chain.clone().unwrap_or_default(), Ok(g))
            }
        };
        let mut chain: Vec<&[u8]> = vec![&vcek];
        chain.extend_from_slice(input.cert_chain);
        let snp = crate::snp::SnpVerifier.verify(
            &EvidenceInput {
                evidence: &h.hw_report,
                cert_chain: &chain,
                ..Default::default()
            },
            ctx,
        )?;
        check_runtime_binding("SNP", snp.report_data(), &h)?;
        let (q, g) = tpm_half(guest, &h, input.nonce)?;
        Ok(finish(EvidenceType::AzSnpVtpm, "snp", &snp, &h, q, g))
    }
}

impl Verifier for AzTdxVtpmVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::AzTdxVtpm
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Intel
    }

    fn maa_attestation_type(&self) -> &'static str {
        "azurevm"
    }

    fn maa_claims(&self, v: &VerifiedClaims) -> serde_json::Map<String, serde_json::Value> {
        let serde_json::Value::Object(native) = v.to_json() else {
            return serde_json::Map::new();
        };
        let tee = crate::tdx::maa_claims_at(&native, "tdx.", v);
        azure_cvm("tdxvm", &native, tee)
    }

    fn after_policy(&self, issued: &mut serde_json::Map<String, serde_json::Value>) {
        azure_compliance(issued);
    }

    fn vendor_source(&self) -> crate::VendorSource {
        crate::VendorSource::IntelPcs
    }

    fn intel_quote(&self, evidence: &[u8]) -> Option<Vec<u8>> {
        match decode(evidence).ok()? {
            Form::Trustee(ev) => ev.td_quote,
            Form::Guest(g) => Some(g.hw_evidence),
        }
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        let (h, td_quote, guest) = match decode(input.evidence)? {
            Form::Trustee(ev) => {
                let h = hcl::parse_hcl(&ev.hcl)?;
                if h.report_type != 4 {
                    return Err(AttestError::Unsupported(format!(
                        "HCL report type {} is not TDX (4)",
                        h.report_type
                    )));
                }
                let td_quote = ev
                    .td_quote
                    .clone()
                    .ok_or_else(|| AttestError::malformed("the evidence carries no td_quote"))?;
                (h, td_quote, Err(ev))
            }
            Form::Guest(g) => {
                if g.isolation != guest::IsolationType::Tdx {
                    return Err(AttestError::Unsupported(
                        "the AttestationInfo is not of a TDX VM (IsolationInfo.Type Tdx)".into(),
                    ));
                }
                // The guest form sends the TD quote, not the TDREPORT.
                let h = hcl::Hcl::from_parts(4, Vec::new(), g.runtime_data.clone())?;
                (h, g.hw_evidence.clone(), Ok(g))
            }
        };
        let tdx = crate::tdx::TdxVerifier.verify(
            &EvidenceInput {
                evidence: &td_quote,
                cert_chain: input.cert_chain,
                collateral: input.collateral,
                ..Default::default()
            },
            ctx,
        )?;
        if guest.is_err() {
            let td_report_data = h
                .hw_report
                .get(TDREPORT_REPORT_DATA..TDREPORT_REPORT_DATA + 64)
                .ok_or_else(|| AttestError::malformed("TDREPORT truncated"))?;
            if td_report_data != tdx.report_data() {
                return Err(AttestError::BindingInvalid(
                    "the TD quote is not of the TDREPORT in the HCL report".into(),
                ));
            }
        }
        check_runtime_binding("TD", tdx.report_data(), &h)?;
        let (q, g) = tpm_half(guest, &h, input.nonce)?;
        Ok(finish(EvidenceType::AzTdxVtpm, "tdx", &tdx, &h, q, g))
    }
}

/// MAA's Azure CVM shape: the hardware TEE's claims (`tee`) nested under
/// `x-ms-isolation-tee` (with the paravisor's runtime data as its `x-ms-runtime`), beside them,
/// and the `azurevm` claims Sovra can derive from the evidence.
fn azure_cvm(
    hardware_type: &str,
    native: &serde_json::Map<String, serde_json::Value>,
    tee: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut out = tee.clone();
    let mut nested = tee;
    nested.insert("x-ms-attestation-type".into(), Value::from(hardware_type));
    if let Some(rt) = native.get("runtime") {
        nested.insert("x-ms-runtime".into(), rt.clone());
    }
    out.insert("x-ms-isolation-tee".into(), Value::Object(nested));
    let cfg = native
        .get("runtime")
        .and_then(|r| r.get("vm-configuration"));
    if let Some(id) = cfg.and_then(|c| c.get("vmUniqueId")) {
        out.insert("x-ms-azurevm-vmid".into(), id.clone());
    }
    // Secure Boot as the TCG log measured it, else as the paravisor states it.
    if let Some(sb) = native
        .get("secure_boot")
        .filter(|v| v.is_boolean())
        .or_else(|| cfg.and_then(|c| c.get("secure-boot")))
    {
        out.insert("secureboot".into(), sb.clone());
    }
    if let Some(g) = native.get("guest") {
        out.extend(guest_claims(g));
    }
    if let Some(bank) = native
        .get("pcrs")
        .and_then(|p| p.get("sha256"))
        .and_then(Value::as_object)
    {
        let mut idx: Vec<u64> = bank.keys().filter_map(|k| k.parse().ok()).collect();
        idx.sort_unstable();
        out.insert("x-ms-azurevm-attested-pcrs".into(), Value::from(idx));
    }
    out
}

/// The `azurevm` claims of the guest attestation protocol: the sealing key and the client
/// payload as `x-ms-runtime` (where Azure's key release looks for the key to wrap to), and
/// the OS facts the guest states.
fn guest_claims(g: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "x-ms-runtime".into(),
        json!({"client-payload": g["client_payload"], "keys": [g["encryption_key"]]}),
    );
    out.insert(
        "x-ms-azurevm-attestation-protocol-ver".into(),
        g["protocol_version"].clone(),
    );
    for (native, maa) in [
        ("os_type", "x-ms-azurevm-ostype"),
        ("os_distro", "x-ms-azurevm-osdistro"),
        ("os_build", "x-ms-azurevm-osbuild"),
        ("os_version_major", "x-ms-azurevm-osversion-major"),
        ("os_version_minor", "x-ms-azurevm-osversion-minor"),
    ] {
        out.insert(maa.into(), g[native].clone());
    }
    out.insert(
        "x-ms-azurevm-is-windows".into(),
        Value::Bool(g["os_type"] == "Windows"),
    );
    out
}

/// For Azure CVM evidence that the provider's policy judged compliant (it issued
/// `x-ms-compliance-status`), states it in MAA's words inside `x-ms-isolation-tee`, so Azure
/// release policies (`x-ms-isolation-tee.x-ms-compliance-status == azure-compliant-cvm`) work
/// unchanged.
fn azure_compliance(issued: &mut serde_json::Map<String, serde_json::Value>) {
    if !issued.contains_key("x-ms-compliance-status") {
        return;
    }
    if let Some(serde_json::Value::Object(tee)) = issued.get_mut("x-ms-isolation-tee") {
        tee.insert(
            "x-ms-compliance-status".into(),
            serde_json::Value::from("azure-compliant-cvm"),
        );
    }
}
