//! A simulated Intel SGX DCAP platform, NOT GENUINE, for tests that need SGX (or TDX) quotes with
//! collateral valid now (the real vectors' collateral windows are in the past): its own root CA
//! (which a test must trust explicitly, as an operator anchor), a PCK platform CA and PCK
//! certificate with the SGX extension, a TCB signing certificate, CRLs, TCB info and QE identity
//! signed as Intel signs them, and v3 ECDSA quotes (quoting enclave report signed by the PCK key,
//! attestation key bound in its report data, the quote signed by the attestation key).

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};
use serde_json::json;
use sovra_crypto::der::der;

const SGX_EXT: [u64; 8] = [1, 2, 840, 113_741, 1, 13, 1, 0];
const FMSPC: &str = "00906ed50000";
const PCE_SVN: u16 = 13;
const QE_SVN: u16 = 8;
const CPU_SVN: [u8; 16] = [4, 4, 2, 4, 1, 128, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// Which TEE the platform's collateral is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tee {
    /// SGX enclaves (v3 quotes).
    Sgx,
    /// TDX trust domains (v4 quotes, TEE_TCB_SVN of a module without an identity: 0).
    Tdx,
}

/// The platform: its root (to trust), its collateral bundle, and what signs quotes.
pub struct SimulatedSgx {
    /// The root CA (PEM): import it as an `intel` trust anchor.
    pub root_pem: String,
    /// The collateral bundle (Sovra's `intel` collateral JSON).
    pub collateral: String,
    pck: EcdsaKeyPair,
    chain_pem: String,
    qe_mr_signer: [u8; 32],
}

fn p256() -> (EcdsaKeyPair, KeyPair) {
    let pkcs8 = sovra_crypto::generate(sovra_proto::kms::Algorithm::EcSignP256Sha256).unwrap();
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.expose());
    (
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.expose()).unwrap(),
        KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
    )
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(
        DnType::OrganizationName,
        "Sovra simulated Intel (NOT GENUINE)",
    );
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    p
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for a in &arcs[2..] {
        let mut groups = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            groups.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        groups.reverse();
        body.extend(groups);
    }
    der(0x06, &body)
}

fn sgx_oid(tail: &[u64]) -> Vec<u8> {
    let mut arcs = SGX_EXT[..7].to_vec();
    arcs.extend_from_slice(tail);
    oid(&arcs)
}

fn pair(o: Vec<u8>, value: Vec<u8>) -> Vec<u8> {
    let mut b = o;
    b.extend(value);
    der(0x30, &b)
}

/// The SGX extension of the PCK certificate: PPID, TCB (16 SVNs, PCESVN, CPUSVN), PCE-ID,
/// FMSPC, SGX type.
fn sgx_extension() -> Vec<u8> {
    let int = |v: u64| sovra_crypto::der::der_uint(&v.to_be_bytes());
    let mut tcb = Vec::new();
    for (i, svn) in CPU_SVN.iter().enumerate() {
        tcb.extend(pair(sgx_oid(&[2, i as u64 + 1]), int(u64::from(*svn))));
    }
    tcb.extend(pair(sgx_oid(&[2, 17]), int(u64::from(PCE_SVN))));
    tcb.extend(pair(sgx_oid(&[2, 18]), der(0x04, &CPU_SVN)));
    let mut body = pair(sgx_oid(&[1]), der(0x04, &[0x42; 16]));
    body.extend(pair(sgx_oid(&[2]), der(0x30, &tcb)));
    body.extend(pair(sgx_oid(&[3]), der(0x04, &[0, 0])));
    body.extend(pair(
        sgx_oid(&[4]),
        der(0x04, &sovra_proto::hex::decode(FMSPC).unwrap()),
    ));
    body.extend(pair(sgx_oid(&[5]), der(0x0a, &[0])));
    der(0x30, &body)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn sign_hex(key: &EcdsaKeyPair, msg: &[u8]) -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    sovra_proto::hex::encode(key.sign(&rng, msg).unwrap().as_ref())
}

fn crl(issuer: &Issuer<'_, KeyPair>) -> String {
    let now = time::OffsetDateTime::now_utc();
    let c = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap();
    sovra_proto::hex::encode(c.der())
}

