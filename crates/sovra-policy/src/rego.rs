//! Rego policies through `regorus` (Microsoft's Rego interpreter, as used by the Confidential
//! Containers trustee).
//!
//! Convention: the policy is in `package policy`; `input` is the claims object; the boolean
//! rule `allow` decides (absent or not `true` means refused); an optional object rule `claims`
//! is merged into the token.

use crate::error::PolicyError;
use serde_json::{Map, Value};

/// A compiled Rego policy.
#[derive(Clone)]
pub struct RegoPolicy {
    engine: regorus::Engine,
}

impl std::fmt::Debug for RegoPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegoPolicy")
    }
}

/// A Rego decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegoDecision {
    /// `data.policy.allow` was `true`.
    pub allow: bool,
    /// `data.policy.claims`, if the policy defines it.
    pub claims: Map<String, Value>,
}

fn syntax(e: impl std::fmt::Display) -> PolicyError {
    let msg = e.to_string();
    // regorus reports "policy.rego:LINE:COL: message"; keep its position.
    let mut parts = msg.splitn(4, ':');
    let (_, line, col, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (
        line.and_then(|l| l.trim().parse().ok()),
        col.and_then(|c| c.trim().parse().ok()),
        rest,
    ) {
        (Some(line), Some(col), Some(rest)) => PolicyError::Syntax {
            line,
            col,
            msg: rest.trim().to_string(),
        },
        _ => PolicyError::Syntax {
            line: 1,
            col: 1,
            msg,
        },
    }
}

fn eval_err(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Eval(e.to_string())
}

impl RegoPolicy {
    /// Compiles `text` (must declare `package policy`).
    pub fn compile(text: &str) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        let pkg = engine
            .add_policy("policy.rego".into(), text.into())
            .map_err(syntax)?;
        if pkg != "data.policy" {
            return Err(PolicyError::Invalid(format!(
                "the Rego policy must be `package policy`, not {pkg}"
            )));
        }
        Ok(Self { engine })
    }

    /// Evaluates with `input` = `claims`.
    pub fn evaluate(&self, claims: &Map<String, Value>) -> Result<RegoDecision, PolicyError> {
        let mut engine = self.engine.clone();
        let input = regorus::Value::from_json_str(&Value::Object(claims.clone()).to_string())
            .map_err(eval_err)?;
        engine.set_input(input);
        let allow = engine
            .eval_rule("data.policy.allow".into())
            .map_err(eval_err)?;
        let allow = allow == regorus::Value::from(true);
        let mut out = RegoDecision {
            allow,
            claims: Map::new(),
        };
        if let Ok(c) = engine.eval_rule("data.policy.claims".into())
            && let Ok(Value::Object(m)) = c
                .to_json_str()
                .map(|s| serde_json::from_str(&s).unwrap_or(Value::Null))
        {
            out.claims = m;
        }
        Ok(out)
    }
}
