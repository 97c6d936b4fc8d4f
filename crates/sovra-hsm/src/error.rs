//! HSM errors.

/// An HSM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The HSM does not hold a wrapping key for this location.
    #[error("this HSM holds no wrapping key for location {0:?}")]
    UnknownLocation(String),
    /// A wrapped blob failed authentication: altered, swapped to another row, or made by another HSM.
    #[error(
        "wrapped key material failed its integrity check (altered, swapped, or wrapped by another HSM)"
    )]
    Integrity,
    /// The sealed root could not be unsealed with the given unseal key.
    #[error("cannot unseal the software HSM root key: {0}")]
    Unseal(String),
    /// Reading or writing the HSM's files failed.
    #[error("HSM storage error: {0}")]
    Io(String),
    /// The HSM cannot be reached now (token removed, module or network HSM down); operations
    /// succeed again once it is back.
    #[error("the HSM is unavailable: {0}")]
    Unavailable(String),
    /// Imported material does not open with the import job's key, or is not a key of the
    /// algorithm named (the message says which).
    #[error("{0}")]
    ImportInvalid(String),
    /// The HSM lacks a mechanism this operation needs.
    #[error("{0}")]
    Unsupported(String),
    /// The HSM (or its library) failed.
    #[error("HSM failure: {0}")]
    Device(String),
}

impl From<std::io::Error> for HsmError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}
