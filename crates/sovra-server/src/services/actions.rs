//! What an audit record says was done: one variant per action, each with the stable name the
//! log carries (`cryptoKeys.create`). The names are part of the audit format: they never change.

use super::authz::Permission;

/// An audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A location was created (by an administrator, or the default one at first start).
    LocationCreate,
    /// A key ring was created.
    KeyRingCreate,
    /// A key ring's settings changed.
    KeyRingUpdate,
    /// A key was created.
    KeyCreate,
    /// A key's labels, rotation, template or release policy changed.
    KeyUpdate,
    /// A key's release policy was set (with the old and new policy hashes).
    KeyReleasePolicySet,
    /// A key's primary version changed.
    KeyUpdatePrimary,
    /// A key was rotated on request.
    KeyRotate,
    /// A key was rotated by the scheduler.
    KeyAutoRotate,
    /// A key was deleted, recoverably (Key Vault's soft delete).
    KeyDelete,
    /// A deleted key was recovered.
    KeyRecover,
    /// A deleted key was purged on request: its versions' material erased.
    KeyPurge,
    /// A deleted key was purged when its retention ended.
    KeyPurged,
    /// A key created for an import that was then refused was removed (it had no versions).
    KeyDiscard,
    /// A key was backed up (with its material, sealed to this deployment's HSM).
    KeyBackup,
    /// A key was restored from a backup.
    KeyRestore,
    /// A version was created.
    VersionCreate,
    /// Key material was imported as a new version.
    VersionImport,
    /// An import job was created.
    ImportJobCreate,
    /// A version was enabled.
    VersionEnable,
    /// A version was disabled.
    VersionDisable,
    /// A version's activation or expiry time was set.
    VersionValidity,
    /// A version was scheduled for destruction.
    VersionDestroy,
    /// A version scheduled for destruction was restored.
    VersionRestore,
    /// A version's material was erased (its destruction time came).
    VersionDestroyed,
    /// Data was encrypted.
    Encrypt,
    /// Data was decrypted.
    Decrypt,
    /// Data was signed.
    AsymmetricSign,
    /// Data was decrypted with an asymmetric key.
    AsymmetricDecrypt,
    /// A MAC was computed.
    MacSign,
    /// A MAC was verified.
    MacVerify,
    /// A key was wrapped (AES key wrap).
    WrapKey,
    /// A key was unwrapped (AES key wrap).
    UnwrapKey,
    /// A key release was decided.
    Release,
    /// An attested decryption was decided.
    DecryptTo,
    /// An attested data-key generation was decided.
    GenerateDataKeyTo,
    /// An attestation was decided.
    Attest,
    /// A request did not authenticate.
    Authenticate,
    /// A caller lacked a permission (the record carries the permission's name).
    Denied(Permission),
    /// A caller ran over its quota.
    Quota,
    /// The first start created the bootstrap administrator.
    Bootstrap,
    /// `sovra admin recover` created a break-glass administrator.
    AdminRecover,
    /// A token was issued.
    TokenCreate,
    /// A token was revoked.
    TokenRevoke,
    /// A role was granted.
    RoleBindingCreate,
    /// A role was withdrawn.
    RoleBindingDelete,
    /// A principal's quota was set.
    QuotaSet,
    /// Organisation settings changed.
    SettingsUpdate,
    /// An external token issuer was trusted for release.
    IssuerPut,
    /// An attestation provider was created.
    ProviderCreate,
    /// An attestation policy was set.
    PolicySet,
    /// An attestation policy was reset to the default.
    PolicyReset,
    /// Reference values were set.
    ReferenceValuesSet,
    /// Reference values were removed.
    ReferenceValuesDelete,
    /// Collateral was imported.
    CollateralImport,
    /// Collateral was removed.
    CollateralDelete,
    /// Collateral was fetched from a vendor service.
    CollateralFetch,
    /// An attestation token signing key was created.
    AttestationSigningKeyCreate,
    /// An attestation token signing key was retired.
    AttestationSigningKeyRetire,
    /// A release signing key was created.
    ReleaseSigningKeyCreate,
    /// A release signing key was retired.
    ReleaseSigningKeyRetire,
    /// A management signing key was created.
    ManagementSigningKeyCreate,
    /// A management signing key was retired.
    ManagementSigningKeyRetire,
    /// The server opened (unsealed, logged in to) its HSM at start.
    HsmOpen,
    /// The owner root of key attestation was created.
    KeyAttestationRootCreate,
    /// An HSM's key-attestation key was certified by the owner root.
    KeyAttestationCertificateIssue,
    /// An owner root held by the operator's CA was installed.
    KeyAttestationRootSet,
    /// An HSM's key-attestation key was replaced by a new one.
    KeyAttestationKeyRotate,
    /// The security domain was exported, encrypted to administrators' certificates.
    SecurityDomainDownload,
    /// A node's HSM was restored from a security domain (offline, `sovra security-domain upload`).
    SecurityDomainUpload,
    /// A node's software HSM was sealed by a quorum of administrators (`sovra unseal init`).
    HsmSealByQuorum,
    /// The audit log was anchored for the first time.
    AuditAnchorStarted,
    /// A stored row failed its integrity check.
    StoreIntegrity,
}

