//! `sovra attest` (evidence to the server, token back) and `sovra attestation …` (providers,
//! policies, reference values, collateral, signing keys, token verification).

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields, say, table};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sovra_crypto::jws::{Jws, VerifyKey};
use sovra_proto::attest::*;
use std::path::{Path, PathBuf};

fn read(p: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(p)
        .map_err(|e| CliError::Usage(format!("cannot read {what} {}: {e}", p.display())))
}

fn b64(b: &[u8]) -> String {
    sovra_proto::b64::encode(b)
}

/// `sovra attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// Evidence type: sev-snp, az-snp-vtpm, az-tdx-vtpm, tdx, sgx, tpm, nitro, nvidia-gpu.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: String,
    /// Attestation provider.
    #[arg(long, default_value = "default")]
    pub provider: String,
    /// Certificates that travel with the evidence; repeatable.
    #[arg(long = "cert-chain", value_name = "FILE")]
    pub cert_chain: Vec<PathBuf>,
    /// Collateral (Intel PCS/PCCS JSON).
    #[arg(long, value_name = "FILE")]
    pub collateral: Option<PathBuf>,
    /// Event log.
    #[arg(long = "event-log", value_name = "FILE")]
    pub event_log: Option<PathBuf>,
    /// Runtime data whose hash the evidence's report data starts with (binary).
    #[arg(
        long = "runtime-data",
        value_name = "FILE",
        conflicts_with = "runtime_json"
    )]
    pub runtime_data: Option<PathBuf>,
    /// Runtime data given as JSON (becomes the `x-ms-runtime` claim).
    #[arg(long = "runtime-json", value_name = "FILE")]
    pub runtime_json: Option<PathBuf>,
    /// The nonce the evidence itself must carry (hex).
    #[arg(long = "expected-nonce", value_name = "HEX")]
    pub expected_nonce: Option<String>,
    /// The evidence file.
    pub evidence: PathBuf,
}

/// Runs `sovra attest`: prints the token (human) or `{"token", "claims"}` (json).
pub async fn attest(g: &Global, a: AttestArgs) -> Result<()> {
    let mut req = AttestRequest {
        evidence: b64(&read(&a.evidence, "evidence")?),
        ..AttestRequest::default()
    };
    for p in &a.cert_chain {
        req.cert_chain.push(b64(&read(p, "certificate chain")?));
    }
    req.collateral = a
        .collateral
        .as_deref()
        .map(|p| read(p, "collateral").map(|b| b64(&b)))
        .transpose()?;
    req.event_log = a
        .event_log
        .as_deref()
        .map(|p| read(p, "event log").map(|b| b64(&b)))
        .transpose()?;
    if let Some(p) = &a.runtime_data {
        req.runtime_data = Some(BoundData {
            data: b64(&read(p, "runtime data")?),
            data_type: Some("Binary".into()),
        });
    }
    if let Some(p) = &a.runtime_json {
        req.runtime_data = Some(BoundData {
            data: b64(&read(p, "runtime data")?),
            data_type: Some("JSON".into()),
        });
    }
    req.expected_nonce = a.expected_nonce.clone();
    let provider = (a.provider != "default").then_some(a.provider.as_str());
    let resp: AttestResponse = g
        .client_anonymous()?
        .attest(provider, evidence_type(&a.kind)?, &req)
        .await?;
    let claims = Jws::parse(&resp.token)
        .and_then(|j| j.claims())
        .map(Value::Object)
        .unwrap_or(Value::Null);
    emit(g, &json!({"token": resp.token, "claims": claims}), |v| {
        say(v["token"].as_str().unwrap_or_default())
    });
    Ok(())
}

/// `sovra attestation …`.
#[derive(Debug, Subcommand)]
pub enum AttestationCmd {
    /// Attestation providers (tenants).
    #[command(subcommand)]
    Providers(ProvidersCmd),
    /// Attestation policies (MAA language or Rego).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Reference-value sets (accepted measurements) that policies can use.
    #[command(subcommand, name = "refvalues")]
    RefValues(RefValuesCmd),
    /// The collateral store: AMD certificates, Intel collateral, trust anchors, policy signers.
    #[command(subcommand)]
    Collateral(CollateralCmd),
    /// What is trusted: pinned vendor roots, operator anchors, policy signers, external issuers.
    Trust,
    /// Make a new token signing key active (the old one stays published until its tokens expire).
    RotateSigningKey {
        /// RS256 (default), ES256 or ES384.
        #[arg(long)]
        alg: Option<String>,
    },
    /// Verify an attestation token against the server's published keys and print its claims.
    VerifyToken {
        /// The token (or a file holding it).
        token: String,
    },
}

/// `sovra attestation providers …`.
#[derive(Debug, Subcommand)]
pub enum ProvidersCmd {
    /// List providers.
    List,
    /// Create a provider.
    Create {
        /// Provider ID (a-z, 0-9, '-').
        name: String,
    },
}

