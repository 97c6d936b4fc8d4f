//! Key attestation statements: what Sovra says, signed inside the HSM, about how a key version
//! came to be.
//!
//! Each HSM has a key-attestation key (ECDSA P-256, generated inside it, never extractable).
//! The deployment's **owner root**, a CA created at first use whose key the HSM wraps, certifies
//! it. When a version is created, Sovra signs a statement about it with the attestation key:
//! a compact JWS (`ES256`, `typ` [`STATEMENT_TYP`], `x5c` = [attestation certificate, owner
//! root]) whose claims are a [`sovra_proto::kms::KeyStatement`]. Anyone holding the owner root
//! certificate checks it offline (`sovra keys attestation verify`).

use super::Base;
use super::actions::Action;
use super::audit::{AuditEvent, EventKind};
use super::material::Material;
use crate::error::{Error, Result};
use crate::model::{self, AttestationCertRec, OwnerRootRec, VersionRec};
use crate::records::{Records, Writes};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use sovra_crypto::jws::b64url;
use sovra_proto::ErrorCode;
use sovra_proto::kms::{KeyOrigin, KeyStatement, ProtectionLevel};
use sovra_store::WriteBatch;
use std::sync::Arc;

pub use sovra_proto::kms::KEY_STATEMENT_TYP as STATEMENT_TYP;

const OWNER: &str = "owner";
const ROOT_KEY_AAD: &[u8] = b"sovra/owner-root/v1";
/// Owner root and attestation certificates are valid this long.
const CERT_YEARS: i64 = 20;

/// The HSM's attestation key as rcgen's signer (for the CSR).
struct HsmSigner<'a> {
    hsm: &'a dyn sovra_hsm::Hsm,
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for HsmSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for HsmSigner<'_> {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let raw = self
            .hsm
            .attestation_sign(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)?;
        sovra_crypto::der::ecdsa_sig_der(&raw).ok_or(rcgen::Error::RemoteKeyError)
    }
}

/// The certificates a statement carries.
#[derive(Debug)]
struct Chain {
    attestation: Vec<u8>,
    root: Vec<u8>,
    /// The attestation key the certificate is for (SubjectPublicKeyInfo DER).
    spki: Vec<u8>,
}

/// The owner root and this HSM's attestation certificate, PEM.
#[derive(Debug, Clone)]
pub struct AttestationRoots {
    /// The owner root certificate: what verifiers pin.
    pub owner_root: String,
    /// This HSM's attestation-key certificate, issued by the owner root.
    pub attestation_certificate: String,
}

/// Makes key attestation statements.
#[derive(Debug)]
pub struct KeyAttestor {
    base: Base,
    material: Arc<Material>,
    /// The chain, as read at the given time: re-read after the metadata TTL, so an owner root
    /// installed through another node is used here too.
    chain: tokio::sync::RwLock<Option<(std::time::Instant, Arc<Chain>)>>,
}

fn cert_err(e: rcgen::Error) -> Error {
    Error::internal(format!("key attestation certificate: {e}"))
}

/// Whether `cert` (DER) is issued by `root` (DER).
fn issued_by(cert: &[u8], root: &[u8]) -> bool {
    match (
        sovra_attest::x509::parse_cert(cert),
        sovra_attest::x509::parse_cert(root),
    ) {
        (Ok(c), Ok(r)) => sovra_attest::x509::verify_issued_by(&c, &r).is_ok(),
        _ => false,
    }
}

fn b64_field(v: &str, what: &str) -> Result<Vec<u8>> {
    sovra_proto::b64::decode(v).map_err(|_| Error::internal(format!("stored {what} is not base64")))
}

impl KeyAttestor {
    /// The service.
    pub fn new(base: Base, material: Arc<Material>) -> Self {
        Self {
            base,
            material,
            chain: tokio::sync::RwLock::new(None),
        }
    }

    fn system_event(&self, action: Action, resource: &str) -> AuditEvent {
        AuditEvent::new(self.base.now(), EventKind::System, action).resource(resource.to_owned())
    }

    fn validity(&self, p: &mut CertificateParams) {
        let now = time::OffsetDateTime::from_unix_timestamp(self.base.now())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(365 * CERT_YEARS);
    }

