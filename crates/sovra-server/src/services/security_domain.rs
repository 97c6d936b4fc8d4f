//! The security domain: the HSM's root material (software HSM: its root and sealed keys),
//! exported encrypted so that a quorum of the administrators' RSA keys opens it, and restored
//! into a new node's HSM over the same database (`sovra security-domain download | upload`).
//!
//! Nothing here ever holds an administrator's private key: the server encrypts the shares to
//! their certificates; opening happens offline, where the keys are ([`open`]).

use super::Base;
use super::actions::Action;
use super::audit::{AuditEvent, EventKind};
use super::auth::Principal;
use super::authz::Permission;
use super::material::Material;
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::model::{self, DomainDownloadRec};
use crate::records::{Records, Writes};
use sovra_crypto::quorum::{self, HolderKey};
use sovra_proto::ErrorCode;
use sovra_proto::security_domain::{DomainShare, FORMAT, MAX_HOLDERS, MIN_HOLDERS, SecurityDomain};
use sovra_store::WriteBatch;
use std::sync::Arc;

/// Security-domain export.
#[derive(Debug)]
pub struct SecurityDomains {
    base: Base,
    material: Arc<Material>,
}

/// The name of the first download's record.
const FIRST: &str = "first";

/// The longest certificate PEM accepted.
const MAX_CERT_PEM: usize = 16_384;

fn invalid(m: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, m)
}

impl SecurityDomains {
    /// The service.
    pub fn new(base: Base, material: Arc<Material>) -> Self {
        Self { base, material }
    }

    /// Exports the security domain encrypted to `certificates` (PEM; 3 to 10 administrators,
    /// RSA ≥ 2048, currently valid, all different) so that `quorum` of them open it.
    /// Administrators only; audited with the certificates' fingerprints.
    pub async fn download(
        &self,
        p: &Principal,
        certificates: &[String],
        quorum: u8,
    ) -> Result<SecurityDomain> {
        self.base
            .auth
            .authorize(p, Permission::SecurityDomainExport, "*")
            .await?;
        let now = self.base.now();
        let holders = holders(certificates, quorum, now)?;
        let earlier = Records::of(&*self.base.store)
            .get(model::SECURITY_DOMAIN_DOWNLOADS, FIRST)
            .await?;
        if let Some(first) = earlier
            .as_ref()
            .filter(|_| !self.base.cfg.security_domain_repeat)
        {
            let f = &first.value;
            self.base
                .audit
                .record(
                    AuditEvent::new(now, EventKind::Denied, Action::SecurityDomainDownload)
                        .principal(&p.name)
                        .resource(format!("hsm/{}", self.base.hsm.kind()))
                        .denied(ErrorCode::SecurityDomainAlreadyDownloaded.as_str()),
                )
                .await?;
            return Err(Error::new(
                ErrorCode::SecurityDomainAlreadyDownloaded,
                format!(
                    "the security domain was downloaded at {} by {:?} (quorum {} of {}); another download needs hsm.security_domain_downloads = \"always\" in the node's configuration: an operator's decision, not an API token's",
                    rfc3339(f.create_time),
                    f.principal,
                    f.quorum,
                    f.certificates.len()
                ),
            ));
        }
        let secret = self
            .material
            .hsm_call(|hsm| {
                hsm.export_domain().map_err(|e| match e {
                    sovra_hsm::HsmError::Unsupported(m) => {
                        Error::new(ErrorCode::SecurityDomainUnsupported, m)
                    }
                    other => other.into(),
                })
            })
            .await?;
        let mut domain = SecurityDomain {
            format: FORMAT.into(),
            create_time: rfc3339(now),
            backend: self.base.hsm.kind().into(),
            quorum,
            shares: holders
                .iter()
                .map(|h| DomainShare {
                    certificate_sha256: h.certificate_sha256.clone(),
                    public_key_sha256: h.public_key_sha256(),
                    encrypted_share: String::new(),
                })
                .collect(),
            ciphertext: String::new(),
        };
        let spkis: Vec<&[u8]> = holders.iter().map(|h| h.spki.as_slice()).collect();
        let sealed = quorum::seal(secret.expose(), &domain.aad(), &spkis, quorum)
            .map_err(|e| Error::internal(format!("sealing the security domain: {e}")))?;
        for (share, enc) in domain.shares.iter_mut().zip(&sealed.encrypted_shares) {
            share.encrypted_share = sovra_proto::b64::encode(enc);
        }
        domain.ciphertext = sovra_proto::b64::encode(&sealed.ciphertext);
        // The domain leaves only once its download is recorded and in the audit log.
        let certificates: Vec<String> = holders
            .iter()
            .map(|h| h.certificate_sha256.clone())
            .collect();
        let rec = DomainDownloadRec {
            name: match earlier {
                None => FIRST.into(),
                Some(_) => format!(
                    "{now:012}-{}",
                    sovra_crypto::random::hex_id(4).map_err(|e| Error::internal(e.to_string()))?
                ),
            },
            create_time: now,
            principal: p.name.to_string(),
            quorum,
            certificates: certificates.clone(),
        };
        let mut b = WriteBatch::new();
        b.create(model::SECURITY_DOMAIN_DOWNLOADS, &rec)?;
        b.audit(
            AuditEvent::new(now, EventKind::Admin, Action::SecurityDomainDownload)
                .principal(&p.name)
                .resource(format!("hsm/{}", self.base.hsm.kind()))
                .detail(serde_json::json!({"quorum": quorum, "certificates": certificates}))
                .body(),
        );
        self.base.store.commit(b).await.map_err(|e| {
            if rec.name == FIRST {
                // Another first download won the race.
                Error::new(
                    ErrorCode::SecurityDomainAlreadyDownloaded,
                    "the security domain was just downloaded by another request",
                )
            } else {
                e.into()
            }
        })?;
        Ok(domain)
    }
}

