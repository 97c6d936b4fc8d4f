//! The audit anchor: a checkpoint of the audit log's head (sequence number and hash), sealed by
//! the HSM (authenticated under the default location's wrapping key) and kept beside the HSM's
//! state in the data directory, where a database writer cannot roll it back.
//!
//! The hash chain alone detects an edited, removed or reordered record, but not a log that was
//! cut short at its end, or deleted whole, or recomputed from scratch: the remaining records
//! still link. The checkpoint says "the log had N records ending in hash H at time T", so a
//! log with fewer records, or another record N, is reported as broken. Checkpoints advance every
//! scheduler tick (5 s by default) and at shutdown, each only after the records since the last
//! one were checked to extend it; a record written since the last checkpoint can still be
//! removed unnoticed (not edited: the chain is keyed). The checkpoint also keeps where the
//! keyed chain began, so a log cannot pass off its keyed records as older unkeyed ones. `GET /v1/audit:checkpoint` exports the checkpoint, signed by the token
//! key, for anchoring off the box.

use crate::error::{Error, Result};
use sovra_hsm::Hsm;
use sovra_store::Store;
use sovra_store::audit::ChainVerifier;
use std::path::PathBuf;
use std::sync::Arc;

const AAD: &[u8] = b"sovra:audit-checkpoint:v1";

/// A sealed checkpoint of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// When the checkpoint was taken (Unix seconds).
    pub time: i64,
    /// The first record of the keyed chain: every record from it on must be keyed (`None`:
    /// not known yet, an anchor written before the chain was keyed).
    pub keyed_from: Option<u64>,
}

/// Where checkpoints are kept and what seals them.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The checkpoint file.
    pub path: PathBuf,
    /// The HSM whose key seals it.
    pub hsm: Arc<dyn Hsm>,
    /// The location whose wrapping key seals it.
    pub location: String,
}

impl Anchor {
    /// The checkpoint on file, if any; an unreadable or unsealable file is an error (someone
    /// replaced it, or it belongs to another HSM).
    pub fn load(&self) -> Result<Option<Checkpoint>> {
        let blob = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::internal(format!("reading the audit anchor: {e}"))),
        };
        let plain = self.hsm.unwrap(&self.location, AAD, &blob).map_err(|_| {
            Error::new(
                sovra_proto::ErrorCode::IntegrityFailure,
                format!(
                    "the audit anchor {} does not unseal: it was replaced, or belongs to another HSM",
                    self.path.display()
                ),
            )
        })?;
        let p = plain.expose();
        let (Some(seq), Some(hash), Some(time)) = (p.get(..8), p.get(8..40), p.get(40..48)) else {
            return Err(Error::internal("the audit anchor is too short"));
        };
        let mut h = [0u8; 32];
        h.copy_from_slice(hash);
        let u64_at = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        // Anchors written before the chain was keyed end after the time.
        let keyed_from = p.get(48..56).map(u64_at).filter(|&k| k > 0);
        Ok(Some(Checkpoint {
            seq: u64_at(seq),
            hash: h,
            time: i64::from_be_bytes(time.try_into().unwrap_or_default()),
            keyed_from,
        }))
    }

    /// Seals and writes `cp` (atomically, mode 0600).
    pub fn save(&self, cp: &Checkpoint) -> Result<()> {
        let mut plain = Vec::with_capacity(56);
        plain.extend_from_slice(&cp.seq.to_be_bytes());
        plain.extend_from_slice(&cp.hash);
        plain.extend_from_slice(&cp.time.to_be_bytes());
        plain.extend_from_slice(&cp.keyed_from.unwrap_or(0).to_be_bytes());
        let blob = self.hsm.wrap(&self.location, AAD, &plain)?;
        sovra_hsm::soft::write_private_file(&self.path, &blob)
            .map_err(|e| Error::internal(format!("writing the audit anchor: {e}")))
    }
}

/// What comparing the log with its checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// No checkpoint yet.
    None,
    /// The log extends the checkpoint.
    Holds(Checkpoint),
    /// The log does not: (the sequence number where it breaks, why).
    Broken(u64, String),
}

/// Compares the log in `store` (whose chain has `records` records) with `cp`.
pub async fn compare(store: &dyn Store, records: u64, cp: &Checkpoint) -> Result<Finding> {
    let when = crate::clock::rfc3339(cp.time);
    if records < cp.seq {
        return Ok(Finding::Broken(
            records + 1,
            format!(
                "the log ends at record {records}, but it had {} records at {when} (its anchor): records were removed from its end",
                cp.seq
            ),
        ));
    }
    if cp.seq == 0 {
        return Ok(Finding::Holds(*cp));
    }
    let row = store.audit_range(cp.seq, 1).await?;
    match row.first() {
        Some(r) if r.seq == cp.seq && r.hash == cp.hash => Ok(Finding::Holds(*cp)),
        _ => Ok(Finding::Broken(
            cp.seq,
            format!(
                "record {} is not the one anchored at {when}: the log was rewritten",
                cp.seq
            ),
        )),
    }
}

/// Advances the checkpoint to the log's head, after checking that the records since the last
/// checkpoint extend it (keyed with the store's chain key). Returns what was found.
pub async fn advance(store: &dyn Store, anchor: &Anchor, now: i64) -> Result<Finding> {
    let cp = anchor.load()?;
    let fresh = ChainVerifier::new(store.chain_key(), cp.and_then(|c| c.keyed_from));
    let mut v = match &cp {
        Some(cp) if cp.seq > 0 => {
            let row = store.audit_range(cp.seq, 1).await?;
            match row.first() {
                Some(r) if r.seq == cp.seq && r.hash == cp.hash => {}
                Some(_) | None => {
                    // Shorter than anchored, or rewritten: compare says which.
                    let head = last_seq(store).await?;
                    return compare(store, head, cp).await;
                }
            }
            fresh.resume(cp.seq, cp.hash)
        }
        _ => fresh,
    };
    let mut from = cp.map_or(1, |c| c.seq + 1);
    loop {
        let rows = store.audit_range(from, 1000).await?;
        let Some(last) = rows.last() else { break };
        from = last.seq + 1;
        rows.iter().for_each(|r| v.push(r));
    }
    let keyed_from = v.keyed_from();
    let check = v.finish();
    if let Some((seq, why)) = check.first_broken {
        return Ok(Finding::Broken(seq, why));
    }
    let next = Checkpoint {
        seq: check.records,
        hash: check.head,
        time: now,
        keyed_from,
    };
    if cp.is_none_or(|c| c.seq != next.seq || c.keyed_from != next.keyed_from) {
        anchor.save(&next)?;
    }
    Ok(Finding::Holds(next))
}

async fn last_seq(store: &dyn Store) -> Result<u64> {
    // The log is read in pages; its length is the last sequence number of a gapless chain.
    let mut from = 1;
    let mut last = 0;
    loop {
        let rows = store.audit_range(from, 1000).await?;
        let Some(r) = rows.last() else { break };
        last = r.seq;
        from = r.seq + 1;
    }
    Ok(last)
}
