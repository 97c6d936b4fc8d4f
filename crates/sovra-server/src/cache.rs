//! The server's one time-bounded cache, for metadata read on hot paths and for memos of recent
//! events (fetches that failed, refreshes tried).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries expire `ttl` after insertion; the map is cleared if it grows past `max`, so memory
/// stays bounded whatever the keys.
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

    /// Inserts `v` under `k` unless a fresh entry is there: `true` if this call inserted it
    /// (a memo: "do this at most once per `ttl`").
    pub fn claim(&self, k: K, v: V) -> bool {
        let Ok(mut m) = self.map.write() else {
            return false;
        };
        if m.get(&k).is_some_and(|(_, at)| at.elapsed() < self.ttl) {
            return false;
        }
        if m.len() >= self.max {
            let ttl = self.ttl;
            m.retain(|_, (_, at)| at.elapsed() < ttl);
            if m.len() >= self.max {
                m.clear();
            }
        }
        m.insert(k, (v, Instant::now()));
        true
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

    /// Removes every entry that matches `pred` (e.g. all keys under a changed key ring).
    pub fn remove_where(&self, pred: impl Fn(&K, &V) -> bool) {
        if let Ok(mut m) = self.map.write() {
            m.retain(|k, (v, _)| !pred(k, v));
        }
    }

    /// Removes every entry.
    pub fn clear(&self) {
        if let Ok(mut m) = self.map.write() {
            m.clear();
        }
    }
}

/// One value with a time to live.
#[derive(Debug)]
pub struct TtlCell<V>(TtlCache<(), V>);

impl<V: Clone> TtlCell<V> {
    /// Empty.
    pub fn new(ttl: Duration) -> Self {
        Self(TtlCache::new(ttl, 1))
    }

    /// The value, if fresh.
    pub fn get(&self) -> Option<V> {
        self.0.get(&())
    }

    /// Stores a value.
    pub fn put(&self, v: V) {
        self.0.put((), v);
    }

    /// Drops the value.
    pub fn invalidate(&self) {
        self.0.clear();
    }
}

/// How fast a [`TokenBucket`] refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Tokens held at most (the burst).
    pub burst: f64,
}

/// A token bucket (its rate is kept by its owner, so a map of buckets stores two words each).
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            at: now,
        }
    }

    /// Refills to `now`, then takes one token if there is one (only checks, when `spend` is
    /// false); otherwise says how many seconds until there is.
    pub fn take(&mut self, rate: Rate, now: Instant, spend: bool) -> Result<(), f64> {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate.per_second).min(rate.burst);
        self.at = now;
        if self.tokens < 1.0 {
            return Err((1.0 - self.tokens) / rate.per_second);
        }
        if spend {
            self.tokens -= 1.0;
        }
        Ok(())
    }

    /// Whether the bucket has refilled completely by `now` (it can be forgotten).
    pub fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second
            >= rate.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_bursts_then_sustains_its_rate() {
        let rate = Rate {
            per_second: 2.0,
            burst: 3.0,
        };
        let t0 = Instant::now();
        let mut b = TokenBucket::full(rate, t0);
        for _ in 0..3 {
            b.take(rate, t0, true).unwrap();
        }
        let wait = b.take(rate, t0, true).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        assert!(!b.is_full(rate, t0));
        let later = t0 + Duration::from_millis(500);
        b.take(rate, later, false).unwrap();
        b.take(rate, later, true).unwrap();
        assert!(b.take(rate, later, true).is_err());
        assert!(b.is_full(rate, later + Duration::from_secs(2)));
    }

    #[test]
    fn a_claim_holds_for_the_ttl_and_memory_stays_bounded() {
        let c: TtlCache<u32, ()> = TtlCache::new(Duration::from_secs(60), 4);
        assert!(c.claim(1, ()));
        assert!(!c.claim(1, ()));
        for k in 2..10 {
            c.claim(k, ());
        }
        assert!(c.map.read().unwrap().len() <= 4);
        c.remove_where(|k, _| *k > 5);
        assert!(c.map.read().unwrap().keys().all(|k| *k <= 5));
    }
}