/// An administrator a secret is split to: their certificate's fingerprint and RSA key.
#[derive(Debug, Clone)]
pub struct Holder {
    /// SHA-256 of the certificate (DER), hex.
    pub certificate_sha256: String,
    /// The RSA public key (SubjectPublicKeyInfo DER).
    pub spki: Vec<u8>,
}

impl Holder {
    /// SHA-256 of the public key, hex (names the share the key opens).
    pub fn public_key_sha256(&self) -> String {
        sovra_proto::hex::encode(&sovra_crypto::sha256(&self.spki))
    }
}

/// Checks administrators' certificates (PEM; 3 to 10, RSA ≥ 2048, valid at `now`, all
/// different keys) and a quorum for them (2 to their number).
pub fn holders(certificates: &[String], quorum: u8, now: i64) -> Result<Vec<Holder>> {
    let n = certificates.len();
    if !(MIN_HOLDERS..=MAX_HOLDERS).contains(&n) {
        return Err(invalid(format!(
            "a secret is split among {MIN_HOLDERS} to {MAX_HOLDERS} administrators' certificates; {n} given"
        )));
    }
    if quorum < 2 || usize::from(quorum) > n {
        return Err(invalid(format!(
            "quorum must be between 2 and the number of certificates ({n}); {quorum} given"
        )));
    }
    let mut holders: Vec<Holder> = Vec::with_capacity(n);
    for (i, pem) in certificates.iter().enumerate() {
        let which = format!("certificates[{i}]");
        if pem.len() > MAX_CERT_PEM {
            return Err(invalid(format!(
                "{which} is longer than {MAX_CERT_PEM} characters"
            )));
        }
        let der = match sovra_attest::x509::certs_from_pem_or_der(pem.as_bytes()) {
            Ok(v) if v.len() == 1 => v.into_iter().next().unwrap_or_default(),
            _ => {
                return Err(invalid(format!(
                    "{which} must be exactly one PEM certificate"
                )));
            }
        };
        let cert =
            sovra_attest::x509::parse_cert(&der).map_err(|e| invalid(format!("{which}: {e}")))?;
        sovra_attest::x509::check_validity(&cert, now)
            .map_err(|e| invalid(format!("{which}: {e}")))?;
        let spki = cert.public_key().raw.to_vec();
        let bits = quorum::rsa_bits(&spki).map_err(|_| {
            invalid(format!(
                "{which} must hold an RSA key (it encrypts a share)"
            ))
        })?;
        if bits < quorum::MIN_RSA_BITS {
            return Err(invalid(format!(
                "{which} holds a {bits}-bit RSA key; at least {} bits are needed",
                quorum::MIN_RSA_BITS
            )));
        }
        if holders.iter().any(|h| h.spki == spki) {
            return Err(invalid(format!(
                "{which} holds the same key as an earlier certificate: each administrator needs their own key"
            )));
        }
        holders.push(Holder {
            certificate_sha256: sovra_proto::hex::encode(&sovra_crypto::sha256(&der)),
            spki,
        });
    }
    Ok(holders)
}