impl Action {
    /// The name the audit log carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocationCreate => "locations.create",
            Self::KeyRingCreate => "keyRings.create",
            Self::KeyRingUpdate => "keyRings.update",
            Self::KeyCreate => "cryptoKeys.create",
            Self::KeyUpdate => "cryptoKeys.update",
            Self::KeyReleasePolicySet => "cryptoKeys.releasePolicy.set",
            Self::KeyUpdatePrimary => "cryptoKeys.updatePrimaryVersion",
            Self::KeyRotate => "cryptoKeys.rotate",
            Self::KeyDelete => "cryptoKeys.delete",
            Self::KeyBackup => "cryptoKeys.backup",
            Self::KeyDiscard => "cryptoKeys.discard",
            Self::KeyRestore => "cryptoKeys.restore",
            Self::KeyRecover => "cryptoKeys.recover",
            Self::KeyPurge => "cryptoKeys.purge",
            Self::KeyPurged => "cryptoKeys.purged",
            Self::KeyAutoRotate => "cryptoKeys.autoRotate",
            Self::VersionCreate => "cryptoKeyVersions.create",
            Self::VersionImport => "cryptoKeyVersions.import",
            Self::ImportJobCreate => "importJobs.create",
            Self::VersionEnable => "cryptoKeyVersions.enable",
            Self::VersionDisable => "cryptoKeyVersions.disable",
            Self::VersionValidity => "cryptoKeyVersions.setValidity",
            Self::VersionDestroy => "cryptoKeyVersions.destroy",
            Self::VersionRestore => "cryptoKeyVersions.restore",
            Self::VersionDestroyed => "cryptoKeyVersions.destroyed",
            Self::Encrypt => "cryptoKeys.encrypt",
            Self::Decrypt => "cryptoKeys.decrypt",
            Self::AsymmetricSign => "cryptoKeyVersions.asymmetricSign",
            Self::AsymmetricDecrypt => "cryptoKeyVersions.asymmetricDecrypt",
            Self::MacSign => "cryptoKeyVersions.macSign",
            Self::MacVerify => "cryptoKeyVersions.macVerify",
            Self::WrapKey => "cryptoKeyVersions.wrapKey",
            Self::UnwrapKey => "cryptoKeyVersions.unwrapKey",
            Self::Release => "cryptoKeys.release",
            Self::DecryptTo => "cryptoKeys.decryptTo",
            Self::GenerateDataKeyTo => "cryptoKeys.generateDataKeyTo",
            Self::Attest => "attestation.attest",
            Self::Authenticate => "authenticate",
            Self::Denied(p) => p.name(),
            Self::Quota => "quota",
            Self::Bootstrap => "bootstrap",
            Self::AdminRecover => "admin.recover",
            Self::TokenCreate => "tokens.create",
            Self::TokenRevoke => "tokens.revoke",
            Self::RoleBindingCreate => "roleBindings.create",
            Self::RoleBindingDelete => "roleBindings.delete",
            Self::QuotaSet => "quotas.set",
            Self::SettingsUpdate => "settings.update",
            Self::IssuerPut => "release.issuers.put",
            Self::ProviderCreate => "attestation.providers.create",
            Self::PolicySet => "attestation.policies.set",
            Self::PolicyReset => "attestation.policies.reset",
            Self::ReferenceValuesSet => "attestation.referenceValues.set",
            Self::ReferenceValuesDelete => "attestation.referenceValues.delete",
            Self::CollateralImport => "attestation.collateral.import",
            Self::CollateralDelete => "attestation.collateral.delete",
            Self::CollateralFetch => "attestation.collateral.fetch",
            Self::AttestationSigningKeyCreate => "attestation.signingKeys.create",
            Self::AttestationSigningKeyRetire => "attestation.signingKeys.retire",
            Self::ReleaseSigningKeyCreate => "release.signingKeys.create",
            Self::ReleaseSigningKeyRetire => "release.signingKeys.retire",
            Self::ManagementSigningKeyCreate => "management.signingKeys.create",
            Self::ManagementSigningKeyRetire => "management.signingKeys.retire",
            Self::HsmOpen => "hsm.open",
            Self::KeyAttestationRootCreate => "keyAttestation.ownerRoot.create",
            Self::KeyAttestationCertificateIssue => "keyAttestation.certificate.issue",
            Self::KeyAttestationRootSet => "keyAttestation.ownerRoot.set",
            Self::KeyAttestationKeyRotate => "keyAttestation.key.rotate",
            Self::SecurityDomainDownload => "securityDomain.download",
            Self::SecurityDomainUpload => "securityDomain.upload",
            Self::HsmSealByQuorum => "hsm.sealByQuorum",
            Self::AuditAnchorStarted => "audit.anchor.started",
            Self::StoreIntegrity => "store.integrity",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
