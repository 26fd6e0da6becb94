//! `widget-sessions doctor`: every check of a deployment, in full, for its operators — the
//! detail that the public `/readyz` leaves out. It reads the configured database and changes
//! nothing (it does not migrate): the database answers; the migrations this build has are
//! applied; the at-rest keys open every sealed value in use, naming the records they do not
//! open; the stored Transak access token of the configured account is there and opens.

use std::sync::Arc;

use app::{Diagnostics, KeyReport, SealedKind};
use ports::{Clock, SecretSealer, SystemClock};
use postgres::PoolSettings;
use secrecy::ExposeSecret as _;

use crate::compose;
use crate::config::{Config, Upstream};

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is checked.
    pub name: &'static str,
    /// `Some(true)` passed, `Some(false)` failed, `None` not run (an earlier check failed).
    pub passed: Option<bool>,
    /// What was found: the first line is the summary, the others detail.
    pub lines: Vec<String>,
}

impl Check {
    fn passed(name: &'static str, lines: Vec<String>) -> Self {
        Self {
            name,
            passed: Some(true),
            lines,
        }
    }

    fn failed(name: &'static str, lines: Vec<String>) -> Self {
        Self {
            name,
            passed: Some(false),
            lines,
        }
    }

    fn skipped(name: &'static str, why: &str) -> Self {
        Self {
            name,
            passed: None,
            lines: vec![why.to_string()],
        }
    }
}

/// Every check of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// In the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check ran and passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.passed == Some(true))
    }

    /// The report for the operator: one block per check, then a verdict.
    pub fn text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let verdict = match c.passed {
                Some(true) => "ok",
                Some(false) => "FAILING",
                None => "not checked",
            };
            let mut lines = c.lines.iter();
            let first = lines.next().map_or("", String::as_str);
            out.push_str(&format!("{:<width$}  {verdict}: {first}\n", c.name));
            for line in lines {
                out.push_str(&format!("{:<width$}    {line}\n", ""));
            }
        }
        let failing: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.passed != Some(true))
            .map(|c| c.name)
            .collect();
        if failing.is_empty() {
            out.push_str("every check passed\n");
        } else {
            out.push_str(&format!("failing or not checked: {}\n", failing.join(", ")));
        }
        out
    }
}

/// The at-rest keys' check as lines: the configured key ids, then per kind of sealed value
/// how many are in use and which do not open.
pub fn key_lines(report: &KeyReport) -> Vec<String> {
    let mut ids = report.configured.iter();
    let mut configured = ids
        .next()
        .map(|current| format!("{current} (current)"))
        .unwrap_or_default();
    for id in ids {
        configured.push_str(&format!(", {id}"));
    }
    let mut lines = vec![if report.ok() {
        format!("the configured keys {configured} open every sealed value in use")
    } else {
        format!(
            "not every sealed value in use opens with the configured keys {configured} ({} does not)",
            report.unopenable.len()
        )
    }];
    for kind in SealedKind::ALL {
        let failing: Vec<_> = report.unopenable(kind).collect();
        lines.push(format!(
            "{}: {} in use, {} open",
            kind.describe(),
            report.checked(kind),
            report.checked(kind) - failing.len()
        ));
        for u in failing {
            lines.push(format!("  does not open: {}: {}", u.record, u.error));
        }
    }
    if report.retired_unopenable > 0 {
        lines.push(format!(
            "{} values no longer in use (previous secrets or tokens past their time) do not open; they are never read again",
            report.retired_unopenable
        ));
    }
    if !report.ok() {
        lines.push(crate::admin::UNOPENABLE_HINT.to_string());
    }
    lines
}

/// Runs every check against the configured database.
///
/// # Errors
///
/// A message when there is nothing to check (no database configured) or the configuration
/// cannot be used at all.
pub async fn run(config: &Config) -> Result<Report, String> {
    let Some(url) = &config.database_url else {
        return Err(
            "doctor checks a deployment on Postgres: set DATABASE_URL (and WIDGET_SESSIONS_SECRET_KEY); the in-memory store keeps nothing beyond its process"
                .into(),
        );
    };
    let keyring = Arc::new(compose::keyring(config).map_err(|e| e.to_string())?);
    let sealer: Arc<dyn SecretSealer> = keyring;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let pool = postgres::pool(
        url.expose_secret(),
        PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .map_err(|e| format!("DATABASE_URL: {e}"))?;
    let stores = postgres::stores(pool.clone(), sealer.clone());
    let diagnostics = Diagnostics::new(&stores, compose::at_rest_keys(&stores, sealer, clock));
    let mut checks = Vec::new();

    if let Err(e) = diagnostics.database().await {
        checks.push(Check::failed(
            "database",
            vec![format!("does not answer: {e}")],
        ));
        for name in ["migrations", "keys", "upstream token"] {
            checks.push(Check::skipped(name, "the database does not answer"));
        }
        return Ok(Report { checks });
    }
    checks.push(Check::passed("database", vec!["answers".into()]));

    checks.push(match postgres::pending_migrations(&pool).await {
        Ok(pending) if pending.is_empty() => Check::passed(
            "migrations",
            vec!["every migration of this build is applied".into()],
        ),
        Ok(pending) => Check::failed(
            "migrations",
            vec![format!(
                "pending: {}; run `widget-sessions migrate` (the checks below may fail until then)",
                pending
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        ),
        Err(e) => Check::failed("migrations", vec![format!("cannot be read: {e}")]),
    });

    checks.push(match diagnostics.keys().check().await {
        Ok(report) if report.ok() => Check::passed("keys", key_lines(&report)),
        Ok(report) => Check::failed("keys", key_lines(&report)),
        Err(e) => Check::failed(
            "keys",
            vec![format!("the sealed values cannot be read: {e}")],
        ),
    });

    checks.push(match &config.upstream {
        Upstream::InProcessEmulator => Check::passed(
            "upstream token",
            vec!["the in-process emulator's token is not stored".into()],
        ),
        Upstream::Remote(r) => {
            let account = compose::remote_upstream(config, r)
                .map_err(|e| e.to_string())?
                .token_account();
            match diagnostics.upstream_token(&account).await {
                Ok(Some(token)) => Check::passed(
                    "upstream token",
                    vec![format!(
                        "stored for the {} account, opens (version {}, expires {})",
                        r.environment,
                        token.version,
                        token
                            .expires_at
                            .to_rfc3339_opts(domain::chrono::SecondsFormat::Secs, true)
                    )],
                ),
                Ok(None) => Check::passed(
                    "upstream token",
                    vec![format!(
                        "none stored for the {} account yet: the first instance that needs one obtains it",
                        r.environment
                    )],
                ),
                Err(e) => Check::failed(
                    "upstream token",
                    vec![format!("stored for the {} account: {e}", r.environment)],
                ),
            }
        }
    });
    Ok(Report { checks })
}
