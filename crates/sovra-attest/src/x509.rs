//! X.509 helpers shared by the verifiers: PEM/DER splitting, signature checks with aws-lc-rs,
//! chain building to pinned or configured roots, CRL checks.
//!
//! Vendor roots are pinned by the SHA-256 of their DER encoding ([`pinned`]); the root
//! certificate itself travels with the evidence (Intel PCK chain, Nitro CA bundle, NVIDIA chain)
//! or comes from the collateral store (AMD ASK/ARK), and is accepted only if its fingerprint is
//! pinned or it was configured as an extra anchor.

use crate::error::AttestError;
use crate::evidence::{Platform, TrustStore};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{self as oids, Oid};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// SHA-256 fingerprints (of the DER encoding) of the vendor roots Sovra trusts out of the box.
pub mod pinned {
    /// AMD ARK-Milan.
    pub const AMD_ARK_MILAN: &str =
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd";
    /// AMD ARK-Genoa.
    pub const AMD_ARK_GENOA: &str =
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1";
    /// AMD ARK-Turin.
    pub const AMD_ARK_TURIN: &str =
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a";
    /// Intel SGX Root CA (also the root of TDX PCK chains).
    pub const INTEL_SGX_ROOT: &str =
        "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";
    /// AWS Nitro Enclaves Root-G1.
    pub const AWS_NITRO_ROOT_G1: &str =
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";
    /// NVIDIA Device Identity CA.
    pub const NVIDIA_DEVICE_IDENTITY_CA: &str =
        "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48";

    /// AMD's intermediate CAs (ASK issues VCEKs, ASVK issues VLEKs), per product: certificates
    /// with these fingerprints are the ones embedded from `data/amd_kds_ca.pem`.
    pub const AMD_INTERMEDIATES: &[&str] = &[
        "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b", // SEV-Milan
        "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5", // SEV-VLEK-Milan
        "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521", // SEV-Genoa
        "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372", // SEV-VLEK-Genoa
        "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185", // SEV-Turin
        "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c", // SEV-VLEK-Turin
    ];

    /// AMD's published ARKs, ASKs and ASVKs (Milan, Genoa, Turin), as AMD KDS serves them.
    const AMD_KDS_CA_PEM: &[u8] = include_bytes!("../data/amd_kds_ca.pem");

    /// The vendor CA certificates (DER) built into Sovra for `p`: candidates for every chain of
    /// that platform, so evidence that carries only its leaf (a VCEK or VLEK) verifies offline.
    /// Only certificates whose fingerprints are pinned above are returned.
    pub fn embedded(p: crate::evidence::Platform) -> &'static [Vec<u8>] {
        use crate::evidence::Platform;
        static AMD: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        match p {
            Platform::Amd => AMD.get_or_init(|| {
                super::certs_from_pem_or_der(AMD_KDS_CA_PEM)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|d| {
                        let fp = super::sha256_hex(d);
                        AMD_INTERMEDIATES.contains(&fp.as_str())
                            || for_platform(Platform::Amd).contains(&fp.as_str())
                    })
                    .collect()
            }),
            Platform::Intel | Platform::AwsNitro | Platform::Nvidia | Platform::Tpm => &[],
        }
    }

    /// The name of a pinned vendor root, by fingerprint.
    pub fn name_of(fingerprint: &str) -> Option<&'static str> {
        Some(match fingerprint {
            AMD_ARK_MILAN => "AMD ARK-Milan",
            AMD_ARK_GENOA => "AMD ARK-Genoa",
            AMD_ARK_TURIN => "AMD ARK-Turin",
            INTEL_SGX_ROOT => "Intel SGX Root CA",
            AWS_NITRO_ROOT_G1 => "AWS Nitro Enclaves Root-G1",
            NVIDIA_DEVICE_IDENTITY_CA => "NVIDIA Device Identity CA",
            _ => return None,
        })
    }

    /// The pinned fingerprints of one platform.
    pub fn for_platform(p: crate::evidence::Platform) -> &'static [&'static str] {
        use crate::evidence::Platform;
        match p {
            Platform::Amd => &[AMD_ARK_MILAN, AMD_ARK_GENOA, AMD_ARK_TURIN],
            Platform::Intel => &[INTEL_SGX_ROOT],
            Platform::AwsNitro => &[AWS_NITRO_ROOT_G1],
            Platform::Nvidia => &[NVIDIA_DEVICE_IDENTITY_CA],
            Platform::Tpm => &[],
        }
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sovra_proto::hex::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Splits a PEM bundle (any number of `CERTIFICATE` blocks) or a single DER certificate into
/// DER certificates.
pub fn certs_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, AttestError> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AttestError::malformed("certificate file is neither DER nor PEM text"))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = rest.get(start..).unwrap_or_default();
        let header_end = after
            .find('\n')
            .ok_or_else(|| AttestError::malformed("truncated PEM header"))?;
        let label_line = after.get(..header_end).unwrap_or_default().trim();
        let end_marker = "-----END ";
        let end = after
            .find(end_marker)
            .ok_or_else(|| AttestError::malformed("PEM block without END line"))?;
        let body = after.get(header_end..end).unwrap_or_default();
        let end_line_len = after
            .get(end..)
            .and_then(|s| s.find('\n'))
            .unwrap_or(after.len() - end);
        rest = after.get(end + end_line_len..).unwrap_or_default();
        if !label_line.contains("CERTIFICATE") || label_line.contains("REQUEST") {
            continue;
        }
        let b64: Vec<u8> = body.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|_| AttestError::malformed("PEM certificate is not valid base64"))?;
        out.push(der);
    }
    if out.is_empty() {
        return Err(AttestError::malformed(
            "no certificate found (expected PEM or DER)",
        ));
    }
    Ok(out)
}

