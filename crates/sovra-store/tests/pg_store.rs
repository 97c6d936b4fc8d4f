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

#[tokio::test(flavor = "multi_thread")]
async fn tls_to_postgres_checks_the_server_certificate() {
    use sovra_store::postgres::PgStore;
    // This cluster refuses TCP connections without TLS.
    let pg = pg::TempPg::start_tls();
    let ca = pg.ca_pem().unwrap().as_bytes().to_vec();
    let url = pg.url("tls");
    let verified = format!("{url} sslmode=verify-full");

    // Verified TLS: the whole conformance suite runs over it.
    let store = PgStore::open_with_ca(&verified, Some(&ca)).await.unwrap();
    sovra_store::conformance::run(&store).await;

    // The server really insists on TLS: plaintext is refused by it, not by us.
    let plain = PgStore::open_with_ca(&format!("{url} sslmode=disable"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(plain.contains("no encryption"), "{plain}");

    // A certificate from a CA we were not told to trust is refused, whatever sslmode says.
    let other_ca = {
        let k = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&k).unwrap().pem()
    };
    for mode in ["require", "verify-ca", "verify-full"] {
        let e = PgStore::open_with_ca(&format!("{url} sslmode={mode}"), Some(other_ca.as_bytes()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.to_lowercase().contains("certificate"), "{mode}: {e}");
    }
    // The name must match too: the same server reached under another name is refused.
    let wrong_name = url.replace("host=127.0.0.1", "host=db.example hostaddr=127.0.0.1")
        + " sslmode=verify-full";
    let e = PgStore::open_with_ca(&wrong_name, Some(&ca))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
}
