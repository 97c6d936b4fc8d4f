//! A software HSM kept in a directory.
//!
//! ```text
//! DIR/unseal.key    32 random bytes (hex), mode 0600, unless the unseal key is supplied
//! DIR/root.sealed   the root key, AES-256-GCM under the unseal key
//! DIR/keys.json     location wrapping keys, each AES-256-GCM under the root key,
//!                   bound to its location name
//! ```
//!
//! With the default unseal-key file, the data directory alone can unseal the root: this protects
//! key material in database dumps and backups of the database, not against someone who can read
//! the whole data directory. Operators who want more keep the unseal key elsewhere
//! (`SOVRA_UNSEAL_KEY` or `hsm.unseal_key_file`) or use a PKCS#11 HSM (see docs/operations.md).

use crate::error::HsmError;
use crate::{GeneratedKey, Hsm, HsmKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use sovra_crypto::SecretBytes;
use sovra_crypto::wrap::WrappingKey;
use sovra_proto::kms::Algorithm;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const ROOT_AAD: &[u8] = b"sovra/soft-hsm/root/v1";
const ATTESTATION_AAD: &[u8] = b"sovra/soft-hsm/attestation/v1";

fn location_aad(location: &str) -> Vec<u8> {
    format!("sovra/soft-hsm/location/v1/{location}").into_bytes()
}

/// Where the unseal key comes from.
#[derive(Debug, Clone)]
pub enum UnsealKey {
    /// `DIR/unseal.key`, created on first start.
    DefaultFile,
    /// A file the operator keeps elsewhere (hex, 64 characters).
    File(PathBuf),
    /// The key itself (e.g. from `SOVRA_UNSEAL_KEY`).
    Bytes(SecretBytes),
}

/// The software HSM.
pub struct SoftHsm {
    dir: PathBuf,
    root: WrappingKey,
    /// The root itself, for the security domain.
    root_bytes: SecretBytes,
    keys: RwLock<HashMap<String, Arc<WrappingKey>>>,
    write_lock: Mutex<()>,
    attestation: Mutex<Option<Arc<EcdsaKeyPair>>>,
}

impl std::fmt::Debug for SoftHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftHsm")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct KeysFile {
    locations: BTreeMap<String, String>,
    /// The key-attestation key (PKCS#8, ECDSA P-256), sealed under the root; hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation: Option<String>,
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir) with mode 0600.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), HsmError> {
    let dir = path
        .parent()
        .ok_or_else(|| HsmError::Io("path has no parent".into()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn decode_hex_key(text: &str) -> Result<SecretBytes, HsmError> {
    let t = text.trim();
    if t.len() != 64 {
        return Err(HsmError::Unseal(
            "the unseal key must be 64 hex characters (32 bytes)".into(),
        ));
    }
    let mut out = Vec::with_capacity(32);
    for i in (0..64).step_by(2) {
        let byte = t
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| HsmError::Unseal("the unseal key is not hex".into()))?;
        out.push(byte);
    }
    Ok(SecretBytes::new(out))
}

/// What a security domain holds of a software HSM: its root and its keys file (whose keys are
/// sealed under that root).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Domain {
    /// The root key, hex.
    root: String,
    keys: KeysFile,
}

impl SoftHsm {
    /// Opens (or, if `dir` holds no sealed root yet, initialises) the software HSM in `dir`.
    pub fn open(dir: &Path, unseal: UnsealKey) -> Result<Self, HsmError> {
        Self::open_with_root(dir, unseal, None)
    }

    /// Restores a software HSM into `dir` from a security domain ([`Hsm::export_domain`] of
    /// another node), sealing its root under `unseal` (a fresh `unseal.key` by default). `dir`
    /// must hold no HSM, or only an empty one (no location, no attestation key: what a start
    /// over a database of another deployment leaves behind).
    /// With `keep`, only those locations' wrapping keys are restored (a node of one region).
    pub fn restore(
        dir: &Path,
        unseal: UnsealKey,
        domain: &[u8],
        keep: Option<&[String]>,
    ) -> Result<Self, HsmError> {
        let mut d: Domain = serde_json::from_slice(domain)
            .map_err(|_| HsmError::Io("the security domain holds no software HSM".into()))?;
        let root = sovra_proto::hex::decode(&d.root).filter(|r| r.len() == 32);
        zeroize::Zeroize::zeroize(&mut d.root);
        let root =
            SecretBytes::new(root.ok_or_else(|| {
                HsmError::Io("the security domain's root is not 32 bytes".into())
            })?);
        std::fs::create_dir_all(dir)?;
        let sealed_path = dir.join("root.sealed");
        if sealed_path.exists() {
            let keys: KeysFile = match std::fs::read(dir.join("keys.json")) {
                Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| KeysFile {
                    locations: BTreeMap::from([(String::new(), String::new())]),
                    attestation: None,
                }),
                Err(_) => KeysFile::default(),
            };
            if !keys.locations.is_empty() || keys.attestation.is_some() {
                return Err(HsmError::Io(format!(
                    "{} already holds a software HSM with keys; move it aside to restore another",
                    dir.display()
                )));
            }
            for f in ["root.sealed", "keys.json"] {
                match std::fs::remove_file(dir.join(f)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            if matches!(unseal, UnsealKey::DefaultFile) {
                match std::fs::remove_file(dir.join("unseal.key")) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        if let Some(keep) = keep {
            d.keys.locations.retain(|l, _| keep.contains(l));
        }
        let json = serde_json::to_vec_pretty(&d.keys).map_err(|e| HsmError::Io(e.to_string()))?;
        write_private_file(&dir.join("keys.json"), &json)?;
        let hsm = Self::open_with_root(dir, unseal, Some(root))?;
        // Every key of the domain opens under its root (else nothing was restored).
        if d.keys.attestation.is_some() {
            hsm.attestation_key()?;
        }
        Ok(hsm)
    }

    /// Whether `key` opens the root sealed in `dir` (a quorum's combined shares are checked
    /// before the node starts with them).
    pub fn check_unseal(dir: &Path, key: &SecretBytes) -> bool {
        let Ok(blob) = std::fs::read(dir.join("root.sealed")) else {
            return false;
        };
        WrappingKey::new(key.expose())
            .and_then(|k| k.unwrap(ROOT_AAD, &blob))
            .is_ok()
    }

    /// Seals the root under `new_key` instead of the unseal key it was opened with (atomically:
    /// `root.sealed` is replaced in one rename). The old unseal key no longer opens it.
    pub fn reseal(&self, new_key: &SecretBytes) -> Result<(), HsmError> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| HsmError::Device("lock poisoned".into()))?;
        let blob = WrappingKey::new(new_key.expose())
            .and_then(|k| k.wrap(ROOT_AAD, self.root_bytes.expose()))
            .map_err(|e| HsmError::Unseal(e.to_string()))?;
        write_private_file(&self.dir.join("root.sealed"), &blob)
    }

    fn open_with_root(
        dir: &Path,
        unseal: UnsealKey,
        new_root: Option<SecretBytes>,
    ) -> Result<Self, HsmError> {
        std::fs::create_dir_all(dir)?;
        let sealed_path = dir.join("root.sealed");
        let unseal_key = match &unseal {
            UnsealKey::Bytes(b) => b.clone(),
            UnsealKey::File(p) => decode_hex_key(
                &std::fs::read_to_string(p)
                    .map_err(|e| HsmError::Unseal(format!("cannot read {}: {e}", p.display())))?,
            )?,
            UnsealKey::DefaultFile => {
                let p = dir.join("unseal.key");
                if !p.exists() && !sealed_path.exists() {
                    let k = sovra_crypto::random::bytes(32)
                        .map_err(|e| HsmError::Device(e.to_string()))?;
                    write_private_file(
                        &p,
                        format!("{}\n", sovra_proto::hex::encode(&k)).as_bytes(),
                    )?;
                }
                decode_hex_key(
                    &std::fs::read_to_string(&p).map_err(|e| {
                        HsmError::Unseal(format!("cannot read {}: {e}", p.display()))
                    })?,
                )?
            }
        };
        let unseal_wk =
            WrappingKey::new(unseal_key.expose()).map_err(|e| HsmError::Unseal(e.to_string()))?;
        let root_bytes = if sealed_path.exists() {
            let blob = std::fs::read(&sealed_path)?;
            unseal_wk.unwrap(ROOT_AAD, &blob).map_err(|_| {
                HsmError::Unseal("wrong unseal key, or root.sealed was altered".into())
            })?
        } else {
            let root = match new_root {
                Some(r) => r,
                None => SecretBytes::new(
                    sovra_crypto::random::bytes(32).map_err(|e| HsmError::Device(e.to_string()))?,
                ),
            };
            let blob = unseal_wk
                .wrap(ROOT_AAD, root.expose())
                .map_err(|e| HsmError::Device(e.to_string()))?;
            write_private_file(&sealed_path, &blob)?;
            root
        };
        let root =
            WrappingKey::new(root_bytes.expose()).map_err(|e| HsmError::Device(e.to_string()))?;
        let hsm = Self {
            dir: dir.to_path_buf(),
            root,
            root_bytes,
            keys: RwLock::new(HashMap::new()),
            write_lock: Mutex::new(()),
            attestation: Mutex::new(None),
        };
        hsm.load_keys()?;
        Ok(hsm)
    }

    fn keys_path(&self) -> PathBuf {
        self.dir.join("keys.json")
    }

    fn read_keys_file(&self) -> Result<KeysFile, HsmError> {
        match std::fs::read(self.keys_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| HsmError::Io(format!("keys.json is corrupt: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn load_keys(&self) -> Result<(), HsmError> {
        let file = self.read_keys_file()?;
        let mut map = HashMap::new();
        for (loc, hex_blob) in &file.locations {
            let blob = sovra_proto::hex::decode(hex_blob)
                .ok_or_else(|| HsmError::Io(format!("keys.json: location {loc} is not hex")))?;
            let k = self
                .root
                .unwrap(&location_aad(loc), &blob)
                .map_err(|_| HsmError::Integrity)?;
            map.insert(
                loc.clone(),
                Arc::new(
                    WrappingKey::new(k.expose()).map_err(|e| HsmError::Device(e.to_string()))?,
                ),
            );
        }
        *self
            .keys
            .write()
            .map_err(|_| HsmError::Device("lock poisoned".into()))? = map;
        Ok(())
    }

    /// The key-attestation key, created and sealed under the root on first use.
    fn attestation_key(&self) -> Result<Arc<EcdsaKeyPair>, HsmError> {
        fn poisoned<T>(_: T) -> HsmError {
            HsmError::Device("lock poisoned".into())
        }
        let mut cached = self.attestation.lock().map_err(poisoned)?;
        if let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let _guard = self.write_lock.lock().map_err(poisoned)?;
        let mut file = self.read_keys_file()?;
        let pkcs8 = match &file.attestation {
            Some(hex_blob) => {
                let blob = sovra_proto::hex::decode(hex_blob)
                    .ok_or_else(|| HsmError::Io("keys.json: attestation is not hex".into()))?;
                self.root
                    .unwrap(ATTESTATION_AAD, &blob)
                    .map_err(|_| HsmError::Integrity)?
            }
            None => {
                let (doc, blob) = self.new_attestation_key()?;
                file.attestation = Some(blob);
                let json =
                    serde_json::to_vec_pretty(&file).map_err(|e| HsmError::Io(e.to_string()))?;
                write_private_file(&self.keys_path(), &json)?;
                doc
            }
        };
        let kp = Arc::new(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.expose())
                .map_err(|_| HsmError::Integrity)?,
        );
        *cached = Some(kp.clone());
        Ok(kp)
    }

    /// A new attestation key: its PKCS#8 document, and that sealed under the root (hex).
    fn new_attestation_key(&self) -> Result<(SecretBytes, String), HsmError> {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| HsmError::Device("generating the attestation key".into()))?;
        let doc = kp
            .to_pkcs8v1()
            .map_err(|_| HsmError::Device("encoding the attestation key".into()))?;
        let blob = self
            .root
            .wrap(ATTESTATION_AAD, doc.as_ref())
            .map_err(|e| HsmError::Device(e.to_string()))?;
        Ok((
            SecretBytes::from_slice(doc.as_ref()),
            sovra_proto::hex::encode(&blob),
        ))
    }

    fn key(&self, location: &str) -> Result<Arc<WrappingKey>, HsmError> {
        self.keys
            .read()
            .map_err(|_| HsmError::Device("lock poisoned".into()))?
            .get(location)
            .cloned()
            .ok_or_else(|| HsmError::UnknownLocation(location.to_owned()))
    }
}

impl Hsm for SoftHsm {
    fn kind(&self) -> &'static str {
        "software"
    }

    fn export_domain(&self) -> Result<SecretBytes, HsmError> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| HsmError::Device("lock poisoned".into()))?;
        let mut d = Domain {
            root: sovra_proto::hex::encode(self.root_bytes.expose()),
            keys: self.read_keys_file()?,
        };
        let out = serde_json::to_vec(&d)
            .map(SecretBytes::new)
            .map_err(|e| HsmError::Io(e.to_string()));
        zeroize::Zeroize::zeroize(&mut d.root);
        out
    }

    fn locations(&self) -> Result<Vec<String>, HsmError> {
        let mut v: Vec<String> = self
            .keys
            .read()
            .map_err(|_| HsmError::Device("lock poisoned".into()))?
            .keys()
            .cloned()
            .collect();
        v.sort();
        Ok(v)
    }

    fn create_location(&self, location: &str) -> Result<(), HsmError> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| HsmError::Device("lock poisoned".into()))?;
        let mut file = self.read_keys_file()?;
        if file.locations.contains_key(location) {
            return Ok(());
        }
        let k = SecretBytes::new(
            sovra_crypto::random::bytes(32).map_err(|e| HsmError::Device(e.to_string()))?,
        );
        let blob = self
            .root
            .wrap(&location_aad(location), k.expose())
            .map_err(|e| HsmError::Device(e.to_string()))?;
        file.locations
            .insert(location.to_owned(), sovra_proto::hex::encode(&blob));
        let json = serde_json::to_vec_pretty(&file).map_err(|e| HsmError::Io(e.to_string()))?;
        write_private_file(&self.keys_path(), &json)?;
        let wk =
            Arc::new(WrappingKey::new(k.expose()).map_err(|e| HsmError::Device(e.to_string()))?);
        self.keys
            .write()
            .map_err(|_| HsmError::Device("lock poisoned".into()))?
            .insert(location.to_owned(), wk);
        Ok(())
    }

    fn wrap(&self, location: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.key(location)?
            .wrap(aad, plaintext)
            .map_err(|e| HsmError::Device(e.to_string()))
    }

    fn unwrap(&self, location: &str, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, HsmError> {
        self.key(location)?
            .unwrap(aad, blob)
            .map_err(|_| HsmError::Integrity)
    }

    fn attestation_public_key(&self) -> Result<Vec<u8>, HsmError> {
        let kp = self.attestation_key()?;
        kp.public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| HsmError::Device("encoding the attestation public key".into()))
    }

    fn rotate_attestation_key(&self) -> Result<Vec<u8>, HsmError> {
        fn poisoned<T>(_: T) -> HsmError {
            HsmError::Device("lock poisoned".into())
        }
        let mut cached = self.attestation.lock().map_err(poisoned)?;
        let _guard = self.write_lock.lock().map_err(poisoned)?;
        let (doc, blob) = self.new_attestation_key()?;
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.expose())
            .map_err(|_| HsmError::Device("loading the attestation key".into()))?;
        let mut file = self.read_keys_file()?;
        file.attestation = Some(blob);
        let json = serde_json::to_vec_pretty(&file).map_err(|e| HsmError::Io(e.to_string()))?;
        write_private_file(&self.keys_path(), &json)?;
        let spki = kp
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| HsmError::Device("encoding the attestation public key".into()))?;
        *cached = Some(Arc::new(kp));
        Ok(spki)
    }

    fn attestation_sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let kp = self.attestation_key()?;
        kp.sign(&aws_lc_rs::rand::SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| HsmError::Device("signing with the attestation key".into()))
    }

    fn generate_key(&self, location: &str, alg: Algorithm) -> Result<GeneratedKey, HsmError> {
        crate::soft_key::generate(&*self.key(location)?, alg)
    }

    fn generate_import_key(&self, location: &str, bits: u16) -> Result<GeneratedKey, HsmError> {
        crate::soft_key::generate_import(&*self.key(location)?, bits)
    }

    fn import_key(
        &self,
        location: &str,
        import: &crate::ImportKey<'_>,
        blob: &[u8],
        alg: Algorithm,
        public_key: Option<&[u8]>,
    ) -> Result<GeneratedKey, HsmError> {
        crate::soft_key::import(&*self.key(location)?, import, blob, alg, public_key)
    }

    fn import_material(
        &self,
        location: &str,
        import: &crate::ImportKey<'_>,
        blob: &[u8],
    ) -> Result<SecretBytes, HsmError> {
        crate::soft_key::open_import(&*self.key(location)?, import, blob)
    }

    fn load_key(
        &self,
        location: &str,
        alg: Algorithm,
        wrapped: &[u8],
        public_key: Option<&[u8]>,
    ) -> Result<Arc<dyn HsmKey>, HsmError> {
        Ok(Arc::new(crate::soft_key::load(
            &*self.key(location)?,
            alg,
            wrapped,
            public_key,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_binds_locations() {
        let d = tempfile::tempdir().unwrap();
        let blob = {
            let h = SoftHsm::open(d.path(), UnsealKey::DefaultFile).unwrap();
            h.create_location("global").unwrap();
            h.create_location("eu").unwrap();
            h.wrap("global", b"row", b"material").unwrap()
        };
        let h = SoftHsm::open(d.path(), UnsealKey::DefaultFile).unwrap();
        assert_eq!(
            h.locations().unwrap(),
            vec!["eu".to_string(), "global".to_string()]
        );
        assert_eq!(
            h.unwrap("global", b"row", &blob).unwrap().expose(),
            b"material"
        );
        assert!(matches!(
            h.unwrap("eu", b"row", &blob),
            Err(HsmError::Integrity)
        ));
        assert!(matches!(
            h.unwrap("global", b"other-row", &blob),
            Err(HsmError::Integrity)
        ));
        assert!(matches!(
            h.unwrap("nowhere", b"row", &blob),
            Err(HsmError::UnknownLocation(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join("unseal.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn fail_wrong_unseal_key() {
        let d = tempfile::tempdir().unwrap();
        SoftHsm::open(d.path(), UnsealKey::Bytes(SecretBytes::new(vec![1; 32]))).unwrap();
        let err =
            SoftHsm::open(d.path(), UnsealKey::Bytes(SecretBytes::new(vec![2; 32]))).unwrap_err();
        assert!(matches!(err, HsmError::Unseal(_)), "{err}");
    }

    #[test]
    fn a_security_domain_restores_the_keys_on_another_node() {
        let a = tempfile::tempdir().unwrap();
        let (blob, domain, attestation) = {
            let h = SoftHsm::open(a.path(), UnsealKey::DefaultFile).unwrap();
            h.create_location("global").unwrap();
            let pk = h.attestation_public_key().unwrap();
            (
                h.wrap("global", b"row", b"material").unwrap(),
                h.export_domain().unwrap(),
                pk,
            )
        };
        // A fresh node whose failed start left an empty HSM behind.
        let b = tempfile::tempdir().unwrap();
        SoftHsm::open(b.path(), UnsealKey::DefaultFile).unwrap();
        let h = SoftHsm::restore(b.path(), UnsealKey::DefaultFile, domain.expose(), None).unwrap();
        assert_eq!(
            h.unwrap("global", b"row", &blob).unwrap().expose(),
            b"material"
        );
        assert_eq!(h.attestation_public_key().unwrap(), attestation);
        // Its own unseal key opens it again; the first node's does not matter.
        assert_ne!(
            std::fs::read(a.path().join("unseal.key")).unwrap(),
            std::fs::read(b.path().join("unseal.key")).unwrap()
        );
        let h = SoftHsm::open(b.path(), UnsealKey::DefaultFile).unwrap();
        assert_eq!(
            h.unwrap("global", b"row", &blob).unwrap().expose(),
            b"material"
        );
        // A node holding keys is not overwritten; garbage is not a domain.
        let err =
            SoftHsm::restore(b.path(), UnsealKey::DefaultFile, domain.expose(), None).unwrap_err();
        assert!(err.to_string().contains("already holds"), "{err}");
        let c = tempfile::tempdir().unwrap();
        assert!(SoftHsm::restore(c.path(), UnsealKey::DefaultFile, b"{}", None).is_err());
    }
}
