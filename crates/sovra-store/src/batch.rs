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
