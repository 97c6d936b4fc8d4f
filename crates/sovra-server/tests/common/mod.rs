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
    env_with(ServiceConfig::default()).await
}

pub async fn env_with(cfg: ServiceConfig) -> Env {
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
    let sovra = Arc::new(Sovra::new(store, hsm, clock.clone(), cfg));
    sovra.keys().ensure_default_location().await.unwrap();
    let token = sovra.access().bootstrap_admin().await.unwrap();
    let admin = sovra
        .auth()
        .authenticate(Some(&format!("Bearer {}", token.as_str())), None)
        .await
        .unwrap();
    Env {
        sovra,
        clock,
        admin,
        _dir: dir,
    }
}

impl Env {
    /// Another node over the same database and HSM (its own connections and caches), on the
    /// same clock.
    pub fn second_node(&self, cfg: ServiceConfig) -> Arc<Sovra> {
        let store = Arc::new(
            sovra_store::sqlite::SqliteStore::open(&self._dir.path().join("sovra.db")).unwrap(),
        );
        let hsm = Arc::new(
            sovra_hsm::soft::SoftHsm::open(
                &self._dir.path().join("hsm"),
                sovra_hsm::soft::UnsealKey::DefaultFile,
            )
            .unwrap(),
        );
        Arc::new(Sovra::new(store, hsm, self.clock.clone(), cfg))
    }
}