/// Where a verified chain ended: a vendor root Sovra pins, or an anchor an operator configured.
/// Tokens say which (`x-sovra-trust-root`, `x-sovra-trust-root-kind`), so a policy can require a
/// vendor root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoot {
    /// A pinned vendor root, by name (`AMD ARK-Milan`).
    Vendor(String),
    /// An operator-configured anchor, by the SHA-256 of its DER (lowercase hex).
    Operator(String),
}

impl TrustRoot {
    /// The root of a verified `chain` (leaf first, root last) of `platform`.
    pub fn of_chain(chain: &[Vec<u8>], platform: Platform) -> Self {
        let fp = chain.last().map(|d| sha256_hex(d)).unwrap_or_default();
        match pinned::name_of(&fp) {
            Some(name) if pinned::for_platform(platform).contains(&fp.as_str()) => {
                Self::Vendor(name.to_string())
            }
            _ => Self::Operator(fp),
        }
    }

    /// `vendor` or `operator`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Vendor(_) => "vendor",
            Self::Operator(_) => "operator",
        }
    }

    /// The root's name (vendor) or `sha256:` fingerprint (operator anchor).
    pub fn id(&self) -> String {
        match self {
            Self::Vendor(n) => n.clone(),
            Self::Operator(fp) => format!("sha256:{fp}"),
        }
    }

    /// Back from [`TrustRoot::kind`] and [`TrustRoot::id`] (e.g. a stored challenge).
    pub fn from_parts(kind: &str, id: &str) -> Option<Self> {
        match kind {
            "vendor" => Some(Self::Vendor(id.to_string())),
            "operator" => id
                .strip_prefix("sha256:")
                .map(|f| Self::Operator(f.to_string())),
            _ => None,
        }
    }
}

/// Most certificates that may travel with one piece of evidence (real chains have 2 to 5). Each
/// is parsed and may be a candidate issuer, so a request cannot make that work grow.
pub const MAX_EVIDENCE_CERTS: usize = 32;

/// Splits the certificates that came with evidence (PEM bundles or DER), at most
/// [`MAX_EVIDENCE_CERTS`] of them.
pub fn evidence_certs<'a>(
    items: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Vec<u8>>, AttestError> {
    let mut out = Vec::new();
    for item in items {
        out.extend(certs_from_pem_or_der(item)?);
        if out.len() > MAX_EVIDENCE_CERTS {
            return Err(AttestError::malformed(format!(
                "the evidence carries more than {MAX_EVIDENCE_CERTS} certificates; send only its chain"
            )));
        }
    }
    Ok(out)
}

/// Parses one DER certificate, rejecting trailing bytes.
pub fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, AttestError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(AttestError::malformed("certificate has trailing bytes")),
        Err(e) => Err(AttestError::malformed(format!(
            "certificate does not parse: {e}"
        ))),
    }
}

