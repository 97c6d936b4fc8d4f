//! What the database alone must not decide: every record Sovra keeps carries an HMAC-SHA256
//! under a key that only the HSM can unwrap, over its collection, name, parent, due time and
//! body. A row edited, inserted, renamed or moved between collections by someone who can write
//! the database (but not use the HSM) is refused with `INTEGRITY_FAILURE` and audited, whichever
//! collection it is in: tokens, role bindings, quotas, keys (their `exportable` flag and release
//! policy), trust anchors, issuers, policies.
//!
//! The audit log's hash chain is keyed with a key derived from the same secret
//! (sovra-store's `audit` module), so a database writer cannot append, edit or recompute audit
//! records either.
//!
//! What the MAC cannot see: a row put back as it was earlier (a revoked token's row restored
//! from an old copy), or a whole database rolled back; the audit anchor reports the latter.
//!
//! The key is random, wrapped by the HSM under the default location's key, and kept twice: in
//! the database (so every node of a deployment finds it) and in the data directory
//! (`row-mac.key`), so a database writer who removes it does not make Sovra start afresh.

use crate::services::actions::Action;
use sovra_hsm::Hsm;
use sovra_store::audit::ChainKey;
use sovra_store::{AuditRow, Collection, Committed, Op, Record, Store, StoreError, WriteBatch};
use std::path::Path;
use std::sync::Arc;

/// Where the wrapped key is kept in the database (a collection no service reads).
const KEY_COLLECTION: Collection = Collection("row_mac");
const KEY_NAME: &str = "key";
/// The file beside the database.
pub const KEY_FILE: &str = "row-mac.key";
const KEY_AAD: &[u8] = b"sovra:row-mac-key:v1";
/// Ends every sealed body (JSON never holds a NUL byte), followed by the 32-byte tag.
const TRAILER: &[u8] = b"\0sovmac1";
const TAG_LEN: usize = 32;

