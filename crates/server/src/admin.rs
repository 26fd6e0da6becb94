//! `apps …`, `webhooks …`, `reseal` and `travel-rule …`: the operators' subcommands —
//! create, list, rotate, disable and enable applications, reseal every sealed value, list
//! endpoints, replace an endpoint's secret, redeliver events, list unmatched order events,
//! print a session's compliance record — each through the use cases of the configured
//! database.

use secrecy::{ExposeSecret, SecretString};

use crate::compose::{Overrides, UseCases};
use crate::config::Config;

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Create an application (credentials generated unless given).
    Create {
        /// Unique name.
        name: String,
        /// Use this API key instead of a generated one.
        api_key: Option<String>,
        /// Use this secret instead of a generated one.
        api_secret: Option<String>,
        /// Its settings.
        settings: ports::ApplicationSettings,
    },
    /// Change an application's settings (sessions created before keep theirs).
    Update {
        /// The application's name.
        name: String,
        /// The ownership-proof policy, if it changes.
        proof_policy: Option<domain::ProofPolicy>,
        /// Whether the hosted travel-rule step runs, if that changes.
        hosted_travel_rule: Option<bool>,
        /// The origins allowed to frame the hosted page, if they change.
        frame_ancestors: Option<domain::FrameAncestors>,
    },
    /// List applications (as JSON lines for scripts with `json`).
    List {
        /// Print a JSON array instead of a table.
        json: bool,
    },
    /// Reseal every sealed value under the current at-rest key (after a key rotation).
    Reseal {
        /// First forget the stored Transak access tokens no configured key opens (their key
        /// is lost); the next instance that needs one obtains a new one.
        forget_unopenable_tokens: bool,
    },
    /// New credentials for an application (the old ones stop working).
    Rotate {
        /// Its name.
        name: String,
    },
    /// Refuse the application's requests.
    Disable {
        /// Its name.
        name: String,
    },
    /// Accept the application's requests again.
    Enable {
        /// Its name.
        name: String,
    },
    /// List an application's webhook endpoints.
    WebhookEndpoints {
        /// The application's name.
        app: String,
    },
    /// A new secret for an endpoint, replacing the current one at once.
    ReplaceEndpointSecret {
        /// The application's name.
        app: String,
        /// `we_…`.
        endpoint: String,
    },
    /// Make an event's failed deliveries pending again.
    Redeliver {
        /// `evt_…`.
        event: String,
        /// Only to this endpoint (`we_…`).
        endpoint: Option<String>,
    },
    /// The latest order events from Transak that matched no opened session.
    UnmatchedOrders {
        /// How many, newest first.
        limit: u32,
    },
    /// A session's travel-rule compliance record, as JSON.
    ComplianceRecord {
        /// The application's name.
        app: String,
        /// The session id.
        session: String,
    },
}

/// Writes to standard output; a closed pipe (`… | head`) ends the output quietly.
fn print(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The applications as an aligned table (columns as wide as their longest value).
pub fn list_table(list: &[ports::Application]) -> String {
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|a| {
            [
                a.name.clone(),
                a.id.to_string(),
                a.status.as_str().to_string(),
                a.settings.proof_policy.as_str().to_string(),
                if a.settings.hosted.enabled {
                    "on"
                } else {
                    "off"
                }
                .to_string(),
                a.created_at
                    .to_rfc3339_opts(domain::chrono::SecondsFormat::Secs, true),
                a.rotated_at
                    .to_rfc3339_opts(domain::chrono::SecondsFormat::Secs, true),
            ]
        })
        .collect();
    let header = [
        "name", "id", "status", "proofs", "hosted", "created", "rotated",
    ]
    .map(str::to_string);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The applications as a JSON array, for scripts.
pub fn list_json(list: &[ports::Application]) -> String {
    let items: Vec<serde_json::Value> = list
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "id": a.id.to_string(),
                "status": a.status.as_str(),
                "ownershipProofPolicy": a.settings.proof_policy.as_str(),
                "hostedTravelRule": a.settings.hosted.enabled,
                "frameAncestors": a.settings.hosted.frame_ancestors.origins().iter()
                    .map(|o| o.as_str()).collect::<Vec<_>>(),
                "createdAt": a.created_at,
                "rotatedAt": a.rotated_at,
            })
        })
        .collect();
    format!("{}\n", serde_json::Value::Array(items))
}

/// What to do when sealed values in use do not open, for the operator.
pub const UNOPENABLE_HINT: &str = "if the key that sealed them is lost: `apps rotate NAME` gives an application new credentials, `webhooks replace-secret APP ENDPOINT` gives an endpoint a new secret, and `reseal --forget-unopenable-tokens` forgets the stored Transak access token (the next instance obtains a new one)";

