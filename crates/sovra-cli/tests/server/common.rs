//! Test harness: boots the real `sovra` binary on a free loopback port with the embedded
//! defaults, and talks to it through the real CLI and the real client.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sovra_client::{Client, ClientConfig};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sovra");

/// A running server and its data directory.
pub struct Server {
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub child: Option<Child>,
    pub url: String,
    pub token: String,
    /// Lines the server printed on stdout at start.
    pub banner: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Open-file limit (soft and hard) to start the server under, if any.
    pub files: Option<u64>,
    /// Listen address (default 127.0.0.1:0).
    pub listen: String,
}

impl Server {
    /// Starts a server in a fresh temporary data directory.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server {
            dir,
            _tmp: Some(tmp),
            child: None,
            url: String::new(),
            token: String::new(),
            banner: vec![],
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            files: None,
            listen: "127.0.0.1:0".into(),
        };
        s.boot();
        s
    }

    /// Starts in a fresh directory, listening on `listen`, under an open-file limit of `files`.
    pub fn start_custom(env: &[(&str, &str)], listen: &str, files: Option<u64>) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server {
            dir,
            _tmp: Some(tmp),
            child: None,
            url: String::new(),
            token: String::new(),
            banner: vec![],
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            files,
            listen: listen.into(),
        };
        s.boot();
        s
    }

    /// Starts a server in the given data directory.
    pub fn start_at(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut s = Server {
            dir: dir.to_path_buf(),
            _tmp: None,
            child: None,
            url: String::new(),
            token: String::new(),
            banner: vec![],
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            files: None,
            listen: "127.0.0.1:0".into(),
        };
        s.boot();
        s
    }

    /// (Re)starts the server process on the same data directory.
    pub fn boot(&mut self) {
        let mut cmd = match self.files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["serve", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen", &self.listen]);
        cmd.env("SOVRA_LOG_LEVEL", "warn")
            .env_remove("SOVRA_CONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sovra serve");
        let stdout = child.stdout.take().unwrap();
        // Owned by self at once, so a failed start below still kills the process on drop.
        self.child = Some(child);
        let mut reader = BufReader::new(stdout);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut banner = Vec::new();
        let mut url = None;
        while Instant::now() < deadline {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("sovra serve exited before listening: {banner:?}");
            }
            let line = line.trim_end().to_string();
            banner.push(line.clone());
            if let Some(u) = line.strip_prefix("Sovra is listening on ") {
                url = Some(u.to_string());
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        self.url = url.expect("server did not report its address");
        if let Ok(t) = std::fs::read_to_string(self.dir.join("admin.token")) {
            self.token = t.trim().to_string();
        }
        self.banner = banner;
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// A client authenticated with `token`.
    pub fn client_as(&self, token: &str) -> Client {
        Client::new(ClientConfig {
            url: self.url.clone(),
            token: Some(token.to_string()),
            ca_pem: Some(std::fs::read(self.ca()).unwrap()),
            ..Default::default()
        })
        .unwrap()
    }

    /// The admin client.
    pub fn admin(&self) -> Client {
        self.client_as(&self.token)
    }

    /// Runs the CLI with the admin token.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.token, args)
    }

    /// Runs the CLI with `token`.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("SOVRA_URL", &self.url)
            .env("SOVRA_TOKEN", token)
            .env("SOVRA_CA_CERT", self.ca())
            .env_remove("SOVRA_LOCATION")
            .output()
            .expect("run sovra")
    }

    /// Runs the CLI and returns stdout, failing the test if the command failed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "sovra {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs the CLI with `-o json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["-o", "json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        c.wait().unwrap()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("sovra.db")
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The error code of a failed client call.
pub fn code<T: std::fmt::Debug>(r: Result<T, sovra_client::ClientError>) -> String {
    match r {
        Err(sovra_client::ClientError::Api(e)) => e.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The error code printed by a failed CLI call in JSON mode (stderr).
pub fn cli_code(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "command unexpectedly succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let v: serde_json::Value =
        serde_json::from_str(err.trim()).unwrap_or_else(|_| panic!("stderr is not JSON: {err}"));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// The JSON body of a row read from the database: what precedes the MAC trailer Sovra seals
/// every record with (`services/sealed.rs`: a NUL byte, a marker, a 32-byte tag).
pub fn row_json(data: &[u8]) -> serde_json::Value {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    serde_json::from_slice(&data[..end]).unwrap()
}

/// The host:port a server listens on.
pub fn addr_of(s: &Server) -> String {
    s.url.trim_start_matches("https://").to_string()
}

/// A TLS client configuration that trusts the server's CA (HTTP/1.1 only).
pub fn tls_config(s: &Server) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(s.ca()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(cfg)
}

/// A TLS connection to the server at `port` on 127.0.0.1, from `local` (e.g. "127.0.0.2").
pub async fn tls_connect(
    s: &Server,
    port: u16,
    local: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let tcp = sock
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(tls_config(s))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The port of a server URL.
pub fn port_of(s: &Server) -> u16 {
    s.url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Sends one raw HTTP/1.1 request and reads the response: status and body.
pub async fn raw_http<S>(stream: &mut S, request: &[u8]) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    stream.write_all(request).await.unwrap();
    read_response(stream).await
}

/// Reads one HTTP/1.1 response (Content-Length framed): status and body.
pub async fn read_response<S>(stream: &mut S) -> (u16, String)
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed before a response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (
        status,
        String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string(),
    )
}
