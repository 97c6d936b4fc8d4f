//! Evaluation of a parsed MAA policy over a set of claims.
//!
//! Claims are a multiset of (type, value, issuer). A condition holds when at least one claim
//! passes all its tests (a negated condition: when none does); the first such claim is bound to
//! the condition's identifier. Rules fire in order; `add` and `issue` extend the incoming set,
//! so later rules see their claims.

use super::parser::{Action, Ast, Condition, Expr, Op, Prop, Rule};
use crate::error::PolicyError;
use serde_json::{Map, Value};
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

fn compare(op: Op, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
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
        _ => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
    }
}

type Bindings<'c> = HashMap<&'c str, Claim>;

fn prop_of(c: &Claim, p: Prop) -> Value {
    match p {
        Prop::Type => Value::from(c.ty.clone()),
        Prop::Value => c.value.clone(),
        Prop::Issuer => Value::from(c.issuer),
        Prop::ValueType => Value::from(value_type(&c.value)),
    }
}

fn eval_expr(e: &Expr, b: &Bindings<'_>) -> Result<Value, PolicyError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Ref(name, p) => b.get(name.as_str()).map(|c| prop_of(c, *p)).ok_or_else(|| {
            PolicyError::Eval(format!("'{name}' is not bound by a condition of this rule"))
        }),
        Expr::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval_expr(a, b))
                .collect::<Result<Vec<_>, _>>()?;
            call(f, &vals)
        }
    }
}

fn call(f: &str, a: &[Value]) -> Result<Value, PolicyError> {
    let bad = || PolicyError::Eval(format!("{f}() got arguments of the wrong type or number"));
    match (f, a) {
        ("AppendString", [Value::String(x), Value::String(y)]) => {
            Ok(Value::from(format!("{x}{y}")))
        }
        ("NegateBool", [Value::Bool(x)]) => Ok(Value::Bool(!x)),
        ("IsSubsetOf", [Value::Array(x), Value::Array(y)]) => {
            Ok(Value::Bool(x.iter().all(|v| y.contains(v))))
        }
        ("ContainsOnlyValue", [Value::Array(x), v]) => {
            Ok(Value::Bool(!x.is_empty() && x.iter().all(|e| e == v)))
        }
        ("JsonToClaimValue", [Value::String(s)]) => serde_json::from_str(s).map_err(|_| bad()),
        ("JmesPath", [obj, Value::String(path)]) => {
            let mut cur = obj;
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
    claims: &[Claim],
) -> Result<Option<Bindings<'r>>, PolicyError> {
    let mut b: Bindings<'r> = HashMap::new();
    for cond in conds {
        let mut found = None;
        for c in claims {
            let mut ok = true;
            for t in &cond.tests {
                let rhs = eval_expr(&t.rhs, &b)?;
                if !compare(t.op, &prop_of(c, t.prop), &rhs) {
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
                    b.insert(name.as_str(), c.clone());
                }
            }
            (None, true) => {}
        }
    }
    Ok(Some(b))
}

fn type_string(v: Value, line: usize) -> Result<String, PolicyError> {
    match v {
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

fn run_rules(
    rules: &[Rule],
    claims: &mut Vec<Claim>,
    d: &mut Decision,
    auth: &mut (bool, Option<usize>),
) -> Result<(), PolicyError> {
    for r in rules {
        let Some(b) = matches(&r.conditions, claims)? else {
            continue;
        };
        match &r.action {
            Action::Permit => auth.0 = true,
            Action::Deny => {
                if auth.1.is_none() {
                    auth.1 = Some(r.line);
                }
            }
            Action::Add(t, v) | Action::Issue(t, v) => {
                let ty = type_string(eval_expr(t, &b)?, r.line)?;
                let value = eval_expr(v, &b)?;
                if matches!(r.action, Action::Issue(..)) {
                    insert(&mut d.issued, ty.clone(), value.clone());
                }
                claims.push(Claim {
                    ty,
                    value,
                    issuer: "AttestationPolicy",
                });
            }
            Action::AddClaim(name) | Action::IssueClaim(name) => {
                let c = b.get(name.as_str()).cloned().ok_or_else(|| {
                    PolicyError::Eval(format!("line {}: '{name}' is not bound", r.line))
                })?;
                if matches!(r.action, Action::IssueClaim(_)) {
                    insert(&mut d.issued, c.ty.clone(), c.value.clone());
                }
                claims.push(Claim {
                    issuer: "AttestationPolicy",
                    ..c
                });
            }
            Action::IssueProperty(t, v) => {
                let ty = type_string(eval_expr(t, &b)?, r.line)?;
                d.properties.insert(ty, eval_expr(v, &b)?);
            }
        }
    }
    Ok(())
}

/// Evaluates `ast` over `incoming` (each member a claim issued by `AttestationService`).
pub fn evaluate(ast: &Ast, incoming: &Map<String, Value>) -> Result<Decision, PolicyError> {
    let mut claims: Vec<Claim> = incoming
        .iter()
        .map(|(k, v)| Claim {
            ty: k.clone(),
            value: v.clone(),
            issuer: "AttestationService",
        })
        .collect();
    let mut d = Decision::default();
    let mut auth = (false, None);
    run_rules(&ast.configuration, &mut claims, &mut d, &mut (false, None))?;
    run_rules(&ast.authorization, &mut claims, &mut d, &mut auth)?;
    d.authorized = auth.0 && auth.1.is_none();
    if !d.authorized {
        d.reason = Some(match auth.1 {
            Some(line) => format!("the deny() rule at line {line} matched"),
            None => "no permit() rule matched the claims".into(),
        });
        return Ok(d);
    }
    run_rules(&ast.issuance, &mut claims, &mut d, &mut (false, None))?;
    Ok(d)
}