/// One private key given to [`open`], and what came of it (for progress output).
#[derive(Debug, Clone)]
pub struct KeyUse {
    /// Where the key came from (a file name).
    pub label: String,
    /// The certificate fingerprint of the share it opened.
    pub certificate_sha256: String,
}

/// Opens a security domain with administrators' private keys (PEM or DER; offline, where the
/// keys are). Calls `progress` after each share. Errors: `SECURITY_DOMAIN_INVALID` (malformed,
/// altered), `SECURITY_DOMAIN_QUORUM_NOT_MET` (too few keys, or a key matching no share).
pub fn open(
    domain: &SecurityDomain,
    keys: &[(String, Vec<u8>)],
    mut progress: impl FnMut(&KeyUse),
) -> Result<sovra_crypto::SecretBytes> {
    let bad = |m: String| Error::new(ErrorCode::SecurityDomainInvalid, m);
    let short = |m: String| Error::new(ErrorCode::SecurityDomainQuorumNotMet, m);
    if domain.format != FORMAT {
        return Err(bad(format!(
            "not a security domain of this version (format {:?}; expected {FORMAT:?})",
            domain.format
        )));
    }
    let q = usize::from(domain.quorum);
    if q < 2 || q > domain.shares.len() || domain.shares.len() > MAX_HOLDERS {
        return Err(bad(
            "the security domain's quorum and shares do not agree".into()
        ));
    }
    if keys.len() < q {
        return Err(short(format!(
            "this security domain needs {q} of its {} administrators' keys; {} given",
            domain.shares.len(),
            keys.len()
        )));
    }
    let mut shares = Vec::with_capacity(keys.len());
    let mut used: Vec<usize> = Vec::new();
    for (label, bytes) in keys {
        let key = HolderKey::from_pem_or_der(bytes)
            .map_err(|e| Error::invalid(format!("{label}: {e}")))?;
        let id = sovra_proto::hex::encode(&key.public_key_sha256());
        let Some((i, share)) = domain
            .shares
            .iter()
            .enumerate()
            .find(|(_, s)| s.public_key_sha256 == id)
        else {
            return Err(short(format!(
                "{label} matches none of the security domain's {} certificates",
                domain.shares.len()
            )));
        };
        if used.contains(&i) {
            return Err(short(format!("{label} was given twice (the same key)")));
        }
        used.push(i);
        let enc = sovra_proto::b64::decode(&share.encrypted_share)
            .map_err(|_| bad(format!("share {i} is not base64")))?;
        shares.push(key.open_share(&enc).map_err(|_| {
            bad(format!(
                "{label} does not open its share: the file was altered or the key is another"
            ))
        })?);
        progress(&KeyUse {
            label: label.clone(),
            certificate_sha256: share.certificate_sha256.clone(),
        });
    }
    let ct = sovra_proto::b64::decode(&domain.ciphertext)
        .map_err(|_| bad("the ciphertext is not base64".into()))?;
    quorum::open(&shares, &domain.aad(), &ct).map_err(|_| {
        bad("the shares do not open the security domain: it was altered, or its shares come from different downloads".into())
    })
}
