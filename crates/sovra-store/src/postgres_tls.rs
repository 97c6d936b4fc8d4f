//! TLS to PostgreSQL, and the rule that decides when it is required.
//!
//! - `sslmode=verify-full`, `verify-ca` or `require` in the URL: TLS, and the server's
//!   certificate is always checked against the CA certificates given (else the system bundle)
//!   and the host name, whichever of the three is written: there is no unverified TLS.
//! - `sslmode=disable`: no TLS, as asked (for a link protected otherwise).
//! - no `sslmode`: no TLS to a UNIX socket or a loopback address; anything else is refused at
//!   start, so credentials and key material never cross a network in the clear by default.
//! - `sslmode=prefer` is refused: it silently falls back to plaintext.

use crate::error::StoreError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// How to connect: the URL as tokio-postgres reads it, and the TLS configuration if any.
#[derive(Clone)]
pub struct Plan {
    /// The connection string with `sslmode` in a form tokio-postgres accepts.
    pub url: String,
    /// TLS client configuration; `None` for a plaintext connection.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

fn config_error(m: impl Into<String>) -> StoreError {
    StoreError::Backend(m.into())
}

/// The `sslmode` written in `url` (URL query or key=value form), if any.
fn sslmode(url: &str) -> Option<String> {
    let i = url.find("sslmode=")?;
    let before = url.get(..i)?.chars().last();
    if !matches!(before, None | Some('?' | '&' | ' ')) {
        return None;
    }
    let rest = url.get(i + "sslmode=".len()..)?;
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect(),
    )
}

fn is_local(h: &Host) -> bool {
    match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// Decides how to connect to `url`. `ca_pem`: CA certificates for the server's certificate
/// (PEM); `None` uses the system bundle (`SSL_CERT_FILE` or the Debian path).
pub fn plan(url: &str, ca_pem: Option<&[u8]>) -> Result<Plan, StoreError> {
    let mode = sslmode(url);
    let url_for_pg = match mode.as_deref() {
        Some(m @ ("verify-full" | "verify-ca")) => {
            url.replacen(&format!("sslmode={m}"), "sslmode=require", 1)
        }
        _ => url.to_owned(),
    };
    let cfg: tokio_postgres::Config = url_for_pg.parse().map_err(|e| {
        config_error(format!(
            "store.url is not a PostgreSQL connection string: {e}"
        ))
    })?;
    let tls = match mode.as_deref() {
        Some("disable") => false,
        Some("require" | "verify-full" | "verify-ca") => true,
        Some("prefer") => {
            return Err(config_error(
                "store.url: sslmode=prefer falls back to plaintext without telling; use sslmode=verify-full (or sslmode=disable on a link protected otherwise)",
            ));
        }
        Some(other) => {
            return Err(config_error(format!(
                "store.url: sslmode={other} is not known; use verify-full or disable"
            )));
        }
        None => {
            if let Some(h) = cfg.get_hosts().iter().find(|h| !is_local(h)) {
                let name = match h {
                    Host::Tcp(n) => n.clone(),
                    Host::Unix(p) => p.display().to_string(),
                };
                return Err(config_error(format!(
                    "store.url: PostgreSQL at {name} is not on this machine, and the connection would not be encrypted: add sslmode=verify-full (with store.ca_file for a private CA), or sslmode=disable if the link is protected otherwise"
                )));
            }
            false
        }
    };
    if !tls {
        return Ok(Plan {
            url: url_for_pg,
            tls: None,
        });
    }
    Ok(Plan {
        url: url_for_pg,
        tls: Some(Arc::new(client_config(ca_pem)?)),
    })
}

fn client_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let system;
    let pem = match ca_pem {
        Some(p) => p,
        None => {
            let file = std::env::var("SSL_CERT_FILE")
                .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
            system = std::fs::read(&file).map_err(|e| {
                config_error(format!(
                    "no CA certificates to check PostgreSQL's certificate ({file}: {e}); set store.ca_file"
                ))
            })?;
            &system
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| config_error(format!("store.ca_file is not PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            config_error(format!("store.ca_file holds an unusable certificate: {e}"))
        })?;
    }
    if roots.is_empty() {
        return Err(config_error("store.ca_file holds no certificate"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A tokio-postgres TLS connector over rustls.
#[derive(Clone)]
pub struct RustlsConnect(pub Arc<rustls::ClientConfig>);

/// One connection's TLS handshake, for the host it is made to.
pub struct RustlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnectOne> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnectOne {
            config: self.0.clone(),
            name,
        })
    }
}

impl<S> TlsConnect<S> for RustlsConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(s))
        })
    }
}

/// A TLS stream to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding; the certificate check already binds the server.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_rules() {
        let ok = |u: &str| plan(u, None).map(|p| p.tls.is_some());
        assert!(!ok("host=127.0.0.1 user=s dbname=d").unwrap());
        assert!(!ok("postgres://s@localhost:5432/d").unwrap());
        assert!(!ok("host=/run/postgresql user=s").unwrap());
        assert!(!ok("postgres://s@db.example:5432/d?sslmode=disable").unwrap());
        let remote = ok("postgres://s@db.example:5432/d")
            .err()
            .unwrap()
            .to_string();
        assert!(
            remote.contains("db.example") && remote.contains("verify-full"),
            "{remote}"
        );
        let prefer = ok("host=192.0.2.1 sslmode=prefer")
            .err()
            .unwrap()
            .to_string();
        assert!(prefer.contains("plaintext"), "{prefer}");
        assert!(ok("host=192.0.2.1 sslmode=maybe").is_err());
        assert_eq!(sslmode("host=h xsslmode=require"), None);
        assert_eq!(
            plan("postgres://s@h/d?sslmode=verify-full", Some(b"junk"))
                .err()
                .unwrap()
                .to_string(),
            StoreError::Backend("store.ca_file holds no certificate".into()).to_string()
        );
    }
}
