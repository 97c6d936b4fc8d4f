//! Typed audit events, appended to the hash-chained log; verification and export.
//!
//! Writers go through one bounded queue (group commit): when the store falls behind, callers
//! wait for a place instead of the queue growing without bound. Repeated denials (failed
//! authentications, refused permissions) are aggregated: the first of a kind is recorded at
//! once, the rest are counted and recorded as one summary per window, so a flood of bad
//! requests costs a few records, not one each.

use crate::error::Result;
use crate::services::actions::Action;
use serde::Serialize;
use sovra_store::audit::{ChainCheck, ChainVerifier};
use sovra_store::{Store, WriteBatch};
use std::sync::Arc;

/// What kind of event.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An administrative change (keys, versions, tokens, roles, settings, policies).
    Admin,
    /// A request refused: authentication, authorization or quota.
    Denied,
    /// A data-plane operation on a key ring with data-access auditing on.
    DataAccess,
    /// Work done by the server itself (scheduled rotation and destruction, start-up).
    System,
    /// An attestation or key-release decision.
    Decision,
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Event time, RFC 3339.
    pub time: String,
    /// Kind.
    pub kind: EventKind,
    /// Action, e.g. `cryptoKeys.create`.
    pub action: Action,
    /// The principal, if authenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The resource acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: &'static str,
    /// Error code for denials and failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Extra detail.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event of `kind` for `action` at `now`.
    pub fn new(now: i64, kind: EventKind, action: Action) -> Self {
        Self {
            time: crate::clock::rfc3339(now),
            kind,
            action,
            principal: None,
            resource: None,
            outcome: "ok",
            code: None,
            detail: serde_json::Value::Null,
        }
    }

    /// Sets the principal.
    pub fn principal(mut self, p: &str) -> Self {
        self.principal = Some(p.to_owned());
        self
    }

    /// Sets the resource.
    pub fn resource(mut self, r: impl Into<String>) -> Self {
        self.resource = Some(r.into());
        self
    }

    /// Marks the event denied with `code`.
    pub fn denied(mut self, code: &str) -> Self {
        self.outcome = "denied";
        self.code = Some(code.to_owned());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }

    /// Marks the event as standing for `count` denials of its kind (since `since`, for a
    /// summary).
    fn repeated(mut self, count: u64, since: Option<&str>) -> Self {
        if let serde_json::Value::Object(m) = &mut self.detail {
            m.insert("count".into(), count.into());
            if let Some(t) = since {
                m.insert("since".into(), t.into());
            }
        } else {
            let mut m = serde_json::Map::new();
            m.insert("count".into(), count.into());
            if let Some(t) = since {
                m.insert("since".into(), t.into());
            }
            self.detail = serde_json::Value::Object(m);
        }
        self
    }

    /// The stored body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// The audit service.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
    writer: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<Pending>>>,
    denials: Arc<Denials>,
    anchor: Option<super::anchor::Anchor>,
    /// What the last comparison with the anchor found (broken: a warning until fixed).
    anchor_finding: Arc<std::sync::Mutex<Option<super::anchor::Finding>>>,
}

/// Records that may wait for the group commit; past that, writers wait.
const QUEUE: usize = 4096;

/// How long repeated denials of one kind are counted before a summary is recorded.
const DENIAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Most kinds of denial counted at once; beyond it, they share one bucket.
const DENIAL_KINDS: usize = 10_000;

/// Repeated denials being counted: per kind, the first event, how many followed, since when.
#[derive(Debug, Default)]
struct Denials {
    map: std::sync::Mutex<std::collections::HashMap<String, Counted>>,
}

#[derive(Debug)]
struct Counted {
    last: AuditEvent,
    count: u64,
    since: std::time::Instant,
    since_time: String,
}