/// The common name of a certificate's subject, for messages.
pub fn subject_cn(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| cert.subject().to_string())
}

fn oid_is(oid: &Oid<'_>, other: &Oid<'_>) -> bool {
    oid == other
}

/// Which aws-lc-rs algorithm verifies `sig_alg` with a key of `spki`'s type.
fn verification_alg(
    sig_alg: &AlgorithmIdentifier<'_>,
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<&'static dyn VerificationAlgorithm, AttestError> {
    let alg = &sig_alg.algorithm;
    let key_alg = &spki.algorithm.algorithm;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    let is_p256 = curve
        .as_ref()
        .is_some_and(|c| oid_is(c, &oids::OID_EC_P256));
    let is_p384 = curve
        .as_ref()
        .is_some_and(|c| oid_is(c, &oids::OID_NIST_EC_P384));
    let is_ec = oid_is(key_alg, &oids::OID_KEY_TYPE_EC_PUBLIC_KEY);
    let is_rsa = oid_is(key_alg, &oids::OID_PKCS1_RSAENCRYPTION)
        || oid_is(key_alg, &oids::OID_PKCS1_RSASSAPSS);
    let unsupported =
        || AttestError::Unsupported(format!("signature algorithm {alg} with key type {key_alg}"));
    if is_rsa {
        if oid_is(alg, &oids::OID_PKCS1_SHA256WITHRSA) {
            return Ok(&signature::RSA_PKCS1_2048_8192_SHA256);
        }
        if oid_is(alg, &oids::OID_PKCS1_SHA384WITHRSA) {
            return Ok(&signature::RSA_PKCS1_2048_8192_SHA384);
        }
        if oid_is(alg, &oids::OID_PKCS1_SHA512WITHRSA) {
            return Ok(&signature::RSA_PKCS1_2048_8192_SHA512);
        }
        if oid_is(alg, &oids::OID_PKCS1_RSASSAPSS) {
            return match pss_hash(sig_alg)? {
                PssHash::Sha256 => Ok(&signature::RSA_PSS_2048_8192_SHA256),
                PssHash::Sha384 => Ok(&signature::RSA_PSS_2048_8192_SHA384),
                PssHash::Sha512 => Ok(&signature::RSA_PSS_2048_8192_SHA512),
            };
        }
        return Err(unsupported());
    }
    if is_ec {
        let sha256 = oid_is(alg, &oids::OID_SIG_ECDSA_WITH_SHA256);
        let sha384 = oid_is(alg, &oids::OID_SIG_ECDSA_WITH_SHA384);
        return match (is_p256, is_p384, sha256, sha384) {
            (true, _, true, _) => Ok(&signature::ECDSA_P256_SHA256_ASN1),
            (true, _, _, true) => Ok(&signature::ECDSA_P256_SHA384_ASN1),
            (_, true, true, _) => Ok(&signature::ECDSA_P384_SHA256_ASN1),
            (_, true, _, true) => Ok(&signature::ECDSA_P384_SHA384_ASN1),
            _ => Err(unsupported()),
        };
    }
    Err(unsupported())
}

enum PssHash {
    Sha256,
    Sha384,
    Sha512,
}

