//! The conformance suite against a real PostgreSQL server: a throwaway cluster started from
//! the Debian `postgresql` package (or `SOVRA_TEST_PG_URL` if set).

use sovra_testkit::pg;

#[tokio::test(flavor = "multi_thread")]
async fn postgres_store_conforms() {
    let pg = pg::TempPg::start();
    let store = sovra_store::postgres::PgStore::open(&pg.url("conformance"))
        .await
        .unwrap();
    sovra_store::conformance::run(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_one_linear_audit_chain() {
    use sovra_store::{Store, WriteBatch};
    let pg = pg::TempPg::start();
    let url = pg.url("twonodes");
    let a = sovra_store::postgres::PgStore::open(&url).await.unwrap();
    let b = sovra_store::postgres::PgStore::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for (i, s) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for j in 0..25 {
                let mut w = WriteBatch::new();
                w.audit(format!("{{\"node\":{i},\"n\":{j}}}").into_bytes());
                s.commit(w).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = a.audit_range(1, 1000).await.unwrap();
    assert_eq!(rows.len(), 100);
    let mut v = sovra_store::audit::ChainVerifier::default();
    rows.iter().for_each(|r| v.push(r));
    assert_eq!(v.finish().first_broken, None);
}
