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

#[test]
fn nesting_is_gated_before_the_parser() {
    // `allow := [[[…]]]` at depth 25 took the Rego parser 18 s; at 50,000 it never returned.
    for depth in [25, 30_000] {
        let text = format!(
            "package policy\nallow := {}1{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let started = std::time::Instant::now();
        let e = RegoPolicy::compile(&text).unwrap_err();
        assert_eq!(e.code(), "POLICY_TOO_DEEP", "{e}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
    // At the limit, the parser is still quick.
    let at_limit = format!(
        "package policy\nallow := {}1{} != []\n",
        "[".repeat(sovra_policy::limits::MAX_REGO_DEPTH),
        "]".repeat(sovra_policy::limits::MAX_REGO_DEPTH)
    );
    let started = std::time::Instant::now();
    RegoPolicy::compile(&at_limit).unwrap();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    // Many structures just under the depth limit are bounded together.
    let one = format!(
        "{}1{}",
        "[".repeat(sovra_policy::limits::MAX_REGO_DEPTH),
        "]".repeat(sovra_policy::limits::MAX_REGO_DEPTH)
    );
    let rules: String = (0..100).map(|i| format!("x{i} := {one}\n")).collect();
    let many = format!("package policy\n{rules}");
    let started = std::time::Instant::now();
    assert_eq!(
        RegoPolicy::compile(&many).unwrap_err().code(),
        "POLICY_TOO_LARGE"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    // Brackets inside strings and comments do not count.
    let text = format!(
        "package policy\n# {}\nallow := \"{}\" != \"\"\n",
        "[".repeat(100),
        "[".repeat(100)
    );
    assert!(
        RegoPolicy::compile(&text)
            .unwrap()
            .evaluate(&input(json!({})))
            .unwrap()
            .allow
    );
    let big = format!("package policy\n# {}\n", "x".repeat(70_000));
    assert_eq!(
        RegoPolicy::compile(&big).unwrap_err().code(),
        "POLICY_TOO_LARGE"
    );
}

#[test]
fn evaluation_time_is_bounded() {
    // A billion iterations in three loops: stopped by the evaluation timer.
    let p = RegoPolicy::compile(
        r#"package policy
import rego.v1
default allow := false
allow if {
    some a in input.xs
    some b in input.xs
    some c in input.xs
    a + b + c < 0
}
"#,
    )
    .unwrap();
    let xs: Vec<u32> = (0..1000).collect();
    let started = std::time::Instant::now();
    let e = p.evaluate(&input(json!({ "xs": xs }))).unwrap_err();
    assert_eq!(e.code(), "POLICY_EVAL_LIMIT", "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Built-ins that allocate in proportion to their arguments are refused outright.
    for call in ["numbers.range(0, 1e15)", "numbers . range_step(0, 1e15, 1)"] {
        let text = format!("package policy\nimport rego.v1\nallow if {{ count({call}) > 0 }}\n");
        assert_eq!(
            RegoPolicy::compile(&text).unwrap_err().code(),
            "POLICY_INVALID"
        );
    }
    // …but not their names in strings or comments.
    assert!(
        RegoPolicy::compile("package policy\n# numbers.range(0, 9)\nx := \"numbers.range(\"\n")
            .is_ok()
    );
}
