//! The PostgreSQL store, for several stateless Sovra nodes sharing one database.
//!
//! Every write batch runs in one transaction that first takes a transaction-scoped advisory
//! lock, so writes (and with them the audit chain) are serialised across all nodes; the
//! revision checks inside the transaction then see the latest committed state. Reads run
//! without the lock. Connections come from a small pool; a broken connection is dropped and
//! replaced on the next use.

use crate::audit::{AuditRow, link};
use crate::batch::{Op, WriteBatch};
use crate::error::StoreError;
use crate::postgres_tls::{Plan, RustlsConnect};
use crate::{Collection, Committed, Record, Store};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio_postgres::{Client, NoTls, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sovra_objects (
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    parent TEXT NOT NULL,
    rev BIGINT NOT NULL,
    data BYTEA NOT NULL,
    due BIGINT,
    PRIMARY KEY (collection, name)
);
CREATE INDEX IF NOT EXISTS sovra_objects_parent ON sovra_objects (collection, parent, name);
CREATE INDEX IF NOT EXISTS sovra_objects_due ON sovra_objects (collection, due) WHERE due IS NOT NULL;
CREATE TABLE IF NOT EXISTS sovra_audit (
    seq BIGINT PRIMARY KEY,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS sovra_schema (version INTEGER NOT NULL);
";

const SCHEMA_VERSION: i32 = 1;
/// Advisory-lock key that serialises writers ("sovra" in ASCII).
const WRITE_LOCK: i64 = 0x0073_6f76_7261;
const MAX_CONNECTIONS: usize = 16;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    plan: Plan,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn backend(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A pooled connection. `release` returns it to the pool; dropping it (on an error path)
/// closes it, so a connection in an unknown state is never reused.
struct Conn<'a> {
    client: Client,
    store: &'a Inner,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conn<'_> {
    fn release(self) {
        if !self.client.is_closed()
            && let Ok(mut idle) = self.store.idle.lock()
        {
            idle.push(self.client);
        }
    }
}

async fn connect(plan: &Plan) -> Result<Client, StoreError> {
    let failed = |e: tokio_postgres::Error| {
        // The error's source says why (e.g. an untrusted certificate).
        let why = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        StoreError::Backend(format!("cannot connect to PostgreSQL: {e}{why}"))
    };
    // Errors surface on the next query through the client.
    match &plan.tls {
        None => {
            let (client, connection) = tokio_postgres::connect(&plan.url, NoTls)
                .await
                .map_err(failed)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(client)
        }
        Some(tls) => {
            let (client, connection) =
                tokio_postgres::connect(&plan.url, RustlsConnect(tls.clone()))
                    .await
                    .map_err(failed)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(client)
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db` or `host=… user=…`) and migrates,
    /// with TLS as [`crate::postgres_tls`] decides (system CA bundle).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_ca(url, None).await
    }

    /// As [`PgStore::open`], checking the server's certificate against `ca_pem` (PEM).
    pub async fn open_with_ca(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, StoreError> {
        let plan = crate::postgres_tls::plan(url, ca_pem)?;
        let store = Self {
            inner: Arc::new(Inner {
                plan,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(MAX_CONNECTIONS),
            }),
        };
        let mut c = store.conn().await?;
        let tx = c.client.transaction().await.map_err(backend)?;
        tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(backend)?;
        tx.batch_execute(SCHEMA).await.map_err(backend)?;
        let v: Option<i32> = tx
            .query_opt("SELECT version FROM sovra_schema", &[])
            .await
            .map_err(backend)?
            .map(|r| r.get(0));
        match v {
            None => {
                tx.execute(
                    "INSERT INTO sovra_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .await
                .map_err(backend)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Corrupt(format!(
                    "database schema version {v} is newer than this Sovra ({SCHEMA_VERSION}); upgrade Sovra"
                )));
            }
            Some(_) => {}
        }
        tx.commit().await.map_err(backend)?;
        c.release();
        Ok(store)
    }

    async fn conn(&self) -> Result<Conn<'_>, StoreError> {
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("connection pool closed".into()))?;
        let idle = self
            .inner
            .idle
            .lock()
            .map_err(|_| StoreError::Backend("pool poisoned".into()))?
            .pop();
        let client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => connect(&self.inner.plan).await?,
        };
        Ok(Conn {
            client,
            store: &self.inner,
            _permit: permit,
        })
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn record(r: &Row) -> Record {
    let rev: i64 = r.get(2);
    Record {
        name: r.get(0),
        parent: r.get(1),
        rev: u64::try_from(rev).unwrap_or(0),
        data: r.get(3),
        due: r.get(4),
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn get(&self, c: Collection, name: &str) -> Result<Option<Record>, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt("SELECT name, parent, rev, data, due FROM sovra_objects WHERE collection = $1 AND name = $2", &[&c.0, &name])
            .await
            .map_err(backend)?;
        conn.release();
        Ok(row.as_ref().map(record))
    }

    async fn list(
        &self,
        c: Collection,
        parent: &str,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn().await?;
        let after = after.unwrap_or("");
        let rows = conn
            .client
            .query(
                "SELECT name, parent, rev, data, due FROM sovra_objects WHERE collection = $1 AND parent = $2 AND name > $3 ORDER BY name COLLATE \"C\" LIMIT $4",
                &[&c.0, &parent, &after, &limit(n)],
            )
            .await
            .map_err(backend)?;
        conn.release();
        Ok(rows.iter().map(record).collect())
    }

    async fn scan(
        &self,
        c: Collection,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn().await?;
        let after = after.unwrap_or("");
        let rows = conn
            .client
            .query("SELECT name, parent, rev, data, due FROM sovra_objects WHERE collection = $1 AND name > $2 ORDER BY name COLLATE \"C\" LIMIT $3", &[&c.0, &after, &limit(n)])
            .await
            .map_err(backend)?;
        conn.release();
        Ok(rows.iter().map(record).collect())
    }

    async fn due(&self, c: Collection, now: i64, n: usize) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .client
            .query("SELECT name, parent, rev, data, due FROM sovra_objects WHERE collection = $1 AND due IS NOT NULL AND due <= $2 ORDER BY due LIMIT $3", &[&c.0, &now, &limit(n)])
            .await
            .map_err(backend)?;
        conn.release();
        Ok(rows.iter().map(record).collect())
    }

    async fn commit(&self, batch: WriteBatch) -> Result<Committed, StoreError> {
        if batch.is_empty() {
            return Ok(Committed::default());
        }
        let mut conn = self.conn().await?;
        let tx = conn.client.transaction().await.map_err(backend)?;
        tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(backend)?;
        let mut out = Committed::default();
        for op in &batch.ops {
            let (c, name) = op.target();
            let current: Option<i64> = tx
                .query_opt(
                    "SELECT rev FROM sovra_objects WHERE collection = $1 AND name = $2",
                    &[&c.0, &name],
                )
                .await
                .map_err(backend)?
                .map(|r| r.get(0));
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
                    tx.execute(
                        "INSERT INTO sovra_objects (collection, name, parent, rev, data, due) VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (collection, name) DO UPDATE SET parent = EXCLUDED.parent, rev = EXCLUDED.rev, data = EXCLUDED.data, due = EXCLUDED.due",
                        &[&c.0, name, parent, &rev, data, due],
                    )
                    .await
                    .map_err(backend)?;
                    out.revs.push(u64::try_from(rev).unwrap_or(0));
                }
                Op::Delete { c, name, .. } => {
                    tx.execute(
                        "DELETE FROM sovra_objects WHERE collection = $1 AND name = $2",
                        &[&c.0, name],
                    )
                    .await
                    .map_err(backend)?;
                    out.revs.push(0);
                }
            }
        }
        if !batch.audit.is_empty() {
            let tail = tx
                .query_opt(
                    "SELECT seq, hash FROM sovra_audit ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .await
                .map_err(backend)?;
            let (mut seq, mut prev) = match tail {
                Some(r) => {
                    let s: i64 = r.get(0);
                    let h: Vec<u8> = r.get(1);
                    (
                        u64::try_from(s).unwrap_or(0),
                        <[u8; 32]>::try_from(h.as_slice()).map_err(|_| {
                            StoreError::Corrupt("audit hash is not 32 bytes".into())
                        })?,
                    )
                }
                None => (0, [0u8; 32]),
            };
            for body in &batch.audit {
                seq += 1;
                let hash = link(batch.chain_key.as_ref(), &prev, seq, body);
                tx.execute(
                    "INSERT INTO sovra_audit (seq, prev_hash, hash, body) VALUES ($1, $2, $3, $4)",
                    &[&to_i64(seq), &&prev[..], &&hash[..], body],
                )
                .await
                .map_err(backend)?;
                out.audit_seqs.push(seq);
                prev = hash;
            }
        }
        tx.commit().await.map_err(backend)?;
        conn.release();
        Ok(out)
    }

    async fn audit_range(&self, from: u64, n: usize) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .client
            .query("SELECT seq, prev_hash, hash, body FROM sovra_audit WHERE seq >= $1 ORDER BY seq LIMIT $2", &[&to_i64(from), &limit(n)])
            .await
            .map_err(backend)?;
        conn.release();
        let fix = |v: Vec<u8>| <[u8; 32]>::try_from(v.as_slice()).unwrap_or([0xff; 32]);
        Ok(rows
            .iter()
            .map(|r| {
                // A row that does not decode is a broken link for the chain check, not a panic.
                let seq: i64 = r.try_get(0).unwrap_or(0);
                let bytes = |i: usize| r.try_get::<_, Vec<u8>>(i).unwrap_or_default();
                AuditRow {
                    seq: u64::try_from(seq).unwrap_or(0),
                    prev_hash: fix(bytes(1)),
                    hash: fix(bytes(2)),
                    body: bytes(3),
                }
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.client
            .query_one("SELECT 1", &[])
            .await
            .map_err(backend)?;
        conn.release();
        Ok(())
    }
}
