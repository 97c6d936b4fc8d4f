//! A throwaway PostgreSQL cluster (Debian's `postgresql` package), or `SOVRA_TEST_PG_URL`
//! when set. Started with `pg_ctl` as the `postgres` user when running as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running cluster; stopped when dropped.
pub struct TempPg {
    external: Option<String>,
    data: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    port: u16,
    ca_pem: Option<String>,
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some(p) = versions.pop() {
        return Some(p);
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_postgres_user(cmd: &Path) -> Command {
    // PostgreSQL refuses to run as root.
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

impl TempPg {
    /// Starts a cluster on a free loopback port.
    pub fn start() -> TempPg {
        Self::start_with(false)
    }

    /// Starts a cluster that accepts TLS connections only, with a server certificate for
    /// `localhost` and `127.0.0.1` issued by a throwaway CA ([`TempPg::ca_pem`]). Ignores
    /// `SOVRA_TEST_PG_URL`.
    pub fn start_tls() -> TempPg {
        Self::start_with(true)
    }

    /// The CA that issued a TLS cluster's certificate (PEM).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn start_with(tls: bool) -> TempPg {
        if let Ok(url) = std::env::var("SOVRA_TEST_PG_URL")
            && !tls
        {
            return TempPg {
                external: Some(url),
                data: None,
                _dir: None,
                port: 0,
                ca_pem: None,
            };
        }
        let initdb = find_bin("initdb").expect("PostgreSQL server binaries not found: install the Debian package 'postgresql' (or set SOVRA_TEST_PG_URL)");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(dir.path())
                    .status()
                    .unwrap()
                    .success(),
                "chown to the postgres user failed"
            );
        }
        let st = as_postgres_user(&initdb)
            .args([
                "-A",
                "trust",
                "-U",
                "sovra",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg_ctl = find_bin("pg_ctl").expect("pg_ctl not found");
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -k {}",
            dir.path().display()
        );
        let ca_pem = tls.then(|| {
            let ca = tls_files(&data);
            opts.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
            ca
        });
        let st = as_postgres_user(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        TempPg {
            external: None,
            data: Some(data),
            _dir: Some(dir),
            port,
            ca_pem,
        }
    }

    /// A URL to a fresh database `name`.
    pub fn url(&self, name: &str) -> String {
        if let Some(u) = &self.external {
            return u.clone();
        }
        let psql = find_bin("psql").expect("psql not found");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = Command::new(&psql)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "sovra",
                    "-d",
                    "postgres",
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .output()
                .unwrap();
            if o.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "createdb failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        format!("host=127.0.0.1 port={} user=sovra dbname={name}", self.port)
    }
}

/// Writes a CA-issued server certificate and key into the cluster's data directory and a
/// `pg_hba.conf` that refuses TCP connections without TLS; returns the CA certificate (PEM).
fn tls_files(data: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test PostgreSQL CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_pem = ca_cert.pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    std::fs::write(data.join("server.crt"), leaf.pem()).unwrap();
    std::fs::write(data.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    if is_root() {
        for f in ["server.crt", "server.key", "pg_hba.conf"] {
            assert!(
                Command::new("chown")
                    .arg("postgres")
                    .arg(data.join(f))
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    ca_pem
}

impl Drop for TempPg {
    fn drop(&mut self) {
        if let (Some(data), Some(pg_ctl)) = (&self.data, find_bin("pg_ctl")) {
            let _ = as_postgres_user(&pg_ctl)
                .arg("-D")
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