/// A store whose records are sealed with an HSM-held MAC key.
#[derive(Debug)]
pub struct SealedStore {
    inner: Arc<dyn Store>,
    key: MacKey,
    /// The audit chain's key, derived from the row MAC key.
    chain: ChainKey,
    /// Rows already reported in the audit log by this process (bounded): one record per row,
    /// however often it is read.
    reported: std::sync::Mutex<std::collections::HashSet<(&'static str, String)>>,
}

/// At most this many distinct refused rows get their own audit record per process.
const MAX_REPORTED: usize = 1024;

struct MacKey(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

impl SealedStore {
    /// Opens the sealing over `inner`: finds (or, for a deployment without one, creates) the
    /// MAC key, and seals the records of a deployment that had none.
    pub async fn open(
        inner: Arc<dyn Store>,
        hsm: &dyn Hsm,
        location: &str,
        data_dir: &Path,
        anchored: bool,
    ) -> Result<Arc<Self>, String> {
        let file = data_dir.join(KEY_FILE);
        let local = match std::fs::read(&file) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        let stored = inner
            .get(KEY_COLLECTION, KEY_NAME)
            .await
            .map_err(|e| e.to_string())?
            .map(|r| r.data);
        let (blob, fresh) = match (local, stored) {
            (Some(l), Some(d)) if l == d => (d, false),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "the database's row MAC key differs from {}: this data directory belongs to another deployment, or the database was replaced",
                    file.display()
                ));
            }
            (Some(l), None) => {
                // Removed from the database: put back from the copy here (it is the HSM's own).
                unwrap_key(hsm, location, &l)?;
                tracing::warn!(
                    "the row MAC key was missing from the database; restored it from {}",
                    file.display()
                );
                put_key(inner.as_ref(), &l).await?;
                (l, false)
            }
            (None, Some(d)) => (d, false),
            (None, None) => {
                if anchored {
                    // This version writes the key before the first audit anchor: an anchored
                    // data directory without it lost it.
                    return Err(format!(
                        "the row MAC key is missing from both the database and {} while this data directory's audit log is anchored: it was removed; restore {} from a backup",
                        file.display(),
                        KEY_FILE
                    ));
                }
                hsm.create_location(location).map_err(|e| e.to_string())?;
                let k = sovra_crypto::random::bytes(32).map_err(|e| e.to_string())?;
                let blob = hsm
                    .wrap(location, KEY_AAD, &k)
                    .map_err(|e| format!("cannot wrap the row MAC key: {e}"))?;
                match put_key(inner.as_ref(), &blob).await {
                    Ok(()) => (blob, true),
                    // Another node created it first: use that one.
                    Err(_) => match inner.get(KEY_COLLECTION, KEY_NAME).await {
                        Ok(Some(r)) => (r.data, false),
                        _ => return Err("cannot store the row MAC key".into()),
                    },
                }
            }
        };
        let key = unwrap_key(hsm, location, &blob)?;
        sovra_hsm::soft::write_private_file(&file, &blob)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let s = Arc::new(Self {
            inner,
            chain: key.chain_key(),
            key,
            reported: std::sync::Mutex::default(),
        });
        if fresh {
            let n = s.seal_existing().await?;
            if n > 0 {
                tracing::warn!(
                    records = n,
                    "sealed the records of a deployment that had no row MAC key (an upgrade): from now on a row edited outside Sovra is refused"
                );
            }
        }
        Ok(s)
    }

    /// Seals every record not sealed yet (a deployment from before sealing).
    async fn seal_existing(&self) -> Result<u64, String> {
        let mut n = 0u64;
        for c in crate::model::ALL {
            let mut after: Option<String> = None;
            loop {
                let rows = self
                    .inner
                    .scan(c, after.as_deref(), 500)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = rows.last() else { break };
                after = Some(last.name.clone());
                let mut b = WriteBatch::new();
                for r in rows.iter().filter(|r| split(&r.data).is_none()) {
                    b.put(
                        c,
                        r.name.clone(),
                        r.parent.clone(),
                        r.data.clone(),
                        r.due,
                        sovra_store::Expect::Rev(r.rev),
                    );
                    n += 1;
                }
                if !b.is_empty() {
                    self.commit(b).await.map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(n)
    }

    fn tag(
        &self,
        c: Collection,
        name: &str,
        parent: &str,
        due: Option<i64>,
        data: &[u8],
    ) -> [u8; TAG_LEN] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key.0);
        for part in [c.0.as_bytes(), name.as_bytes(), parent.as_bytes(), data] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        match due {
            Some(d) => {
                ctx.update(&[1]);
                ctx.update(&d.to_be_bytes());
            }
            None => ctx.update(&[0]),
        }
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn open_record(&self, c: Collection, mut r: Record) -> Result<Record, StoreError> {
        let refused = || {
            tracing::error!(
                collection = c.0,
                name = %r.name,
                "a stored record failed its integrity check: it was edited or inserted outside Sovra"
            );
            StoreError::Integrity {
                collection: c.0,
                name: r.name.clone(),
            }
        };
        let Some((body, tag)) = split(&r.data) else {
            return Err(refused());
        };
        let want = self.tag(c, &r.name, &r.parent, r.due, body);
        if aws_lc_rs::constant_time::verify_slices_are_equal(&want, tag).is_err() {
            return Err(refused());
        }
        let len = body.len();
        r.data.truncate(len);
        Ok(r)
    }

    fn open_all(&self, c: Collection, rows: Vec<Record>) -> Result<Vec<Record>, StoreError> {
        rows.into_iter().map(|r| self.open_record(c, r)).collect()
    }

    /// Audits a refused row (once per row per process), then passes the refusal on.
    async fn audited<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Integrity { collection, name }) = &r {
            let first = self.reported.lock().is_ok_and(|mut seen| {
                seen.len() < MAX_REPORTED && seen.insert((collection, name.clone()))
            });
            if first {
                use crate::clock::Clock as _;
                let ev = super::audit::AuditEvent::new(
                    crate::clock::SystemClock.now(),
                    super::audit::EventKind::System,
                    Action::StoreIntegrity,
                )
                .resource(format!("{collection}/{name}"))
                .denied("INTEGRITY_FAILURE")
                .detail(serde_json::json!({
                    "problem": "the record's MAC does not match: it was edited or inserted outside Sovra"
                }));
                let mut b = WriteBatch::new();
                b.audit(ev.body());
                if let Err(e) = self.commit(b).await {
                    tracing::warn!(error = %e, "could not audit a refused record");
                }
            }
        }
        r
    }
}

