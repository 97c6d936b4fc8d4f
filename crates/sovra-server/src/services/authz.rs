//! Role-based authorization: which permissions each role grants, and at which scope.

use crate::model::RoleBindingRec;
use sovra_proto::admin::Role;
use sovra_proto::names::scope_covers;

/// An action on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// List and read locations.
    LocationRead,
    /// Create locations (HSM wrapping keys).
    LocationManage,
    /// Read key rings.
    KeyRingRead,
    /// Create and update key rings.
    KeyRingManage,
    /// Read keys, versions and public keys.
    KeyRead,
    /// Create, update and rotate keys; change the primary version.
    KeyManage,
    /// Enable, disable, destroy and restore versions.
    VersionManage,
    /// Symmetric encryption.
    Encrypt,
    /// Symmetric decryption.
    Decrypt,
    /// Asymmetric signing.
    Sign,
    /// Signature verification.
    Verify,
    /// MAC sign and verify.
    Mac,
    /// Asymmetric decryption.
    AsymmetricDecrypt,
    /// Random bytes.
    Random,
    /// Release exportable keys to attested TEEs.
    Release,
    /// Change the release policy of an existing key (Administrators only).
    ReleasePolicyManage,
    /// Read attestation policies and providers.
    PolicyRead,
    /// Change attestation policies, reference values and (vendor-signed) collateral.
    PolicyManage,
    /// Change what is trusted: platform trust anchors (TPM EK CAs, test roots), policy signers,
    /// external token issuers. Administrators only.
    TrustManage,
    /// Read tokens and role bindings.
    AccessRead,
    /// Create and revoke tokens, grant and revoke roles, set quotas.
    AccessManage,
    /// Read organisation settings.
    SettingsRead,
    /// Change organisation settings.
    SettingsManage,
    /// Read and verify the audit log; read metrics.
    AuditRead,
    /// Create import jobs and import key material (the KEY_IMPORTER role, and administrators).
    KeyImport,
    /// Export the security domain (administrators only).
    SecurityDomainExport,
}

impl Permission {
    /// Whether the permission is organisation-wide (only a `*` binding grants it).
    pub fn is_global(self) -> bool {
        matches!(
            self,
            Self::AccessRead
                | Self::AccessManage
                | Self::SettingsManage
                | Self::AuditRead
                | Self::LocationManage
                | Self::TrustManage
                | Self::SecurityDomainExport
        )
    }

    /// A short name for messages and audit records.
    pub fn name(self) -> &'static str {
        match self {
            Self::LocationRead => "locations.read",
            Self::LocationManage => "locations.manage",
            Self::KeyRingRead => "keyRings.read",
            Self::KeyRingManage => "keyRings.manage",
            Self::KeyRead => "cryptoKeys.read",
            Self::KeyManage => "cryptoKeys.manage",
            Self::VersionManage => "cryptoKeyVersions.manage",
            Self::Encrypt => "cryptoKeys.encrypt",
            Self::Decrypt => "cryptoKeys.decrypt",
            Self::Sign => "cryptoKeyVersions.sign",
            Self::Verify => "cryptoKeyVersions.verify",
            Self::Mac => "cryptoKeyVersions.mac",
            Self::AsymmetricDecrypt => "cryptoKeyVersions.asymmetricDecrypt",
            Self::Random => "locations.generateRandomBytes",
            Self::Release => "cryptoKeys.release",
            Self::ReleasePolicyManage => "cryptoKeys.setReleasePolicy",
            Self::PolicyRead => "attestation.read",
            Self::PolicyManage => "attestation.manage",
            Self::TrustManage => "trust.manage",
            Self::AccessRead => "access.read",
            Self::AccessManage => "access.manage",
            Self::SettingsRead => "settings.read",
            Self::SettingsManage => "settings.manage",
            Self::AuditRead => "audit.read",
            Self::KeyImport => "cryptoKeyVersions.import",
            Self::SecurityDomainExport => "securityDomain.download",
        }
    }
}

/// Whether `role` grants `perm`.
pub fn role_grants(role: Role, perm: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Administrator => true,
        Role::CryptoOfficer => matches!(
            perm,
            LocationRead
                | KeyRingRead
                | KeyRingManage
                | KeyRead
                | KeyManage
                | VersionManage
                | SettingsRead
                | Random
        ),
        Role::CryptoUser => matches!(
            perm,
            LocationRead
                | KeyRingRead
                | KeyRead
                | Encrypt
                | Decrypt
                | Sign
                | Verify
                | Mac
                | AsymmetricDecrypt
                | Random
        ),
        Role::ReleaseUser => matches!(perm, LocationRead | KeyRingRead | KeyRead | Release),
        Role::PolicyAdministrator => matches!(perm, LocationRead | PolicyRead | PolicyManage),
        Role::KeyImporter => matches!(perm, LocationRead | KeyRingRead | KeyRead | KeyImport),
        Role::Auditor => matches!(
            perm,
            LocationRead
                | KeyRingRead
                | KeyRead
                | PolicyRead
                | AccessRead
                | SettingsRead
                | AuditRead
        ),
    }
}

/// Whether any of `bindings` grants `perm` on `resource` (`*` for organisation-wide actions).
pub fn allowed(bindings: &[RoleBindingRec], perm: Permission, resource: &str) -> bool {
    bindings.iter().any(|b| {
        role_grants(b.role, perm)
            && if perm.is_global() {
                b.scope == "*"
            } else {
                scope_covers(&b.scope, resource)
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(role: Role, scope: &str) -> RoleBindingRec {
        RoleBindingRec {
            id: "x".into(),
            principal: "p".into(),
            role,
            scope: scope.into(),
            create_time: 0,
        }
    }

    #[test]
    fn separation_of_duties() {
        let key = "locations/global/keyRings/r/cryptoKeys/k";
        assert!(allowed(
            &[b(Role::CryptoUser, "locations/global/keyRings/r")],
            Permission::Encrypt,
            key
        ));
        assert!(!allowed(
            &[b(Role::CryptoUser, "locations/global/keyRings/other")],
            Permission::Encrypt,
            key
        ));
        assert!(!allowed(
            &[b(Role::CryptoOfficer, "*")],
            Permission::Encrypt,
            key
        ));
        assert!(!allowed(
            &[b(Role::CryptoUser, "*")],
            Permission::KeyManage,
            key
        ));
        assert!(!allowed(&[b(Role::Auditor, "*")], Permission::Decrypt, key));
        assert!(allowed(
            &[b(Role::Auditor, "*")],
            Permission::AuditRead,
            "*"
        ));
        // Organisation-wide permissions need a * binding even for administrators.
        assert!(!allowed(
            &[b(Role::Administrator, "locations/global")],
            Permission::AccessManage,
            "*"
        ));
        assert!(allowed(
            &[b(Role::Administrator, "*")],
            Permission::AccessManage,
            "*"
        ));
        assert!(!allowed(&[], Permission::KeyRead, key), "deny by default");
    }
}
