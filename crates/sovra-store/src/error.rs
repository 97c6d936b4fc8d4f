//! Store errors.

/// A store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A write's expectation did not hold (record exists, missing, or changed concurrently).
    #[error("{collection} {name:?}: {reason}")]
    Conflict {
        /// Collection.
        collection: &'static str,
        /// Record name.
        name: String,
        /// What did not hold.
        reason: ConflictReason,
    },
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Backend(String),
    /// Stored data is not what Sovra wrote (corrupt or edited).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A record failed its integrity check (its MAC): edited or inserted outside Sovra.
    #[error("{collection} {name:?} failed its integrity check")]
    Integrity {
        /// Collection.
        collection: &'static str,
        /// Record name.
        name: String,
    },
}

/// Why a write's expectation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    /// The record was expected to be absent but exists.
    Exists,
    /// The record was expected to exist but does not.
    Missing,
    /// The record's revision differs from the expected one.
    Changed,
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Exists => "already exists",
            Self::Missing => "does not exist",
            Self::Changed => "was changed concurrently",
        })
    }
}