impl Denials {
    /// Notes a denial of kind `key`; returns what to record now, if anything.
    fn note(&self, key: String, ev: AuditEvent) -> Option<AuditEvent> {
        let Ok(mut m) = self.map.lock() else {
            return Some(ev);
        };
        let key = if m.len() >= DENIAL_KINDS && !m.contains_key(&key) {
            "(other)".to_string()
        } else {
            key
        };
        match m.get_mut(&key) {
            None => {
                m.insert(
                    key,
                    Counted {
                        last: ev.clone(),
                        count: 0,
                        since: std::time::Instant::now(),
                        since_time: ev.time.clone(),
                    },
                );
                Some(ev.repeated(1, None))
            }
            Some(c) if c.since.elapsed() < DENIAL_WINDOW => {
                c.count += 1;
                c.last = ev;
                None
            }
            Some(c) => {
                let summary = ev.clone().repeated(c.count + 1, Some(&c.since_time));
                c.count = 0;
                c.since = std::time::Instant::now();
                c.since_time = ev.time.clone();
                c.last = ev;
                Some(summary)
            }
        }
    }

    /// Summaries of windows that have ended; forgets kinds that went quiet.
    fn drain(&self) -> Vec<AuditEvent> {
        let Ok(mut m) = self.map.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        m.retain(|_, c| {
            if c.since.elapsed() < DENIAL_WINDOW {
                return true;
            }
            if c.count > 0 {
                out.push(c.last.clone().repeated(c.count, Some(&c.since_time)));
            }
            false
        });
        out
    }
}

/// A record waiting for the group commit.
#[derive(Debug)]
struct Pending {
    body: Vec<u8>,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

/// Most records in one group commit.
const GROUP_MAX: usize = 256;

/// Commits queued records together: one transaction (one fsync) for everything that arrived
/// while the previous commit ran. Each caller still waits for its own record to be durable.
async fn group_writer(store: Arc<dyn Store>, mut rx: tokio::sync::mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut b = WriteBatch::new();
        for p in &batch {
            b.audit(p.body.clone());
        }
        let res = store
            .commit(b)
            .await
            .map(|_| ())
            .map_err(crate::error::Error::from);
        for p in batch {
            let _ = p.done.send(res.clone());
        }
    }
}

impl Audit {
    /// An audit service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            writer: Arc::default(),
            denials: Arc::default(),
            anchor: None,
            anchor_finding: Arc::default(),
        }
    }

    /// Keeps checkpoints of the log's head in `anchor`.
    pub fn with_anchor(mut self, anchor: super::anchor::Anchor) -> Self {
        self.anchor = Some(anchor);
        self
    }

    /// Checks the records since the last checkpoint and advances it (the scheduler runs this).
    pub async fn advance_anchor(&self, now: i64) -> Result<()> {
        self.advance(now, false).await
    }

    /// The first advance of a process: `had_history` says the log held records before this
    /// start (so a missing anchor file is worth a warning).
    pub async fn advance_anchor_at_start(&self, now: i64, had_history: bool) -> Result<()> {
        self.advance(now, had_history).await
    }

    async fn advance(&self, now: i64, had_history: bool) -> Result<()> {
        let Some(anchor) = &self.anchor else {
            return Ok(());
        };
        let had_anchor = anchor.path.exists();
        let anchored_before = matches!(
            self.anchor_finding.lock().ok().as_deref(),
            Some(Some(super::anchor::Finding::Holds(_)))
        );
        let finding = super::anchor::advance(self.store.as_ref(), anchor, now).await?;
        if let super::anchor::Finding::Holds(cp) = &finding
            && !had_anchor
            && (had_history || anchored_before)
        {
            // A log with history and no anchor: the first start of a version that anchors, or
            // someone removed the anchor file. Said, and recorded (itself then anchored).
            tracing::warn!(
                records = cp.seq,
                path = %anchor.path.display(),
                "no audit anchor was found: the log was anchored as it is now; if this is not the first start since upgrading, the anchor file was removed"
            );
            self.record_best_effort(
                AuditEvent::new(now, EventKind::System, Action::AuditAnchorStarted).detail(
                    serde_json::json!({"records": cp.seq, "head": sovra_proto::hex::encode(&cp.hash)}),
                ),
            )
            .await;
        }
        if let Ok(mut f) = self.anchor_finding.lock() {
            // Said once when it is found (it stays a /readyz warning), not at every tick.
            if let super::anchor::Finding::Broken(seq, why) = &finding
                && !matches!(&*f, Some(super::anchor::Finding::Broken(..)))
            {
                tracing::error!(seq, "the audit log does not match its anchor: {why}");
            }
            *f = Some(finding);
        }
        Ok(())
    }

    /// The current checkpoint, if any.
    pub fn checkpoint(&self) -> Result<Option<super::anchor::Checkpoint>> {
        match &self.anchor {
            Some(a) => a.load(),
            None => Ok(None),
        }
    }

    /// A warning while the log does not match its anchor.
    pub fn anchor_warning(&self) -> Option<String> {
        match self.anchor_finding.lock().ok()?.as_ref()? {
            super::anchor::Finding::Broken(seq, why) => Some(format!(
                "the audit log does not match its anchor at record {seq}: {why}; run `sovra audit verify`"
            )),
            super::anchor::Finding::None | super::anchor::Finding::Holds(_) => None,
        }
    }

    /// Appends one event on its own; returns once it is durable. Concurrent calls share a
    /// commit (group commit).
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        let tx = self.writer.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
            tokio::spawn(group_writer(self.store.clone(), rx));
            tx
        });
        let (done, wait) = tokio::sync::oneshot::channel();
        if tx
            .send(Pending {
                body: event.body(),
                done,
            })
            .await
            .is_err()
        {
            return Err(crate::error::Error::internal(
                "the audit writer has stopped",
            ));
        }
        wait.await
            .map_err(|_| crate::error::Error::internal("the audit writer has stopped"))?
    }

    /// Appends one event, logging (not returning) a failure: for denials, where the request is
    /// refused anyway.
    pub async fn record_best_effort(&self, event: AuditEvent) {
        if let Err(e) = self.record(event).await {
            tracing::error!(error = %e, "could not append audit record");
        }
    }

    /// Records a denial of kind `key` (e.g. failed authentications from one source): the first
    /// at once, repeats as one summary per window.
    pub async fn record_denial(&self, key: String, event: AuditEvent) {
        if let Some(ev) = self.denials.note(key, event) {
            self.record_best_effort(ev).await;
        }
    }

    /// Records the summaries of denial windows that have ended (run by the scheduler).
    pub async fn flush_denials(&self) {
        for ev in self.denials.drain() {
            self.record_best_effort(ev).await;
        }
    }

    /// Checks the whole chain, and that it extends the anchored checkpoint.
    pub async fn verify(&self) -> Result<ChainCheck> {
        verify_anchored(
            self.store.as_ref(),
            self.anchor.as_ref(),
            self.store.chain_key(),
        )
        .await
    }

    /// Records from `from` (inclusive), at most `limit`.
    pub async fn export(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<sovra_proto::admin::AuditRecord>> {
        let rows = self.store.audit_range(from, limit).await?;
        Ok(rows.into_iter().map(to_record).collect())
    }
}

