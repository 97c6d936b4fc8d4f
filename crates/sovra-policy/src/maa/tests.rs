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
    let vendor = |extra: Value| {
        let mut c = json!({"debug": false, "x-sovra-trust-root-kind": "vendor"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        claims(c)
    };
    // Without a TCB status, nothing says the platform is current.
    let unjudged = p.evaluate(&vendor(json!({}))).unwrap();
    assert!(unjudged.authorized);
    assert!(!unjudged.issued.contains_key("x-ms-compliance-status"));
    // SEV-SNP: compliant only at or above the configured minimum TCB.
    let snp = Policy::parse(crate::defaults::for_type(sovra_proto::EvidenceType::SevSnp)).unwrap();
    assert!(
        !snp.evaluate(&vendor(json!({"x-sovra-tcb-minimum-met": false})))
            .unwrap()
            .issued
            .contains_key("x-ms-compliance-status")
    );
    assert!(
        !snp.evaluate(&vendor(json!({})))
            .unwrap()
            .issued
            .contains_key("x-ms-compliance-status")
    );
    assert_eq!(
        snp.evaluate(&vendor(json!({"x-sovra-tcb-minimum-met": true})))
            .unwrap()
            .issued["x-ms-compliance-status"],
        "sovra-compliant"
    );
    let old = p
        .evaluate(&vendor(json!({"tcb_status": "OutOfDate"})))
        .unwrap();
    assert!(old.authorized);
    assert!(!old.issued.contains_key("x-ms-compliance-status"));
    let new = p
        .evaluate(&vendor(json!({"tcb_status": "UpToDate"})))
        .unwrap();
    assert_eq!(new.issued["x-ms-compliance-status"], "sovra-compliant");
    // An operator anchor (a test chain) is genuine by configuration, never compliant.
    let operator = p
        .evaluate(&claims(
            json!({"debug": false, "x-sovra-trust-root-kind": "operator"}),
        ))
        .unwrap();
    assert!(operator.authorized);
    assert!(!operator.issued.contains_key("x-ms-compliance-status"));
    // A GPU alone never is; measured platforms only with a reference-value match.
    let gpu = Policy::parse(crate::defaults::for_type(
        sovra_proto::EvidenceType::NvidiaGpu,
    ))
    .unwrap();
    assert!(gpu.evaluate(&vendor(json!({}))).unwrap().issued.is_empty());
    let nitro = Policy::parse(crate::defaults::for_type(sovra_proto::EvidenceType::Nitro)).unwrap();
    assert!(
        nitro
            .evaluate(&vendor(json!({"x-sovra-refvalues-matched": false})))
            .unwrap()
            .issued
            .is_empty()
    );
    assert_eq!(
        nitro
            .evaluate(&vendor(json!({"x-sovra-refvalues-matched": true})))
            .unwrap()
            .issued["x-ms-compliance-status"],
        "sovra-compliant"
    );
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

#[test]
fn deep_nesting_is_refused_before_it_can_overflow_the_stack() {
    // ~5,000 nested calls once aborted the server with a stack overflow.
    let deep = format!(
        "version=1.2; authorizationrules{{ [type==\"a\", value=={}\"x\"{}] => permit(); }};",
        "f(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(deep.len() < 20_000);
    let e = Policy::parse(&deep).unwrap_err();
    assert_eq!(e.code(), "POLICY_TOO_DEEP", "{e}");
    // Sixteen levels are allowed.
    let nested = |n: usize| {
        format!(
            "version=1.2; authorizationrules{{ => permit(); }}; issuancerules{{ => issue(type=\"t\", value={}true{}); }};",
            "NegateBool(".repeat(n),
            ")".repeat(n)
        )
    };
    let d = Policy::parse(&nested(16))
        .unwrap()
        .evaluate(&Map::new())
        .unwrap();
    assert_eq!(d.issued["t"], true);
    assert_eq!(
        Policy::parse(&nested(17)).unwrap_err().code(),
        "POLICY_TOO_DEEP"
    );
}

#[test]
fn size_and_count_limits() {
    let big = format!(
        "version=1.0; authorizationrules{{ => permit(); }}; // {}",
        "x".repeat(crate::limits::MAX_POLICY_BYTES)
    );
    assert_eq!(Policy::parse(&big).unwrap_err().code(), "POLICY_TOO_LARGE");
    let many = format!(
        "version=1.0; authorizationrules{{ {} }};",
        "=> permit(); ".repeat(crate::limits::MAX_RULES + 1)
    );
    let e = Policy::parse(&many).unwrap_err();
    assert_eq!(e.code(), "POLICY_TOO_LARGE");
    assert!(e.to_string().contains("rules"), "{e}");
}

#[test]
fn doubling_strings_across_rules_stops_at_the_budget() {
    // Each rule doubles the previous rule's claim: 2^40 times 16 bytes if nothing stopped it.
    let rules: String = (0..40)
        .map(|i| {
            format!(
                r#"c:[type=="s{i}"] => add(type="s{}", value=AppendString(c.value, c.value));"#,
                i + 1
            )
        })
        .collect();
    let text = format!(
        "version=1.2; configurationrules{{ {rules} }}; authorizationrules{{ => permit(); }};"
    );
    let p = Policy::parse(&text).unwrap();
    let started = std::time::Instant::now();
    let e = p
        .evaluate(&claims(json!({"s0": "0123456789abcdef"})))
        .unwrap_err();
    assert_eq!(e.code(), "POLICY_EVAL_LIMIT", "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn matching_every_claim_against_every_rule_stops_at_the_budget() {
    // 512 rules, each a condition no claim satisfies, over 4,000 claims with long values.
    let long = "y".repeat(4000);
    let mut incoming = Map::new();
    for i in 0..4000 {
        incoming.insert(format!("c{i}"), Value::from(long.clone()));
    }
    let rule = format!(r#"[type=="nope", value=="{long}"] && [type=="c1"] => permit();"#);
    let text = format!("version=1.0; authorizationrules{{ {} }};", rule.repeat(12));
    let p = Policy::parse(&text).unwrap();
    let started = std::time::Instant::now();
    match p.evaluate(&incoming) {
        Ok(d) => assert!(!d.authorized),
        Err(e) => assert_eq!(e.code(), "POLICY_EVAL_LIMIT"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
