//! The shared chain builder against real AMD chains.
mod common;
use common::*;
use sovra_attest::evidence::{Platform, TrustStore};
use sovra_attest::x509;

#[test]
fn milan_vcek_chains_to_pinned_ark() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let pool = x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_milan.pem")).unwrap();
    let chain = x509::verify_chain(
        &vcek,
        &pool,
        Platform::Amd,
        &TrustStore::default(),
        unix("2024-06-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(chain.len(), 3);
}

#[test]
fn a_vcek_alone_chains_to_the_built_in_ask_and_ark() {
    // Evidence often carries only its VCEK: AMD's published ASKs and ARKs are built in.
    let vcek = read("snp/virtee_milan_vcek.der");
    let chain = x509::verify_chain(
        &vcek,
        &[],
        Platform::Amd,
        &TrustStore::default(),
        unix("2024-06-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(chain.len(), 3);
    // The built-in certificates are exactly the pinned ones.
    let built_in = x509::pinned::embedded(Platform::Amd);
    assert_eq!(built_in.len(), 9);
    for der in built_in {
        let fp = x509::sha256_hex(der);
        assert!(
            x509::pinned::AMD_INTERMEDIATES.contains(&fp.as_str())
                || x509::pinned::for_platform(Platform::Amd).contains(&fp.as_str()),
            "{fp}"
        );
    }
}

#[test]
fn fail_vcek_with_tampered_signature() {
    let mut vcek = read("snp/virtee_milan_vcek.der");
    let n = vcek.len();
    vcek[n - 10] ^= 1; // inside the VCEK's signature
    let err = x509::verify_chain(
        &vcek,
        &[],
        Platform::Amd,
        &TrustStore::default(),
        unix("2024-06-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(err.code().as_str(), "ATTEST_CHAIN_INVALID");
}

/// A generated hierarchy on the TPM platform (operator anchors), for the CA rules.
#[allow(clippy::unwrap_used)]
mod generated {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    pub struct Ca {
        pub der: Vec<u8>,
        pub issuer: Issuer<'static, KeyPair>,
    }

    pub fn params(cn: &str, ca: Option<IsCa>, usage: Vec<KeyUsagePurpose>) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(ca) = ca {
            p.is_ca = ca;
        }
        p.key_usages = usage;
        p
    }

    pub fn root() -> Ca {
        let key = KeyPair::generate().unwrap();
        let p = params(
            "Test Root",
            Some(IsCa::Ca(BasicConstraints::Unconstrained)),
            vec![KeyUsagePurpose::KeyCertSign],
        );
        let cert = p.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: Issuer::new(p, key),
        }
    }

    pub fn issue(by: &Ca, p: CertificateParams) -> Ca {
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &by.issuer).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: Issuer::new(p, key),
        }
    }

    pub fn trust(root: &Ca) -> TrustStore {
        TrustStore {
            anchors: vec![sovra_attest::evidence::Anchor {
                platform: Platform::Tpm,
                der: root.der.clone(),
            }],
            cert_pool: vec![],
        }
    }

    pub fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}

#[test]
fn a_certificate_without_basic_constraints_is_no_ca() {
    use generated::*;
    use rcgen::{IsCa, KeyUsagePurpose};
    let root = root();
    let ok_int = issue(
        &root,
        params(
            "Intermediate",
            Some(IsCa::Ca(rcgen::BasicConstraints::Unconstrained)),
            vec![KeyUsagePurpose::KeyCertSign],
        ),
    );
    let leaf = issue(&ok_int, params("Leaf", None, vec![]));
    let t = trust(&root);
    let chain = x509::verify_chain(
        &leaf.der,
        std::slice::from_ref(&ok_int.der),
        Platform::Tpm,
        &t,
        now(),
    );
    assert_eq!(chain.unwrap().len(), 3);
    // The same subject, but no basicConstraints (rcgen: NoCa), then a CA without keyCertSign.
    for (bad, why) in [
        (
            issue(&root, params("Intermediate", Some(IsCa::NoCa), vec![])),
            "no basicConstraints",
        ),
        (
            issue(
                &root,
                params(
                    "Intermediate",
                    Some(IsCa::Ca(rcgen::BasicConstraints::Unconstrained)),
                    vec![KeyUsagePurpose::DigitalSignature],
                ),
            ),
            "keyCertSign",
        ),
    ] {
        let leaf = issue(&bad, params("Leaf", None, vec![]));
        let e = x509::verify_chain(
            &leaf.der,
            std::slice::from_ref(&bad.der),
            Platform::Tpm,
            &t,
            now(),
        )
        .unwrap_err();
        assert_eq!(e.code().as_str(), "ATTEST_CHAIN_INVALID");
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[test]
fn path_length_constraints_hold() {
    use generated::*;
    use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
    let root = root();
    let int1 = issue(
        &root,
        params(
            "Int 1",
            Some(IsCa::Ca(BasicConstraints::Constrained(0))),
            vec![KeyUsagePurpose::KeyCertSign],
        ),
    );
    let int2 = issue(
        &int1,
        params(
            "Int 2",
            Some(IsCa::Ca(BasicConstraints::Unconstrained)),
            vec![KeyUsagePurpose::KeyCertSign],
        ),
    );
    let leaf = issue(&int2, params("Leaf", None, vec![]));
    let e = x509::verify_chain(
        &leaf.der,
        &[int1.der.clone(), int2.der.clone()],
        Platform::Tpm,
        &trust(&root),
        now(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("allows 0 CA certificates"), "{e}");
}

#[test]
fn many_look_alike_candidates_cost_no_signature_checks() {
    use generated::*;
    use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
    let root = root();
    let real = issue(
        &root,
        params(
            "Intermediate",
            Some(IsCa::Ca(BasicConstraints::Unconstrained)),
            vec![KeyUsagePurpose::KeyCertSign],
        ),
    );
    let leaf = issue(&real, params("Leaf", None, vec![]));
    // 2,000 certificates with the issuer's subject that are not CAs: each is set aside on its
    // extensions alone, so the real issuer behind them is still found, quickly.
    let junk = issue(&root, params("Intermediate", Some(IsCa::NoCa), vec![])).der;
    let mut pool = vec![junk; 2000];
    pool.push(real.der.clone());
    let t = trust(&root);
    let started = std::time::Instant::now();
    let chain = x509::verify_chain(&leaf.der, &pool, Platform::Tpm, &t, now()).unwrap();
    assert_eq!(chain.len(), 3);
    // Look-alike CAs beyond the candidate cap are not tried: the chain fails, bounded.
    let fake_cas: Vec<Vec<u8>> = (0..50)
        .map(|_| {
            issue(
                &root,
                params(
                    "Intermediate",
                    Some(IsCa::Ca(BasicConstraints::Unconstrained)),
                    vec![KeyUsagePurpose::KeyCertSign],
                ),
            )
            .der
        })
        .collect();
    let e = x509::verify_chain(&leaf.der, &fake_cas, Platform::Tpm, &t, now()).unwrap_err();
    assert!(e.to_string().contains("candidate issuers"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn fail_before_validity() {
    let vcek = read("snp/virtee_milan_vcek.der");
    let pool = x509::certs_from_pem_or_der(&read("roots/amd/ask_ark_milan.pem")).unwrap();
    let err = x509::verify_chain(
        &vcek,
        &pool,
        Platform::Amd,
        &TrustStore::default(),
        unix("2015-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(err.code().as_str(), "ATTEST_EXPIRED");
}

#[test]
fn fail_evidence_carrying_too_many_certificates() {
    // A report with 2,000 look-alike ASKs is refused before any chain building.
    let vcek = read("snp/virtee_milan_vcek.der");
    let ask_ark = read("roots/amd/ask_ark_milan.pem");
    let mut items: Vec<&[u8]> = vec![&vcek];
    items.extend(std::iter::repeat_n(ask_ark.as_slice(), 1000));
    let e = x509::evidence_certs(items).unwrap_err();
    assert_eq!(e.code().as_str(), "ATTEST_MALFORMED");
    assert!(e.to_string().contains("more than 32"), "{e}");
    let few: Vec<&[u8]> = vec![&vcek, &ask_ark];
    assert_eq!(x509::evidence_certs(few).unwrap().len(), 3);
}
