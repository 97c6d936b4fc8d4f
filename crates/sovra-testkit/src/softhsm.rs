//! A throwaway SoftHSM2 token (Debian's `softhsm2` package) in its own directory, for tests
//! that run Sovra on a PKCS#11 HSM. Processes reach it through `SOFTHSM2_CONF`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 PKCS#11 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// An initialised token; its files go with it.
pub struct Token {
    dir: tempfile::TempDir,
    /// The token's label.
    pub label: String,
    /// The user PIN.
    pub pin: String,
}

impl Token {
    /// Initialises a token labelled `label` with a random-enough user PIN.
    pub fn new(label: &str) -> Token {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} not found: install the Debian package 'softhsm2'"
        );
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let pin = format!("{:08}", std::process::id() % 100_000_000);
        let t = Token {
            dir,
            label: label.to_owned(),
            pin,
        };
        let o = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", t.conf())
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                "12345678",
                "--pin",
            ])
            .arg(&t.pin)
            .output()
            .expect("softhsm2-util not found: install the Debian package 'softhsm2'");
        assert!(
            o.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        t
    }

    /// The `SOFTHSM2_CONF` file that points at this token's directory.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The directory holding the token's object files.
    pub fn tokens_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// A file holding the user PIN.
    pub fn pin_file(&self) -> PathBuf {
        let f = self.dir.path().join("pin");
        std::fs::write(&f, format!("{}\n", self.pin)).unwrap();
        f
    }
}
