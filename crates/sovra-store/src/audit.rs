//! The hash chain of the audit log.
//!
//! Keyed (every record Sovra writes through its sealed store):
//! `hash(n) = HMAC-SHA256(K, "sovra-audit-v2" || hash(n-1) || seq(n) as u64 BE || body(n))`,
//! where `K` is derived from the HSM-wrapped row MAC key, so someone who can write the database
//! but not use the HSM cannot append, edit or recompute a record. Unkeyed (records written
//! before the chain was keyed): `hash(n) = SHA-256("sovra-audit-v1" || …)`. `hash(0)` = 32 zero
//! bytes. Editing, removing or reordering any record breaks every later link; once a record is
//! keyed, every later one must be.

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position, from 1.
    pub seq: u64,
    /// Hash of the previous record.
    pub prev_hash: [u8; 32],
    /// This record's hash.
    pub hash: [u8; 32],
    /// The event (JSON).
    pub body: Vec<u8>,
}

/// The key of the keyed chain (redacted in `Debug`).
#[derive(Clone)]
pub struct ChainKey(aws_lc_rs::hmac::Key);

impl ChainKey {
    /// A chain key from 32 secret bytes.
    pub fn new(secret: &[u8]) -> Self {
        Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            secret,
        ))
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl PartialEq for ChainKey {
    /// Keys are never compared; batches that carry one compare equal on their contents.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ChainKey {}

/// The keyed hash of record `seq` with body `body` after a record hashed `prev`.
pub fn keyed_chain_hash(key: &ChainKey, prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key.0);
    ctx.update(b"sovra-audit-v2");
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(body);
    let t = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(t.as_ref());
    out
}

/// The hash of the record `seq` a store appends: keyed when the batch carries a key.
pub fn link(key: Option<&ChainKey>, prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    match key {
        Some(k) => keyed_chain_hash(k, prev, seq, body),
        None => chain_hash(prev, seq, body),
    }
}

/// The unkeyed hash of record `seq` with body `body` after a record hashed `prev`.
pub fn chain_hash(prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"sovra-audit-v1");
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(body);
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The result of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Records checked.
    pub records: u64,
    /// The first record whose link does not hold, and why.
    pub first_broken: Option<(u64, String)>,
    /// Hash of the last record.
    pub head: [u8; 32],
}

/// Incremental chain checker: feed records in order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev: [u8; 32],
    next_seq: u64,
    records: u64,
    broken: Option<(u64, String)>,
    key: Option<ChainKey>,
    /// Records from here on must be keyed (known from the anchor, or from the first keyed
    /// record seen).
    keyed_from: Option<u64>,
}

impl Default for ChainVerifier {
    /// A checker of an unkeyed chain from its start.
    fn default() -> Self {
        Self {
            prev: [0; 32],
            next_seq: 1,
            records: 0,
            broken: None,
            key: None,
            keyed_from: None,
        }
    }
}

impl ChainVerifier {
    /// A checker from the chain's start that knows the chain key (`None`: keyed records
    /// cannot be checked and are reported as broken) and, if known, the first record that had
    /// to be keyed.
    pub fn new(key: Option<ChainKey>, keyed_from: Option<u64>) -> Self {
        Self {
            key,
            keyed_from,
            ..Self::default()
        }
    }

    /// The same checker, continuing after record `seq`, whose hash was `hash`.
    pub fn resume(mut self, seq: u64, hash: [u8; 32]) -> Self {
        self.prev = hash;
        self.next_seq = seq + 1;
        self.records = seq;
        self
    }

    /// Checks the next record.
    pub fn push(&mut self, row: &AuditRow) {
        self.records += 1;
        if self.broken.is_some() {
            return;
        }
        let problem = if row.seq != self.next_seq {
            Some(format!(
                "expected record {} but found record {} (a record was removed or reordered)",
                self.next_seq, row.seq
            ))
        } else if row.prev_hash != self.prev {
            Some("its previous-hash field does not match the preceding record (a record before it was edited, removed or reordered)".to_owned())
        } else {
            self.check_link(row)
        };
        if let Some(p) = problem {
            self.broken = Some((self.next_seq.min(row.seq), p));
        }
        self.prev = row.hash;
        self.next_seq = row.seq + 1;
    }

