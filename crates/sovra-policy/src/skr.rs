//! Azure Secure Key Release policies (grammar versions 1.0.0 and 1.2.0, and the older
//! `{claim, condition, value}` shape): which attestation tokens may receive a key.
//!
//! ```json
//! {"version": "1.0.0", "anyOf": [{"authority": "https://attest.example",
//!   "allOf": [{"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
//!             {"claim": "x-ms-isolation-tee.x-ms-compliance-status", "equals": "azure-compliant-cvm"}]}]}
//! ```
//!
//! Semantics: the token is released to if some top-level authority equals its issuer (trailing
//! `/` ignored) and that authority's conditions hold. Claim paths are dotted; a missing claim
//! makes its condition false (except `exists: false`). Values compare type-aware, and the
//! string forms of booleans and numbers (`"false"`, `"1"`) also match. On an array-valued
//! claim, `equals` holds when some element equals the value and `notEquals` when none does
//! (so `notEquals: "debug"` refuses a claim `["debug", …]`); ordering operators never hold.
//!
//! Parsing is strict: an unknown key (a typo such as `alOf` would otherwise drop a condition),
//! `allOf` and `anyOf` side by side, or a string where a boolean is meant (`"requireNonce":
//! "true"`) is refused with a message naming it.

use crate::error::PolicyError;
use serde_json::{Map, Value};

/// A comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `equals`
    Equals(Value),
    /// `notEquals`
    NotEquals(Value),
    /// `less`
    Less(Value),
    /// `lessOrEquals`
    LessOrEquals(Value),
    /// `greater`
    Greater(Value),
    /// `greaterOrEquals`
    GreaterOrEquals(Value),
    /// `exists`
    Exists(bool),
}

/// A condition tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// A claim test.
    Claim(String, Op),
    /// All must hold.
    AllOf(Vec<Cond>),
    /// At least one must hold.
    AnyOf(Vec<Cond>),
}

/// An authority and its conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Authority {
    /// Issuer URL (normalised without a trailing `/`).
    pub authority: String,
    /// The conditions.
    pub cond: Cond,
}

/// A parsed release policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasePolicy {
    /// Declared version (`1.0.0`, `1.2.0`, or empty for the older shape).
    pub version: String,
    /// Authorities; any one may release.
    pub authorities: Vec<Authority>,
    /// Sovra extension (`"requireNonce": true`): the release request must carry a nonce that
    /// the token also carries.
    pub require_nonce: bool,
}

/// Which kind of refusal a [`Denial`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// No authority of the policy is the token's issuer.
    UntrustedAuthority,
    /// An authority matches, but its claim conditions do not hold.
    ClaimMismatch,
}

/// Why a token may not receive the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The kind of refusal.
    pub kind: DenialKind,
    /// Which clause failed and why.
    pub message: String,
}

fn invalid(m: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(m.into())
}

fn norm(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

fn scalar(v: &Value, op: &str) -> Result<Value, PolicyError> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
        _ => Err(invalid(format!(
            "the value of {op} must be a string, number or boolean"
        ))),
    }
}

