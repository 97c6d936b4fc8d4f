//! A small time-bounded cache for metadata read on hot paths.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries expire `ttl` after insertion; the map is cleared if it grows past `max`.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    map: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// A fresh entry, if any.
    pub fn get<Q>(&self, k: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let m = self.map.read().ok()?;
        let (v, at) = m.get(k)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// Inserts or replaces an entry.
    pub fn put(&self, k: K, v: V) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.max {
                m.clear();
            }
            m.insert(k, (v, Instant::now()));
        }
    }

    /// Removes an entry.
    pub fn remove<Q>(&self, k: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Ok(mut m) = self.map.write() {
            m.remove(k);
        }
    }

    /// Removes every entry whose key matches `pred` (e.g. all keys under a changed key ring).
    pub fn remove_where(&self, pred: impl Fn(&K) -> bool) {
        if let Ok(mut m) = self.map.write() {
            m.retain(|k, _| !pred(k));
        }
    }
}
