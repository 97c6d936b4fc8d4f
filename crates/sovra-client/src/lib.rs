//! A typed HTTPS client for Sovra's native API, shared by the CLI, the agent, benchmarks and
//! tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sovra_client::ClientError> {
//! let client = sovra_client::Client::new(sovra_client::ClientConfig {
//!     url: "https://127.0.0.1:8443".into(),
//!     token: Some(std::env::var("SOVRA_TOKEN").unwrap_or_default()),
//!     ca_pem: Some(std::fs::read("sovra-data/tls/ca.pem").unwrap_or_default()),
//!     ..Default::default()
//! })?;
//! let who: serde_json::Value = client.get("/v1/whoami").await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use bytes_compat::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sovra_proto::ApiError;
use sovra_proto::error::ErrorBody;
use std::sync::Arc;
use std::time::Duration;

mod bytes_compat {
    pub use hyper::body::Bytes;
}

pub mod admin;
pub mod attest;
pub mod kms;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{0}")]
    Api(ApiError),
    /// The request did not complete (connection refused, TLS failure, timeout).
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The response was not what the API promises.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// The client is misconfigured (bad URL, unreadable CA certificate).
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The API error code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://127.0.0.1:8443`.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
    /// PEM of the CA that issued the server certificate (Sovra's `tls/ca.pem`).
    pub ca_pem: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Use HTTP/2 (multiplexed) instead of HTTP/1.1 keep-alive connections.
    pub http2: bool,
    /// Connect only to public addresses (for URLs an API caller chose).
    pub public_addresses_only: bool,
    /// Largest response body read (0: no limit); beyond it the read stops with an error
    /// instead of buffering the rest.
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            url: "https://127.0.0.1:8443".into(),
            token: None,
            ca_pem: None,
            timeout: Duration::from_secs(60),
            http2: false,
            public_addresses_only: false,
            max_response_bytes: 0,
        }
    }
}

type Inner = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<HttpConnector<resolve::Resolver>>,
    Full<Bytes>,
>;

pub mod resolve;

/// The client. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    base: Arc<str>,
    tls: Arc<rustls::ClientConfig>,
    auth: Option<Arc<str>>,
    http: Inner,
    timeout: Duration,
    max_response: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert
                .map_err(|e| ClientError::Config(format!("the CA certificate is not PEM: {e}")))?;
            roots.add(cert).map_err(|e| {
                ClientError::Config(format!("the CA certificate is not usable: {e}"))
            })?;
        }
        if roots.is_empty() {
            return Err(ClientError::Config(
                "the CA certificate file holds no certificate".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

impl Client {
    /// A client for `cfg`.
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        let base = cfg.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ClientError::Config(format!(
                "URL {base:?} must start with https:// (or http:// for a loopback --insecure-http server)"
            )));
        }
        if base.starts_with("https://") && cfg.ca_pem.is_none() {
            return Err(ClientError::Config(
                "no CA certificate: set SOVRA_CA_CERT (or --ca-cert) to the server's tls/ca.pem"
                    .into(),
            ));
        }
        if cfg.public_addresses_only {
            // A literal address is connected to without resolution: check it here.
            let host = base
                .split_once("://")
                .map(|(_, r)| r.split('/').next().unwrap_or(""))
                .unwrap_or("");
            let host = host
                .rsplit_once(':')
                .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = host.parse::<std::net::IpAddr>()
                && !resolve::is_public(ip)
            {
                return Err(ClientError::Config(format!(
                    "{host} is not a public address"
                )));
            }
        }
        let tls = tls_config(cfg.ca_pem.as_deref())?;
        let tls_arc = Arc::new(tls.clone());
        let mut tcp = HttpConnector::new_with_resolver(resolve::Resolver {
            public_only: cfg.public_addresses_only,
        });
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = if cfg.http2 {
            builder.enable_http2().wrap_connector(tcp)
        } else {
            builder.enable_http1().wrap_connector(tcp)
        };
        let mut b = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256);
        if cfg.http2 {
            b.http2_only(true);
        }
        let http = b.build(connector);
        Ok(Self {
            base: base.into(),
            tls: tls_arc,
            auth: cfg.token.map(|t| format!("Bearer {}", t.trim()).into()),
            http,
            timeout: cfg.timeout,
            max_response: cfg.max_response_bytes,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the status and body, without interpreting them.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(method, path, body).await.map(|(s, _, b)| (s, b))
    }

    /// Sends a request and returns status, headers and body, without interpreting them.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), ClientError> {
        self.send_with(method, path, &[], body).await
    }

    /// As [`Client::send`], with extra request headers (a `Content-Type` among them replaces
    /// the default `application/json` of a request with a body).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), ClientError> {
        let uri = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method).uri(&uri);
        if let Some(a) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, a.as_ref());
        }
        let typed = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                if !typed {
                    req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                }
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| ClientError::Config(format!("invalid request {uri}: {e}")))?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ClientError::Transport(error_chain(&e)))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ClientError::Transport(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if self.max_response > 0 && buf.len() > self.max_response {
                        return Err(ClientError::Transport(format!(
                            "the answer is larger than {} bytes",
                            self.max_response
                        )));
                    }
                }
            }
            Ok((status, headers, Bytes::from(buf)))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Transport(format!("no answer within {:?}", self.timeout)))?
    }

    /// Sends a JSON request and decodes a JSON response (or the API error).
    pub async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| ClientError::Config(e.to_string()))?),
            None => None,
        };
        let (status, bytes) = self.raw(method, path, body).await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode(format!("{e} (status {status})")))
    }

    /// `GET path`.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.call::<(), R>(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.call::<(), R>(Method::DELETE, path, None).await
    }

    /// `GET path`, returning the body as text (JSON lines, metrics).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (status, bytes) = self.raw(Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        String::from_utf8(bytes.to_vec()).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// One dedicated HTTP/1.1 connection (no pool): what load generators use, so the measuring
/// client spends as little CPU per request as possible.
pub struct DirectConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
    auth: Option<Arc<str>>,
}

impl DirectConn {
    /// Sends one request on this connection and reads the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority);
        if let Some(a) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, a.as_ref());
        }
        if !body.is_empty() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Config(e.to_string()))?;
        self.sender
            .ready()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    }
}

impl Client {
    /// Opens a dedicated HTTP/1.1 connection to the server.
    pub async fn direct(&self) -> Result<DirectConn, ClientError> {
        let (https, rest) = match self.base.strip_prefix("https://") {
            Some(r) => (true, r),
            None => (
                false,
                self.base.strip_prefix("http://").unwrap_or(&self.base),
            ),
        };
        let authority = rest.split('/').next().unwrap_or(rest).to_owned();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_matches(['[', ']']).to_owned(),
                p.parse::<u16>()
                    .map_err(|_| ClientError::Config(format!("bad port in {authority}")))?,
            ),
            _ => (authority.clone(), if https { 443 } else { 80 }),
        };
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| ClientError::Transport(format!("connect {authority}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let sender = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| ClientError::Config(format!("server name {host}: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::Transport(format!("TLS: {e}")))?;
            let (sender, conn) = hyper::client::conn::http1::Builder::new()
                .writev(false)
                .handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            tokio::spawn(conn);
            sender
        } else {
            let (sender, conn) = hyper::client::conn::http1::Builder::new()
                .writev(false)
                .handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            tokio::spawn(conn);
            sender
        };
        Ok(DirectConn {
            sender,
            authority,
            auth: self.auth.clone(),
        })
    }
}

fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => ClientError::Api(b.error),
        Err(_) => ClientError::Decode(format!("status {status} without an error body")),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