/// Refuses keys of `o` outside `allowed`, naming the first one found.
fn only_keys(o: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), PolicyError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!(
            "unknown key {k:?} in {what}; allowed: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

const OPERATORS: &[&str] = &[
    "equals",
    "notEquals",
    "less",
    "lessOrEquals",
    "greater",
    "greaterOrEquals",
    "exists",
];

fn parse_cond(v: &Value, depth: usize) -> Result<Cond, PolicyError> {
    if depth > 16 {
        return Err(PolicyError::TooDeep { limit: 16, line: 1 });
    }
    let o = v
        .as_object()
        .ok_or_else(|| invalid("a condition must be an object"))?;
    if o.contains_key("allOf") && o.contains_key("anyOf") {
        return Err(invalid(
            "a condition has allOf or anyOf, not both: nest one inside the other",
        ));
    }
    if let Some(list) = o.get("allOf").or_else(|| o.get("anyOf")) {
        only_keys(o, &["allOf", "anyOf"], "a condition list")?;
        let items = list
            .as_array()
            .ok_or_else(|| invalid("allOf/anyOf must be arrays"))?;
        if items.is_empty() {
            return Err(invalid("allOf/anyOf must not be empty"));
        }
        let conds = items
            .iter()
            .map(|c| parse_cond(c, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if o.contains_key("allOf") {
            Cond::AllOf(conds)
        } else {
            Cond::AnyOf(conds)
        });
    }
    let claim = o
        .get("claim")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("a condition needs \"claim\" (or allOf/anyOf)"))?
        .to_string();
    // The older shape: {"claim", "condition": "equals", "value"}.
    if let Some(c) = o.get("condition") {
        only_keys(
            o,
            &["claim", "condition", "value"],
            &format!("the condition on {claim}"),
        )?;
        let c = c
            .as_str()
            .ok_or_else(|| invalid(format!("condition on {claim} must name an operator")))?;
        let val = o
            .get("value")
            .ok_or_else(|| invalid(format!("condition on {claim} needs \"value\"")))?;
        return Ok(Cond::Claim(claim.clone(), op(c, val, &claim)?));
    }
    let mut allowed = vec!["claim"];
    allowed.extend_from_slice(OPERATORS);
    only_keys(o, &allowed, &format!("the condition on {claim}"))?;
    let ops: Vec<(&String, &Value)> = o.iter().filter(|(k, _)| k.as_str() != "claim").collect();
    match ops.as_slice() {
        [(name, val)] => Ok(Cond::Claim(claim.clone(), op(name, val, &claim)?)),
        _ => Err(invalid(format!(
            "the condition on {claim} must have exactly one operator (equals, notEquals, less, lessOrEquals, greater, greaterOrEquals, exists)"
        ))),
    }
}

fn op(name: &str, val: &Value, claim: &str) -> Result<Op, PolicyError> {
    Ok(match name {
        "equals" => Op::Equals(scalar(val, name)?),
        "notEquals" => Op::NotEquals(scalar(val, name)?),
        "less" => Op::Less(scalar(val, name)?),
        "lessOrEquals" => Op::LessOrEquals(scalar(val, name)?),
        "greater" => Op::Greater(scalar(val, name)?),
        "greaterOrEquals" => Op::GreaterOrEquals(scalar(val, name)?),
        "exists" => Op::Exists(match val {
            Value::Bool(b) => *b,
            _ => {
                return Err(invalid(format!(
                    "exists on {claim} takes true or false (a JSON boolean, not a string)"
                )));
            }
        }),
        other => return Err(invalid(format!("unknown operator {other:?} on {claim}"))),
    })
}

impl ReleasePolicy {
    /// Parses a policy (JSON text).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            line: e.line(),
            col: e.column(),
            msg: format!("the release policy is not JSON: {e}"),
        })?;
        let o = v
            .as_object()
            .ok_or_else(|| invalid("a release policy is a JSON object"))?;
        only_keys(
            o,
            &["version", "anyOf", "requireNonce"],
            "the release policy",
        )?;
        let version = match o.get("version") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("version must be a string such as \"1.0.0\"")),
        };
        if !["", "1.0.0", "1.2.0"].contains(&version.as_str()) {
            return Err(invalid(format!(
                "release policy version {version:?} is not supported (1.0.0, 1.2.0)"
            )));
        }
        let list = o.get("anyOf").and_then(Value::as_array).ok_or_else(|| {
            invalid("a release policy needs a top-level \"anyOf\" list of authorities")
        })?;
        if list.is_empty() {
            return Err(invalid(
                "the top-level anyOf must name at least one authority",
            ));
        }
        let mut authorities = Vec::new();
        for a in list {
            let ao = a
                .as_object()
                .ok_or_else(|| invalid("each authority is an object"))?;
            only_keys(ao, &["authority", "allOf", "anyOf"], "an authority entry")?;
            let authority = ao
                .get("authority")
                .and_then(Value::as_str)
                .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
                .ok_or_else(|| invalid("each entry needs an \"authority\" URL"))?;
            let (all, any) = (ao.get("allOf"), ao.get("anyOf"));
            let cond = match (all, any) {
                (Some(_), Some(_)) => {
                    return Err(invalid("an authority has allOf or anyOf, not both"));
                }
                (None, None) => {
                    return Err(invalid(format!("authority {authority} has no conditions")));
                }
                _ => {
                    let mut m = Map::new();
                    let (k, v) = if let Some(v) = all {
                        ("allOf", v)
                    } else {
                        ("anyOf", any.unwrap_or(&Value::Null))
                    };
                    m.insert(k.into(), v.clone());
                    parse_cond(&Value::Object(m), 0)?
                }
            };
            authorities.push(Authority {
                authority: norm(authority),
                cond,
            });
        }
        let require_nonce = match o.get("requireNonce") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "requireNonce takes true or false (a JSON boolean, not a string)",
                ));
            }
        };
        Ok(Self {
            version,
            authorities,
            require_nonce,
        })
    }

    /// The authorities (issuers) the policy names.
    pub fn issuers(&self) -> Vec<&str> {
        self.authorities
            .iter()
            .map(|a| a.authority.as_str())
            .collect()
    }

    /// Evaluates the policy for a token from `issuer` with `claims`.
    pub fn evaluate(&self, issuer: &str, claims: &Value) -> Result<(), Denial> {
        let iss = norm(issuer);
        let mut last = None;
        for a in self.authorities.iter().filter(|a| a.authority == iss) {
            match eval(&a.cond, claims) {
                Ok(()) => return Ok(()),
                Err(m) => last = Some(m),
            }
        }
        Err(match last {
            Some(message) => Denial {
                kind: DenialKind::ClaimMismatch,
                message,
            },
            None => Denial {
                kind: DenialKind::UntrustedAuthority,
                message: format!(
                    "the policy names no authority {iss:?} (it accepts {})",
                    self.issuers().join(", ")
                ),
            },
        })
    }
}

fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |cur, part| cur.get(part))
}

fn as_num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => {
            s.eq_ignore_ascii_case(&x.to_string())
        }
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            as_num(a) == as_num(b) && as_num(a).is_some()
        }
        (Value::Number(_), Value::Number(_)) => as_num(a) == as_num(b),
        _ => a == b,
    }
}

fn show(v: &Value) -> String {
    v.to_string()
}

fn eval(c: &Cond, claims: &Value) -> Result<(), String> {
    match c {
        Cond::AllOf(list) => list.iter().try_for_each(|x| eval(x, claims)),
        Cond::AnyOf(list) => {
            let mut reasons = Vec::new();
            for x in list {
                match eval(x, claims) {
                    Ok(()) => return Ok(()),
                    Err(r) => reasons.push(r),
                }
            }
            Err(format!("no anyOf branch held ({})", reasons.join("; ")))
        }
        Cond::Claim(path, op) => {
            let got = lookup(claims, path);
            let fail = |what: String| {
                Err(format!(
                    "claim {path}: {what}, got {}",
                    got.map_or("nothing".into(), show)
                ))
            };
            let ord = |want: &Value, f: fn(f64, f64) -> bool, name: &str| match (
                got.and_then(as_num),
                as_num(want),
            ) {
                (Some(g), Some(w)) if f(g, w) => Ok(()),
                _ => fail(format!("expected {name} {}", show(want))),
            };
            match op {
                Op::Exists(true) if got.is_some() => Ok(()),
                Op::Exists(false) if got.is_none() => Ok(()),
                Op::Exists(b) => fail(format!("expected exists {b}")),
                // An array-valued claim equals a value when some element does.
                Op::Equals(w) => match got {
                    Some(Value::Array(items)) if items.iter().any(|g| loose_eq(g, w)) => Ok(()),
                    Some(g) if !g.is_array() && loose_eq(g, w) => Ok(()),
                    _ => fail(format!("expected equals {}", show(w))),
                },
                Op::NotEquals(w) => match got {
                    Some(Value::Array(items)) if !items.iter().any(|g| loose_eq(g, w)) => Ok(()),
                    Some(g) if !g.is_array() && !loose_eq(g, w) => Ok(()),
                    _ => fail(format!("expected notEquals {}", show(w))),
                },
                Op::Less(w) => ord(w, |g, w| g < w, "less"),
                Op::LessOrEquals(w) => ord(w, |g, w| g <= w, "lessOrEquals"),
                Op::Greater(w) => ord(w, |g, w| g > w, "greater"),
                Op::GreaterOrEquals(w) => ord(w, |g, w| g >= w, "greaterOrEquals"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CVM: &str = r#"{"version":"1.0.0","anyOf":[{"authority":"https://sharedweu.weu.attest.azure.net/",
      "allOf":[{"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"sevsnpvm"},
               {"claim":"x-ms-isolation-tee.x-ms-compliance-status","equals":"azure-compliant-cvm"}]}]}"#;

    #[test]
    fn azure_cvm_policy() {
        let p = ReleasePolicy::parse(CVM).unwrap();
        let ok = json!({"x-ms-isolation-tee": {"x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-cvm"}});
        assert_eq!(
            p.evaluate("https://sharedweu.weu.attest.azure.net", &ok),
            Ok(())
        );
        let bad = json!({"x-ms-isolation-tee": {"x-ms-attestation-type": "tdxvm", "x-ms-compliance-status": "azure-compliant-cvm"}});
        let d = p
            .evaluate("https://sharedweu.weu.attest.azure.net/", &bad)
            .unwrap_err();
        assert_eq!(d.kind, DenialKind::ClaimMismatch);
        assert!(
            d.message
                .contains("x-ms-isolation-tee.x-ms-attestation-type"),
            "{}",
            d.message
        );
        assert_eq!(
            p.evaluate("https://evil.example", &ok).unwrap_err().kind,
            DenialKind::UntrustedAuthority
        );
    }

    #[test]
    fn operators_nesting_and_loose_types() {
        let p = ReleasePolicy::parse(
            r#"{"version":"1.2.0","anyOf":[{"authority":"https://a","allOf":[
                {"claim":"svn","greaterOrEquals":2},{"claim":"dbg","equals":"false"},
                {"anyOf":[{"claim":"t","equals":"sevsnpvm"},{"claim":"t","equals":"tdxvm"}]},
                {"claim":"x","exists":true},{"claim":"y","exists":false},{"claim":"n","notEquals":"bad"},
                {"claim":"l","less":10},{"claim":"l","lessOrEquals":5},{"claim":"g","greater":"1"}]}]}"#,
        )
        .unwrap();
        let good = json!({"svn": 3, "dbg": false, "t": "tdxvm", "x": 1, "n": "ok", "l": 5, "g": 2});
        assert_eq!(p.evaluate("https://a/", &good), Ok(()));
        for (k, v) in [
            ("svn", json!(1)),
            ("dbg", json!(true)),
            ("t", json!("sgx")),
            ("n", json!("bad")),
            ("l", json!(11)),
            ("g", json!(1)),
        ] {
            let mut c = good.clone();
            c[k] = v;
            let d = p.evaluate("https://a", &c).unwrap_err();
            assert!(
                d.message.contains(&format!("claim {k}")) || d.message.contains("anyOf"),
                "{k}: {}",
                d.message
            );
        }
        let mut c = good.clone();
        c["y"] = json!(0);
        assert!(p.evaluate("https://a", &c).is_err());
        let mut c = good;
        c.as_object_mut().unwrap().remove("x");
        assert!(
            p.evaluate("https://a", &c).is_err(),
            "a missing claim fails"
        );
    }

    #[test]
    fn older_shape_and_sdk_shape() {
        let old = ReleasePolicy::parse(r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"x-ms-sgx-mrsigner","condition":"equals","value":"ab"}]}]}"#).unwrap();
        assert_eq!(
            old.evaluate("https://a", &json!({"x-ms-sgx-mrsigner": "ab"})),
            Ok(())
        );
        let sdk = ReleasePolicy::parse(r#"{"anyOf":[{"anyOf":[{"claim":"sdk-test","equals":true}],"authority":"https://x/"}],"version":"1.0.0"}"#).unwrap();
        assert_eq!(
            sdk.evaluate("https://x", &json!({"sdk-test": true})),
            Ok(())
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"version":"9","anyOf":[]}"#,
            r#"{"anyOf":[]}"#,
            r#"{"anyOf":[{"authority":"https://a"}]}"#,
            r#"{"anyOf":[{"authority":"nope","allOf":[{"claim":"a","equals":1}]}]}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a"}]}]}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","equals":{"x":1}}]}]}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","regex":"x"}]}]}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[],"anyOf":[]}]}"#,
            // Unknown keys, at every level.
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","equals":1}]}],"requireNonces":true}"#,
            r#"{"anyOf":[{"authority":"https://a","alOf":[{"claim":"a","equals":1}],"anyOf":[{"claim":"b","exists":true}]}]}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","equals":1,"note":"x"}]}]}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"allOf":[{"claim":"a","equals":1}],"extra":1}]}]}"#,
            // allOf and anyOf side by side inside a condition.
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"allOf":[{"claim":"a","equals":1}],"anyOf":[{"claim":"b","equals":1}]}]}]}"#,
            // Strings where booleans are meant.
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","equals":1}]}],"requireNonce":"true"}"#,
            r#"{"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","exists":"true"}]}]}"#,
            r#"{"version":1,"anyOf":[{"authority":"https://a","allOf":[{"claim":"a","equals":1}]}]}"#,
        ] {
            assert!(ReleasePolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn array_claims_compare_by_membership() {
        let p = ReleasePolicy::parse(
            r#"{"anyOf":[{"authority":"https://a","allOf":[
                {"claim":"features","notEquals":"debug"},{"claim":"tags","equals":"prod"}]}]}"#,
        )
        .unwrap();
        let ok = json!({"features": ["secure-boot"], "tags": ["eu", "prod"]});
        assert_eq!(p.evaluate("https://a", &ok), Ok(()));
        let dbg = json!({"features": ["secure-boot", "debug"], "tags": ["prod"]});
        assert!(
            p.evaluate("https://a", &dbg).is_err(),
            "notEquals must see inside the array"
        );
        let no_prod = json!({"features": [], "tags": ["dev"]});
        assert!(p.evaluate("https://a", &no_prod).is_err());
    }
}
