//! Locations, tokens, roles, quotas, settings and whoami.

use crate::context::{CliError, Global, Result};
use crate::output::{emit, fields, say, table};
use clap::Subcommand;
use serde_json::Value;
use sovra_proto::admin::*;
use sovra_proto::kms::{ListLocationsResponse, Location};

/// `sovra locations …`.
#[derive(Debug, Subcommand)]
pub enum LocationsCmd {
    /// List locations.
    List,
    /// Show a location.
    Get {
        /// Location ID.
        location: String,
    },
    /// Create a location (its wrapping key is created in the HSM).
    Create {
        /// Location ID.
        location: String,
    },
}

/// Runs `sovra locations …`.
pub async fn locations(g: &Global, c: LocationsCmd) -> Result<()> {
    let client = g.client()?;
    let one = |l: &Location| {
        fields(&[
            ("name", l.name.clone()),
            ("hsm", l.hsm.clone()),
            ("created", l.create_time.clone()),
        ])
    };
    match c {
        LocationsCmd::List => {
            let r: ListLocationsResponse = client.list_locations().await?;
            emit(g, &r.locations, |ls| {
                table(
                    &["LOCATION", "HSM", "CREATED"],
                    ls.iter()
                        .map(|l| vec![l.location_id.clone(), l.hsm.clone(), l.create_time.clone()])
                        .collect(),
                )
            });
        }
        LocationsCmd::Get { location } => emit(
            g,
            &client
                .get_location(&format!("locations/{location}"))
                .await?,
            one,
        ),
        LocationsCmd::Create { location } => {
            emit(g, &client.create_location(&location).await?, one)
        }
    }
    Ok(())
}

/// `sovra tokens …`.
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Create a token for a principal (the secret is printed once).
    Create {
        /// The principal the token authenticates.
        #[arg(long)]
        principal: String,
        /// Lifetime, e.g. 90d (default: no expiry).
        #[arg(long)]
        ttl: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token ID.
        id: String,
    },
}

fn print_token(t: &TokenInfo) {
    fields(&[
        ("id", t.id.clone()),
        ("principal", t.principal.clone()),
        ("description", t.description.clone()),
        ("created", t.create_time.clone()),
        (
            "expires",
            t.expire_time.clone().unwrap_or_else(|| "never".into()),
        ),
        ("revoked", t.revoked.to_string()),
    ]);
}

