//! Hostile input through the real server: what an anonymous or low-privileged client sends to
//! crash it, exhaust it or fill its store, and what it gets back instead. Each test here failed
//! on the server before the limits it checks were built.

use crate::common::*;
use hyper::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn v(rel: &str) -> PathBuf {
    std::env::var("SOVRA_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(v(rel)).unwrap()
}

fn b64(b: &[u8]) -> String {
    sovra_proto::b64::encode(b)
}

fn b64url(b: &[u8]) -> String {
    sovra_crypto::jws::b64url(b)
}

/// A public, replayable SNP report with its VCEK, ASK and ARK, as the MAA SevSnpVm body.
fn maa_snp_body(draft: Option<&str>) -> Value {
    let vcek = read("snp/virtee_milan_vcek.der");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n{}",
        b64(&vcek),
        String::from_utf8(read("roots/amd/ask_ark_milan.pem")).unwrap()
    );
    let report = b64url(
        json!({"SnpReport": b64url(&read("snp/virtee_milan_report.bin")), "VcekCertChain": b64(pem.as_bytes())})
            .to_string()
            .as_bytes(),
    );
    let mut body = json!({ "report": report });
    if let Some(d) = draft {
        body["draftPolicyForAttestation"] = json!(d);
    }
    body
}

fn anon(s: &Server) -> sovra_client::Client {
    sovra_client::Client::new(sovra_client::ClientConfig {
        url: s.url.clone(),
        ca_pem: Some(std::fs::read(s.ca()).unwrap()),
        ..Default::default()
    })
    .unwrap()
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// `f(f(…"x"…))`, 5,000 deep: about 10 KB.
fn nested_calls(depth: usize) -> String {
    format!(
        "version=1.2; authorizationrules{{ [type==\"x-ms-attestation-type\", value=={}\"x\"{}] => permit(); }};",
        "f(".repeat(depth),
        ")".repeat(depth)
    )
}

#[test]
fn policies_that_would_crash_or_spin_the_server_are_refused_with_the_limit_they_hit() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let a = anon(&s);
    rt.block_on(async {
        // Anonymous: a draft policy nested 5,000 deep (this aborted the whole process with a
        // stack overflow).
        let (st, _, body) = a
            .send(
                Method::POST,
                "/attest/SevSnpVm?api-version=2022-08-01",
                Some(maa_snp_body(Some(&nested_calls(5000))).to_string().into_bytes()),
            )
            .await
            .unwrap();
        assert_eq!((st.as_u16(), error_code(&body).as_str()), (400, "POLICY_TOO_DEEP"));
        // A draft policy whose rules double a string each time: stopped by the work budget.
        let rules: String = (0..40)
            .map(|i| {
                format!(
                    r#"c:[type=="{}"] => add(type="s{}", value=AppendString(c.value, c.value));"#,
                    if i == 0 { "x-ms-sevsnpvm-reportid".to_string() } else { format!("s{i}") },
                    i + 1
                )
            })
            .collect();
        let doubling = format!(
            "version=1.2; configurationrules{{ {rules} }}; authorizationrules{{ => permit(); }}; issuancerules{{ }};"
        );
        let started = Instant::now();
        let (st, _, body) = a
            .send(
                Method::POST,
                "/attest/SevSnpVm?api-version=2022-08-01",
                Some(maa_snp_body(Some(&doubling)).to_string().into_bytes()),
            )
            .await
            .unwrap();
        assert_eq!((st.as_u16(), error_code(&body).as_str()), (400, "POLICY_EVAL_LIMIT"));
        assert!(started.elapsed() < Duration::from_secs(10));
        // The same parser behind PUT /policies (MAA) and the native API, with a token.
        let admin = s.admin();
        let jws = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none"}"#),
            b64url(json!({"AttestationPolicy": b64url(nested_calls(5000).as_bytes())}).to_string().as_bytes())
        );
        let (st, _, body) = admin
            .send(Method::PUT, "/policies/SevSnpVm?api-version=2022-08-01", Some(jws.into_bytes()))
            .await
            .unwrap();
        assert_eq!((st.as_u16(), error_code(&body).as_str()), (400, "POLICY_TOO_DEEP"));
        let big = format!("version=1.0; authorizationrules{{ => permit(); }}; // {}", "x".repeat(70_000));
        let (st, _, body) = admin
            .send(
                Method::PUT,
                "/v1/attestation/providers/default/policies/sev-snp",
                Some(json!({ "policy": big }).to_string().into_bytes()),
            )
            .await
            .unwrap();
        assert_eq!((st.as_u16(), error_code(&body).as_str()), (400, "POLICY_TOO_LARGE"));
        // Rego nested 25 deep took the parser 18 s, 50,000 deep never returned: refused at once.
        for depth in [25, 30_000] {
            let text = format!("package policy\nallow := {}1{}\n", "[".repeat(depth), "]".repeat(depth));
            let started = Instant::now();
            let (st, _, body) = admin
                .send(
                    Method::PUT,
                    "/v1/attestation/providers/default/policies/sev-snp",
                    Some(json!({ "policy": text, "language": "rego" }).to_string().into_bytes()),
                )
                .await
                .unwrap();
            assert_eq!((st.as_u16(), error_code(&body).as_str()), (400, "POLICY_TOO_DEEP"));
            assert!(started.elapsed() < Duration::from_secs(2));
        }
    });
    // The server is alive, and still stops on SIGTERM.
    assert!(s.cli(&["whoami"]).status.success());
    let mut s = s;
    let started = Instant::now();
    assert!(s.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn evidence_with_a_pile_of_look_alike_certificates_is_refused_before_chain_work() {
    let s = Server::start_with(&[("SOVRA_LIMITS_ANONYMOUS_PER_IP_PER_SECOND", "0")]);
    // 200 certificates (copies of the Milan ASK/ARK bundle) beside the VCEK: every one a
    // candidate issuer, each a signature check before.
    let bundle = String::from_utf8(read("roots/amd/ask_ark_milan.pem")).unwrap();
    let pile = bundle.repeat(100);
    let body = json!({
        "evidence": b64(&read("snp/virtee_milan_report.bin")),
        "certChain": [b64(&read("snp/virtee_milan_vcek.der")), b64(pile.as_bytes())],
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (st, _, resp) = rt
        .block_on(anon(&s).send(
            Method::POST,
            "/v1/attest/sev-snp",
            Some(body.to_string().into_bytes()),
        ))
        .unwrap();
    assert_eq!(
        (st.as_u16(), error_code(&resp).as_str()),
        (400, "ATTEST_MALFORMED")
    );
    assert!(String::from_utf8_lossy(&resp).contains("certificates"));
    // The VCEK alone verifies: AMD's ASK and ARK are built in.
    let alone = json!({
        "evidence": b64(&read("snp/virtee_milan_report.bin")),
        "certChain": [b64(&read("snp/virtee_milan_vcek.der"))],
    });
    let (st, _, resp) = rt
        .block_on(anon(&s).send(
            Method::POST,
            "/v1/attest/sev-snp",
            Some(alone.to_string().into_bytes()),
        ))
        .unwrap();
    assert_eq!(st.as_u16(), 200, "{}", String::from_utf8_lossy(&resp));
}

#[test]
fn verification_runs_on_a_bounded_pool_that_sheds_load_and_leaves_key_management_alone() {
    // One verification thread and one queued job: a burst of attestations gets 503 OVERLOADED
    // for what does not fit, while encrypt calls keep their latency.
    let s = Server::start_with(&[
        ("SOVRA_LIMITS_ANONYMOUS_PER_IP_PER_SECOND", "0"),
        ("SOVRA_LIMITS_WORK_THREADS", "1"),
        ("SOVRA_LIMITS_WORK_QUEUE", "1"),
    ]);
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&["keys", "create", "r/k", "--purpose", "encrypt"]);
    // A draft policy that costs milliseconds of matching per attestation: every negated
    // condition scans every claim.
    let conds = vec![r#"![type=="nope"]"#; 30].join(" && ");
    let rules = format!("{conds} => permit(); ").repeat(60);
    let heavy = format!("version=1.2; authorizationrules{{ {rules} }}; issuancerules{{ }};");
    let body = maa_snp_body(Some(&heavy)).to_string().into_bytes();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (statuses, slowest) = rt.block_on(async {
        let mut attests = Vec::new();
        for _ in 0..48 {
            let c = anon(&s);
            let b = body.clone();
            attests.push(tokio::spawn(async move {
                c.send(
                    Method::POST,
                    "/attest/SevSnpVm?api-version=2022-08-01",
                    Some(b),
                )
                .await
                .map(|(st, h, body)| {
                    (
                        st.as_u16(),
                        h.get("retry-after").is_some(),
                        error_code_or_ok(&body),
                    )
                })
            }));
        }
        let admin = s.admin();
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            let (st, _, _) = admin
                .send(
                    Method::POST,
                    "/v1/locations/global/keyRings/r/cryptoKeys/k:encrypt",
                    Some(br#"{"plaintext":"aGk="}"#.to_vec()),
                )
                .await
                .unwrap();
            assert_eq!(st, 200);
            slowest = slowest.max(t.elapsed());
        }
        let mut out = Vec::new();
        for a in attests {
            out.push(a.await.unwrap().unwrap());
        }
        (out, slowest)
    });
    let shed: Vec<_> = statuses.iter().filter(|(st, _, _)| *st == 503).collect();
    assert!(!shed.is_empty(), "nothing was shed: {statuses:?}");
    assert!(
        shed.iter()
            .all(|(_, retry, code)| *retry && code == "OVERLOADED"),
        "{shed:?}"
    );
    assert!(
        statuses.iter().all(|(st, _, _)| *st == 503 || *st == 200),
        "{statuses:?}"
    );
    assert!(slowest < Duration::from_secs(2), "encrypt took {slowest:?}");
}

fn error_code_or_ok(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| "OK".into())
}

/// Audit records of `action` so far.
fn audit_count(s: &Server, action: &str) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let text = rt
        .block_on(s.admin().get_text("/v1/audit?limit=10000"))
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"]["action"] == action)
        .count()
}

#[test]
fn failed_authentications_are_budgeted_per_source_and_audited_once() {
    let s = Server::start();
    let bogus = format!("sovra_0123456789abcdef_{}", "A".repeat(43));
    let c = s.client_as(&bogus);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses: Vec<u16> = rt.block_on(async {
        let mut out = Vec::new();
        for _ in 0..300 {
            out.push(
                c.send(Method::GET, "/v1/whoami", None)
                    .await
                    .unwrap()
                    .0
                    .as_u16(),
            );
        }
        // The attest routes (no token needed) count the same failures.
        for _ in 0..20 {
            let r = c.send(Method::POST, "/v1/attest/sev-snp", Some(b"{}".to_vec()));
            out.push(r.await.unwrap().0.as_u16());
        }
        out
    });
    // A burst of failures is answered 401, then the source waits (429) without a lookup.
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    let waited = statuses.iter().filter(|s| **s == 429).count();
    assert!(waited > 250, "{statuses:?}");
    assert!(statuses[300..].iter().all(|s| *s == 429), "{statuses:?}");
    // The budget refills; the administrator on the same address authenticates again.
    std::thread::sleep(Duration::from_millis(1500));
    // 320 failures, one audit record (the first; the rest are counted into a summary).
    assert_eq!(audit_count(&s, "authenticate"), 1);
}

#[test]
fn a_token_without_roles_is_budgeted_like_no_token_and_mints_no_nonces() {
    let s = Server::start_with(&[("SOVRA_LIMITS_ANONYMOUS_PER_IP_PER_SECOND", "1")]);
    let nobody = s.json(&["tokens", "create", "--principal", "nobody"]);
    let nobody = s.client_as(nobody["token"].as_str().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let attest = |c: &sovra_client::Client| {
            let c = c.clone();
            async move {
                c.send(Method::POST, "/v1/attest/sev-snp", Some(b"{}".to_vec()))
                    .await
                    .unwrap()
                    .0
                    .as_u16()
            }
        };
        assert_eq!(attest(&nobody).await, 400);
        assert_eq!(attest(&nobody).await, 400);
        assert_eq!(
            attest(&nobody).await,
            429,
            "a roleless token spends the anonymous budget"
        );
        // Nonces need the Release User role.
        let (st, _, body) = nobody
            .send(Method::POST, "/v1/release/nonces", None)
            .await
            .unwrap();
        assert_eq!(
            (st.as_u16(), error_code(&body).as_str()),
            (403, "PERMISSION_DENIED")
        );
    });
    // A release user gets them, within its asymmetric quota.
    let vm = s.json(&["tokens", "create", "--principal", "vm2"]);
    s.ok(&["keyrings", "create", "r"]);
    s.ok(&[
        "roles",
        "grant",
        "--principal",
        "vm2",
        "--role",
        "release-user",
        "--scope",
        "r",
    ]);
    s.ok(&[
        "quotas",
        "set",
        "vm2",
        "--symmetric",
        "100",
        "--asymmetric",
        "2",
    ]);
    let vm = s.client_as(vm["token"].as_str().unwrap());
    rt.block_on(async {
        for want in [200, 200, 429] {
            let (st, _, _) = vm
                .send(Method::POST, "/v1/release/nonces", None)
                .await
                .unwrap();
            assert_eq!(st.as_u16(), want);
        }
    });
}