/// An SGX report body (384 bytes).
fn report_body(
    attributes: [u8; 16],
    mr_enclave: [u8; 32],
    mr_signer: [u8; 32],
    prod_svn: (u16, u16),
    report_data: [u8; 64],
) -> Vec<u8> {
    let mut b = CPU_SVN.to_vec();
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&[0; 28]);
    b.extend_from_slice(&attributes);
    b.extend_from_slice(&mr_enclave);
    b.extend_from_slice(&[0; 32]);
    b.extend_from_slice(&mr_signer);
    b.extend_from_slice(&[0; 96]);
    b.extend_from_slice(&prod_svn.0.to_le_bytes());
    b.extend_from_slice(&prod_svn.1.to_le_bytes());
    b.extend_from_slice(&[0; 60]);
    b.extend_from_slice(&report_data);
    assert_eq!(b.len(), 384);
    b
}

impl SimulatedSgx {
    /// A new platform with fresh keys and collateral valid for 30 days.
    pub fn generate() -> Self {
        Self::generate_for(Tee::Sgx)
    }

    /// A new platform whose collateral is for `tee`.
    pub fn generate_for(tee: Tee) -> Self {
        let (_, root_key) = p256();
        let root = params("Simulated SGX Root CA", true)
            .self_signed(&root_key)
            .unwrap();
        let root_issuer = Issuer::new(params("Simulated SGX Root CA", true), root_key);
        let (_, ca_key) = p256();
        let ca = params("Simulated SGX PCK Platform CA", true)
            .signed_by(&ca_key, &root_issuer)
            .unwrap();
        let ca_issuer = Issuer::new(params("Simulated SGX PCK Platform CA", true), ca_key);
        let (pck, pck_kp) = p256();
        let mut pp = params("Simulated SGX PCK Certificate", false);
        pp.custom_extensions = vec![CustomExtension::from_oid_content(
            &SGX_EXT[..7],
            sgx_extension(),
        )];
        let pck_cert = pp.signed_by(&pck_kp, &ca_issuer).unwrap();
        let (tcb_signer, tcb_kp) = p256();
        let tcb_cert = params("Simulated SGX TCB Signing", false)
            .signed_by(&tcb_kp, &root_issuer)
            .unwrap();
        let mut qe_mr_signer = [0u8; 32];
        sovra_crypto::random::fill(&mut qe_mr_signer).unwrap();

        let now = time::OffsetDateTime::now_utc();
        let (issue, next) = (
            rfc3339(now - time::Duration::days(1)),
            rfc3339(now + time::Duration::days(30)),
        );
        let mut tcb = json!({"sgxtcbcomponents": CPU_SVN.iter().map(|s| json!({"svn": s})).collect::<Vec<_>>(),
            "pcesvn": PCE_SVN});
        if tee == Tee::Tdx {
            tcb["tdxtcbcomponents"] = json!(vec![json!({"svn": 0}); 16]);
        }
        let (tcb_id, qe_id) = match tee {
            Tee::Sgx => ("SGX", "QE"),
            Tee::Tdx => ("TDX", "TD_QE"),
        };
        let tcb_info = json!({"id": tcb_id, "version": 3, "issueDate": issue, "nextUpdate": next,
            "fmspc": FMSPC, "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
            "tcbLevels": [{"tcb": tcb, "tcbDate": "2025-05-14T00:00:00Z", "tcbStatus": "UpToDate"}]})
        .to_string();
        let qe_identity = json!({"id": qe_id, "version": 2, "issueDate": issue, "nextUpdate": next,
            "tcbEvaluationDataNumber": 17, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": sovra_proto::hex::encode(&qe_mr_signer).to_uppercase(), "isvprodid": 1,
            "tcbLevels": [{"tcb": {"isvsvn": QE_SVN}, "tcbDate": "2025-05-14T00:00:00Z", "tcbStatus": "UpToDate"}]})
        .to_string();
        let signing_chain = format!("{}{}", tcb_cert.pem(), root.pem());
        let collateral = json!({
            "pck_crl_issuer_chain": format!("{}{}", ca.pem(), root.pem()),
            "root_ca_crl": crl(&root_issuer),
            "pck_crl": crl(&ca_issuer),
            "tcb_info_issuer_chain": signing_chain,
            "tcb_info_signature": sign_hex(&tcb_signer, tcb_info.as_bytes()),
            "tcb_info": tcb_info,
            "qe_identity_issuer_chain": signing_chain,
            "qe_identity_signature": sign_hex(&tcb_signer, qe_identity.as_bytes()),
            "qe_identity": qe_identity,
        })
        .to_string();
        Self {
            root_pem: root.pem(),
            collateral,
            pck,
            chain_pem: format!("{}{}{}", pck_cert.pem(), ca.pem(), root.pem()),
            qe_mr_signer,
        }
    }

