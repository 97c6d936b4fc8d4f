//! Outbound HTTP(S) GETs, for the few things an operator explicitly configures Sovra to fetch
//! (an external issuer's JWKS, AMD KDS certificates). Bounded in time and size; HTTPS is checked
//! against the CA certificates given, else the system bundle.

use std::time::Duration;

/// Where the system's CA bundle is, unless `SSL_CERT_FILE` says otherwise.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// GETs `url` (http:// or https://) and returns the body of a 2xx answer.
pub async fn get(
    url: &str,
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    get_with_headers(url, ca_pem, timeout, max_bytes, false)
        .await
        .map(|(b, _)| b)
}

/// As [`get`], with the answer's headers; `public_only` refuses loopback, link-local and
/// private addresses (for URLs an API caller chose). The body is read up to `max_bytes` and
/// no further.
pub async fn get_with_headers(
    url: &str,
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    max_bytes: usize,
    public_only: bool,
) -> Result<(Vec<u8>, hyper::HeaderMap), String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| *s == "https" || *s == "http")
        .ok_or_else(|| format!("{url} is not an http(s) URL"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host.is_empty() {
        return Err(format!("{url} has no host"));
    }
    let path = if path.is_empty() { "/" } else { path };
    let ca_pem = match (scheme, ca_pem) {
        ("https", None) => {
            let file = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| SYSTEM_CA_BUNDLE.into());
            Some(std::fs::read(&file).map_err(|e| format!("no CA certificates ({file}: {e})"))?)
        }
        (_, ca) => ca,
    };
    let client = sovra_client::Client::new(sovra_client::ClientConfig {
        url: format!("{scheme}://{host}"),
        ca_pem,
        timeout,
        public_addresses_only: public_only,
        max_response_bytes: max_bytes,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let (status, headers, body) = client
        .send(hyper::Method::GET, path, None)
        .await
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    Ok((body.to_vec(), headers))
}
