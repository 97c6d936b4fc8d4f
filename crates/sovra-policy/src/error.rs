//! Policy errors, each with a stable code.

/// Why a policy could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text does not parse; the message gives line and column.
    #[error("policy syntax error at line {line}, column {col}: {msg}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What was wrong.
        msg: String,
    },
    /// The policy parses but is not valid (e.g. `permit()` in issuance rules).
    #[error("invalid policy: {0}")]
    Invalid(String),
    /// Evaluation failed (e.g. a function applied to the wrong type, an evaluation limit).
    #[error("policy evaluation failed: {0}")]
    Eval(String),
}

impl PolicyError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "POLICY_SYNTAX",
            Self::Invalid(_) => "POLICY_INVALID",
            Self::Eval(_) => "POLICY_EVAL",
        }
    }
}