/// Reads the hash of RSASSA-PSS parameters and checks that the salt length equals the hash length
/// (the only PSS form aws-lc-rs verifies, and the one AMD uses).
fn pss_hash(sig_alg: &AlgorithmIdentifier<'_>) -> Result<PssHash, AttestError> {
    use x509_parser::asn1_rs::ToDer;
    use x509_parser::der_parser::der::parse_der;
    let params = sig_alg
        .parameters
        .as_ref()
        .ok_or_else(|| AttestError::Unsupported("RSASSA-PSS without parameters".into()))?;
    let raw = params
        .to_der_vec()
        .map_err(|_| AttestError::malformed("RSASSA-PSS parameters"))?;
    let (_, obj) = parse_der(&raw).map_err(|_| AttestError::malformed("RSASSA-PSS parameters"))?;
    let seq = obj
        .as_sequence()
        .map_err(|_| AttestError::malformed("RSASSA-PSS parameters are not a sequence"))?;
    let mut hash = PssHash::Sha256; // default SHA-1 is not accepted below
    let mut hash_seen = false;
    let mut salt: u32 = 20;
    for item in seq {
        let tag = item.header.tag().0;
        let inner_raw = item.content.as_slice().ok().unwrap_or_default();
        match tag {
            0 => {
                let (_, alg) = parse_der(inner_raw)
                    .map_err(|_| AttestError::malformed("PSS hash algorithm"))?;
                let alg_seq = alg
                    .as_sequence()
                    .map_err(|_| AttestError::malformed("PSS hash algorithm"))?;
                let oid = alg_seq
                    .first()
                    .and_then(|o| o.as_oid().ok())
                    .ok_or_else(|| AttestError::malformed("PSS hash OID"))?;
                hash = if oid == &oids::OID_NIST_HASH_SHA256 {
                    PssHash::Sha256
                } else if oid == &oids::OID_NIST_HASH_SHA384 {
                    PssHash::Sha384
                } else if oid == &oids::OID_NIST_HASH_SHA512 {
                    PssHash::Sha512
                } else {
                    return Err(AttestError::Unsupported(format!("RSASSA-PSS hash {oid}")));
                };
                hash_seen = true;
            }
            2 => {
                let (_, v) =
                    parse_der(inner_raw).map_err(|_| AttestError::malformed("PSS salt length"))?;
                salt = v
                    .as_u32()
                    .map_err(|_| AttestError::malformed("PSS salt length"))?;
            }
            _ => {}
        }
    }
    if !hash_seen {
        return Err(AttestError::Unsupported("RSASSA-PSS with SHA-1".into()));
    }
    let want = match hash {
        PssHash::Sha256 => 32,
        PssHash::Sha384 => 48,
        PssHash::Sha512 => 64,
    };
    if salt != want {
        return Err(AttestError::Unsupported(format!(
            "RSASSA-PSS salt length {salt} (expected {want})"
        )));
    }
    Ok(hash)
}

/// Verifies `signature` over `message` with the key in `spki`, using the X.509 signature
/// algorithm `sig_alg`.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    sig_alg: &AlgorithmIdentifier<'_>,
    message: &[u8],
    sig: &[u8],
) -> Result<(), AttestError> {
    let alg = verification_alg(sig_alg, spki)?;
    UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
        .verify(message, sig)
        .map_err(|_| AttestError::SignatureInvalid("X.509 signature does not verify".into()))
}

/// Checks that `child` names `issuer` as its issuer and is signed by its key.
pub fn verify_issued_by(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), AttestError> {
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(AttestError::ChainInvalid(format!(
            "{} is not issued by {}",
            subject_cn(child),
            subject_cn(issuer)
        )));
    }
    verify_signature(
        issuer.public_key(),
        &child.signature_algorithm,
        child.tbs_certificate.as_ref(),
        child.signature_value.data.as_ref(),
    )
    .map_err(|e| match e {
        AttestError::SignatureInvalid(_) => AttestError::ChainInvalid(format!(
            "signature of {} by {} does not verify",
            subject_cn(child),
            subject_cn(issuer)
        )),
        other => other,
    })
}

/// Checks that `cert` is valid at `now` (Unix seconds).
pub fn check_validity(cert: &X509Certificate<'_>, now: i64) -> Result<(), AttestError> {
    let v = cert.validity();
    if now < v.not_before.timestamp() {
        return Err(AttestError::Expired(format!(
            "certificate {} is not valid before {}",
            subject_cn(cert),
            v.not_before
        )));
    }
    if now > v.not_after.timestamp() {
        return Err(AttestError::Expired(format!(
            "certificate {} expired at {}",
            subject_cn(cert),
            v.not_after
        )));
    }
    Ok(())
}

/// Most candidate issuers whose signature is checked at one level of a chain. Candidates are
/// filtered by subject and CA-ness first (no signature work), so this bounds what a request
/// carrying many look-alike certificates can cost.
pub const MAX_CANDIDATES: usize = 4;

