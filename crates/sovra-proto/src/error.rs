//! Stable error codes and the error body every failed request returns.
//!
//! Each [`ErrorCode`] maps to exactly one HTTP status, here, in [`ErrorCode::http_status`].
//! Clients and tests match on the code, never on the message.

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = ($text:literal, $status:literal), )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => $text,)* }
            }

            /// The HTTP status this code is sent with.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$name => $status,)* }
            }

            /// Looks a code up by its wire name.
            pub fn from_wire(s: &str) -> Option<ErrorCode> {
                match s { $($text => Some(ErrorCode::$name),)* _ => None }
            }
        }
    };
}

codes! {
    /// The request body is not valid JSON, or a field has the wrong type, or an unknown field was sent.
    InvalidJson = ("INVALID_JSON", 400),
    /// A field has a value that is not allowed (message names the field and what is allowed).
    InvalidArgument = ("INVALID_ARGUMENT", 400),
    /// A binary field is not valid base64.
    InvalidBase64 = ("INVALID_BASE64", 400),
    /// A resource name or ID is malformed.
    InvalidName = ("INVALID_NAME", 400),
    /// The request body is larger than the documented limit.
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 413),
    /// The request (its body) did not arrive within the documented time.
    RequestTimeout = ("REQUEST_TIMEOUT", 408),
    /// The request's `Content-Type` is not one this route accepts (JSON, or text for policies).
    UnsupportedMediaType = ("UNSUPPORTED_MEDIA_TYPE", 415),
    /// No bearer token was sent.
    Unauthenticated = ("UNAUTHENTICATED", 401),
    /// The bearer token is unknown, revoked or expired.
    TokenInvalid = ("TOKEN_INVALID", 401),
    /// The principal has no role that grants this action on this resource.
    PermissionDenied = ("PERMISSION_DENIED", 403),
    /// No such route.
    RouteNotFound = ("ROUTE_NOT_FOUND", 404),
    /// The route exists but not for this HTTP method.
    MethodNotAllowed = ("METHOD_NOT_ALLOWED", 405),
    /// The location does not exist or this node's HSM does not hold its wrapping key.
    LocationNotFound = ("LOCATION_NOT_FOUND", 404),
    /// This node does not serve the location (its HSM holds no wrapping key for it, or its
    /// `locations` setting leaves it out): send the request to a node of that region.
    LocationNotServed = ("LOCATION_NOT_SERVED", 421),
    /// The key ring does not exist.
    KeyRingNotFound = ("KEY_RING_NOT_FOUND", 404),
    /// The crypto key does not exist.
    KeyNotFound = ("KEY_NOT_FOUND", 404),
    /// The key version does not exist.
    KeyVersionNotFound = ("KEY_VERSION_NOT_FOUND", 404),
    /// The API token does not exist.
    TokenNotFound = ("TOKEN_NOT_FOUND", 404),
    /// The role binding does not exist.
    RoleBindingNotFound = ("ROLE_BINDING_NOT_FOUND", 404),
    /// A resource with this name already exists.
    AlreadyExists = ("ALREADY_EXISTS", 409),
    /// The caller would lock itself out: revoking the token it signs in with, or removing its
    /// own Administrator role.
    OwnAccess = ("OWN_ACCESS", 409),
    /// The change would leave no administrator who can sign in.
    LastAdministrator = ("LAST_ADMINISTRATOR", 409),
    /// The resource changed concurrently; retry the request.
    Conflict = ("CONFLICT", 409),
    /// A key of this name is deleted but recoverable: recover it, or wait for (or ask for) its
    /// purge, before the name is used again.
    KeyDeleted = ("KEY_DELETED", 409),
    /// A deleted key's retention has not ended: it cannot be purged before its scheduled
    /// purge date (the key's destroy-scheduled duration after its deletion).
    PurgeProtected = ("PURGE_PROTECTED", 403),
    /// The requested protection level is not available for this algorithm on this deployment's
    /// HSM (the message names the mechanism the HSM lacks).
    ProtectionLevelUnavailable = ("PROTECTION_LEVEL_UNAVAILABLE", 400),
    /// The key's purpose does not allow this operation (e.g. sign with an encryption key).
    WrongPurpose = ("WRONG_PURPOSE", 400),
    /// The key's `keyOps` do not include the operation.
    KeyOperationNotAllowed = ("KEY_OPERATION_NOT_ALLOWED", 400),
    /// The algorithm does not support this operation or argument.
    UnsupportedAlgorithm = ("UNSUPPORTED_ALGORITHM", 400),
    /// The operation belongs to a compatible API (Azure Key Vault) but Sovra does not offer it;
    /// the message says what to use instead.
    OperationUnsupported = ("OPERATION_UNSUPPORTED", 400),
    /// The key version is not enabled (disabled, scheduled for destruction or destroyed).
    KeyVersionNotEnabled = ("KEY_VERSION_NOT_ENABLED", 400),
    /// The key version's activation time (Key Vault's `nbf`) has not come.
    KeyVersionNotYetValid = ("KEY_VERSION_NOT_YET_VALID", 400),
    /// The key version has expired (Key Vault's `exp`): it no longer encrypts, signs or is
    /// released; it still decrypts and verifies.
    KeyVersionExpired = ("KEY_VERSION_EXPIRED", 400),
    /// The key version's material is destroyed.
    KeyVersionDestroyed = ("KEY_VERSION_DESTROYED", 400),
    /// The key version is in a state that does not allow this transition.
    InvalidStateTransition = ("INVALID_STATE_TRANSITION", 400),
    /// The organisation requires a version to be disabled before it can be destroyed.
    DisableBeforeDestroyRequired = ("DISABLE_BEFORE_DESTROY_REQUIRED", 400),
    /// The key has no primary version to use.
    NoPrimaryVersion = ("NO_PRIMARY_VERSION", 400),
    /// The ciphertext is malformed, was altered, or belongs to another key or AAD.
    CiphertextInvalid = ("CIPHERTEXT_INVALID", 400),
    /// The per-principal quota is exhausted; retry after the `Retry-After` seconds.
    QuotaExceeded = ("QUOTA_EXCEEDED", 429),
    /// The evidence could not be parsed (truncated, wrong length, bad encoding, unknown version).
    AttestMalformed = ("ATTEST_MALFORMED", 400),
    /// The evidence is of a version or variant this server does not support.
    AttestUnsupported = ("ATTEST_UNSUPPORTED", 400),
    /// A signature over the evidence does not verify.
    AttestSignatureInvalid = ("ATTEST_SIGNATURE_INVALID", 400),
    /// A certificate chain of the evidence does not lead to a trusted root.
    AttestChainInvalid = ("ATTEST_CHAIN_INVALID", 400),
    /// A certificate or collateral is outside its validity window.
    AttestExpired = ("ATTEST_EXPIRED", 400),
    /// A certificate in the evidence's chain is revoked.
    AttestRevoked = ("ATTEST_REVOKED", 400),
    /// Collateral the evidence needs is missing; the message names what to import.
    AttestCollateralMissing = ("ATTEST_COLLATERAL_MISSING", 400),
    /// Collateral is present but invalid or inconsistent with the evidence.
    AttestCollateralInvalid = ("ATTEST_COLLATERAL_INVALID", 400),
    /// The evidence's TCB is inconsistent with its certificate or collateral.
    AttestTcbMismatch = ("ATTEST_TCB_MISMATCH", 400),
    /// The TCB is revoked or matches no acceptable TCB level.
    AttestTcbNotAcceptable = ("ATTEST_TCB_NOT_ACCEPTABLE", 400),
    /// The evidence does not carry the expected nonce.
    AttestNonceMismatch = ("ATTEST_NONCE_MISMATCH", 400),
    /// The report data does not carry the hash of the supplied runtime data.
    AttestReportDataMismatch = ("ATTEST_REPORT_DATA_MISMATCH", 400),
    /// A binding inside the evidence is broken (QE report, HCL runtime data, PCR digest, event log).
    AttestBindingInvalid = ("ATTEST_BINDING_INVALID", 400),
    /// The evidence comes from a debug-mode TEE and that is refused.
    AttestDebugRefused = ("ATTEST_DEBUG_REFUSED", 400),
    /// The evidence is genuine but the provider's policy did not permit it.
    AttestPolicyDenied = ("ATTEST_POLICY_DENIED", 403),
    /// A policy text does not parse or is invalid (message gives line and column).
    PolicyInvalid = ("POLICY_INVALID", 400),
    /// A policy is larger than a documented limit (bytes, tokens, rules, conditions, arguments).
    PolicyTooLarge = ("POLICY_TOO_LARGE", 400),
    /// A policy nests deeper than the documented limit (function calls, brackets).
    PolicyTooDeep = ("POLICY_TOO_DEEP", 400),
    /// A policy exceeded its evaluation budget (work, claims, bytes produced or time).
    PolicyEvalLimit = ("POLICY_EVAL_LIMIT", 400),
    /// A signed policy's signature or signer certificate is not accepted.
    PolicySignatureInvalid = ("POLICY_SIGNATURE_INVALID", 400),
    /// The attestation provider does not exist.
    ProviderNotFound = ("PROVIDER_NOT_FOUND", 404),
    /// The collateral item does not exist.
    CollateralNotFound = ("COLLATERAL_NOT_FOUND", 404),
    /// The reference-value set does not exist.
    ReferenceValuesNotFound = ("REFERENCE_VALUES_NOT_FOUND", 404),
    /// This node's HSM attestation key has no certificate and the owner root's key is held by
    /// the operator's CA: install one (`sovra keys attestation csr`, then `set-roots`).
    KeyAttestationUnavailable = ("KEY_ATTESTATION_UNAVAILABLE", 409),
    /// The import job does not exist.
    ImportJobNotFound = ("IMPORT_JOB_NOT_FOUND", 404),
    /// The import job has expired; create a new one.
    ImportJobExpired = ("IMPORT_JOB_EXPIRED", 400),
    /// The wrapped key does not open with the import job's key (wrong job or method, corrupted),
    /// or is not a key of the algorithm named (size, type, curve, public key).
    ImportInvalid = ("IMPORT_INVALID", 400),
    /// This deployment's HSM has no security domain to export: a PKCS#11 HSM's keys are backed
    /// up with the HSM's own mechanism (docs/hsm.md).
    SecurityDomainUnsupported = ("SECURITY_DOMAIN_UNSUPPORTED", 409),
    /// The security domain was downloaded already and this node allows one download
    /// (`hsm.security_domain_downloads = "once"`, the default).
    SecurityDomainAlreadyDownloaded = ("SECURITY_DOMAIN_ALREADY_DOWNLOADED", 409),
    /// A security domain file is malformed, altered, or not for this deployment's database.
    SecurityDomainInvalid = ("SECURITY_DOMAIN_INVALID", 400),
    /// Fewer private keys than the security domain's quorum, or keys that match none of its
    /// shares.
    SecurityDomainQuorumNotMet = ("SECURITY_DOMAIN_QUORUM_NOT_MET", 400),
    /// An unseal share that belongs to none of this node's administrators (or was altered).
    UnsealShareInvalid = ("UNSEAL_SHARE_INVALID", 400),
    /// The key's release policy is immutable.
    ReleasePolicyImmutable = ("RELEASE_POLICY_IMMUTABLE", 409),
    /// The key is not exportable: it can never leave Sovra.
    KeyNotExportable = ("KEY_NOT_EXPORTABLE", 403),
    /// The attestation token's issuer is not a trusted authority (own provider or configured issuer).
    ReleaseUntrustedIssuer = ("RELEASE_UNTRUSTED_ISSUER", 403),
    /// The attestation token is malformed or its signature does not verify.
    ReleaseTokenInvalid = ("RELEASE_TOKEN_INVALID", 400),
    /// The attestation token is expired or not yet valid.
    ReleaseTokenExpired = ("RELEASE_TOKEN_EXPIRED", 403),
    /// The token's claims do not satisfy the key's release policy (the message names the clause).
    ReleasePolicyDenied = ("RELEASE_POLICY_DENIED", 403),
    /// The nonce is missing from the token, unknown, expired or already used.
    ReleaseNonceInvalid = ("RELEASE_NONCE_INVALID", 403),
    /// The token carries no RSA encryption key (x-ms-runtime.keys) to wrap the key to.
    ReleaseNoTargetKey = ("RELEASE_NO_TARGET_KEY", 400),
    /// A trusted issuer's JWKS could not be fetched (and no cached copy holds the key).
    ReleaseIssuerUnavailable = ("RELEASE_ISSUER_UNAVAILABLE", 502),
    /// Stored key material failed its integrity check (row altered or swapped).
    IntegrityFailure = ("INTEGRITY_FAILURE", 500),
    /// The HSM refused or failed an operation.
    HsmFailure = ("HSM_FAILURE", 500),
    /// The HSM cannot be reached now (token removed, network HSM down, every session busy past
    /// the call timeout); retry after the `Retry-After` seconds. Sovra reconnects by itself.
    HsmUnavailable = ("HSM_UNAVAILABLE", 503),
    /// The server is at capacity for this kind of work (its bounded queue is full); retry after
    /// the `Retry-After` seconds.
    Overloaded = ("OVERLOADED", 503),
    /// The service is starting, shutting down or its store is unreachable.
    Unavailable = ("UNAVAILABLE", 503),
    /// The node's software HSM is sealed by a quorum: it serves nothing until enough
    /// administrators ran `sovra unseal submit`.
    Sealed = ("SEALED", 503),
    /// An unexpected server error (details are in the server log, never in the response).
    Internal = ("INTERNAL", 500),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every failed request: `{"error": {"code", "message", "status"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// A failed request: a stable code, an HTTP status and a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code, e.g. `KEY_NOT_FOUND`.
    pub code: String,
    /// Human-readable explanation and what to do about it.
    pub message: String,
    /// The HTTP status the error was sent with.
    pub status: u16,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            status: code.http_status(),
        }
    }

    /// The error code, if it is one this version knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_wire(&self.code)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_client_errors_are_4xx() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(c.as_str()), Some(*c));
            let s = c.http_status();
            assert!((400..600).contains(&s));
        }
        assert_eq!(ErrorCode::InvalidJson.http_status(), 400);
        assert_eq!(ErrorCode::QuotaExceeded.http_status(), 429);
    }
}
