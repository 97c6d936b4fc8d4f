use super::*;
use serde_json::json;

fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("object"),
    }
}

#[test]
fn policy_hash_matches_maa() {
    // Recorded from the real service (see reference/azure-api.md §4.4).
    assert_eq!(
        policy_hash("version=1.0; authorizationrules{=> permit();}; issuancerules{};"),
        "z0FRjKS0ssQTNur1V6BV8WIrh9M3fzgTo0EfHRvapWU"
    );
}

#[test]
fn permit_without_conditions() {
    let p =
        Policy::parse("version=1.0; authorizationrules{=> permit();}; issuancerules{};").unwrap();
    let d = p.evaluate(&Map::new()).unwrap();
    assert!(d.authorized);
    assert!(d.issued.is_empty());
}

#[test]
fn sgx_style_policy_with_bindings_and_issue() {
    let text = r#"version= 1.0;
authorizationrules
{
    c:[type=="x-ms-sgx-is-debuggable", value==false] => permit();
};
issuancerules
{
    c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value);
    c:[type=="x-ms-sgx-svn", value >= 2] => issue(claim=c);
    => issue(type="fixed", value=42);
};"#;
    let p = Policy::parse(text).unwrap();
    let ok = p
        .evaluate(&claims(
            json!({"x-ms-sgx-is-debuggable": false, "x-ms-sgx-mrsigner": "ab", "x-ms-sgx-svn": 3}),
        ))
        .unwrap();
    assert!(ok.authorized);
    assert_eq!(ok.issued["signer"], "ab");
    assert_eq!(ok.issued["x-ms-sgx-svn"], 3);
    assert_eq!(ok.issued["fixed"], 42);
    let low = p
        .evaluate(&claims(
            json!({"x-ms-sgx-is-debuggable": false, "x-ms-sgx-mrsigner": "ab", "x-ms-sgx-svn": 1}),
        ))
        .unwrap();
    assert!(!low.issued.contains_key("x-ms-sgx-svn"));
    let dbg = p
        .evaluate(&claims(json!({"x-ms-sgx-is-debuggable": true})))
        .unwrap();
    assert!(!dbg.authorized);
    assert!(dbg.reason.unwrap().contains("no permit"));
}

#[test]
fn deny_overrides_permit_and_add_feeds_later_rules() {
    let text = r#"version=1.2;
authorizationrules {
    => permit();
    [type=="vmpl", value > 0] => deny();
};
issuancerules {
    c:[type=="a"] => add(type="b", value=AppendString(c.value, "-x"));
    c:[type=="b"] => issue(type="out", value=c.value);
    ![type=="missing"] => issue(type="neg", value=NegateBool(false));
};"#;
    let p = Policy::parse(text).unwrap();
    let d = p.evaluate(&claims(json!({"vmpl": 0, "a": "v"}))).unwrap();
    assert!(d.authorized);
    assert_eq!(d.issued["out"], "v-x");
    assert_eq!(d.issued["neg"], true);
    assert!(!d.issued.contains_key("b"), "add() does not issue");
    let denied = p.evaluate(&claims(json!({"vmpl": 2}))).unwrap();
    assert!(!denied.authorized);
    assert!(denied.reason.unwrap().contains("line 4"));
}

#[test]
fn default_policy_refuses_debug_and_marks_compliance() {
    let p = Policy::parse(crate::defaults::DEFAULT_POLICY).unwrap();
    assert!(
        !p.evaluate(&claims(json!({"debug": true})))
            .unwrap()
            .authorized
    );
    let snp = p.evaluate(&claims(json!({"debug": false}))).unwrap();
    assert_eq!(snp.issued["x-ms-compliance-status"], "sovra-compliant");
    let old = p
        .evaluate(&claims(json!({"debug": false, "tcb_status": "OutOfDate"})))
        .unwrap();
    assert!(old.authorized);
    assert!(!old.issued.contains_key("x-ms-compliance-status"));
    let new = p
        .evaluate(&claims(json!({"debug": false, "tcb_status": "UpToDate"})))
        .unwrap();
    assert_eq!(new.issued["x-ms-compliance-status"], "sovra-compliant");
}

#[test]
fn syntax_errors_say_where() {
    for (text, line, frag) in [
        (
            "version=1.0; authorizationrules { => permit() };",
            1,
            "expected ';'",
        ),
        ("version=2.0;", 1, "version must be"),
        (
            "version=1.0;\nauthorizationrules {\n [typ==\"a\"] => permit();\n};",
            3,
            "not a claim property",
        ),
        (
            "version=1.0; issuancerules { => permit(); };",
            0,
            "authorizationrules",
        ),
        (
            "version=1.0; authorizationrules { ![type==\"a\"] => permit(); };",
            0,
            "1.2",
        ),
        ("version=1.0; bogusrules { };", 1, "unknown section"),
        (
            "version=1.0; authorizationrules { [type==\"a] => permit(); };",
            1,
            "unterminated",
        ),
    ] {
        let e = Policy::parse(text).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(frag), "{text}: {msg}");
        if line > 0 {
            assert!(
                matches!(e, PolicyError::Syntax { line: l, .. } if l == line),
                "{text}: {msg}"
            );
        }
    }
}

#[test]
fn never_panics_on_arbitrary_text() {
    let base = r#"version=1.2; authorizationrules { c:[type=="a", value>=1] && ![type=="b"] => permit(); }; issuancerules { c:[type=="x"] => issue(type="y", value=JmesPath(c.value, "a.b")); };"#;
    let bytes = base.as_bytes();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let cut = (seed as usize) % (bytes.len() + 1);
        let mut v = bytes[..cut].to_vec();
        if seed & 1 == 1 && !v.is_empty() {
            let i = (seed >> 8) as usize % v.len();
            v[i] = (seed >> 16) as u8;
        }
        let text = String::from_utf8_lossy(&v);
        if let Ok(p) = Policy::parse(&text) {
            let _ = p.evaluate(&claims(json!({"a": 1, "x": {"a": {"b": 2}}})));
        }
    }
}