/// Checks that `cert` may issue certificates for a chain with `below` CA certificates under it
/// (RFC 5280 §4.2.1.9, §4.2.1.3): basicConstraints with cA TRUE (a certificate without
/// basicConstraints is not a CA), keyCertSign if keyUsage is present, and a path length
/// constraint that allows `below`.
pub fn check_ca(cert: &X509Certificate<'_>, below: usize) -> Result<(), AttestError> {
    let not_ca =
        |why: &str| AttestError::ChainInvalid(format!("{} is not a CA: {why}", subject_cn(cert)));
    let bc = match cert.basic_constraints() {
        Ok(Some(bc)) => bc.value,
        Ok(None) => return Err(not_ca("it has no basicConstraints extension")),
        Err(_) => return Err(not_ca("its basicConstraints extension is malformed")),
    };
    if !bc.ca {
        return Err(not_ca("basicConstraints says cA FALSE"));
    }
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            return Err(not_ca("its keyUsage does not allow keyCertSign"));
        }
        Ok(_) => {}
        Err(_) => return Err(not_ca("its keyUsage extension is malformed")),
    }
    if let Some(max) = bc.path_len_constraint
        && below > max as usize
    {
        return Err(AttestError::ChainInvalid(format!(
            "{} allows {max} CA certificates below it, the chain has {below}",
            subject_cn(cert)
        )));
    }
    Ok(())
}

/// Builds and checks a chain from `leaf` through certificates in `pool` to a root that is pinned
/// for `platform` or configured in `trust` for it. Every certificate must be valid at `now`.
///
/// Returns the DER of the chain, leaf first, root last.
pub fn verify_chain(
    leaf: &[u8],
    pool: &[Vec<u8>],
    platform: Platform,
    trust: &TrustStore,
    now: i64,
) -> Result<Vec<Vec<u8>>, AttestError> {
    // The same chain arrives with every report of a machine: remember verified chains by the
    // exact inputs and reuse them while `now` is inside every certificate's validity.
    let key = chain_cache::key(leaf, pool, platform, trust);
    if let Some(chain) = chain_cache::get(&key, now) {
        return Ok(chain);
    }
    let chain = verify_chain_uncached(leaf, pool, platform, trust, now)?;
    chain_cache::put(key, &chain);
    Ok(chain)
}

/// A bounded memo of verified chains. A hit requires the same leaf, pool, platform and
/// anchors, and a time inside the intersection of the chain's validity windows, so it returns
/// exactly what a fresh verification would.
mod chain_cache {
    use super::{Platform, TrustStore, parse_cert};
    use aws_lc_rs::digest;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    type Entry = (Vec<Vec<u8>>, i64, i64);
    const MAX: usize = 4096;

    fn map() -> &'static Mutex<HashMap<[u8; 32], Entry>> {
        static M: OnceLock<Mutex<HashMap<[u8; 32], Entry>>> = OnceLock::new();
        M.get_or_init(|| Mutex::new(HashMap::new()))
    }

    pub(super) fn key(
        leaf: &[u8],
        pool: &[Vec<u8>],
        platform: Platform,
        trust: &TrustStore,
    ) -> [u8; 32] {
        let mut c = digest::Context::new(&digest::SHA256);
        let mut part = |b: &[u8]| {
            c.update(&(b.len() as u64).to_le_bytes());
            c.update(b);
        };
        part(format!("{platform:?}").as_bytes());
        part(leaf);
        for p in pool {
            part(p);
        }
        for a in trust.anchors_for(platform) {
            part(a);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(c.finish().as_ref());
        out
    }

    pub(super) fn get(key: &[u8; 32], now: i64) -> Option<Vec<Vec<u8>>> {
        let m = map().lock().ok()?;
        let (chain, from, to) = m.get(key)?;
        (now >= *from && now <= *to).then(|| chain.clone())
    }

    pub(super) fn put(key: [u8; 32], chain: &[Vec<u8>]) {
        let mut from = i64::MIN;
        let mut to = i64::MAX;
        for der in chain {
            let Ok(c) = parse_cert(der) else { return };
            from = from.max(c.validity().not_before.timestamp());
            to = to.min(c.validity().not_after.timestamp());
        }
        if let Ok(mut m) = map().lock() {
            if m.len() >= MAX {
                m.clear();
            }
            m.insert(key, (chain.to_vec(), from, to));
        }
    }
}

