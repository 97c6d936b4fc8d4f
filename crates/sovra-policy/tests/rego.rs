//! Rego policies in the Confidential Containers convention.

use serde_json::{Value, json};
use sovra_policy::rego::RegoPolicy;

fn input(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[test]
fn allow_and_claims() {
    let p = RegoPolicy::compile(
        r#"package policy
import rego.v1
default allow := false
allow if {
    input.debug == false
    input.measurement in {"aa", "bb"}
}
claims := {"tier": "gold"} if allow
"#,
    )
    .unwrap();
    let ok = p
        .evaluate(&input(json!({"debug": false, "measurement": "bb"})))
        .unwrap();
    assert!(ok.allow);
    assert_eq!(ok.claims["tier"], "gold");
    let no = p
        .evaluate(&input(json!({"debug": false, "measurement": "cc"})))
        .unwrap();
    assert!(!no.allow);
    assert!(no.claims.is_empty());
}

#[test]
fn errors() {
    let e = RegoPolicy::compile("package other\nallow := true\n").unwrap_err();
    assert_eq!(e.code(), "POLICY_INVALID");
    let e = RegoPolicy::compile("package policy\nallow := {\n").unwrap_err();
    assert_eq!(e.code(), "POLICY_SYNTAX", "{e}");
}
