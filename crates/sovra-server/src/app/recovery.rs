//! Recovery and sealing of a node's software HSM, offline: restoring it from a security domain
//! over the deployment's database, and sealing it by a quorum of administrators.

use super::{
    make_private_dir, open_offline, open_offline_with, open_sealed_store, open_store, soft_unseal,
    unseal_quorum_path,
};
use crate::clock::SystemClock;
use crate::config::{Config, HsmBackend};
use sovra_hsm::soft::{SoftHsm, UnsealKey};
use sovra_proto::security_domain::UnsealQuorum;

/// Restores this node's software HSM from an opened security domain (`sovra security-domain
/// upload`, offline): only into a node whose HSM holds no keys, only over a database that holds
/// a deployment, and only if the restored HSM unseals that database's keys; otherwise nothing
/// is left behind. Audited (`securityDomain.upload`, with `detail`). Returns the locations
/// whose keys the node now holds.
pub async fn restore_security_domain(
    cfg: &Config,
    domain: &[u8],
    detail: serde_json::Value,
) -> Result<Vec<String>, crate::error::Error> {
    use crate::error::Error;
    use sovra_proto::ErrorCode;
    if cfg.hsm.backend != HsmBackend::Software {
        return Err(Error::new(
            ErrorCode::SecurityDomainUnsupported,
            "this node is configured with a PKCS#11 HSM, whose keys come back with the HSM's own backup mechanism (docs/hsm.md); a security domain restores the software HSM",
        ));
    }
    let failed = |m: String| Error::new(ErrorCode::Unavailable, m);
    make_private_dir(&cfg.data_dir).map_err(failed)?;
    let raw = open_store(cfg).await.map_err(failed)?;
    if !crate::services::sealed::holds_deployment(raw.as_ref())
        .await
        .map_err(failed)?
    {
        return Err(Error::new(
            ErrorCode::SecurityDomainInvalid,
            "this node's database holds no deployment to restore the keys of: point the node at the deployment's database (store settings) first",
        ));
    }
    drop(raw);
    let dir = cfg.data_dir.join("hsm");
    // A node of one region keeps only its locations' keys (`locations`).
    let keep = (!cfg.locations.is_empty()).then_some(cfg.locations.as_slice());
    let hsm = SoftHsm::restore(&dir, soft_unseal(cfg).map_err(failed)?, domain, keep).map_err(
        |e| match e {
            sovra_hsm::HsmError::Io(m) if m.contains("already holds") => {
                Error::new(ErrorCode::AlreadyExists, m)
            }
            other => Error::new(
                ErrorCode::SecurityDomainInvalid,
                format!("the security domain does not restore: {other}"),
            ),
        },
    )?;
    if let Err(e) = open_sealed_store(cfg, &hsm).await {
        for f in ["root.sealed", "keys.json", "unseal.key"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        return Err(Error::new(
            ErrorCode::SecurityDomainInvalid,
            format!(
                "this security domain is not this database's deployment; nothing was restored ({e})"
            ),
        ));
    }
    drop(hsm);
    let sovra = open_offline(cfg).await.map_err(failed)?;
    let locations = sovra.hsm().locations().unwrap_or_default();
    sovra
        .record_offline_hsm_event(
            crate::services::actions::Action::SecurityDomainUpload,
            detail,
        )
        .await?;
    Ok(locations)
}

/// Makes every start of this node need `quorum` of the administrators whose certificates are
/// given (`sovra unseal init`, offline, node stopped): the software HSM's root is sealed under
/// a new unseal key, split among them (`hsm/unseal-quorum.json`), and the unseal key file in
/// the data directory is removed. Audited (`hsm.sealByQuorum`).
pub async fn seal_by_quorum(
    cfg: &Config,
    certificates: &[String],
    quorum: u8,
) -> Result<UnsealQuorum, crate::error::Error> {
    use crate::error::Error;
    use sovra_proto::ErrorCode;
    if cfg.hsm.backend != HsmBackend::Software {
        return Err(Error::invalid(
            "a PKCS#11 HSM is opened with its own PIN or its vendor's quorum (M-of-N smart cards); quorum unsealing is for the software HSM",
        ));
    }
    let failed = |m: String| Error::new(ErrorCode::Unavailable, m);
    let path = unseal_quorum_path(cfg);
    if path.exists() {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!(
                "{} exists: this node is already sealed by a quorum",
                path.display()
            ),
        ));
    }
    let now = crate::clock::Clock::now(&SystemClock);
    let holders = crate::services::security_domain::holders(certificates, quorum, now)?;
    let dir = cfg.data_dir.join("hsm");
    if !dir.join("root.sealed").exists() {
        return Err(Error::invalid(format!(
            "{} holds no software HSM yet: start the node once first",
            dir.display()
        )));
    }
    let how = soft_unseal(cfg).map_err(failed)?;
    let default_file = matches!(how, UnsealKey::DefaultFile);
    let hsm = SoftHsm::open(&dir, how).map_err(|e| failed(e.to_string()))?;
    let key = sovra_crypto::SecretBytes::new(
        sovra_crypto::random::bytes(32).map_err(|e| failed(e.to_string()))?,
    );
    let spkis: Vec<&[u8]> = holders.iter().map(|h| h.spki.as_slice()).collect();
    let shares = sovra_crypto::quorum::share_out(key.expose(), &spkis, quorum)
        .map_err(|e| Error::internal(format!("splitting the unseal key: {e}")))?;
    let q = UnsealQuorum {
        format: sovra_proto::security_domain::UNSEAL_FORMAT.into(),
        create_time: crate::clock::rfc3339(now),
        quorum,
        shares: holders
            .iter()
            .zip(&shares)
            .map(
                |(h, (enc, commitment))| sovra_proto::security_domain::UnsealShare {
                    certificate_sha256: h.certificate_sha256.clone(),
                    public_key_sha256: h.public_key_sha256(),
                    encrypted_share: sovra_proto::b64::encode(enc),
                    commitment: sovra_proto::hex::encode(commitment),
                },
            )
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&q).map_err(|e| Error::internal(e.to_string()))?;
    // The quorum first, then the root under its key (one rename), then the old key file: a
    // crash in between leaves a node the old key still opens (remove unseal-quorum.json).
    sovra_hsm::soft::write_private_file(&path, &json).map_err(|e| failed(e.to_string()))?;
    hsm.reseal(&key).map_err(|e| failed(e.to_string()))?;
    drop(hsm);
    if default_file {
        std::fs::remove_file(dir.join("unseal.key"))
            .and_then(|()| std::fs::File::open(&dir)?.sync_all())
            .map_err(|e| {
                failed(format!(
                    "cannot remove {}: {e}",
                    dir.join("unseal.key").display()
                ))
            })?;
    }
    let sovra = open_offline_with(cfg, Some(key)).await.map_err(failed)?;
    sovra
        .record_offline_hsm_event(
            crate::services::actions::Action::HsmSealByQuorum,
            serde_json::json!({
            "quorum": quorum,
            "certificates": holders.iter().map(|h| h.certificate_sha256.as_str()).collect::<Vec<_>>(),
            }),
        )
        .await?;
    Ok(q)
}