#[test]
fn idle_and_trickling_connections_are_closed_and_do_not_lock_clients_out() {
    let s = Server::start_custom(
        &[
            ("SOVRA_LIMITS_IDLE_TIMEOUT_SECS", "2"),
            ("SOVRA_LIMITS_HEADER_TIMEOUT_SECS", "2"),
            ("SOVRA_LIMITS_BODY_TIMEOUT_SECS", "2"),
            // One address holds them all here: the total limit is what is tested.
            ("SOVRA_LIMITS_MAX_CONNECTIONS_PER_IP", "0"),
        ],
        "127.0.0.1:0",
        // The common default: 1,024 files (about a thousand idle connections locked everyone
        // out).
        Some(1024),
    );
    let port = port_of(&s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A TLS connection that sends nothing is closed.
        let mut idle = tls_connect(&s, port, "127.0.0.1").await;
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
            .await
            .expect("the server closes an idle connection")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(started.elapsed() < Duration::from_secs(6));
        // A body that trickles in gets 408 once its time is up.
        let mut slow = tls_connect(&s, port, "127.0.0.1").await;
        let head = "POST /v1/attest/sev-snp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
        slow.write_all(head.as_bytes()).await.unwrap();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if slow.write_all(b" ").await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(4), trickle).await;
        let (st, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut slow))
            .await
            .expect("an answer to the trickled body");
        assert_eq!((st, error_code(body.as_bytes()).as_str()), (408, "REQUEST_TIMEOUT"));
        // 1,100 idle TCP connections (more than the file limit allows): the server keeps
        // serving once they time out, and never spins on accept.
        // This process needs the files for them too (CI machines often start tests at 1,024 or
        // less), and a loaded machine may take a while to complete a handshake.
        let own = sovra_server::conn::raise_file_limit();
        let mut held = Vec::new();
        let mut stopped = String::from("all connected");
        for _ in 0..1100 {
            match tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            {
                Ok(Ok(t)) => held.push(t),
                Ok(Err(e)) => {
                    stopped = format!("connect failed: {e}");
                    break;
                }
                Err(_) => {
                    stopped = "connect timed out (the backlog is full)".into();
                    break;
                }
            }
        }
        // More than the server may serve under its 1,024 files (896 connections).
        assert!(
            held.len() > 900,
            "held {} connections ({stopped}; this process's file limit {own:?})",
            held.len()
        );
        let started = Instant::now();
        let (st, _) = tokio::time::timeout(Duration::from_secs(30), async {
            let mut c = tls_connect(&s, port, "127.0.0.1").await;
            raw_http(&mut c, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await
        })
        .await
        .expect("a new client is served once the idle connections are closed");
        assert_eq!(st, 200);
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(held);
    });
    assert!(s.cli(&["whoami"]).status.success());
}

