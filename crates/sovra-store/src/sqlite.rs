//! The embedded SQLite store (the default).
//!
//! WAL journal with `synchronous=FULL`: a commit is on disk before it is acknowledged, so a
//! crash (even `kill -9` or power loss) loses no acknowledged write. Writes take an immediate
//! transaction on one writer connection; reads use a small pool of reader connections and
//! never block on the writer.

use crate::audit::{AuditRow, link};
use crate::batch::{Op, WriteBatch};
use crate::error::StoreError;
use crate::{Collection, Committed, Record, Store};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    parent TEXT NOT NULL,
    rev INTEGER NOT NULL,
    data BLOB NOT NULL,
    due INTEGER,
    PRIMARY KEY (collection, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_parent ON objects (collection, parent, name);
CREATE INDEX IF NOT EXISTS objects_due ON objects (collection, due) WHERE due IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    body BLOB NOT NULL
);
";

const READERS: usize = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn open_conn(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let writer = open_conn(path, false)?;
        let version: i64 = writer
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} is newer than this Sovra ({SCHEMA_VERSION}); upgrade Sovra"
            )));
        }
        writer.execute_batch(SCHEMA).map_err(backend)?;
        writer
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_conn(path, true)?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .readers
                .lock()
                .map_err(|_| StoreError::Backend("reader pool poisoned".into()))?
                .pop();
            let conn = match conn {
                Some(c) => c,
                None => open_conn(&inner.path, true)?,
            };
            let out = f(&conn);
            if let Ok(mut pool) = inner.readers.lock()
                && pool.len() < READERS
            {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let rev: i64 = r.get(2)?;
    Ok(Record {
        name: r.get(0)?,
        parent: r.get(1)?,
        rev: u64::try_from(rev).unwrap_or(0),
        data: r.get(3)?,
        due: r.get(4)?,
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn apply(tx: &rusqlite::Transaction<'_>, batch: &WriteBatch) -> Result<Committed, StoreError> {
    let mut out = Committed::default();
    for op in &batch.ops {
        let (c, name) = op.target();
        let current: Option<i64> = tx
            .prepare_cached("SELECT rev FROM objects WHERE collection = ?1 AND name = ?2")
            .and_then(|mut st| st.query_row(params![c.0, name], |r| r.get(0)).optional())
            .map_err(backend)?;
        let rev = to_i64(op.check(current.and_then(|r| u64::try_from(r).ok()))?);
        match op {
            Op::Put {
                c,
                name,
                parent,
                data,
                due,
                ..
            } => {
                tx.prepare_cached(
                    "INSERT INTO objects (collection, name, parent, rev, data, due) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (collection, name) DO UPDATE SET parent = excluded.parent, rev = excluded.rev, data = excluded.data, due = excluded.due",
                )
                .and_then(|mut st| st.execute(params![c.0, name, parent, rev, data, due]))
                .map_err(backend)?;
                out.revs.push(u64::try_from(rev).unwrap_or(0));
            }
            Op::Delete { c, name, .. } => {
                tx.prepare_cached("DELETE FROM objects WHERE collection = ?1 AND name = ?2")
                    .and_then(|mut st| st.execute(params![c.0, name]))
                    .map_err(backend)?;
                out.revs.push(0);
            }
        }
    }
    if !batch.audit.is_empty() {
        let tail: Option<(i64, Vec<u8>)> = tx
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(backend)?;
        let (mut seq, mut prev) = match tail {
            Some((s, h)) => (
                u64::try_from(s).unwrap_or(0),
                <[u8; 32]>::try_from(h.as_slice())
                    .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes".into()))?,
            ),
            None => (0, [0u8; 32]),
        };
        for body in &batch.audit {
            seq += 1;
            let hash = link(batch.chain_key.as_ref(), &prev, seq, body);
            tx.prepare_cached(
                "INSERT INTO audit (seq, prev_hash, hash, body) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![to_i64(seq), &prev[..], &hash[..], body]))
            .map_err(backend)?;
            out.audit_seqs.push(seq);
            prev = hash;
        }
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, c: Collection, name: &str) -> Result<Option<Record>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT name, parent, rev, data, due FROM objects WHERE collection = ?1 AND name = ?2")
                .map_err(backend)?
                .query_row(params![c.0, name], row_to_record)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn list(
        &self,
        c: Collection,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let parent = parent.to_owned();
        let after = after.unwrap_or("").to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, parent, rev, data, due FROM objects WHERE collection = ?1 AND parent = ?2 AND name > ?3 ORDER BY name LIMIT ?4")
                .map_err(backend)?;
            let rows = stmt.query_map(params![c.0, parent, after, limit], row_to_record).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn scan(
        &self,
        c: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let after = after.unwrap_or("").to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, parent, rev, data, due FROM objects WHERE collection = ?1 AND name > ?2 ORDER BY name LIMIT ?3")
                .map_err(backend)?;
            let rows = stmt.query_map(params![c.0, after, limit], row_to_record).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn due(&self, c: Collection, now: i64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, parent, rev, data, due FROM objects WHERE collection = ?1 AND due IS NOT NULL AND due <= ?2 ORDER BY due LIMIT ?3")
                .map_err(backend)?;
            let rows = stmt.query_map(params![c.0, now, limit], row_to_record).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn commit(&self, batch: WriteBatch) -> Result<Committed, StoreError> {
        if batch.is_empty() {
            return Ok(Committed::default());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Backend("writer poisoned".into()))?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let out = apply(&tx, &batch)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    async fn audit_range(&self, from: u64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT seq, prev_hash, hash, body FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2").map_err(backend)?;
            let rows = stmt
                .query_map(params![to_i64(from), limit], |r| {
                    // Whatever a writer put in a column (SQLite keeps any type), the record is
                    // read: one that does not decode is a broken link for the chain check to
                    // report, not a store failure.
                    let bytes = |i: usize| -> Vec<u8> {
                        match r.get_ref(i) {
                            Ok(rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b)) => b.to_vec(),
                            Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string().into_bytes(),
                            Ok(rusqlite::types::ValueRef::Real(f)) => f.to_string().into_bytes(),
                            Ok(rusqlite::types::ValueRef::Null) | Err(_) => Vec::new(),
                        }
                    };
                    let seq = match r.get_ref(0) {
                        Ok(rusqlite::types::ValueRef::Integer(n)) => n,
                        _ => 0,
                    };
                    Ok((seq, bytes(1), bytes(2), bytes(3)))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, prev, hash, body) = row.map_err(backend)?;
                // An edited hash column of the wrong length is reported as a broken link, not an error.
                let fix = |v: Vec<u8>| <[u8; 32]>::try_from(v.as_slice()).unwrap_or([0xff; 32]);
                out.push(AuditRow { seq: u64::try_from(seq).unwrap_or(0), prev_hash: fix(prev), hash: fix(hash), body });
            }
            Ok(out)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn conformance() {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("sovra.db")).unwrap();
        crate::conformance::run(&s).await;
    }
}
