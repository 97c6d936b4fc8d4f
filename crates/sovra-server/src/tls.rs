//! TLS: the generated local CA and server certificate, and the rustls server configuration.
//!
//! On first start Sovra creates `DATA_DIR/tls/ca.pem` (a private CA, valid 10 years) and a
//! server certificate signed by it for `localhost`, `127.0.0.1`, `::1`, the host name and any
//! configured extra names (valid 1 year, renewed at start-up when fewer than 30 days remain or
//! when the names change). Clients trust `ca.pem` (`SOVRA_CA_CERT`).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Paths of the TLS material in the data directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA certificate (give it to clients).
    pub ca_cert: PathBuf,
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", p.display())
}

fn write_private(p: &Path, data: &str) -> Result<(), String> {
    sovra_hsm::soft::write_private_file(p, data.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// The names the generated server certificate covers.
pub fn default_names(extra: &[String]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() && !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

fn ca_params() -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let id = sovra_crypto::random::hex_id(4).map_err(|e| e.to_string())?;
    p.distinguished_name
        .push(DnType::CommonName, format!("Sovra local CA {id}"));
    p.distinguished_name.push(DnType::OrganizationName, "Sovra");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(3650);
    Ok(p)
}

/// Creates the CA and server certificate if missing, renews the server certificate if it
/// expires within 30 days or its names changed. Returns the paths.
pub fn ensure(dir: &Path, names: &[String]) -> Result<TlsFiles, String> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let ca_key_path = dir.join("ca.key");
    let names_path = dir.join("server.names");
    let (ca_pem, ca_key) = if files.ca_cert.exists() && ca_key_path.exists() {
        let pem =
            std::fs::read_to_string(&files.ca_cert).map_err(|e| io("read", &files.ca_cert, e))?;
        let key_pem =
            std::fs::read_to_string(&ca_key_path).map_err(|e| io("read", &ca_key_path, e))?;
        (
            pem,
            KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: {e}", ca_key_path.display()))?,
        )
    } else {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = ca_params()?.self_signed(&key).map_err(|e| e.to_string())?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        std::fs::write(&files.ca_cert, cert.pem()).map_err(|e| io("write", &files.ca_cert, e))?;
        let _ = std::fs::remove_file(&files.cert);
        (cert.pem(), key)
    };
    let wanted = names.join("\n");
    let have = std::fs::read_to_string(&names_path).unwrap_or_default();
    let fresh =
        files.cert.exists() && files.key.exists() && have == wanted && !expires_soon(&files.cert);
    if !fresh {
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
            .map_err(|e| format!("cannot use the CA in {}: {e}", files.ca_cert.display()))?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut p = CertificateParams::new(names.to_vec())
            .map_err(|e| format!("invalid server name: {e}"))?;
        p.distinguished_name.push(DnType::CommonName, "sovra");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(365);
        let cert = p.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
        write_private(&files.key, &key.serialize_pem())?;
        std::fs::write(&files.cert, format!("{}{}", cert.pem(), ca_pem))
            .map_err(|e| io("write", &files.cert, e))?;
        std::fs::write(&names_path, wanted).map_err(|e| io("write", &names_path, e))?;
    }
    Ok(files)
}

fn expires_soon(cert: &Path) -> bool {
    let Ok(pem) = std::fs::read(cert) else {
        return true;
    };
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(&pem).next() else {
        return true;
    };
    match x509_parser::parse_x509_certificate(&der) {
        Ok((_, c)) => {
            c.validity().not_after.timestamp()
                < OffsetDateTime::now_utc().unix_timestamp() + 30 * 86_400
        }
        Err(_) => true,
    }
}

/// A rustls server configuration from PEM files (TLS 1.2 and 1.3, ALPN h2 and http/1.1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let cert_pem = std::fs::read(cert).map_err(|e| io("read", cert, e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("the certificate and key do not match: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