    /// The owner root (certificate DER, and its key when Sovra holds it), created on first use.
    async fn owner_root(&self) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let records = Records::of(&*self.base.store);
        if let Some(r) = records.get(model::OWNER_ROOT, OWNER).await? {
            return self.open_root(&r.value).await;
        }
        let location = self.base.cfg.default_location.clone();
        let pkcs8 = sovra_crypto::generate(sovra_proto::kms::Algorithm::EcSignP256Sha256)
            .map_err(|e| Error::internal(e.to_string()))?;
        let kp = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose()),
            &PKCS_ECDSA_P256_SHA256,
        )
        .map_err(cert_err)?;
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, "Sovra owner root");
        p.distinguished_name
            .push(DnType::OrganizationName, "Sovra key attestation");
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        self.validity(&mut p);
        let cert = p.self_signed(&kp).map_err(cert_err)?;
        let loc = location.clone();
        let secret = pkcs8.expose().to_vec();
        let wrapped = self
            .material
            .hsm_call(move |hsm| Ok(hsm.wrap(&loc, ROOT_KEY_AAD, &secret)?))
            .await?;
        let rec = OwnerRootRec {
            name: OWNER.into(),
            cert: sovra_proto::b64::encode(cert.der()),
            key: Some(sovra_proto::b64::encode(&wrapped)),
            location,
        };
        let mut b = WriteBatch::new();
        b.create(model::OWNER_ROOT, &rec)?;
        b.audit(
            self.system_event(Action::KeyAttestationRootCreate, "owner")
                .detail(serde_json::json!({"certificateSha256": sovra_proto::hex::encode(&sovra_crypto::sha256(cert.der()))}))
                .body(),
        );
        match self.base.store.commit(b).await {
            Ok(_) => Ok((cert.der().to_vec(), Some(pkcs8.expose().to_vec()))),
            // Another node made it first: use that one.
            Err(_) => {
                let r = records
                    .get(model::OWNER_ROOT, OWNER)
                    .await?
                    .ok_or_else(|| Error::internal("the owner root could not be stored"))?;
                self.open_root(&r.value).await
            }
        }
    }

    async fn open_root(&self, r: &OwnerRootRec) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let cert = b64_field(&r.cert, "owner root certificate")?;
        let key = match &r.key {
            None => None,
            Some(k) => {
                let blob = b64_field(k, "owner root key")?;
                let loc = r.location.clone();
                let secret = self
                    .material
                    .hsm_call(move |hsm| Ok(hsm.unwrap(&loc, ROOT_KEY_AAD, &blob)?))
                    .await?;
                Some(secret.expose().to_vec())
            }
        };
        Ok((cert, key))
    }

    /// This HSM's attestation certificate and the owner root, issuing the certificate on first
    /// use.
    async fn chain(&self) -> Result<Arc<Chain>> {
        let fresh = |slot: &Option<(std::time::Instant, Arc<Chain>)>| {
            slot.as_ref()
                .filter(|(t, _)| t.elapsed() < self.base.cfg.cache_ttl)
                .map(|(_, c)| c.clone())
        };
        if let Some(c) = fresh(&*self.chain.read().await) {
            return Ok(c);
        }
        let mut slot = self.chain.write().await;
        if let Some(c) = fresh(&slot) {
            return Ok(c);
        }
        let c = self.load_chain().await?;
        *slot = Some((std::time::Instant::now(), c.clone()));
        Ok(c)
    }

    async fn load_chain(&self) -> Result<Arc<Chain>> {
        {
            {
                let spki = self
                    .material
                    .hsm_call(|hsm| Ok(hsm.attestation_public_key()?))
                    .await?;
                let name = sovra_proto::hex::encode(&sovra_crypto::sha256(&spki));
                let records = Records::of(&*self.base.store);
                let (root, root_key) = self.owner_root().await?;
                let existing = records.get(model::ATTESTATION_CERTS, &name).await?;
                if let Some(r) = &existing {
                    let cert = b64_field(&r.value.cert, "attestation certificate")?;
                    // A certificate from an owner root since replaced (set-roots on another
                    // node) would make statements no verifier can check: issue or ask anew.
                    if issued_by(&cert, &root) {
                        return Ok(Arc::new(Chain {
                            attestation: cert,
                            root,
                            spki,
                        }));
                    }
                }
                let root_key = root_key.ok_or_else(|| {
                    Error::new(
                        ErrorCode::KeyAttestationUnavailable,
                        "this node's HSM attestation key has no certificate, and the owner root's key is held by your own CA: issue one from 'sovra keys attestation csr' on this node and install it with 'sovra keys attestation set-roots'",
                    )
                })?;
                let kp = KeyPair::from_pkcs8_der_and_sign_algo(
                    &rustls_pki_types::PrivatePkcs8KeyDer::from(root_key.as_slice()),
                    &PKCS_ECDSA_P256_SHA256,
                )
                .map_err(cert_err)?;
                let issuer =
                    Issuer::from_ca_cert_der(&root.as_slice().into(), kp).map_err(cert_err)?;
                let mut p = CertificateParams::default();
                p.distinguished_name.push(
                    DnType::CommonName,
                    format!("Sovra key attestation ({} HSM)", self.base.hsm.kind()),
                );
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                p.use_authority_key_identifier_extension = true;
                self.validity(&mut p);
                let subject = rcgen::SubjectPublicKeyInfo::from_der(&spki).map_err(cert_err)?;
                let cert = p.signed_by(&subject, &issuer).map_err(cert_err)?;
                let rec = AttestationCertRec {
                    name: name.clone(),
                    cert: sovra_proto::b64::encode(cert.der()),
                };
                let mut b = WriteBatch::new();
                match &existing {
                    Some(r) => b.update(model::ATTESTATION_CERTS, &rec, r.rev)?,
                    None => b.create(model::ATTESTATION_CERTS, &rec)?,
                };
                b.audit(
                    self.system_event(Action::KeyAttestationCertificateIssue, &name)
                        .detail(serde_json::json!({"hsm": self.base.hsm.kind(), "publicKeySha256": name}))
                        .body(),
                );
                let attestation = match self.base.store.commit(b).await {
                    Ok(_) => cert.der().to_vec(),
                    Err(_) => {
                        let r = records
                            .get(model::ATTESTATION_CERTS, &name)
                            .await?
                            .ok_or_else(|| {
                                Error::internal("the attestation certificate could not be stored")
                            })?;
                        b64_field(&r.value.cert, "attestation certificate")?
                    }
                };
                Ok(Arc::new(Chain {
                    attestation,
                    root,
                    spki,
                }))
            }
        }
    }

    /// A certificate signing request for this HSM's attestation key, signed inside the HSM,
    /// for the operator's own CA to certify.
    pub async fn csr(&self) -> Result<String> {
        let kind = self.base.hsm.kind();
        self.material
            .hsm_call(move |hsm| {
                let spki = hsm.attestation_public_key()?;
                let point = spki
                    .get(spki.len().saturating_sub(65)..)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                let signer = HsmSigner { hsm, point };
                let mut p = CertificateParams::default();
                p.distinguished_name.push(
                    DnType::CommonName,
                    format!("Sovra key attestation ({kind} HSM)"),
                );
                let csr = p.serialize_request(&signer).map_err(cert_err)?;
                csr.pem().map_err(cert_err)
            })
            .await
    }

    /// Installs an owner root held by the operator's CA, with the certificate it issued for
    /// this HSM's attestation key. Statements made before keep verifying against the root
    /// they were made under.
    pub async fn set_roots(&self, owner_root: &[u8], attestation_cert: &[u8]) -> Result<()> {
        let spki = self
            .material
            .hsm_call(|hsm| Ok(hsm.attestation_public_key()?))
            .await?;
        let bad = |m: String| Error::new(ErrorCode::InvalidArgument, m);
        let root = sovra_attest::x509::parse_cert(owner_root)
            .map_err(|e| bad(format!("ownerRoot: {e}")))?;
        let leaf = sovra_attest::x509::parse_cert(attestation_cert)
            .map_err(|e| bad(format!("attestationCertificate: {e}")))?;
        sovra_attest::x509::check_ca(&root, 0).map_err(|e| bad(format!("ownerRoot: {e}")))?;
        sovra_attest::x509::verify_issued_by(&leaf, &root)
            .map_err(|e| bad(format!("attestationCertificate: {e}")))?;
        sovra_attest::x509::check_validity(&leaf, self.base.now())
            .map_err(|e| bad(format!("attestationCertificate: {e}")))?;
        if leaf.public_key().raw != spki.as_slice() {
            return Err(bad(
                "attestationCertificate certifies another key than this node's HSM attestation key (make it from 'sovra keys attestation csr' on this node)".into(),
            ));
        }
        let name = sovra_proto::hex::encode(&sovra_crypto::sha256(&spki));
        let records = Records::of(&*self.base.store);
        let mut slot = self.chain.write().await;
        let mut b = WriteBatch::new();
        let root_rec = OwnerRootRec {
            name: OWNER.into(),
            cert: sovra_proto::b64::encode(owner_root),
            key: None,
            location: self.base.cfg.default_location.clone(),
        };
        match records.get(model::OWNER_ROOT, OWNER).await? {
            Some(r) => b.update(model::OWNER_ROOT, &root_rec, r.rev)?,
            None => b.create(model::OWNER_ROOT, &root_rec)?,
        };
        let cert_rec = AttestationCertRec {
            name: name.clone(),
            cert: sovra_proto::b64::encode(attestation_cert),
        };
        match records.get(model::ATTESTATION_CERTS, &name).await? {
            Some(r) => b.update(model::ATTESTATION_CERTS, &cert_rec, r.rev)?,
            None => b.create(model::ATTESTATION_CERTS, &cert_rec)?,
        };
        b.audit(
            self.system_event(Action::KeyAttestationRootSet, "owner")
                .detail(serde_json::json!({
                    "certificateSha256": sovra_proto::hex::encode(&sovra_crypto::sha256(owner_root)),
                    "publicKeySha256": name,
                }))
                .body(),
        );
        self.base.store.commit(b).await?;
        *slot = None;
        Ok(())
    }

    /// The owner root and this HSM's attestation certificate.
    pub async fn roots(&self) -> Result<AttestationRoots> {
        let c = self.chain().await?;
        Ok(AttestationRoots {
            owner_root: sovra_crypto::keys::pem("CERTIFICATE", &c.root),
            attestation_certificate: sovra_crypto::keys::pem("CERTIFICATE", &c.attestation),
        })
    }

    /// The statement about a new version `v` (its record as it will be stored), generated at
    /// its protection level.
    pub async fn statement(&self, v: &VersionRec) -> Result<String> {
        let origin = match v.protection_level {
            ProtectionLevel::Hsm => KeyOrigin::HsmGenerated,
            ProtectionLevel::Software => KeyOrigin::SoftwareGenerated,
        };
        self.sign(self.claims(v, origin, None)?).await
    }

    /// The statement about a version imported through a job whose wrapping key is `job_spki`.
    pub async fn import_statement(&self, v: &VersionRec, job_spki: &[u8]) -> Result<String> {
        let hash = sovra_proto::hex::encode(&sovra_crypto::sha256(job_spki));
        self.sign(self.claims(v, KeyOrigin::Imported, Some(hash))?)
            .await
    }

    /// The statement about an import job's wrapping key (generated inside the HSM).
    pub async fn job_statement(
        &self,
        job: &crate::model::ImportJobRec,
        attributes: sovra_hsm::KeyAttributes,
    ) -> Result<String> {
        let spki = b64_field(&job.public_key, "import key")?;
        self.sign(KeyStatement {
            name: job.name.clone(),
            version: 0,
            algorithm: match job.method.bits() {
                3072 => sovra_proto::kms::Algorithm::RsaDecryptOaep3072Sha256,
                _ => sovra_proto::kms::Algorithm::RsaDecryptOaep4096Sha256,
            },
            protection_level: ProtectionLevel::Hsm,
            origin: KeyOrigin::HsmGenerated,
            hsm: self.base.hsm.kind().to_owned(),
            local: Some(attributes.local),
            sensitive: Some(attributes.sensitive),
            always_sensitive: Some(attributes.always_sensitive),
            never_extractable: Some(attributes.never_extractable),
            public_key_sha256: Some(sovra_proto::hex::encode(&sovra_crypto::sha256(&spki))),
            import_wrapping_key_sha256: None,
            create_time: job.create_time,
        })
        .await
    }

    fn claims(
        &self,
        v: &VersionRec,
        origin: KeyOrigin,
        import_wrapping_key_sha256: Option<String>,
    ) -> Result<KeyStatement> {
        let public_key_sha256 = v
            .public_key
            .as_deref()
            .map(|p| b64_field(p, "public key"))
            .transpose()?
            .map(|p| sovra_proto::hex::encode(&sovra_crypto::sha256(&p)));
        Ok(KeyStatement {
            name: v.name.clone(),
            version: v.version,
            algorithm: v.algorithm,
            protection_level: v.protection_level,
            origin,
            hsm: self.base.hsm.kind().to_owned(),
            local: v.hsm_attributes.map(|a| a.local),
            sensitive: v.hsm_attributes.map(|a| a.sensitive),
            always_sensitive: v.hsm_attributes.map(|a| a.always_sensitive),
            never_extractable: v.hsm_attributes.map(|a| a.never_extractable),
            public_key_sha256,
            import_wrapping_key_sha256,
            create_time: v.create_time,
        })
    }

    /// Replaces the HSM's attestation key (Administrator, through `Keys`): a new key inside
    /// the HSM, the old one destroyed; the next statement gets it a certificate from the owner
    /// root (or, with the operator's CA, needs one: `csr`, then `set-roots`). Audited with both
    /// keys' hashes.
    pub async fn rotate(&self, p: &super::auth::Principal) -> Result<String> {
        let mut slot = self.chain.write().await;
        let old = self
            .material
            .hsm_call(|hsm| Ok(hsm.attestation_public_key()?))
            .await?;
        let new = self
            .material
            .hsm_call(|hsm| Ok(hsm.rotate_attestation_key()?))
            .await?;
        *slot = None;
        drop(slot);
        let hash = |k: &[u8]| sovra_proto::hex::encode(&sovra_crypto::sha256(k));
        let new_hash = hash(&new);
        self.base
            .audit
            .record(
                self.base
                    .admin_event(p, Action::KeyAttestationKeyRotate, format!("hsm/{}", self.base.hsm.kind()))
                    .detail(serde_json::json!({"previousPublicKeySha256": hash(&old), "publicKeySha256": new_hash})),
            )
            .await?;
        Ok(new_hash)
    }

    /// Signs `claims` with the HSM's attestation key. The signature is checked against the
    /// certificate the statement carries: if the key was rotated meanwhile (here or on another
    /// node sharing the HSM), the chain is read again and the statement signed again.
    async fn sign(&self, claims: KeyStatement) -> Result<String> {
        for _ in 0..2 {
            let chain = self.chain().await?;
            let jws = self.sign_with(&chain, &claims).await?;
            if let Some(jws) = jws {
                return Ok(jws);
            }
            *self.chain.write().await = None;
        }
        Err(Error::new(
            ErrorCode::KeyAttestationUnavailable,
            "the HSM's attestation key changed while signing; retry",
        ))
    }

    /// The statement, if the HSM's attestation key is still the one `chain` certifies.
    async fn sign_with(&self, chain: &Chain, claims: &KeyStatement) -> Result<Option<String>> {
        let header = serde_json::json!({
            "alg": "ES256",
            "typ": STATEMENT_TYP,
            "x5c": [
                sovra_proto::b64::encode(&chain.attestation),
                sovra_proto::b64::encode(&chain.root),
            ],
        });
        let body = serde_json::to_vec(claims).map_err(|e| Error::internal(e.to_string()))?;
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(&body)
        );
        let message = signing_input.clone().into_bytes();
        let sig = self
            .material
            .hsm_call(move |hsm| Ok(hsm.attestation_sign(&message)?))
            .await?;
        let ok = sovra_crypto::der::ecdsa_sig_der(&sig).is_some_and(|der| {
            sovra_crypto::key_ops::verify_spki(
                sovra_proto::kms::Algorithm::EcSignP256Sha256,
                &chain.spki,
                sovra_crypto::SignInput::Data(signing_input.as_bytes()),
                &der,
            )
            .unwrap_or(false)
        });
        Ok(ok.then(|| format!("{signing_input}.{}", b64url(&sig))))
    }
}
