//! A simulated SEV-SNP guest: an ARK → ASK → VCEK chain (ECDSA P-384) generated at runtime,
//! with the AMD VCEK extensions, and SNP attestation reports (version 3, Milan) signed by the
//! VCEK exactly as the AMD secure processor lays them out. Nothing trusts it by default: the
//! server accepts its reports only after an operator imports `ark.pem` as a trust anchor for
//! the AMD platform. For tests and demos on machines without SEV hardware.

use crate::AgentError;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use rcgen::{BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;

/// The simulated platform.
pub struct SimulatedSnp {
    /// ARK certificate (PEM): the root an operator must trust.
    pub ark_pem: String,
    /// ASK and ARK (PEM), as AMD's `cert_chain`.
    pub ask_ark_pem: String,
    /// VCEK certificate (PEM).
    pub vcek_pem: String,
    vcek: EcdsaKeyPair,
    vcek_pkcs8: Vec<u8>,
    chip_id: [u8; 64],
}

impl std::fmt::Debug for SimulatedSnp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimulatedSnp")
    }
}

const BL: u8 = 3;
const TEE: u8 = 0;
const SNP: u8 = 8;
const UCODE: u8 = 115;

fn err(e: impl std::fmt::Display) -> AgentError {
    AgentError::Local(format!("simulated SNP: {e}"))
}

fn p384() -> Result<(Vec<u8>, KeyPair), AgentError> {
    let pkcs8 =
        sovra_crypto::generate(sovra_proto::kms::Algorithm::EcSignP384Sha384).map_err(err)?;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    let kp =
        KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ECDSA_P384_SHA384).map_err(err)?;
    Ok((pkcs8.expose().to_vec(), kp))
}

fn params(cn: &str, ca: bool) -> Result<CertificateParams, AgentError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(
        DnType::OrganizationName,
        "Sovra simulated AMD (NOT GENUINE)",
    );
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    Ok(p)
}

fn der_int(v: u8) -> Vec<u8> {
    if v < 0x80 {
        vec![0x02, 0x01, v]
    } else {
        vec![0x02, 0x02, 0x00, v]
    }
}