    /// A v3 quote of an enclave `mr_enclave` (not debug) with `report_data`.
    pub fn quote(&self, mr_enclave: [u8; 32], report_data: [u8; 64]) -> Vec<u8> {
        // INIT | MODE64BIT, XFRM x87 | SSE.
        let attributes = [5, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0];
        let body = report_body(attributes, mr_enclave, [0x5a; 32], (0, 1), report_data);
        self.sign_quote(3, 0, &body, false)
    }

    /// A v4 TD quote (TD 1.0 body, not debug) with `report_data`.
    pub fn td_quote(&self, report_data: [u8; 64]) -> Vec<u8> {
        let mut b = vec![0u8; 16]; // TEE_TCB_SVN
        b.extend_from_slice(&[0x11; 48]); // MRSEAM
        b.extend_from_slice(&[0; 48]); // MRSIGNERSEAM
        b.extend_from_slice(&[0; 8]); // SEAMATTRIBUTES
        b.extend_from_slice(&[0; 8]); // TDATTRIBUTES: not debug
        b.extend_from_slice(&[0xe7, 0x02, 0x06, 0, 0, 0, 0, 0]); // XFAM
        b.extend_from_slice(&[0x22; 48]); // MRTD
        b.extend_from_slice(&[0; 48 * 3]); // MRCONFIGID, MROWNER, MROWNERCONFIG
        b.extend_from_slice(&[0; 48 * 4]); // RTMR0-3
        b.extend_from_slice(&report_data);
        assert_eq!(b.len(), 584);
        self.sign_quote(4, 0x81, &b, true)
    }

    /// Header, `body`, and the signature data (v4 wraps the QE part as certification data 6).
    fn sign_quote(&self, version: u16, tee_type: u32, body: &[u8], wrapped: bool) -> Vec<u8> {
        let (att, _) = p256();
        let att_pub = att.public_key().as_ref()[1..].to_vec();
        let mut q = Vec::new();
        q.extend_from_slice(&version.to_le_bytes());
        q.extend_from_slice(&2u16.to_le_bytes());
        q.extend_from_slice(&tee_type.to_le_bytes());
        q.extend_from_slice(&QE_SVN.to_le_bytes());
        q.extend_from_slice(&PCE_SVN.to_le_bytes());
        q.extend_from_slice(&QE_VENDOR_ID);
        q.extend_from_slice(&[0; 20]);
        q.extend_from_slice(body);
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = att.sign(&rng, &q).unwrap();
        let auth: Vec<u8> = (0u8..32).collect();
        let mut rd = [0u8; 64];
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        h.update(&att_pub);
        h.update(&auth);
        rd[..32].copy_from_slice(h.finish().as_ref());
        let qe = report_body(
            [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0x33; 32],
            self.qe_mr_signer,
            (1, QE_SVN),
            rd,
        );
        let qe_sig = self.pck.sign(&rng, &qe).unwrap();
        let mut cert = qe.clone();
        cert.extend_from_slice(qe_sig.as_ref());
        cert.extend_from_slice(&(auth.len() as u16).to_le_bytes());
        cert.extend(auth);
        cert.extend_from_slice(&5u16.to_le_bytes());
        cert.extend_from_slice(&(self.chain_pem.len() as u32).to_le_bytes());
        cert.extend_from_slice(self.chain_pem.as_bytes());
        let mut s = sig.as_ref().to_vec();
        s.extend(att_pub);
        if wrapped {
            s.extend_from_slice(&6u16.to_le_bytes());
            s.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        }
        s.extend(cert);
        q.extend_from_slice(&(s.len() as u32).to_le_bytes());
        q.extend(s);
        q
    }
}