fn verify_chain_uncached(
    leaf: &[u8],
    pool: &[Vec<u8>],
    platform: Platform,
    trust: &TrustStore,
    now: i64,
) -> Result<Vec<Vec<u8>>, AttestError> {
    const MAX_DEPTH: usize = 6;
    let pinned = pinned::for_platform(platform);
    let extra: Vec<&[u8]> = trust.anchors_for(platform).collect();
    let is_anchor = |der: &[u8]| -> bool {
        let fp = sha256_hex(der);
        pinned.contains(&fp.as_str()) || extra.contains(&der)
    };
    let mut chain: Vec<Vec<u8>> = vec![leaf.to_vec()];
    let leaf_cert = parse_cert(leaf)?;
    check_validity(&leaf_cert, now)?;
    // Candidates: the configured anchors, the built-in vendor CAs, then the pool; each parsed
    // once. Unparsable ones are skipped.
    let candidates: Vec<(&[u8], X509Certificate<'_>)> = extra
        .iter()
        .copied()
        .chain(pinned::embedded(platform).iter().map(Vec::as_slice))
        .chain(pool.iter().map(Vec::as_slice))
        .filter_map(|d| parse_cert(d).ok().map(|c| (d, c)))
        .collect();
    let mut current_der: &[u8] = leaf;
    let mut current = leaf_cert;
    for _ in 0..MAX_DEPTH {
        if is_anchor(current_der) {
            // A root must be self-signed.
            verify_issued_by(&current, &current)?;
            check_validity(&current, now)?;
            return Ok(chain);
        }
        // CA certificates below the next issuer (the leaf is not one).
        let below = chain.len() - 1;
        let mut next: Option<usize> = None;
        let mut last_err: Option<AttestError> = None;
        let mut tried = 0usize;
        for (i, (der, issuer)) in candidates.iter().enumerate() {
            if *der == current_der || issuer.subject().as_raw() != current.issuer().as_raw() {
                continue;
            }
            // Everything that needs no signature check comes first.
            if let Err(e) = check_ca(issuer, below) {
                last_err = Some(e);
                continue;
            }
            if tried == MAX_CANDIDATES {
                last_err = Some(AttestError::ChainInvalid(format!(
                    "more than {MAX_CANDIDATES} candidate issuers for {}; send only the chain",
                    subject_cn(&current)
                )));
                break;
            }
            tried += 1;
            match verify_issued_by(&current, issuer) {
                Ok(()) => {
                    check_validity(issuer, now)?;
                    next = Some(i);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some((der, issuer)) = next.and_then(|i| candidates.get(i)) else {
            return Err(last_err.unwrap_or_else(|| {
                AttestError::ChainInvalid(format!(
                    "no trusted issuer found for {} (issuer {}); import the issuing chain or configure the root as an anchor",
                    subject_cn(&current),
                    current.issuer()
                ))
            }));
        };
        chain.push(der.to_vec());
        current_der = der;
        current = issuer.clone();
    }
    Err(AttestError::ChainInvalid(
        "certificate chain is too long".into(),
    ))
}

/// Parses a DER CRL, checks it is signed by `issuer` and current at `now`, and returns the
/// serial numbers (big-endian bytes, leading zeros stripped) it revokes.
pub fn crl_revoked_serials(
    crl_der: &[u8],
    issuer: &X509Certificate<'_>,
    now: i64,
) -> Result<Vec<Vec<u8>>, AttestError> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der)
        .map_err(|e| AttestError::CollateralInvalid(format!("CRL does not parse: {e}")))?;
    if crl.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(AttestError::CollateralInvalid(format!(
            "CRL issuer {} is not {}",
            crl.issuer(),
            subject_cn(issuer)
        )));
    }
    verify_signature(
        issuer.public_key(),
        &crl.signature_algorithm,
        crl.tbs_cert_list.as_ref(),
        crl.signature_value.data.as_ref(),
    )
    .map_err(|_| {
        AttestError::CollateralInvalid(format!(
            "CRL signature by {} does not verify",
            subject_cn(issuer)
        ))
    })?;
    if now < crl.last_update().timestamp() {
        return Err(AttestError::Expired(format!(
            "CRL of {} is not valid before {}",
            subject_cn(issuer),
            crl.last_update()
        )));
    }
    if let Some(next) = crl.next_update()
        && now > next.timestamp()
    {
        return Err(AttestError::Expired(format!(
            "CRL of {} expired at {next}",
            subject_cn(issuer)
        )));
    }
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| strip_zeros(r.raw_serial()).to_vec())
        .collect())
}

/// The serial number of `cert`, big-endian, leading zeros stripped.
pub fn serial(cert: &X509Certificate<'_>) -> Vec<u8> {
    strip_zeros(cert.raw_serial()).to_vec()
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    b.get(n..).unwrap_or_default()
}