#[test]
fn one_source_cannot_hold_every_connection() {
    let s = Server::start_with(&[("SOVRA_LIMITS_MAX_CONNECTIONS_PER_IP", "8")]);
    let port = port_of(&s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap(),
            );
        }
        // The ninth from this address is closed at once…
        let mut ninth = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut b = [0u8; 8];
        let n = tokio::time::timeout(Duration::from_secs(5), ninth.read(&mut b))
            .await
            .expect("closed at once")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // …while another address is served.
        let mut other = tls_connect(&s, port, "127.0.0.2").await;
        let (st, _) = raw_http(&mut other, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(st, 200);
        drop(held);
    });
}

#[test]
fn ipv4_clients_of_a_dual_stack_listener_have_budgets_of_their_own() {
    let s = Server::start_custom(
        &[("SOVRA_LIMITS_ANONYMOUS_PER_IP_PER_SECOND", "1")],
        "[::]:0",
        None,
    );
    let port = port_of(&s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let req = b"POST /v1/attest/sev-snp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let mut a = tls_connect(&s, port, "127.0.0.1").await;
        for want in [400, 400, 429] {
            assert_eq!(raw_http(&mut a, req).await.0, want);
        }
        // Another IPv4 client (arriving as ::ffff:127.0.0.2) is not the first one's bucket.
        let mut b = tls_connect(&s, port, "127.0.0.2").await;
        assert_eq!(raw_http(&mut b, req).await.0, 400);
    });
}