/// Converts a stored row to its exported form.
pub fn to_record(r: sovra_store::AuditRow) -> sovra_proto::admin::AuditRecord {
    sovra_proto::admin::AuditRecord {
        seq: r.seq,
        prev_hash: sovra_proto::hex::encode(&r.prev_hash),
        hash: sovra_proto::hex::encode(&r.hash),
        event: serde_json::from_slice(&r.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&r.body).into_owned())
        }),
    }
}

/// Checks every link of the chain in `store` (keyed links with `key`) and, with an anchor,
/// that the log still holds the checkpointed head (not cut short, not rewritten).
pub async fn verify_anchored(
    store: &dyn Store,
    anchor: Option<&super::anchor::Anchor>,
    key: Option<sovra_store::audit::ChainKey>,
) -> Result<ChainCheck> {
    let cp = match anchor {
        Some(a) => a.load()?,
        None => None,
    };
    let mut c = verify_store(
        store,
        ChainVerifier::new(key, cp.and_then(|c| c.keyed_from)),
    )
    .await?;
    if c.first_broken.is_none()
        && let Some(cp) = cp
        && let super::anchor::Finding::Broken(seq, why) =
            super::anchor::compare(store, c.records, &cp).await?
    {
        c.first_broken = Some((seq, why));
    }
    Ok(c)
}

/// Checks every link of the chain in `store` with `v`, reading in pages.
async fn verify_store(store: &dyn Store, mut v: ChainVerifier) -> Result<ChainCheck> {
    let mut from = 1;
    loop {
        let rows = store.audit_range(from, 1000).await?;
        let Some(last) = rows.last() else { break };
        from = last.seq + 1;
        rows.iter().for_each(|r| v.push(r));
    }
    Ok(v.finish())
}
