//! AMD SEV-SNP: the attestation report, signed by a VCEK (per chip and TCB) or a VLEK (per
//! cloud provider), whose certificate chains through the ASK (or ASVK) to the ARK of the
//! processor generation.
//!
//! Checks, in order: report layout and version; the signing key the report names; a VCEK/VLEK
//! among the given certificates (VCEK: the one whose hwID is the report's chip ID); its chain to
//! a pinned ARK (Milan, Genoa, Turin) or an operator anchor, valid at the verification time, via
//! an ASK for a VCEK and an ASVK for a VLEK; the product family agreeing between CPUID, the
//! certificate and the chain; the ECDSA P-384 signature over the first 0x2A0 bytes; the
//! certificate's TCB extensions equal to the report's REPORTED_TCB; the nonce, if one is expected,
//! as the prefix of REPORT_DATA.

pub mod kds;
pub mod minimum;
pub mod report;
pub mod vcek;

use crate::Verifier;
use crate::claims::VerifiedClaims;
use crate::error::AttestError;
use crate::evidence::{EvidenceInput, EvidenceType, Platform, VerifyContext};
use crate::x509::{parse_cert, subject_cn, verify_chain};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use report::{Product, SigningKey, SnpReport, Tcb};
use serde_json::{Map, Value, json};
use sovra_proto::hex::encode as hex;

pub use report::parse_report;

/// Verifier for [`EvidenceType::SevSnp`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SnpVerifier;

fn version(v: (u8, u8, u8)) -> String {
    format!("{}.{}.{}", v.2, v.1, v.0)
}

/// Whether the certificate's hwID names this chip (Turin VCEKs carry an 8-byte ID).
fn hw_id_matches(hw_id: &[u8], chip_id: &[u8; 64]) -> bool {
    !hw_id.is_empty()
        && chip_id.get(..hw_id.len()) == Some(hw_id)
        && chip_id
            .get(hw_id.len()..)
            .is_some_and(|rest| rest.iter().all(|b| *b == 0) || hw_id.len() == 64)
}

fn select_key<'a>(
    r: &SnpReport,
    kind: SigningKey,
    certs: &'a [Vec<u8>],
) -> Result<(&'a [u8], vcek::KeyInfo), AttestError> {
    let masked = r.flags >> 1 & 1 == 1;
    let mut wrong_chip = false;
    for der in certs {
        let Ok(info) = vcek::key_info(der) else {
            continue;
        };
        match kind {
            SigningKey::Vlek if info.is_vlek() => return Ok((der, info)),
            SigningKey::Vcek if info.subject_cn.contains("VCEK") => match &info.hw_id {
                Some(id) if masked || hw_id_matches(id, &r.chip_id) => return Ok((der, info)),
                _ => wrong_chip = true,
            },
            _ => {}
        }
    }
    let chip = hex(&r.chip_id);
    Err(match (kind, wrong_chip) {
        (SigningKey::Vcek, true) => AttestError::BindingInvalid(format!(
            "no VCEK given has the hardware ID of this report's chip ({chip}); the certificate belongs to another processor"
        )),
        (SigningKey::Vcek, false) => AttestError::CollateralMissing(format!(
            "the VCEK of chip {chip} is missing: pass it with the evidence (--cert-chain) or import it with `sovra attestation collateral import --kind amd-certs`"
        )),
        (SigningKey::Vlek, _) => AttestError::CollateralMissing(
            "the report is signed by a VLEK but no VLEK certificate was given: pass it with the evidence or import it (kind amd-certs)".into(),
        ),
    })
}

fn check_tcb(tcb: &Tcb, info: &vcek::KeyInfo) -> Result<(), AttestError> {
    let pairs = [
        ("bootloader", Some(tcb.bootloader), info.bl_spl),
        ("tee", Some(tcb.tee), info.tee_spl),
        ("snp", Some(tcb.snp), info.snp_spl),
        ("microcode", Some(tcb.microcode), info.ucode_spl),
        ("fmc", tcb.fmc, info.fmc_spl),
    ];
    for (name, report, cert) in pairs {
        if let (Some(r), Some(c)) = (report, cert)
            && r != c
        {
            return Err(AttestError::TcbMismatch(format!(
                "REPORTED_TCB {name} SVN is {r} but the signing certificate is for {c}: the certificate was issued for another TCB; fetch the VCEK for this TCB"
            )));
        }
    }
    Ok(())
}

