//! Where the software HSM's unseal key comes from: a PKCS#11 token, a file or variable the
//! operator keeps, the data directory's `unseal.key`, or a quorum of administrators.

use crate::config::{Config, HsmBackend};
use sovra_hsm::Hsm;
use sovra_hsm::soft::{SoftHsm, UnsealKey};
use sovra_proto::security_domain::UnsealQuorum;
use std::path::PathBuf;

/// The PKCS#11 "location" whose AES key wraps a software HSM's unseal key.
const UNSEAL_P11_KEY: &str = "sovra-unseal";
const UNSEAL_P11_AAD: &[u8] = b"sovra/unseal-key/v1";

/// The software HSM's unseal key held wrapped by a key inside a PKCS#11 token
/// (`hsm.unseal_pkcs11_*`), in `hsm/unseal.p11`. Made on first start; a node that had an
/// `unseal.key` file moves it into the token (and removes the file) on its first start so
/// configured.
fn pkcs11_unseal(cfg: &Config) -> Result<Option<UnsealKey>, String> {
    let h = &cfg.hsm;
    let (Some(module), Some(label), Some(pin_file)) = (
        &h.unseal_pkcs11_module,
        &h.unseal_pkcs11_token_label,
        &h.unseal_pkcs11_pin_file,
    ) else {
        if h.unseal_pkcs11_module.is_some()
            || h.unseal_pkcs11_token_label.is_some()
            || h.unseal_pkcs11_pin_file.is_some()
        {
            return Err(
                "hsm.unseal_pkcs11_module, hsm.unseal_pkcs11_token_label and hsm.unseal_pkcs11_pin_file go together".into(),
            );
        }
        return Ok(None);
    };
    if h.unseal_key_file.is_some() || std::env::var_os("SOVRA_UNSEAL_KEY").is_some() {
        return Err("the unseal key comes from one place: a PKCS#11 token (hsm.unseal_pkcs11_*) or hsm.unseal_key_file / SOVRA_UNSEAL_KEY, not both".into());
    }
    let pin = std::fs::read_to_string(pin_file).map_err(|e| {
        format!(
            "cannot read hsm.unseal_pkcs11_pin_file {}: {e}",
            pin_file.display()
        )
    })?;
    let token =
        sovra_hsm::pkcs11::Pkcs11Hsm::open(module, label, pin.trim_end_matches(['\n', '\r']))
            .map_err(|e| format!("the PKCS#11 token that holds the unseal key: {e}"))?;
    token
        .create_location(UNSEAL_P11_KEY)
        .map_err(|e| format!("the PKCS#11 token that holds the unseal key: {e}"))?;
    let dir = cfg.data_dir.join("hsm");
    let blob_path = dir.join("unseal.p11");
    if let Ok(blob) = std::fs::read(&blob_path) {
        let key = token.unwrap(UNSEAL_P11_KEY, UNSEAL_P11_AAD, &blob).map_err(|_| {
            format!(
                "{} does not open with the key in PKCS#11 token {label:?}: another token, or the file was altered",
                blob_path.display()
            )
        })?;
        return Ok(Some(UnsealKey::Bytes(key)));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join("unseal.key");
    let key = if dir.join("root.sealed").exists() {
        // An existing node: its unseal key moves into the token.
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "this node's HSM is sealed under a key that is neither in {} nor in the PKCS#11 token: {e}",
                file.display()
            )
        })?;
        sovra_proto::hex::decode(text.trim())
            .filter(|k| k.len() == 32)
            .map(sovra_crypto::SecretBytes::new)
            .ok_or_else(|| format!("{} is not a 64-hex-character key", file.display()))?
    } else {
        sovra_crypto::SecretBytes::new(sovra_crypto::random::bytes(32).map_err(|e| e.to_string())?)
    };
    let blob = token
        .wrap(UNSEAL_P11_KEY, UNSEAL_P11_AAD, key.expose())
        .map_err(|e| format!("wrapping the unseal key in the PKCS#11 token: {e}"))?;
    sovra_hsm::soft::write_private_file(&blob_path, &blob).map_err(|e| e.to_string())?;
    if file.exists() {
        std::fs::remove_file(&file)
            .and_then(|()| std::fs::File::open(&dir)?.sync_all())
            .map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
        tracing::warn!(token = %label, "the software HSM's unseal key moved into the PKCS#11 token; unseal.key was removed");
    }
    Ok(Some(UnsealKey::Bytes(key)))
}

/// Where the software HSM's unseal key comes from: a PKCS#11 token (`hsm.unseal_pkcs11_*`),
/// `hsm.unseal_key_file`, `SOVRA_UNSEAL_KEY`, or the data directory's `unseal.key`.
pub(crate) fn soft_unseal(cfg: &Config) -> Result<UnsealKey, String> {
    if unseal_quorum_path(cfg).exists() {
        return Err(format!(
            "the software HSM is sealed by a quorum of administrators ({}): start the node with `sovra serve` and have them run `sovra unseal submit`",
            unseal_quorum_path(cfg).display()
        ));
    }
    if let Some(k) = pkcs11_unseal(cfg)? {
        return Ok(k);
    }
    Ok(
        match (
            &cfg.hsm.unseal_key_file,
            std::env::var("SOVRA_UNSEAL_KEY").ok(),
        ) {
            (Some(f), _) => UnsealKey::File(f.clone()),
            (None, Some(hex)) => {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
                    .filter(|b| b.len() == 32)
                    .ok_or("SOVRA_UNSEAL_KEY must be 64 hex characters")?;
                UnsealKey::Bytes(sovra_crypto::SecretBytes::new(bytes))
            }
            (None, None) => UnsealKey::DefaultFile,
        },
    )
}

/// Where a software HSM sealed by a quorum keeps its split unseal key.
pub fn unseal_quorum_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("hsm").join("unseal-quorum.json")
}

/// The quorum this node's software HSM is sealed by, if it is (`sovra unseal init`).
pub fn unseal_quorum(cfg: &Config) -> Result<Option<UnsealQuorum>, String> {
    if cfg.hsm.backend != HsmBackend::Software {
        return Ok(None);
    }
    let path = unseal_quorum_path(cfg);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if cfg.hsm.unseal_key_file.is_some() || std::env::var_os("SOVRA_UNSEAL_KEY").is_some() {
        return Err(format!(
            "the software HSM is sealed by a quorum ({}); hsm.unseal_key_file and SOVRA_UNSEAL_KEY do not apply to it: unset them",
            path.display()
        ));
    }
    let q: UnsealQuorum = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    if q.format != sovra_proto::security_domain::UNSEAL_FORMAT
        || q.quorum < 2
        || usize::from(q.quorum) > q.shares.len()
    {
        return Err(format!(
            "{} is not a quorum this version reads",
            path.display()
        ));
    }
    Ok(Some(q))
}

/// Whether `key` unseals this node's software HSM root (a quorum's combined shares).
pub fn unseals(cfg: &Config, key: &sovra_crypto::SecretBytes) -> bool {
    SoftHsm::check_unseal(&cfg.data_dir.join("hsm"), key)
}
