//! The typed record layer between the services and the [`Store`]: each record type knows its
//! store name, parent and due time, and each table names its record type, so services read and
//! write records, never rows (serialisation and the compare-and-set expectations live here).
//!
//! ```ignore
//! let ring = Records::of(&*store).get(model::KEY_RINGS, &name).await?;   // Option<Row<KeyRingRec>>
//! let mut b = WriteBatch::new();
//! b.update(model::KEY_RINGS, &ring.value, ring.rev)?;                     // Expect::Rev
//! store.commit(b).await?;
//! ```

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sovra_store::{Collection, Expect, Store, WriteBatch};
use std::marker::PhantomData;

/// A record kept in the store.
pub trait Record: Serialize + DeserializeOwned {
    /// Its name in its table.
    fn name(&self) -> String;
    /// The name it is listed under (default: none).
    fn parent(&self) -> String {
        String::new()
    }
    /// When scheduled work on it is due (default: never).
    fn due(&self) -> Option<i64> {
        None
    }
}

/// A table: a store collection holding records of type `T`.
pub struct Table<T> {
    collection: Collection,
    _t: PhantomData<fn() -> T>,
}

impl<T> Table<T> {
    /// The table kept in `collection`.
    pub const fn new(collection: &'static str) -> Self {
        Self {
            collection: Collection(collection),
            _t: PhantomData,
        }
    }

    /// Its store collection.
    pub const fn collection(&self) -> Collection {
        self.collection
    }
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Table<T> {}

impl<T> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.collection.0)
    }
}

/// A record as read, with its store name and revision (for a later compare-and-set).
#[derive(Debug, Clone)]
pub struct Row<T> {
    /// Its store name.
    pub name: String,
    /// Its revision.
    pub rev: u64,
    /// The record.
    pub value: T,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::internal(format!("serialise: {e}")))
}

fn decode<T: DeserializeOwned>(c: Collection, r: sovra_store::Record) -> Result<Row<T>> {
    let value = serde_json::from_slice(&r.data).map_err(|e| {
        Error::internal(format!(
            "stored record {} {:?} does not parse: {e}",
            c.0, r.name
        ))
    })?;
    Ok(Row {
        name: r.name,
        rev: r.rev,
        value,
    })
}

/// Typed reads of a store.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a>(&'a dyn Store);

impl<'a> Records<'a> {
    /// Reads of `store`.
    pub fn of(store: &'a dyn Store) -> Self {
        Self(store)
    }

    /// The record `name` of `t`, if any.
    pub async fn get<T: DeserializeOwned>(self, t: Table<T>, name: &str) -> Result<Option<Row<T>>> {
        self.0
            .get(t.collection, name)
            .await?
            .map(|r| decode(t.collection, r))
            .transpose()
    }

    /// The records of `t` listed under `parent`, by name, after `after`, at most `limit`.
    pub async fn list<T: DeserializeOwned>(
        self,
        t: Table<T>,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Row<T>>> {
        let rows = self.0.list(t.collection, parent, after, limit).await?;
        rows.into_iter().map(|r| decode(t.collection, r)).collect()
    }

    /// All records of `t`, by name, after `after`, at most `limit`.
    pub async fn scan<T: DeserializeOwned>(
        self,
        t: Table<T>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Row<T>>> {
        let rows = self.0.scan(t.collection, after, limit).await?;
        rows.into_iter().map(|r| decode(t.collection, r)).collect()
    }

    /// The records of `t` whose due time is at or before `now`, earliest first.
    pub async fn due<T: DeserializeOwned>(
        self,
        t: Table<T>,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Row<T>>> {
        let rows = self.0.due(t.collection, now, limit).await?;
        rows.into_iter().map(|r| decode(t.collection, r)).collect()
    }
}

/// Typed writes into a batch.
pub trait Writes {
    /// Writes `v` into `t` under `expect`.
    fn write<T: Record>(&mut self, t: Table<T>, v: &T, expect: Expect) -> Result<&mut Self>;

    /// Adds `v` to `t`; the batch fails if a record of that name exists.
    fn create<T: Record>(&mut self, t: Table<T>, v: &T) -> Result<&mut Self> {
        self.write(t, v, Expect::Absent)
    }

    /// Replaces the record of `t` read at revision `rev` with `v`; the batch fails if it
    /// changed meanwhile.
    fn update<T: Record>(&mut self, t: Table<T>, v: &T, rev: u64) -> Result<&mut Self> {
        self.write(t, v, Expect::Rev(rev))
    }

    /// Removes the record `name` of `t` under `expect`.
    fn remove<T>(&mut self, t: Table<T>, name: impl Into<String>, expect: Expect) -> &mut Self;
}

impl Writes for WriteBatch {
    fn write<T: Record>(&mut self, t: Table<T>, v: &T, expect: Expect) -> Result<&mut Self> {
        Ok(self.put(
            t.collection,
            v.name(),
            v.parent(),
            encode(v)?,
            v.due(),
            expect,
        ))
    }

    fn remove<T>(&mut self, t: Table<T>, name: impl Into<String>, expect: Expect) -> &mut Self {
        self.delete(t.collection, name, expect)
    }
}