/// The claims of a verified report.
fn claims(r: &SnpReport, product: Product, kind: SigningKey) -> Map<String, Value> {
    let tcb = |raw| Tcb::decode(raw, product);
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    put("version", json!(r.version));
    put("guest_svn", json!(r.guest_svn));
    put("policy", json!(format!("{:#x}", r.policy)));
    put("policy_abi_minor", json!(r.policy & 0xff));
    put("policy_abi_major", json!(r.policy >> 8 & 0xff));
    put("policy_smt_allowed", json!(r.policy_bit(16)));
    put("policy_migrate_ma", json!(r.policy_bit(18)));
    put("policy_debug", json!(r.debug()));
    put("policy_single_socket", json!(r.policy_bit(20)));
    put("family_id", json!(hex(&r.family_id)));
    put("image_id", json!(hex(&r.image_id)));
    put("vmpl", json!(r.vmpl));
    put("signature_algo", json!(r.signature_algo));
    put("current_tcb", tcb(r.current_tcb).to_json());
    put("current_tcb_raw", json!(format!("{:#018x}", r.current_tcb)));
    put("platform_info", json!(format!("{:#x}", r.platform_info)));
    put("platform_smt_enabled", json!(r.platform_info & 1 == 1));
    put(
        "platform_tsme_enabled",
        json!(r.platform_info >> 1 & 1 == 1),
    );
    put("flags", json!(format!("{:#x}", r.flags)));
    put("measurement", json!(hex(&r.measurement)));
    put("host_data", json!(hex(&r.host_data)));
    put("id_key_digest", json!(hex(&r.id_key_digest)));
    put("author_key_digest", json!(hex(&r.author_key_digest)));
    put("report_id", json!(hex(&r.report_id)));
    put("report_id_ma", json!(hex(&r.report_id_ma)));
    put("reported_tcb", tcb(r.reported_tcb).to_json());
    put(
        "reported_tcb_raw",
        json!(format!("{:#018x}", r.reported_tcb)),
    );
    put("cpuid_fam_id", json!(r.cpuid_fam_id));
    put("cpuid_mod_id", json!(r.cpuid_mod_id));
    put("cpuid_step", json!(r.cpuid_step));
    put("chip_id", json!(hex(&r.chip_id)));
    put(
        "committed_tcb_raw",
        json!(format!("{:#018x}", r.committed_tcb)),
    );
    put("current_version", json!(version(r.current_version)));
    put("committed_version", json!(version(r.committed_version)));
    put("launch_tcb_raw", json!(format!("{:#018x}", r.launch_tcb)));
    put("product", json!(product.name()));
    put(
        "signing_key",
        json!(match kind {
            SigningKey::Vcek => "vcek",
            SigningKey::Vlek => "vlek",
        }),
    );
    m
}

impl Verifier for SnpVerifier {
    fn evidence_type(&self) -> EvidenceType {
        EvidenceType::SevSnp
    }

    fn platform(&self) -> crate::evidence::Platform {
        crate::evidence::Platform::Amd
    }