    /// Whether the record's hash is its keyed hash, or (before the chain became keyed) its
    /// unkeyed one.
    fn check_link(&mut self, row: &AuditRow) -> Option<String> {
        if let Some(k) = &self.key
            && keyed_chain_hash(k, &row.prev_hash, row.seq, &row.body) == row.hash
        {
            self.keyed_from.get_or_insert(row.seq);
            return None;
        }
        let must_be_keyed = self.keyed_from.is_some_and(|from| row.seq >= from);
        if !must_be_keyed && chain_hash(&row.prev_hash, row.seq, &row.body) == row.hash {
            return None;
        }
        Some(match (&self.key, must_be_keyed) {
            (None, _) => "its hash is not the unkeyed hash of its content: it was edited, or it is keyed and this check was run without the HSM (run it on the server, or offline with the HSM configured)".to_owned(),
            (Some(_), true) => "its hash is not the keyed hash of its content: it was edited, or written by someone without the HSM-held chain key".to_owned(),
            (Some(_), false) => "its content does not match its hash (the record was edited)".to_owned(),
        })
    }

    /// The first record that had to be keyed, if known.
    pub fn keyed_from(&self) -> Option<u64> {
        self.keyed_from
    }

    /// The result so far.
    pub fn finish(self) -> ChainCheck {
        ChainCheck {
            records: self.records,
            first_broken: self.broken,
            head: self.prev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(key: Option<&ChainKey>, bodies: &[&[u8]], from: u64) -> Vec<AuditRow> {
        let mut prev = [0u8; 32];
        let mut out = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let seq = i as u64 + 1;
            let k = key.filter(|_| seq >= from);
            let hash = link(k, &prev, seq, b);
            out.push(AuditRow {
                seq,
                prev_hash: prev,
                hash,
                body: b.to_vec(),
            });
            prev = hash;
        }
        out
    }

    fn check(v: &mut ChainVerifier, rows: &[AuditRow]) -> Option<u64> {
        rows.iter().for_each(|r| v.push(r));
        v.clone().finish().first_broken.map(|b| b.0)
    }

    #[test]
    fn a_keyed_chain_cannot_be_recomputed_without_the_key() {
        let k = ChainKey::new(&[7; 32]);
        let rows = chain(Some(&k), &[b"a", b"b", b"c"], 1);
        assert_eq!(
            check(&mut ChainVerifier::new(Some(k.clone()), Some(1)), &rows),
            None
        );
        // Someone without the key drops record 2 and recomputes the rest, unkeyed or with
        // another key: record 2 is reported.
        let forged = chain(None, &[b"a", b"c"], 1);
        let mut v = ChainVerifier::new(Some(k.clone()), Some(1));
        assert_eq!(check(&mut v, &forged), Some(1));
        let other = chain(Some(&ChainKey::new(&[8; 32])), &[b"a", b"c"], 1);
        assert_eq!(
            check(&mut ChainVerifier::new(Some(k.clone()), None), &other),
            Some(1)
        );
        // Without the key, keyed records cannot be checked.
        let mut v = ChainVerifier::default();
        assert_eq!(check(&mut v, &rows), Some(1));
    }

    #[test]
    fn an_upgraded_chain_is_unkeyed_up_to_its_first_keyed_record_only() {
        let k = ChainKey::new(&[7; 32]);
        let rows = chain(Some(&k), &[b"old1", b"old2", b"new3", b"new4"], 3);
        let mut v = ChainVerifier::new(Some(k.clone()), None);
        assert_eq!(check(&mut v, &rows), None);
        assert_eq!(v.keyed_from(), Some(3));
        // After a keyed record, an unkeyed one is a forgery…
        let mut tail = rows.clone();
        tail.truncate(3);
        let h = chain_hash(&tail[2].hash, 4, b"forged");
        tail.push(AuditRow {
            seq: 4,
            prev_hash: tail[2].hash,
            hash: h,
            body: b"forged".to_vec(),
        });
        assert_eq!(
            check(&mut ChainVerifier::new(Some(k.clone()), None), &tail),
            Some(4)
        );
        // …and so is every unkeyed record from the anchored start of keying, even if the
        // keyed records were all replaced.
        let unkeyed = chain(None, &[b"old1", b"old2", b"x3"], 1);
        assert_eq!(
            check(&mut ChainVerifier::new(Some(k), Some(3)), &unkeyed),
            Some(3)
        );
    }
}
