//! The hash chain of the audit log.
//!
//! `hash(n) = SHA-256("sovra-audit-v1" || hash(n-1) || seq(n) as u64 BE || body(n))`, with
//! `hash(0)` = 32 zero bytes. Editing, removing or reordering any record breaks every later link.

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

/// The hash of record `seq` with body `body` after a record hashed `prev`.
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
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            prev: [0; 32],
            next_seq: 1,
            records: 0,
            broken: None,
        }
    }
}

impl ChainVerifier {
    /// A checker that continues after record `seq`, whose hash was `hash`.
    pub fn resume(seq: u64, hash: [u8; 32]) -> Self {
        Self {
            prev: hash,
            next_seq: seq + 1,
            records: seq,
            broken: None,
        }
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
        } else if chain_hash(&row.prev_hash, row.seq, &row.body) != row.hash {
            Some("its content does not match its hash (the record was edited)".to_owned())
        } else {
            None
        };
        if let Some(p) = problem {
            self.broken = Some((self.next_seq.min(row.seq), p));
        }
        self.prev = row.hash;
        self.next_seq = row.seq + 1;
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
