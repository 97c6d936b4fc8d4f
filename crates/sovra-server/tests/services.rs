//! Service-layer behaviour that needs time to pass: scheduled rotation and destruction, token
//! expiry — with a manual clock instead of waiting.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use sovra_proto::kms::*;
use sovra_proto::names::LocationName;
use sovra_server::services::keys::NewKey;

fn key_req(rotation_period: Option<u64>) -> NewKey {
    NewKey {
        purpose: Purpose::EncryptDecrypt,
        template: None,
        rotation_period,
        next_rotation_time: None,
        destroy_scheduled_duration: None,
        labels: Default::default(),
        skip_initial_version: false,
        exportable: false,
        release_policy: None,
        tags: Default::default(),
        key_ops: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_rotation_makes_a_new_primary_and_old_ciphertexts_still_decrypt() {
    let e = common::env().await;
    let s = &e.sovra;
    let loc = LocationName::new("global").unwrap();
    s.keys()
        .create_key_ring(&e.admin, &loc, "r", false)
        .await
        .unwrap();
    let ring = loc.key_ring("r").unwrap();
    let k = s
        .keys()
        .create_crypto_key(&e.admin, &ring, "k", key_req(Some(86_400)))
        .await
        .unwrap();
    assert_eq!(k.key.rotation_period, Some(86_400));
    let name = ring.crypto_key("k").unwrap();
    let ct = s
        .crypto()
        .seal(&e.admin, &name, b"hello", b"")
        .await
        .unwrap();
    assert_eq!(s.keys().rotate_due().await.unwrap(), 0, "not due yet");
    e.clock.advance(86_400);
    assert_eq!(s.keys().rotate_due().await.unwrap(), 1);
    assert_eq!(
        s.keys().rotate_due().await.unwrap(),
        0,
        "the next rotation moved a period ahead"
    );
    let k = s.keys().get_crypto_key(&e.admin, &name).await.unwrap();
    assert!(k.primary.unwrap().name.ends_with("/cryptoKeyVersions/2"));
    assert_eq!(k.key.next_rotation_time, Some(1_800_000_000 + 2 * 86_400));
    // Missed periods (server down for 3 days) rotate once and schedule the next in the future.
    e.clock.advance(3 * 86_400);
    assert_eq!(s.keys().rotate_due().await.unwrap(), 1);
    let k = s.keys().get_crypto_key(&e.admin, &name).await.unwrap();
    assert!(k.primary.unwrap().name.ends_with("/cryptoKeyVersions/3"));
    assert!(k.key.next_rotation_time.unwrap() > s.now());
    let d = s
        .crypto()
        .open(&e.admin, &name, &ct.ciphertext, b"")
        .await
        .unwrap();
    assert_eq!(d.plaintext.expose(), b"hello");
    assert!(!d.used_primary);
    // Scheduled rotations are audited as system events.
    let log = s.audit().export(1, 1000).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|r| r.event["action"] == "cryptoKeys.autoRotate")
            .count(),
        2
    );
    assert!(s.audit().verify().await.unwrap().first_broken.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn destruction_waits_for_its_time_and_erases_material() {
    let e = common::env().await;
    let s = &e.sovra;
    let loc = LocationName::new("global").unwrap();
    s.keys()
        .create_key_ring(&e.admin, &loc, "r", false)
        .await
        .unwrap();
    let name = loc.key_ring("r").unwrap().crypto_key("k").unwrap();
    s.keys()
        .create_crypto_key(&e.admin, &loc.key_ring("r").unwrap(), "k", key_req(None))
        .await
        .unwrap();
    let v1 = name.version(1);
    let v = s.keys().destroy_version(&e.admin, &v1).await.unwrap();
    assert_eq!(v.destroy_time, Some(1_800_000_000 + 30 * 86_400));
    e.clock.advance(30 * 86_400 - 1);
    assert_eq!(s.keys().destroy_due().await.unwrap(), 0);
    e.clock.advance(1);
    assert_eq!(s.keys().destroy_due().await.unwrap(), 1);
    let v = s.keys().get_version(&e.admin, &v1).await.unwrap();
    assert_eq!(v.state, VersionState::Destroyed);
    let err = s
        .crypto()
        .seal(&e.admin, &name, b"h", b"")
        .await
        .unwrap_err();
    assert_eq!(err.code, sovra_proto::ErrorCode::KeyVersionDestroyed);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_tokens_are_refused() {
    let e = common::env().await;
    let s = &e.sovra;
    let t = s
        .access()
        .create_token(
            &e.admin,
            sovra_server::services::access::NewToken {
                principal: "temp".into(),
                description: String::new(),
                ttl: Some(3600),
            },
        )
        .await
        .unwrap();
    let h = format!("Bearer {}", t.token.as_str());
    assert!(s.auth().authenticate(Some(&h), None).await.is_ok());
    e.clock.advance(3600);
    let err = s.auth().authenticate(Some(&h), None).await.unwrap_err();
    assert_eq!(err.code, sovra_proto::ErrorCode::TokenInvalid);
    assert!(err.message.contains("expired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_that_create_the_first_signing_key_together_converge_on_one() {
    let cfg = || sovra_server::services::ServiceConfig {
        cache_ttl: std::time::Duration::ZERO,
        ..Default::default()
    };
    let e = common::env_with(cfg()).await;
    let a = e.sovra.clone();
    let b = e.second_node(cfg());
    // Both nodes find no key and create one at the same moment.
    let (ka, kb) = tokio::join!(a.attest().signing_keys(), b.attest().signing_keys());
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    let (sa, sb) = (
        a.attest().signing_keys().await.unwrap(),
        b.attest().signing_keys().await.unwrap(),
    );
    assert_eq!(
        sa.active.kid(),
        sb.active.kid(),
        "both nodes sign with the same key"
    );
    // Whatever either node signed with during the race stays verifiable.
    let jwks = a.attest().jwks().await.unwrap().to_string();
    for k in [&ka, &kb] {
        assert!(jwks.contains(k.active.kid()), "{jwks}");
    }
    // After a rotation, once the old tokens have expired, only the new key is published: no
    // key from the race stays active or published for ever.
    let r = b.attest().rotate_signing_key(&e.admin, None).await.unwrap();
    e.clock.advance(8 * 3600 + 301);
    let jwks = a.attest().signing_keys().await.unwrap();
    let kids: Vec<&str> = jwks
        .published
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [r.0.as_str()], "{kids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_administrator_who_can_sign_in_is_kept() {
    // A caller the store does not know (another node's view, or a principal whose binding was
    // removed meanwhile) cannot remove the last stored Administrator: nobody could sign in again.
    let e = common::env().await;
    let s = &e.sovra;
    let admin_binding = e.admin.bindings()[0].clone();
    let elsewhere =
        sovra_server::services::auth::Principal::internal("elsewhere", vec![admin_binding.clone()]);
    let err = s
        .access()
        .delete_role_binding(&elsewhere, "admin", &admin_binding.id)
        .await
        .unwrap_err();
    assert_eq!(err.code, sovra_proto::ErrorCode::LastAdministrator);
    let err = s
        .access()
        .revoke_token(&elsewhere, &e.admin.token_id)
        .await
        .unwrap_err();
    assert_eq!(err.code, sovra_proto::ErrorCode::LastAdministrator);
}

fn vector(rel: &str) -> Vec<u8> {
    let dir = std::env::var("SOVRA_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    std::fs::read(dir.join(rel)).unwrap()
}

fn tdx_submission(
    collateral: Option<&[u8]>,
) -> sovra_server::services::attest::request::Submission {
    let mut req = serde_json::json!({"evidence": sovra_proto::b64::encode(&vector("tdx/dcapqvl_tdx_quote_v4_b0c06f.bin"))});
    if let Some(c) = collateral {
        req["collateral"] = serde_json::json!(sovra_proto::b64::encode(c));
    }
    sovra_server::http::attest_wire::native(serde_json::from_value(req).unwrap()).unwrap()
}

/// 2025-07-01T00:00:00Z, inside the TDX vector's collateral window.
const TDX_AT: i64 = 1_751_328_000;

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_intel_collateral_wins_and_a_minimum_applies() {
    let e = common::env().await;
    e.clock.set(TDX_AT);
    let s = &e.sovra;
    let genuine = vector("tdx/dcapqvl_tdx_quote_v4_b0c06f.collateral.json");
    // Collateral the attester sends, claiming an older evaluation (16, edited: its signature no
    // longer verifies). With nothing stored it is what the quote is judged with, and fails.
    let text = String::from_utf8(genuine.clone()).unwrap();
    let older = text.replace(
        "\\\"tcbEvaluationDataNumber\\\":17",
        "\\\"tcbEvaluationDataNumber\\\":16",
    );
    assert_ne!(older, text, "the vector's TCB info names evaluation 17");
    let kind = sovra_attest::EvidenceType::Tdx;
    let err = s
        .attest()
        .attest("default", kind, tdx_submission(Some(older.as_bytes())))
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        sovra_proto::ErrorCode::AttestCollateralInvalid,
        "{err}"
    );
    // Once the store holds evaluation 17 for the FMSPC, an older bundle in the request does not
    // get a say: the store's newest judges the quote.
    s.attest()
        .import_collateral(
            &e.admin,
            sovra_server::services::attest::collateral::NewCollateral {
                kind: sovra_proto::attest::CollateralKind::Intel,
                platform: None,
                content: genuine.clone(),
            },
        )
        .await
        .unwrap();
    let a = s
        .attest()
        .attest("default", kind, tdx_submission(Some(older.as_bytes())))
        .await
        .unwrap();
    assert_eq!(a.claims["tcb_evaluation_data_number"], 17);
    // An operator minimum above what Intel has published refuses the quote.
    let cfg = sovra_server::services::ServiceConfig {
        attest: sovra_server::services::attest::AttestConfig {
            min_tcb_evaluation_data_number: 18,
            ..Default::default()
        },
        ..Default::default()
    };
    let strict = e.second_node(cfg);
    let err = strict
        .attest()
        .attest("default", kind, tdx_submission(Some(&genuine)))
        .await
        .unwrap_err();
    assert_eq!(err.code, sovra_proto::ErrorCode::AttestCollateralInvalid);
    assert!(err.message.contains("below the minimum of 18"), "{err}");
}

/// A deployment from before sealing is sealed once at the first start that seals, stays usable,
/// and from then on refuses unsealed rows; the key survives losing either of its two copies.
#[tokio::test(flavor = "multi_thread")]
async fn records_of_an_older_deployment_are_sealed_once_and_rows_written_outside_are_refused() {
    use sovra_server::services::sealed::SealedStore;
    use sovra_store::{Collection, Expect, Store, StoreError, WriteBatch};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sovra.db");
    let raw =
        || -> Arc<dyn Store> { Arc::new(sovra_store::sqlite::SqliteStore::open(&db).unwrap()) };
    let hsm = Arc::new(
        sovra_hsm::soft::SoftHsm::open(
            &dir.path().join("hsm"),
            sovra_hsm::soft::UnsealKey::DefaultFile,
        )
        .unwrap(),
    );
    let clock = Arc::new(sovra_server::clock::ManualClock::new(1_800_000_000));
    let node = |store: Arc<dyn Store>| {
        Arc::new(sovra_server::services::Sovra::new(
            store,
            hsm.clone(),
            clock.clone(),
            sovra_server::services::ServiceConfig::default(),
        ))
    };
    // Before sealing: a location, an administrator, a key ring, written as plain JSON.
    let old = node(raw());
    old.keys().ensure_default_location().await.unwrap();
    let token = old.access().bootstrap_admin().await.unwrap();
    let bearer = format!("Bearer {}", token.as_str());
    let admin = old.auth().authenticate(Some(&bearer), None).await.unwrap();
    let loc = LocationName::new("global").unwrap();
    old.keys()
        .create_key_ring(&admin, &loc, "r", false)
        .await
        .unwrap();
    let ring = loc.key_ring("r").unwrap();
    let open =
        |anchored: bool| SealedStore::open(raw(), hsm.as_ref(), "global", dir.path(), anchored);
    // The first sealing start: everything still works.
    let sealed = open(false).await.unwrap();
    let new = node(sealed.clone());
    let admin = new.auth().authenticate(Some(&bearer), None).await.unwrap();
    new.keys().get_key_ring(&admin, &ring).await.unwrap();
    // The audit log goes on keyed after its unkeyed records; an unkeyed record appended after
    // a keyed one is a forgery.
    new.keys()
        .create_key_ring(&admin, &loc, "r2", false)
        .await
        .unwrap();
    let check = new.audit().verify().await.unwrap();
    assert_eq!(check.first_broken, None);
    let mut b = WriteBatch::new();
    b.audit(br#"{"action":"roles.grant"}"#.to_vec());
    raw().commit(b).await.unwrap();
    let check = new.audit().verify().await.unwrap();
    assert_eq!(check.first_broken.map(|b| b.0), Some(check.records));
    // A row written outside Sovra (plain JSON, as before sealing) is refused, also after a
    // restart: sealing happens once, not at every start.
    let forged = Collection("role_bindings");
    let mut b = WriteBatch::new();
    b.put(
        forged,
        "eve/x",
        "eve",
        br#"{"principal":"eve"}"#.to_vec(),
        None,
        Expect::Absent,
    );
    raw().commit(b).await.unwrap();
    for s in [sealed, open(false).await.unwrap()] {
        assert!(matches!(
            s.list(forged, "eve", None, 10).await,
            Err(StoreError::Integrity { .. })
        ));
        assert!(s.get(forged, "eve/x").await.is_err());
    }
    // The key removed from the database is put back from the data directory's copy.
    let mut b = WriteBatch::new();
    b.delete(Collection("row_mac"), "key", Expect::Any);
    raw().commit(b).await.unwrap();
    let back = node(open(false).await.unwrap());
    let admin = back.auth().authenticate(Some(&bearer), None).await.unwrap();
    back.keys().get_key_ring(&admin, &ring).await.unwrap();
    assert!(
        raw()
            .get(Collection("row_mac"), "key")
            .await
            .unwrap()
            .is_some()
    );
    // Both copies removed from an anchored deployment: refused, not sealed afresh.
    let mut b = WriteBatch::new();
    b.delete(Collection("row_mac"), "key", Expect::Any);
    raw().commit(b).await.unwrap();
    std::fs::remove_file(dir.path().join(sovra_server::services::sealed::KEY_FILE)).unwrap();
    let err = open(true).await.unwrap_err();
    assert!(err.contains("was removed"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_key_is_kept_for_its_retention_then_purged_and_its_name_freed() {
    use sovra_proto::ErrorCode;
    let e = common::env().await;
    let s = &e.sovra;
    let loc = LocationName::new("global").unwrap();
    s.keys()
        .create_key_ring(&e.admin, &loc, "r", false)
        .await
        .unwrap();
    let ring = loc.key_ring("r").unwrap();
    s.keys()
        .create_crypto_key(&e.admin, &ring, "k", key_req(None))
        .await
        .unwrap();
    let name = ring.crypto_key("k").unwrap();
    let ct = s
        .crypto()
        .seal(&e.admin, &name, b"kept", b"")
        .await
        .unwrap();
    let d = s.keys().delete_crypto_key(&e.admin, &name).await.unwrap();
    assert_eq!(
        d.purge_time,
        s.now() + 30 * 86_400,
        "the key's destroy-scheduled duration"
    );
    // Gone from every path, but kept.
    let gone = s.crypto().open(&e.admin, &name, &ct.ciphertext, b"").await;
    assert_eq!(gone.unwrap_err().code, ErrorCode::KeyNotFound);
    let again = s
        .keys()
        .create_crypto_key(&e.admin, &ring, "k", key_req(None))
        .await;
    assert_eq!(again.unwrap_err().code, ErrorCode::KeyDeleted);
    // Recovered as it was, then deleted again.
    s.keys().recover_deleted_key(&e.admin, &name).await.unwrap();
    let back = s
        .crypto()
        .open(&e.admin, &name, &ct.ciphertext, b"")
        .await
        .unwrap();
    assert_eq!(back.plaintext.expose(), b"kept");
    s.keys().delete_crypto_key(&e.admin, &name).await.unwrap();
    // Neither a request nor the scheduler purges before the retention ends.
    let early = s.keys().purge_deleted_key(&e.admin, &name).await;
    assert_eq!(early.unwrap_err().code, ErrorCode::PurgeProtected);
    assert_eq!(s.keys().purge_due().await.unwrap(), 0);
    e.clock.advance(30 * 86_400);
    assert_eq!(s.keys().purge_due().await.unwrap(), 1);
    let listed = s
        .keys()
        .list_deleted_keys(&e.admin, &ring, &Default::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    // The name is free, and the new key is a new key: the old ciphertext does not open.
    s.keys()
        .create_crypto_key(&e.admin, &ring, "k", key_req(None))
        .await
        .unwrap();
    assert!(
        s.crypto()
            .open(&e.admin, &name, &ct.ciphertext, b"")
            .await
            .is_err()
    );
    let log = s.audit().export(1, 1000).await.unwrap();
    let actions: Vec<&str> = log
        .iter()
        .filter_map(|r| r.event["action"].as_str())
        .collect();
    for a in [
        "cryptoKeys.delete",
        "cryptoKeys.recover",
        "cryptoKeys.purged",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_version_decrypts_but_no_longer_encrypts() {
    use sovra_proto::ErrorCode;
    let e = common::env().await;
    let s = &e.sovra;
    let loc = LocationName::new("global").unwrap();
    s.keys()
        .create_key_ring(&e.admin, &loc, "r", false)
        .await
        .unwrap();
    let ring = loc.key_ring("r").unwrap();
    s.keys()
        .create_crypto_key(&e.admin, &ring, "k", key_req(None))
        .await
        .unwrap();
    let name = ring.crypto_key("k").unwrap();
    let ct = s
        .crypto()
        .seal(&e.admin, &name, b"before", b"")
        .await
        .unwrap();
    let now = s.now();
    s.keys()
        .set_version_validity(
            &e.admin,
            &name.version(1),
            Some(Some(now + 60)),
            Some(Some(now + 3600)),
        )
        .await
        .unwrap();
    // Not yet valid: nothing at all.
    let early = s.crypto().open(&e.admin, &name, &ct.ciphertext, b"").await;
    assert_eq!(early.unwrap_err().code, ErrorCode::KeyVersionNotYetValid);
    e.clock.advance(60);
    s.crypto()
        .seal(&e.admin, &name, b"during", b"")
        .await
        .unwrap();
    e.clock.advance(3600);
    let late = s.crypto().seal(&e.admin, &name, b"after", b"").await;
    assert_eq!(late.unwrap_err().code, ErrorCode::KeyVersionExpired);
    let d = s
        .crypto()
        .open(&e.admin, &name, &ct.ciphertext, b"")
        .await
        .unwrap();
    assert_eq!(d.plaintext.expose(), b"before");
    let bad = s
        .keys()
        .set_version_validity(&e.admin, &name.version(1), None, Some(Some(now)))
        .await;
    assert_eq!(
        bad.unwrap_err().code,
        ErrorCode::InvalidArgument,
        "expiry before activation"
    );
}
