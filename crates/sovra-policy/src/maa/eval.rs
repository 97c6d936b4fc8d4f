//! Evaluation of a parsed MAA policy over a set of claims.
//!
//! Claims are a multiset of (type, value, issuer). A condition holds when at least one claim
//! passes all its tests (a negated condition: when none does); the first such claim is bound to
//! the condition's identifier. Rules fire in order; `add` and `issue` extend the incoming set,
//! so later rules see their claims.
//!
//! Every evaluation runs on a [`Budget`] (see [`crate::limits`]): each claim test, each
//! function call and each byte a rule produces is charged, so a policy that doubles a string
//! across rules, or matches every claim against every rule, stops with
//! [`PolicyError::EvalLimit`] instead of taking the node's CPU and memory.

use super::parser::{Action, Ast, Condition, Expr, Op, Prop, Rule};
use crate::error::PolicyError;
use crate::limits::{MAX_CLAIMS, MAX_PRODUCED_BYTES, MAX_VALUE_BYTES, MAX_WORK};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// One claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Type (name).
    pub ty: String,
    /// Value.
    pub value: Value,
    /// Issuer.
    pub issuer: &'static str,
}

/// What a policy decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// At least one `permit()` fired and no `deny()` did.
    pub authorized: bool,
    /// Why not, when not authorized.
    pub reason: Option<String>,
    /// Claims issued into the token (a type issued twice becomes an array).
    pub issued: Map<String, Value>,
    /// Properties issued with `issueproperty` (and configuration rules).
    pub properties: Map<String, Value>,
}

/// What one evaluation may still spend.
#[derive(Debug)]
struct Budget {
    work: u64,
    produced: usize,
}

impl Budget {
    fn new() -> Self {
        Self {
            work: MAX_WORK,
            produced: MAX_PRODUCED_BYTES,
        }
    }

    fn charge(&mut self, units: u64) -> Result<(), PolicyError> {
        self.work = self.work.checked_sub(units).ok_or_else(|| {
            PolicyError::EvalLimit(format!(
                "more than {MAX_WORK} units of work (claim tests and function calls)"
            ))
        })?;
        Ok(())
    }

    /// Charges a value a rule produced (added or issued) by its size.
    fn produce(&mut self, v: &Value) -> Result<(), PolicyError> {
        let n = size_upto(v, MAX_VALUE_BYTES.saturating_add(1));
        if n > MAX_VALUE_BYTES {
            return Err(PolicyError::EvalLimit(format!(
                "a rule produced a value larger than {MAX_VALUE_BYTES} bytes"
            )));
        }
        self.produced = self.produced.checked_sub(n).ok_or_else(|| {
            PolicyError::EvalLimit(format!(
                "the rules produced more than {MAX_PRODUCED_BYTES} bytes of claims"
            ))
        })?;
        self.charge(1 + n as u64 / 64)
    }
}

/// The approximate encoded size of `v`, counting no further than `cap`.
fn size_upto(v: &Value, cap: usize) -> usize {
    let mut total = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(match v {
            Value::Null | Value::Bool(_) | Value::Number(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Array(a) => {
                stack.extend(a.iter());
                2 + a.len()
            }
            Value::Object(m) => {
                for (k, x) in m {
                    total = total.saturating_add(k.len() + 3);
                    stack.push(x);
                }
                2
            }
        });
        if total >= cap {
            return total;
        }
    }
    total
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Double",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// A property of a claim, borrowed where it can be.
enum PropVal<'a> {
    Str(&'a str),
    Val(&'a Value),
}

fn compare(op: Op, a: &PropVal<'_>, b: &Value) -> bool {
    match (a, b) {
        (PropVal::Str(x), Value::String(y)) => match op {
            Op::Eq => *x == y.as_str(),
            Op::Ne => *x != y.as_str(),
            _ => false,
        },
        (PropVal::Str(_), _) => op == Op::Ne,
        (PropVal::Val(Value::Number(x)), Value::Number(y)) => {
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return false;
            };
            match op {
                Op::Eq => x == y,
                Op::Ne => x != y,
                Op::Lt => x < y,
                Op::Le => x <= y,
                Op::Gt => x > y,
                Op::Ge => x >= y,
            }
        }
        (PropVal::Val(a), b) => match op {
            Op::Eq => *a == b,
            Op::Ne => *a != b,
            _ => false,
        },
    }
}

/// What comparing `a` with `b` costs: long strings and large values cost more.
fn compare_cost(a: &PropVal<'_>, b: &Value) -> u64 {
    let len = |v: &Value| match v {
        Value::String(s) => s.len(),
        Value::Array(x) => x.len() * 8,
        Value::Object(m) => m.len() * 16,
        _ => 8,
    };
    let a = match a {
        PropVal::Str(s) => s.len(),
        PropVal::Val(v) => len(v),
    };
    1 + (a.min(len(b)) / 64) as u64
}

type Bindings<'c> = HashMap<&'c str, &'c Claim>;

fn prop_of(c: &Claim, p: Prop) -> PropVal<'_> {
    match p {
        Prop::Type => PropVal::Str(&c.ty),
        Prop::Value => PropVal::Val(&c.value),
        Prop::Issuer => PropVal::Str(c.issuer),
        Prop::ValueType => PropVal::Str(value_type(&c.value)),
    }
}