impl SimulatedSnp {
    /// A new platform with a fresh chain and chip ID.
    pub fn generate() -> Result<Self, AgentError> {
        let (_, ark_key) = p384()?;
        let ark = params("ARK-Milan", true)?
            .self_signed(&ark_key)
            .map_err(err)?;
        let ark_issuer = Issuer::new(params("ARK-Milan", true)?, ark_key);
        let (_, ask_key) = p384()?;
        let ask = params("SEV-Milan", true)?
            .signed_by(&ask_key, &ark_issuer)
            .map_err(err)?;
        let ask_issuer = Issuer::new(params("SEV-Milan", true)?, ask_key);
        let mut chip_id = [0u8; 64];
        sovra_crypto::random::fill(&mut chip_id).map_err(err)?;
        let (vcek_pkcs8, vcek_key) = p384()?;
        let mut vp = params("SEV-VCEK", false)?;
        let arc = |tail: &[u64]| {
            let mut o = vec![1, 3, 6, 1, 4, 1, 3704, 1];
            o.extend_from_slice(tail);
            o
        };
        vp.custom_extensions = vec![
            CustomExtension::from_oid_content(&arc(&[2]), {
                let mut v = vec![0x16, 8];
                v.extend_from_slice(b"Milan-B0");
                v
            }),
            CustomExtension::from_oid_content(&arc(&[3, 1]), der_int(BL)),
            CustomExtension::from_oid_content(&arc(&[3, 2]), der_int(TEE)),
            CustomExtension::from_oid_content(&arc(&[3, 3]), der_int(SNP)),
            CustomExtension::from_oid_content(&arc(&[3, 8]), der_int(UCODE)),
            CustomExtension::from_oid_content(&arc(&[4]), chip_id.to_vec()),
        ];
        let vcek = vp.signed_by(&vcek_key, &ask_issuer).map_err(err)?;
        Ok(Self {
            ark_pem: ark.pem(),
            ask_ark_pem: format!("{}{}", ask.pem(), ark.pem()),
            vcek_pem: vcek.pem(),
            vcek: EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &vcek_pkcs8)
                .map_err(err)?,
            vcek_pkcs8,
            chip_id,
        })
    }

    /// Saves the platform in `dir` (`ark.pem`, `ask_ark.pem`, `vcek.pem`, `vcek.key` with mode
    /// 0600, `chip_id`), so later runs sign with the same chain.
    pub fn save(&self, dir: &Path) -> Result<(), AgentError> {
        let w = |name: &str, data: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, data).map_err(|e| AgentError::Local(format!("{}: {e}", p.display())))
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| AgentError::Local(format!("{}: {e}", dir.display())))?;
        w("ark.pem", self.ark_pem.as_bytes())?;
        w("ask_ark.pem", self.ask_ark_pem.as_bytes())?;
        w("vcek.pem", self.vcek_pem.as_bytes())?;
        w(
            "chip_id",
            sovra_proto::hex::encode(&self.chip_id).as_bytes(),
        )?;
        w("vcek.key", &self.vcek_pkcs8)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                dir.join("vcek.key"),
                std::fs::Permissions::from_mode(0o600),
            );
        }
        Ok(())
    }

    /// Loads a platform saved with [`SimulatedSnp::save`].
    pub fn load(dir: &Path) -> Result<Self, AgentError> {
        let r = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| AgentError::Local(format!("{}: {e}", p.display())))
        };
        let text = |name: &str| r(name).map(|b| String::from_utf8_lossy(&b).to_string());
        let vcek_pkcs8 = r("vcek.key")?;
        let chip = text("chip_id")?;
        let chip_id: [u8; 64] = sovra_proto::hex::decode(chip.trim())
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| err("chip_id is not 64 hex bytes"))?;
        Ok(Self {
            ark_pem: text("ark.pem")?,
            ask_ark_pem: text("ask_ark.pem")?,
            vcek_pem: text("vcek.pem")?,
            vcek: EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &vcek_pkcs8)
                .map_err(err)?,
            vcek_pkcs8,
            chip_id,
        })
    }

    /// Writes the root an operator would import as a trust anchor.
    pub fn write_root(&self, path: &Path) -> Result<(), AgentError> {
        std::fs::write(path, &self.ark_pem)
            .map_err(|e| AgentError::Local(format!("{}: {e}", path.display())))
    }

    /// An SNP attestation report (1184 bytes) carrying `report_data`, signed by the VCEK.
    pub fn report(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, AgentError> {
        let mut r = vec![0u8; 0x4A0];
        fn put_at(r: &mut [u8], off: usize, b: &[u8]) {
            if let Some(dst) = r.get_mut(off..off + b.len()) {
                dst.copy_from_slice(b);
            }
        }
        macro_rules! put {
            ($off:expr, $b:expr) => {
                put_at(&mut r, $off, $b)
            };
        }
        put!(0x00, &3u32.to_le_bytes()); // version
        put!(0x04, &1u32.to_le_bytes()); // guest SVN
        put!(0x08, &0x30000u64.to_le_bytes()); // policy: SMT allowed, no debug
        put!(0x30, &0u32.to_le_bytes()); // VMPL 0
        put!(0x34, &1u32.to_le_bytes()); // ECDSA P-384 with SHA-384
        let tcb = u64::from_le_bytes([BL, TEE, 0, 0, 0, 0, SNP, UCODE]);
        put!(0x38, &tcb.to_le_bytes()); // current TCB
        put!(0x40, &1u64.to_le_bytes()); // platform info: SMT enabled
        put!(0x48, &0u32.to_le_bytes()); // flags: signed by the VCEK
        put!(0x50, report_data);
        let measurement =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, b"sovra simulated SNP guest");
        put!(0x90, measurement.as_ref());
        put!(0x180, &tcb.to_le_bytes()); // reported TCB
        put!(0x188, &[0x19, 0x01, 0x01]); // CPUID family, model, stepping: Milan
        put!(0x1A0, &self.chip_id);
        put!(0x1E0, &tcb.to_le_bytes()); // committed TCB
        put!(0x1E8, &[4, 52, 1]); // current build, minor, major
        put!(0x1EC, &[4, 52, 1]);
        put!(0x1F0, &tcb.to_le_bytes()); // launch TCB
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signed = r.get(..0x2A0).ok_or_else(|| err("layout"))?;
        let sig = self.vcek.sign(&rng, signed).map_err(err)?;
        let (rr, ss) = sig.as_ref().split_at(48);
        let le = |be: &[u8]| -> Vec<u8> {
            let mut v: Vec<u8> = be.iter().rev().copied().collect();
            v.resize(72, 0);
            v
        };
        put!(0x2A0, &le(rr));
        put!(0x2A0 + 72, &le(ss));
        Ok(r)
    }
}
