//! The OpenAPI document matches the server: every documented operation is routed, and every
//! route, custom method, error code and enum value the server knows is documented.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use axum::body::Body;
use http::Request;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_routed() {
    let e = common::env().await;
    let state = sovra_server::http::AppState::new(
        e.sovra.clone(),
        &sovra_server::config::Config::default(),
    );
    let router = sovra_server::http::router(state);
    let doc: serde_json::Value = serde_json::from_str(sovra_server::http::OPENAPI).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 40);
    for (path, ops) in paths {
        let concrete = path
            .replace("{location}", "global")
            .replace("{keyRing}", "r")
            .replace("{cryptoKey}", "k")
            .replace("{cryptoKeyVersion}", "1")
            .replace("{id}", "x")
            .replace("{principal}", "p")
            .replace("{provider}", "default")
            .replace("{maaType}", "SevSnpVm")
            .replace("{type}", "sev-snp")
            .replace("{name}", "n")
            .replace("{version}", "1");
        for method in ops.as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::from("{}"))
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            if status >= 400 {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let code = v["error"]["code"].as_str().unwrap_or("");
                assert!(
                    code != "ROUTE_NOT_FOUND" && code != "METHOD_NOT_ALLOWED",
                    "{method} {path} is documented but not routed: {status} {code}"
                );
            }
        }
    }
}

#[test]
fn the_document_lists_every_error_code() {
    let doc: serde_json::Value = serde_json::from_str(sovra_server::http::OPENAPI).unwrap();
    let listed: Vec<&str> =
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
    let all: Vec<&str> = sovra_proto::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(listed, all, "run tools/openapi.py");
}

/// A path with every `{parameter}` written `{}` (the router and the document name them
/// differently).
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

fn documented() -> std::collections::BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(sovra_server::http::OPENAPI).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            out.insert((shape(path), m.to_uppercase()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_and_method_the_server_answers_is_documented() {
    let e = common::env().await;
    let state = sovra_server::http::AppState::new(
        e.sovra.clone(),
        &sovra_server::config::Config::default(),
    );
    let router = sovra_server::http::router(state);
    let doc = documented();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (path, _) in sovra_server::http::routes() {
        let concrete = shape(&path).replace("{}", "x");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let req = Request::builder()
                .method(method)
                .uri(&concrete)
                .body(Body::from("{}"))
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let code = v["error"]["code"].as_str().unwrap_or("");
            if code == "METHOD_NOT_ALLOWED" || code == "ROUTE_NOT_FOUND" {
                continue;
            }
            // Routed: documented as is, or as one of its custom methods (`{}:verb`).
            let p = shape(&path);
            let listed = doc.contains(&(p.clone(), method.to_string()))
                || doc
                    .iter()
                    .any(|(d, m)| m == method && d.starts_with(&format!("{p}:")));
            if !listed {
                missing.push(format!("{method} {path}"));
            }
            checked += 1;
        }
    }
    assert!(
        missing.is_empty(),
        "routed but not in openapi.json (tools/openapi.py): {missing:?}"
    );
    assert!(checked >= 50, "only {checked} routed operations found");
}

#[test]
fn every_custom_method_is_documented() {
    use sovra_server::http::kms::{KEY_VERBS, LOCATION_VERBS, VERSION_VERBS};
    let doc = documented();
    let loc = "/v1/locations/{}";
    let key = format!("{loc}/keyRings/{{}}/cryptoKeys/{{}}");
    let ver = format!("{key}/cryptoKeyVersions/{{}}");
    for (base, verbs) in [
        (loc.to_string(), LOCATION_VERBS),
        (key, KEY_VERBS),
        (ver, VERSION_VERBS),
    ] {
        for v in verbs {
            let p = format!("{base}:{v}");
            assert!(
                doc.contains(&(p.clone(), "POST".into())),
                "POST {p} is served but not in openapi.json"
            );
        }
    }
}

/// The values of the enum at `pointer` in the document.
fn doc_enum(pointer: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(sovra_server::http::OPENAPI).unwrap();
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} is not in openapi.json"))
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn wire<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_document_lists_every_algorithm_evidence_type_and_enum_value() {
    use sovra_proto::kms::{Algorithm, ProtectionLevel, Purpose, VersionState};
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let algs: Vec<String> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        sorted(doc_enum("/components/schemas/Algorithm/enum")),
        sorted(algs),
        "Algorithm"
    );
    let purposes = Purpose::ALL;
    assert_eq!(
        sorted(doc_enum("/components/schemas/Purpose/enum")),
        sorted(purposes.into_iter().map(wire).collect())
    );
    assert_eq!(
        sorted(doc_enum("/components/schemas/ProtectionLevel/enum")),
        sorted(
            [ProtectionLevel::Software, ProtectionLevel::Hsm]
                .into_iter()
                .map(wire)
                .collect()
        )
    );
    let states = [
        VersionState::Enabled,
        VersionState::Disabled,
        VersionState::DestroyScheduled,
        VersionState::Destroyed,
    ];
    assert_eq!(
        sorted(doc_enum("/components/schemas/VersionState/enum")),
        sorted(states.into_iter().map(wire).collect())
    );
    assert_eq!(
        sorted(doc_enum("/components/schemas/Role/enum")),
        sorted(
            sovra_proto::admin::Role::ALL
                .iter()
                .copied()
                .map(wire)
                .collect()
        )
    );
    let types: Vec<String> = sovra_proto::EvidenceType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    assert_eq!(
        sorted(doc_enum(
            "/paths/~1v1~1attest~1{type}/post/parameters/0/schema/enum"
        )),
        sorted(types),
        "evidence types"
    );
    let maa: Vec<String> = sovra_proto::EvidenceType::ALL
        .iter()
        .flat_map(|t| sovra_attest::verifier_for(*t).maa_route_names())
        .map(|n| (*n).to_owned())
        // Azure's guest protocol, served beside the verifiers' own MAA routes.
        .chain(["AzureGuest".to_owned()])
        .collect();
    assert_eq!(
        sorted(doc_enum(
            "/paths/~1attest~1{maaType}/post/parameters/0/schema/enum"
        )),
        sorted(maa),
        "MAA attestation types"
    );
}