fn eval_expr<'a>(
    e: &'a Expr,
    b: &Bindings<'a>,
    budget: &mut Budget,
) -> Result<Cow<'a, Value>, PolicyError> {
    match e {
        Expr::Lit(v) => Ok(Cow::Borrowed(v)),
        Expr::Ref(name, p) => {
            let c = b.get(name.as_str()).ok_or_else(|| {
                PolicyError::Eval(format!("'{name}' is not bound by a condition of this rule"))
            })?;
            Ok(match prop_of(c, *p) {
                PropVal::Str(s) => Cow::Owned(Value::from(s)),
                PropVal::Val(v) => Cow::Borrowed(v),
            })
        }
        Expr::Call(f, args) => {
            budget.charge(1)?;
            let vals = args
                .iter()
                .map(|a| eval_expr(a, b, budget))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&Value> = vals.iter().map(|v| v.as_ref()).collect();
            call(f, &refs, budget).map(Cow::Owned)
        }
    }
}

fn call(f: &str, a: &[&Value], budget: &mut Budget) -> Result<Value, PolicyError> {
    let bad = || PolicyError::Eval(format!("{f}() got arguments of the wrong type or number"));
    match (f, a) {
        ("AppendString", [Value::String(x), Value::String(y)]) => {
            if x.len().saturating_add(y.len()) > MAX_VALUE_BYTES {
                return Err(PolicyError::EvalLimit(format!(
                    "AppendString() would make a string longer than {MAX_VALUE_BYTES} bytes"
                )));
            }
            budget.charge(1 + (x.len() + y.len()) as u64 / 64)?;
            Ok(Value::from(format!("{x}{y}")))
        }
        ("NegateBool", [Value::Bool(x)]) => Ok(Value::Bool(!x)),
        ("IsSubsetOf", [Value::Array(x), Value::Array(y)]) => {
            budget.charge((x.len() as u64).saturating_mul(y.len() as u64))?;
            Ok(Value::Bool(x.iter().all(|v| y.contains(v))))
        }
        ("ContainsOnlyValue", [Value::Array(x), v]) => {
            budget.charge(1 + x.len() as u64)?;
            Ok(Value::Bool(!x.is_empty() && x.iter().all(|e| e == *v)))
        }
        ("JsonToClaimValue", [Value::String(s)]) => {
            budget.charge(1 + s.len() as u64 / 16)?;
            serde_json::from_str(s).map_err(|_| bad())
        }
        ("JmesPath", [obj, Value::String(path)]) => {
            budget.charge(1 + path.len() as u64)?;
            let mut cur = *obj;
            for part in path.split('.') {
                cur = match cur {
                    Value::Object(m) => m.get(part).ok_or_else(|| {
                        PolicyError::Eval(format!("JmesPath: no member {part:?}"))
                    })?,
                    Value::Array(v) => part
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| v.get(i))
                        .ok_or_else(bad)?,
                    _ => return Err(bad()),
                };
            }
            budget.charge(1 + size_upto(cur, MAX_PRODUCED_BYTES) as u64 / 64)?;
            Ok(cur.clone())
        }
        (
            "AppendString" | "NegateBool" | "IsSubsetOf" | "ContainsOnlyValue" | "JsonToClaimValue"
            | "JmesPath",
            _,
        ) => Err(bad()),
        _ => Err(PolicyError::Eval(format!("unknown function {f}()"))),
    }
}

/// Finds claims satisfying every condition; returns the bindings, or None.
fn matches<'r>(
    conds: &'r [Condition],
    claims: &'r [Claim],
    budget: &mut Budget,
) -> Result<Option<Bindings<'r>>, PolicyError> {
    let mut b: Bindings<'r> = HashMap::new();
    for cond in conds {
        let mut found = None;
        // Right-hand sides that do not depend on the claim under test are evaluated once.
        let rhs = cond
            .tests
            .iter()
            .map(|t| eval_expr(&t.rhs, &b, budget))
            .collect::<Result<Vec<_>, _>>()?;
        for c in claims {
            let mut ok = true;
            for (t, rhs) in cond.tests.iter().zip(&rhs) {
                let lhs = prop_of(c, t.prop);
                budget.charge(compare_cost(&lhs, rhs))?;
                if !compare(t.op, &lhs, rhs) {
                    ok = false;
                    break;
                }
            }
            if ok {
                found = Some(c);
                break;
            }
        }
        match (found, cond.negated) {
            (Some(_), true) | (None, false) => return Ok(None),
            (Some(c), false) => {
                if let Some(name) = &cond.bind {
                    b.insert(name.as_str(), c);
                }
            }
            (None, true) => {}
        }
    }
    Ok(Some(b))
}

