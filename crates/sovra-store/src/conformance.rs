//! One conformance suite run against every [`Store`] implementation.
//!
//! It panics on the first violated property, so it is meant for tests only; it is public so each
//! backend's tests (and a backend in another crate) can run it.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use crate::audit::ChainVerifier;
use crate::error::{ConflictReason, StoreError};
use crate::{Collection, Expect, Store, WriteBatch};

const A: Collection = Collection("conformance_a");
const B: Collection = Collection("conformance_b");

/// Runs every check against `store`, which must be empty.
pub async fn run(store: &dyn Store) {
    store.ping().await.unwrap();
    crud(store).await;
    expectations(store).await;
    atomicity(store).await;
    listing(store).await;
    due(store).await;
    audit(store).await;
    concurrent_cas(store).await;
}

async fn crud(s: &dyn Store) {
    assert_eq!(s.get(A, "x").await.unwrap(), None);
    let mut b = WriteBatch::new();
    b.put(A, "x", "p", b"{\"v\":1}".to_vec(), None, Expect::Absent);
    let c = s.commit(b).await.unwrap();
    assert_eq!(c.revs, vec![1]);
    let r = s.get(A, "x").await.unwrap().unwrap();
    assert_eq!(
        (r.rev, r.parent.as_str(), r.data.as_slice()),
        (1, "p", &b"{\"v\":1}"[..])
    );
    assert_eq!(
        s.get(B, "x").await.unwrap(),
        None,
        "collections are separate"
    );
    let mut b = WriteBatch::new();
    b.put(A, "x", "p", b"2".to_vec(), None, Expect::Rev(1));
    assert_eq!(s.commit(b).await.unwrap().revs, vec![2]);
    let mut b = WriteBatch::new();
    b.delete(A, "x", Expect::Rev(2));
    s.commit(b).await.unwrap();
    assert_eq!(s.get(A, "x").await.unwrap(), None);
}

async fn expectations(s: &dyn Store) {
    let mut b = WriteBatch::new();
    b.put(A, "e", "p", b"1".to_vec(), None, Expect::Absent);
    s.commit(b).await.unwrap();
    let cases = [
        (Expect::Absent, ConflictReason::Exists),
        (Expect::Rev(7), ConflictReason::Changed),
    ];
    for (expect, reason) in cases {
        let mut b = WriteBatch::new();
        b.put(A, "e", "p", b"x".to_vec(), None, expect);
        match s.commit(b).await {
            Err(StoreError::Conflict { reason: r, .. }) => assert_eq!(r, reason),
            other => panic!("expected conflict {reason:?}, got {other:?}"),
        }
    }
    let mut b = WriteBatch::new();
    b.delete(A, "missing", Expect::Rev(1));
    assert!(matches!(
        s.commit(b).await,
        Err(StoreError::Conflict {
            reason: ConflictReason::Missing,
            ..
        })
    ));
    assert_eq!(s.get(A, "e").await.unwrap().unwrap().data, b"1");
}

async fn atomicity(s: &dyn Store) {
    let before = s.audit_range(1, 1_000_000).await.unwrap().len();
    let mut b = WriteBatch::new();
    b.put(A, "atom1", "p", b"1".to_vec(), None, Expect::Absent);
    b.put(A, "e", "p", b"x".to_vec(), None, Expect::Absent); // fails: exists
    b.audit(b"{\"event\":\"never\"}".to_vec());
    assert!(s.commit(b).await.is_err());
    assert_eq!(
        s.get(A, "atom1").await.unwrap(),
        None,
        "a failed batch applies nothing"
    );
    assert_eq!(
        s.audit_range(1, 1_000_000).await.unwrap().len(),
        before,
        "nor appends audit records"
    );
}

async fn listing(s: &dyn Store) {
    let mut b = WriteBatch::new();
    for i in 0..25 {
        b.put(
            B,
            format!("ring/{i:02}"),
            "ring",
            b"{}".to_vec(),
            None,
            Expect::Absent,
        );
    }
    b.put(B, "other/1", "other", b"{}".to_vec(), None, Expect::Absent);
    s.commit(b).await.unwrap();
    let page1 = s.list(B, "ring", None, 10).await.unwrap();
    assert_eq!(page1.len(), 10);
    assert_eq!(page1[0].name, "ring/00");
    let page2 = s.list(B, "ring", Some(&page1[9].name), 100).await.unwrap();
    assert_eq!(page2.len(), 15);
    assert_eq!(page2[0].name, "ring/10");
    assert!(page2.iter().all(|r| r.parent == "ring"));
    let all = s.scan(B, None, 100).await.unwrap();
    assert_eq!(all.len(), 26);
    assert_eq!(all[25].name, "ring/24");
    assert_eq!(s.scan(B, Some("ring/23"), 100).await.unwrap().len(), 1);
}