    fn maa_attestation_type(&self) -> &'static str {
        "sevsnpvm"
    }

    fn maa_route_names(&self) -> &'static [&'static str] {
        &["SevSnpVm"]
    }

    fn maa_claims(&self, v: &VerifiedClaims) -> serde_json::Map<String, serde_json::Value> {
        match v.to_json() {
            serde_json::Value::Object(native) => maa_claims_at(&native, "", v.debug()),
            _ => serde_json::Map::new(),
        }
    }

    fn vendor_source(&self) -> crate::VendorSource {
        crate::VendorSource::AmdKds
    }

    fn verify(
        &self,
        input: &EvidenceInput<'_>,
        ctx: &VerifyContext<'_>,
    ) -> Result<VerifiedClaims, AttestError> {
        let raw = report::decode_input(input.evidence)?;
        let r = parse_report(&raw)?;
        let kind = r.signing_key()?;
        let mut certs = crate::x509::evidence_certs(input.cert_chain.iter().copied())?;
        certs.extend(ctx.trust.cert_pool.iter().cloned());
        let (leaf, info) = select_key(&r, kind, &certs)?;
        let chain = verify_chain(leaf, &certs, Platform::Amd, ctx.trust, ctx.now)?;
        // A VCEK is issued by an ASK, a VLEK by an ASVK (CN SEV-VLEK-…).
        if let Some(ica) = chain.get(1).and_then(|d| parse_cert(d).ok()) {
            let cn = subject_cn(&ica);
            if info.is_vlek() != cn.contains("VLEK") {
                return Err(AttestError::ChainInvalid(format!(
                    "{} is issued by {cn}, which does not issue that kind of key",
                    info.subject_cn
                )));
            }
        }
        let cert_product = info.product();
        let cpu_product = Product::from_cpuid(r.cpuid_fam_id, r.cpuid_mod_id);
        let product = match (cpu_product, cert_product) {
            (Some(a), Some(b)) if a != b => {
                return Err(AttestError::TcbMismatch(format!(
                    "the report comes from a {} processor but its key certificate is for {}",
                    a.name(),
                    b.name()
                )));
            }
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => {
                return Err(AttestError::Unsupported(
                    "cannot tell the processor generation (no CPUID in the report, no productName in the certificate)".into(),
                ));
            }
        };
        let leaf_cert = parse_cert(leaf)?;
        let mut sig = Vec::with_capacity(96);
        sig.extend_from_slice(&r.sig_r);
        sig.extend_from_slice(&r.sig_s);
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, leaf_cert.public_key().subject_public_key.data.as_ref())
            .verify(r.signed_bytes(), &sig)
            .map_err(|_| {
                AttestError::SignatureInvalid(format!(
                    "the report signature does not verify with the {} key: the report was altered or signed by another key",
                    info.subject_cn
                ))
            })?;
        let reported = Tcb::decode(r.reported_tcb, product);
        check_tcb(&reported, &info)?;
        if let Some(n) = input.nonce
            && (n.is_empty() || n.len() > 64 || r.report_data.get(..n.len()) != Some(n))
        {
            return Err(AttestError::NonceMismatch(
                "REPORT_DATA does not start with the expected nonce".into(),
            ));
        }
        Ok(VerifiedClaims::new(
            EvidenceType::SevSnp,
            claims(&r, product, kind),
            r.report_data.to_vec(),
            r.debug(),
            None,
            crate::x509::TrustRoot::of_chain(&chain, Platform::Amd),
        )
        .with_snp_tcb(product, reported))
    }
}

/// MAA's names for the claims of an SEV-SNP report found at `prefix` in `native` (`""` for
/// bare SEV-SNP evidence, `"snp."` inside Azure vTPM evidence).
pub fn maa_claims_at(
    native: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    debug: bool,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (maa, name) in [
        ("x-ms-sevsnpvm-launchmeasurement", "measurement"),
        ("x-ms-sevsnpvm-hostdata", "host_data"),
        ("x-ms-sevsnpvm-familyId", "family_id"),
        ("x-ms-sevsnpvm-imageId", "image_id"),
        ("x-ms-sevsnpvm-idkeydigest", "id_key_digest"),
        ("x-ms-sevsnpvm-authorkeydigest", "author_key_digest"),
        ("x-ms-sevsnpvm-reportid", "report_id"),
        ("x-ms-sevsnpvm-chipid", "chip_id"),
        ("x-ms-sevsnpvm-vmpl", "vmpl"),
        ("x-ms-sevsnpvm-guestsvn", "guest_svn"),
        ("x-ms-sevsnpvm-bootloader-svn", "reported_tcb.bootloader"),
        ("x-ms-sevsnpvm-tee-svn", "reported_tcb.tee"),
        ("x-ms-sevsnpvm-snpfw-svn", "reported_tcb.snp"),
        ("x-ms-sevsnpvm-microcode-svn", "reported_tcb.microcode"),
        ("x-ms-sevsnpvm-smt-allowed", "policy_smt_allowed"),
        ("x-ms-sevsnpvm-migration-allowed", "policy_migrate_ma"),
    ] {
        let paths = [format!("{prefix}{name}"), format!("{prefix}report.{name}")];
        crate::maa::rename(native, &mut out, &[(maa, &[&paths[0], &paths[1]])]);
    }
    let report_data = format!("{prefix}report_data");
    crate::maa::rename(
        native,
        &mut out,
        &[("x-ms-sevsnpvm-reportdata", &[&report_data, "report_data"])],
    );
    out.insert(
        "x-ms-sevsnpvm-is-debuggable".into(),
        serde_json::Value::Bool(debug),
    );
    crate::maa::as_numbers(&mut out, &["x-ms-sevsnpvm-vmpl", "x-ms-sevsnpvm-guestsvn"]);
    out
}