impl MacKey {
    /// The audit chain's key: a separate key derived from this one.
    fn chain_key(&self) -> ChainKey {
        let t = aws_lc_rs::hmac::sign(&self.0, b"sovra:audit-chain-key:v1");
        ChainKey::new(t.as_ref())
    }
}

/// The audit chain key of an existing deployment, for checking its log offline: read from
/// the data directory's copy (else the database's) and unwrapped by the HSM, changing nothing.
/// `None` when the deployment has no row MAC key (written before sealing).
pub async fn chain_key_of(
    inner: &dyn Store,
    hsm: &dyn Hsm,
    location: &str,
    data_dir: &Path,
) -> Result<Option<ChainKey>, String> {
    let blob = match std::fs::read(data_dir.join(KEY_FILE)) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => inner
            .get(KEY_COLLECTION, KEY_NAME)
            .await
            .map_err(|e| e.to_string())?
            .map(|r| r.data),
        Err(e) => return Err(format!("cannot read {KEY_FILE}: {e}")),
    };
    blob.map(|b| unwrap_key(hsm, location, &b).map(|k| k.chain_key()))
        .transpose()
}

fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let body_len = data.len().checked_sub(TRAILER.len() + TAG_LEN)?;
    let (body, rest) = data.split_at(body_len);
    let (trailer, tag) = rest.split_at(TRAILER.len());
    (trailer == TRAILER).then_some((body, tag))
}

fn unwrap_key(hsm: &dyn Hsm, location: &str, blob: &[u8]) -> Result<MacKey, String> {
    let k = hsm.unwrap(location, KEY_AAD, blob).map_err(|e| match e {
        sovra_hsm::HsmError::UnknownLocation(l) => format!(
            "the HSM holds no wrapping key for location {l:?}, which seals this database's row MAC key; is this the HSM this database was created with? (A new node over an existing database needs the deployment's security domain: sovra security-domain upload)"
        ),
        _ => "the row MAC key does not unwrap: the HSM is not the one this database was created with, or the key was replaced (a new node over an existing database needs the deployment's security domain: sovra security-domain upload)".into(),
    })?;
    Ok(MacKey(aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        k.expose(),
    )))
}

/// Whether `store` (unsealed) holds a deployment: its row MAC key exists.
pub async fn holds_deployment(store: &dyn Store) -> Result<bool, String> {
    Ok(store
        .get(KEY_COLLECTION, KEY_NAME)
        .await
        .map_err(|e| e.to_string())?
        .is_some())
}

async fn put_key(store: &dyn Store, blob: &[u8]) -> Result<(), String> {
    let mut b = WriteBatch::new();
    b.put(
        KEY_COLLECTION,
        KEY_NAME,
        "",
        blob.to_vec(),
        None,
        sovra_store::Expect::Absent,
    );
    store.commit(b).await.map(|_| ()).map_err(|e| e.to_string())
}

#[async_trait::async_trait]
impl Store for SealedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn get(&self, c: Collection, name: &str) -> Result<Option<Record>, StoreError> {
        let r = self.inner.get(c, name).await?;
        self.audited(r.map(|r| self.open_record(c, r)).transpose())
            .await
    }

    async fn list(
        &self,
        c: Collection,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = self.inner.list(c, parent, after, limit).await?;
        self.audited(self.open_all(c, rows)).await
    }

    async fn scan(
        &self,
        c: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = self.inner.scan(c, after, limit).await?;
        self.audited(self.open_all(c, rows)).await
    }

    async fn due(&self, c: Collection, now: i64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let rows = self.inner.due(c, now, limit).await?;
        self.audited(self.open_all(c, rows)).await
    }

    async fn commit(&self, mut batch: WriteBatch) -> Result<Committed, StoreError> {
        for op in &mut batch.ops {
            if let Op::Put {
                c,
                name,
                parent,
                data,
                due,
                ..
            } = op
            {
                let tag = self.tag(*c, name, parent, *due, data);
                data.extend_from_slice(TRAILER);
                data.extend_from_slice(&tag);
            }
        }
        batch.chain_key = Some(self.chain.clone());
        self.inner.commit(batch).await
    }

    fn chain_key(&self) -> Option<ChainKey> {
        Some(self.chain.clone())
    }

    async fn audit_range(&self, from: u64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.inner.audit_range(from, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
