//! The OpenAPI document is valid JSON and every operation it documents is routed.

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
            .replace("{name}", "n");
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