/// The reseal report for the operator: one line per kind of sealed value.
pub fn reseal_text(report: &app::ResealReport, forgotten: Option<usize>) -> String {
    let mut out = String::new();
    if let Some(n) = forgotten {
        out.push_str(&format!(
            "forgot {n} stored Transak access tokens that no configured key opens; the next instance that needs one obtains a new one\n"
        ));
    }
    out.push_str(&format!(
        "resealed {} of {} sealed values under key {}:\n",
        report.total_resealed(),
        report.total(),
        report.key_id
    ));
    let width = app::SealedKind::ALL
        .iter()
        .map(|k| k.describe().len())
        .max()
        .unwrap_or(0);
    for (kind, resealed, total) in &report.resealed {
        out.push_str(&format!(
            "  {:<width$}  {resealed} of {total}\n",
            kind.describe()
        ));
    }
    if report.retired_unopenable > 0 {
        out.push_str(&format!(
            "{} values no longer in use (previous secrets or tokens past their time) are sealed under a key that is not configured; they are never read again\n",
            report.retired_unopenable
        ));
    }
    out.push_str("older keys can be removed from WIDGET_SESSIONS_OLD_SECRET_KEYS once every instance runs with this key and a reseal resealed nothing\n");
    out
}

/// Runs an admin action against the configured database.
///
/// # Errors
///
/// A message for the operator.
pub async fn run(config: &Config, action: Action) -> Result<(), String> {
    if config.database_url.is_none() {
        return Err(
            "these commands manage what is stored in Postgres: set DATABASE_URL (and WIDGET_SESSIONS_SECRET_KEY)"
                .into(),
        );
    }
    let use_cases = UseCases::build(
        config,
        &config.public_base(config.listen),
        Overrides::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let apps = &use_cases.applications;
    let show = |what: &str, issued: &app::IssuedCredentials| {
        println!(
            "{what} application {:?} ({})",
            issued.application.name, issued.application.id
        );
        println!("api key:    {}", issued.api_key);
        println!("api secret: {}", issued.api_secret.expose_secret());
    };
    match action {
        Action::Create {
            name,
            api_key,
            api_secret,
            settings,
        } => {
            let issued = apps
                .create(&name, api_key, api_secret.map(SecretString::from), settings)
                .await
                .map_err(|e| e.to_string())?;
            show("created", &issued);
            println!("(the secret is stored sealed and cannot be shown again)");
        }
        Action::List { json } => {
            let list = apps.list().await.map_err(|e| e.to_string())?;
            print(&if json {
                list_json(&list)
            } else {
                list_table(&list)
            });
        }
        Action::Reseal {
            forget_unopenable_tokens,
        } => {
            let forgotten = if forget_unopenable_tokens {
                Some(
                    use_cases
                        .keys
                        .forget_unopenable_tokens()
                        .await
                        .map_err(|e| match e {
                            app::KeyError::Unopenable(report) => format!(
                                "no token was forgotten: other sealed values do not open either ({}), so the configured keys are likely wrong. `widget-sessions doctor` lists every check; {UNOPENABLE_HINT}",
                                report.describe()
                            ),
                            app::KeyError::Store(e) => e.to_string(),
                        })?,
                )
            } else {
                None
            };
            let report = use_cases.keys.reseal().await.map_err(|e| match e {
                app::KeyError::Unopenable(report) => format!(
                    "nothing was resealed: {}. `widget-sessions doctor` lists every check; {UNOPENABLE_HINT}",
                    report.describe()
                ),
                app::KeyError::Store(e) => e.to_string(),
            })?;
            print(&reseal_text(&report, forgotten));
        }
        Action::Update {
            name,
            proof_policy,
            hosted_travel_rule,
            frame_ancestors,
        } => {
            let mut settings = apps.named(&name).await.map_err(|e| e.to_string())?.settings;
            if let Some(policy) = proof_policy {
                settings.proof_policy = policy;
            }
            if let Some(on) = hosted_travel_rule {
                settings.hosted.enabled = on;
            }
            if let Some(origins) = frame_ancestors {
                settings.hosted.frame_ancestors = origins;
            }
            let updated = apps
                .update(&name, settings)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "updated {name:?}: ownership proofs {}, hosted travel-rule step {}, framed by {} (sessions created from now on; existing ones keep theirs)",
                updated.settings.proof_policy,
                if updated.settings.hosted.enabled {
                    "on"
                } else {
                    "off"
                },
                updated.settings.hosted.frame_ancestors.csp_sources()
            );
        }
        Action::Rotate { name } => {
            let issued = apps.rotate(&name).await.map_err(|e| e.to_string())?;
            show("rotated", &issued);
            println!(
                "the old credentials stop working (within {} s on running instances)",
                app::CredentialCache::TTL.as_secs()
            );
        }
        Action::Disable { name } => {
            apps.set_enabled(&name, false)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "disabled {name:?} (effective within {} s on running instances)",
                app::CredentialCache::TTL.as_secs()
            );
        }
        Action::Enable { name } => {
            apps.set_enabled(&name, true)
                .await
                .map_err(|e| e.to_string())?;
            println!("enabled {name:?}");
        }
        Action::WebhookEndpoints { app } => {
            let application = apps.named(&app).await.map_err(|e| e.to_string())?;
            let endpoints = use_cases
                .webhooks
                .list_endpoints(application.id)
                .await
                .map_err(|e| e.to_string())?;
            if endpoints.is_empty() {
                print(&format!("{app:?} has no webhook endpoints\n"));
            }
            let mut out = String::new();
            for e in endpoints {
                let types = if e.event_types.is_empty() {
                    "all events".to_string()
                } else {
                    e.event_types
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                out.push_str(&format!(
                    "{}  {}  {}  {}\n",
                    e.id,
                    e.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    e.url.origin(),
                    types
                ));
            }
            print(&out);
        }
        Action::ReplaceEndpointSecret { app, endpoint } => {
            let application = apps.named(&app).await.map_err(|e| e.to_string())?;
            let id: domain::WebhookEndpointId =
                endpoint.parse().map_err(|e| format!("{endpoint:?}: {e}"))?;
            let Some(replaced) = use_cases
                .webhooks
                .replace_secret(application.id, id)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Err(format!("{app:?} has no webhook endpoint {id}"));
            };
            println!(
                "new secret of {} ({}); the previous one signs no further delivery:",
                replaced.endpoint.id,
                replaced.endpoint.url.origin()
            );
            println!("{}", replaced.secret.expose_secret());
            println!("(stored sealed; hand it to the partner now, it cannot be shown again)");
        }
        Action::Redeliver { event, endpoint } => {
            let event: domain::EventId = event.parse().map_err(|e| format!("{event:?}: {e}"))?;
            let endpoint = endpoint
                .map(|e| {
                    e.parse::<domain::WebhookEndpointId>()
                        .map_err(|x| format!("{e:?}: {x}"))
                })
                .transpose()?;
            let n = use_cases
                .webhooks
                .redeliver(event, endpoint)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{n} failed deliveries of {event} are pending again; the running instances send them within a second"
            );
        }
        Action::UnmatchedOrders { limit } => {
            let orders = use_cases
                .orders
                .unmatched(limit)
                .await
                .map_err(|e| e.to_string())?;
            if orders.is_empty() {
                print("no unmatched order events\n");
            }
            let mut out = String::new();
            for o in orders {
                out.push_str(&format!(
                    "{}  order {}  {} {}  partnerOrderId {}\n",
                    o.received_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    o.order_id,
                    o.event_id,
                    o.status,
                    o.partner_order_id.as_deref().unwrap_or("-"),
                ));
            }
            print(&out);
        }
        Action::ComplianceRecord { app, session } => {
            let application = apps.named(&app).await.map_err(|e| e.to_string())?;
            let id: domain::SessionId = session
                .parse()
                .map_err(|e| format!("{session:?} is not a session id: {e}"))?;
            let record = use_cases
                .travel_rule
                .compliance_record(application.id, id)
                .await
                .map_err(|e| match e {
                    app::TravelRuleError::NotFound => {
                        format!("{app:?} has no session {id} (or it was purged)")
                    }
                    other => other.to_string(),
                })?;
            print(&format!("{}\n", compliance_json(id, &record)));
        }
    }
    Ok(())
}

/// A compliance record as the compliance team reads it: every declaration version, the
/// verified proof with what is needed to verify it again, the refused proofs.
pub fn compliance_json(id: domain::SessionId, r: &ports::ComplianceRecord) -> String {
    use serde_json::json;
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let declarations: Vec<_> = r
        .declarations
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "declaration": api::http::declaration_body::to_json(&v.declaration.declaration),
                "source": v.declaration.source.as_str(),
                "declaredAt": time(v.declaration.declared_at),
                "carriedFrom": v.carried_from.map(|s| s.to_string()),
            })
        })
        .collect();
    let proof = r.proof.as_ref().map(|(p, from)| {
        json!({
            "method": p.method.as_str(),
            "address": p.address,
            "message": p.message,
            "signature": p.signature,
            "verifiedAt": time(p.verified_at),
            "carriedFrom": from.map(|s| s.to_string()),
        })
    });
    let refused: Vec<_> = r
        .rejected
        .iter()
        .map(|a| json!({"at": time(a.at), "code": a.rejection.as_str()}))
        .collect();
    serde_json::to_string_pretty(&json!({
        "session": id.to_string(),
        "declarations": declarations,
        "ownershipProof": proof,
        "refusedProofs": refused,
    }))
    .unwrap_or_default()
}
