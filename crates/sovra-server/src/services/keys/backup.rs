//! Key backups (Key Vault's backup and restore): a key with all its versions, their material
//! still wrapped as stored, sealed under the location's HSM wrapping key so that only this
//! deployment (or a node restored from its security domain) can restore it, into any key ring
//! of the same location. A backup carries material: restoring it brings back versions destroyed
//! since it was taken (docs/azure.md says so), which is why both take the rights to destroy
//! versions as well as to manage keys.

use super::*;

/// The format name inside a backup.
const FORMAT: &str = "sovra-key-backup/1";

#[derive(serde::Serialize, serde::Deserialize)]
struct Backup {
    format: String,
    key: CryptoKeyRec,
    versions: Vec<VersionRec>,
}

impl Keys {
    async fn authorize_backup(&self, p: &Principal, name: &str) -> Result<()> {
        for perm in [Permission::KeyManage, Permission::VersionManage] {
            self.base.auth.authorize(p, perm, name).await?;
        }
        Ok(())
    }

    /// A sealed backup of a key and every version, refused if it would be longer than `limit`
    /// bytes (what a restore request can carry).
    pub async fn backup_crypto_key(
        &self,
        p: &Principal,
        name: &CryptoKeyName,
        limit: usize,
    ) -> Result<Vec<u8>> {
        let key_str = name.to_string();
        self.authorize_backup(p, &key_str).await?;
        self.invalidate_key(name);
        let view = self.load_key_view(name).await?;
        let b = Backup {
            format: FORMAT.into(),
            key: view.key.clone(),
            versions: view.versions.values().map(|(v, _)| v.clone()).collect(),
        };
        let json = serde_json::to_vec(&b).map_err(|e| Error::internal(format!("backup: {e}")))?;
        // Sealing adds a nonce and a tag (under 64 bytes).
        if json.len().saturating_add(64) > limit {
            return Err(Error::invalid(format!(
                "{name} has {} versions: its backup would be about {} bytes, more than a restore accepts ({limit}, from limits.max_body_bytes); destroy versions no longer needed, or raise the limit",
                b.versions.len(),
                json.len() + 64
            )));
        }
        let sealed = self.material.seal_backup(&name.location, json).await?;
        self.base
            .audit
            .record(
                self.base
                    .admin_event(p, Action::KeyBackup, key_str)
                    .detail(serde_json::json!({"versions": b.versions.len()})),
            )
            .await?;
        Ok(sealed)
    }

    /// Restores a backup as the key of the same ID in `ring` (which must not have one).
    pub async fn restore_crypto_key(
        &self,
        p: &Principal,
        ring: &KeyRingName,
        sealed: Vec<u8>,
    ) -> Result<Key> {
        self.authorize_backup(p, &ring.to_string()).await?;
        let json = self.material.open_backup(&ring.location, sealed).await?;
        let b: Backup = serde_json::from_slice(json.expose())
            .ok()
            .filter(|b: &Backup| b.format == FORMAT)
            .ok_or_else(|| Error::invalid("the backup's content is not a Sovra key backup"))?;
        let old: CryptoKeyName = match b.key.name.parse() {
            Ok(sovra_proto::names::ResourceName::CryptoKey(n)) => n,
            _ => return Err(Error::invalid("the backup names no crypto key")),
        };
        let name = ring.crypto_key(&old.crypto_key)?;
        let key_str = name.to_string();
        self.authorize_backup(p, &key_str).await?;
        self.ring_rec(ring).await?;
        if self.is_deleted(&name).await? {
            return Err(Error::new(
                ErrorCode::KeyDeleted,
                format!(
                    "{name} is deleted but recoverable: recover or purge it before restoring over it"
                ),
            ));
        }
        let mut versions = Vec::with_capacity(b.versions.len());
        for v in &b.versions {
            let from = old.version(v.version);
            let to = name.version(v.version);
            let material = match &v.material {
                Some(_) => Some(self.material.rewrap(&from, &to, v).await?),
                None => None,
            };
            versions.push(VersionRec {
                name: to.to_string(),
                material,
                ..v.clone()
            });
        }
        let key_ops = match &b.key.key_ops {
            Some(ops) => allowed_ops(b.key.purpose, ops)?,
            None => None,
        };
        let key = CryptoKeyRec {
            name: key_str.clone(),
            key_ops,
            ..b.key
        };
        let mut batch = WriteBatch::new();
        batch.create(model::CRYPTO_KEYS, &key)?;
        for v in &versions {
            batch.create(model::VERSIONS, v)?;
        }
        batch.audit(
            self.base
                .admin_event(p, Action::KeyRestore, key_str.clone())
                .detail(serde_json::json!({"from": old.to_string(), "versions": versions.len()}))
                .body(),
        );
        self.base.store.commit(batch).await.map_err(|e| match e {
            sovra_store::StoreError::Conflict { .. } => Error::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists; restore into a key ring without a key of that ID"),
            ),
            e => e.into(),
        })?;
        self.invalidate_key(&name);
        let primary = key
            .primary
            .and_then(|n| versions.into_iter().find(|v| v.version == n));
        Ok(Key { key, primary })
    }
}