async fn due(s: &dyn Store) {
    let c = Collection("conformance_due");
    let mut b = WriteBatch::new();
    b.put(c, "late", "", b"{}".to_vec(), Some(300), Expect::Absent);
    b.put(c, "early", "", b"{}".to_vec(), Some(100), Expect::Absent);
    b.put(c, "never", "", b"{}".to_vec(), None, Expect::Absent);
    s.commit(b).await.unwrap();
    let names = |v: Vec<crate::Record>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(names(s.due(c, 50, 10).await.unwrap()), Vec::<String>::new());
    assert_eq!(names(s.due(c, 200, 10).await.unwrap()), vec!["early"]);
    assert_eq!(
        names(s.due(c, 300, 10).await.unwrap()),
        vec!["early", "late"]
    );
    let mut b = WriteBatch::new();
    b.put(c, "early", "", b"{}".to_vec(), None, Expect::Rev(1));
    s.commit(b).await.unwrap();
    assert_eq!(names(s.due(c, 1000, 10).await.unwrap()), vec!["late"]);
}

async fn audit(s: &dyn Store) {
    let start = s.audit_range(1, 1_000_000).await.unwrap().len() as u64;
    let mut b = WriteBatch::new();
    b.audit(b"{\"n\":1}".to_vec()).audit(b"{\"n\":2}".to_vec());
    let c = s.commit(b).await.unwrap();
    assert_eq!(c.audit_seqs, vec![start + 1, start + 2]);
    let mut b = WriteBatch::new();
    b.audit(b"{\"n\":3}".to_vec());
    s.commit(b).await.unwrap();
    let rows = s.audit_range(1, 1_000_000).await.unwrap();
    let mut v = ChainVerifier::default();
    rows.iter().for_each(|r| v.push(r));
    let check = v.finish();
    assert_eq!(check.first_broken, None);
    assert_eq!(check.records, start + 3);
    // A removed record breaks the chain at its successor.
    let mut v = ChainVerifier::default();
    rows.iter()
        .filter(|r| r.seq != start + 2)
        .for_each(|r| v.push(r));
    assert_eq!(v.finish().first_broken.map(|b| b.0), Some(start + 2));
    // An edited body breaks the chain at that record.
    let mut v = ChainVerifier::default();
    for r in &rows {
        let mut r = r.clone();
        if r.seq == start + 1 {
            r.body = b"{\"n\":9}".to_vec();
        }
        v.push(&r);
    }
    assert_eq!(v.finish().first_broken.map(|b| b.0), Some(start + 1));
}

async fn concurrent_cas(s: &dyn Store) {
    let c = Collection("conformance_cas");
    let mut b = WriteBatch::new();
    b.put(c, "counter", "", b"0".to_vec(), None, Expect::Absent);
    s.commit(b).await.unwrap();
    // 8 writers each add 5 with read-modify-write + CAS and retries; the total must be exact.
    let mut handles = Vec::new();
    for _ in 0..8 {
        handles.push(async {
            for _ in 0..5 {
                loop {
                    let r = s.get(c, "counter").await.unwrap().unwrap();
                    let n: u64 = String::from_utf8(r.data).unwrap().parse().unwrap();
                    let mut b = WriteBatch::new();
                    b.put(
                        c,
                        "counter",
                        "",
                        (n + 1).to_string().into_bytes(),
                        None,
                        Expect::Rev(r.rev),
                    );
                    b.audit(b"{\"inc\":1}".to_vec());
                    match s.commit(b).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
    }
    futures_join_all(handles).await;
    let r = s.get(c, "counter").await.unwrap().unwrap();
    assert_eq!(r.data, b"40");
    let rows = s.audit_range(1, 1_000_000).await.unwrap();
    let mut v = ChainVerifier::default();
    rows.iter().for_each(|r| v.push(r));
    assert_eq!(
        v.finish().first_broken,
        None,
        "concurrent appends keep one linear chain"
    );
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: Vec<F>) {
    // Minimal join-all without an extra dependency: poll all futures round-robin.
    use std::pin::Pin;
    use std::task::{Context, Poll};
    let mut futs: Vec<Option<Pin<Box<F>>>> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let mut pending = false;
        for slot in futs.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(()) => *slot = None,
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}