fn type_string(v: Cow<'_, Value>, line: usize) -> Result<String, PolicyError> {
    match v.into_owned() {
        Value::String(s) => Ok(s),
        _ => Err(PolicyError::Eval(format!(
            "line {line}: a claim type must be a string"
        ))),
    }
}

fn insert(out: &mut Map<String, Value>, k: String, v: Value) {
    match out.get_mut(&k) {
        Some(Value::Array(a)) => a.push(v),
        Some(prev) => {
            let p = prev.take();
            *prev = Value::Array(vec![p, v]);
        }
        None => {
            out.insert(k, v);
        }
    }
}

/// What a firing rule does to the claim set and the decision, computed while the claims are
/// borrowed and applied after.
enum Effect {
    Permit,
    Deny,
    Claim { claim: Claim, issue: bool },
    Property(String, Value),
}

fn run_rules(
    rules: &[Rule],
    claims: &mut Vec<Claim>,
    d: &mut Decision,
    auth: &mut (bool, Option<usize>),
    budget: &mut Budget,
) -> Result<(), PolicyError> {
    for r in rules {
        let effect = {
            let Some(b) = matches(&r.conditions, claims, budget)? else {
                continue;
            };
            match &r.action {
                Action::Permit => Effect::Permit,
                Action::Deny => Effect::Deny,
                Action::Add(t, v) | Action::Issue(t, v) => {
                    let ty = type_string(eval_expr(t, &b, budget)?, r.line)?;
                    let value = eval_expr(v, &b, budget)?.into_owned();
                    Effect::Claim {
                        claim: Claim {
                            ty,
                            value,
                            issuer: "AttestationPolicy",
                        },
                        issue: matches!(r.action, Action::Issue(..)),
                    }
                }
                Action::AddClaim(name) | Action::IssueClaim(name) => {
                    let c = b.get(name.as_str()).copied().ok_or_else(|| {
                        PolicyError::Eval(format!("line {}: '{name}' is not bound", r.line))
                    })?;
                    Effect::Claim {
                        claim: Claim {
                            issuer: "AttestationPolicy",
                            ..c.clone()
                        },
                        issue: matches!(r.action, Action::IssueClaim(_)),
                    }
                }
                Action::IssueProperty(t, v) => {
                    let ty = type_string(eval_expr(t, &b, budget)?, r.line)?;
                    Effect::Property(ty, eval_expr(v, &b, budget)?.into_owned())
                }
            }
        };
        match effect {
            Effect::Permit => auth.0 = true,
            Effect::Deny => {
                if auth.1.is_none() {
                    auth.1 = Some(r.line);
                }
            }
            Effect::Claim { claim, issue } => {
                budget.produce(&claim.value)?;
                if claims.len() >= MAX_CLAIMS {
                    return Err(PolicyError::EvalLimit(format!(
                        "the rules made the claim set larger than {MAX_CLAIMS} claims"
                    )));
                }
                if issue {
                    insert(&mut d.issued, claim.ty.clone(), claim.value.clone());
                }
                claims.push(claim);
            }
            Effect::Property(ty, value) => {
                budget.produce(&value)?;
                d.properties.insert(ty, value);
            }
        }
    }
    Ok(())
}

/// Evaluates `ast` over `incoming` (each member a claim issued by `AttestationService`).
pub fn evaluate(ast: &Ast, incoming: &Map<String, Value>) -> Result<Decision, PolicyError> {
    if incoming.len() > MAX_CLAIMS {
        return Err(PolicyError::EvalLimit(format!(
            "more than {MAX_CLAIMS} incoming claims"
        )));
    }
    let mut claims: Vec<Claim> = incoming
        .iter()
        .map(|(k, v)| Claim {
            ty: k.clone(),
            value: v.clone(),
            issuer: "AttestationService",
        })
        .collect();
    let mut budget = Budget::new();
    let mut d = Decision::default();
    let mut auth = (false, None);
    run_rules(
        &ast.configuration,
        &mut claims,
        &mut d,
        &mut (false, None),
        &mut budget,
    )?;
    run_rules(
        &ast.authorization,
        &mut claims,
        &mut d,
        &mut auth,
        &mut budget,
    )?;
    d.authorized = auth.0 && auth.1.is_none();
    if !d.authorized {
        d.reason = Some(match auth.1 {
            Some(line) => format!("the deny() rule at line {line} matched"),
            None => "no permit() rule matched the claims".into(),
        });
        return Ok(d);
    }
    run_rules(
        &ast.issuance,
        &mut claims,
        &mut d,
        &mut (false, None),
        &mut budget,
    )?;
    Ok(d)
}
