//! Rego policies through `regorus` (Microsoft's Rego interpreter, as used by the Confidential
//! Containers trustee).
//!
//! Convention: the policy is in `package policy`; `input` is the claims object; the boolean
//! rule `allow` decides (absent or not `true` means refused); an optional object rule `claims`
//! is merged into the token.

use crate::error::PolicyError;
use crate::limits::{MAX_POLICY_BYTES, MAX_REGO_DEPTH, MAX_REGO_PARSE_WORK, REGO_EVAL_MILLIS};
use serde_json::{Map, Value};
use std::num::NonZeroU32;
use std::time::Duration;

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

fn eval_err<E>(e: E) -> PolicyError
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static> + std::fmt::Display,
{
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&*e);
    let mut limit = false;
    while let Some(c) = cur {
        limit |= c.downcast_ref::<regorus::LimitError>().is_some();
        cur = c.source();
    }
    if limit {
        PolicyError::EvalLimit(format!(
            "Rego evaluation stopped after {REGO_EVAL_MILLIS} ms ({e})"
        ))
    } else {
        PolicyError::Eval(e.to_string())
    }
}

/// Built-ins refused in policies: they allocate in proportion to their arguments before the
/// evaluation timer can stop them (`numbers.range(0, 1e15)` asks for petabytes at once).
const REFUSED_BUILTINS: &[&str] = &["numbers.range(", "numbers.range_step("];

/// Checks Rego text before the engine sees it: its size, how deeply its brackets nest (the
/// Rego parser backtracks, so its time grows exponentially with the nesting: 76 bytes of
/// `[[[…]]]` took it 18 s), and the built-ins it calls. Comments and string literals are
/// skipped.
pub fn gate(text: &str) -> Result<(), PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            what: "bytes",
            limit: MAX_POLICY_BYTES,
        });
    }
    let (mut depth, mut line, mut work) = (0usize, 1usize, 0u64);
    // The text outside comments and strings, without whitespace, for the built-in check.
    let mut code = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if !c.is_whitespace() && c != '#' && c != '"' && c != '`' {
            code.push(c);
        }
        match c {
            '\n' => line += 1,
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                for c in chars.by_ref() {
                    match c {
                        '`' => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_REGO_DEPTH {
                    return Err(PolicyError::TooDeep {
                        limit: MAX_REGO_DEPTH,
                        line,
                    });
                }
                if c != '(' {
                    work = work.saturating_add(1u64 << depth);
                    if work > MAX_REGO_PARSE_WORK {
                        return Err(PolicyError::TooLarge {
                            what: "nested brackets (each [ or { weighted by 2^depth)",
                            limit: MAX_REGO_PARSE_WORK as usize,
                        });
                    }
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(b) = REFUSED_BUILTINS.iter().find(|b| code.contains(*b)) {
        return Err(PolicyError::Invalid(format!(
            "the built-in {}) is not allowed: it allocates without bound; list the values instead",
            b
        )));
    }
    Ok(())
}

impl RegoPolicy {
    /// Compiles `text` (must declare `package policy`), after [`gate`].
    pub fn compile(text: &str) -> Result<Self, PolicyError> {
        gate(text)?;
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
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: Duration::from_millis(REGO_EVAL_MILLIS),
            check_interval: NonZeroU32::MIN,
        });
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
