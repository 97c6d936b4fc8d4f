//! Policy errors, each with a stable code.

/// Why a policy could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// Evaluation failed (e.g. a function applied to the wrong type).
    #[error("policy evaluation failed: {0}")]
    Eval(String),
    /// The policy is larger than a limit (bytes, tokens, rules, conditions, arguments).
    #[error("the policy has more than {limit} {what}; split or simplify it")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The policy nests deeper than the limit (function calls, brackets).
    #[error("the policy nests deeper than {limit} levels at line {line}; flatten it")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// 1-based line where the limit was passed.
        line: usize,
    },
    /// Evaluation exceeded its budget (work, claims, bytes produced or time).
    #[error("the policy exceeded its evaluation budget: {0}")]
    EvalLimit(String),
}

impl PolicyError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "POLICY_SYNTAX",
            Self::Invalid(_) => "POLICY_INVALID",
            Self::Eval(_) => "POLICY_EVAL",
            Self::TooLarge { .. } => "POLICY_TOO_LARGE",
            Self::TooDeep { .. } => "POLICY_TOO_DEEP",
            Self::EvalLimit(_) => "POLICY_EVAL_LIMIT",
        }
    }
}
