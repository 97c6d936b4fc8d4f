//! Write batches: the only way to change the store.

use crate::Collection;

/// What a write requires of the record it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No requirement.
    Any,
    /// The record must not exist.
    Absent,
    /// The record must exist at this revision.
    Rev(u64),
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a record.
    Put {
        /// Collection.
        c: Collection,
        /// Name.
        name: String,
        /// Parent (listing key).
        parent: String,
        /// Body.
        data: Vec<u8>,
        /// Due time, if scheduled work is pending.
        due: Option<i64>,
        /// Requirement.
        expect: Expect,
    },
    /// Delete a record.
    Delete {
        /// Collection.
        c: Collection,
        /// Name.
        name: String,
        /// Requirement.
        expect: Expect,
    },
}

impl Op {
    /// The record this operation touches.
    pub fn target(&self) -> (Collection, &str) {
        match self {
            Op::Put { c, name, .. } | Op::Delete { c, name, .. } => (*c, name),
        }
    }

    /// Checks the operation's expectation against the record's current revision (`None`:
    /// absent) and gives the revision a put writes: the compare-and-set rule of every driver.
    pub fn check(&self, current: Option<u64>) -> Result<u64, crate::StoreError> {
        let expect = match self {
            Op::Put { expect, .. } | Op::Delete { expect, .. } => *expect,
        };
        let (c, name) = self.target();
        let conflict = |reason| crate::StoreError::Conflict {
            collection: c.0,
            name: name.to_owned(),
            reason,
        };
        match (expect, current) {
            (Expect::Absent, Some(_)) => Err(conflict(crate::error::ConflictReason::Exists)),
            (Expect::Rev(_), None) => Err(conflict(crate::error::ConflictReason::Missing)),
            (Expect::Rev(want), Some(have)) if want != have => {
                Err(conflict(crate::error::ConflictReason::Changed))
            }
            (Expect::Any | Expect::Absent, None) | (Expect::Any | Expect::Rev(_), Some(_)) => {
                Ok(current.unwrap_or(0) + 1)
            }
        }
    }
}

/// An atomic set of writes and audit appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Writes, applied in order.
    pub ops: Vec<Op>,
    /// Audit record bodies (JSON), appended to the chain in order.
    pub audit: Vec<Vec<u8>>,
    /// The key the appended records' links are computed with (`None`: unkeyed).
    pub chain_key: Option<crate::audit::ChainKey>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(
        &mut self,
        c: Collection,
        name: impl Into<String>,
        parent: impl Into<String>,
        data: Vec<u8>,
        due: Option<i64>,
        expect: Expect,
    ) -> &mut Self {
        self.ops.push(Op::Put {
            c,
            name: name.into(),
            parent: parent.into(),
            data,
            due,
            expect,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, c: Collection, name: impl Into<String>, expect: Expect) -> &mut Self {
        self.ops.push(Op::Delete {
            c,
            name: name.into(),
            expect,
        });
        self
    }

    /// Adds an audit record body.
    pub fn audit(&mut self, body: Vec<u8>) -> &mut Self {
        self.audit.push(body);
        self
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.audit.is_empty()
    }
}
