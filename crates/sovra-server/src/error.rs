//! The service layer's error: a stable code, a message that says what to fix, and (for
//! server faults) a detail that goes to the log and never to the client.

use sovra_proto::{ApiError, ErrorCode};

/// An error from the service layer.
#[derive(Debug, Clone)]
pub struct Error {
    /// Stable code (and so HTTP status).
    pub code: ErrorCode,
    /// Message for the client.
    pub message: String,
    /// Seconds to wait before retrying (quota errors).
    pub retry_after: Option<u64>,
    /// Detail for the server log only.
    pub internal: Option<String>,
}

/// Result alias for the service layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A client-facing error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            internal: None,
        }
    }

    /// An internal error: the client sees a generic message, the log gets `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error; the server log has the details".into(),
            retry_after: None,
            internal: Some(detail.into()),
        }
    }

    /// Shorthand for [`ErrorCode::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// The wire form.
    pub fn to_api(&self) -> ApiError {
        ApiError::new(self.code, self.message.clone())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(i) = &self.internal {
            write!(f, " ({i})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<sovra_store::StoreError> for Error {
    fn from(e: sovra_store::StoreError) -> Self {
        match e {
            sovra_store::StoreError::Conflict { .. } => Self::new(
                ErrorCode::Conflict,
                "the resource was changed by another request at the same time; retry",
            ),
            sovra_store::StoreError::Backend(d) => Self {
                code: ErrorCode::Unavailable,
                message: "the store is unavailable; retry later".into(),
                retry_after: Some(1),
                internal: Some(d),
            },
            sovra_store::StoreError::Integrity { collection, name } => Self {
                code: ErrorCode::IntegrityFailure,
                message: "a stored record failed its integrity check: it was altered or swapped, or inserted outside Sovra; restore it from a backup".into(),
                retry_after: None,
                internal: Some(format!("{collection} {name:?}: MAC mismatch")),
            },
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<sovra_hsm::HsmError> for Error {
    fn from(e: sovra_hsm::HsmError) -> Self {
        match e {
            sovra_hsm::HsmError::UnknownLocation(l) => {
                Self::new(ErrorCode::LocationNotServed, format!("this node does not serve location {l:?} (its HSM holds no wrapping key for it): send the request to a node of that location's region"))
            }
            sovra_hsm::HsmError::Integrity => Self {
                code: ErrorCode::IntegrityFailure,
                message: "stored key material failed its integrity check: the row was altered or swapped; restore it from a backup".into(),
                retry_after: None,
                internal: Some("unwrap failed: AAD or blob mismatch".into()),
            },
            sovra_hsm::HsmError::Unavailable(m) => Self {
                code: ErrorCode::HsmUnavailable,
                message: "the HSM is unavailable; retry shortly (operators: see the server log)".into(),
                retry_after: Some(1),
                internal: Some(m),
            },
            sovra_hsm::HsmError::Unsupported(m) => Self::new(ErrorCode::ProtectionLevelUnavailable, m),
            sovra_hsm::HsmError::ImportInvalid(m) => Self::new(ErrorCode::ImportInvalid, m),
            other => Self { code: ErrorCode::HsmFailure, message: "the HSM failed the operation".into(), retry_after: None, internal: Some(other.to_string()) },
        }
    }
}

impl From<sovra_proto::names::NameError> for Error {
    fn from(e: sovra_proto::names::NameError) -> Self {
        Self::new(ErrorCode::InvalidName, e.0)
    }
}
