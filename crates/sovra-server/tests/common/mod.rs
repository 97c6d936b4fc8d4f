//! A service layer over a temporary SQLite store and software HSM, with a manual clock.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sovra_server::clock::ManualClock;
use sovra_server::services::auth::Principal;
use sovra_server::services::{ServiceConfig, Sovra};
use std::sync::Arc;

pub struct Env {
    pub sovra: Arc<Sovra>,
    pub clock: Arc<ManualClock>,
    pub admin: Principal,
    _dir: tempfile::TempDir,
}

pub async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(sovra_store::sqlite::SqliteStore::open(&dir.path().join("sovra.db")).unwrap());
    let hsm = Arc::new(
        sovra_hsm::soft::SoftHsm::open(
            &dir.path().join("hsm"),
            sovra_hsm::soft::UnsealKey::DefaultFile,
        )
        .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let sovra = Arc::new(Sovra::new(
        store,
        hsm,
        clock.clone(),
        ServiceConfig::default(),
    ));
    sovra.ensure_default_location().await.unwrap();
    let token = sovra.bootstrap_admin().await.unwrap();
    let admin = sovra
        .auth()
        .authenticate(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    Env {
        sovra,
        clock,
        admin,
        _dir: dir,
    }
}