/// `sovra attestation policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Show the policy in force for an evidence type.
    Get {
        /// Evidence type.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Provider.
        #[arg(long, default_value = "default")]
        provider: String,
    },
    /// Set the policy from a file (policy text, or an MAA policy JWS, signed or not).
    Set {
        /// Evidence type.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The policy file.
        file: PathBuf,
        /// maa (default) or rego.
        #[arg(long)]
        language: Option<String>,
        /// Provider.
        #[arg(long, default_value = "default")]
        provider: String,
    },
    /// Go back to the built-in default policy.
    Reset {
        /// Evidence type.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Provider.
        #[arg(long, default_value = "default")]
        provider: String,
    },
}

/// `sovra attestation refvalues …`.
#[derive(Debug, Subcommand)]
pub enum RefValuesCmd {
    /// List sets.
    List,
    /// Create or replace a set from a JSON file `{"values": {"claim": [accepted, …]}}`.
    Put {
        /// Set name.
        name: String,
        /// JSON file.
        file: PathBuf,
    },
    /// Delete a set.
    Delete {
        /// Set name.
        name: String,
    },
}

/// `sovra attestation collateral …`.
#[derive(Debug, Subcommand)]
pub enum CollateralCmd {
    /// List stored collateral.
    List,
    /// Import a file.
    Import {
        /// amd-certs, intel, trust-anchor or policy-signer.
        #[arg(long)]
        kind: String,
        /// For trust-anchor: amd, intel, nitro, nvidia or tpm.
        #[arg(long)]
        platform: Option<String>,
        /// The file (PEM/DER certificates, or Intel collateral JSON).
        file: PathBuf,
    },
    /// Delete an item.
    Delete {
        /// Its ID.
        id: String,
    },
}

/// An evidence type named on the command line.
pub fn evidence_type(kind: &str) -> Result<sovra_proto::EvidenceType> {
    kind.parse()
        .map_err(|e: sovra_proto::evidence::UnknownEvidenceType| CliError::Usage(e.to_string()))
}

fn show_policy(g: &Global, p: &PolicyInfo) {
    emit(g, p, |p| {
        fields(&[
            ("type", p.evidence_type.clone()),
            ("language", p.language.clone()),
            ("hash", p.hash.clone()),
            ("default", p.is_default.to_string()),
            ("signer", p.signer.clone().unwrap_or_default()),
        ]);
        say("");
        say(&p.text);
    });
}

