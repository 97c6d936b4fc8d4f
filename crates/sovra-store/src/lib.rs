//! Sovra's storage boundary: the [`Store`] trait, and its SQLite and PostgreSQL implementations.
//!
//! The store is a small versioned document store. Records live in named collections, each with
//! a name, a parent (for listing), a revision, a JSON body and an optional due time (for
//! scheduled work such as rotation and destruction). Reads are plain methods that return
//! values; every write goes through one atomic [`WriteBatch`] whose operations can require a
//! record to be absent or at a given revision (optimistic concurrency). A batch may also append
//! records to the hash-chained audit log in the same transaction, so an acknowledged change and
//! its audit record are committed together or not at all.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod batch;
pub mod conformance;
pub mod error;
pub mod postgres;
pub mod postgres_tls;
pub mod sqlite;

pub use audit::AuditRow;
pub use batch::{Expect, Op, WriteBatch};
pub use error::StoreError;

/// A collection of records, named by the service layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collection(pub &'static str);

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Unique name within the collection.
    pub name: String,
    /// Parent name (listing key).
    pub parent: String,
    /// Revision, from 1, incremented by every write.
    pub rev: u64,
    /// The body (JSON).
    pub data: Vec<u8>,
    /// When scheduled work on this record is due (Unix seconds), if any.
    pub due: Option<i64>,
}

/// The result of a committed batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Committed {
    /// New revision of each put, in batch order (0 for deletes).
    pub revs: Vec<u64>,
    /// Sequence numbers of the appended audit records.
    pub audit_seqs: Vec<u64>,
}

/// Sovra's state store.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Backend name (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// One record by name.
    async fn get(&self, c: Collection, name: &str) -> Result<Option<Record>, StoreError>;

    /// Records with `parent`, ordered by name, after `after` (exclusive), at most `limit`.
    async fn list(
        &self,
        c: Collection,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// All records of a collection, ordered by name, after `after` (exclusive), at most `limit`.
    async fn scan(
        &self,
        c: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// Records whose due time is at or before `now`, earliest first, at most `limit`.
    async fn due(&self, c: Collection, now: i64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// Applies a batch atomically, or fails without applying anything.
    async fn commit(&self, batch: WriteBatch) -> Result<Committed, StoreError>;

    /// Audit records with `seq >= from`, in order, at most `limit`.
    async fn audit_range(&self, from: u64, limit: usize) -> Result<Vec<AuditRow>, StoreError>;

    /// Whether the store is reachable (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The key this store's audit records are chained with (`None`: an unkeyed chain; the
    /// sealed store above the drivers holds the key).
    fn chain_key(&self) -> Option<audit::ChainKey> {
        None
    }
}