/// Runs `sovra tokens …`.
pub async fn tokens(g: &Global, c: TokensCmd) -> Result<()> {
    let client = g.client()?;
    match c {
        TokensCmd::Create {
            principal,
            ttl,
            description,
        } => {
            let r: CreateTokenResponse = client
                .create_token(&CreateTokenRequest {
                    principal,
                    description,
                    ttl,
                })
                .await?;
            emit(g, &r, |r| {
                print_token(&r.info);
                say("token (shown once; store it now):");
                say(&r.token);
            });
        }
        TokensCmd::List => {
            let r: ListTokensResponse = client.list_tokens().await?;
            emit(g, &r.tokens, |ts| {
                table(
                    &[
                        "ID",
                        "PRINCIPAL",
                        "CREATED",
                        "EXPIRES",
                        "REVOKED",
                        "DESCRIPTION",
                    ],
                    ts.iter()
                        .map(|t| {
                            vec![
                                t.id.clone(),
                                t.principal.clone(),
                                t.create_time.clone(),
                                t.expire_time.clone().unwrap_or_else(|| "never".into()),
                                t.revoked.to_string(),
                                t.description.clone(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        TokensCmd::Revoke { id } => emit(g, &client.revoke_token(&id).await?, print_token),
    }
    Ok(())
}

/// `sovra roles …`.
#[derive(Debug, Subcommand)]
pub enum RolesCmd {
    /// Grant a role to a principal on a scope.
    Grant {
        /// The principal.
        #[arg(long)]
        principal: String,
        /// administrator, crypto-officer, crypto-user, release-user, policy-administrator or auditor.
        #[arg(long)]
        role: String,
        /// `*` (everything) or a resource name: locations/L, locations/L/keyRings/R, …/cryptoKeys/K.
        #[arg(long, default_value = "*")]
        scope: String,
    },
    /// List role bindings.
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Remove a role binding.
    Revoke {
        /// The principal.
        principal: String,
        /// Binding ID (from `sovra roles list`).
        id: String,
    },
}

/// Runs `sovra roles …`.
pub async fn roles(g: &Global, c: RolesCmd) -> Result<()> {
    let client = g.client()?;
    match c {
        RolesCmd::Grant {
            principal,
            role,
            scope,
        } => {
            let role = Role::parse(&role).ok_or_else(|| CliError::Usage(format!("unknown role {role:?}; one of administrator, crypto-officer, crypto-user, release-user, policy-administrator, auditor")))?;
            let scope = if scope == "*" || scope.starts_with("locations/") {
                scope
            } else {
                g.ring_name(&scope)?
            };
            let b: RoleBinding = client
                .create_role_binding(&CreateRoleBindingRequest {
                    principal,
                    role,
                    scope,
                })
                .await?;
            emit(g, &b, |b| {
                fields(&[
                    ("id", b.id.clone()),
                    ("principal", b.principal.clone()),
                    ("role", b.role.as_str().into()),
                    ("scope", b.scope.clone()),
                ])
            });
        }
        RolesCmd::List { principal } => {
            let r: ListRoleBindingsResponse =
                client.list_role_bindings(principal.as_deref()).await?;
            emit(g, &r.role_bindings, |bs| {
                table(
                    &["PRINCIPAL", "ROLE", "SCOPE", "ID"],
                    bs.iter()
                        .map(|b| {
                            vec![
                                b.principal.clone(),
                                b.role.as_str().into(),
                                b.scope.clone(),
                                b.id.clone(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        RolesCmd::Revoke { principal, id } => {
            client.delete_role_binding(&principal, &id).await?;
            emit(g, &serde_json::json!({"revoked": id}), |_| say("revoked"));
        }
    }
    Ok(())
}

/// `sovra quotas …`.
#[derive(Debug, Subcommand)]
pub enum QuotasCmd {
    /// Show a principal's quotas.
    Get {
        /// The principal.
        principal: String,
    },
    /// Set a principal's quotas (operations per minute).
    Set {
        /// The principal.
        principal: String,
        /// Symmetric operations per minute.
        #[arg(long)]
        symmetric: u64,
        /// Asymmetric operations per minute.
        #[arg(long)]
        asymmetric: u64,
    },
}

/// Runs `sovra quotas …`.
pub async fn quotas(g: &Global, c: QuotasCmd) -> Result<()> {
    let client = g.client()?;
    let q: Quota = match c {
        QuotasCmd::Get { principal } => client.get_quota(&principal).await?,
        QuotasCmd::Set {
            principal,
            symmetric,
            asymmetric,
        } => {
            client
                .set_quota(
                    &principal,
                    &SetQuotaRequest {
                        symmetric_per_minute: symmetric,
                        asymmetric_per_minute: asymmetric,
                    },
                )
                .await?
        }
    };
    emit(g, &q, |q| {
        fields(&[
            ("principal", q.principal.clone()),
            ("symmetric/min", q.symmetric_per_minute.to_string()),
            ("asymmetric/min", q.asymmetric_per_minute.to_string()),
            ("default", q.default.to_string()),
        ])
    });
    Ok(())
}

/// `sovra settings …`.
#[derive(Debug, Subcommand)]
pub enum SettingsCmd {
    /// Show the organisation settings.
    Get,
    /// Change organisation settings.
    Set {
        /// Smallest destroyScheduledDuration a key may have, e.g. 1d.
        #[arg(long)]
        min_destroy_scheduled_duration: Option<String>,
        /// Default destroyScheduledDuration, e.g. 30d.
        #[arg(long)]
        default_destroy_scheduled_duration: Option<String>,
        /// Require versions to be DISABLED before destruction.
        #[arg(long)]
        require_disable_before_destroy: Option<bool>,
    },
}

/// Runs `sovra settings …`.
pub async fn settings(g: &Global, c: SettingsCmd) -> Result<()> {
    let client = g.client()?;
    let s: Settings = match c {
        SettingsCmd::Get => client.get_settings().await?,
        SettingsCmd::Set {
            min_destroy_scheduled_duration,
            default_destroy_scheduled_duration,
            require_disable_before_destroy,
        } => {
            client
                .update_settings(&UpdateSettingsRequest {
                    min_destroy_scheduled_duration,
                    default_destroy_scheduled_duration,
                    require_disable_before_destroy,
                })
                .await?
        }
    };
    emit(g, &s, |s| {
        fields(&[
            ("default location", s.default_location.clone()),
            (
                "min destroy delay",
                s.min_destroy_scheduled_duration.clone(),
            ),
            (
                "default destroy delay",
                s.default_destroy_scheduled_duration.clone(),
            ),
            (
                "disable before destroy",
                s.require_disable_before_destroy.to_string(),
            ),
        ])
    });
    Ok(())
}

/// Runs `sovra whoami`.
pub async fn whoami(g: &Global) -> Result<()> {
    let v: Value = g.client()?.whoami().await?;
    emit(g, &v, |v| {
        say(&format!(
            "principal: {}",
            v["principal"].as_str().unwrap_or("?")
        ));
        let rows = v["roleBindings"].as_array().cloned().unwrap_or_default();
        table(
            &["ROLE", "SCOPE"],
            rows.iter()
                .map(|b| {
                    vec![
                        b["role"].as_str().unwrap_or("").to_owned(),
                        b["scope"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect(),
        );
    });
    Ok(())
}