/// Runs `sovra attestation …`.
pub async fn run(g: &Global, c: AttestationCmd) -> Result<()> {
    match c {
        AttestationCmd::Providers(ProvidersCmd::List) => {
            let v: Value = g.client()?.list_providers().await?;
            emit(g, &v, |v| {
                let rows = v["providers"].as_array().cloned().unwrap_or_default();
                table(
                    &["PROVIDER", "ISSUER"],
                    rows.iter()
                        .map(|p| {
                            vec![
                                p["name"].as_str().unwrap_or("").into(),
                                p["issuer"].as_str().unwrap_or("").into(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        AttestationCmd::Providers(ProvidersCmd::Create { name }) => {
            let p: Provider = g.client()?.create_provider(&name).await?;
            emit(g, &p, |p| {
                fields(&[("provider", p.name.clone()), ("issuer", p.issuer.clone())])
            });
        }
        AttestationCmd::Policy(PolicyCmd::Get { kind, provider }) => {
            let p: PolicyInfo = g
                .client()?
                .get_policy(&provider, evidence_type(&kind)?)
                .await?;
            show_policy(g, &p);
        }
        AttestationCmd::Policy(PolicyCmd::Set {
            kind,
            file,
            language,
            provider,
        }) => {
            let text = String::from_utf8(read(&file, "policy")?)
                .map_err(|_| CliError::Usage("the policy file is not UTF-8 text".into()))?;
            let p: PolicyInfo = g
                .client()?
                .set_policy(
                    &provider,
                    evidence_type(&kind)?,
                    &SetPolicyRequest {
                        language,
                        policy: text,
                    },
                )
                .await?;
            show_policy(g, &p);
        }
        AttestationCmd::Policy(PolicyCmd::Reset { kind, provider }) => {
            let p: PolicyInfo = g
                .client()?
                .reset_policy(&provider, evidence_type(&kind)?)
                .await?;
            show_policy(g, &p);
        }
        AttestationCmd::RefValues(RefValuesCmd::List) => {
            let v: Value = g.client()?.list_reference_values().await?;
            emit(g, &v, |v| {
                say(&serde_json::to_string_pretty(v).unwrap_or_default())
            });
        }
        AttestationCmd::RefValues(RefValuesCmd::Put { name, file }) => {
            let body: Value = serde_json::from_slice(&read(&file, "reference values")?)
                .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", file.display())))?;
            let v: ReferenceValues = g.client()?.put_reference_values(&name, &body).await?;
            emit(g, &v, |v| {
                say(&format!(
                    "reference values {} set ({} claims)",
                    v.name,
                    v.values.len()
                ))
            });
        }
        AttestationCmd::RefValues(RefValuesCmd::Delete { name }) => {
            let _: Value = g.client()?.delete_reference_values(&name).await?;
            emit(g, &json!({"deleted": name}), |_| say("deleted"));
        }
        AttestationCmd::Trust => {
            let v: Value = g.client()?.trust().await?;
            emit(g, &v, |v| {
                let rows = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                };
                let field = |r: &Value, k: &str| -> String {
                    r.get(k).and_then(Value::as_str).unwrap_or("").into()
                };
                let mut out: Vec<Vec<String>> = Vec::new();
                for r in rows("pinnedRoots") {
                    out.push(vec![
                        "vendor root".into(),
                        field(&r, "platform"),
                        field(&r, "name"),
                    ]);
                }
                for r in rows("operatorAnchors") {
                    out.push(vec![
                        "OPERATOR ANCHOR".into(),
                        field(&r, "platform"),
                        field(&r, "subjects"),
                    ]);
                }
                for r in rows("policySigners") {
                    out.push(vec![
                        "policy signer".into(),
                        String::new(),
                        field(&r, "subjects"),
                    ]);
                }
                for r in rows("externalIssuers") {
                    out.push(vec![
                        "external issuer".into(),
                        String::new(),
                        field(&r, "issuer"),
                    ]);
                }
                table(&["WHAT", "PLATFORM", "WHO"], out);
                for w in rows("warnings") {
                    say(&format!("warning: {}", w.as_str().unwrap_or("")));
                }
            });
        }
        AttestationCmd::Collateral(CollateralCmd::List) => {
            let v: Value = g.client()?.list_collateral().await?;
            emit(g, &v, |v| {
                let rows = v["collateral"].as_array().cloned().unwrap_or_default();
                table(
                    &["ID", "KIND", "DESCRIPTION"],
                    rows.iter()
                        .map(|c| {
                            vec![
                                c["id"].as_str().unwrap_or("").chars().take(16).collect(),
                                c["kind"].as_str().unwrap_or("").into(),
                                c["description"].as_str().unwrap_or("").into(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        AttestationCmd::Collateral(CollateralCmd::Import {
            kind,
            platform,
            file,
        }) => {
            let req = ImportCollateralRequest {
                kind,
                platform,
                content: b64(&read(&file, "collateral")?),
            };
            let c: CollateralInfo = g.client()?.import_collateral(&req).await?;
            emit(g, &c, |c| {
                fields(&[
                    ("id", c.id.clone()),
                    ("kind", c.kind.clone()),
                    ("description", c.description.clone()),
                ])
            });
        }
        AttestationCmd::Collateral(CollateralCmd::Delete { id }) => {
            let _: Value = g.client()?.delete_collateral(&id).await?;
            emit(g, &json!({"deleted": id}), |_| say("deleted"));
        }
        AttestationCmd::RotateSigningKey { alg } => {
            let body = alg.map(|a| json!({"alg": a})).unwrap_or(json!({}));
            let v: Value = g.client()?.rotate_signing_key(&body).await?;
            emit(g, &v, |v| {
                say(&format!(
                    "new signing key {} ({})",
                    v["kid"].as_str().unwrap_or(""),
                    v["alg"].as_str().unwrap_or("")
                ))
            });
        }
        AttestationCmd::VerifyToken { token } => {
            let token = match std::fs::read_to_string(&token) {
                Ok(t) => t.trim().to_string(),
                Err(_) => token,
            };
            let claims = verify_token(g, &token).await?;
            emit(g, &claims, |c| {
                say(&serde_json::to_string_pretty(c).unwrap_or_default())
            });
        }
    }
    Ok(())
}

/// Verifies `token` with the server's JWKS (`/certs`) and its `nbf`/`exp`; returns the claims.
pub async fn verify_token(g: &Global, token: &str) -> Result<Value> {
    let bad = |m: String| CliError::Coded {
        code: "TOKEN_INVALID".into(),
        message: m,
    };
    let j = Jws::parse(token).map_err(|e| bad(e.to_string()))?;
    let jwks: Value = g.client_anonymous()?.certs().await?;
    let kid = j.kid().ok_or_else(|| bad("the token has no kid".into()))?;
    let jwk = jwks
        .get("keys")
        .and_then(Value::as_array)
        .and_then(|ks| {
            ks.iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        })
        .ok_or_else(|| bad(format!("no published key has kid {kid}")))?;
    let key = VerifyKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
    j.verify_with(&key).map_err(|e| bad(e.to_string()))?;
    let claims = j.claims().map_err(|e| bad(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|e| e < now)
    {
        return Err(bad("the token has expired".into()));
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|n| n > now + 60)
    {
        return Err(bad("the token is not valid yet".into()));
    }
    Ok(Value::Object(claims))
}
